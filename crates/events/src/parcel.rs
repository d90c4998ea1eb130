//! Parcels: "package delivered" when a parcel appears and stays still,
//! "package taken" when a parcel that was resting disappears — with the
//! person seen just before, if any. The Ring scenario from the mission.
//!
//! A parcel at rest makes no motion, so the detector, which only looks
//! where something moves, would lose sight of it. The tracker therefore
//! tells the caller where to look again ([`ParcelTracker::due_checks`]):
//! around parcels still settling, and around resting parcels every
//! `recheck_us`. A parcel counts as missing only when the detector looked
//! at its place, found no parcel there, and no person stood in front of
//! it (a visitor at the door hides the parcel for a moment; that is not a
//! theft).
//!
//! Pure logic, no I/O; times are microseconds since the Unix epoch.
//!
//! Invariants:
//! - Every `Taken` follows exactly one `Delivered` of the same parcel id.
//! - A parcel is "delivered" only after it was seen at least twice, at
//!   the same place, `settle_us` apart.
//! - A resting parcel is "taken" only after misses for at least `gone_us`
//!   spread over at least two looks.

use porchlight_detect::Label;

use crate::activity::{NBox, Object};

/// Settings.
#[derive(Debug, Clone)]
pub struct ParcelOptions {
    /// How long a new parcel must stay in one place to be "delivered".
    pub settle_us: i64,
    /// How long a resting parcel must be missing to be "taken".
    pub gone_us: i64,
    /// How often to look again at a resting parcel.
    pub recheck_us: i64,
    /// A candidate not seen for this long is forgotten.
    pub forget_us: i64,
    /// How far back "the person seen just before" may be.
    pub person_memory_us: i64,
}

impl Default for ParcelOptions {
    fn default() -> Self {
        ParcelOptions {
            settle_us: 4_000_000,
            gone_us: 4_000_000,
            recheck_us: 1_000_000,
            forget_us: 10_000_000,
            person_memory_us: 60_000_000,
        }
    }
}

/// What happened to a parcel.
#[derive(Debug, Clone, PartialEq)]
pub enum ParcelAction {
    Delivered {
        id: u64,
        bbox: NBox,
        score: f32,
        t_us: i64,
    },
    Taken {
        id: u64,
        bbox: NBox,
        t_us: i64,
        delivered_us: i64,
        person_seen_us: Option<i64>,
    },
}

#[derive(Debug, Clone)]
struct Candidate {
    misses: u32,
    last_looked_us: i64,
    first_bbox: NBox,
    bbox: NBox,
    first_us: i64,
    last_seen_us: i64,
    hits: u32,
    score: f32,
}

#[derive(Debug, Clone)]
struct Resting {
    id: u64,
    bbox: NBox,
    since_us: i64,
    last_seen_us: i64,
    last_looked_us: i64,
    misses: u32,
}

/// The parcel tracker of one camera.
#[derive(Debug, Default)]
pub struct ParcelTracker {
    opts: ParcelOptions,
    candidates: Vec<Candidate>,
    resting: Vec<Resting>,
    last_person_us: Option<i64>,
    /// People seen lately (time, box): someone standing in front of a
    /// parcel hides it for a while.
    recent_persons: Vec<(i64, NBox)>,
    next_id: u64,
}

/// How long a person seen in front of a parcel counts as hiding it.
const HIDDEN_US: i64 = 1_500_000;

