//! # porchlight-notify
//!
//! Web Push from the hub to the household's browsers (RFC 8030 delivery,
//! RFC 8291 `aes128gcm` payload encryption, RFC 8292 VAPID), with each
//! user's notification rules applied.
//!
//! A [`Notice`] ("Person at the front door") goes to [`Notifier::notify`],
//! which
//!
//! 1. finds the users who may see the notice's camera
//!    (`Store::may_see_camera`; a notice without a camera goes to every
//!    enabled user),
//! 2. applies each user's [`rules`] (cameras, kinds/labels, alarm modes,
//!    quiet hours in the hub's local time, "alarm events always"),
//! 3. encrypts a small JSON payload to each of their subscriptions
//!    (`web-push-native`) and POSTs it to the browser vendor's push
//!    service, all concurrently, each request bounded by a timeout.
//!
//! A subscription the push service answers 404 or 410 for is gone for good
//! and is deleted; any other failure is counted on the subscription and
//! logged. Errors never reach the caller as panics or `Err`s: `notify`
//! returns what happened to each delivery.
//!
//! ## Privacy: what leaves the hub
//!
//! The payload passes through the browser vendor's push service (Google's,
//! Mozilla's, Apple's). It is end-to-end encrypted to the browser, but the
//! service still sees its size, timing and the endpoint. So the payload is
//! the minimum a notification needs, and **never video or a snapshot**:
//!
//! ```json
//! {"title": "Person", "body": "Front door · 14:02", "url": "/events?…", "event_id": 42, "tag": "event-42"}
//! ```
//!
//! The picture is fetched by the browser from the hub itself, after the
//! user opens the notification and is signed in. Title and body are
//! shortened so the payload stays well under the 4 KiB push limit; `url`
//! must be a path on the hub (anything else becomes `/`), so a click can
//! never lead off the hub. Endpoints are capability URLs and are only ever
//! logged as their origin.
//!
//! ## Endpoints
//!
//! An endpoint is a URL the hub will POST to on a browser's word, so it is
//! checked like one ([`endpoint`], issue 14 item 12): `https://` only, and
//! its host must be — and resolve only to — globally routable addresses
//! (no loopback, private, link-local, …), checked when a browser
//! subscribes **and again at every send** through the HTTP client's own
//! resolver, which resolves once and connects only to the addresses it
//! checked (no DNS rebinding between check and connect; no proxy, no
//! redirects). The exceptions are for a push service on this machine and
//! are off by default: [`Notifier::allow_loopback_http_endpoints`] (`[web]
//! push_allow_loopback_http`) accepts loopback IP literals (`http://` or
//! `https://` to `127.0.0.1`, `[::1]`) — the browser tests' stand-in — and
//! [`Notifier::loopback_only_for_tests`] keeps every push on this machine
//! for this crate's and the web crate's tests (names through
//! [`Notifier::with_resolver`]'s test resolver must resolve to loopback).
//!
//! An endpoint belongs to the account that first subscribed it. The same
//! account subscribing it again updates its keys; another account is
//! refused ([`SubscribeError::Taken`]) rather than given the row: a
//! browser that really changes hands makes a new subscription (a new
//! endpoint) when its new user turns notifications on, so only a replayed
//! endpoint would ever be moved — and moving it would silence the first
//! account's device, or, with a second row, push one account's notices to
//! another's browser.
//!
//! ## TLS
//!
//! Requests go out through `reqwest` with `rustls`; reqwest's `rustls-tls`
//! feature selects the `ring` provider explicitly and this crate enables no
//! other, so exactly one rustls crypto provider is compiled in and no
//! process-wide default provider has to be installed. Server certificates
//! are checked against the bundled Mozilla roots (`webpki-roots`), so push
//! works on hubs without a system CA store.
//!
//! ```no_run
//! # async fn demo(store: porchlight_store::Store) -> Result<(), porchlight_notify::NotifyError> {
//! let notifier = porchlight_notify::Notifier::open(
//!     store.clone(), store.data_dir(), "mailto:owner@example.org".into())?;
//! println!("applicationServerKey: {}", notifier.public_key_b64());
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub use porchlight_pushguard as endpoint;
pub mod rules;
mod vapid;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use endpoint::send::{decode_b64url, origin_of, shorten};
use endpoint::LocalPush;
use porchlight_store::{PushSubscription, Store, StoreError};
use serde::{Deserialize, Serialize};
use web_push_native::p256;

pub use vapid::KEY_FILE;

