//! # porchlight-web
//!
//! The HTTP face of the hub (the neighborhood server has its own, in
//! `porchlight-neighborhood`, on its own origin): axum routes,
//! server-rendered pages (maud), the JSON API, and the rules every request
//! passes through on the way in:
//!
//! 0. [`hosts`] refuses (421) any request whose `Host` is not one of the
//!    hub's own names ([`hosts::AllowedHosts`]): DNS rebinding gets no
//!    further. Everything after this may trust `Host`.
//! 1. [`session`] resolves the `pl_session` cookie or an
//!    `Authorization: Bearer` token to a live session (or none) via the
//!    vault — this crate never checks passwords or reads session rows.
//! 2. [`csrf`] refuses any state-changing request (anything but GET, HEAD,
//!    OPTIONS) that does not carry the right CSRF token: the session's own
//!    token for signed-in users, a double-submit cookie before sign-in.
//!    Bearer-token requests are exempt (no ambient credential to abuse).
//! 3. Security headers on every response: a Content-Security-Policy that
//!    allows no inline script, no framing, no third-party origins.
//! 4. With remote access on (porchlight-remote), a request that reached the
//!    hub over plain HTTP from another machine is redirected (308) to the
//!    hub's HTTPS name, `https://lan.<hub-id>.<domain>:PORT` — see
//!    [`App::with_https_redirect`]. Loopback keeps plain HTTP (the CLI,
//!    scripts and tests on the hub itself); requests served over the hub's
//!    TLS carry [`porchlight_remote::OverTls`] and get `Secure` cookies.
//!
//! Pages work without JavaScript; JavaScript only enhances. Nothing needs a
//! build step: CSS, JS and icons are embedded in the binary.
//!
//! ```no_run
//! # async fn run(vault: std::sync::Arc<porchlight_vault::Vault>) -> std::io::Result<()> {
//! let config = std::sync::Arc::new(porchlight_config::Config::default());
//! let app = porchlight_web::App::new(vault, config);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! porchlight_web::serve(app, listener, std::future::pending()).await
//! # }
//! ```

#![forbid(unsafe_code)]

mod access;
mod alarm;
mod api;
mod assets;
mod backup;
mod camera_admin;
pub mod csrf;
mod detection;
mod error;
mod events;
pub mod hosts;
mod live;
mod media;
mod openapi;
mod pages;
mod push;
pub mod remote;
pub mod session;
mod still;
mod triggers;
mod users;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::Router;
use porchlight_config::Config;
use porchlight_vault::Vault;
use tower_http::set_header::SetResponseHeaderLayer;

pub use error::WebError;

/// Shared state of every handler.
#[derive(Clone)]
pub struct App {
    pub vault: Arc<Vault>,
    pub config: Arc<Config>,
    /// The host names requests may name (from the config, plus
    /// [`App::allow_hosts`]).
    pub allowed_hosts: Arc<hosts::AllowedHosts>,
    /// Remote access while the hub runs: its names once it is on, and the
    /// watcher's wake-up ([`remote::RemoteLive`]).
    pub remote: Arc<remote::RemoteLive>,
    /// Live frames, when this process records (`serve`, `demo`).
    pub live: Option<Arc<porchlight_recorder::LiveHub>>,
    /// Web Push, when the hub sends notifications (`serve`, `demo`).
    pub notifier: Option<porchlight_notify::Notifier>,
    /// The running alarm, when this process runs it (`serve`):
    /// `/api/v1/alarm…` and the `/alarm` page.
    pub alarm: Option<porchlight_alarm::AlarmClient>,
    /// The event path, when this process runs it: `POST /api/v1/events`.
    pub events: Option<porchlight_events::EventsHandle>,
}

impl App {
    pub fn new(vault: Arc<Vault>, config: Arc<Config>) -> App {
        App {
            allowed_hosts: Arc::new(hosts::AllowedHosts::from_config(&config.web)),
            remote: Arc::default(),
            vault,
            config,
            live: None,
            notifier: None,
            alarm: None,
            events: None,
        }
    }

