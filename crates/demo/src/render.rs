//! The synthetic scenes, drawn straight into I420 (YUV 4:2:0) buffers
//! with a few primitives (rectangles, ellipses, a 5x7 digit font).
//!
//! Everything is a pure function of the time: [`render`] at the same
//! instant gives the same picture, bit for bit (the "sensor noise" is a
//! hash of the time and the pixel position).

use crate::sprites;
use crate::Scene;

/// Width and height of every demo picture.
pub const WIDTH: usize = 640;
pub const HEIGHT: usize = 360;
/// Length of one loop of a scene.
pub const LOOP_MS: i64 = 60_000;

/// A YUV colour (BT.601, limited range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Yuv(pub u8, pub u8, pub u8);

/// BT.601 limited-range RGB → YUV.
pub const fn rgb(r: u8, g: u8, b: u8) -> Yuv {
    let (r, g, b) = (r as i32, g as i32, b as i32);
    let y = 16 + ((66 * r + 129 * g + 25 * b + 128) >> 8);
    let u = 128 + ((-38 * r - 74 * g + 112 * b + 128) >> 8);
    let v = 128 + ((112 * r - 94 * g - 18 * b + 128) >> 8);
    Yuv(y as u8, u as u8, v as u8)
}

/// A planar I420 picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl Image {
    /// A black picture; `width` and `height` must be even.
    pub fn new(width: usize, height: usize) -> Image {
        assert!(
            width.is_multiple_of(2) && height.is_multiple_of(2),
            "I420 needs even sizes"
        );
        Image {
            width,
            height,
            y: vec![16; width * height],
            u: vec![128; width * height / 4],
            v: vec![128; width * height / 4],
        }
    }

    /// Writes this picture at half its width and height into `out` (a 2x2
    /// box filter on every plane), as a camera derives its sub-stream.
    /// `out` must be exactly half the size (sizes divisible by 4).
    pub fn downscale_half_into(&self, out: &mut Image) {
        assert_eq!(
            (out.width * 2, out.height * 2),
            (self.width, self.height),
            "the output must be half the size"
        );
        fn half(src: &[u8], sw: usize, dst: &mut [u8], dw: usize) {
            for (dy, row) in dst.chunks_exact_mut(dw).enumerate() {
                let (a, b) = (&src[2 * dy * sw..], &src[(2 * dy + 1) * sw..]);
                for (dx, px) in row.iter_mut().enumerate() {
                    let sum = u16::from(a[2 * dx])
                        + u16::from(a[2 * dx + 1])
                        + u16::from(b[2 * dx])
                        + u16::from(b[2 * dx + 1]);
                    *px = ((sum + 2) / 4) as u8;
                }
            }
        }
        half(&self.y, self.width, &mut out.y, out.width);
        half(&self.u, self.width / 2, &mut out.u, out.width / 2);
        half(&self.v, self.width / 2, &mut out.v, out.width / 2);
    }

    /// Fills `[x0, x1) × [y0, y1)`, clipped to the picture.
    pub fn rect(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, c: Yuv) {
        let (w, h) = (self.width as i32, self.height as i32);
        let (x0c, x1c) = (x0.clamp(0, w), x1.clamp(0, w));
        let (y0c, y1c) = (y0.clamp(0, h), y1.clamp(0, h));
        if x0c >= x1c || y0c >= y1c {
            return;
        }
        for row in y0c..y1c {
            let at = row as usize * self.width;
            self.y[at + x0c as usize..at + x1c as usize].fill(c.0);
        }
        // Chroma samples whose centre (2i+1, 2j+1) lies inside.
        let cw = self.width / 2;
        let (cx0, cx1) = ((x0c) / 2, (x1c) / 2);
        let (cy0, cy1) = ((y0c) / 2, (y1c) / 2);
        for row in cy0..cy1 {
            let at = row as usize * cw;
            self.u[at + cx0 as usize..at + cx1 as usize].fill(c.1);
            self.v[at + cx0 as usize..at + cx1 as usize].fill(c.2);
        }
    }

    /// Fills the ellipse centred at (cx, cy) with radii (rx, ry).
    pub fn ellipse(&mut self, cx: i32, cy: i32, rx: i32, ry: i32, c: Yuv) {
        if rx <= 0 || ry <= 0 {
            return;
        }
        let inside = |x: f32, y: f32| {
            let dx = (x - cx as f32) / rx as f32;
            let dy = (y - cy as f32) / ry as f32;
            dx * dx + dy * dy <= 1.0
        };
        let (w, h) = (self.width as i32, self.height as i32);
        for row in (cy - ry).max(0)..(cy + ry + 1).min(h) {
            for col in (cx - rx).max(0)..(cx + rx + 1).min(w) {
                if inside(col as f32 + 0.5, row as f32 + 0.5) {
                    self.y[row as usize * self.width + col as usize] = c.0;
                }
            }
        }
        let cw = self.width / 2;
        for row in ((cy - ry) / 2).max(0)..((cy + ry) / 2 + 1).min(h / 2) {
            for col in ((cx - rx) / 2).max(0)..((cx + rx) / 2 + 1).min(w / 2) {
                if inside(col as f32 * 2.0 + 1.0, row as f32 * 2.0 + 1.0) {
                    self.u[row as usize * cw + col as usize] = c.1;
                    self.v[row as usize * cw + col as usize] = c.2;
                }
            }
        }
    }

    /// Mean luma of `[x0, x1) × [y0, y1)` (for tests and checks).
    pub fn mean_luma(&self, x0: usize, y0: usize, x1: usize, y1: usize) -> f64 {
        mean_luma(&self.y, self.width, x0, y0, x1, y1)
    }
}

