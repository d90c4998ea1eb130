//! Coarse areas: the H3 cells the neighborhood server speaks in.
//!
//! The server never receives a precise location (issue 7, design/privacy.md rule 5).
//! Everything that names a place is an H3 cell, and this module is the one
//! gate every cell passes through:
//!
//! * a **home area** is a cell of resolution [`MAX_HOME_RES`] (8, about
//!   0.7 km²) or coarser — [`parse_home_cell`];
//! * a **post** carries a cell of resolution [`MAX_POST_RES`] (9) or coarser —
//!   [`parse_post_cell`] — that its author chose; a post whose author chose
//!   none gets [`default_post_cell`], the resolution-[`DEFAULT_POST_RES`]
//!   (7, about 5 km²) parent of the home area. A post's cell is never its
//!   author's home cell nor a cell inside it ([`inside`]), so a post never
//!   tells readers where its author lives (issue 14 item 7);
//! * both parsers refuse raw coordinates (`"47.6,-122.3"`) and finer cells
//!   with an error that says what is wrong, so an API client that tries to
//!   send a precise location learns why it was refused;
//! * posts are indexed at [`FEED_RES`]: [`feed_key`] maps any accepted cell to
//!   exactly one index cell, and [`feed_cells`] lists the index cells whose
//!   centres lie within the feed radius of a home area's centre. A post is in
//!   a feed iff its `feed_key` is in that list, so "inside the radius" has one
//!   definition shared by the SQL stores and the tests;
//! * the radius is bounded by [`check_radius_km`] (0.5–8 km);
//! * pages show distance in words ([`distance_words`]) and a small inline SVG
//!   of hexagons ([`cells_svg`]) instead of a tiled map: no third-party
//!   requests, no coordinates in the page beyond cell geometry.
//!
//! Invariants: every function here is total on valid [`CellIndex`] values
//! (no panics); distances are great-circle distances between cell centres;
//! [`feed_cells`] always contains the home's own index cell.

use std::fmt::Write as _;

use h3o::{CellIndex, LatLng, Resolution};

/// Home areas: resolution 8 or coarser.
pub const MAX_HOME_RES: u8 = 8;
/// Posts: resolution 9 or coarser.
pub const MAX_POST_RES: u8 = 9;
/// The resolution of a post's place when its author chose none: the home
/// area's parent at this resolution (about 5 km², seven resolution-8 cells).
pub const DEFAULT_POST_RES: Resolution = Resolution::Seven;
/// Resolution at which posts are indexed for the feed.
pub const FEED_RES: Resolution = Resolution::Eight;

/// Smallest feed radius, in kilometres.
pub const MIN_RADIUS_KM: f64 = 0.5;
/// Largest feed radius, in kilometres.
pub const MAX_RADIUS_KM: f64 = 8.0;
/// The radius a feed uses when the caller gives none.
pub const DEFAULT_RADIUS_KM: f64 = 3.0;

/// Why a cell or radius was refused. Every message names what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AreaError {
    #[error("no area cell given: send an H3 cell index such as \"882a100d25fffff\"")]
    Empty,
    #[error(
        "raw coordinates ({0:?}) are not accepted: the server never receives a precise \
         location; send a coarse H3 cell index (resolution {1} or coarser) instead"
    )]
    RawCoordinates(String, u8),
    #[error("{input:?} is not an H3 cell index ({reason}); expected 15 hexadecimal digits such as \"882a100d25fffff\"")]
    NotACell { input: String, reason: String },
    #[error(
        "cell {cell} has resolution {res}, which is too precise for {what}: use resolution \
         {max} or coarser (its parent at resolution {max} is {parent})"
    )]
    TooFine {
        cell: String,
        res: u8,
        max: u8,
        what: &'static str,
        parent: String,
    },
    #[error("radius {0} km is not a number of kilometres")]
    RadiusNotFinite(f64),
    #[error("radius {0} km is outside the allowed range of 0.5 to 8 km")]
    RadiusOutOfRange(f64),
    #[error(
        "coordinates ({0}, {1}) are not a place on Earth (latitude -90..90, longitude -180..180)"
    )]
    BadCoordinates(f64, f64),
}

