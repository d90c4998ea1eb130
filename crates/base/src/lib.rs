//! # porchlight-base
//!
//! The few things every Porchlight crate needs and none should write again:
//!
//! * [`clock`] — the one source of "now". Code that decides by time (session
//!   expiry, sign-in throttling, TOTP steps, retention) takes a [`Clock`]
//!   so tests can move time forward instead of sleeping.
//! * [`secret`] — random tokens and codes drawn from the operating system's
//!   CSPRNG, encoded for URLs and for people.
//!
//! This crate is deliberately small and has no I/O besides reading the
//! system clock and the OS random source. It is *not* the place for domain
//! types (users, cameras) — those live with the crate that owns them.
//!
//! ```
//! use porchlight_base::{Clock, ManualClock};
//! let clock = ManualClock::at_unix(1_700_000_000);
//! clock.advance(std::time::Duration::from_secs(30));
//! assert_eq!(clock.now().as_second(), 1_700_000_030);
//! ```

#![forbid(unsafe_code)]

pub mod clock;
pub mod secret;
pub mod tools;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use jiff::Timestamp;
