//! Motion detection on a small luma plane (about 320 columns), with the
//! camera's zones and masks, and the ON/OFF hysteresis MQTT's
//! `porchlight/<camera>/motion` is built on. The design and the reasons for
//! the defaults are in `design/detection.md` ("Motion").
//!
//! The model, per analysed frame:
//! 1. A per-pixel background: running mean and running variance
//!    (exponential, time-based so the analysis rate does not change its
//!    meaning).
//! 2. A global gain `g`, the median of `luma / background` over unmasked
//!    pixels: slow and moderate light changes (clouds, dusk, auto-exposure
//!    drift) scale the whole picture, so each pixel is compared with
//!    `g · background`, not with the background itself.
//! 3. A pixel has changed when `|luma − g·mean|` exceeds both `k·σ` (its
//!    own noise) and a floor `d_min`; `k` and `d_min` follow the
//!    sensitivity. Masked pixels never change.
//! 4. A sudden global change — the gain jumps by more than 20 % (lights
//!    switched on, IR switching) or more than 60 % of the unmasked picture
//!    changed at once — re-learns the background from this frame and
//!    reports `global_change: true` with no regions for a settle period
//!    (1 s) while the background adapts fast (the camera's exposure
//!    settles).
//! 5. The changed-pixel mask is cleaned by a 3x3 majority filter, split
//!    into 8-connected components, components whose boxes nearly touch are
//!    merged, and those smaller than `min_area` dropped. Each region
//!    reports the zones holding at least [`ZONE_MIN_FRACTION`] of its
//!    changed pixels.
//! 6. The background learns: unchanged pixels with a 4 s time constant,
//!    changed ones with 8 s (a moving figure does not smear into the
//!    background), and a pixel changed for 10 s without a break is taken
//!    into the background at once (what stays still stops being motion).
//!
//! Invariants: never panics on any input (a plane whose size does not
//! match its data is refused by [`MotionDetector::try_analyse`] and gives
//! an empty result from [`MotionDetector::analyse`]); a change of plane
//! size, a time going backwards or a gap of more than 10 s re-learns the
//! background without reporting anything; boxes are normalised
//! `[x0, y0, x1, y1]` within [0, 1].

use serde::{Deserialize, Serialize};

use crate::decode::LumaPlane;
use crate::zones::{self, Zone, ZoneError, ZoneKind};

/// A region names a zone when at least this fraction of its changed
/// pixels lie inside it.
pub const ZONE_MIN_FRACTION: f32 = 0.1;

/// Time constant of the background for unchanged pixels.
const TAU_BG_S: f32 = 4.0;
/// Time constant of the background for changed pixels.
const TAU_FG_S: f32 = 8.0;
/// A pixel changed for this long without a break becomes background at
/// once: what stays still (a parked car, a parcel) stops being motion.
const ABSORB_S: f32 = 10.0;
/// Time constant while settling after a global change or at start.
const TAU_SETTLE_S: f32 = 0.3;
/// How long to settle (no regions) after a global change or at start.
const SETTLE_US: i64 = 1_000_000;
/// A gap in time after which the background is re-learnt.
const MAX_GAP_US: i64 = 10_000_000;
/// A gain jump beyond this (relative) is a global change.
const GLOBAL_GAIN: f32 = 0.2;
/// More than this fraction of unmasked pixels changed is a global change.
const GLOBAL_FRACTION: f32 = 0.6;
/// Initial and bounds of the per-pixel noise variance (levels²).
const VAR_INIT: f32 = 4.0;
const VAR_MIN: f32 = 1.0;
const VAR_MAX: f32 = 900.0;
/// Components whose boxes are within this fraction of the picture's
/// width/height of each other are one region.
const MERGE_GAP: f32 = 0.02;

/// Motion settings of one camera (stored as JSON; every field has a
/// default, unknown fields are refused).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MotionConfig {
    /// 0 (only strong changes) ..= 1 (faint changes); default 0.5.
    pub sensitivity: f32,
    /// The smallest region reported, as a fraction of the picture's area;
    /// default 0.002 (about a 26x26 px patch of a 640x360 picture).
    pub min_area: f32,
    /// Width of the analysed luma plane (16..=1920); default 320. The
    /// plane is `frame.luma_scaled(analysis_width)`, as
    /// [`MotionDetector::analyse_frame`] makes it.
    pub analysis_width: u32,
    /// Named zones and masks.
    pub zones: Vec<Zone>,
}

