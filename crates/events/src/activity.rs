//! Turns a camera's per-frame observations (motion regions, and now and
//! then the objects the detector found in them) into activity events:
//! one event per stretch of activity, opened at the first frame with
//! motion, sharpened as objects are recognised (`motion` → `person`),
//! closed when the scene has been still for the post-roll.
//!
//! Pure logic, no I/O and no clock: the caller feeds frame times and acts
//! on the returned [`Action`]s (store rows, MQTT, snapshots), which keeps
//! every rule testable with made-up observations.
//!
//! Invariants:
//! - At most one activity event is open per camera at a time.
//! - An event's start is the time of the first frame that showed motion;
//!   its end is the time of the last frame that did (the post-roll and
//!   pre-roll are applied when a clip is cut, not to the stored times).
//! - `MotionOn` always precedes the matching `MotionOff`, label ON/OFF
//!   pairs likewise; on [`ActivityTracker::finish`] everything still on is
//!   switched off and the open event is closed.
//! - An event never lasts longer than `max_event`: long activity is split
//!   into consecutive events so the list stays useful.

use std::collections::{BTreeMap, BTreeSet};

use porchlight_detect::Label;

/// A box in normalised coordinates: `[x, y, width, height]`, all in 0..=1.
pub type NBox = [f32; 4];

/// What the detector found, mapped to the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub label: Label,
    /// The model's class (`dog`), for the event's detail.
    pub class: String,
    pub score: f32,
    pub bbox: NBox,
    /// Zones the object stands in (its box's bottom centre, where feet and
    /// wheels touch the ground).
    pub zones: Vec<String>,
}

/// One analysed frame.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Frame time, microseconds since the Unix epoch.
    pub t_us: i64,
    /// Motion that counts (inside zones, outside masks, big enough).
    pub motion: bool,
    /// Zones that the motion touched.
    pub zones: Vec<String>,
    /// Fraction of the frame that moved (to pick a snapshot when nothing
    /// is recognised).
    pub moved_area: f32,
    /// Objects found on this frame, when the detector ran on it.
    pub objects: Option<Vec<Object>>,
}

/// Settings of the tracker.
#[derive(Debug, Clone)]
pub struct ActivityOptions {
    /// Stillness after which the activity (and motion) is over.
    pub postroll_us: i64,
    /// Longest single event.
    pub max_event_us: i64,
    /// Labels that make an event an alert (others are "detection"s).
    pub alert_labels: BTreeSet<Label>,
    /// Include zones and the labels that alert in each (`None`: every
    /// label in `alert_labels`). When there are zones, an object alerts
    /// only inside one whose rule admits its label.
    pub zone_rules: BTreeMap<String, Option<BTreeSet<Label>>>,
    /// A label stays ON this long after it was last seen.
    pub label_hold_us: i64,
}

impl Default for ActivityOptions {
    fn default() -> Self {
        ActivityOptions {
            postroll_us: 5_000_000,
            max_event_us: 300_000_000,
            alert_labels: [Label::Person, Label::Parcel].into_iter().collect(),
            zone_rules: BTreeMap::new(),
            label_hold_us: 5_000_000,
        }
    }
}

/// What the caller should do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The camera's motion sensor turns on (MQTT `…/motion` ON).
    MotionOn {
        t_us: i64,
    },
    /// And off again.
    MotionOff {
        t_us: i64,
    },
    /// A label is seen (MQTT `…/person` ON), or no longer.
    LabelOn {
        label: Label,
        t_us: i64,
    },
    LabelOff {
        label: Label,
        t_us: i64,
    },
    /// Insert a new event row.
    Open {
        start_us: i64,
        kind: String,
        alert: bool,
        zones: Vec<String>,
    },
    /// The open event changed (kind, labels, zones, score).
    Update {
        kind: String,
        alert: bool,
        zones: Vec<String>,
        score: Option<f32>,
        labels: Vec<String>,
    },
    /// The current frame is the best picture of the open event so far:
    /// take the snapshot from it.
    Snapshot,
    /// The open event is over.
    Close {
        end_us: i64,
    },
}

#[derive(Debug, Clone)]
struct Open {
    start_us: i64,
    last_motion_us: i64,
    /// Best score per label.
    labels: BTreeMap<Label, f32>,
    zones: BTreeSet<String>,
    alert: bool,
    /// Quality of the current snapshot: (has object, score or area).
    best: (bool, f32),
}

/// The tracker of one camera.
#[derive(Debug)]
pub struct ActivityTracker {
    opts: ActivityOptions,
    open: Option<Open>,
    /// When each label that is ON was last seen.
    labels_on: BTreeMap<Label, i64>,
}

/// The event kind for a set of labels: the most specific one.
pub fn kind_for(labels: &BTreeMap<Label, f32>) -> String {
    for l in [Label::Person, Label::Vehicle, Label::Animal, Label::Parcel] {
        if labels.contains_key(&l) {
            return l.as_str().to_owned();
        }
    }
    "motion".to_owned()
}

impl ActivityTracker {
    pub fn new(opts: ActivityOptions) -> ActivityTracker {
        ActivityTracker {
            opts,
            open: None,
            labels_on: BTreeMap::new(),
        }
    }