/// Mean of a rectangle of a luma plane with row stride `stride`.
pub fn mean_luma(plane: &[u8], stride: usize, x0: usize, y0: usize, x1: usize, y1: usize) -> f64 {
    let mut sum = 0u64;
    for row in y0..y1 {
        sum += plane[row * stride + x0..row * stride + x1]
            .iter()
            .map(|&b| u64::from(b))
            .sum::<u64>();
    }
    sum as f64 / ((x1 - x0) * (y1 - y0)) as f64
}

// ---------------------------------------------------------------------------
// Colours.

const WALL: Yuv = rgb(214, 196, 160);
const SIDING: Yuv = rgb(190, 172, 138);
const WHITE: Yuv = rgb(240, 240, 236);
const GLASS: Yuv = rgb(110, 140, 165);
const DOOR: Yuv = rgb(101, 60, 30);
const DOOR_PANEL: Yuv = rgb(84, 48, 22);
const BRASS: Yuv = rgb(212, 175, 55);
const STEP: Yuv = rgb(150, 150, 148);
const STEP_EDGE: Yuv = rgb(120, 120, 118);
const FLOOR: Yuv = rgb(120, 100, 80);
const MAT: Yuv = rgb(110, 30, 30);
const LAMP: Yuv = rgb(30, 30, 30);
const LAMP_GLOW: Yuv = rgb(250, 230, 160);

const SKY: Yuv = rgb(150, 185, 215);
const HOUSE: Yuv = rgb(185, 175, 165);
const GARAGE: Yuv = rgb(225, 225, 220);
const GARAGE_LINE: Yuv = rgb(195, 195, 190);
const ROOF: Yuv = rgb(90, 60, 55);
const LAWN: Yuv = rgb(70, 130, 60);
const ASPHALT: Yuv = rgb(85, 85, 90);
const CAR: Yuv = rgb(230, 190, 40);
const CAR_DARK: Yuv = rgb(200, 160, 30);
const WINDOW: Yuv = rgb(170, 200, 220);
const CAR_GLASS: Yuv = rgb(60, 80, 100);
const TYRE: Yuv = rgb(20, 20, 20);
const HUB: Yuv = rgb(160, 160, 165);
const HEADLIGHT: Yuv = rgb(250, 250, 200);
const TAILLIGHT: Yuv = rgb(200, 20, 20);

// Layout of the front door scene (shared with the tests).
/// Where the parcel rests on the step.
pub const PARCEL_AT: (i32, i32, i32, i32) = (400, 207, 510, 292);
/// Where the resident stands to pick the parcel up (feet x).
pub const RESIDENT_AT_STEP_X: i32 = 560;
/// Where the visitor stands while at the door (feet x).
pub const VISITOR_AT_DOOR_X: i32 = 330;
/// The parked car's left edge in the driveway scene.
pub const CAR_PARKED_X: i32 = 210;

