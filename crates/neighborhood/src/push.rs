//! Web Push for new posts: this server's own VAPID key, its own browser
//! subscriptions, and the send when a post is created.
//!
//! The neighborhood is its own origin with its own accounts, so it cannot
//! use the hub's subscriptions or key (`porchlight-notify` is bound to the
//! hub's store); it speaks the same protocols the same way: RFC 8030
//! delivery, RFC 8291 `aes128gcm` payloads (`web-push-native`), RFC 8292
//! VAPID signed here so the audience keeps a non-default port.
//!
//! Invariants:
//!
//! * **Who gets a post**: exactly [`Neighborhood::recipients_for`] — active,
//!   not suspended, subscribed to the category (agency `alert`s are on by
//!   default), home area's radius covering the post's cell, never the
//!   author — and only while the post is `visible` and its author is
//!   neither muted nor suspended, checked again when the push goes out
//!   ([`Neighborhood::notify_new_post`]).
//! * **Never blocks the request**: [`Neighborhood::spawn_new_post_push`]
//!   runs the send on its own task; [`Neighborhood::push_idle`] waits for
//!   the tasks in flight (tests, shutdown).
//! * **Nothing about place in the payload**: it passes through the browser
//!   vendor's push service, so it holds the post's id, title, category and
//!   who posted it — no cell, coordinate, distance or body text
//!   ([`PostPayload`]).
//! * **Expired subscriptions go**: a push service's 404 or 410 deletes the
//!   subscription; other failures are counted on it and logged. Endpoints
//!   are logged only as their origin.
//! * **One key, made once**: the VAPID key is generated on first open and
//!   stored in the `settings` table with an insert that keeps the first
//!   writer's key, so several processes on one database agree on it
//!   (`design/neighborhood.md` says why the database and not a file).
//! * **Public push services only** ([`crate::push_endpoint`], issue 14
//!   item 12): `https://`, and a host that is and resolves only to
//!   globally routable addresses — checked when a browser subscribes and
//!   again at every send, through the HTTP client's own resolver, which
//!   resolves once and connects only to the addresses it checked. The
//!   exceptions, for a push service on this machine, are off by default
//!   ([`PushOptions::local`]).
//! * **An endpoint stays with the account that subscribed it**: the same
//!   account subscribing again updates its keys; another account gets 409
//!   and the row is not moved (a browser that changes hands subscribes
//!   anew, with a new endpoint, when its new user turns notifications on;
//!   only a replayed endpoint would ever be moved).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use web_push_native::p256;

use crate::db::now_ms;
use crate::push_endpoint::send::{decode_b64url, origin_of, shorten, Vapid};
use crate::push_endpoint::{self, LocalPush};
use crate::{Error, Neighborhood, Result, UserId};

/// `settings` key holding the VAPID private key (PKCS#8 PEM).
const KEY_SETTING: &str = "vapid_private_key_pem";
/// Per-request timeout of a push.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest endpoint accepted.
pub const MAX_ENDPOINT_LEN: usize = 2048;
/// How long a push service keeps an undelivered post notification.
const TTL_POST: Duration = Duration::from_secs(6 * 3600);
const TTL_ALERT: Duration = Duration::from_secs(24 * 3600);

/// How pushes are sent; [`Neighborhood::set_push_options`].
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// The operator contact push services see: `mailto:…` or `https://…`.
    pub contact: String,
    /// Push services on this machine (tests only; off by default):
    /// [`LocalPush::LoopbackLiterals`] accepts `http://` or `https://` to
    /// `127.0.0.1` / `[::1]` — the equivalent of the hub's `[web]
    /// push_allow_loopback_http` — and [`LocalPush::LoopbackOnly`] keeps
    /// every push on this machine. Without them, only public push services.
    pub local: LocalPush,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            contact: "mailto:porchlight@localhost".into(),
            local: LocalPush::Off,
        }
    }
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

/// The subscription's keys: the browser's P-256 public key and auth secret.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserKeys {
    pub p256dh: String,
    pub auth: String,
}

