//! Pictures pasted into the demo scenes so that the real object detector
//! recognises them: a person cut out of a public-domain photograph
//! (`assets/visitor.png`, from darknet's `data/person.jpg`, see
//! `assets/NOTICE`), and a cardboard box drawn with light and shade.
//!
//! Flat drawn shapes (the scenes' first figures) score around 0.3 with the
//! SSD-MobileNetV2 detector — below any sensible threshold — whereas the
//! photograph scores above 0.6 and the shaded box around 0.5, so the demo's
//! "person at the door" and "package delivered" events come from the same
//! detector a real camera goes through, not from a shortcut.

use std::sync::OnceLock;

use crate::render::Image;

/// An RGBA picture.
pub struct Sprite {
    pub width: usize,
    pub height: usize,
    /// Row-major RGBA.
    pub rgba: Vec<u8>,
}

const VISITOR_PNG: &[u8] = include_bytes!("../assets/visitor.png");

/// Height of a standing person in the front-door scene, in pixels.
pub const PERSON_HEIGHT: usize = 186;

/// The visitor, scaled to stand [`PERSON_HEIGHT`] pixels tall.
pub fn visitor() -> &'static Sprite {
    static S: OnceLock<Sprite> = OnceLock::new();
    S.get_or_init(|| {
        let img = image::load_from_memory_with_format(VISITOR_PNG, image::ImageFormat::Png)
            .expect("the vendored sprite is a valid PNG")
            .to_rgba8();
        let h = PERSON_HEIGHT as u32;
        let w = (img.width() * h / img.height()).max(1);
        let img = image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
        Sprite {
            width: w as usize,
            height: h as usize,
            rgba: img.into_raw(),
        }
    })
}

/// The resident: the visitor in a red jacket, facing the other way.
pub fn resident() -> &'static Sprite {
    static S: OnceLock<Sprite> = OnceLock::new();
    S.get_or_init(|| {
        let v = visitor();
        let mut rgba = vec![0u8; v.rgba.len()];
        for y in 0..v.height {
            for x in 0..v.width {
                let src = (y * v.width + (v.width - 1 - x)) * 4;
                let dst = (y * v.width + x) * 4;
                let (r, g, b, a) = (
                    v.rgba[src],
                    v.rgba[src + 1],
                    v.rgba[src + 2],
                    v.rgba[src + 3],
                );
                // Blue jacket → red jacket.
                let (r, g, b) = if b as i32 > r as i32 + 40 {
                    (b, g / 2, r)
                } else {
                    (r, g, b)
                };
                rgba[dst..dst + 4].copy_from_slice(&[r, g, b, a]);
            }
        }
        Sprite {
            width: v.width,
            height: v.height,
            rgba,
        }
    })
}

/// Size of the parcel in the front-door scene.
pub const PARCEL_SIZE: (usize, usize) = (110, 85);

/// A cardboard box: a front face, a lighter top and a darker side, tape
/// over the top and down the front, a white shipping label.
pub fn parcel() -> &'static Sprite {
    static S: OnceLock<Sprite> = OnceLock::new();
    S.get_or_init(|| {
        let (w, h) = PARCEL_SIZE;
        let top = h / 3;
        let side = w / 5;
        let mut rgba = vec![0u8; w * h * 4];
        for y in 0..h {
            for x in 0..w {
                let in_top = y < top && x >= top - y && x < w - side + (top - y).min(side);
                let in_front = y >= top && x < w - side;
                let in_side = x >= w - side && y >= top.saturating_sub(x - (w - side)) && y < h;
                let tape_x = (w - side) / 2;
                let mut c = if in_top {
                    [205, 160, 110]
                } else if in_front {
                    [176, 128, 80]
                } else if in_side {
                    [140, 98, 60]
                } else {
                    continue;
                };
                if (in_top || (in_front && y < top + h / 4)) && x + 4 >= tape_x && x <= tape_x + 4 {
                    c = [222, 200, 160];
                }
                if in_front
                    && x > 8
                    && x + 8 < (w - side) / 2
                    && y > top + h / 3
                    && y < top + h / 3 + h / 5
                {
                    c = [240, 240, 235];
                }
                if in_front && (y == top || x == w - side - 1) {
                    c = [110, 80, 50];
                }
                let i = (y * w + x) * 4;
                rgba[i..i + 4].copy_from_slice(&[c[0], c[1], c[2], 255]);
            }
        }
        Sprite {
            width: w,
            height: h,
            rgba,
        }
    })
}

/// BT.601 limited-range YUV of an RGB colour.
fn yuv(r: u8, g: u8, b: u8) -> (f32, f32, f32) {
    let (r, g, b) = (r as f32, g as f32, b as f32);
    let y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
    let u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
    let v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
    (y, u, v)
}

/// Pastes `s` with its top-left corner at `(x0, y0)`, blending by alpha,
/// clipped to the picture. Chroma is blended per 2x2 block.
pub fn blit(img: &mut Image, s: &Sprite, x0: i32, y0: i32) {
    let (iw, ih) = (img.width as i32, img.height as i32);
    let cw = img.width / 2;
    for sy in 0..s.height as i32 {
        let y = y0 + sy;
        if y < 0 || y >= ih {
            continue;
        }
        for sx in 0..s.width as i32 {
            let x = x0 + sx;
            if x < 0 || x >= iw {
                continue;
            }
            let i = ((sy as usize) * s.width + sx as usize) * 4;
            let a = s.rgba[i + 3] as f32 / 255.0;
            if a <= 0.0 {
                continue;
            }
            let (py, pu, pv) = yuv(s.rgba[i], s.rgba[i + 1], s.rgba[i + 2]);
            let yi = y as usize * img.width + x as usize;
            img.y[yi] = (img.y[yi] as f32 * (1.0 - a) + py * a).round() as u8;
            // One chroma sample per 2x2 block: each of its pixels adds a quarter.
            let ci = (y as usize / 2) * cw + x as usize / 2;
            let q = a / 4.0;
            img.u[ci] = (img.u[ci] as f32 * (1.0 - q) + pu * q).round() as u8;
            img.v[ci] = (img.v[ci] as f32 * (1.0 - q) + pv * q).round() as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sprites_load_and_have_opaque_and_clear_parts() {
        for s in [visitor(), resident(), parcel()] {
            assert_eq!(s.rgba.len(), s.width * s.height * 4);
            let opaque = s.rgba.chunks_exact(4).filter(|p| p[3] == 255).count();
            let clear = s.rgba.chunks_exact(4).filter(|p| p[3] == 0).count();
            assert!(opaque > s.width * s.height / 5, "mostly there");
            assert!(clear > 0, "not a rectangle");
        }
        assert_eq!(visitor().height, PERSON_HEIGHT);
    }

    #[test]
    fn blit_changes_only_covered_pixels_and_clips() {
        let mut img = Image::new(64, 64);
        let before = img.y.clone();
        let s = parcel();
        blit(&mut img, s, 40, 40); // mostly outside: clipped, no panic
        blit(&mut img, s, -200, -200); // entirely outside
        let changed: Vec<usize> = (0..img.y.len())
            .filter(|&i| img.y[i] != before[i])
            .collect();
        assert!(!changed.is_empty());
        assert!(changed.iter().all(|&i| i % 64 >= 40 && i / 64 >= 40));
    }
}
