//! The client's engine behind [`crate::client::Tunnel`]: connect, prove
//! the hub's key, run the multiplexed connection, reconnect with backoff.
//! (First commit: the API only; the engine follows.)

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use tokio::sync::{mpsc, watch};

use crate::client::{Incoming, TunnelConfig, TunnelStatus};
use crate::error::RelayError;

pub(crate) struct Shared {
    status: watch::Sender<TunnelStatus>,
    lan_addr: Mutex<Option<SocketAddr>>,
}

impl Shared {
    pub(crate) fn new(
        cfg: &TunnelConfig,
        key: &SigningKey,
    ) -> (Arc<Shared>, watch::Receiver<TunnelStatus>) {
        let hub_id = crate::names::hub_id(&key.verifying_key());
        let domain = cfg
            .enrolment_token
            .as_deref()
            .and_then(|t| t.parse::<crate::token::EnrolmentToken>().ok())
            .map(|t| t.domain);
        let status = TunnelStatus {
            hub_name: domain.as_ref().map(|d| format!("{hub_id}.{d}")),
            hub_id,
            connected: false,
            since: jiff::Timestamp::now(),
            enrolled: false,
            last_error: None,
            domain,
            failures: 0,
        };
        let (tx, rx) = watch::channel(status);
        (
            Arc::new(Shared {
                status: tx,
                lan_addr: Mutex::new(cfg.lan_addr),
            }),
            rx,
        )
    }

    pub(crate) async fn set_acme_txt(&self, _values: Vec<String>) -> Result<(), RelayError> {
        Err(RelayError::NotConnected(
            self.status.borrow().last_error.clone(),
        ))
    }

    pub(crate) async fn set_lan_addr(&self, addr: Option<SocketAddr>) -> Result<(), RelayError> {
        *self.lan_addr.lock().unwrap() = addr;
        Ok(())
    }
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    _cfg: TunnelConfig,
    _key: SigningKey,
    _tx: mpsc::Sender<Incoming>,
) {
    shared
        .status
        .send_modify(|s| s.last_error = Some("the tunnel engine is not built yet".into()));
}