/// Parses a home-area cell: resolution [`MAX_HOME_RES`] or coarser.
pub fn parse_home_cell(s: &str) -> Result<CellIndex, AreaError> {
    parse_cell(s, MAX_HOME_RES, "a home area")
}

/// Parses a post's cell: resolution [`MAX_POST_RES`] or coarser.
pub fn parse_post_cell(s: &str) -> Result<CellIndex, AreaError> {
    parse_cell(s, MAX_POST_RES, "a post")
}

fn parse_cell(s: &str, max: u8, what: &'static str) -> Result<CellIndex, AreaError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(AreaError::Empty);
    }
    if looks_like_coordinates(t) {
        return Err(AreaError::RawCoordinates(t.to_string(), max));
    }
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AreaError::NotACell {
            input: truncate(t, 40),
            reason: "not a hexadecimal number".into(),
        });
    }
    let cell: CellIndex =
        hex.parse()
            .map_err(|e: h3o::error::InvalidCellIndex| AreaError::NotACell {
                input: truncate(t, 40),
                reason: e.to_string(),
            })?;
    let res = u8::from(cell.resolution());
    if res > max {
        let parent = Resolution::try_from(max)
            .ok()
            .and_then(|r| cell.parent(r))
            .map(|p| p.to_string())
            .unwrap_or_default();
        return Err(AreaError::TooFine {
            cell: cell.to_string(),
            res,
            max,
            what,
            parent,
        });
    }
    Ok(cell)
}

/// Anything with a decimal point, a sign, a comma or whitespace between two
/// numbers is a coordinate attempt; H3 indexes are bare hex digits.
fn looks_like_coordinates(t: &str) -> bool {
    let numbers: Vec<&str> = t
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .collect();
    let all_numeric = !numbers.is_empty() && numbers.iter().all(|p| p.parse::<f64>().is_ok());
    let has_decimal_or_sign = t.contains('.') || t.starts_with('-') || t.starts_with('+');
    all_numeric && (numbers.len() >= 2 || has_decimal_or_sign)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n).collect();
        out.push('…');
        out
    }
}

/// The place of a post whose author chose none: the home area's parent at
/// [`DEFAULT_POST_RES`], or one resolution coarser than a home that is
/// already that coarse — never the home cell itself. `None` for a
/// resolution-0 home, which has no parent (its owner must choose a place).
pub fn default_post_cell(home: CellIndex) -> Option<CellIndex> {
    let res = home.resolution().min(DEFAULT_POST_RES);
    let res = if res == home.resolution() {
        res.pred()?
    } else {
        res
    };
    home.parent(res)
}

/// Whether `cell` is `area` or lies inside it (a finer cell whose parent at
/// `area`'s resolution is `area`).
pub fn inside(cell: CellIndex, area: CellIndex) -> bool {
    cell.resolution() >= area.resolution() && cell.parent(area.resolution()) == Some(area)
}

/// Checks a feed radius in kilometres: 0.5 to 8 inclusive.
pub fn check_radius_km(r: f64) -> Result<f64, AreaError> {
    if !r.is_finite() {
        return Err(AreaError::RadiusNotFinite(r));
    }
    if !(MIN_RADIUS_KM..=MAX_RADIUS_KM).contains(&r) {
        return Err(AreaError::RadiusOutOfRange(r));
    }
    Ok(r)
}

/// The post's indexing cell at [`FEED_RES`]: its parent when the cell is
/// finer, its centre child when it is coarser, itself otherwise.
pub fn feed_key(cell: CellIndex) -> CellIndex {
    let res = cell.resolution();
    if res > FEED_RES {
        cell.parent(FEED_RES).unwrap_or(cell)
    } else if res < FEED_RES {
        cell.center_child(FEED_RES).unwrap_or(cell)
    } else {
        cell
    }
}

