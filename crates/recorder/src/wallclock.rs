//! Where a run's segments sit on the hub's wall clock.
//!
//! A *run* is one unbroken camera connection; its frames carry the camera's
//! own 90 kHz timestamps, which are exact relative to each other but say
//! nothing about wall time, and the camera's clock drifts from the hub's
//! (typically 10–100 ppm). The hub's clock at a frame's **arrival** is the
//! only wall time there is, and it is always late, by a varying amount:
//! network and scheduling jitter, a large key frame that takes a while to
//! send, and — with read batching (`readbatch`) — up to a batch of frames
//! held in the kernel on purpose.
//!
//! So a segment's start is not simply its first frame's arrival (that made
//! consecutive segments of one run overlap or leave gaps of whatever the
//! two arrivals' delays differed by — seconds with batching on a slow
//! stream). Instead, [`RunClock`]:
//!
//! * starts the run's first segment at its first key frame's arrival
//!   (nothing better is known yet);
//! * starts every later segment of the run where the previous one ended
//!   (start + its summed frame durations), so a run plays as one unbroken
//!   timeline, **plus a bounded correction**: over the segment that ended,
//!   it keeps the smallest *lateness* of any frame (arrival minus where
//!   the timeline put the frame). Delays are never negative, so the
//!   smallest lateness is the timeline's own error, measured on the frame
//!   that came through fastest. The correction applied is that error,
//!   clamped to ±[`MAX_SLEW_PPM`] of the segment's duration (±60 ms per
//!   minute: below two frame intervals at 25 fps, invisible in playback),
//!   which keeps up with any real camera's drift while jitter cannot move
//!   the timeline by more than that;
//! * steps to the measured error in one go when it exceeds [`STEP`]
//!   (the hub's clock was set, or the camera's clock jumped): a visible
//!   gap or overlap at one boundary is then the honest record.

/// Largest correction per segment, in parts per million of its duration.
pub const MAX_SLEW_PPM: i64 = 1_000;
/// An error larger than this is a clock step, applied at once (µs).
pub const STEP: i64 = 5_000_000;

/// Places one run's segments; see the module docs. All times in µs.
#[derive(Debug, Default, Clone)]
pub struct RunClock {
    /// The open segment: its start (wall µs) and the media time (90 kHz
    /// ticks from its start) of the next frame, i.e. the summed durations
    /// so far (kept in ticks so no rounding accumulates).
    open: Option<(i64, i64)>,
    /// Smallest (arrival − timeline position) over the open segment's
    /// frames.
    min_lateness: Option<i64>,
}

impl RunClock {
    pub fn new() -> RunClock {
        RunClock::default()
    }

    /// The wall-clock start (µs) of a new segment whose first frame arrived
    /// at `arrival_us`. Closes the previous segment of the run, if any
    /// (its frames must all have been [`frame`](Self::frame)d).
    pub fn start_segment(&mut self, arrival_us: i64) -> i64 {
        let start = match self.open {
            None => arrival_us,
            Some((start, ticks)) => {
                let len = ticks_to_us(ticks);
                let nominal = start + len;
                // The new segment's first frame is a frame of the timeline
                // too: it sits at `nominal`.
                let here = arrival_us - nominal;
                let error = self.min_lateness.map_or(here, |m| m.min(here));
                let bound = (len.max(0) * MAX_SLEW_PPM / 1_000_000).max(0);
                let correction = if error.abs() > STEP {
                    error
                } else {
                    error.clamp(-bound, bound)
                };
                nominal + correction
            }
        };
        self.open = Some((start, 0));
        self.min_lateness = None;
        start
    }

    /// Records a frame of the open segment: it arrived at `arrival_us`
    /// and lasts `duration_90k` (the gap to the next frame's timestamp).
    /// Frames are given in order, starting with the segment's first.
    pub fn frame(&mut self, arrival_us: i64, duration_90k: u32) {
        let Some((start, ticks)) = self.open.as_mut() else {
            return;
        };
        let lateness = arrival_us - (*start + ticks_to_us(*ticks));
        self.min_lateness = Some(self.min_lateness.map_or(lateness, |m| m.min(lateness)));
        *ticks += i64::from(duration_90k);
    }
}

