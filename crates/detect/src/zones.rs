//! Zones and masks of one camera: named polygons in normalised picture
//! coordinates (`[x, y]`, 0..1, origin top left), and their rasterisation
//! onto the motion analysis grid.
//!
//! An `include` zone names a part of the picture (the porch, the
//! driveway): motion regions report the zones they overlap, and alert
//! rules may name zones and labels. A `mask` hides a part of the picture
//! (a clock overlay, a tree, the street): masked pixels never count as
//! motion.
//!
//! Invariants: a [`Zone`] that passed [`validate_zones`] has a name that is
//! unique, non-empty and at most 64 characters, at least 3 finite points
//! inside [0, 1], a non-zero area, and only known labels (none on a mask).
//! Rasterisation samples each grid cell at its centre with the even-odd
//! rule, so self-intersecting polygons are well defined.

use serde::{Deserialize, Serialize};

/// The labels a zone may restrict alerts to.
pub const KNOWN_LABELS: [&str; 4] = ["person", "vehicle", "animal", "parcel"];

/// What a zone does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZoneKind {
    /// A named area motion regions and objects are reported in.
    #[default]
    Include,
    /// An area whose pixels never count as motion.
    Mask,
}

/// One named polygon of a camera.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub name: String,
    /// Corners `[x, y]` in normalised coordinates (0..1).
    pub polygon: Vec<[f32; 2]>,
    #[serde(default)]
    pub kind: ZoneKind,
    /// The labels that alert in this zone (`None`: every label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

/// What is wrong with a zone.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ZoneError {
    #[error("zone {index}: the name is empty")]
    EmptyName { index: usize },
    #[error("zone {name:?}: the name is longer than 64 characters")]
    LongName { name: String },
    #[error("zone {name:?} is defined twice")]
    Duplicate { name: String },
    #[error("zone {name:?}: a polygon needs at least 3 points, it has {points}")]
    TooFewPoints { name: String, points: usize },
    #[error("zone {name:?}: point {point} ({x}, {y}) is outside 0..1 (coordinates are fractions of the picture's width and height)")]
    OutOfRange {
        name: String,
        point: usize,
        x: f32,
        y: f32,
    },
    #[error("zone {name:?}: the polygon has no area (its points are on one line)")]
    NoArea { name: String },
    #[error("zone {name:?}: unknown label {label:?} (known: person, vehicle, animal, parcel)")]
    UnknownLabel { name: String, label: String },
    #[error("zone {name:?}: a mask cannot have labels (masked motion is ignored)")]
    LabelsOnMask { name: String },
}

impl Zone {
    /// Checks this zone on its own (see [`validate_zones`] for the set).
    pub fn validate(&self, index: usize) -> Result<(), ZoneError> {
        let name = || self.name.clone();
        if self.name.trim().is_empty() {
            return Err(ZoneError::EmptyName { index });
        }
        if self.name.chars().count() > 64 {
            return Err(ZoneError::LongName { name: name() });
        }
        if self.polygon.len() < 3 {
            return Err(ZoneError::TooFewPoints {
                name: name(),
                points: self.polygon.len(),
            });
        }
        for (i, &[x, y]) in self.polygon.iter().enumerate() {
            let ok = |v: f32| v.is_finite() && (0.0..=1.0).contains(&v);
            if !ok(x) || !ok(y) {
                return Err(ZoneError::OutOfRange {
                    name: name(),
                    point: i,
                    x,
                    y,
                });
            }
        }
        if polygon_area(&self.polygon) < 1e-6 {
            return Err(ZoneError::NoArea { name: name() });
        }
        if let Some(labels) = &self.labels {
            if self.kind == ZoneKind::Mask {
                return Err(ZoneError::LabelsOnMask { name: name() });
            }
            if let Some(l) = labels.iter().find(|l| !KNOWN_LABELS.contains(&l.as_str())) {
                return Err(ZoneError::UnknownLabel {
                    name: name(),
                    label: l.clone(),
                });
            }
        }
        Ok(())
    }

    /// Whether the point `(x, y)` (normalised) is inside (even-odd rule).
    pub fn contains(&self, x: f32, y: f32) -> bool {
        point_in_polygon(&self.polygon, x, y)
    }
}

/// Checks every zone and that names are unique.
pub fn validate_zones(zones: &[Zone]) -> Result<(), ZoneError> {
    for (i, z) in zones.iter().enumerate() {
        z.validate(i)?;
        if zones[..i].iter().any(|o| o.name == z.name) {
            return Err(ZoneError::Duplicate {
                name: z.name.clone(),
            });
        }
    }
    Ok(())
}

/// Area of a polygon (shoelace), in normalised units.
fn polygon_area(p: &[[f32; 2]]) -> f32 {
    let mut twice = 0.0f64;
    for i in 0..p.len() {
        let [x0, y0] = p[i];
        let [x1, y1] = p[(i + 1) % p.len()];
        twice += f64::from(x0) * f64::from(y1) - f64::from(x1) * f64::from(y0);
    }
    (twice.abs() / 2.0) as f32
}