/// Errors setting up the notifier.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("Web Push key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("the VAPID contact `{0}` must be a mailto: or https: URL (push services use it to reach the hub's operator)")]
    Subject(String),
    #[error("cannot set up the HTTP client for Web Push: {0}")]
    Client(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a browser's subscription was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("{0}")]
    Invalid(String),
    /// The endpoint is another account's (see the crate docs).
    #[error("this browser's push subscription belongs to another account on this hub; turn notifications on again on this device to get a subscription of your own")]
    Taken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Something worth telling the household about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub title: String,
    pub body: String,
    /// `person`, `package`, `doorbell`, `motion`, `alarm`, `test`, …
    pub kind: String,
    pub camera_id: Option<i64>,
    pub camera_name: Option<String>,
    pub event_id: Option<i64>,
    /// Detection labels, matched by the users' kind filters too.
    pub labels: Vec<String>,
    /// The alarm's mode when it happened (`disarmed`, `home`, `away`).
    pub alarm_mode: Option<String>,
    /// Where a click leads: a path on the hub (`/events?…`).
    pub url: String,
    pub at: jiff::Timestamp,
}

/// What is actually pushed: see the crate docs on privacy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub title: String,
    pub body: String,
    pub url: String,
    pub event_id: Option<i64>,
    /// Notifications with one tag replace each other on the device.
    pub tag: String,
}

const MAX_TITLE: usize = 120;
const MAX_BODY: usize = 400;
const MAX_URL: usize = 512;
const MAX_TAG_KIND: usize = 40;

impl Payload {
    /// The payload for `n`.
    pub fn of(n: &Notice) -> Payload {
        let url = if n.url.starts_with('/')
            && !n.url.starts_with("//")
            && n.url.len() <= MAX_URL
            && !n.url.chars().any(|c| c == '\\' || c.is_control())
        {
            n.url.clone()
        } else {
            "/".to_owned()
        };
        let tag = match (n.event_id, n.camera_id) {
            (Some(id), _) => format!("event-{id}"),
            (None, Some(cam)) => format!("{}-camera-{cam}", shorten(&n.kind, MAX_TAG_KIND)),
            (None, None) => shorten(&n.kind, MAX_TAG_KIND),
        };
        Payload {
            title: shorten(&n.title, MAX_TITLE),
            body: shorten(&n.body, MAX_BODY),
            url,
            event_id: n.event_id,
            tag,
        }
    }
}

/// What happened to one push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The push service accepted it (2xx).
    Delivered { status: u16 },
    /// The push service says the subscription is gone (404/410); it was
    /// deleted.
    Removed { status: u16 },
    /// Anything else: counted on the subscription and logged.
    Failed { status: Option<u16>, reason: String },
}

/// One attempted push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub subscription_id: i64,
    pub user_id: i64,
    /// The push service's origin (never the full endpoint).
    pub service: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A browser's `PushSubscription.toJSON()`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrowserSubscription {
    pub endpoint: String,
    #[serde(default)]
    pub expiration_time: Option<f64>,
    pub keys: BrowserKeys,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BrowserKeys {
    pub p256dh: String,
    pub auth: String,
}

/// Sends Web Push notifications. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    store: Store,
    key: Arc<vapid::VapidKey>,
    subject: String,
    /// Built from `resolver` and `local` ([`endpoint::client`]); rebuilt
    /// whenever either changes.
    http: reqwest::Client,
    tz: jiff::tz::TimeZone,
    local: LocalPush,
    resolver: Arc<dyn reqwest::dns::Resolve>,
}

const USER_AGENT: &str = concat!("porchlight/", env!("CARGO_PKG_VERSION"));

/// Per-request timeout; `notify` waits at most about this long.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ENDPOINT_LEN: usize = 2048;

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("public_key", &self.inner.key.public_b64())
            .field("subject", &self.inner.subject)
            .finish_non_exhaustive()
    }
}