/// Intersection over union of two boxes.
pub fn iou(a: &NBox, b: &NBox) -> f32 {
    let x0 = a[0].max(b[0]);
    let y0 = a[1].max(b[1]);
    let x1 = (a[0] + a[2]).min(b[0] + b[2]);
    let y1 = (a[1] + a[3]).min(b[1] + b[3]);
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// The fraction of `a` covered by `b`.
pub fn covered(a: &NBox, b: &NBox) -> f32 {
    let x0 = a[0].max(b[0]);
    let y0 = a[1].max(b[1]);
    let x1 = (a[0] + a[2]).min(b[0] + b[2]);
    let y1 = (a[1] + a[3]).min(b[1] + b[3]);
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    let area = a[2] * a[3];
    if area <= 0.0 {
        0.0
    } else {
        inter / area
    }
}

/// Grows a box around its centre so the detector sees some context.
pub fn grow(b: &NBox, factor: f32, min_side: f32) -> NBox {
    let w = (b[2] * factor).max(min_side).min(1.0);
    let h = (b[3] * factor).max(min_side).min(1.0);
    let cx = b[0] + b[2] / 2.0;
    let cy = b[1] + b[3] / 2.0;
    let x = (cx - w / 2.0).clamp(0.0, 1.0 - w);
    let y = (cy - h / 2.0).clamp(0.0, 1.0 - h);
    [x, y, w, h]
}

impl ParcelTracker {
    pub fn new(opts: ParcelOptions) -> ParcelTracker {
        ParcelTracker {
            opts,
            ..Default::default()
        }
    }

    /// Parcels resting now (for status and tests).
    pub fn resting(&self) -> Vec<NBox> {
        self.resting.iter().map(|r| r.bbox).collect()
    }

    /// Resting parcels with their ids, for the caller's presence checks.
    pub fn resting_parcels(&self) -> Vec<(u64, NBox)> {
        self.resting.iter().map(|r| (r.id, r.bbox)).collect()
    }

    /// Where the detector should look on the frame at `t_us`, besides
    /// the motion: parcels still settling, and resting parcels not looked
    /// at for `recheck_us`. Boxes are grown for context.
    pub fn due_checks(&self, t_us: i64) -> Vec<NBox> {
        let mut out: Vec<NBox> = self
            .candidates
            .iter()
            .filter(|c| t_us - c.last_looked_us >= self.opts.recheck_us / 2)
            .map(|c| grow(&c.bbox, 2.0, 0.2))
            .collect();
        out.extend(
            self.resting
                .iter()
                .filter(|r| t_us - r.last_looked_us >= self.opts.recheck_us)
                .map(|r| grow(&r.bbox, 2.0, 0.2)),
        );
        out
    }

    /// Feeds what the detector found on the frame at `t_us`, and where it
    /// looked (`looked`: the boxes it ran on; a parcel outside all of them
    /// was simply not checked).
    pub fn observe(&mut self, t_us: i64, looked: &[NBox], objects: &[Object]) -> Vec<ParcelAction> {
        self.observe_with(t_us, looked, objects, &[])
    }

    /// [`ParcelTracker::observe`] with the caller's own verdicts on
    /// whether resting parcels are still where they were (`(id, present)`,
    /// e.g. from comparing the picture at their place with the picture at
    /// delivery): the detector's score on a parcel wavers from frame to
    /// frame, the look of an untouched parcel does not.
    pub fn observe_with(
        &mut self,
        t_us: i64,
        looked: &[NBox],
        objects: &[Object],
        presence: &[(u64, bool)],
    ) -> Vec<ParcelAction> {
        let mut out = Vec::new();
        for o in objects.iter().filter(|o| o.label == Label::Person) {
            self.last_person_us = Some(t_us);
            self.recent_persons.push((t_us, o.bbox));
        }
        self.recent_persons.retain(|(at, _)| t_us - at <= HIDDEN_US);
        let persons: Vec<NBox> = self.recent_persons.iter().map(|(_, b)| *b).collect();
        let parcels: Vec<&Object> = objects
            .iter()
            .filter(|o| o.label == Label::Parcel)
            .collect();
        let mut used = vec![false; parcels.len()];

        // Resting parcels: seen again, or missing where we looked.
        for r in &mut self.resting {
            let was_looked_at = looked.iter().any(|l| covered(&r.bbox, l) >= 0.9);
            let verdict = presence.iter().find(|(id, _)| *id == r.id).map(|(_, p)| *p);
            if was_looked_at {
                r.last_looked_us = t_us;
            }
            if was_looked_at {
                if let Some(i) =
                    (0..parcels.len()).find(|&i| !used[i] && iou(&r.bbox, &parcels[i].bbox) >= 0.3)
                {
                    used[i] = true;
                    r.last_seen_us = t_us;
                    r.misses = 0;
                    continue;
                }
            }
            if verdict == Some(true) {
                r.last_seen_us = t_us;
                r.misses = 0;
                continue;
            }
            if !was_looked_at && verdict.is_none() {
                continue;
            }
            let hidden = persons.iter().any(|p| covered(&r.bbox, p) >= 0.3);
            if !hidden {
                r.misses += 1;
            }
        }
        let (gone, kept): (Vec<Resting>, Vec<Resting>) = std::mem::take(&mut self.resting)
            .into_iter()
            .partition(|r| r.misses >= 2 && t_us - r.last_seen_us >= self.opts.gone_us);
        self.resting = kept;
        for r in gone {
            let person_seen_us = self
                .last_person_us
                .filter(|&p| p >= r.since_us && t_us - p <= self.opts.person_memory_us);
            out.push(ParcelAction::Taken {
                id: r.id,
                bbox: r.bbox,
                t_us,
                delivered_us: r.since_us,
                person_seen_us,
            });
        }

        // Candidates: new parcels settling.
        for (i, p) in parcels.iter().enumerate() {
            if used[i] {
                continue;
            }
            match self
                .candidates
                .iter_mut()
                .find(|c| iou(&c.bbox, &p.bbox) >= 0.3)
            {
                Some(c) => {
                    c.misses = 0;
                    c.last_looked_us = t_us;
                    if iou(&c.first_bbox, &p.bbox) < 0.6 {
                        // Still moving (carried): start settling again.
                        c.first_bbox = p.bbox;
                        c.first_us = t_us;
                        c.hits = 0;
                    }
                    c.bbox = p.bbox;
                    c.last_seen_us = t_us;
                    c.hits += 1;
                    c.score = c.score.max(p.score);
                }
                None => self.candidates.push(Candidate {
                    misses: 0,
                    last_looked_us: t_us,
                    first_bbox: p.bbox,
                    bbox: p.bbox,
                    first_us: t_us,
                    last_seen_us: t_us,
                    hits: 1,
                    score: p.score,
                }),
            }
        }
        let settle = self.opts.settle_us;
        let forget = self.opts.forget_us;
        let mut keep = Vec::new();
        for mut c in std::mem::take(&mut self.candidates) {
            // Looked for where it was, three times, and not there: it moved
            // on (carried), or it was a passing mistake of the detector.
            if c.last_seen_us != t_us && looked.iter().any(|l| covered(&c.bbox, l) >= 0.9) {
                c.last_looked_us = t_us;
                if !persons.iter().any(|p| covered(&c.bbox, p) >= 0.3) {
                    c.misses += 1;
                }
            }
            if c.misses >= 3 {
                continue;
            }
            if c.hits >= 2 && c.last_seen_us - c.first_us >= settle {
                self.next_id += 1;
                out.push(ParcelAction::Delivered {
                    id: self.next_id,
                    bbox: c.bbox,
                    score: c.score,
                    t_us,
                });
                self.resting.push(Resting {
                    id: self.next_id,
                    bbox: c.bbox,
                    since_us: c.first_us,
                    last_seen_us: t_us,
                    last_looked_us: t_us,
                    misses: 0,
                });
            } else if t_us - c.last_seen_us < forget {
                keep.push(c);
            }
        }
        self.candidates = keep;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;
    const AT: NBox = [0.62, 0.72, 0.07, 0.09];
    const ALL: NBox = [0.0, 0.0, 1.0, 1.0];

    fn parcel(b: NBox) -> Object {
        Object {
            label: Label::Parcel,
            class: "box".into(),
            score: 0.6,
            bbox: b,
            zones: vec![],
        }
    }
    fn person(b: NBox) -> Object {
        Object {
            label: Label::Person,
            class: "person".into(),
            score: 0.8,
            bbox: b,
            zones: vec![],
        }
    }

    #[test]
    fn delivered_after_settling_then_taken_with_the_person() {
        let mut t = ParcelTracker::new(ParcelOptions::default());
        // Carried in: the box moves, so it does not settle.
        for i in 0..5 {
            let b = [0.3 + 0.05 * i as f32, 0.5, 0.07, 0.09];
            assert!(t
                .observe(
                    i * S / 2,
                    &[ALL],
                    &[parcel(b), person([0.25 + 0.05 * i as f32, 0.3, 0.1, 0.6])]
                )
                .is_empty());
        }
        // Put down at AT, seen there for 4 s.
        let mut delivered = None;
        for i in 0..10 {
            let now = 3 * S + i * S / 2;
            for a in t.observe(now, &[ALL], &[parcel(AT)]) {
                delivered = Some((now, a));
            }
        }
        let (when, a) = delivered.expect("delivered");
        assert_eq!(when, 7 * S);
        assert!(matches!(a, ParcelAction::Delivered { id: 1, .. }));
        assert_eq!(t.resting().len(), 1);
        // Recheck only when due (last looked at 7.5 s).
        assert_eq!(t.due_checks(8 * S).len(), 0);
        assert_eq!(t.due_checks(8 * S + S / 2).len(), 1);
        // Someone comes and stands in front of it for 10 s: not taken.
        for i in 0..20 {
            let now = 20 * S + i * S / 2;
            assert!(t
                .observe(now, &[ALL], &[person([0.58, 0.3, 0.15, 0.6])])
                .is_empty());
        }
        // They leave with it: missing for 4 s over several looks.
        let mut taken = None;
        for i in 0..12 {
            let now = 30 * S + i * S / 2;
            for a in t.observe(now, &[ALL], &[]) {
                taken = Some(a);
            }
        }
        match taken.expect("taken") {
            ParcelAction::Taken {
                id,
                delivered_us,
                person_seen_us,
                ..
            } => {
                assert_eq!(id, 1);
                assert_eq!(delivered_us, 3 * S);
                assert_eq!(person_seen_us, Some(20 * S + 19 * S / 2));
            }
            other => panic!("{other:?}"),
        }
        assert!(t.resting().is_empty());
    }

    #[test]
    fn a_parcel_not_looked_at_is_not_taken() {
        let mut t = ParcelTracker::new(ParcelOptions::default());
        for i in 0..10 {
            t.observe(i * S, &[ALL], &[parcel(AT)]);
        }
        assert_eq!(t.resting().len(), 1);
        // The detector only looked elsewhere for a minute.
        for i in 10..70 {
            assert!(t.observe(i * S, &[[0.0, 0.0, 0.3, 0.3]], &[]).is_empty());
        }
        assert_eq!(t.resting().len(), 1);
    }

    #[test]
    fn a_single_sighting_is_no_delivery() {
        let mut t = ParcelTracker::new(ParcelOptions::default());
        assert!(t.observe(0, &[ALL], &[parcel(AT)]).is_empty());
        for i in 1..30 {
            assert!(t.observe(i * S, &[ALL], &[]).is_empty());
        }
        assert!(t.resting().is_empty() && t.due_checks(30 * S).is_empty());
    }

    #[test]
    fn taken_without_anyone_seen() {
        let mut t = ParcelTracker::new(ParcelOptions::default());
        for i in 0..6 {
            t.observe(i * S, &[ALL], &[parcel(AT)]);
        }
        let mut taken = None;
        for i in 6..14 {
            for a in t.observe(i * S, &[ALL], &[]) {
                taken = Some(a);
            }
        }
        assert!(matches!(
            taken,
            Some(ParcelAction::Taken {
                person_seen_us: None,
                ..
            })
        ));
    }

    #[test]
    fn box_helpers() {
        assert!((iou(&AT, &AT) - 1.0).abs() < 1e-6);
        assert_eq!(iou(&[0.0, 0.0, 0.1, 0.1], &[0.5, 0.5, 0.1, 0.1]), 0.0);
        assert!((covered(&[0.0, 0.0, 0.2, 0.2], &[0.0, 0.0, 0.1, 0.2]) - 0.5).abs() < 1e-6);
        let g = grow(&[0.95, 0.95, 0.05, 0.05], 3.0, 0.25);
        assert!(g[0] >= 0.0 && g[0] + g[2] <= 1.0 + 1e-6 && g[2] >= 0.25 - 1e-6);
    }
}