impl Default for MotionConfig {
    fn default() -> Self {
        MotionConfig {
            sensitivity: 0.5,
            min_area: 0.002,
            analysis_width: 320,
            zones: Vec::new(),
        }
    }
}

impl MotionConfig {
    /// Checks every field and zone; the error names what is wrong.
    pub fn validate(&self) -> Result<(), MotionError> {
        if !(self.sensitivity.is_finite() && (0.0..=1.0).contains(&self.sensitivity)) {
            return Err(MotionError::Config(format!(
                "sensitivity {} is outside 0..=1",
                self.sensitivity
            )));
        }
        if !(self.min_area.is_finite() && (0.0..1.0).contains(&self.min_area)) {
            return Err(MotionError::Config(format!(
                "min_area {} is outside 0..1 (a fraction of the picture's area)",
                self.min_area
            )));
        }
        if !(16..=1920).contains(&self.analysis_width) {
            return Err(MotionError::Config(format!(
                "analysis_width {} is outside 16..=1920",
                self.analysis_width
            )));
        }
        zones::validate_zones(&self.zones)?;
        Ok(())
    }
}

/// Why motion detection cannot be set up or run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MotionError {
    #[error("motion config: {0}")]
    Config(String),
    #[error("motion config: {0}")]
    Zone(#[from] ZoneError),
    #[error("luma plane {w}x{h} holds {len} bytes, expected w*h > 0")]
    BadPlane { w: u32, h: u32, len: usize },
}

/// One region of motion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// `[x0, y0, x1, y1]`, normalised to the picture (0..1).
    pub bbox: [f32; 4],
    /// Changed pixels as a fraction of the picture's area.
    pub area: f32,
    /// The include zones holding at least [`ZONE_MIN_FRACTION`] of its
    /// changed pixels, in configuration order.
    pub zones: Vec<String>,
}

/// What one analysed frame showed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MotionResult {
    /// At least one region.
    pub motion: bool,
    /// Largest first.
    pub regions: Vec<Region>,
    /// The whole picture changed at once (lights, IR switching): the
    /// background is being re-learnt and no regions are reported.
    pub global_change: bool,
}

/// Motion detection for one camera. Feed it the luma planes of the
/// analysed frames in time order.
pub struct MotionDetector {
    cfg: MotionConfig,
    /// Threshold in noise standard deviations, squared.
    k2: f32,
    /// Threshold floor in luma levels.
    d_min: f32,
    model: Option<Model>,
}

impl std::fmt::Debug for MotionDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotionDetector")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// The state tied to one plane size.
struct Model {
    w: usize,
    h: usize,
    mean: Vec<f32>,
    var: Vec<f32>,
    /// How long each pixel has been changed without a break (s).
    age: Vec<f32>,
    masked: Vec<bool>,
    unmasked: usize,
    /// (name, cells) of the include zones.
    zones: Vec<(String, Vec<bool>)>,
    changed: Vec<u8>,
    clean: Vec<u8>,
    seen: Vec<bool>,
    last_t: i64,
    /// Settling (no regions) until then.
    settle_until: i64,
    /// The settle period follows a global change (not the start).
    settle_global: bool,
}