/// The [`FEED_RES`] cells whose centres lie within `radius_km` of the centre
/// of `home` (great-circle distance), sorted. Always contains the home's own
/// index cell. The radius is clamped to the allowed range, so a caller that
/// skipped [`check_radius_km`] still gets a bounded answer.
pub fn feed_cells(home: CellIndex, radius_km: f64) -> Vec<CellIndex> {
    let radius = if radius_km.is_finite() {
        radius_km.clamp(MIN_RADIUS_KM, MAX_RADIUS_KM)
    } else {
        DEFAULT_RADIUS_KM
    };
    let centre = LatLng::from(home);
    let origin = centre.to_cell(FEED_RES);
    // Neighbouring centres are about sqrt(3) edge lengths apart; H3 cells
    // vary in size across the globe, so assume they can be a third smaller
    // than average and add one ring of margin.
    let spacing = FEED_RES.edge_length_km() * 3f64.sqrt() * 0.66;
    let k = (radius / spacing).ceil() as u32 + 1;
    let mut cells: Vec<CellIndex> = origin
        .grid_disk::<Vec<_>>(k)
        .into_iter()
        .filter(|c| LatLng::from(*c).distance_km(centre) <= radius)
        .collect();
    if !cells.contains(&origin) {
        cells.push(origin);
    }
    cells.sort_unstable();
    cells.dedup();
    cells
}

/// Distance between the centres of two cells, great circle, in kilometres.
pub fn distance_km(a: CellIndex, b: CellIndex) -> f64 {
    LatLng::from(a).distance_km(LatLng::from(b))
}

/// A distance in words: "in your area" under half a kilometre, otherwise
/// "about N km away" rounded to the half kilometre (whole kilometres from 10 km).
pub fn distance_words(km: f64) -> String {
    if !km.is_finite() || km < 0.5 {
        return "in your area".to_string();
    }
    if km < 10.0 {
        let halves = (km * 2.0).round() / 2.0;
        if halves.fract() == 0.0 {
            format!("about {} km away", halves as u32)
        } else {
            format!("about {halves:.1} km away")
        }
    } else {
        format!("about {} km away", km.round() as u64)
    }
}

/// The cell containing a point given in degrees, at resolution
/// [`MAX_HOME_RES`]. Used by the area picker for the *coarse* point the
/// browser sends (rounded to one decimal, see `pages::area`); never called
/// with a precise location by this server's own pages.
pub fn home_cell_at(lat: f64, lng: f64) -> Result<CellIndex, AreaError> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
        return Err(AreaError::BadCoordinates(lat, lng));
    }
    let ll = LatLng::new(lat, lng).map_err(|_| AreaError::BadCoordinates(lat, lng))?;
    Ok(ll.to_cell(Resolution::Eight))
}

/// Rounds a point to one decimal degree (about 11 km north–south): the
/// only precision the area picker ever sends to the server.
pub fn coarse_point(lat: f64, lng: f64) -> Result<(f64, f64), AreaError> {
    if !lat.is_finite()
        || !lng.is_finite()
        || !(-90.0..=90.0).contains(&lat)
        || !(-180.0..=180.0).contains(&lng)
    {
        return Err(AreaError::BadCoordinates(lat, lng));
    }
    Ok(((lat * 10.0).round() / 10.0, (lng * 10.0).round() / 10.0))
}

/// The resolution-8 cells whose centres lie within `radius_km` (at most
/// 12 km) of a point: the candidates the area picker offers around a
/// coarse point, so the browser can choose the nearest one locally.
pub fn cells_near(lat: f64, lng: f64, radius_km: f64) -> Result<Vec<CellIndex>, AreaError> {
    let centre = LatLng::new(lat, lng).map_err(|_| AreaError::BadCoordinates(lat, lng))?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
        return Err(AreaError::BadCoordinates(lat, lng));
    }
    let radius = if radius_km.is_finite() {
        radius_km.clamp(0.0, 12.0)
    } else {
        0.0
    };
    let origin = centre.to_cell(FEED_RES);
    let spacing = FEED_RES.edge_length_km() * 3f64.sqrt() * 0.66;
    let k = (radius / spacing).ceil() as u32 + 1;
    let mut cells: Vec<CellIndex> = origin
        .grid_disk::<Vec<_>>(k)
        .into_iter()
        .filter(|c| LatLng::from(*c).distance_km(centre) <= radius)
        .collect();
    if !cells.contains(&origin) {
        cells.push(origin);
    }
    cells.sort_unstable();
    Ok(cells)
}

