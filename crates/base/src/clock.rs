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
