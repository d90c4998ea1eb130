//! Which parts of a large or wide image the detector also looks at.
//!
//! The model sees 300x300 pixels. A 1920x1080 frame squashed to that loses
//! small objects and distorts shapes (a 3:1 panorama makes a dog three times
//! thinner). So besides the whole image, the detector runs on overlapping
//! square tiles: side `min(w, h)` capped at [`MAX_TILE`], at least 25 %
//! overlap, at most [`MAX_TILES`] tiles (the side grows until they fit).
//! Small, roughly square images (longer side ≤ [`SMALL`] px, aspect ≤ 1.5)
//! get the whole-image pass only. Cost: one inference per tile plus one.

/// Images up to this side (and aspect ≤ 1.5) are not tiled.
pub const SMALL: u32 = 640;
/// Largest tile side before the grid gets finer.
pub const MAX_TILE: u32 = 1200;
/// Most tiles per image (plus the whole-image pass).
pub const MAX_TILES: usize = 12;
/// Minimum fraction of a tile shared with its neighbour.
const OVERLAP: f32 = 0.25;

/// A rectangle of the source image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// Start offsets of `count` windows of `side` evenly covering `len`.
fn starts(len: u32, side: u32) -> Vec<u32> {
    if side >= len {
        return vec![0];
    }
    let step = side as f32 * (1.0 - OVERLAP);
    let count = ((len - side) as f32 / step).ceil() as u32 + 1;
    (0..count)
        .map(|i| ((len - side) as u64 * i as u64 / (count - 1) as u64) as u32)
        .collect()
}

/// The tiles to run on besides the whole image (empty for small images).
pub fn tiles(w: u32, h: u32) -> Vec<Tile> {
    let (short, long) = (w.min(h), w.max(h));
    if long <= SMALL && (long as f32) <= 1.5 * short as f32 {
        return Vec::new();
    }
    let mut side = short.clamp(1, MAX_TILE);
    loop {
        let xs = starts(w, side.min(w));
        let ys = starts(h, side.min(h));
        if xs.len() * ys.len() <= MAX_TILES || side >= long {
            let out: Vec<Tile> = ys
                .iter()
                .flat_map(|&y| {
                    xs.iter().map(move |&x| Tile {
                        x,
                        y,
                        w: side.min(w),
                        h: side.min(h),
                    })
                })
                .collect();
            // A single tile equal to the whole image adds nothing.
            if out.len() == 1 && out[0].w == w && out[0].h == h {
                return Vec::new();
            }
            return out;
        }
        side = (side as f32 * 1.25).ceil() as u32;
    }
}

/// True when box `b` (source pixels) touches an edge of tile `t` that is
/// not also an edge of the `w`x`h` image: the object probably continues
/// outside the tile.
pub fn cut_by_tile(b: &crate::BoxF, t: &Tile, w: u32, h: u32) -> bool {
    const MARGIN: f32 = 2.0;
    let (tx0, ty0) = (t.x as f32, t.y as f32);
    let (tx1, ty1) = ((t.x + t.w) as f32, (t.y + t.h) as f32);
    (t.x > 0 && b.x0 <= tx0 + MARGIN)
        || (t.y > 0 && b.y0 <= ty0 + MARGIN)
        || (t.x + t.w < w && b.x1 >= tx1 - MARGIN)
        || (t.y + t.h < h && b.y1 >= ty1 - MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BoxF;

    #[test]
    fn small_images_are_not_tiled() {
        assert!(tiles(300, 300).is_empty());
        assert!(tiles(640, 480).is_empty());
        assert!(tiles(768, 768).is_empty()); // one tile = whole image
    }

    #[test]
    fn wide_image_gets_overlapping_square_tiles() {
        let t = tiles(3000, 1000);
        assert_eq!(t.len(), 4);
        assert!(t.iter().all(|t| t.w == 1000 && t.h == 1000 && t.y == 0));
        assert_eq!(t[0].x, 0);
        assert_eq!(t.last().unwrap().x, 2000);
        for p in t.windows(2) {
            let overlap = p[0].x + p[0].w - p[1].x;
            assert!(overlap >= 250, "{overlap}");
        }
    }

    #[test]
    fn huge_image_is_capped() {
        let t = tiles(8000, 6000);
        assert!(!t.is_empty() && t.len() <= MAX_TILES, "{}", t.len());
        // Covers the whole image.
        assert!(t.iter().any(|t| t.x + t.w == 8000 && t.y + t.h == 6000));
    }

    #[test]
    fn cut_detection() {
        let t = Tile {
            x: 1000,
            y: 0,
            w: 1000,
            h: 1000,
        };
        let inside = BoxF {
            x0: 1100.0,
            y0: 0.0,
            x1: 1500.0,
            y1: 1000.0,
        };
        assert!(!cut_by_tile(&inside, &t, 3000, 1000)); // top/bottom are image edges
        let left = BoxF {
            x0: 1000.0,
            y0: 10.0,
            x1: 1200.0,
            y1: 200.0,
        };
        assert!(cut_by_tile(&left, &t, 3000, 1000));
        let right = BoxF {
            x0: 1800.0,
            y0: 10.0,
            x1: 2000.0,
            y1: 200.0,
        };
        assert!(cut_by_tile(&right, &t, 3000, 1000));
        let last = Tile {
            x: 2000,
            y: 0,
            w: 1000,
            h: 1000,
        };
        let at_image_edge = BoxF {
            x0: 2500.0,
            y0: 10.0,
            x1: 3000.0,
            y1: 200.0,
        };
        assert!(!cut_by_tile(&at_image_edge, &last, 3000, 1000));
    }
}