/// Centre of a cell in degrees, rounded to 4 decimals (about 10 m; cell
/// centres are public grid geometry, not anybody's location).
pub fn cell_centre(cell: CellIndex) -> (f64, f64) {
    let ll = LatLng::from(cell);
    (
        (ll.lat() * 1e4).round() / 1e4,
        (ll.lng() * 1e4).round() / 1e4,
    )
}

/// How [`draw_cells`] renders one drawing.
#[derive(Debug, Clone, Copy, Default)]
pub struct SvgOptions<'a> {
    /// Highlighted "home" outline.
    pub home: Option<CellIndex>,
    /// An extra marked cell (a post's cell, or a candidate area).
    pub mark: Option<CellIndex>,
    /// When set, each hexagon is a link to `{link_prefix}{cell}` so the
    /// drawing works as a picker without JavaScript.
    pub link_prefix: Option<&'a str>,
    /// Accessible label for the whole drawing.
    pub label: &'a str,
}

/// A small inline SVG of the hexagons of the feed area around `home`, with
/// the home area outlined and an optional marked cell. Self-contained: no
/// external resources, no scripts, no styles beyond class names.
pub fn cells_svg(home: CellIndex, radius_km: f64, mark: Option<CellIndex>) -> String {
    let label = format!(
        "Hexagon drawing of the area within {} km of your home area",
        fmt_km(radius_km.clamp(MIN_RADIUS_KM, MAX_RADIUS_KM))
    );
    draw_cells(
        &feed_cells(home, radius_km),
        SvgOptions {
            home: Some(home),
            mark,
            link_prefix: None,
            label: &label,
        },
    )
}

fn fmt_km(km: f64) -> String {
    if km.fract() == 0.0 {
        format!("{}", km as u32)
    } else {
        format!("{km:.1}")
    }
}