fn local_minute(at: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> u16 {
    let z = at.to_zoned(tz.clone());
    (z.hour() as u16) * 60 + z.minute() as u16
}

impl Notifier {
    /// Opens the notifier: loads (or creates) the VAPID key in `data_dir`
    /// and sets up the HTTP client. `subject_mailto` is the operator
    /// contact push services see (`mailto:…` or `https://…`).
    pub fn open(
        store: Store,
        data_dir: &Path,
        subject_mailto: String,
    ) -> Result<Notifier, NotifyError> {
        let subject = subject_mailto.trim().to_owned();
        let ok_subject = (subject.starts_with("mailto:")
            && subject.len() > "mailto:".len()
            && subject.contains('@'))
            || (subject.starts_with("https://") && subject.len() > "https://".len());
        if !ok_subject || subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(NotifyError::Subject(subject_mailto));
        }
        let key = vapid::VapidKey::load_or_create(data_dir)?;
        let resolver: Arc<dyn reqwest::dns::Resolve> = Arc::new(endpoint::SystemResolver);
        let http = endpoint::client(resolver.clone(), LocalPush::Off, USER_AGENT, SEND_TIMEOUT)
            .map_err(|e| NotifyError::Client(e.to_string()))?;
        Ok(Notifier {
            inner: Arc::new(Inner {
                store,
                key: Arc::new(key),
                subject,
                http,
                tz: jiff::tz::TimeZone::system(),
                local: LocalPush::Off,
                resolver,
            }),
        })
    }

    /// Sets the endpoint policy and resolver, and rebuilds the HTTP client
    /// around them (keeping the old client, stricter by construction for
    /// every change but a resolver swap, if that ever fails).
    fn reconfigure(
        mut self,
        local: LocalPush,
        resolver: Arc<dyn reqwest::dns::Resolve>,
    ) -> Notifier {
        let inner = Arc::make_mut(&mut self.inner);
        match endpoint::client(resolver.clone(), local, USER_AGENT, SEND_TIMEOUT) {
            Ok(http) => {
                inner.http = http;
                inner.local = local;
                inner.resolver = resolver;
            }
            Err(e) => tracing::error!("cannot rebuild the Web Push HTTP client: {e}"),
        }
        self
    }

    /// Resolves push service names with `resolver` instead of the system's
    /// (tests use [`endpoint::FixedResolver`] so no lookup leaves the
    /// machine). Subscriptions and sends both use it.
    pub fn with_resolver(self, resolver: Arc<dyn reqwest::dns::Resolve>) -> Notifier {
        let local = self.inner.local;
        self.reconfigure(local, resolver)
    }

    /// Uses `tz` instead of the system's time zone for quiet hours.
    pub fn with_time_zone(mut self, tz: jiff::tz::TimeZone) -> Notifier {
        Arc::make_mut(&mut self.inner).tz = tz;
        self
    }

    /// Tests only: every push stays on this machine — loopback IP literals,
    /// and names only when they resolve (through [`with_resolver`](Self::with_resolver))
    /// to loopback addresses, `http://` to either. Public and private
    /// addresses are refused.
    pub fn loopback_only_for_tests(self) -> Notifier {
        let resolver = self.inner.resolver.clone();
        self.reconfigure(LocalPush::LoopbackOnly, resolver)
    }

    /// Accepts push endpoints whose host is a loopback IP literal
    /// (`127.0.0.0/8` or `[::1]`, `http://` or `https://`): a push service
    /// standing in on the hub's own machine (the browser tests use one;
    /// `[web] push_allow_loopback_http` turns it on). Everything else is
    /// judged as without it: host names, even `localhost`, by the
    /// addresses they resolve to, so no resolver can turn this into a way
    /// to reach the LAN or the hub itself.
    pub fn allow_loopback_http_endpoints(self) -> Notifier {
        if self.inner.local != LocalPush::Off {
            return self;
        }
        let resolver = self.inner.resolver.clone();
        self.reconfigure(LocalPush::LoopbackLiterals, resolver)
    }

    /// The VAPID public key as browsers want it (`applicationServerKey`):
    /// uncompressed P-256 point, base64url without padding.
    pub fn public_key_b64(&self) -> &str {
        self.inner.key.public_b64()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Checks a browser's subscription without any lookup — its form, its
    /// keys, the scheme and an IP-literal host; the error names what is
    /// wrong. [`subscribe`](Self::subscribe) also resolves a host name and
    /// checks its addresses.
    pub fn validate(&self, s: &BrowserSubscription) -> Result<(), String> {
        if s.endpoint.len() > MAX_ENDPOINT_LEN {
            return Err(format!(
                "endpoint is longer than {MAX_ENDPOINT_LEN} characters"
            ));
        }
        let uri: http::Uri = s
            .endpoint
            .parse()
            .map_err(|_| "endpoint is not a URL".to_string())?;
        let url =
            reqwest::Url::parse(&s.endpoint).map_err(|_| "endpoint is not a URL".to_string())?;
        endpoint::check_url(&url, self.inner.local)?;
        if origin_of(&uri).is_none() {
            return Err("endpoint has no host".into());
        }
        let p = decode_b64url(&s.keys.p256dh)
            .ok_or_else(|| "keys.p256dh is not base64url".to_string())?;
        p256::PublicKey::from_sec1_bytes(&p)
            .map_err(|_| "keys.p256dh is not a P-256 public key".to_string())?;
        let a =
            decode_b64url(&s.keys.auth).ok_or_else(|| "keys.auth is not base64url".to_string())?;
        if a.len() != 16 {
            return Err(format!("keys.auth must be 16 bytes, not {}", a.len()));
        }
        Ok(())
    }

    /// Validates and stores a browser's subscription for `user_id`.
    pub async fn subscribe(
        &self,
        user_id: i64,
        s: &BrowserSubscription,
        user_agent: &str,
    ) -> Result<PushSubscription, SubscribeError> {
        self.validate(s).map_err(SubscribeError::Invalid)?;
        endpoint::check_endpoint(&s.endpoint, self.inner.local, &self.inner.resolver)
            .await
            .map_err(SubscribeError::Invalid)?;
        let ua: String = user_agent.chars().take(300).collect();
        match self
            .inner
            .store
            .upsert_push_subscription(
                user_id,
                &s.endpoint,
                s.keys.p256dh.trim(),
                s.keys.auth.trim(),
                &ua,
                jiff::Timestamp::now(),
            )
            .await
        {
            Err(StoreError::Conflict(_)) => Err(SubscribeError::Taken),
            other => Ok(other?),
        }
    }

    /// Sends `n` to every subscription whose user may see it and whose
    /// rules let it through. Never fails: problems are logged and reported
    /// per delivery.
    pub async fn notify(&self, n: &Notice) -> Vec<Delivery> {
        let subs = match self.inner.store.push_subscriptions_of_enabled_users().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot read push subscriptions: {e}");
                return Vec::new();
            }
        };
        let mut by_user: BTreeMap<i64, Vec<PushSubscription>> = BTreeMap::new();
        for s in subs {
            by_user.entry(s.user_id).or_default().push(s);
        }
        let minute = local_minute(n.at, &self.inner.tz);
        let mut chosen = Vec::new();
        for (user, subs) in by_user {
            match self.user_wants(user, n, minute).await {
                Ok(true) => chosen.extend(subs),
                Ok(false) => {}
                Err(e) => tracing::error!("cannot apply user {user}'s notification rules: {e}"),
            }
        }
        self.send_all(chosen, n).await
    }

    /// Sends a test notification to `user_id`'s own subscriptions,
    /// regardless of their rules.
    pub async fn send_test(&self, user_id: i64) -> Vec<Delivery> {
        let subs = match self.inner.store.push_subscriptions_of(user_id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot read push subscriptions: {e}");
                return Vec::new();
            }
        };
        let n = Notice {
            title: "Porchlight test notification".into(),
            body: "Notifications work on this device.".into(),
            kind: "test".into(),
            camera_id: None,
            camera_name: None,
            event_id: None,
            labels: Vec::new(),
            alarm_mode: None,
            url: "/settings#notifications".into(),
            at: jiff::Timestamp::now(),
        };
        self.send_all(subs, &n).await
    }

    /// Sends `n` to every subscription of the given users, regardless of
    /// their rules (for warnings about the hub itself, such as a failed
    /// relay integrity check, which owners must not miss in quiet hours).
    pub async fn notify_users(&self, user_ids: &[i64], n: &Notice) -> Vec<Delivery> {
        let mut subs = Vec::new();
        for &u in user_ids {
            match self.inner.store.push_subscriptions_of(u).await {
                Ok(s) => subs.extend(s),
                Err(e) => tracing::error!("cannot read user {u}'s push subscriptions: {e}"),
            }
        }
        self.send_all(subs, n).await
    }

    /// Spawns [`notify`](Self::notify) so the caller does not wait at all.
    pub fn notify_in_background(&self, n: Notice) {
        let me = self.clone();
        tokio::spawn(async move {
            me.notify(&n).await;
        });
    }

    async fn user_wants(&self, user: i64, n: &Notice, minute: u16) -> Result<bool, StoreError> {
        if let Some(cam) = n.camera_id {
            if !self.inner.store.may_see_camera(user, cam).await? {
                return Ok(false);
            }
        }
        let r = self.inner.store.notification_rules(user).await?;
        Ok(match rules::judge(&r, n, minute) {
            Ok(()) => true,
            Err(why) => {
                tracing::debug!("not notifying user {user} of a {} notice: {why:?}", n.kind);
                false
            }
        })
    }

    async fn send_all(&self, subs: Vec<PushSubscription>, n: &Notice) -> Vec<Delivery> {
        if subs.is_empty() {
            return Vec::new();
        }
        let payload = serde_json::to_vec(&Payload::of(n)).expect("payload serialises");
        let (ttl, urgency) = match n.kind.as_str() {
            "alarm" => (Duration::from_secs(3600), "high"),
            "test" => (Duration::from_secs(60), "normal"),
            _ => (Duration::from_secs(600), "normal"),
        };
        let mut set = tokio::task::JoinSet::new();
        for s in subs {
            let me = self.clone();
            let payload = payload.clone();
            set.spawn(async move { me.send_one(s, payload, ttl, urgency).await });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(d) => out.push(d),
                Err(e) => tracing::error!("a push task failed: {e}"),
            }
        }
        out.sort_by_key(|d| d.subscription_id);
        out
    }

    async fn send_one(
        &self,
        s: PushSubscription,
        payload: Vec<u8>,
        ttl: Duration,
        urgency: &'static str,
    ) -> Delivery {
        let uri: Option<http::Uri> = s.endpoint.parse().ok();
        let service = uri
            .as_ref()
            .and_then(origin_of)
            .unwrap_or_else(|| "(invalid endpoint)".into());
        let outcome = match self.attempt(&s, uri, &service, payload, ttl, urgency).await {
            Ok(status) if (200..300).contains(&status) => {
                if let Err(e) = self
                    .inner
                    .store
                    .push_delivered(s.id, jiff::Timestamp::now())
                    .await
                {
                    tracing::warn!("cannot record a push delivery: {e}");
                }
                Outcome::Delivered { status }
            }
            Ok(status @ (404 | 410)) => {
                tracing::info!(
                    "push service {service} says subscription {} of user {} is gone ({status}); removing it",
                    s.id,
                    s.user_id
                );
                if let Err(e) = self.inner.store.delete_push_subscription_by_id(s.id).await {
                    tracing::warn!("cannot remove an expired push subscription: {e}");
                }
                Outcome::Removed { status }
            }
            Ok(status) => {
                self.failed(
                    &s,
                    &service,
                    Some(status),
                    format!("push service answered {status}"),
                )
                .await
            }
            Err(reason) => self.failed(&s, &service, None, reason).await,
        };
        Delivery {
            subscription_id: s.id,
            user_id: s.user_id,
            service,
            outcome,
        }
    }

    async fn failed(
        &self,
        s: &PushSubscription,
        service: &str,
        status: Option<u16>,
        reason: String,
    ) -> Outcome {
        let n = match self.inner.store.push_failed(s.id).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("cannot count a failed push: {e}");
                0
            }
        };
        tracing::warn!(
            "push to subscription {} of user {} via {service} failed ({n} in a row): {reason}",
            s.id,
            s.user_id
        );
        Outcome::Failed { status, reason }
    }

    /// Encrypts, signs and sends one push; the HTTP status, or why none
    /// (`porchlight_pushguard::send`, shared with the neighborhood).
    async fn attempt(
        &self,
        s: &PushSubscription,
        uri: Option<http::Uri>,
        origin: &str,
        payload: Vec<u8>,
        ttl: Duration,
        urgency: &'static str,
    ) -> Result<u16, String> {
        endpoint::send::send(
            &self.inner.http,
            self.inner.key.vapid(),
            endpoint::send::Target {
                endpoint: &s.endpoint,
                p256dh: &s.p256dh,
                auth: &s.auth,
            },
            endpoint::send::Push {
                uri: uri.as_ref(),
                origin,
                contact: &self.inner.subject,
                local: self.inner.local,
                ttl,
                urgency,
            },
            payload,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(url: &str) -> Notice {
        Notice {
            title: "T".repeat(500),
            body: "b".into(),
            kind: "person".into(),
            camera_id: Some(7),
            camera_name: None,
            event_id: None,
            labels: vec![],
            alarm_mode: None,
            url: url.into(),
            at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn payload_urls_stay_on_the_hub_and_text_is_short() {
        let p = Payload::of(&notice("/events?id=1"));
        assert_eq!(p.url, "/events?id=1");
        assert_eq!(p.tag, "person-camera-7");
        assert_eq!(p.title.chars().count(), MAX_TITLE);
        assert!(p.title.ends_with('…'));
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "javascript:alert(1)",
            "/a\nb",
        ] {
            assert_eq!(Payload::of(&notice(bad)).url, "/", "{bad}");
        }
        assert_eq!(
            Payload::of(&notice(&format!("/{}", "x".repeat(600)))).url,
            "/"
        );
    }
}