    /// Redirects plain-HTTP requests from anywhere but loopback to `base`
    /// (`https://NAME:PORT`, no trailing slash) with the same path and query.
    pub fn with_https_redirect(self, base: String) -> App {
        self.remote.set_redirect(Some(base));
        self
    }

    /// Also answers to these host names (say, the remote-access names),
    /// besides those from the config. Call before [`App::router`]. Refuses
    /// what is not a host name, naming it.
    pub fn allow_hosts<'a>(
        mut self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<App, String> {
        let hosts = Arc::make_mut(&mut self.allowed_hosts);
        for n in names {
            hosts.add(n)?;
        }
        Ok(self)
    }

    /// Enables `POST /api/v1/events` (external triggers) with the event path.
    pub fn with_events(mut self, events: porchlight_events::EventsHandle) -> App {
        self.events = Some(events);
        self
    }

    /// Enables the live view with the recorder's frames.
    pub fn with_live(mut self, live: Arc<porchlight_recorder::LiveHub>) -> App {
        self.live = Some(live);
        self
    }

    /// Enables Web Push (`/api/v1/push/…`) with `notifier`.
    pub fn with_notifier(mut self, notifier: porchlight_notify::Notifier) -> App {
        self.notifier = Some(notifier);
        self
    }

    /// Enables the alarm page and API with the running alarm.
    pub fn with_alarm(mut self, alarm: porchlight_alarm::AlarmClient) -> App {
        self.alarm = Some(alarm);
        self
    }

    /// The complete router with every layer, for `serve` and for tests.
    pub fn router(&self) -> Router {
        let csp =
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'; form-action 'self'";
        Router::new()
            .merge(pages::routes())
            .merge(api::routes())
            .merge(media::routes())
            .merge(live::routes())
            .merge(camera_admin::routes())
            .merge(users::routes())
            .merge(events::routes())
            .merge(triggers::routes())
            .merge(detection::routes())
            .merge(still::routes())
            .merge(openapi::routes())
            .merge(push::routes())
            .merge(alarm::routes())
            .merge(assets::routes())
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                csrf::guard,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                session::resolve,
            ))
            // Outside the session layer: a misdirected request touches
            // nothing, not even the session table.
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                hosts::guard,
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            // Not `no-referrer`: with it, browsers send `Origin: null` on
            // form posts, and the CSRF guard's origin check would refuse them.
            .layer(SetResponseHeaderLayer::overriding(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("DENY"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            ))
            .layer(tower_http::limit::RequestBodyLimitLayer::new(1 << 20))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                redirect_to_https,
            ))
            .with_state(self.clone())
    }
}

/// Middleware: plain HTTP from another machine → the hub's HTTPS name
/// (308 keeps the method and body). Requests over the hub's TLS, from
/// loopback, or without a known peer pass.
async fn redirect_to_https(
    axum::extract::State(app): axum::extract::State<App>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if let Some(base) = app.remote.redirect() {
        let over_tls = req
            .extensions()
            .get::<porchlight_remote::OverTls>()
            .is_some();
        let remote_peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .is_some_and(|c| !c.0.ip().to_canonical().is_loopback());
        if !over_tls && remote_peer {
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            return axum::response::Redirect::permanent(&format!("{base}{pq}")).into_response();
        }
    }
    next.run(req).await
}

/// Serves `app` on `listener` until `shutdown` completes. Also sweeps
/// expired sessions (and their unlocked keys) every few seconds, so a
/// session ended by the CLI loses its key promptly.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let vault = app.vault.clone();
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            if let Err(e) = vault.sweep().await {
                tracing::warn!("session sweep failed: {e}");
            }
        }
    });
    let router = app.router();
    let res = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    sweeper.abort();
    res
}