/// The parts of a scene that never move.
pub fn background(scene: Scene) -> Image {
    let mut img = Image::new(WIDTH, HEIGHT);
    match scene {
        Scene::FrontDoor => {
            img.rect(0, 0, 640, 300, WALL);
            for y in (12..300).step_by(24) {
                img.rect(0, y, 640, y + 2, SIDING);
            }
            // Window.
            img.rect(60, 70, 210, 200, WHITE);
            img.rect(68, 78, 202, 192, GLASS);
            img.rect(132, 78, 138, 192, WHITE);
            img.rect(68, 132, 202, 138, WHITE);
            // Door with frame, panels and knob.
            img.rect(372, 72, 488, 292, WHITE);
            img.rect(380, 80, 480, 292, DOOR);
            img.rect(392, 94, 468, 170, DOOR_PANEL);
            img.rect(392, 190, 468, 278, DOOR_PANEL);
            img.ellipse(466, 184, 5, 5, BRASS);
            // Lamp.
            img.rect(512, 110, 526, 140, LAMP);
            img.ellipse(519, 126, 5, 9, LAMP_GLOW);
            // Step, porch floor, mat.
            img.rect(350, 292, 510, 312, STEP);
            img.rect(350, 310, 510, 314, STEP_EDGE);
            img.rect(0, 312, 640, 360, FLOOR);
            img.rect(0, 300, 350, 312, FLOOR);
            img.rect(510, 300, 640, 312, FLOOR);
            for x in (0..640).step_by(80) {
                img.rect(x, 312, x + 2, 360, DOOR_PANEL);
            }
            img.rect(392, 286, 468, 292, MAT);
        }
        Scene::Driveway => {
            img.rect(0, 0, 640, 40, SKY);
            img.rect(0, 40, 640, 60, ROOF);
            img.rect(0, 60, 640, 230, HOUSE);
            img.rect(150, 80, 530, 230, GARAGE);
            for y in (100..230).step_by(26) {
                img.rect(150, y, 530, y + 3, GARAGE_LINE);
            }
            img.rect(40, 110, 110, 170, WINDOW);
            img.rect(40, 138, 110, 142, WHITE);
            img.rect(0, 230, 640, 250, LAWN);
            img.rect(0, 250, 640, 360, ASPHALT);
            for x in (20..640).step_by(90) {
                img.rect(x, 330, x + 40, 334, rgb(200, 200, 200));
            }
        }
    }
    img
}