fn point_in_polygon(p: &[[f32; 2]], x: f32, y: f32) -> bool {
    let mut inside = false;
    let mut j = p.len().wrapping_sub(1);
    for i in 0..p.len() {
        let [xi, yi] = p[i];
        let [xj, yj] = p[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// A polygon rasterised on a `w x h` grid: one bool per cell, rows packed.
pub fn rasterise(polygon: &[[f32; 2]], w: u32, h: u32) -> Vec<bool> {
    let (w, h) = (w as usize, h as usize);
    let mut out = vec![false; w * h];
    if polygon.len() < 3 {
        return out;
    }
    // Only rows and columns within the polygon's bounding box.
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for &[x, y] in polygon {
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let r0 = ((y0 * h as f32).floor().max(0.0) as usize).min(h);
    let r1 = ((y1 * h as f32).ceil().max(0.0) as usize).min(h);
    let c0 = ((x0 * w as f32).floor().max(0.0) as usize).min(w);
    let c1 = ((x1 * w as f32).ceil().max(0.0) as usize).min(w);
    for row in r0..r1 {
        let cy = (row as f32 + 0.5) / h as f32;
        for col in c0..c1 {
            let cx = (col as f32 + 0.5) / w as f32;
            out[row * w + col] = point_in_polygon(polygon, cx, cy);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str, polygon: &[[f32; 2]]) -> Zone {
        Zone {
            name: name.into(),
            polygon: polygon.to_vec(),
            kind: ZoneKind::Include,
            labels: None,
        }
    }

    const SQUARE: [[f32; 2]; 4] = [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]];

    #[test]
    fn validation_names_the_problem() {
        assert!(validate_zones(&[zone("porch", &SQUARE)]).is_ok());
        let e = validate_zones(&[zone("a", &SQUARE[..2])]).unwrap_err();
        assert_eq!(
            e,
            ZoneError::TooFewPoints {
                name: "a".into(),
                points: 2
            }
        );
        assert!(e.to_string().contains("at least 3 points"), "{e}");
        let e = validate_zones(&[zone("a", &[[0.0, 0.0], [1.2, 0.0], [0.5, 0.5]])]).unwrap_err();
        assert!(matches!(e, ZoneError::OutOfRange { point: 1, .. }), "{e}");
        assert!(e.to_string().contains("outside 0..1"), "{e}");
        let e =
            validate_zones(&[zone("a", &[[0.0, f32::NAN], [1.0, 0.0], [0.5, 0.5]])]).unwrap_err();
        assert!(matches!(e, ZoneError::OutOfRange { point: 0, .. }), "{e}");
        let e = validate_zones(&[zone("a", &SQUARE), zone("a", &SQUARE)]).unwrap_err();
        assert_eq!(e, ZoneError::Duplicate { name: "a".into() });
        let e = validate_zones(&[zone(" ", &SQUARE)]).unwrap_err();
        assert_eq!(e, ZoneError::EmptyName { index: 0 });
        let e = validate_zones(&[zone("line", &[[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]])]).unwrap_err();
        assert_eq!(
            e,
            ZoneError::NoArea {
                name: "line".into()
            }
        );
        let mut z = zone("a", &SQUARE);
        z.labels = Some(vec!["person".into(), "unicorn".into()]);
        assert!(matches!(
            validate_zones(&[z.clone()]),
            Err(ZoneError::UnknownLabel { .. })
        ));
        z.labels = Some(vec!["person".into()]);
        assert!(validate_zones(&[z.clone()]).is_ok());
        z.kind = ZoneKind::Mask;
        assert!(matches!(
            validate_zones(&[z]),
            Err(ZoneError::LabelsOnMask { .. })
        ));
    }

    #[test]
    fn json_form() {
        let z: Zone = serde_json::from_str(
            r#"{"name":"clock","polygon":[[0,0],[0.4,0],[0.4,0.1],[0,0.1]],"kind":"mask"}"#,
        )
        .unwrap();
        assert_eq!(z.kind, ZoneKind::Mask);
        assert_eq!(z.labels, None);
        let z: Zone =
            serde_json::from_str(r#"{"name":"porch","polygon":[[0,0],[1,0],[1,1]]}"#).unwrap();
        assert_eq!(z.kind, ZoneKind::Include);
        let back: Zone = serde_json::from_str(&serde_json::to_string(&z).unwrap()).unwrap();
        assert_eq!(back, z);
        assert!(
            serde_json::from_str::<Zone>(r#"{"name":"x","polygon":[],"kind":"other"}"#).is_err()
        );
    }

    #[test]
    fn rasterising_a_square_and_a_triangle() {
        let m = rasterise(&SQUARE, 8, 8);
        let count = m.iter().filter(|&&b| b).count();
        assert_eq!(count, 16);
        assert!(m[2 * 8 + 2] && m[5 * 8 + 5] && !m[8 + 1] && !m[6 * 8 + 6]);
        // A right triangle covers about half of its bounding square.
        let t = rasterise(&[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], 100, 100);
        let n = t.iter().filter(|&&b| b).count();
        assert!((4900..=5100).contains(&n), "{n}");
        assert!(zone("t", &[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]).contains(0.1, 0.1));
        assert!(!zone("t", &[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]).contains(0.9, 0.9));
    }
}