impl MotionDetector {
    /// A detector with `cfg`, checked.
    pub fn new(cfg: MotionConfig) -> Result<MotionDetector, MotionError> {
        cfg.validate()?;
        let s = cfg.sensitivity;
        let k = 2.5 + 5.0 * (1.0 - s);
        Ok(MotionDetector {
            k2: k * k,
            d_min: 6.0 + 24.0 * (1.0 - s),
            cfg,
            model: None,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &MotionConfig {
        &self.cfg
    }

    /// Forgets the background: the next frame starts learning afresh.
    pub fn reset(&mut self) {
        self.model = None;
    }

    /// Replaces the configuration (checked first; on error the old one
    /// stays). The background is learnt afresh with the new zones.
    pub fn set_config(&mut self, cfg: MotionConfig) -> Result<(), MotionError> {
        *self = MotionDetector::new(cfg)?;
        Ok(())
    }

    /// Analyses a decoded frame: its luma plane at the configured
    /// `analysis_width`, then [`MotionDetector::analyse`].
    pub fn analyse_frame(&mut self, frame: &crate::decode::Frame, t_us: i64) -> MotionResult {
        let luma = frame.luma_scaled(self.cfg.analysis_width);
        self.analyse(&luma, t_us)
    }

    /// [`MotionDetector::try_analyse`], with an empty result for a plane
    /// whose size does not match its data.
    pub fn analyse(&mut self, luma: &LumaPlane, t_us: i64) -> MotionResult {
        self.try_analyse(luma, t_us).unwrap_or_default()
    }

    /// Analyses the frame shown at `t_us` (microseconds, any epoch, rising).
    pub fn try_analyse(
        &mut self,
        luma: &LumaPlane,
        t_us: i64,
    ) -> Result<MotionResult, MotionError> {
        let (w, h) = (luma.w as usize, luma.h as usize);
        if w == 0 || h == 0 || luma.data.len() != w * h {
            return Err(MotionError::BadPlane {
                w: luma.w,
                h: luma.h,
                len: luma.data.len(),
            });
        }
        let fresh = match &self.model {
            Some(m) => {
                m.w != w
                    || m.h != h
                    || t_us < m.last_t
                    || t_us.saturating_sub(m.last_t) > MAX_GAP_US
            }
            None => true,
        };
        if fresh {
            self.model = Some(self.new_model(luma, t_us));
            return Ok(MotionResult::default());
        }
        let (k2, d_min, min_area) = (self.k2, self.d_min, self.cfg.min_area);
        let m = self.model.as_mut().expect("checked above");
        let dt = (t_us - m.last_t) as f32 / 1e6;
        m.last_t = t_us;
        let x = &luma.data;

        if t_us < m.settle_until {
            m.learn_all(x, dt, TAU_SETTLE_S);
            return Ok(MotionResult {
                global_change: m.settle_global,
                ..MotionResult::default()
            });
        }

        let g = m.gain(x);
        if (g - 1.0).abs() > GLOBAL_GAIN {
            m.relearn(x, t_us);
            return Ok(global());
        }

        // Changed pixels, and the background update.
        let a_bg = 1.0 - (-dt / TAU_BG_S).exp();
        let a_fg = 1.0 - (-dt / TAU_FG_S).exp();
        let mut changed_count = 0usize;
        for (((((&p, mean), var), age), &masked), ch) in x
            .iter()
            .zip(m.mean.iter_mut())
            .zip(m.var.iter_mut())
            .zip(m.age.iter_mut())
            .zip(&m.masked)
            .zip(m.changed.iter_mut())
        {
            let xi = f32::from(p);
            let d = xi - g * *mean;
            let d2 = d * d;
            let changed = !masked & (d.abs() > d_min) & (d2 > k2 * *var);
            *ch = u8::from(changed);
            changed_count += usize::from(changed);
            *age = if changed { *age + dt } else { 0.0 };
            let a = if changed { a_fg } else { a_bg };
            let a = if *age > ABSORB_S { 1.0 } else { a };
            *mean += a * (xi - *mean);
            // The noise is learnt from background pixels only.
            let learnt = (*var + a_bg * (d2 - *var)).clamp(VAR_MIN, VAR_MAX);
            *var = if changed { *var } else { learnt };
        }
        if m.unmasked > 0 && changed_count as f32 > GLOBAL_FRACTION * m.unmasked as f32 {
            m.relearn(x, t_us);
            return Ok(global());
        }
        if changed_count == 0 {
            return Ok(MotionResult::default());
        }
        m.majority_filter();
        let regions = m.regions(min_area);
        Ok(MotionResult {
            motion: !regions.is_empty(),
            regions,
            global_change: false,
        })
    }

    fn new_model(&self, luma: &LumaPlane, t_us: i64) -> Model {
        let (w, h) = (luma.w as usize, luma.h as usize);
        let mut masked = vec![false; w * h];
        let mut zones = Vec::new();
        for z in &self.cfg.zones {
            let cells = zones::rasterise(&z.polygon, luma.w, luma.h);
            match z.kind {
                ZoneKind::Mask => {
                    for (m, c) in masked.iter_mut().zip(&cells) {
                        *m |= *c;
                    }
                }
                ZoneKind::Include => zones.push((z.name.clone(), cells)),
            }
        }
        let unmasked = masked.iter().filter(|&&m| !m).count();
        Model {
            w,
            h,
            mean: luma.data.iter().map(|&p| f32::from(p)).collect(),
            var: vec![VAR_INIT; w * h],
            age: vec![0.0; w * h],
            masked,
            unmasked,
            zones,
            changed: vec![0; w * h],
            clean: vec![0; w * h],
            seen: vec![false; w * h],
            last_t: t_us,
            settle_until: t_us.saturating_add(SETTLE_US),
            settle_global: false,
        }
    }
}

fn global() -> MotionResult {
    MotionResult {
        global_change: true,
        ..MotionResult::default()
    }
}

/// A connected group of changed cells.
struct Blob {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
    count: usize,
    in_zone: Vec<usize>,
}

impl Model {
    /// Moves every pixel's mean towards the frame with time constant `tau`.
    fn learn_all(&mut self, x: &[u8], dt: f32, tau: f32) {
        let a = 1.0 - (-dt / tau).exp();
        for (mean, &p) in self.mean.iter_mut().zip(x) {
            *mean += a * (f32::from(p) - *mean);
        }
    }

    /// Takes this frame as the background and settles.
    fn relearn(&mut self, x: &[u8], t_us: i64) {
        for (mean, &p) in self.mean.iter_mut().zip(x) {
            *mean = f32::from(p);
        }
        for v in &mut self.var {
            *v = v.max(VAR_INIT);
        }
        self.age.fill(0.0);
        self.settle_until = t_us.saturating_add(SETTLE_US);
        self.settle_global = true;
    }

    /// The median of `frame / background` over unmasked, not too dark,
    /// not saturated pixels (every third row and column); 1 when too few.
    fn gain(&self, x: &[u8]) -> f32 {
        const BINS: usize = 512;
        const PER_UNIT: f32 = 128.0;
        let mut hist = [0u32; BINS];
        let mut n = 0u32;
        for row in (0..self.h).step_by(3) {
            for col in (0..self.w).step_by(3) {
                let i = row * self.w + col;
                let (p, mean) = (f32::from(x[i]), self.mean[i]);
                if self.masked[i] || !(24.0..=245.0).contains(&mean) || p > 250.0 {
                    continue;
                }
                let bin = ((p / mean) * PER_UNIT) as usize;
                hist[bin.min(BINS - 1)] += 1;
                n += 1;
            }
        }
        if n < 32 {
            return 1.0;
        }
        let half = n.div_ceil(2);
        let mut acc = 0;
        for (b, &c) in hist.iter().enumerate() {
            acc += c;
            if acc >= half {
                return (b as f32 + 0.5) / PER_UNIT;
            }
        }
        1.0
    }

    /// `clean` = cells with at least 5 changed cells in their 3x3
    /// neighbourhood (themselves included): drops speckle, fills pinholes.
    fn majority_filter(&mut self) {
        let (w, h) = (self.w, self.h);
        // Vertical 3-sums per column, then horizontal 3-sums.
        let zero = vec![0u8; w];
        let mut col = vec![0u8; w];
        for row in 0..h {
            let up = if row > 0 {
                &self.changed[(row - 1) * w..row * w]
            } else {
                &zero[..]
            };
            let down = if row + 1 < h {
                &self.changed[(row + 1) * w..(row + 2) * w]
            } else {
                &zero[..]
            };
            let cur = &self.changed[row * w..(row + 1) * w];
            for (((s, &u), &c), &d) in col.iter_mut().zip(up).zip(cur).zip(down) {
                *s = u + c + d;
            }
            let out = &mut self.clean[row * w..(row + 1) * w];
            if w == 1 {
                out[0] = u8::from(col[0] >= 5);
                continue;
            }
            out[0] = u8::from(col[0] + col[1] >= 5);
            out[w - 1] = u8::from(col[w - 2] + col[w - 1] >= 5);
            for (o, win) in out[1..w - 1].iter_mut().zip(col.windows(3)) {
                *o = u8::from(win[0] + win[1] + win[2] >= 5);
            }
        }
    }

    /// Connected components of `clean`, merged when close, filtered by
    /// area, as regions (largest first).
    fn regions(&mut self, min_area: f32) -> Vec<Region> {
        let (w, h) = (self.w, self.h);
        self.seen.fill(false);
        let mut blobs: Vec<Blob> = Vec::new();
        let mut stack = Vec::new();
        for start in 0..w * h {
            if self.clean[start] == 0 || self.seen[start] {
                continue;
            }
            let mut b = Blob {
                x0: usize::MAX,
                y0: usize::MAX,
                x1: 0,
                y1: 0,
                count: 0,
                in_zone: vec![0; self.zones.len()],
            };
            self.seen[start] = true;
            stack.push(start);
            while let Some(i) = stack.pop() {
                let (x, y) = (i % w, i / w);
                b.x0 = b.x0.min(x);
                b.y0 = b.y0.min(y);
                b.x1 = b.x1.max(x + 1);
                b.y1 = b.y1.max(y + 1);
                b.count += 1;
                for (z, (_, cells)) in self.zones.iter().enumerate() {
                    b.in_zone[z] += usize::from(cells[i]);
                }
                for ny in y.saturating_sub(1)..(y + 2).min(h) {
                    for nx in x.saturating_sub(1)..(x + 2).min(w) {
                        let j = ny * w + nx;
                        if self.clean[j] != 0 && !self.seen[j] {
                            self.seen[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
            blobs.push(b);
        }
        // Merge blobs whose boxes, grown by the gap, overlap.
        let gx = ((MERGE_GAP * w as f32).ceil() as usize).max(1);
        let gy = ((MERGE_GAP * h as f32).ceil() as usize).max(1);
        let close = |a: &Blob, b: &Blob| {
            a.x0 < b.x1 + gx && b.x0 < a.x1 + gx && a.y0 < b.y1 + gy && b.y0 < a.y1 + gy
        };
        let mut merged = true;
        while merged {
            merged = false;
            'outer: for i in 0..blobs.len() {
                for j in i + 1..blobs.len() {
                    if close(&blobs[i], &blobs[j]) {
                        let b = blobs.swap_remove(j);
                        let a = &mut blobs[i];
                        a.x0 = a.x0.min(b.x0);
                        a.y0 = a.y0.min(b.y0);
                        a.x1 = a.x1.max(b.x1);
                        a.y1 = a.y1.max(b.y1);
                        a.count += b.count;
                        for (z, n) in a.in_zone.iter_mut().zip(b.in_zone) {
                            *z += n;
                        }
                        merged = true;
                        break 'outer;
                    }
                }
            }
        }
        let total = (w * h) as f32;
        let mut regions: Vec<Region> = blobs
            .into_iter()
            .filter(|b| b.count as f32 / total >= min_area && b.count > 0)
            .map(|b| Region {
                bbox: [
                    b.x0 as f32 / w as f32,
                    b.y0 as f32 / h as f32,
                    b.x1 as f32 / w as f32,
                    b.y1 as f32 / h as f32,
                ],
                area: b.count as f32 / total,
                zones: self
                    .zones
                    .iter()
                    .zip(&b.in_zone)
                    .filter(|(_, &n)| n as f32 >= ZONE_MIN_FRACTION * b.count as f32)
                    .map(|((name, _), _)| name.clone())
                    .collect(),
            })
            .collect();
        regions.sort_by(|a, b| b.area.total_cmp(&a.area));
        regions
    }
}

/// When motion turns ON and OFF.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerConfig {
    /// Consecutive analysed frames with motion before ON (default 2: one
    /// odd frame, e.g. a decoding glitch, does not alert; at 5 fps this
    /// adds 200 ms).
    pub on_frames: u32,
    /// Seconds without motion before OFF (default 30).
    pub off_after_s: f32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            on_frames: 2,
            off_after_s: 30.0,
        }
    }
}

/// A change of the motion state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MotionChange {
    /// Motion ON; `since_us` is the time of the first frame of the run of
    /// motion frames that turned it on.
    On { since_us: i64 },
    /// Motion OFF; `last_motion_us` is the last frame that had motion.
    Off { last_motion_us: i64 },
}

/// Turns per-frame results into ON/OFF changes: ON after
/// `on_frames` consecutive motion frames, OFF after `off_after_s` seconds
/// without motion. Global changes count as no motion.
#[derive(Clone, Debug)]
pub struct MotionTracker {
    on_frames: u32,
    off_after_us: i64,
    streak: u32,
    streak_start: i64,
    last_motion: i64,
    on: bool,
}

impl MotionTracker {
    /// A tracker, OFF. `on_frames` 0 counts as 1; a negative or non-finite
    /// delay as 0.
    pub fn new(cfg: TrackerConfig) -> MotionTracker {
        let off = if cfg.off_after_s.is_finite() {
            (cfg.off_after_s.max(0.0) as f64 * 1e6) as i64
        } else {
            0
        };
        MotionTracker {
            on_frames: cfg.on_frames.max(1),
            off_after_us: off,
            streak: 0,
            streak_start: 0,
            last_motion: 0,
            on: false,
        }
    }

    /// Whether motion is ON.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Takes the result of the frame at `t_us`.
    pub fn update(&mut self, result: &MotionResult, t_us: i64) -> Option<MotionChange> {
        let motion = result.motion && !result.global_change;
        if motion {
            if self.streak == 0 {
                self.streak_start = t_us;
            }
            self.streak = self.streak.saturating_add(1);
            self.last_motion = t_us;
            if !self.on && self.streak >= self.on_frames {
                self.on = true;
                return Some(MotionChange::On {
                    since_us: self.streak_start,
                });
            }
            None
        } else {
            self.streak = 0;
            self.poll(t_us)
        }
    }

    /// Checks the OFF delay at `t_us` without a frame (a camera that went
    /// quiet still turns OFF).
    pub fn poll(&mut self, t_us: i64) -> Option<MotionChange> {
        if self.on && t_us.saturating_sub(self.last_motion) >= self.off_after_us {
            self.on = false;
            return Some(MotionChange::Off {
                last_motion_us: self.last_motion,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u32 = 160;
    const H: u32 = 90;
    const STEP: i64 = 200_000;

    /// A textured static scene (a gradient with stripes).
    fn scene(x: u32, y: u32) -> f32 {
        60.0 + (x as f32 * 0.5)
            + if (y / 10).is_multiple_of(2) {
                30.0
            } else {
                0.0
            }
    }

    /// Frame `i`: the scene times `gain`, plus noise of ±`noise`, plus a
    /// dark square at `square` (x0, y0, side).
    fn plane(i: u64, gain: f32, noise: u8, square: Option<(u32, u32, u32)>) -> LumaPlane {
        let mut s = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut data = Vec::with_capacity((W * H) as usize);
        for y in 0..H {
            for x in 0..W {
                let mut v = scene(x, y) * gain;
                if let Some((sx, sy, side)) = square {
                    if (sx..sx + side).contains(&x) && (sy..sy + side).contains(&y) {
                        v = 30.0;
                    }
                }
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                if noise > 0 {
                    v += (s % (2 * noise as u64 + 1)) as f32 - noise as f32;
                }
                data.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
        LumaPlane::new(W, H, data).unwrap()
    }

    fn warm(det: &mut MotionDetector, frames: u64) -> i64 {
        let mut t = 0;
        for i in 0..frames {
            t = i as i64 * STEP;
            let r = det.analyse(&plane(i, 1.0, 3, None), t);
            assert!(!r.motion, "frame {i} of a still scene: {r:?}");
        }
        t
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: MotionConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, MotionConfig::default());
        assert_eq!(
            (c.sensitivity, c.min_area, c.analysis_width),
            (0.5, 0.002, 320)
        );
        let c: MotionConfig = serde_json::from_str(
            r#"{"sensitivity":0.8,"zones":[{"name":"porch","polygon":[[0,0.5],[1,0.5],[1,1]],"labels":["person"]}]}"#,
        )
        .unwrap();
        assert!(MotionDetector::new(c).is_ok());
        assert!(serde_json::from_str::<MotionConfig>(r#"{"sensitivty":1}"#).is_err());
        for (bad, needle) in [
            (
                MotionConfig {
                    sensitivity: 1.5,
                    ..Default::default()
                },
                "sensitivity",
            ),
            (
                MotionConfig {
                    sensitivity: f32::NAN,
                    ..Default::default()
                },
                "sensitivity",
            ),
            (
                MotionConfig {
                    min_area: -0.1,
                    ..Default::default()
                },
                "min_area",
            ),
            (
                MotionConfig {
                    analysis_width: 4,
                    ..Default::default()
                },
                "analysis_width",
            ),
        ] {
            let e = MotionDetector::new(bad).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        }
        let dup = MotionConfig {
            zones: vec![
                Zone {
                    name: "a".into(),
                    polygon: vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]],
                    kind: ZoneKind::Include,
                    labels: None,
                },
                Zone {
                    name: "a".into(),
                    polygon: vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]],
                    kind: ZoneKind::Mask,
                    labels: None,
                },
            ],
            ..Default::default()
        };
        let e = MotionDetector::new(dup).unwrap_err();
        assert!(e.to_string().contains("defined twice"), "{e}");
    }

    #[test]
    fn set_config_checks_first() {
        let mut det = MotionDetector::new(MotionConfig::default()).unwrap();
        let bad = MotionConfig {
            sensitivity: 2.0,
            ..Default::default()
        };
        assert!(det.set_config(bad).is_err());
        assert_eq!(det.config(), &MotionConfig::default());
        let good = MotionConfig {
            sensitivity: 0.9,
            ..Default::default()
        };
        det.set_config(good.clone()).unwrap();
        assert_eq!(det.config(), &good);
    }

    #[test]
    fn a_bad_plane_is_refused() {
        let mut det = MotionDetector::new(MotionConfig::default()).unwrap();
        let bad = LumaPlane {
            w: 10,
            h: 10,
            data: vec![0; 5],
        };
        assert!(matches!(
            det.try_analyse(&bad, 0),
            Err(MotionError::BadPlane { .. })
        ));
        assert_eq!(det.analyse(&bad, 0), MotionResult::default());
    }

    #[test]
    fn a_moving_square_is_found_where_it_is() {
        let mut det = MotionDetector::new(MotionConfig::default()).unwrap();
        let t = warm(&mut det, 15);
        for k in 0..5u32 {
            let (sx, sy) = (20 + 10 * k, 40);
            let r = det.analyse(
                &plane(100 + k as u64, 1.0, 3, Some((sx, sy, 20))),
                t + (k as i64 + 1) * STEP,
            );
            assert!(r.motion && !r.global_change, "step {k}: {r:?}");
            assert_eq!(r.regions.len(), 1, "{r:?}");
            let b = r.regions[0].bbox;
            let want = [
                sx as f32 / W as f32,
                sy as f32 / H as f32,
                (sx + 20) as f32 / W as f32,
                (sy + 20) as f32 / H as f32,
            ];
            for c in 0..4 {
                assert!((b[c] - want[c]).abs() < 0.03, "step {k}: {b:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn noise_and_tiny_changes_are_not_motion() {
        let mut det = MotionDetector::new(MotionConfig::default()).unwrap();
        let t = warm(&mut det, 10);
        for i in 0..50u64 {
            let r = det.analyse(&plane(1000 + i, 1.0, 8, None), t + (i as i64 + 1) * STEP);
            assert!(!r.motion && !r.global_change, "frame {i}: {r:?}");
        }
        // A 3x3 square (0.06 % of the picture) is below min_area.
        let r = det.analyse(&plane(5000, 1.0, 3, Some((50, 50, 3))), t + 60 * STEP);
        assert!(!r.motion, "{r:?}");
    }

    #[test]
    fn sudden_light_is_a_global_change_then_quiet() {
        let mut det = MotionDetector::new(MotionConfig::default()).unwrap();
        let mut t = warm(&mut det, 10);
        let mut globals = 0;
        for i in 0..20u64 {
            t += STEP;
            let r = det.analyse(&plane(200 + i, 1.4, 3, None), t);
            assert!(!r.motion && r.regions.is_empty(), "frame {i}: {r:?}");
            globals += usize::from(r.global_change);
            if i == 0 {
                assert!(r.global_change, "the switch is reported");
            }
        }
        assert!(globals <= 6, "settles within about a second: {globals}");
        // And motion is found again after it.
        t += STEP;
        let r = det.analyse(&plane(300, 1.4, 3, Some((60, 30, 20))), t);
        assert!(r.motion, "{r:?}");
    }

    #[test]
    fn moderate_uniform_gain_is_compensated() {
        let mut det = MotionDetector::new(MotionConfig::default()).unwrap();
        let mut t = warm(&mut det, 10);
        for (i, g) in [1.1f32, 1.12, 0.95, 0.9, 1.0].into_iter().enumerate() {
            t += STEP;
            let r = det.analyse(&plane(400 + i as u64, g, 3, None), t);
            assert!(!r.motion && !r.global_change, "gain {g}: {r:?}");
        }
    }

    #[test]
    fn masks_hide_and_zones_name() {
        let zone = |name: &str, kind, poly: &[[f32; 2]]| Zone {
            name: name.into(),
            polygon: poly.to_vec(),
            kind,
            labels: None,
        };
        let cfg = MotionConfig {
            zones: vec![
                zone(
                    "left",
                    ZoneKind::Include,
                    &[[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]],
                ),
                zone(
                    "right",
                    ZoneKind::Include,
                    &[[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]],
                ),
                zone(
                    "tree",
                    ZoneKind::Mask,
                    &[[0.75, 0.0], [1.0, 0.0], [1.0, 1.0], [0.75, 1.0]],
                ),
            ],
            ..Default::default()
        };
        let mut det = MotionDetector::new(cfg).unwrap();
        let t = warm(&mut det, 10);
        // Inside the mask: nothing.
        let r = det.analyse(&plane(600, 1.0, 3, Some((130, 30, 20))), t + STEP);
        assert!(!r.motion, "{r:?}");
        // Across the left/right border: both zones.
        let r = det.analyse(&plane(601, 1.0, 3, Some((70, 30, 20))), t + 2 * STEP);
        assert_eq!(r.regions.len(), 1, "{r:?}");
        assert_eq!(
            r.regions[0].zones,
            vec!["left".to_string(), "right".to_string()]
        );
        // Only in the left one.
        let mut det2 = MotionDetector::new(det.config().clone()).unwrap();
        let t = warm(&mut det2, 10);
        let r = det2.analyse(&plane(602, 1.0, 3, Some((10, 30, 20))), t + STEP);
        assert_eq!(r.regions[0].zones, vec!["left".to_string()]);
    }

    #[test]
    fn what_stays_still_stops_being_motion() {
        let mut det = MotionDetector::new(MotionConfig::default()).unwrap();
        let mut t = warm(&mut det, 10);
        let mut last_motion = None;
        for i in 0..100u64 {
            t += STEP;
            let r = det.analyse(&plane(800 + i, 1.0, 3, Some((60, 30, 20))), t);
            if i < 20 {
                assert!(r.motion, "frame {i}: the new square is motion for a while");
            }
            if r.motion {
                last_motion = Some(i);
            }
        }
        // Absorbed after ABSORB_S (10 s = 50 frames), never to come back.
        let last = last_motion.unwrap();
        assert!((40..=55).contains(&last), "last motion at frame {last}");
    }

    #[test]
    fn time_going_backwards_relearns_quietly() {
        let mut det = MotionDetector::new(MotionConfig::default()).unwrap();
        let t = warm(&mut det, 10);
        let r = det.analyse(&plane(700, 1.0, 3, Some((60, 30, 20))), t - 5 * STEP);
        assert_eq!(r, MotionResult::default());
        let r = det.analyse(&plane(701, 1.0, 3, Some((60, 30, 20))), t + 60_000_000);
        assert_eq!(r, MotionResult::default());
        // Extreme times do not overflow.
        det.analyse(&plane(702, 1.0, 3, None), i64::MIN);
        det.analyse(&plane(703, 1.0, 3, None), i64::MAX);
        assert_eq!(
            det.analyse(&plane(704, 1.0, 3, None), i64::MAX),
            MotionResult::default()
        );
    }

    fn result(motion: bool) -> MotionResult {
        MotionResult {
            motion,
            ..Default::default()
        }
    }

    #[test]
    fn tracker_hysteresis() {
        let mut tr = MotionTracker::new(TrackerConfig {
            on_frames: 2,
            off_after_s: 3.0,
        });
        assert_eq!(tr.update(&result(true), 0), None);
        assert_eq!(tr.update(&result(false), 200_000), None);
        assert_eq!(tr.update(&result(true), 400_000), None);
        assert_eq!(
            tr.update(&result(true), 600_000),
            Some(MotionChange::On { since_us: 400_000 })
        );
        assert!(tr.is_on());
        assert_eq!(tr.update(&result(true), 800_000), None);
        assert_eq!(tr.update(&result(false), 3_700_000), None);
        let g = MotionResult {
            motion: true,
            global_change: true,
            ..Default::default()
        };
        assert_eq!(tr.update(&g, 3_750_000), None);
        assert_eq!(
            tr.poll(3_800_000),
            Some(MotionChange::Off {
                last_motion_us: 800_000
            })
        );
        assert!(!tr.is_on());
        assert_eq!(tr.poll(9_000_000), None);
        let mut one = MotionTracker::new(TrackerConfig {
            on_frames: 0,
            off_after_s: f32::NAN,
        });
        assert_eq!(
            one.update(&result(true), 5),
            Some(MotionChange::On { since_us: 5 })
        );
        assert_eq!(
            one.update(&result(false), 5),
            Some(MotionChange::Off { last_motion_us: 5 })
        );
        let d: TrackerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(d, TrackerConfig::default());
    }
}
