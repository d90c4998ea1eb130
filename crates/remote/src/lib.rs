//! # porchlight-remote
//!
//! Remote access, hub side (issue 15; design/remote.md): every hub gets a
//! publicly trusted name `<hub-id>.<relay-domain>` and serves the web app
//! over HTTPS with its own certificate, at home (`lan.<hub-id>.<domain>`)
//! and away (through a relay that forwards TLS bytes it cannot read).
//!
//! | module | job |
//! |---|---|
//! | [`identity`] | the hub's long-term Ed25519 key and its hub-id |
//! | [`acme`] | ACME DNS-01 (instant-acme): a certificate for the hub's names, key made on the hub |
//! | [`enrol`] | turning remote access on: enrolment with the relay, the first certificate (CLI and settings page) |
//! | [`certs`] | where the certificate lives, its facts, the hot-swappable resolver |
//! | [`https`] | serving the axum router over rustls, from a listener or tunnelled streams |
//! | [`integrity`] | the check that the relay shows browsers the hub's own key |
//! | [`relay`] | the tunnel to the relay (porchlight-relay's client): TXT records, LAN address, status |
//! | [`settings`] | what `remote enable` stores, what a running hub reports |
//! | [`runtime`] | the running state: renewal loop, integrity loop, status |
//! | [`testing`] | a Pebble (test ACME CA) fixture for this crate's and the CLI's tests |
//!
//! Everything lives in the data folder under `remote/`; private files
//! (identity key, TLS key, ACME account, settings with the token) are
//! created with mode 0600.

pub mod acme;
pub mod certs;
pub mod enrol;
mod files;
pub mod https;
pub mod identity;
pub mod integrity;
pub mod relay;
pub mod runtime;
pub mod settings;
pub mod testing;

pub use acme::{AcmeOptions, TxtPublisher};
pub use https::{OverTls, TlsServer};
pub use identity::HubIdentity;
pub use runtime::{Remote, RemoteStatus, RenewOptions};
pub use settings::RemoteSettings;