    /// Whether an event is open.
    pub fn is_active(&self) -> bool {
        self.open.is_some()
    }

    fn object_alerts(&self, o: &Object) -> bool {
        self.opts.alert_labels.contains(&o.label)
            && (self.opts.zone_rules.is_empty()
                || o.zones.iter().any(|z| match self.opts.zone_rules.get(z) {
                    Some(None) => true,
                    Some(Some(labels)) => labels.contains(&o.label),
                    None => false,
                }))
    }

    /// Feeds one analysed frame.
    pub fn observe(&mut self, obs: &Observation) -> Vec<Action> {
        let mut out = Vec::new();
        let t = obs.t_us;

        // Labels: ON when seen, OFF after the hold.
        if let Some(objs) = &obs.objects {
            for o in objs {
                if self.labels_on.insert(o.label, t).is_none() {
                    out.push(Action::LabelOn {
                        label: o.label,
                        t_us: t,
                    });
                }
            }
        }
        let hold = self.opts.label_hold_us;
        let expired: Vec<Label> = self
            .labels_on
            .iter()
            .filter(|(_, &seen)| t - seen >= hold)
            .map(|(l, _)| *l)
            .collect();
        for l in expired {
            self.labels_on.remove(&l);
            out.push(Action::LabelOff { label: l, t_us: t });
        }

        // Close a finished or over-long event.
        if let Some(open) = &self.open {
            let still_for = t - open.last_motion_us;
            let too_long = obs.motion && t - open.start_us >= self.opts.max_event_us;
            if still_for >= self.opts.postroll_us || too_long {
                let end = if too_long { t } else { open.last_motion_us };
                out.push(Action::Close { end_us: end });
                self.open = None;
                if !too_long {
                    out.push(Action::MotionOff { t_us: t });
                }
            }
        }

        if !obs.motion {
            return out;
        }
        if self.open.is_none() {
            let fresh = Open {
                start_us: t,
                last_motion_us: t,
                labels: BTreeMap::new(),
                zones: obs.zones.iter().cloned().collect(),
                alert: false,
                best: (false, -1.0),
            };
            // A split (over-long) event keeps motion ON.
            if !out
                .iter()
                .any(|a| matches!(a, Action::Close { end_us } if *end_us == t))
            {
                out.push(Action::MotionOn { t_us: t });
            }
            out.push(Action::Open {
                start_us: t,
                kind: "motion".into(),
                alert: false,
                zones: fresh.zones.iter().cloned().collect(),
            });
            self.open = Some(fresh);
        }
        let alerts: Vec<bool> = obs
            .objects
            .iter()
            .flatten()
            .map(|o| self.object_alerts(o))
            .collect();
        let open = self.open.as_mut().expect("opened above");
        open.last_motion_us = t;
        let before = (
            kind_for(&open.labels),
            open.alert,
            open.zones.clone(),
            open.labels.clone(),
        );
        open.zones.extend(obs.zones.iter().cloned());
        let mut best_now = (false, obs.moved_area);
        for (o, alert) in obs.objects.iter().flatten().zip(alerts) {
            open.zones.extend(o.zones.iter().cloned());
            let s = open.labels.entry(o.label).or_insert(0.0);
            *s = s.max(o.score);
            open.alert |= alert;
            // Prefer pictures of the event's most specific label.
            let rank = if o.label.as_str() == kind_for(&open.labels) {
                o.score + 1.0
            } else {
                o.score
            };
            if !best_now.0 || rank > best_now.1 {
                best_now = (true, rank);
            }
        }
        let kind = kind_for(&open.labels);
        if (
            kind.clone(),
            open.alert,
            open.zones.clone(),
            open.labels.clone(),
        ) != before
        {
            out.push(Action::Update {
                kind,
                alert: open.alert,
                zones: open.zones.iter().cloned().collect(),
                score: open.labels.values().copied().reduce(f32::max),
                labels: open.labels.keys().map(|l| l.as_str().to_owned()).collect(),
            });
        }
        let better = match (best_now.0, open.best.0) {
            (true, false) => true,
            (false, true) => false,
            _ => best_now.1 > open.best.1 + 1e-6,
        };
        if better {
            open.best = best_now;
            out.push(Action::Snapshot);
        }
        out
    }