/// Smoothstep between 0 and 1.
fn ease(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// Pastes a person sprite standing with feet at `(x, feet_y)` (x is the
/// middle); `bob` lifts it a little while walking.
fn person(img: &mut Image, sprite: &sprites::Sprite, x: i32, feet_y: i32, bob: f64) {
    let lift = (bob.abs() * 3.0) as i32;
    sprites::blit(
        img,
        sprite,
        x - sprite.width as i32 / 2,
        feet_y - sprite.height as i32 - lift,
    );
}

fn parcel(img: &mut Image, x0: i32, y0: i32) {
    sprites::blit(img, sprites::parcel(), x0, y0);
}

/// The front door: a visitor brings a parcel and leaves it on the step;
/// later the resident comes out and takes it in.
fn front_door(img: &mut Image, t: f64) {
    // 0–5 s: empty. 5–15 s: the visitor walks in with the parcel. 15–22 s:
    // at the door, the parcel goes down onto the step around 17–18.5 s.
    // 22–32 s: the visitor walks away. 42–48 s: the resident walks in from
    // the right; 48–50 s: picks the parcel up (gone from the step at
    // 49 s); 50–58 s: walks away with it.
    let feet_y = 340;
    let (pw, ph) = (sprites::PARCEL_SIZE.0 as i32, sprites::PARCEL_SIZE.1 as i32);
    let on_step = (18.5..49.0).contains(&t);
    if on_step {
        parcel(img, PARCEL_AT.0, PARCEL_AT.1);
    }
    let walk = |t: f64| (t * std::f64::consts::TAU * 0.9).sin();
    let visitor = sprites::visitor();
    let resident = sprites::resident();
    // Carried: held in front of the body, at hip height.
    let carried = |img: &mut Image, x: i32| parcel(img, x - pw / 2, feet_y - 120 - ph / 2);
    if (5.0..15.0).contains(&t) {
        let x = -40.0 + (VISITOR_AT_DOOR_X as f64 + 40.0) * ((t - 5.0) / 10.0);
        person(img, visitor, x as i32, feet_y, walk(t));
        carried(img, x as i32 + 30);
    } else if (15.0..22.0).contains(&t) {
        person(img, visitor, VISITOR_AT_DOOR_X, feet_y, 0.0);
        if t < 18.5 {
            // From the hands down onto the step.
            let k = ((t - 17.0) / 1.5).clamp(0.0, 1.0);
            let x0 = VISITOR_AT_DOOR_X + 30 - pw / 2;
            let y0 = feet_y - 120 - ph / 2;
            let x = x0 + ((PARCEL_AT.0 - x0) as f64 * k) as i32;
            let y = y0 + ((PARCEL_AT.1 - y0) as f64 * k) as i32;
            parcel(img, x, y);
        }
    } else if (22.0..32.0).contains(&t) {
        let x = VISITOR_AT_DOOR_X as f64 - (VISITOR_AT_DOOR_X as f64 + 60.0) * ((t - 22.0) / 10.0);
        person(img, visitor, x as i32, feet_y, walk(t));
    } else if (42.0..48.0).contains(&t) {
        let x = 690.0 - (690.0 - RESIDENT_AT_STEP_X as f64) * ((t - 42.0) / 6.0);
        person(img, resident, x as i32, feet_y, walk(t));
    } else if (48.0..50.0).contains(&t) {
        person(img, resident, RESIDENT_AT_STEP_X, feet_y, 0.0);
        if t >= 49.0 {
            carried(img, RESIDENT_AT_STEP_X - 30);
        }
    } else if (50.0..58.0).contains(&t) {
        let x =
            RESIDENT_AT_STEP_X as f64 + (700.0 - RESIDENT_AT_STEP_X as f64) * ((t - 50.0) / 8.0);
        person(img, resident, x as i32, feet_y, walk(t));
        carried(img, x as i32 - 30);
    }
}

/// The car's left edge at loop time `t`, if it is in the picture.
pub fn car_x(t: f64) -> Option<i32> {
    // 0–5 s: empty. 5–15 s: drives in from the right. 15–45 s: parked.
    // 45–53 s: drives out to the right. 53–60 s: empty.
    let far = 680.0;
    let parked = CAR_PARKED_X as f64;
    let x = if (5.0..15.0).contains(&t) {
        far + (parked - far) * ease((t - 5.0) / 10.0)
    } else if (15.0..45.0).contains(&t) {
        parked
    } else if (45.0..53.0).contains(&t) {
        parked + (far - parked) * ease((t - 45.0) / 8.0)
    } else {
        return None;
    };
    Some(x as i32)
}

fn driveway(img: &mut Image, t: f64) {
    let Some(x) = car_x(t) else { return };
    let base = 300;
    // Body, cabin, windows.
    img.rect(x, base - 50, x + 230, base, CAR);
    img.rect(x + 45, base - 92, x + 175, base - 48, CAR_DARK);
    img.rect(x + 55, base - 84, x + 105, base - 52, CAR_GLASS);
    img.rect(x + 113, base - 84, x + 165, base - 52, CAR_GLASS);
    img.rect(x, base - 40, x + 6, base - 30, HEADLIGHT);
    img.rect(x + 224, base - 40, x + 230, base - 30, TAILLIGHT);
    // Wheels with a turning spoke.
    let turn = x as f64 / 22.0;
    for wx in [x + 50, x + 180] {
        img.ellipse(wx, base, 24, 24, TYRE);
        img.ellipse(wx, base, 11, 11, HUB);
        let (s, c) = turn.sin_cos();
        let (sx, sy) = ((c * 8.0) as i32, (s * 8.0) as i32);
        img.rect(wx + sx - 2, base + sy - 2, wx + sx + 2, base + sy + 2, TYRE);
    }
}

/// Light level (0.78…1.0) at `unix_ms`: slow, like passing clouds.
pub fn light_level(unix_ms: i64) -> f64 {
    let s = unix_ms as f64 / 1000.0;
    0.89 + 0.07 * (s * std::f64::consts::TAU / 47.0).sin()
        + 0.04 * (s * std::f64::consts::TAU / 13.0).sin()
}

/// Renders `scene` at `unix_ms` into `img`, starting from `bg` (the
/// scene's [`background`]). `utc_offset_s` only moves the clock overlay.
pub fn render_onto(img: &mut Image, bg: &Image, scene: Scene, unix_ms: i64, utc_offset_s: i32) {
    img.y.copy_from_slice(&bg.y);
    img.u.copy_from_slice(&bg.u);
    img.v.copy_from_slice(&bg.v);
    let t = unix_ms.rem_euclid(LOOP_MS) as f64 / 1000.0;
    match scene {
        Scene::FrontDoor => front_door(img, t),
        Scene::Driveway => driveway(img, t),
    }
    light_and_noise(&mut img.y, unix_ms);
    clock_overlay(img, unix_ms, utc_offset_s);
}

/// Sensor noise values plus 2 (so 0..=4), mostly 2: a fixed table, read
/// from an offset that depends on the time.
fn noise_table() -> &'static [u8] {
    static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        (0..NOISE_LEN)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                [2u8, 2, 3, 1, 2, 4, 0, 2][(x >> 61) as usize]
            })
            .collect()
    })
}

