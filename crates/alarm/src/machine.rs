//! The alarm state machine: pure, driven by explicit instants, no I/O.
//!
//! ```text
//! disarmed --arm--> arming --(exit delay)--> armed_home | armed_away
//! armed_* --counted sensor--> pending --(entry delay)--> triggered
//! any --disarm--> disarmed
//! ```
//!
//! The siren sounds for `siren_ms` after the trigger, then stops; the alarm
//! stays `triggered` until someone disarms it (see design/alarm.md).

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Which armed mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// People are home: by default only doors and windows (contact
    /// sensors) count.
    Home,
    /// Nobody is home: by default contact and motion sensors count.
    Away,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Home => "home",
            Mode::Away => "away",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "home" => Some(Mode::Home),
            "away" => Some(Mode::Away),
            _ => None,
        }
    }
}

/// What a device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Contact,
    Motion,
    Doorbell,
    Siren,
    Keypad,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Contact,
        Kind::Motion,
        Kind::Doorbell,
        Kind::Siren,
        Kind::Keypad,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Contact => "contact",
            Kind::Motion => "motion",
            Kind::Doorbell => "doorbell",
            Kind::Siren => "siren",
            Kind::Keypad => "keypad",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Whether a sensor of `kind` can set the alarm off in `mode` by default
/// (no per-sensor choice): home → doors and windows (contacts); away →
/// every intrusion sensor (contacts and motion). Doorbells, sirens and
/// keypads never do.
pub fn counts(mode: Mode, kind: Kind) -> bool {
    Modes::default_for(kind).contains(mode)
}

/// The armed modes in which a sensor sets the alarm off.
///
/// Written `home`, `away`, `home,away` or `none`; a sensor without a choice
/// of its own uses [`Modes::default_for`] its kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modes {
    pub home: bool,
    pub away: bool,
}

impl Modes {
    pub const NONE: Modes = Modes {
        home: false,
        away: false,
    };
    pub const BOTH: Modes = Modes {
        home: true,
        away: true,
    };

    /// The kind's default: see [`counts`].
    pub fn default_for(kind: Kind) -> Modes {
        match kind {
            Kind::Contact => Modes::BOTH,
            Kind::Motion => Modes {
                home: false,
                away: true,
            },
            Kind::Doorbell | Kind::Siren | Kind::Keypad => Modes::NONE,
        }
    }

    /// What a sensor of `kind` with the stored choice `stored` (None: the
    /// default) counts in. An unreadable stored value falls back to the
    /// default (the store's CHECK constraint keeps it readable).
    pub fn effective(kind: Kind, stored: Option<&str>) -> Modes {
        match stored.map(Modes::parse) {
            Some(Ok(m)) if kind_can_count(kind) => m,
            _ => Modes::default_for(kind),
        }
    }

    pub fn contains(self, mode: Mode) -> bool {
        match mode {
            Mode::Home => self.home,
            Mode::Away => self.away,
        }
    }

    /// `home`, `away`, `home,away` (either order, spaces allowed) or `none`.
    pub fn parse(s: &str) -> Result<Modes, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("none") {
            return Ok(Modes::NONE);
        }
        let mut m = Modes::NONE;
        for part in s.split(',').map(str::trim) {
            match Mode::parse(&part.to_ascii_lowercase()) {
                Some(Mode::Home) => m.home = true,
                Some(Mode::Away) => m.away = true,
                None => {
                    return Err(format!(
                        "`{part}` is not a mode: use home, away, home,away or none"
                    ))
                }
            }
        }
        Ok(m)
    }

    /// The canonical spelling: `home`, `away`, `home,away` or `none`.
    pub fn as_str(self) -> &'static str {
        match (self.home, self.away) {
            (true, true) => "home,away",
            (true, false) => "home",
            (false, true) => "away",
            (false, false) => "none",
        }
    }

    /// The modes as a list (`["home", "away"]`), for JSON.
    pub fn list(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.home {
            v.push("home");
        }
        if self.away {
            v.push("away");
        }
        v
    }
}

impl std::fmt::Display for Modes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a sensor of this kind can be chosen to set the alarm off at all
/// (contacts and motion sensors; a doorbell, siren or keypad has no
/// "open" state).
pub fn kind_can_count(kind: Kind) -> bool {
    matches!(kind, Kind::Contact | Kind::Motion)
}