/// Draws `cells` (any resolution) as hexagons in an equirectangular
/// projection around their centre, fitted into a 300×300 view box.
pub fn draw_cells(cells: &[CellIndex], opts: SvgOptions<'_>) -> String {
    const SIZE: f64 = 300.0;
    const PAD: f64 = 6.0;
    let anchor = opts
        .home
        .or_else(|| cells.first().copied())
        .or(opts.mark)
        .map(LatLng::from);
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"cells\" viewBox=\"0 0 {SIZE} {SIZE}\" \
         role=\"img\" aria-label=\"{}\">",
        escape(opts.label)
    );
    let Some(anchor) = anchor else {
        out.push_str("</svg>");
        return out;
    };
    let (lat0, lng0) = (anchor.lat(), anchor.lng());
    let coslat = lat0.to_radians().cos().max(0.01);
    // Planar kilometres east/north of the anchor; longitudes unwrapped
    // around the anchor so a drawing across the antimeridian stays whole.
    let project = |ll: LatLng| -> (f64, f64) {
        let mut dlng = ll.lng() - lng0;
        if dlng > 180.0 {
            dlng -= 360.0;
        } else if dlng < -180.0 {
            dlng += 360.0;
        }
        (dlng * coslat * 111.32, (ll.lat() - lat0) * 110.57)
    };
    let shapes: Vec<(CellIndex, Vec<(f64, f64)>)> = cells
        .iter()
        .map(|c| (*c, c.boundary().iter().map(|v| project(*v)).collect()))
        .collect();
    let (mut minx, mut maxx, mut miny, mut maxy) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (_, pts) in &shapes {
        for (x, y) in pts {
            minx = minx.min(*x);
            maxx = maxx.max(*x);
            miny = miny.min(*y);
            maxy = maxy.max(*y);
        }
    }
    if shapes.is_empty() {
        // Only a home/mark outline: frame it with a small margin.
        (minx, maxx, miny, maxy) = (-1.0, 1.0, -1.0, 1.0);
    }
    let span = (maxx - minx).max(maxy - miny).max(1e-6);
    let scale = (SIZE - 2.0 * PAD) / span;
    let (cx, cy) = ((minx + maxx) / 2.0, (miny + maxy) / 2.0);
    let to_svg = |(x, y): (f64, f64)| -> (f64, f64) {
        (SIZE / 2.0 + (x - cx) * scale, SIZE / 2.0 - (y - cy) * scale)
    };
    let points = |pts: &[(f64, f64)]| -> String {
        let mut s = String::new();
        for (i, p) in pts.iter().enumerate() {
            let (x, y) = to_svg(*p);
            if i > 0 {
                s.push(' ');
            }
            let _ = write!(s, "{x:.1},{y:.1}");
        }
        s
    };
    let home_key = opts.home.map(feed_key);
    for (cell, pts) in &shapes {
        let class = if Some(*cell) == home_key {
            "cell home-cell"
        } else {
            "cell"
        };
        let polygon = format!(
            "<polygon class=\"{class}\" data-cell=\"{cell}\" points=\"{}\"><title>{cell}</title></polygon>",
            points(pts)
        );
        match opts.link_prefix {
            Some(prefix) => {
                let _ = write!(out, "<a href=\"{}{cell}\">{polygon}</a>", escape(prefix));
            }
            None => out.push_str(&polygon),
        }
    }
    if let Some(home) = opts.home {
        let pts: Vec<_> = home.boundary().iter().map(|v| project(*v)).collect();
        let _ = write!(out, "<polygon class=\"home\" points=\"{}\"/>", points(&pts));
    }
    if let Some(mark) = opts.mark {
        let pts: Vec<_> = mark.boundary().iter().map(|v| project(*v)).collect();
        let _ = write!(
            out,
            "<polygon class=\"mark\" data-cell=\"{mark}\" points=\"{}\"/>",
            points(&pts)
        );
        let (x, y) = to_svg(project(LatLng::from(mark)));
        let _ = write!(
            out,
            "<circle class=\"mark-dot\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\"/>"
        );
    }
    out.push_str("</svg>");
    out
}

fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A res-8 cell in Seattle (47.6062, -122.3321).
    fn seattle8() -> CellIndex {
        LatLng::new(47.6062, -122.3321)
            .unwrap()
            .to_cell(Resolution::Eight)
    }

    /// A point `km` kilometres due east of `from` (small distances).
    fn east_of(from: LatLng, km: f64) -> LatLng {
        let dlng = km / (111.32 * from.lat().to_radians().cos());
        LatLng::new(from.lat(), from.lng() + dlng).unwrap()
    }

    #[test]
    fn home_accepts_res_8_and_coarser() {
        let c8 = seattle8();
        assert_eq!(parse_home_cell(&c8.to_string()).unwrap(), c8);
        let c5 = c8.parent(Resolution::Five).unwrap();
        assert_eq!(parse_home_cell(&c5.to_string()).unwrap(), c5);
        assert_eq!(parse_home_cell(&format!("  {c8}\n")).unwrap(), c8);
        assert_eq!(parse_home_cell(&c8.to_string().to_uppercase()).unwrap(), c8);
    }

    #[test]
    fn home_rejects_finer_than_8_naming_the_parent() {
        let c9 = LatLng::new(47.6062, -122.3321)
            .unwrap()
            .to_cell(Resolution::Nine);
        let err = parse_home_cell(&c9.to_string()).unwrap_err();
        match &err {
            AreaError::TooFine {
                res, max, parent, ..
            } => {
                assert_eq!((*res, *max), (9, 8));
                assert_eq!(parent, &c9.parent(Resolution::Eight).unwrap().to_string());
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("resolution 9") && msg.contains("8 or coarser"),
            "{msg}"
        );
        // The same cell is fine for a post.
        assert_eq!(parse_post_cell(&c9.to_string()).unwrap(), c9);
    }

    #[test]
    fn post_rejects_finer_than_9() {
        for res in [Resolution::Ten, Resolution::Twelve, Resolution::Fifteen] {
            let c = LatLng::new(47.6062, -122.3321).unwrap().to_cell(res);
            let err = parse_post_cell(&c.to_string()).unwrap_err();
            assert!(matches!(err, AreaError::TooFine { max: 9, .. }), "{err:?}");
        }
    }

    #[test]
    fn raw_coordinates_rejected_with_a_clear_message() {
        for input in [
            "47.6,-122.3",
            "47.6062, -122.3321",
            "47.6 -122.3",
            "-122.33",
            "47.60;8.5",
            "12 34",
        ] {
            let err = parse_home_cell(input).unwrap_err();
            assert!(
                matches!(err, AreaError::RawCoordinates(..)),
                "{input}: {err:?}"
            );
            assert!(err.to_string().contains("raw coordinates"), "{err}");
            let err = parse_post_cell(input).unwrap_err();
            assert!(
                matches!(err, AreaError::RawCoordinates(..)),
                "{input}: {err:?}"
            );
        }
    }

    #[test]
    fn garbage_is_not_a_cell() {
        assert_eq!(parse_home_cell("   ").unwrap_err(), AreaError::Empty);
        for input in [
            "hello",
            "zzzzzzzzzzzzzzz",
            "ffffffffffffffff",
            "8828308281fffffffff",
            "0",
        ] {
            let err = parse_home_cell(input).unwrap_err();
            assert!(
                matches!(err, AreaError::NotACell { .. }),
                "{input}: {err:?}"
            );
        }
    }

    #[test]
    fn default_post_cells_are_coarser_than_the_home() {
        let home = seattle8();
        let d = default_post_cell(home).unwrap();
        assert_eq!(d.resolution(), Resolution::Seven);
        assert_eq!(home.parent(Resolution::Seven), Some(d));
        assert!(inside(home, d) && !inside(d, home));
        // A home that is already coarse gets its parent one level up.
        let h7 = home.parent(Resolution::Seven).unwrap();
        assert_eq!(default_post_cell(h7), home.parent(Resolution::Six));
        let h5 = home.parent(Resolution::Five).unwrap();
        assert_eq!(default_post_cell(h5), home.parent(Resolution::Four));
        let h0 = home.parent(Resolution::Zero).unwrap();
        assert_eq!(default_post_cell(h0), None);
        // inside: the cell itself and its children, not its neighbours.
        assert!(inside(home, home));
        let child = home.children(Resolution::Nine).next().unwrap();
        assert!(inside(child, home) && !inside(home, child));
        let neighbour = home
            .grid_disk::<Vec<_>>(1)
            .into_iter()
            .find(|c| *c != home)
            .unwrap();
        assert!(!inside(neighbour, home));
    }

    #[test]
    fn radius_bounds() {
        assert_eq!(check_radius_km(0.5).unwrap(), 0.5);
        assert_eq!(check_radius_km(3.0).unwrap(), 3.0);
        assert_eq!(check_radius_km(8.0).unwrap(), 8.0);
        assert!(matches!(
            check_radius_km(0.49),
            Err(AreaError::RadiusOutOfRange(_))
        ));
        assert!(matches!(
            check_radius_km(8.01),
            Err(AreaError::RadiusOutOfRange(_))
        ));
        assert!(matches!(
            check_radius_km(-3.0),
            Err(AreaError::RadiusOutOfRange(_))
        ));
        assert!(matches!(
            check_radius_km(f64::NAN),
            Err(AreaError::RadiusNotFinite(_))
        ));
        assert!(matches!(
            check_radius_km(f64::INFINITY),
            Err(AreaError::RadiusNotFinite(_))
        ));
        assert!(check_radius_km(9.0)
            .unwrap_err()
            .to_string()
            .contains("0.5 to 8"));
    }

    #[test]
    fn feed_key_maps_every_resolution_to_feed_res() {
        let p = LatLng::new(47.6062, -122.3321).unwrap();
        let c8 = p.to_cell(Resolution::Eight);
        assert_eq!(feed_key(c8), c8);
        let c9 = p.to_cell(Resolution::Nine);
        assert_eq!(feed_key(c9), c8);
        let c6 = p.to_cell(Resolution::Six);
        let k = feed_key(c6);
        assert_eq!(k.resolution(), FEED_RES);
        assert_eq!(k.parent(Resolution::Six), Some(c6));
    }

    #[test]
    fn feed_cells_at_known_distances() {
        let home = seattle8();
        let centre = LatLng::from(home);
        let two_km = feed_key(east_of(centre, 2.0).to_cell(Resolution::Nine));
        let d = distance_km(home, two_km);
        assert!(
            (1.4..=2.6).contains(&d),
            "index cell of a point 2 km east is {d} km away"
        );
        let f3 = feed_cells(home, 3.0);
        let f1 = feed_cells(home, 1.0);
        assert!(f3.contains(&two_km), "a cell ~2 km away is in a 3 km feed");
        assert!(!f1.contains(&two_km), "and not in a 1 km feed");
        assert!(f1.contains(&home) && f3.contains(&home));
        // Ten kilometres away is outside even the largest feed.
        let far = feed_key(east_of(centre, 10.0).to_cell(Resolution::Nine));
        assert!(!feed_cells(home, 8.0).contains(&far));
        // Every listed cell is at feed resolution and within the radius,
        // and the count is about the disk's area over a cell's area.
        for c in &f3 {
            assert_eq!(c.resolution(), FEED_RES);
            assert!(LatLng::from(*c).distance_km(centre) <= 3.0);
        }
        let expect = std::f64::consts::PI * 9.0 / home.area_km2();
        let n = f3.len() as f64;
        assert!(
            n > expect * 0.7 && n < expect * 1.3,
            "{n} cells, expected about {expect}"
        );
    }

    #[test]
    fn feed_cells_is_complete_within_the_radius() {
        // Brute force: every res-8 cell in a wide disk whose centre is within
        // the radius must be listed (the k estimate must not be too small).
        let home = seattle8();
        let centre = LatLng::from(home);
        for radius in [0.5, 3.0, 8.0] {
            let listed = feed_cells(home, radius);
            let all: Vec<CellIndex> = home.grid_disk(30);
            let want: Vec<CellIndex> = {
                let mut w: Vec<_> = all
                    .into_iter()
                    .filter(|c| LatLng::from(*c).distance_km(centre) <= radius)
                    .collect();
                w.sort_unstable();
                w
            };
            assert_eq!(listed, want, "radius {radius}");
        }
    }

    #[test]
    fn feed_cells_from_a_coarse_home() {
        let p = LatLng::new(47.6062, -122.3321).unwrap();
        let home6 = p.to_cell(Resolution::Six);
        let cells = feed_cells(home6, 2.0);
        assert!(!cells.is_empty());
        assert!(cells.iter().all(|c| c.resolution() == FEED_RES));
        assert!(
            cells.contains(&feed_key(home6))
                || cells.contains(&LatLng::from(home6).to_cell(FEED_RES))
        );
    }

    #[test]
    fn distance_is_symmetric_and_zero_on_self() {
        let a = seattle8();
        let b = feed_key(east_of(LatLng::from(a), 4.0).to_cell(Resolution::Eight));
        assert_eq!(distance_km(a, a), 0.0);
        assert!((distance_km(a, b) - distance_km(b, a)).abs() < 1e-9);
        assert!((3.0..5.0).contains(&distance_km(a, b)));
    }

    #[test]
    fn distance_in_words() {
        assert_eq!(distance_words(0.0), "in your area");
        assert_eq!(distance_words(0.3), "in your area");
        assert_eq!(distance_words(1.4), "about 1.5 km away");
        assert_eq!(distance_words(1.6), "about 1.5 km away");
        assert_eq!(distance_words(2.1), "about 2 km away");
        assert_eq!(distance_words(0.6), "about 0.5 km away");
        assert_eq!(distance_words(12.4), "about 12 km away");
        assert_eq!(distance_words(f64::NAN), "in your area");
    }

    #[test]
    fn home_cell_at_is_res_8_and_checks_range() {
        let c = home_cell_at(47.6, -122.3).unwrap();
        assert_eq!(c.resolution(), Resolution::Eight);
        assert!(matches!(
            home_cell_at(91.0, 0.0),
            Err(AreaError::BadCoordinates(..))
        ));
        assert!(matches!(
            home_cell_at(0.0, f64::NAN),
            Err(AreaError::BadCoordinates(..))
        ));
    }

    #[test]
    fn coarse_points_and_candidates() {
        assert_eq!(coarse_point(47.6062, -122.3321).unwrap(), (47.6, -122.3));
        assert_eq!(coarse_point(-33.87, 151.21).unwrap(), (-33.9, 151.2));
        assert!(coarse_point(95.0, 0.0).is_err() && coarse_point(f64::NAN, 0.0).is_err());
        // The candidates around a coarse point include the cell holding any
        // precise point that rounds to it (so the browser's local choice is
        // always among them).
        let (lat, lng) = coarse_point(47.6449, -122.3051).unwrap();
        let cands = cells_near(lat, lng, 8.5).unwrap();
        let precise = LatLng::new(47.6449, -122.3051)
            .unwrap()
            .to_cell(Resolution::Eight);
        assert!(cands.contains(&precise));
        let corner = LatLng::new(lat + 0.0499, lng + 0.0499)
            .unwrap()
            .to_cell(Resolution::Eight);
        assert!(
            cands.contains(&corner),
            "a point at the corner of the rounding box"
        );
        assert!(cands.iter().all(|c| c.resolution() == Resolution::Eight));
        assert!(cells_near(0.0, 0.0, 1.0).unwrap().len() < 10);
    }

    #[test]
    fn svg_is_well_formed_and_self_contained() {
        let home = seattle8();
        let mark = feed_key(east_of(LatLng::from(home), 1.0).to_cell(Resolution::Nine));
        let svg = cells_svg(home, 1.0, Some(mark));
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>"));
        assert!(
            !svg.contains("http://") || svg.matches("http://").count() == 1,
            "only the xmlns URL"
        );
        assert!(!svg.contains("https://") && !svg.contains("<script") && !svg.contains("href"));
        let n = feed_cells(home, 1.0).len();
        assert_eq!(svg.matches("<polygon class=\"cell").count(), n);
        assert_eq!(svg.matches("home-cell").count(), 1);
        assert_eq!(svg.matches("class=\"home\"").count(), 1);
        assert!(svg.contains(&format!("class=\"mark\" data-cell=\"{mark}\"")));
        // Balanced tags: every <polygon ...> is closed.
        let opens = svg.matches("<polygon").count();
        let closes = svg.matches("</polygon>").count() + svg.matches("/>").count()
            - svg.matches("<circle").count();
        assert_eq!(opens, closes);
        // Every coordinate is inside the view box.
        for pts in svg.split("points=\"").skip(1) {
            let pts = &pts[..pts.find('"').unwrap()];
            for xy in pts.split(' ') {
                let (x, y) = xy.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!(
                    (-1.0..=301.0).contains(&x) && (-1.0..=301.0).contains(&y),
                    "{xy}"
                );
            }
        }
    }

    #[test]
    fn svg_picker_links_and_escapes() {
        let home = seattle8();
        let cells = feed_cells(home, 0.5);
        let svg = draw_cells(
            &cells,
            SvgOptions {
                home: None,
                mark: None,
                link_prefix: Some("/area?c=1&cell="),
                label: "a \"b\" <c>",
            },
        );
        assert_eq!(
            svg.matches("<a href=\"/area?c=1&amp;cell=").count(),
            cells.len()
        );
        assert!(svg.contains("aria-label=\"a &quot;b&quot; &lt;c&gt;\""));
        let empty = draw_cells(&[], SvgOptions::default());
        assert!(empty.starts_with("<svg") && empty.ends_with("</svg>"));
    }
}