    /// The camera stops being watched: closes the open event and switches
    /// everything off.
    pub fn finish(&mut self, t_us: i64) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(open) = self.open.take() {
            out.push(Action::Close {
                end_us: open.last_motion_us,
            });
            out.push(Action::MotionOff { t_us });
        }
        for (l, _) in std::mem::take(&mut self.labels_on) {
            out.push(Action::LabelOff { label: l, t_us });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn still(t: i64) -> Observation {
        Observation {
            t_us: t,
            ..Default::default()
        }
    }
    fn moving(t: i64, zones: &[&str]) -> Observation {
        Observation {
            t_us: t,
            motion: true,
            zones: zones.iter().map(|z| z.to_string()).collect(),
            moved_area: 0.01,
            objects: None,
        }
    }
    fn person(score: f32, zone: &str) -> Object {
        Object {
            label: Label::Person,
            class: "person".into(),
            score,
            bbox: [0.1, 0.1, 0.2, 0.5],
            zones: if zone.is_empty() {
                vec![]
            } else {
                vec![zone.into()]
            },
        }
    }
    const S: i64 = 1_000_000;

    #[test]
    fn stillness_makes_no_event() {
        let mut t = ActivityTracker::new(ActivityOptions::default());
        for i in 0..100 {
            assert!(t.observe(&still(i * S / 5)).is_empty());
        }
        assert!(t.finish(100 * S).is_empty());
    }

    #[test]
    fn one_event_from_first_to_last_motion_then_postroll() {
        let mut t = ActivityTracker::new(ActivityOptions::default());
        assert!(t.observe(&still(0)).is_empty());
        let a = t.observe(&moving(2 * S, &["porch"]));
        assert_eq!(a[0], Action::MotionOn { t_us: 2 * S });
        assert!(
            matches!(&a[1], Action::Open { start_us, kind, alert: false, zones } if *start_us == 2 * S && kind == "motion" && zones == &vec!["porch".to_string()])
        );
        assert!(a.contains(&Action::Snapshot));
        // Motion continues with a person recognised: the event sharpens.
        let mut obs = moving(3 * S, &["porch"]);
        obs.objects = Some(vec![person(0.7, "porch")]);
        let a = t.observe(&obs);
        assert!(a.contains(&Action::LabelOn {
            label: Label::Person,
            t_us: 3 * S
        }));
        assert!(a.iter().any(|x| matches!(x, Action::Update { kind, alert: true, score: Some(s), .. } if kind == "person" && (*s - 0.7).abs() < 1e-6)));
        assert!(
            a.contains(&Action::Snapshot),
            "a recognised person beats plain motion"
        );
        // A worse person picture does not replace the snapshot.
        let mut obs = moving(4 * S, &["porch"]);
        obs.objects = Some(vec![person(0.6, "porch")]);
        let a = t.observe(&obs);
        assert!(
            !a.contains(&Action::Snapshot) && !a.iter().any(|x| matches!(x, Action::Update { .. }))
        );
        // Still, but within the post-roll: nothing closes.
        assert!(t.observe(&still(8 * S)).is_empty());
        // Past the post-roll (5 s after the last motion at 4 s).
        let a = t.observe(&still(9 * S));
        assert!(a.contains(&Action::Close { end_us: 4 * S }));
        assert!(a.contains(&Action::MotionOff { t_us: 9 * S }));
        assert!(a.contains(&Action::LabelOff {
            label: Label::Person,
            t_us: 9 * S
        }));
        assert!(!t.is_active());
    }

    #[test]
    fn labels_outside_alert_zones_do_not_alert() {
        let opts = ActivityOptions {
            zone_rules: [
                ("porch".to_string(), None),
                (
                    "street".to_string(),
                    Some([Label::Vehicle].into_iter().collect()),
                ),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        let mut t = ActivityTracker::new(opts);
        let mut obs = moving(S, &["street"]);
        obs.objects = Some(vec![person(0.9, "street")]);
        let a = t.observe(&obs);
        assert!(a
            .iter()
            .any(|x| matches!(x, Action::Update { kind, alert: false, .. } if kind == "person")));
        let mut obs = moving(2 * S, &["porch"]);
        obs.objects = Some(vec![person(0.8, "porch")]);
        let a = t.observe(&obs);
        assert!(a
            .iter()
            .any(|x| matches!(x, Action::Update { alert: true, .. })));
    }

    #[test]
    fn animals_are_detections_not_alerts_by_default() {
        let mut t = ActivityTracker::new(ActivityOptions::default());
        let mut obs = moving(S, &[]);
        obs.objects = Some(vec![Object {
            label: Label::Animal,
            class: "cat".into(),
            score: 0.8,
            bbox: [0.0; 4],
            zones: vec![],
        }]);
        let a = t.observe(&obs);
        assert!(a
            .iter()
            .any(|x| matches!(x, Action::Update { kind, alert: false, .. } if kind == "animal")));
    }

    #[test]
    fn long_activity_is_split_and_motion_stays_on() {
        let opts = ActivityOptions {
            max_event_us: 10 * S,
            ..Default::default()
        };
        let mut t = ActivityTracker::new(opts);
        let mut opens = 0;
        let mut closes = 0;
        let mut ons = 0;
        for i in 0..=25 {
            for a in t.observe(&moving(i * S, &[])) {
                match a {
                    Action::Open { .. } => opens += 1,
                    Action::Close { .. } => closes += 1,
                    Action::MotionOn { .. } => ons += 1,
                    Action::MotionOff { .. } => panic!("motion never stopped"),
                    _ => {}
                }
            }
        }
        assert_eq!((opens, closes, ons), (3, 2, 1));
        let a = t.finish(30 * S);
        assert!(
            a.contains(&Action::Close { end_us: 25 * S })
                && a.contains(&Action::MotionOff { t_us: 30 * S })
        );
    }
}
