//! Per-user notification rules: checking a user's choices when they are
//! saved, and judging a notice against them when it is sent.
//!
//! The rules, in the order they are applied (camera *visibility* — may this
//! user see this camera at all — is checked by the notifier before any of
//! this and is not a rule a user can relax):
//!
//! 1. An **alarm** notice (`kind == "alarm"`) passes everything below when
//!    the user keeps "alarm events always" on (the default): a break-in at
//!    03:00 is exactly what quiet hours must not hide.
//! 2. **Cameras**: a list of camera ids, or all. Notices without a camera
//!    (the alarm, a test) are not filtered by camera.
//! 3. **Kinds**: a list of kinds/labels (`person`, `package`, `doorbell`, …),
//!    or all; a notice passes if its kind or any of its labels is listed.
//! 4. **Alarm modes**: the modes (`disarmed`, `home`, `away`) in which to
//!    notify, or all; notices that carry no mode pass.
//! 5. **Quiet hours**: a window in the hub's local time (`22:00`–`07:00`
//!    wraps past midnight) in which nothing is sent.

use porchlight_store::{NotificationRules, QuietHours};

use crate::Notice;

/// The alarm modes a rule may name.
pub const ALARM_MODES: [&str; 3] = ["disarmed", "home", "away"];

/// Longest list a rule may hold, and longest kind name.
const MAX_LIST: usize = 200;
const MAX_KIND_LEN: usize = 40;

/// Why a notice was not sent to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Camera,
    Kind,
    AlarmMode,
    QuietHours,
}

/// Judges `n` against `rules`; `local_minute` is the notice's time in the
/// hub's time zone, as minutes after midnight.
pub fn judge(rules: &NotificationRules, n: &Notice, local_minute: u16) -> Result<(), Skip> {
    if n.kind == "alarm" && rules.alarm_always {
        return Ok(());
    }
    if let (Some(list), Some(cam)) = (&rules.cameras, n.camera_id) {
        if !list.contains(&cam) {
            return Err(Skip::Camera);
        }
    }
    if let Some(kinds) = &rules.kinds {
        let listed = |k: &str| kinds.iter().any(|x| x.eq_ignore_ascii_case(k));
        if !listed(&n.kind) && !n.labels.iter().any(|l| listed(l)) {
            return Err(Skip::Kind);
        }
    }
    if let (Some(modes), Some(mode)) = (&rules.alarm_modes, &n.alarm_mode) {
        if !modes.iter().any(|m| m.eq_ignore_ascii_case(mode)) {
            return Err(Skip::AlarmMode);
        }
    }
    if let Some(q) = rules.quiet_hours {
        if in_quiet_hours(q, local_minute) {
            return Err(Skip::QuietHours);
        }
    }
    Ok(())
}

/// Is `minute` (after local midnight) inside `q`? The start is inside, the
/// end is not.
pub fn in_quiet_hours(q: QuietHours, minute: u16) -> bool {
    if q.start_min <= q.end_min {
        q.start_min <= minute && minute < q.end_min
    } else {
        minute >= q.start_min || minute < q.end_min
    }
}

/// Checks rules a user wants to save; the error says what is wrong.
pub fn validate(rules: &NotificationRules) -> Result<(), String> {
    if let Some(q) = rules.quiet_hours {
        if q.start_min >= 1440 || q.end_min >= 1440 {
            return Err("quiet hours must be times of day between 00:00 and 23:59".into());
        }
        if q.start_min == q.end_min {
            return Err("quiet hours must start and end at different times".into());
        }
    }
    if let Some(c) = &rules.cameras {
        if c.len() > MAX_LIST {
            return Err(format!("at most {MAX_LIST} cameras"));
        }
    }
    if let Some(k) = &rules.kinds {
        if k.len() > MAX_LIST {
            return Err(format!("at most {MAX_LIST} kinds"));
        }
        if let Some(bad) = k.iter().find(|k| {
            k.is_empty()
                || k.len() > MAX_KIND_LEN
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }) {
            return Err(format!(
                "kind `{bad}` is not a kind name (letters, digits, `-` and `_`, at most {MAX_KIND_LEN})"
            ));
        }
    }
    if let Some(m) = &rules.alarm_modes {
        if let Some(bad) = m.iter().find(|m| !ALARM_MODES.contains(&m.as_str())) {
            return Err(format!(
                "unknown alarm mode `{bad}`; expected disarmed, home or away"
            ));
        }
    }
    Ok(())
}