/// Where the machine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Disarmed,
    Arming,
    Armed,
    Pending,
    Triggered,
}

/// Exit delay, entry delay and siren time limit, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delays {
    pub exit_ms: u64,
    pub entry_ms: u64,
    pub siren_ms: u64,
}

impl Default for Delays {
    fn default() -> Self {
        Delays {
            exit_ms: 30_000,
            entry_ms: 30_000,
            siren_ms: 180_000,
        }
    }
}

/// Something the hub must do because the machine moved.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// The state changed. `action` is the audit action (`alarm.arm`, …).
    Changed {
        from: String,
        to: String,
        action: &'static str,
        by: String,
        cause: Option<String>,
    },
    /// Sound the sirens for this long.
    SirenOn(Duration),
    /// Stop the sirens.
    SirenOff,
    /// Sensors open when arming, ignored until the next disarm.
    Bypassed(Vec<String>),
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the alarm is {0}: disarm it first")]
    MustDisarm(String),
}

/// The alarm's whole state; serialised into the store after every change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub phase: Phase,
    /// The armed mode (None only when disarmed).
    pub mode: Option<Mode>,
    pub delays: Delays,
    /// When the current phase began.
    pub since: Timestamp,
    /// End of the exit delay (arming) or entry delay (pending).
    pub deadline: Option<Timestamp>,
    /// While triggered: when the siren stops.
    pub siren_until: Option<Timestamp>,
    /// Sensors bypassed at arming.
    pub bypassed: Vec<String>,
    /// The sensor that started pending / triggered.
    pub cause: Option<String>,
}

fn after(t: Timestamp, ms: u64) -> Timestamp {
    t.checked_add(jiff::SignedDuration::from_millis(ms as i64))
        .unwrap_or(t)
}

impl Machine {
    pub fn disarmed(now: Timestamp) -> Machine {
        Machine {
            phase: Phase::Disarmed,
            mode: None,
            delays: Delays::default(),
            since: now,
            deadline: None,
            siren_until: None,
            bypassed: Vec::new(),
            cause: None,
        }
    }

    /// The state's public name, as Home Assistant spells it: `disarmed`,
    /// `arming`, `armed_home`, `armed_away`, `pending`, `triggered`.
    pub fn state_name(&self) -> String {
        match (self.phase, self.mode) {
            (Phase::Disarmed, _) => "disarmed".into(),
            (Phase::Arming, _) => "arming".into(),
            (Phase::Armed, Some(m)) => format!("armed_{}", m.as_str()),
            (Phase::Armed, None) => "armed_away".into(),
            (Phase::Pending, _) => "pending".into(),
            (Phase::Triggered, _) => "triggered".into(),
        }
    }

