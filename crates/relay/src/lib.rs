//! # porchlight-relay
//!
//! Remote access without a company in the middle. A **relay** is a small
//! public service that a neighborhood operator, a friend or the household
//! runs; a hub dials out to it and keeps one authenticated, multiplexed
//! tunnel. The relay:
//!
//! * forwards browser connections to the hub by the TLS SNI, **without
//!   terminating TLS** — it sees ciphertext, the client address, times and
//!   byte counts, nothing else;
//! * is the authoritative DNS server for its domain, so every hub has the
//!   name `<hub-id>.<domain>` (and `lan.<hub-id>.<domain>` for its LAN
//!   address) and can pass ACME DNS-01 for it, the key staying on the hub.
//!
//! Modules: [`client`] is the hub's side (used by porchlight-remote);
//! [`server`] is the relay; [`token`] the enrolment token; [`names`] how a
//! key becomes a name. design/remote.md explains the protocol and what the
//! relay's operator can and cannot learn.
//!
//! Not here: the hub's key storage, ACME, HTTPS serving and the integrity
//! check (porchlight-remote); the CLI (crates/cli, `porchlight relay …`).

#![forbid(unsafe_code)]

pub mod client;
pub mod error;
pub mod limits;
mod mux;
pub mod names;
pub mod server;
mod sni;
pub mod store;
pub mod tls;
pub mod token;
mod tunnel;
mod wire;

pub use error::RelayError;
pub use names::hub_id;
pub use token::EnrolmentToken;
/// PROXY protocol v2, as the relay writes it before each forwarded
/// connection.
pub use wire::proxy;
