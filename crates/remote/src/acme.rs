//! Getting the hub's certificate: ACME (RFC 8555) with the DNS-01
//! challenge, through `instant-acme`.
//!
//! The hub asks for one certificate naming `<hub-id>.<domain>` and
//! `*.<hub-id>.<domain>` (so `lan.<hub-id>.<domain>` is covered too). The
//! CA checks both names with TXT records at `_acme-challenge.<hub-id>.<domain>`;
//! the hub publishes them through a [`TxtPublisher`] — in production the
//! relay, which is the authoritative DNS server of its domain and accepts
//! those records only from the hub whose key owns the hub-id.
//!
//! Invariants:
//! * The certificate's private key is generated here, on the hub (rcgen,
//!   ECDSA P-256), and only a CSR signed with it is sent to the CA. It is
//!   written to the data folder with mode 0600 and sent nowhere.
//! * Every failure names the step that failed: reaching the CA (with a hint
//!   about `--acme-ca-file` when its certificate is not trusted), the
//!   account, the order, publishing the TXT records, the CA's DNS
//!   validation (with the CA's own problem text), finalization.
//! * The TXT records are cleared after every attempt, success or not
//!   (best effort: a failure to clear is logged, not fatal).
//! * The ACME account key is kept in `remote/acme-account.json` (0600) and
//!   reused while the directory URL stays the same.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context as _;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use serde::{Deserialize, Serialize};

use crate::certs::StoredCert;
use crate::files;

/// Let's Encrypt's production directory: the default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The account file, relative to the data folder.
pub const ACCOUNT_FILE: &str = "remote/acme-account.json";

/// A boxed future, for the object-safe [`TxtPublisher`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Publishes the DNS-01 TXT records of `_acme-challenge.<hub-id>.<domain>`.
/// Implemented by the relay tunnel (`Tunnel::set_acme_txt`) and, in tests,
/// by Pebble's challenge test server.
pub trait TxtPublisher: Send + Sync {
    /// Replace the name's TXT records with `values`; return once the DNS
    /// server answers with them.
    fn set_txt(&self, name: &str, values: Vec<String>) -> BoxFuture<'_, anyhow::Result<()>>;
    /// Remove the name's TXT records.
    fn clear_txt(&self, name: &str) -> BoxFuture<'_, anyhow::Result<()>>;
}

/// Where to get certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeOptions {
    /// The CA's directory URL.
    pub directory: String,
    /// A PEM file with the root that signs the CA's own HTTPS certificate,
    /// for a test CA; `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// How long to wait for the CA's validation and issuance.
    #[serde(skip, default = "default_wait")]
    pub wait: Duration,
}

fn default_wait() -> Duration {
    Duration::from_secs(90)
}