/// What a new post's push carries — and all it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostPayload {
    /// The post's title (shortened to 120 characters).
    pub title: String,
    /// "Category · who posted", e.g. "Alert · City Fire Department".
    pub body: String,
    /// The post's category, as in the API (`lost_found_pet`, `alert`, …).
    pub category: String,
    pub post_id: i64,
    /// `/posts/{id}` on this server.
    pub url: String,
    /// `post-{id}`: one notification per post on a device.
    pub tag: String,
}

/// What happened to one push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Accepted by the push service (2xx).
    Delivered { status: u16 },
    /// The push service says the subscription is gone (404/410): deleted.
    Removed { status: u16 },
    /// Anything else: counted on the subscription and logged.
    Failed { status: Option<u16>, reason: String },
}

/// One attempted push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub subscription_id: i64,
    pub user_id: UserId,
    /// The push service's origin (never the full endpoint).
    pub service: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// How names of push services are resolved ([`push_endpoint::SystemResolver`]
/// unless set).
type Resolver = Arc<dyn reqwest::dns::Resolve>;

const USER_AGENT: &str = concat!("porchlight-neighborhood/", env!("CARGO_PKG_VERSION"));

/// The key, the HTTP client, the options and the in-flight counter.
pub(crate) struct Pusher {
    vapid: Vapid,
    /// The client (built around the resolver and the options' `local`)
    /// and the resolver; replaced together.
    http: std::sync::RwLock<(reqwest::Client, Resolver)>,
    options: std::sync::Mutex<PushOptions>,
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
}

fn check_contact(c: &str) -> Result<String> {
    let c = c.trim();
    let ok = (c.starts_with("mailto:") && c.len() > "mailto:".len() && c.contains('@'))
        || (c.starts_with("https://") && c.len() > "https://".len());
    if !ok || c.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
        return Err(Error::Invalid(format!(
            "the Web Push contact {c:?} must be a mailto: or https: URL (push services use it to reach the operator)"
        )));
    }
    Ok(c.to_owned())
}

impl Pusher {
    /// Loads the VAPID key from the database, creating it on first use.
    pub(crate) async fn open(pool: &sqlx::AnyPool) -> Result<Pusher> {
        let stored = |pool: &sqlx::AnyPool| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = $1")
                    .bind(KEY_SETTING)
                    .fetch_optional(&pool)
                    .await
            }
        };
        let pem = match stored(pool).await? {
            Some(pem) => pem,
            None => {
                let fresh = Vapid::generate_pem().map_err(|e| {
                    Error::Invalid(format!("cannot encode a new Web Push key: {e}"))
                })?;
                // The first writer wins; everyone then reads that key.
                sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(KEY_SETTING)
                    .bind(&fresh)
                    .execute(pool)
                    .await?;
                let pem = stored(pool).await?.unwrap_or(fresh);
                tracing::info!("created the neighborhood's Web Push (VAPID) key");
                pem
            }
        };
        let vapid = Vapid::from_pem(&pem).map_err(|e| {
            Error::Invalid(format!(
                "the stored Web Push key ({KEY_SETTING} in settings) is not a P-256 key in PEM ({e}); \
                 delete that row to make a new one (browsers will have to subscribe again)"
            ))
        })?;
        let resolver: Resolver = Arc::new(push_endpoint::SystemResolver);
        let http =
            push_endpoint::client(resolver.clone(), LocalPush::Off, USER_AGENT, SEND_TIMEOUT)
                .map_err(|e| {
                    Error::Invalid(format!("cannot set up the HTTP client for Web Push: {e}"))
                })?;
        Ok(Pusher {
            vapid,
            http: std::sync::RwLock::new((http, resolver)),
            options: std::sync::Mutex::new(PushOptions::default()),
            in_flight: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        })
    }

    fn options(&self) -> PushOptions {
        self.options
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn client(&self) -> (reqwest::Client, Resolver) {
        self.http.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rebuilds the client for `local` and `resolver`.
    fn rebuild(&self, local: LocalPush, resolver: Resolver) -> Result<()> {
        let http = push_endpoint::client(resolver.clone(), local, USER_AGENT, SEND_TIMEOUT)
            .map_err(|e| {
                Error::Invalid(format!("cannot set up the HTTP client for Web Push: {e}"))
            })?;
        *self.http.write().unwrap_or_else(|p| p.into_inner()) = (http, resolver);
        Ok(())
    }
}

/// A stored subscription.
struct StoredSub {
    id: i64,
    user_id: UserId,
    endpoint: String,
    p256dh: String,
    auth: String,
}

/// Counts a spawned push task until it ends (even if it panics).
struct InFlight(Arc<crate::Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.push.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.push.idle.notify_waiters();
        }
    }
}