    /// The next instant at which [`Machine::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        match (self.deadline, self.siren_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn changed(
        &self,
        from: String,
        action: &'static str,
        by: &str,
        cause: Option<String>,
    ) -> Effect {
        Effect::Changed {
            from,
            to: self.state_name(),
            action,
            by: by.to_owned(),
            cause,
        }
    }

    /// Arms in `mode`. `open` lists sensors that are open (active) right
    /// now, with the modes they count in; those that count in `mode` are
    /// bypassed, with a warning.
    pub fn arm(
        &mut self,
        mode: Mode,
        delays: Delays,
        open: &[(String, Modes)],
        by: &str,
        now: Timestamp,
    ) -> Result<Vec<Effect>, Refused> {
        if matches!(self.phase, Phase::Pending | Phase::Triggered) {
            return Err(Refused::MustDisarm(self.state_name()));
        }
        let from = self.state_name();
        let mut fx = Vec::new();
        self.mode = Some(mode);
        self.delays = delays;
        self.since = now;
        self.cause = None;
        self.siren_until = None;
        self.bypassed = open
            .iter()
            .filter(|(_, m)| m.contains(mode))
            .map(|(n, _)| n.clone())
            .collect();
        self.bypassed.sort();
        if delays.exit_ms == 0 {
            self.phase = Phase::Armed;
            self.deadline = None;
        } else {
            self.phase = Phase::Arming;
            self.deadline = Some(after(now, delays.exit_ms));
        }
        fx.push(self.changed(from, "alarm.arm", by, None));
        if !self.bypassed.is_empty() {
            fx.push(Effect::Bypassed(self.bypassed.clone()));
        }
        Ok(fx)
    }

    /// Disarms from any state (a no-op when already disarmed).
    pub fn disarm(&mut self, by: &str, now: Timestamp) -> Vec<Effect> {
        if self.phase == Phase::Disarmed {
            return Vec::new();
        }
        let from = self.state_name();
        let was_triggered = self.phase == Phase::Triggered;
        let delays = self.delays;
        *self = Machine::disarmed(now);
        self.delays = delays;
        let mut fx = vec![self.changed(from, "alarm.disarm", by, None)];
        if was_triggered {
            fx.push(Effect::SirenOff);
        }
        fx
    }

    /// A sensor reported active (contact open, motion seen); `counts_in`:
    /// the modes it counts in ([`Modes::effective`]).
    pub fn sensor_active(&mut self, name: &str, counts_in: Modes, now: Timestamp) -> Vec<Effect> {
        let Some(mode) = self.mode else {
            return Vec::new();
        };
        if self.phase != Phase::Armed
            || !counts_in.contains(mode)
            || self.bypassed.iter().any(|b| b == name)
        {
            return Vec::new();
        }
        let from = self.state_name();
        self.since = now;
        self.cause = Some(name.to_owned());
        if self.delays.entry_ms == 0 {
            self.deadline = None;
            self.trigger(from, now)
        } else {
            self.phase = Phase::Pending;
            self.deadline = Some(after(now, self.delays.entry_ms));
            vec![self.changed(from, "alarm.pending", "system", self.cause.clone())]
        }
    }

    fn trigger(&mut self, from: String, at: Timestamp) -> Vec<Effect> {
        self.phase = Phase::Triggered;
        self.since = at;
        self.deadline = None;
        let until = after(at, self.delays.siren_ms);
        let mut fx = vec![self.changed(from, "alarm.trigger", "system", self.cause.clone())];
        self.siren_until = Some(until);
        fx.push(Effect::SirenOn(Duration::from_millis(self.delays.siren_ms)));
        fx
    }

    /// Moves on whatever timers have run out by `now`. Safe to call at any
    /// time; after a restart it catches up (an entry delay that ran out
    /// while the hub was off triggers at once, with the siren for whatever
    /// is left of its time limit).
    pub fn tick(&mut self, now: Timestamp) -> Vec<Effect> {
        let mut fx = Vec::new();
        loop {
            match (self.phase, self.deadline, self.siren_until) {
                (Phase::Arming, Some(d), _) if d <= now => {
                    let from = self.state_name();
                    self.phase = Phase::Armed;
                    self.since = d;
                    self.deadline = None;
                    fx.push(self.changed(from, "alarm.armed", "system", None));
                }
                (Phase::Pending, Some(d), _) if d <= now => {
                    let from = self.state_name();
                    let mut t = self.trigger(from, d);
                    if self.siren_until.is_some_and(|u| u <= now) {
                        // The whole siren time passed while the hub was off.
                        t.retain(|e| !matches!(e, Effect::SirenOn(_)));
                        self.siren_until = None;
                    } else if let Some(u) = self.siren_until {
                        let left = u.duration_since(now).as_millis().max(0) as u64;
                        for e in &mut t {
                            if let Effect::SirenOn(d) = e {
                                *d = Duration::from_millis(left);
                            }
                        }
                    }
                    fx.extend(t);
                }
                (Phase::Triggered, _, Some(u)) if u <= now => {
                    self.siren_until = None;
                    fx.push(Effect::SirenOff);
                }
                _ => return fx,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use porchlight_base::clock::{Clock, ManualClock};

    fn delays() -> Delays {
        Delays {
            exit_ms: 10_000,
            entry_ms: 5_000,
            siren_ms: 60_000,
        }
    }

    fn names(fx: &[Effect]) -> Vec<String> {
        fx.iter()
            .map(|e| match e {
                Effect::Changed { to, .. } => to.clone(),
                Effect::SirenOn(_) => "siren_on".into(),
                Effect::SirenOff => "siren_off".into(),
                Effect::Bypassed(b) => format!("bypass:{}", b.join(",")),
            })
            .collect()
    }

    #[test]
    fn away_full_cycle_with_manual_clock() {
        let clock = ManualClock::at_unix(1_800_000_000);
        let mut m = Machine::disarmed(clock.now());
        let fx = m
            .arm(Mode::Away, delays(), &[], "cli", clock.now())
            .unwrap();
        assert_eq!(names(&fx), ["arming"]);
        // Motion during the exit delay is ignored.
        assert!(m
            .sensor_active("hall", Modes::default_for(Kind::Motion), clock.now())
            .is_empty());
        clock.advance(Duration::from_millis(9_999));
        assert!(m.tick(clock.now()).is_empty());
        clock.advance(Duration::from_millis(1));
        assert_eq!(names(&m.tick(clock.now())), ["armed_away"]);
        assert_eq!(m.state_name(), "armed_away");
        // A doorbell never counts.
        assert!(m
            .sensor_active("bell", Modes::default_for(Kind::Doorbell), clock.now())
            .is_empty());
        assert_eq!(
            names(&m.sensor_active("door", Modes::default_for(Kind::Contact), clock.now())),
            ["pending"]
        );
        assert_eq!(m.next_deadline(), Some(after(clock.now(), 5_000)));
        clock.advance(Duration::from_secs(5));
        let fx = m.tick(clock.now());
        assert_eq!(names(&fx), ["triggered", "siren_on"]);
        assert!(fx.contains(&Effect::SirenOn(Duration::from_secs(60))));
        clock.advance(Duration::from_secs(60));
        assert_eq!(names(&m.tick(clock.now())), ["siren_off"]);
        // Stays triggered until disarmed.
        assert_eq!(m.state_name(), "triggered");
        assert!(m
            .arm(Mode::Home, delays(), &[], "cli", clock.now())
            .is_err());
        let fx = m.disarm("alex", clock.now());
        assert_eq!(names(&fx), ["disarmed", "siren_off"]);
        assert!(m.disarm("alex", clock.now()).is_empty());
    }

    #[test]
    fn disarm_within_entry_delay_never_triggers() {
        let clock = ManualClock::at_unix(1_800_000_000);
        let mut m = Machine::disarmed(clock.now());
        m.arm(
            Mode::Away,
            Delays {
                exit_ms: 0,
                ..delays()
            },
            &[],
            "cli",
            clock.now(),
        )
        .unwrap();
        assert_eq!(m.state_name(), "armed_away");
        m.sensor_active("door", Modes::default_for(Kind::Contact), clock.now());
        clock.advance(Duration::from_secs(4));
        assert_eq!(names(&m.disarm("keypad", clock.now())), ["disarmed"]);
        clock.advance(Duration::from_secs(100));
        assert!(m.tick(clock.now()).is_empty());
        assert_eq!(m.state_name(), "disarmed");
    }

    #[test]
    fn home_mode_ignores_motion_and_bypasses_open_windows() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut m = Machine::disarmed(now);
        let open = vec![
            ("window".to_string(), Modes::default_for(Kind::Contact)),
            ("hall".to_string(), Modes::default_for(Kind::Motion)),
        ];
        let fx = m
            .arm(
                Mode::Home,
                Delays {
                    exit_ms: 0,
                    ..delays()
                },
                &open,
                "cli",
                now,
            )
            .unwrap();
        assert_eq!(names(&fx), ["armed_home", "bypass:window"]);
        assert!(m
            .sensor_active("hall", Modes::default_for(Kind::Motion), now)
            .is_empty());
        assert!(m
            .sensor_active("window", Modes::default_for(Kind::Contact), now)
            .is_empty());
        assert_eq!(
            names(&m.sensor_active("door", Modes::default_for(Kind::Contact), now)),
            ["pending"]
        );
    }

    #[test]
    fn zero_entry_delay_triggers_at_once() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut m = Machine::disarmed(now);
        m.arm(
            Mode::Away,
            Delays {
                exit_ms: 0,
                entry_ms: 0,
                siren_ms: 1000,
            },
            &[],
            "cli",
            now,
        )
        .unwrap();
        assert_eq!(
            names(&m.sensor_active("hall", Modes::default_for(Kind::Motion), now)),
            ["triggered", "siren_on"]
        );
    }

    #[test]
    fn restart_resumes_timers_from_the_snapshot() {
        let clock = ManualClock::at_unix(1_800_000_000);
        let mut m = Machine::disarmed(clock.now());
        m.arm(Mode::Away, delays(), &[], "cli", clock.now())
            .unwrap();
        let saved = serde_json::to_value(&m).unwrap();
        // Power cut for 3 s: still arming, 7 s left.
        clock.advance(Duration::from_secs(3));
        let mut back: Machine = serde_json::from_value(saved).unwrap();
        assert!(back.tick(clock.now()).is_empty());
        assert_eq!(back.state_name(), "arming");
        clock.advance(Duration::from_secs(7));
        assert_eq!(names(&back.tick(clock.now())), ["armed_away"]);
        // Pending, then off for 20 s: triggers on start with 45 s of siren left.
        back.sensor_active("door", Modes::default_for(Kind::Contact), clock.now());
        let saved = serde_json::to_value(&back).unwrap();
        clock.advance(Duration::from_secs(20));
        let mut again: Machine = serde_json::from_value(saved).unwrap();
        let fx = again.tick(clock.now());
        assert_eq!(names(&fx), ["triggered", "siren_on"]);
        assert!(fx.contains(&Effect::SirenOn(Duration::from_secs(45))));
        // Off for longer than the siren limit: triggered, siren silent.
        let mut late: Machine =
            serde_json::from_value(serde_json::to_value(&back).unwrap()).unwrap();
        clock.advance(Duration::from_secs(600));
        assert_eq!(names(&late.tick(clock.now())), ["triggered"]);
        assert_eq!(late.next_deadline(), None);
    }

    #[test]
    fn per_sensor_modes_override_the_kind_default() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let no_delay = Delays {
            exit_ms: 0,
            ..delays()
        };
        // A hall motion sensor chosen to count at home too.
        let hall = Modes::effective(Kind::Motion, Some("home,away"));
        assert_eq!(hall, Modes::BOTH);
        let mut m = Machine::disarmed(now);
        m.arm(Mode::Home, no_delay, &[], "cli", now).unwrap();
        assert_eq!(names(&m.sensor_active("hall", hall, now)), ["pending"]);
        // A garage door chosen to count only when away.
        let garage = Modes::effective(Kind::Contact, Some("away"));
        let mut m = Machine::disarmed(now);
        m.arm(Mode::Home, no_delay, &[], "cli", now).unwrap();
        assert!(m.sensor_active("garage", garage, now).is_empty());
        // `none`: never, in either mode; and an open one is not bypassed.
        let shed = Modes::effective(Kind::Contact, Some("none"));
        let mut m = Machine::disarmed(now);
        let fx = m
            .arm(Mode::Away, no_delay, &[("shed".into(), shed)], "cli", now)
            .unwrap();
        assert_eq!(names(&fx), ["armed_away"]);
        assert!(m.sensor_active("shed", shed, now).is_empty());
        assert_eq!(names(&m.sensor_active("garage", garage, now)), ["pending"]);
        // A doorbell cannot be made to count.
        assert_eq!(
            Modes::effective(Kind::Doorbell, Some("home,away")),
            Modes::NONE
        );
    }

    #[test]
    fn modes_parse_and_print() {
        assert_eq!(Modes::parse("away, home").unwrap(), Modes::BOTH);
        assert_eq!(Modes::parse("HOME").unwrap().as_str(), "home");
        assert_eq!(Modes::parse("none").unwrap(), Modes::NONE);
        let e = Modes::parse("home,night").unwrap_err();
        assert!(e.contains("`night` is not a mode"), "{e}");
        assert!(Modes::parse("").is_err());
        assert!(Modes::parse("home,").is_err());
        for k in Kind::ALL {
            for mode in [Mode::Home, Mode::Away] {
                assert_eq!(counts(mode, k), Modes::effective(k, None).contains(mode));
            }
        }
        assert!(counts(Mode::Home, Kind::Contact) && !counts(Mode::Home, Kind::Motion));
        assert!(counts(Mode::Away, Kind::Motion) && !counts(Mode::Away, Kind::Siren));
    }
}
