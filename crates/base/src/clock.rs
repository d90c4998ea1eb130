//! The one source of "now".
//!
//! Porchlight's one time type is [`jiff::Timestamp`] (UTC, nanosecond
//! precision); the store keeps instants as integer microseconds or seconds
//! since the Unix epoch. Wall-clock time is what people and audit entries
//! care about; the recorder will add its own monotonic media clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

/// Something that tells the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// A clock shared across tasks.
pub type SharedClock = Arc<dyn Clock>;

/// The system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    pub fn at_unix(seconds: i64) -> Self {
        ManualClock {
            micros: AtomicI64::new(seconds * 1_000_000),
        }
    }

    pub fn advance(&self, by: Duration) {
        self.micros
            .fetch_add(by.as_micros() as i64, Ordering::SeqCst);
    }

    pub fn set(&self, t: Timestamp) {
        self.micros.store(t.as_microsecond(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_microsecond(self.micros.load(Ordering::SeqCst))
            .expect("manual clock within jiff's range")
    }
}

/// `SystemClock` behind the shared pointer type; what production code uses.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// Parses an instant as people type it: RFC 3339
/// (`2026-11-29T14:00:00Z`), `now`, or now plus/minus a duration
/// (`-90s`, `-5m`, `-2h`, `-1d`, `+10s`).
pub fn parse_instant(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Some(rest) = t.strip_prefix('-').or_else(|| t.strip_prefix('+')) {
        let sign = if t.starts_with('-') { -1 } else { 1 };
        let split = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (num, unit) = rest.split_at(split);
        let n: i64 = num
            .parse()
            .map_err(|_| format!("`{s}`: expected a number before the unit"))?;
        let secs = match unit {
            "s" | "" => n,
            "m" => n.saturating_mul(60),
            "h" => n.saturating_mul(3600),
            "d" => n.saturating_mul(86400),
            other => return Err(format!("`{s}`: unknown unit `{other}` (use s, m, h or d)")),
        };
        return now
            .checked_add(jiff::SignedDuration::from_secs(sign * secs))
            .map_err(|_| format!("`{s}` is out of range"));
    }
    t.parse::<Timestamp>().map_err(|_| {
        format!("`{s}` is neither RFC 3339 (2026-11-29T14:00:00Z) nor relative (-5m, now)")
    })
}

#[cfg(test)]
mod tests {
    use super::parse_instant;

    #[test]
    fn instants() {
        let now: jiff::Timestamp = "2026-11-29T14:00:00Z".parse().unwrap();
        assert_eq!(parse_instant("now", now).unwrap(), now);
        assert_eq!(
            parse_instant("-90s", now).unwrap().to_string(),
            "2026-11-29T13:58:30Z"
        );
        assert_eq!(
            parse_instant("-5m", now).unwrap().to_string(),
            "2026-11-29T13:55:00Z"
        );
        assert_eq!(
            parse_instant("-2h", now).unwrap().to_string(),
            "2026-11-29T12:00:00Z"
        );
        assert_eq!(
            parse_instant("+1d", now).unwrap().to_string(),
            "2026-11-30T14:00:00Z"
        );
        assert_eq!(
            parse_instant("2026-11-29T13:00:00Z", now)
                .unwrap()
                .to_string(),
            "2026-11-29T13:00:00Z"
        );
        assert!(parse_instant("-5y", now)
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_instant("yesterday", now).is_err());
        assert!(parse_instant("-99999999999999d", now).is_err());
    }
}