impl Default for AcmeOptions {
    fn default() -> Self {
        AcmeOptions {
            directory: LETS_ENCRYPT.into(),
            ca_file: None,
            wait: default_wait(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

/// The two names a hub's certificate carries.
pub fn cert_names(hub_name: &str) -> [String; 2] {
    [hub_name.to_owned(), format!("*.{hub_name}")]
}

/// Obtains a fresh certificate for `hub_name` (`<hub-id>.<domain>`) and
/// its wildcard, with a new key generated here. Does not store it.
pub async fn issue(
    data_dir: &Path,
    opts: &AcmeOptions,
    hub_name: &str,
    txt: &dyn TxtPublisher,
) -> anyhow::Result<StoredCert> {
    let account = account(data_dir, opts).await?;
    let names = cert_names(hub_name);
    let idents: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut order = account
        .new_order(&NewOrder::new(&idents))
        .await
        .map_err(|e| acme_err(opts, "the CA refused the certificate order", e))?;
    let txt_name = format!("_acme-challenge.{hub_name}");

    // Pass 1: the values to publish (both names share one TXT name).
    let mut values = Vec::new();
    {
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut a =
                a.map_err(|e| acme_err(opts, "cannot fetch the order's authorizations", e))?;
            match a.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                s => anyhow::bail!(
                    "the CA's authorization for {} is {s:?}, not pending",
                    a.identifier()
                ),
            }
            let ch = a.challenge(ChallengeType::Dns01).with_context(|| {
                "the CA offers no DNS-01 challenge (this hub can only prove its name by DNS)"
            })?;
            values.push(ch.key_authorization().dns_value());
        }
    }
    let result = async {
        if !values.is_empty() {
            txt.set_txt(&txt_name, values.clone())
                .await
                .with_context(|| format!("cannot publish the DNS-01 TXT records of {txt_name}"))?;
            // Pass 2: tell the CA to look (no network to list them again).
            let mut authzs = order.authorizations();
            while let Some(a) = authzs.next().await {
                let mut a =
                    a.map_err(|e| acme_err(opts, "cannot fetch the order's authorizations", e))?;
                if a.status != AuthorizationStatus::Pending {
                    continue;
                }
                let mut ch = a
                    .challenge(ChallengeType::Dns01)
                    .context("the DNS-01 challenge vanished from the order")?;
                ch.set_ready()
                    .await
                    .map_err(|e| acme_err(opts, "the CA refused to start the DNS-01 check", e))?;
            }
        }
        let retry = RetryPolicy::new()
            .timeout(opts.wait)
            .initial_delay(Duration::from_millis(250));
        let status = order.poll_ready(&retry).await;
        match status {
            Ok(OrderStatus::Ready) => {}
            Ok(_) | Err(instant_acme::Error::Api(_)) => {
                let why = validation_problems(&mut order).await;
                anyhow::bail!(
                    "the CA could not validate the DNS-01 TXT record at {txt_name}: {}",
                    if why.is_empty() {
                        match status {
                            Err(e) => e.to_string(),
                            Ok(s) => format!("the order is {s:?}"),
                        }
                    } else {
                        why
                    }
                );
            }
            Err(instant_acme::Error::Timeout(_)) => anyhow::bail!(
                "the CA did not finish validating {txt_name} within {} s (DNS not propagated?)",
                opts.wait.as_secs()
            ),
            Err(e) => return Err(acme_err(opts, "waiting for the CA's validation", e)),
        }
        // The key is made here and never leaves the hub: only the CSR goes out.
        let key = rcgen::KeyPair::generate().context("cannot generate the TLS key")?;
        let mut params = rcgen::CertificateParams::new(names.to_vec())
            .context("the hub's names are not valid DNS names")?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params
            .serialize_request(&key)
            .context("cannot build the certificate request")?;
        order
            .finalize_csr(csr.der())
            .await
            .map_err(|e| acme_err(opts, "the CA refused to finalize the order", e))?;
        let chain = order
            .poll_certificate(&retry)
            .await
            .map_err(|e| acme_err(opts, "the CA did not deliver the certificate", e))?;
        StoredCert::from_pem(chain, key.serialize_pem())
            .context("the certificate the CA delivered does not fit the hub's key")
    }
    .await;
    if !values.is_empty() {
        if let Err(e) = txt.clear_txt(&txt_name).await {
            tracing::warn!("cannot clear the DNS-01 TXT records of {txt_name}: {e:#}");
        }
    }
    result
}

/// The CA's per-challenge error texts, refreshed.
async fn validation_problems(order: &mut instant_acme::Order) -> String {
    let mut out = Vec::new();
    let mut authzs = order.authorizations();
    while let Some(Ok(mut a)) = authzs.next().await {
        if let Ok(state) = a.refresh().await {
            for c in &state.challenges {
                if let Some(p) = &c.error {
                    out.push(p.to_string());
                }
            }
        }
    }
    out.join("; ")
}

fn acme_err(opts: &AcmeOptions, what: &str, e: instant_acme::Error) -> anyhow::Error {
    let chain = error_chain(&e);
    let hint = if chain.contains("UnknownIssuer")
        || chain.contains("certificate")
        || chain.contains("invalid peer")
    {
        if opts.ca_file.is_some() {
            " (the CA's HTTPS certificate is not signed by the root in --acme-ca-file)"
        } else {
            " (the CA's HTTPS certificate is not trusted; a test CA needs --acme-ca-file)"
        }
    } else {
        ""
    };
    anyhow::anyhow!("ACME CA {}: {what}: {chain}{hint}", opts.directory)
}

/// An error and its sources, joined by `: `.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

async fn account(data_dir: &Path, opts: &AcmeOptions) -> anyhow::Result<Account> {
    let builder = || -> anyhow::Result<instant_acme::AccountBuilder> {
        match &opts.ca_file {
            Some(p) => Account::builder_with_root(p).map_err(|e| {
                anyhow::anyhow!(
                    "cannot use --acme-ca-file {}: {}",
                    p.display(),
                    error_chain(&e)
                )
            }),
            None => Account::builder()
                .map_err(|e| anyhow::anyhow!("cannot load the system's TLS roots: {e}")),
        }
    };
    let path = data_dir.join(ACCOUNT_FILE);
    if let Some(stored) = files::read_json::<StoredAccount>(&path)? {
        if stored.directory == opts.directory {
            return builder()?
                .from_credentials(stored.credentials)
                .await
                .map_err(|e| acme_err(opts, "cannot use the stored ACME account", e));
        }
    }
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            opts.directory.clone(),
            None,
        )
        .await
        .map_err(|e| acme_err(opts, "cannot create an ACME account", e))?;
    let stored = StoredAccount {
        directory: opts.directory.clone(),
        credentials,
    };
    files::write_private(&path, &serde_json::to_vec(&stored)?)?;
    Ok(account)
}
