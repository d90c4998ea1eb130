//! The harness the web crate's integration tests share: a hub built
//! in-process ([`Hub`]: the real router, store and vault in a temporary
//! folder, the vault on a [`ManualClock`], optionally Web Push and a running
//! alarm, see [`HubBuilder`]), its answers read into [`Resp`], requests
//! signed in either with bearer tokens (`Hub<Bearer>`, the default) or as a
//! browser with a session cookie and CSRF token (`Hub<Cookies>`), and
//! small request builders for JSON and form bodies.
//!
//! Every test file declares `#[allow(dead_code)] mod support;`: no file uses
//! every helper. Helpers only one file needs stay in that file, often as an
//! `impl Hub` block of their own.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, request, HeaderMap, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use porchlight_alarm::{Alarm, AlarmHandle, AlarmOptions, Delays};
use porchlight_base::ManualClock;
use porchlight_config::Config;
use porchlight_notify::Notifier;
use porchlight_store::{AuditEntry, NewCamera, Role, Store};
use porchlight_vault::accounts::{Policy, Vault};
use porchlight_vault::keys::KdfParams;
use porchlight_vault::Actor;
use serde_json::{json, Value};
use tower::ServiceExt;

/// Every test user's password.
pub const PW: &str = "correct horse battery staple";

/// The `Host` the tests' requests name (the CSRF guard compares it with
/// `Origin`); the hub is told it answers to it ([`porchlight_web::App::allow_hosts`]).
pub const HOST: &str = "hub.local";

/// When the vault's clock starts.
pub const START_UNIX: i64 = 1_800_000_000;

/// A clock standing at [`START_UNIX`] until a test moves it.
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at_unix(START_UNIX))
}

/// The vault policy for tests: a fast KDF, and owners sign in with a
/// password alone (two-factor sign-in has its own tests in web.rs, which
/// turn it back on with [`HubBuilder::owners_need_totp`]).
pub fn policy() -> Policy {
    Policy {
        kdf: KdfParams::insecure_for_tests(),
        require_totp_for_owners: false,
        ..Policy::default()
    }
}

/// An answer, read whole.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as text (lossy where it is not UTF-8).
    pub body: String,
    /// The body as it came.
    pub bytes: Vec<u8>,
}

impl Resp {
    pub async fn read(res: Response) -> Resp {
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        Resp {
            status,
            headers,
            body,
            bytes,
        }
    }

