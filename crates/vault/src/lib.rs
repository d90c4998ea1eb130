//! # porchlight-vault
//!
//! The privacy core. Everything that decides *who* someone is and *what
//! they can decrypt* lives here, and nowhere else:
//!
//! * [`accounts`] — users, Argon2id passwords, sign-in throttling, sessions,
//!   TOTP second factor, and the in-memory [`accounts::Keyring`] of
//!   household keys unlocked by live sessions.
//! * [`keys`] — each hub member's age X25519 identity, stored only wrapped
//!   by their password and by a recovery code.
//! * [`stream`] — encrypting a byte stream to household members and opening
//!   it again with seeking (what the recorder and playback use).
//! * [`details`] — event details (kind, labels, zones, the alarm's
//!   transitions) sealed to the members who may see them; the store keeps
//!   only the clear index.
//! * [`sealed`] — per-file random keys wrapped with age to members, and
//!   independently sealed ChaCha20-Poly1305 records (the crash-safe
//!   segment files of the media crate).
//! * [`totp`] — RFC 6238 codes with replay-proof step matching.
//! * [`password`] — Argon2id hashing and the password policy.
//! * [`rtsp`] — per-device RTSP tokens for the restream (no account
//!   password over RTSP) and the checks the restream repeats with them.
//!
//! Invariants:
//!
//! * No private key and no password is ever written anywhere in clear; the
//!   data folder alone opens nothing (design/keys.md).
//! * Every sign-in, failure, key unwrap, password or role change goes to
//!   the hash-chained audit log before the call returns.
//! * Unknown usernames take as long to refuse as wrong passwords.
//!
//! Not here: HTTP (cookies, CSRF — the web crate), storage (the store crate
//! keeps the opaque blobs this crate produces).

pub mod accounts;
pub mod details;
pub mod keys;
pub mod password;
pub mod rtsp;
pub mod sealed;
pub mod snapshot;
pub mod stream;
pub mod totp;

pub use accounts::{Actor, AuthError, Policy, Vault};