const NOISE_LEN: usize = 1 << 18;

/// Scales the luma plane by the light level and adds mild noise (±2).
/// Eight pixels at a time in a `u64`: bytes are 16..=235 (limited range),
/// so scaling in 16-bit lanes and adding at most 4 + 4 per byte never
/// carries into a neighbour, and subtracting 2 never borrows.
fn light_and_noise(y: &mut [u8], unix_ms: i64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LANES: u64 = 0x00ff_00ff_00ff_00ff;
    let g = (light_level(unix_ms).clamp(0.0, 1.0) * 256.0) as u64;
    // (y - 16) * g / 256 + 16 == y * g / 256 + (16 - 16 * g / 256)
    let lift = (16 - ((16 * g) >> 8)) * ONES;
    let table = noise_table();
    let start = (unix_ms as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    let mut at = (start as usize % NOISE_LEN) & !7;
    for px in y.chunks_exact_mut(8) {
        let w = u64::from_le_bytes(px.try_into().unwrap());
        let even = (((w & LANES) * g) >> 8) & LANES;
        let odd = ((((w >> 8) & LANES) * g) >> 8) & LANES;
        let noise = u64::from_le_bytes(table[at..at + 8].try_into().unwrap());
        let out = (even | (odd << 8)) + lift + noise - 2 * ONES;
        px.copy_from_slice(&out.to_le_bytes());
        at = (at + 8) % NOISE_LEN;
    }
}

/// Renders `scene` at `unix_ms` into a new picture.
pub fn render(scene: Scene, unix_ms: i64, utc_offset_s: i32) -> Image {
    let bg = background(scene);
    let mut img = bg.clone();
    render_onto(&mut img, &bg, scene, unix_ms, utc_offset_s);
    img
}

// ---------------------------------------------------------------------------
// The clock overlay.

/// 5x7 glyphs for `0`–`9`, `-`, `:` (bit 4 = leftmost column).
const GLYPHS: [[u8; 7]; 12] = [
    [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
    [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
    [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
    [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
    [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
    [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
    [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
    [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
    [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
    [0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00],
    [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00],
];

fn clock_overlay(img: &mut Image, unix_ms: i64, utc_offset_s: i32) {
    let secs = unix_ms.div_euclid(1000) + i64::from(utc_offset_s);
    let Ok(ts) = jiff::Timestamp::from_second(secs) else {
        return;
    };
    let text = ts.strftime("%Y-%m-%d %H:%M:%S").to_string();
    let (x0, y0, scale) = (10, 10, 2);
    let w = text.len() as i32 * 6 * scale + 8;
    img.rect(
        x0 - 4,
        y0 - 4,
        x0 + w - 4,
        y0 + 7 * scale + 4,
        Yuv(30, 128, 128),
    );
    for (i, ch) in text.chars().enumerate() {
        let g = match ch {
            '0'..='9' => GLYPHS[ch as usize - '0' as usize],
            '-' => GLYPHS[10],
            ':' => GLYPHS[11],
            _ => continue,
        };
        let cx = x0 + i as i32 * 6 * scale;
        for (row, bits) in g.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    let (px, py) = (cx + col * scale, y0 + row as i32 * scale);
                    img.rect(px, py, px + scale, py + scale, Yuv(235, 128, 128));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A time whose loop position is `s` seconds.
    fn at(s: f64) -> i64 {
        1_800_000_000_000 - 1_800_000_000_000 % LOOP_MS + (s * 1000.0) as i64
    }

    #[test]
    fn downscaling_halves_and_averages() {
        let mut img = Image::new(8, 4);
        img.y = (0..32).map(|i| (i * 7) as u8).collect();
        img.u = vec![100; 8];
        img.v = vec![200; 8];
        let mut half = Image::new(4, 2);
        img.downscale_half_into(&mut half);
        // Top-left output pixel: mean of y[0], y[1], y[8], y[9].
        // (y[0] is 0.)
        assert_eq!(half.y[0], ((7 + 56 + 63 + 2) / 4) as u8);
        assert_eq!(half.y[7], ((7 * (22 + 23 + 30 + 31) + 2) / 4) as u8);
        assert_eq!((half.u[0], half.v[1]), (100, 200));
        let full = render(Scene::FrontDoor, at(10.0), 0);
        let mut sub = Image::new(WIDTH / 2, HEIGHT / 2);
        full.downscale_half_into(&mut sub);
        let (a, b) = (
            full.mean_luma(0, 0, WIDTH, HEIGHT),
            sub.mean_luma(0, 0, WIDTH / 2, HEIGHT / 2),
        );
        assert!(
            (a - b).abs() < 1.0,
            "same scene, same brightness: {a} vs {b}"
        );
    }

    #[test]
    fn deterministic_given_a_time() {
        for scene in Scene::ALL {
            assert_eq!(render(scene, at(10.0), 0), render(scene, at(10.0), 0));
            assert_ne!(render(scene, at(10.0), 0), render(scene, at(10.1), 0));
        }
    }

    #[test]
    fn colours() {
        assert_eq!(rgb(0, 0, 0), Yuv(16, 128, 128));
        assert_eq!(rgb(255, 255, 255), Yuv(235, 128, 128));
        let red = rgb(255, 0, 0);
        assert!(red.2 > 200 && red.1 < 128, "{red:?}");
    }

    #[test]
    fn the_visitor_comes_and_the_parcel_stays() {
        let (x0, y0, x1, y1) = PARCEL_AT;
        let parcel_luma = |s: f64| {
            render(Scene::FrontDoor, at(s), 0).mean_luma(
                x0 as usize,
                y0 as usize,
                x1 as usize,
                y1 as usize,
            )
        };
        // Before the delivery the door and step are there; after it, the box.
        let before = parcel_luma(3.0);
        for s in [20.0, 40.0, 48.5] {
            let after = parcel_luma(s);
            assert!(
                (after - before).abs() > 8.0,
                "at {s} s: {after} vs {before}"
            );
        }
        // The resident took it in.
        assert!((parcel_luma(55.0) - before).abs() < 4.0);
        // The visitor stands at the door at 16 s, not at 3 s or 40 s: the
        // region in front of the door differs from the same rows of wall
        // further left only while someone stands there.
        let contrast = |s: f64| {
            let img = render(Scene::FrontDoor, at(s), 0);
            let x = VISITOR_AT_DOOR_X as usize;
            img.mean_luma(x - 15, 230, x + 15, 270) - img.mean_luma(250, 230, 280, 270)
        };
        assert!(contrast(16.0).abs() > 30.0, "{}", contrast(16.0));
        assert!(contrast(3.0).abs() < 4.0, "{}", contrast(3.0));
        assert!(contrast(40.0).abs() < 4.0, "{}", contrast(40.0));
    }

    #[test]
    fn the_car_parks_and_leaves() {
        assert_eq!(car_x(2.0), None);
        assert_eq!(car_x(30.0), Some(CAR_PARKED_X));
        assert!(car_x(10.0).unwrap() > CAR_PARKED_X);
        assert_eq!(car_x(55.0), None);
        let x = CAR_PARKED_X as usize;
        let body = |s: f64| render(Scene::Driveway, at(s), 0).mean_luma(x + 80, 255, x + 150, 295);
        assert!(
            body(30.0) - body(2.0) > 50.0,
            "{} {}",
            body(30.0),
            body(2.0)
        );
    }

    #[test]
    fn light_changes_slowly() {
        let a = light_level(0);
        let b = light_level(66);
        assert!((a - b).abs() < 0.01);
        let range: Vec<f64> = (0..600).map(|i| light_level(i * 1000)).collect();
        let (lo, hi) = range
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        assert!(lo >= 0.77 && hi <= 1.0 && hi - lo > 0.1, "{lo} {hi}");
    }
}