    pub fn text(&self) -> String {
        self.body.clone()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// A header's value, or "" without one.
    pub fn header(&self, h: header::HeaderName) -> &str {
        self.headers
            .get(h)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    pub fn location(&self) -> &str {
        self.header(header::LOCATION)
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The value of a hidden `csrf` field in the page.
    pub fn csrf(&self) -> String {
        let re = regex::Regex::new(r#"name="csrf" value="([^"]+)""#).unwrap();
        re.captures(&self.body).expect("page has a csrf field")[1].to_owned()
    }

    /// The text of the element with `data-testid="{id}"`.
    pub fn testid(&self, id: &str) -> String {
        let re = regex::Regex::new(&format!(r#"data-testid="{id}">([^<]+)<"#)).unwrap();
        re.captures(&self.body)
            .unwrap_or_else(|| panic!("no {id} in {}", self.body))[1]
            .to_owned()
    }
}

/// `b` finished with a JSON body when there is one, else an empty one.
pub fn json_request(b: request::Builder, body: Option<Value>) -> Request<Body> {
    match body {
        Some(j) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(j.to_string())),
        None => b.body(Body::empty()),
    }
    .unwrap()
}

/// A form post to `path` with `fields` urlencoded; `b` adds the headers
/// that sign it in.
pub fn form_request(
    path: &str,
    fields: &[(&str, &str)],
    b: impl FnOnce(request::Builder) -> request::Builder,
) -> Request<Body> {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    b(Request::post(path))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

/// A port with nothing listening on it.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `Hub<Bearer>`: requests carry `Authorization: Bearer <token>` (the CSRF
/// guard lets those through, so the same client posts forms too).
pub struct Bearer;

/// `Hub<Cookies>`: requests come from a [`Browser`]'s page, with its
/// session cookie, so the CSRF guard applies.
pub struct Cookies;

/// A signed-in browser: its session cookie and the session's CSRF token.
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

/// A hub in-process. `Auth` says how [`Hub::call`] and [`Hub::form`] sign
/// requests in: [`Bearer`] or [`Cookies`].
pub struct Hub<Auth = Bearer> {
    pub router: Router,
    pub vault: Arc<Vault>,
    pub store: Store,
    /// The vault's clock.
    pub clock: Arc<ManualClock>,
    /// Set with [`HubBuilder::with_notifier`].
    pub notifier: Option<Notifier>,
    /// Set with [`HubBuilder::with_alarm`].
    pub alarm: Option<AlarmHandle>,
    pub dir: tempfile::TempDir,
    _auth: PhantomData<Auth>,
}

/// A hub with the default configuration and bearer-token requests.
pub async fn hub() -> Hub {
    Hub::builder().build().await
}

/// Options for a [`Hub`]; [`Hub::builder`] starts with the defaults.
pub struct HubBuilder<Auth = Bearer> {
    config: Config,
    policy: Policy,
    store: Option<Store>,
    notifier: bool,
    alarm_exit_ms: Option<u64>,
    _auth: PhantomData<Auth>,
}

impl Hub {
    pub fn builder() -> HubBuilder {
        HubBuilder {
            config: Config::default(),
            policy: policy(),
            store: None,
            notifier: false,
            alarm_exit_ms: None,
            _auth: PhantomData,
        }
    }
}

impl<Auth> HubBuilder<Auth> {
    /// Requests signed in as a browser: [`Hub<Cookies>`].
    pub fn browser_sessions(self) -> HubBuilder<Cookies> {
        HubBuilder {
            config: self.config,
            policy: self.policy,
            store: self.store,
            notifier: self.notifier,
            alarm_exit_ms: self.alarm_exit_ms,
            _auth: PhantomData,
        }
    }

    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The default policy's two-factor rule for owners instead of
    /// [`policy`]'s password alone.
    pub fn owners_need_totp(mut self) -> Self {
        self.policy.require_totp_for_owners = Policy::default().require_totp_for_owners;
        self
    }

    /// Serves `store` (say, one reopened in another hub's folder) instead
    /// of a new one; the hub's own folder is then a fresh, unused one.
    pub fn with_store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// With Web Push: a [`Notifier`] in the hub's folder that pushes only to
    /// this machine (a local test push service; `push.example.net` resolves
    /// to 127.0.0.1).
    pub fn with_notifier(mut self) -> Self {
        self.notifier = true;
        self
    }

    /// With a running alarm (no broker) on the system clock, polling every
    /// 50 ms, with an exit delay of `exit_ms` (entry 30 s, siren 60 s).
    pub fn with_alarm(mut self, exit_ms: u64) -> Self {
        self.alarm_exit_ms = Some(exit_ms);
        self
    }

    pub async fn build(self) -> Hub<Auth> {
        let dir = tempfile::tempdir().unwrap();
        let store = match self.store {
            Some(s) => s,
            None => Store::open(dir.path()).await.unwrap(),
        };
        let clock = clock();
        let vault = Arc::new(Vault::new(store.clone(), clock.clone(), self.policy));
        let mut app = porchlight_web::App::new(vault.clone(), Arc::new(self.config))
            .allow_hosts([HOST])
            .unwrap();
        let mut notifier = None;
        if self.notifier {
            // Every push stays on this machine: `push.example.net` (the
            // tests' push service name) resolves to 127.0.0.1 through a
            // fixed table, and nothing else resolves at all.
            let dns = Arc::new(porchlight_notify::endpoint::FixedResolver::new());
            dns.set("push.example.net", &["127.0.0.1".parse().unwrap()]);
            let n = Notifier::open(store.clone(), dir.path(), "mailto:owner@example.org".into())
                .unwrap()
                .loopback_only_for_tests()
                .with_resolver(dns);
            app = app.with_notifier(n.clone());
            notifier = Some(n);
        }
        let mut alarm = None;
        if let Some(exit_ms) = self.alarm_exit_ms {
            let opts = AlarmOptions {
                delays: Delays {
                    exit_ms,
                    entry_ms: 30_000,
                    siren_ms: 60_000,
                },
                poll_interval: Duration::from_millis(50),
                ..Default::default()
            };
            let h = Alarm::start(store.clone(), porchlight_base::clock::system(), opts)
                .await
                .unwrap();
            app = app.with_alarm(h.client());
            alarm = Some(h);
        }
        Hub {
            router: app.router(),
            vault,
            store,
            clock,
            notifier,
            alarm,
            dir,
            _auth: PhantomData,
        }
    }
}

impl<Auth> Hub<Auth> {
    pub async fn send(&self, req: Request<Body>) -> Resp {
        Resp::read(self.router.clone().oneshot(req).await.unwrap()).await
    }

    /// Creates `name` with `role` and signs them in; returns the token.
    pub async fn user(&self, name: &str, role: Role) -> String {
        self.vault
            .create_user(name, role, PW, &Actor::cli())
            .await
            .unwrap();
        self.token(name).await
    }

    /// Signs `name` in with [`PW`]; returns the session token.
    pub async fn token(&self, name: &str) -> String {
        let r = self
            .send(json_request(
                Request::post("/api/v1/sessions"),
                Some(json!({ "username": name, "password": PW })),
            ))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.json()["token"].as_str().unwrap().to_owned()
    }

    pub async fn user_id(&self, name: &str) -> i64 {
        self.store.user_by_name(name).await.unwrap().unwrap().id
    }

    /// Adds a camera `name` (an address nothing answers on), created at
    /// the vault's time; returns its id.
    pub async fn camera(&self, name: &str) -> i64 {
        self.store
            .create_camera(
                &NewCamera {
                    name: name.into(),
                    main_url: format!("rtsp://127.0.0.1:9/{name}"),
                    ..Default::default()
                },
                self.vault.now(),
            )
            .await
            .unwrap()
            .id
    }

    /// The audit log, newest first.
    pub async fn audit_log(&self) -> Vec<AuditEntry> {
        self.store.audit_entries(None, 1000).await.unwrap()
    }
}

impl Hub<Bearer> {
    /// `method path` with `token`, and a JSON `body` when given.
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
        let b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, HOST)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        self.send(json_request(b, body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call("GET", path, token, None).await
    }

    pub async fn form(&self, path: &str, token: &str, fields: &[(&str, &str)]) -> Resp {
        self.send(form_request(path, fields, |b| {
            b.header(header::HOST, HOST)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
        }))
        .await
    }
}

impl Hub<Cookies> {
    /// Creates `name` and signs them in as a browser would (cookie), then
    /// reads the session's CSRF token.
    pub async fn browser(&self, name: &str, role: Role) -> Browser {
        let token = self.user(name, role).await;
        let mut b = Browser {
            cookie: format!("pl_session={token}"),
            csrf: String::new(),
        };
        let me = self.call(&b, "GET", "/api/v1/me", None, false).await.json();
        b.csrf = me["session"]["csrf_token"].as_str().unwrap().to_owned();
        b
    }

    /// A request from `b`'s page: with its cookie, and with its CSRF token
    /// when `with_csrf`.
    pub async fn call(
        &self,
        b: &Browser,
        method: &str,
        path: &str,
        body: Option<Value>,
        with_csrf: bool,
    ) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, HOST)
            .header(header::COOKIE, &b.cookie);
        if with_csrf {
            req = req.header("x-csrf-token", &b.csrf);
        }
        self.send(json_request(req, body)).await
    }

    /// A form post from `b`'s page, with its cookie; any CSRF token goes
    /// in `fields`.
    pub async fn form(&self, b: &Browser, path: &str, fields: &[(&str, &str)]) -> Resp {
        self.send(form_request(path, fields, |r| {
            r.header(header::HOST, HOST)
                .header(header::COOKIE, &b.cookie)
        }))
        .await
    }
}
