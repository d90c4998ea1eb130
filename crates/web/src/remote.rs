//! Remote access as the running web app sees it (issue 15,
//! design/remote.md): the host names it answers to once remote access is
//! on, and turning remote access on from the settings page.
//!
//! `porchlight serve` watches the data folder's remote settings
//! ([`RemoteLive::changed`] wakes it at once; it also looks every few
//! seconds, so `porchlight remote enable` or `disable` run in another
//! process take effect too). When they appear it binds the HTTPS listener,
//! opens the tunnel and hands the hub's names to [`RemoteLive::set_hosts`];
//! when they go away it stops all that and clears the names. So the Host
//! guard ([`crate::hosts`]) answers to `<hub-id>.<domain>` and
//! `lan.<hub-id>.<domain>` exactly while remote access runs.
//!
//! The settings page offers the form only when such a watcher runs
//! ([`RemoteLive::watch`]); the form's post enrols with the relay and
//! obtains the certificate in this process (`porchlight_remote::enrol`,
//! the same code as the CLI), audited as `remote.enable` (or
//! `remote.enable_failed`, with the reason).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use porchlight_store::Role;

use crate::error::PageError;
use crate::hosts::AllowedHosts;
use crate::session::{require_role, PageUser};
use crate::App;

/// What changes while the hub runs when remote access is turned on or off.
#[derive(Debug, Default)]
pub struct RemoteLive {
    hosts: RwLock<AllowedHosts>,
    /// `https://lan.<hub-id>.<domain>:PORT` while the hub serves HTTPS:
    /// plain-HTTP requests from other machines are sent there.
    redirect: RwLock<Option<String>>,
    changed: tokio::sync::Notify,
    watched: AtomicBool,
}

impl RemoteLive {
    /// The remote-access names requests may now name (replacing earlier
    /// ones; empty when remote access stops).
    pub fn set_hosts(&self, names: &[String]) -> Result<(), String> {
        let mut hosts = AllowedHosts::default();
        for n in names {
            hosts.add(n)?;
        }
        *self.hosts.write().unwrap_or_else(|p| p.into_inner()) = hosts;
        Ok(())
    }

    /// Whether `host` (a `Host` header) is one of those names (or, as in
    /// every [`AllowedHosts`], a loopback address).
    pub fn allows(&self, host: &str) -> bool {
        self.hosts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .allows(host)
    }

    /// Where plain HTTP from other machines is sent (`None`: nowhere).
    pub fn set_redirect(&self, base: Option<String>) {
        *self.redirect.write().unwrap_or_else(|p| p.into_inner()) = base;
    }

    pub fn redirect(&self) -> Option<String> {
        self.redirect
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Wakes the watcher: the remote settings just changed.
    pub fn changed(&self) -> &tokio::sync::Notify {
        &self.changed
    }

    /// Says a watcher runs, so the settings page may offer to turn remote
    /// access on.
    pub fn watch(&self) {
        self.watched.store(true, Ordering::Release);
    }

    pub fn watched(&self) -> bool {
        self.watched.load(Ordering::Acquire)
    }
}

/// The form that turns remote access on, for the settings page (only
/// where a watcher runs).
pub(crate) fn enable_form(app: &App, csrf: &Markup, error: Option<&str>) -> Markup {
    if !app.remote.watched() {
        return html! {
            p.muted {
                "Off. Turn it on with " code { "porchlight remote enable --relay HOST:PORT --token TOKEN" }
                " on the hub: the hub gets its own name and certificate, and phones reach it over HTTPS at home and away."
            }
        };
    }
    html! {
        p.muted { "Off. With an invitation from a relay's operator, the hub gets its own name and certificate, and phones reach it over HTTPS at home and away. The relay forwards encrypted bytes it cannot read." }
        @if let Some(e) = error {
            p.error #remote-error role="alert" { (e) }
        }
        form #remote-enable method="post" action="/settings/remote" {
            (csrf)
            label { "Relay address (host:port; empty: the one in the invitation)"
                input type="text" name="relay" autocomplete="off" placeholder="relay.example.net:7443";
            }
            label { "Invitation (enrolment token)"
                input type="text" name="token" required autocomplete="off" spellcheck="false";
            }
            button type="submit" { "Turn on remote access" }
        }
    }
}

/// `POST /settings/remote`: enrol with the relay and get the certificate;
/// then the watcher starts serving. Owners only.
pub(crate) async fn enable(
    State(app): State<App>,
    u: PageUser,
    body: Bytes,
) -> Result<Response, PageError> {
    require_role(&u.session, &[Role::Owner]).map_err(PageError)?;
    let fields = crate::pages::settings::Fields::parse(&body);
    let field = |k: &str| fields.get(k).map(str::to_owned);
    let actor = u.visitor.actor();
    let data_dir = app.vault.store().data_dir().to_owned();
    let mut acme = porchlight_remote::AcmeOptions::default();
    if let Some(d) = &app.config.remote.acme_directory {
        acme.directory = d.clone();
    }
    acme.ca_file = app.config.remote.acme_ca_file.clone();
    let req = porchlight_remote::enrol::EnrolRequest {
        relay: field("relay"),
        token: field("token").unwrap_or_default(),
        acme,
        public_tls: None,
    };
    let relay = req.relay.clone().unwrap_or_default();
    let outcome = if req.token.is_empty() {
        Err("paste the invitation (enrolment token) from the relay's operator".to_owned())
    } else {
        porchlight_remote::enrol::enrol(&data_dir, req)
            .await
            .map_err(|e| e.to_string())
    };
    // Whatever happened, the watcher looks again (an enrolment without a
    // certificate still starts the tunnel, which keeps trying).
    app.remote.changed().notify_one();
    match outcome {
        Ok(done) => {
            app.vault
                .audit(
                    &actor,
                    "remote.enable",
                    &done.name,
                    serde_json::json!({ "relay": done.relay, "key_sha256": done.certificate.spki_sha256 }),
                )
                .await
                .map_err(crate::error::WebError::from)?;
            Ok(Redirect::to("/settings#remote").into_response())
        }
        Err(why) => {
            app.vault
                .audit(
                    &actor,
                    "remote.enable_failed",
                    &relay,
                    serde_json::json!({ "reason": why }),
                )
                .await
                .map_err(crate::error::WebError::from)?;
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("remote_error", &why)
                .finish();
            Ok(Redirect::to(&format!("/settings?{q}#remote")).into_response())
        }
    }
}