/// 90 kHz ticks to µs, rounded down (as a recording's end is computed).
pub fn ticks_to_us(ticks: i64) -> i64 {
    ticks * 100 / 9
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: i64 = 40_000; // 25 fps, µs
    const FRAME_90K: u32 = 3_600;

    /// A camera whose frames are captured every 40 ms of *its* clock
    /// (running `ppm` fast) and reach the hub `delay(i)` µs after capture;
    /// returns the segment starts for segments of `per_seg` frames and how
    /// far each is from the true capture time of its first frame.
    fn run(ppm: i64, segs: usize, per_seg: usize, delay: impl Fn(usize) -> i64) -> Vec<(i64, i64)> {
        let t0 = 1_800_000_000_000_000i64;
        let mut c = RunClock::new();
        let mut out = Vec::new();
        for i in 0..segs * per_seg {
            // True capture time by the hub's clock: the camera's 40 ms is
            // 40 ms × (1 − ppm) of real time.
            let capture = t0 + (i as i64 * FRAME * (1_000_000 - ppm)) / 1_000_000;
            let arrival = capture + delay(i);
            if i % per_seg == 0 {
                let s = c.start_segment(arrival);
                out.push((s, s - capture));
            }
            c.frame(arrival, FRAME_90K);
        }
        out
    }

    #[test]
    fn segments_of_a_run_join_exactly_without_drift_or_jitter() {
        let starts = run(0, 5, 1500, |_| 2_000);
        for w in starts.windows(2) {
            assert_eq!(w[1].0 - w[0].0, 1500 * FRAME, "{starts:?}");
        }
        assert!(starts.iter().all(|s| s.1 == 2_000), "{starts:?}");
    }

    #[test]
    fn bursty_delivery_does_not_move_the_timeline() {
        // Read batching: frames held up to 2.3 s (a batch sized for a
        // faster rate), released in bursts; some frames come through at
        // once. The first key frame of each segment is one of the held
        // ones. Arrival-based starts would be off by up to 2.3 s.
        let delay = |i: usize| {
            if i % 1500 < 5 || i % 60 > 3 {
                2_300_000 - (i % 60) as i64 * 1_000
            } else {
                0
            }
        };
        let starts = run(0, 6, 1500, delay);
        for w in starts.windows(2).skip(1) {
            let step = w[1].0 - w[0].0 - 1500 * FRAME;
            assert!(
                step.abs() <= 1500 * FRAME * MAX_SLEW_PPM / 1_000_000,
                "segments moved by {step} µs: {starts:?}"
            );
        }
        // The first start was late by the hold; the timeline converges
        // towards the truth by at most 60 ms per segment, never past it.
        let errs: Vec<i64> = starts.iter().map(|s| s.1).collect();
        assert_eq!(errs[0], 2_300_000);
        for w in errs.windows(2) {
            assert!(w[1] <= w[0] && w[1] >= 0, "{errs:?}");
        }
        assert_eq!(errs[1], 2_300_000 - 60_000, "{errs:?}");
    }

    #[test]
    fn camera_drift_is_followed_within_the_slew_bound() {
        // 300 ppm fast: 18 ms a minute, inside the 1000 ppm bound; the
        // error stays at about one minute's drift, not growing.
        let starts = run(300, 30, 1500, |i| if i % 7 == 0 { 1_000 } else { 30_000 });
        let last = starts.last().unwrap().1;
        assert!(last.abs() < 20_000, "drift accumulated: {starts:?}");
        // A drift beyond the bound (3000 ppm) still makes no jump at a
        // boundary larger than the bound.
        let starts = run(3_000, 10, 1500, |_| 1_000);
        for w in starts.windows(2) {
            let step = w[1].0 - w[0].0 - 1500 * FRAME;
            assert!(step.abs() <= 60_000, "{step}: {starts:?}");
        }
    }

    #[test]
    fn a_clock_step_is_taken_at_once() {
        // The hub's clock is set 30 s ahead in the middle of segment 2:
        // segment 2 still had frames on the old clock, so its error is
        // only seen whole over segment 3, and segment 4 steps.
        let starts = run(0, 5, 1500, |i| {
            if i >= 2 * 1500 + 700 {
                30_000_000 + 1_000
            } else {
                1_000
            }
        });
        assert_eq!(starts[2].1, 1_000, "{starts:?}");
        assert_eq!(starts[3].1, 1_000, "{starts:?}");
        assert_eq!(starts[4].1, 30_001_000, "{starts:?}");
        // Set back 30 s: the first frame on the new clock shows it, and
        // the next segment steps back (an overlap, the honest record).
        let starts = run(0, 4, 1500, |i| {
            if i >= 2 * 1500 + 700 {
                1_000 - 30_000_000
            } else {
                1_000
            }
        });
        assert_eq!(starts[3].1, 1_000 - 30_000_000, "{starts:?}");
    }
}