impl Neighborhood {
    /// Sets the push contact and endpoint policy (config or tests).
    pub fn set_push_options(&self, options: PushOptions) -> Result<()> {
        let contact = check_contact(&options.contact)?;
        let push = &self.inner.push;
        let mut current = push.options.lock().unwrap_or_else(|p| p.into_inner());
        push.rebuild(options.local, push.client().1)?;
        *current = PushOptions { contact, ..options };
        Ok(())
    }

    /// Resolves push service names with `resolver` instead of the system's
    /// (tests use [`push_endpoint::FixedResolver`], so no lookup leaves the
    /// machine). Subscriptions and sends both use it.
    pub fn set_push_resolver(&self, resolver: Arc<dyn reqwest::dns::Resolve>) -> Result<()> {
        let push = &self.inner.push;
        let options = push.options.lock().unwrap_or_else(|p| p.into_inner());
        push.rebuild(options.local, resolver)
    }

    /// The VAPID public key as browsers want it (`applicationServerKey`):
    /// the uncompressed P-256 point, base64url without padding.
    pub fn push_public_key(&self) -> &str {
        self.inner.push.vapid.public_b64()
    }

    /// Checks a browser's subscription without any lookup — its form, its
    /// keys, the scheme and an IP-literal host; the error names what is
    /// wrong. [`subscribe_push`](Self::subscribe_push) also resolves a
    /// host name and checks its addresses.
    pub fn validate_subscription(&self, s: &BrowserSubscription) -> Result<()> {
        let bad = |m: &str| Err(Error::Invalid(format!("bad push subscription: {m}")));
        if s.endpoint.len() > MAX_ENDPOINT_LEN {
            return bad(&format!(
                "the endpoint is longer than {MAX_ENDPOINT_LEN} characters"
            ));
        }
        let (Ok(uri), Ok(url)) = (
            s.endpoint.parse::<http::Uri>(),
            reqwest::Url::parse(&s.endpoint),
        ) else {
            return bad("the endpoint is not a URL");
        };
        if let Err(why) = push_endpoint::check_url(&url, self.inner.push.options().local) {
            return bad(&format!("the {why}"));
        }
        if origin_of(&uri).is_none() {
            return bad("the endpoint has no host");
        }
        let Some(p) = decode_b64url(&s.keys.p256dh) else {
            return bad("keys.p256dh is not base64url");
        };
        if p256::PublicKey::from_sec1_bytes(&p).is_err() {
            return bad("keys.p256dh is not a P-256 public key");
        }
        match decode_b64url(&s.keys.auth) {
            None => bad("keys.auth is not base64url"),
            Some(a) if a.len() != 16 => {
                bad(&format!("keys.auth must be 16 bytes, not {}", a.len()))
            }
            Some(_) => Ok(()),
        }
    }