/// Parses `HH:MM` (24-hour) into minutes after midnight.
pub fn parse_hhmm(s: &str) -> Result<u16, String> {
    let bad = || format!("`{s}` is not a time of day like 22:00");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Formats minutes after midnight as `HH:MM`.
pub fn format_hhmm(min: u16) -> String {
    format!("{:02}:{:02}", min / 60 % 24, min % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(kind: &str, camera: Option<i64>, labels: &[&str]) -> Notice {
        Notice {
            title: "t".into(),
            body: "b".into(),
            kind: kind.into(),
            camera_id: camera,
            camera_name: None,
            event_id: None,
            labels: labels.iter().map(|s| s.to_string()).collect(),
            alarm_mode: None,
            url: "/".into(),
            at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn defaults_let_everything_through() {
        let r = NotificationRules::default();
        assert_eq!(judge(&r, &notice("motion", Some(3), &[]), 0), Ok(()));
    }

    #[test]
    fn camera_list_filters_only_camera_notices() {
        let r = NotificationRules {
            cameras: Some(vec![1, 2]),
            ..Default::default()
        };
        assert_eq!(judge(&r, &notice("person", Some(2), &[]), 0), Ok(()));
        assert_eq!(
            judge(&r, &notice("person", Some(3), &[]), 0),
            Err(Skip::Camera)
        );
        assert_eq!(judge(&r, &notice("test", None, &[]), 0), Ok(()));
    }

    #[test]
    fn kinds_match_kind_or_label() {
        let r = NotificationRules {
            kinds: Some(vec!["person".into(), "package".into()]),
            ..Default::default()
        };
        assert_eq!(judge(&r, &notice("Person", Some(1), &[]), 0), Ok(()));
        assert_eq!(
            judge(&r, &notice("motion", Some(1), &["vehicle", "PERSON"]), 0),
            Ok(())
        );
        assert_eq!(
            judge(&r, &notice("motion", Some(1), &["animal"]), 0),
            Err(Skip::Kind)
        );
    }

    #[test]
    fn quiet_hours_wrap_midnight_and_alarm_passes() {
        let q = QuietHours {
            start_min: 22 * 60,
            end_min: 7 * 60,
        };
        assert!(in_quiet_hours(q, 23 * 60));
        assert!(in_quiet_hours(q, 22 * 60));
        assert!(in_quiet_hours(q, 3 * 60));
        assert!(!in_quiet_hours(q, 7 * 60));
        assert!(!in_quiet_hours(q, 12 * 60));
        let day = QuietHours {
            start_min: 9 * 60,
            end_min: 17 * 60,
        };
        assert!(in_quiet_hours(day, 12 * 60));
        assert!(!in_quiet_hours(day, 20 * 60));

        let mut r = NotificationRules {
            quiet_hours: Some(q),
            kinds: Some(vec!["person".into()]),
            alarm_modes: Some(vec!["away".into()]),
            ..Default::default()
        };
        assert_eq!(
            judge(&r, &notice("person", Some(1), &[]), 23 * 60),
            Err(Skip::QuietHours)
        );
        assert_eq!(judge(&r, &notice("person", Some(1), &[]), 12 * 60), Ok(()));
        let mut alarm = notice("alarm", None, &[]);
        alarm.alarm_mode = Some("home".into());
        assert_eq!(judge(&r, &alarm, 23 * 60), Ok(()));
        r.alarm_always = false;
        assert_eq!(judge(&r, &alarm, 12 * 60), Err(Skip::Kind));
    }

    #[test]
    fn alarm_modes_filter() {
        let r = NotificationRules {
            alarm_modes: Some(vec!["away".into()]),
            ..Default::default()
        };
        let mut n = notice("person", Some(1), &[]);
        assert_eq!(judge(&r, &n, 0), Ok(()));
        n.alarm_mode = Some("home".into());
        assert_eq!(judge(&r, &n, 0), Err(Skip::AlarmMode));
        n.alarm_mode = Some("away".into());
        assert_eq!(judge(&r, &n, 0), Ok(()));
    }

    #[test]
    fn validation_names_the_problem() {
        let mut r = NotificationRules {
            quiet_hours: Some(QuietHours {
                start_min: 60,
                end_min: 60,
            }),
            ..Default::default()
        };
        assert!(validate(&r).unwrap_err().contains("different"));
        r.quiet_hours = None;
        r.alarm_modes = Some(vec!["vacation".into()]);
        assert!(validate(&r).unwrap_err().contains("vacation"));
        r.alarm_modes = None;
        r.kinds = Some(vec!["<script>".into()]);
        assert!(validate(&r).unwrap_err().contains("<script>"));
        r.kinds = Some(vec!["person".into()]);
        assert_eq!(validate(&r), Ok(()));
    }

    #[test]
    fn hhmm_round_trips_and_rejects_nonsense() {
        assert_eq!(parse_hhmm("22:05"), Ok(22 * 60 + 5));
        assert_eq!(format_hhmm(parse_hhmm("07:00").unwrap()), "07:00");
        assert!(parse_hhmm("24:00").is_err());
        assert!(parse_hhmm("7").is_err());
        assert!(parse_hhmm("ab:cd").unwrap_err().contains("ab:cd"));
    }
}