    /// Stores a browser's subscription for `user` (or updates their own
    /// row for that endpoint); returns its id. The endpoint's host must be
    /// a public push service (see the module docs). An endpoint another
    /// account subscribed stays theirs: 409, nothing changed.
    pub async fn subscribe_push(
        &self,
        user: UserId,
        s: &BrowserSubscription,
        user_agent: &str,
    ) -> Result<i64> {
        self.validate_subscription(s)?;
        let local = self.inner.push.options().local;
        let resolver = self.inner.push.client().1;
        push_endpoint::check_endpoint(&s.endpoint, local, &resolver)
            .await
            .map_err(|why| Error::Invalid(format!("bad push subscription: the {why}")))?;
        let ua: String = user_agent
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, user_agent, created_at, failures)
             VALUES ($1, $2, $3, $4, $5, $6, 0)
             ON CONFLICT (endpoint) DO UPDATE SET p256dh = excluded.p256dh,
                 auth = excluded.auth, user_agent = excluded.user_agent, failures = 0
             WHERE push_subscriptions.user_id = excluded.user_id
             RETURNING id",
        )
        .bind(user)
        .bind(&s.endpoint)
        .bind(s.keys.p256dh.trim())
        .bind(s.keys.auth.trim())
        .bind(ua)
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        id.ok_or_else(|| {
            Error::Conflict(
                "this browser's push subscription belongs to another account; turn notifications on again \
                 on this device to get a subscription of your own"
                    .into(),
            )
        })
    }

    /// Removes `user`'s subscription with `endpoint`; 404 when they have none.
    pub async fn unsubscribe_push(&self, user: UserId, endpoint: &str) -> Result<()> {
        let n = sqlx::query("DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint = $2")
            .bind(user)
            .bind(endpoint)
            .execute(self.pool())
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound(
                "a push subscription of yours with that endpoint".into(),
            ));
        }
        Ok(())
    }

    /// How many browsers `user` has subscribed.
    pub async fn push_subscription_count(&self, user: UserId) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM push_subscriptions WHERE user_id = $1")
                .bind(user)
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Sends the new-post notification for `post` on its own task, so the
    /// request that created it does not wait. See [`push_idle`](Self::push_idle).
    pub fn spawn_new_post_push(&self, post: i64) {
        self.inner.push.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(self.inner.clone());
        let me = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            me.notify_new_post(post).await;
        });
    }

    /// Waits until no push task started by
    /// [`spawn_new_post_push`](Self::spawn_new_post_push) is running.
    pub async fn push_idle(&self) {
        loop {
            let notified = self.inner.push.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.push.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Pushes new post `post` to every subscribed browser of its
    /// recipients; returns what happened to each push. Nothing is sent for
    /// a post that is not visible or whose author is muted or suspended.
    /// Never fails: problems are logged and reported per delivery.
    pub async fn notify_new_post(&self, post: i64) -> Vec<Delivery> {
        match self.new_post_pushes(post).await {
            Ok(Some((payload, ttl, urgency, subs))) => {
                self.send_all(subs, payload, ttl, urgency).await
            }
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::error!("cannot prepare the notifications of post {post}: {e}");
                Vec::new()
            }
        }
    }

    /// The payload and subscriptions for `post`, or `None` when it must
    /// not notify anyone.
    #[allow(clippy::type_complexity)]
    async fn new_post_pushes(
        &self,
        post: i64,
    ) -> Result<Option<(Vec<u8>, Duration, &'static str, Vec<StoredSub>)>> {
        let Some(r) = sqlx::query(
            "SELECT p.title, p.category, p.status, u.display_name, u.role, u.agency_name, u.agency_verified,
                    u.status AS user_status, u.muted_until, u.suspended_until
             FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = $1",
        )
        .bind(post)
        .fetch_optional(self.pool())
        .await?
        else {
            return Ok(None);
        };
        let now = now_ms();
        let active_until = |col: &str| -> Result<bool> {
            Ok(r.try_get::<Option<i64>, _>(col)?.is_some_and(|t| t > now))
        };
        if r.try_get::<String, _>("status")? != "visible"
            || r.try_get::<String, _>("user_status")? != "active"
            || active_until("muted_until")?
            || active_until("suspended_until")?
        {
            return Ok(None);
        }
        let recipients = self.recipients_for(post).await?;
        if recipients.is_empty() {
            return Ok(None);
        }
        let category: String = r.try_get("category")?;
        let who = if r.try_get::<String, _>("role")? == "agency"
            && r.try_get::<i64, _>("agency_verified")? != 0
        {
            r.try_get::<Option<String>, _>("agency_name")?
                .unwrap_or_else(|| "a verified agency".into())
        } else {
            r.try_get::<String, _>("display_name")?
        };
        let payload = PostPayload {
            title: shorten(&r.try_get::<String, _>("title")?, 120),
            body: shorten(
                &format!("{} · {who}", crate::pages::category_label(&category)),
                200,
            ),
            post_id: post,
            url: format!("/posts/{post}"),
            tag: format!("post-{post}"),
            category: category.clone(),
        };
        let (ttl, urgency) = if category == "alert" {
            (TTL_ALERT, "high")
        } else {
            (TTL_POST, "normal")
        };
        let list = (1..=recipients.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT id, user_id, endpoint, p256dh, auth FROM push_subscriptions WHERE user_id IN ({list}) ORDER BY id"
        );
        let mut q = sqlx::query(&sql);
        for u in &recipients {
            q = q.bind(*u);
        }
        let subs = q
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|s| {
                Ok(StoredSub {
                    id: s.try_get("id")?,
                    user_id: s.try_get("user_id")?,
                    endpoint: s.try_get("endpoint")?,
                    p256dh: s.try_get("p256dh")?,
                    auth: s.try_get("auth")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let body = serde_json::to_vec(&payload)
            .map_err(|e| Error::Invalid(format!("cannot encode the push payload: {e}")))?;
        Ok(Some((body, ttl, urgency, subs)))
    }

    async fn send_all(
        &self,
        subs: Vec<StoredSub>,
        payload: Vec<u8>,
        ttl: Duration,
        urgency: &'static str,
    ) -> Vec<Delivery> {
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
        s: StoredSub,
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
                self.record_push(
                    s.id,
                    "UPDATE push_subscriptions SET last_ok_at = $2, failures = 0 WHERE id = $1",
                    Some(now_ms()),
                )
                .await;
                Outcome::Delivered { status }
            }
            Ok(status @ (404 | 410)) => {
                tracing::info!(
                    "push service {service} says subscription {} of user {} is gone ({status}); removing it",
                    s.id,
                    s.user_id
                );
                self.record_push(s.id, "DELETE FROM push_subscriptions WHERE id = $1", None)
                    .await;
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

    async fn record_push(&self, id: i64, sql: &str, at: Option<i64>) {
        let mut q = sqlx::query(sql).bind(id);
        if let Some(at) = at {
            q = q.bind(at);
        }
        if let Err(e) = q.execute(self.pool()).await {
            tracing::warn!("cannot record the outcome of a push: {e}");
        }
    }

    async fn failed(
        &self,
        s: &StoredSub,
        service: &str,
        status: Option<u16>,
        reason: String,
    ) -> Outcome {
        self.record_push(
            s.id,
            "UPDATE push_subscriptions SET failures = failures + 1 WHERE id = $1",
            None,
        )
        .await;
        tracing::warn!(
            "push to subscription {} of user {} via {service} failed: {reason}",
            s.id,
            s.user_id
        );
        Outcome::Failed { status, reason }
    }

    /// Encrypts, signs and sends one push (`porchlight_pushguard::send`,
    /// shared with the hub); the HTTP status, or why none.
    async fn attempt(
        &self,
        s: &StoredSub,
        uri: Option<http::Uri>,
        origin: &str,
        payload: Vec<u8>,
        ttl: Duration,
        urgency: &'static str,
    ) -> std::result::Result<u16, String> {
        let p = &self.inner.push;
        let options = p.options();
        push_endpoint::send::send(
            &p.client().0,
            &p.vapid,
            push_endpoint::send::Target {
                endpoint: &s.endpoint,
                p256dh: &s.p256dh,
                auth: &s.auth,
            },
            push_endpoint::send::Push {
                uri: uri.as_ref(),
                origin,
                contact: &options.contact,
                local: options.local,
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

    #[test]
    fn contacts_must_be_mailto_or_https() {
        assert!(check_contact("mailto:ops@example.org").is_ok());
        assert!(check_contact("https://nb.example").is_ok());
        for bad in [
            "",
            "mailto:",
            "ops@example.org",
            "http://nb.example",
            "mailto:a b@example.org",
        ] {
            let e = check_contact(bad).unwrap_err().to_string();
            assert!(e.contains("mailto: or https:"), "{bad}: {e}");
        }
    }
}
