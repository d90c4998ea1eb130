//! The notifier end to end against a local push service (axum on
//! 127.0.0.1:0): what a subscribed browser receives decrypts — with the
//! browser's own test key pair — to the notice's payload, the VAPID header
//! verifies against the hub's public key, and users' rules and camera
//! grants decide who gets what. Every assertion reads what the fake push
//! service actually captured or what the store holds afterwards.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use porchlight_notify::{BrowserKeys, BrowserSubscription, Notice, Notifier, Outcome};
use porchlight_store::{NewCamera, NewUser, NotificationRules, QuietHours, Role, Store};
use rand::RngCore;
use serde_json::{json, Value};
use web_push_native::jwt_simple::prelude::*;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;
use web_push_native::{p256, Auth};

/// One request the fake push service received.
#[derive(Clone, Debug)]
struct Captured {
    name: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Captured>>>;

/// A push service: `/push/gone…` answers 410, `/push/broken…` 500, anything
/// else 201 (as real services do).
async fn push_service() -> (String, Log) {
    async fn receive(
        State(log): State<Log>,
        Path(name): Path<String>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> StatusCode {
        log.lock().unwrap().push(Captured {
            name: name.clone(),
            headers,
            body: body.to_vec(),
        });
        if name.starts_with("gone") {
            StatusCode::GONE
        } else if name.starts_with("broken") {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::CREATED
        }
    }
    let log: Log = Arc::default();
    let app = Router::new()
        .route("/push/{name}", post(receive))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (origin, log)
}

/// A browser: its ECDH key pair and auth secret.
struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
    endpoint: String,
}

impl Browser {
    fn new(endpoint: String) -> Browser {
        let mut auth = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut auth);
        Browser {
            secret: p256::SecretKey::random(&mut rand::rngs::OsRng),
            auth,
            endpoint,
        }
    }
    fn subscription(&self) -> BrowserSubscription {
        BrowserSubscription {
            endpoint: self.endpoint.clone(),
            expiration_time: None,
            keys: BrowserKeys {
                p256dh: URL_SAFE_NO_PAD
                    .encode(self.secret.public_key().to_encoded_point(false).as_bytes()),
                auth: URL_SAFE_NO_PAD.encode(self.auth),
            },
        }
    }
    fn decrypt(&self, body: &[u8]) -> Value {
        let plain = web_push_native::decrypt(
            body.to_vec(),
            &self.secret,
            &Auth::clone_from_slice(&self.auth),
        )
        .expect("the payload decrypts with the browser's key");
        serde_json::from_slice(&plain).expect("the payload is JSON")
    }
}

struct Hub {
    store: Store,
    notifier: Notifier,
    origin: String,
    log: Log,
    _dir: tempfile::TempDir,
}

const CONTACT: &str = "mailto:owner@example.org";

async fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let notifier = Notifier::open(store.clone(), dir.path(), CONTACT.into())
        .unwrap()
        .loopback_only_for_tests()
        .with_time_zone(jiff::tz::TimeZone::UTC);
    let (origin, log) = push_service().await;
    Hub {
        store,
        notifier,
        origin,
        log,
        _dir: dir,
    }
}

impl Hub {
    async fn user(&self, name: &str, role: Role) -> i64 {
        self.store
            .create_user(
                NewUser {
                    username: name,
                    role,
                    password_hash: "not-a-real-hash",
                    keys: None,
                },
                jiff::Timestamp::now(),
            )
            .await
            .unwrap()
            .id
    }
    async fn camera(&self, name: &str) -> i64 {
        self.store
            .create_camera(
                &NewCamera {
                    name: name.into(),
                    main_url: format!("rtsp://127.0.0.1:9/{name}"),
                    ..Default::default()
                },
                jiff::Timestamp::now(),
            )
            .await
            .unwrap()
            .id
    }
    async fn browser(&self, user: i64, name: &str) -> Browser {
        let b = Browser::new(format!("{}/push/{name}", self.origin));
        self.notifier
            .subscribe(user, &b.subscription(), "test browser")
            .await
            .unwrap();
        b
    }
    /// Names of the subscriptions pushed to since the last call.
    fn take(&self) -> Vec<Captured> {
        let mut v = std::mem::take(&mut *self.log.lock().unwrap());
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

fn notice(kind: &str, camera: Option<i64>, at: &str) -> Notice {
    Notice {
        title: format!("{kind} at the front door"),
        body: "Front door · 14:02".into(),
        kind: kind.into(),
        camera_id: camera,
        camera_name: camera.map(|_| "front-door".into()),
        event_id: Some(42),
        labels: Vec::new(),
        alarm_mode: None,
        url: "/events?camera=front-door".into(),
        at: at.parse().unwrap(),
    }
}

#[tokio::test]
async fn a_subscribed_browser_decrypts_the_notice_and_the_vapid_header_verifies() {
    let h = hub().await;
    let owner = h.user("olive", Role::Owner).await;
    let cam = h.camera("front-door").await;
    let browser = h.browser(owner, "olive-phone").await;

    let n = notice("person", Some(cam), "2026-11-29T14:02:00Z");
    let deliveries = h.notifier.notify(&n).await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].outcome, Outcome::Delivered { status: 201 });
    assert_eq!(deliveries[0].service, h.origin);

    let got = h.take();
    assert_eq!(got.len(), 1);
    let req = &got[0];
    assert_eq!(req.headers["content-encoding"], "aes128gcm");
    assert_eq!(req.headers["urgency"], "normal");
    let ttl: u64 = req.headers["ttl"].to_str().unwrap().parse().unwrap();
    assert!(ttl > 0);

    // The payload: exactly the minimal fields, nothing else.
    assert_eq!(
        browser.decrypt(&req.body),
        json!({
            "title": "person at the front door",
            "body": "Front door · 14:02",
            "url": "/events?camera=front-door",
            "event_id": 42,
            "tag": "event-42",
        })
    );

    // VAPID: `vapid t=<JWT>, k=<public key>`, signed by the hub's key, for
    // the push service's origin (port included), not yet expired.
    let authz = req.headers["authorization"].to_str().unwrap();
    let rest = authz.strip_prefix("vapid t=").expect("a vapid header");
    let (token, k) = rest.split_once(", k=").unwrap();
    assert_eq!(k, h.notifier.public_key_b64());
    let public = ES256PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(k).unwrap()).unwrap();
    let opts = VerificationOptions {
        allowed_audiences: Some(HashSet::from([h.origin.clone()])),
        ..Default::default()
    };
    let claims = public
        .verify_token::<NoCustomClaims>(token, Some(opts))
        .expect("the JWT verifies against the hub's public key, for this audience");
    assert_eq!(claims.subject.as_deref(), Some(CONTACT));
    let exp = claims.expires_at.expect("exp is set").as_secs();
    assert!(exp > jiff::Timestamp::now().as_second() as u64);
    assert!(exp <= jiff::Timestamp::now().as_second() as u64 + 24 * 3600);

    // A token signed by another key does not verify: the check above can
    // fail.
    let other = ES256KeyPair::generate();
    assert!(other
        .public_key()
        .verify_token::<NoCustomClaims>(token, None)
        .is_err());

    // The subscription's success was recorded.
    let subs = h.store.push_subscriptions_of(owner).await.unwrap();
    assert!(subs[0].last_ok.is_some());
    assert_eq!(subs[0].failures, 0);
}

#[tokio::test]
async fn alarms_are_urgent() {
    let h = hub().await;
    let owner = h.user("olive", Role::Owner).await;
    let b = h.browser(owner, "phone").await;
    let mut n = notice("alarm", None, "2026-11-29T03:00:00Z");
    n.event_id = None;
    n.title = "Alarm: front door opened".into();
    h.notifier.notify(&n).await;
    let got = h.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers["urgency"], "high");
    assert_eq!(b.decrypt(&got[0].body)["tag"], "alarm");
}

#[tokio::test]
async fn members_get_only_cameras_they_were_granted() {
    let h = hub().await;
    let owner = h.user("olive", Role::Owner).await;
    let member = h.user("max", Role::Member).await;
    let cam = h.camera("front-door").await;
    h.browser(owner, "a-olive").await;
    h.browser(member, "b-max").await;

    h.notifier
        .notify(&notice("person", Some(cam), "2026-11-29T14:00:00Z"))
        .await;
    let names: Vec<String> = h.take().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["a-olive"]);

    // Notices without a camera go to everyone.
    h.notifier
        .notify(&notice("alarm", None, "2026-11-29T14:00:00Z"))
        .await;
    let names: Vec<String> = h.take().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["a-olive", "b-max"]);

    h.store.grant_camera(cam, member, true).await.unwrap();
    h.notifier
        .notify(&notice("person", Some(cam), "2026-11-29T14:00:00Z"))
        .await;
    let names: Vec<String> = h.take().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["a-olive", "b-max"]);

    // A disabled account gets nothing.
    h.store.set_disabled(member, true).await.unwrap();
    h.notifier
        .notify(&notice("person", Some(cam), "2026-11-29T14:00:00Z"))
        .await;
    let names: Vec<String> = h.take().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["a-olive"]);
}

#[tokio::test]
async fn quiet_hours_hold_back_everything_but_the_alarm() {
    let h = hub().await;
    let owner = h.user("olive", Role::Owner).await;
    let cam = h.camera("front-door").await;
    h.browser(owner, "phone").await;
    let rules = NotificationRules {
        quiet_hours: Some(QuietHours {
            start_min: 22 * 60,
            end_min: 7 * 60,
        }),
        ..Default::default()
    };
    h.store
        .put_notification_rules(owner, &rules, jiff::Timestamp::now())
        .await
        .unwrap();

    // 23:30 UTC (the notifier's zone in these tests): quiet.
    let d = h
        .notifier
        .notify(&notice("person", Some(cam), "2026-11-29T23:30:00Z"))
        .await;
    assert!(d.is_empty(), "{d:?}");
    assert!(h.take().is_empty());

    let d = h
        .notifier
        .notify(&notice("alarm", None, "2026-11-29T23:30:00Z"))
        .await;
    assert_eq!(d.len(), 1);
    assert_eq!(h.take().len(), 1);

    // 12:00: not quiet.
    h.notifier
        .notify(&notice("person", Some(cam), "2026-11-29T12:00:00Z"))
        .await;
    assert_eq!(h.take().len(), 1);

    // The hub's zone counts, not UTC: 12:00 UTC is 23:00 at UTC+11.
    let sydney = h
        .notifier
        .clone()
        .with_time_zone(jiff::tz::TimeZone::fixed(jiff::tz::offset(11)));
    let d = sydney
        .notify(&notice("person", Some(cam), "2026-11-29T12:00:00Z"))
        .await;
    assert!(d.is_empty(), "{d:?}");
}

#[tokio::test]
async fn kind_and_label_filters() {
    let h = hub().await;
    let owner = h.user("olive", Role::Owner).await;
    let cam = h.camera("front-door").await;
    let other = h.camera("garage").await;
    h.browser(owner, "phone").await;
    let rules = NotificationRules {
        kinds: Some(vec!["package".into()]),
        cameras: Some(vec![cam]),
        ..Default::default()
    };
    h.store
        .put_notification_rules(owner, &rules, jiff::Timestamp::now())
        .await
        .unwrap();

    h.notifier
        .notify(&notice("person", Some(cam), "2026-11-29T12:00:00Z"))
        .await;
    assert!(h.take().is_empty(), "a person is not a package");

    let mut n = notice("motion", Some(cam), "2026-11-29T12:00:00Z");
    n.labels = vec!["person".into(), "package".into()];
    h.notifier.notify(&n).await;
    assert_eq!(h.take().len(), 1, "a label matches too");

    h.notifier
        .notify(&notice("package", Some(other), "2026-11-29T12:00:00Z"))
        .await;
    assert!(h.take().is_empty(), "the garage is not among the cameras");
}

#[tokio::test]
async fn gone_subscriptions_are_removed_and_failures_counted() {
    let h = hub().await;
    let owner = h.user("olive", Role::Owner).await;
    h.browser(owner, "gone-phone").await;
    h.browser(owner, "broken-laptop").await;
    h.browser(owner, "ok-tablet").await;

    let d = h
        .notifier
        .notify(&notice("doorbell", None, "2026-11-29T12:00:00Z"))
        .await;
    assert_eq!(d.len(), 3);
    let outcomes: Vec<&Outcome> = d.iter().map(|d| &d.outcome).collect();
    assert!(outcomes.contains(&&Outcome::Removed { status: 410 }));
    assert!(outcomes.contains(&&Outcome::Delivered { status: 201 }));
    assert!(outcomes.iter().any(|o| matches!(
        o,
        Outcome::Failed {
            status: Some(500),
            ..
        }
    )));
    assert_eq!(h.take().len(), 3);

    let left = h.store.push_subscriptions_of(owner).await.unwrap();
    let mut names: Vec<&str> = left
        .iter()
        .map(|s| s.endpoint.rsplit('/').next().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["broken-laptop", "ok-tablet"]);
    let broken = left
        .iter()
        .find(|s| s.endpoint.ends_with("broken-laptop"))
        .unwrap();
    assert_eq!(broken.failures, 1);
    assert!(broken.last_ok.is_none());

    // A push service that cannot be reached is a failure too, not a panic.
    let b = Browser::new("http://127.0.0.1:9/push/nobody-home".into());
    h.notifier
        .subscribe(owner, &b.subscription(), "")
        .await
        .unwrap();
    let d = h.notifier.send_test(owner).await;
    assert_eq!(d.len(), 3);
    assert!(d.iter().any(|d| matches!(
        &d.outcome,
        Outcome::Failed { status: None, reason } if reason.contains("cannot reach")
    )));
}

#[tokio::test]
async fn the_vapid_key_is_made_once_and_kept_private() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let a = Notifier::open(store.clone(), dir.path(), CONTACT.into()).unwrap();
    let b = Notifier::open(store.clone(), dir.path(), CONTACT.into()).unwrap();
    assert_eq!(a.public_key_b64(), b.public_key_b64());
    let raw = URL_SAFE_NO_PAD.decode(a.public_key_b64()).unwrap();
    assert_eq!(raw.len(), 65);
    assert_eq!(raw[0], 4, "an uncompressed SEC1 point");
    let path = dir.path().join(porchlight_notify::KEY_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A damaged key file is reported, not replaced behind the owner's back.
    std::fs::write(&path, "not a key").unwrap();
    let e = Notifier::open(store.clone(), dir.path(), CONTACT.into()).unwrap_err();
    assert!(e.to_string().contains("vapid.key"), "{e}");
    // So is a contact push services cannot use.
    let e = Notifier::open(store, dir.path(), "owner at home".into()).unwrap_err();
    assert!(e.to_string().contains("mailto:"), "{e}");
}

#[tokio::test]
async fn bad_subscriptions_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let strict = Notifier::open(store.clone(), dir.path(), CONTACT.into()).unwrap();
    let good = Browser::new("https://push.example.net/wpush/abc".into()).subscription();
    assert_eq!(strict.validate(&good), Ok(()));

    let mut s = good.clone();
    s.endpoint = "http://192.168.1.1/admin".into();
    assert!(strict.validate(&s).unwrap_err().contains("https://"));
    let mut s = good.clone();
    s.keys.auth = URL_SAFE_NO_PAD.encode([1u8; 15]);
    assert!(strict.validate(&s).unwrap_err().contains("16 bytes"));
    let mut s = good.clone();
    s.keys.p256dh = URL_SAFE_NO_PAD.encode([4u8; 65]);
    assert!(strict.validate(&s).unwrap_err().contains("p256dh"));
    let mut s = good;
    s.keys.p256dh = "***".into();
    assert!(strict.validate(&s).unwrap_err().contains("base64url"));
}

/// Issue 14 item 12: an endpoint stays with the account that subscribed
/// it. The same account subscribing again updates its keys; another
/// account is refused and the row is not moved.
#[tokio::test]
async fn an_endpoint_never_moves_to_another_account() {
    let h = hub().await;
    let a = h.user("olive", Role::Owner).await;
    let b = h.user("max", Role::Member).await;
    let browser = h.browser(a, "shared-tablet").await;
    let before = h.store.push_subscriptions_of(a).await.unwrap();
    // max replays olive's endpoint (with his own keys, or hers): refused.
    let his = Browser::new(browser.endpoint.clone()).subscription();
    for s in [his.clone(), browser.subscription()] {
        let e = h.notifier.subscribe(b, &s, "").await.unwrap_err();
        assert!(
            matches!(e, porchlight_notify::SubscribeError::Taken),
            "{e:?}"
        );
        assert!(e.to_string().contains("another account"), "{e}");
    }
    assert!(h.store.push_subscriptions_of(b).await.unwrap().is_empty());
    assert_eq!(
        h.store.push_subscriptions_of(a).await.unwrap(),
        before,
        "olive's row is untouched"
    );
    // The store refuses it too, whoever calls it.
    let e = h
        .store
        .upsert_push_subscription(b, &browser.endpoint, "k", "a", "", jiff::Timestamp::now())
        .await
        .unwrap_err();
    assert!(
        matches!(e, porchlight_store::StoreError::Conflict(_)),
        "{e:?}"
    );
    // Pushes to that endpoint are still encrypted to olive's keys.
    h.notifier
        .notify(&notice("alarm", None, "2026-11-29T14:00:00Z"))
        .await;
    let got = h.take();
    assert_eq!(got.len(), 1);
    assert_eq!(
        browser.decrypt(&got[0].body)["title"],
        "alarm at the front door",
        "olive's own keys still work"
    );
    // olive subscribing again (new keys on the same endpoint) updates her row.
    let renewed = Browser::new(browser.endpoint.clone());
    h.notifier
        .subscribe(a, &renewed.subscription(), "")
        .await
        .unwrap();
    let rows = h.store.push_subscriptions_of(a).await.unwrap();
    assert_eq!((rows.len(), rows[0].id), (1, before[0].id));
    h.notifier
        .notify(&notice("alarm", None, "2026-11-29T14:01:00Z"))
        .await;
    assert_eq!(
        renewed.decrypt(&h.take()[0].body)["title"],
        "alarm at the front door"
    );
    // Once olive's row is gone, max may subscribe that endpoint.
    assert!(h
        .store
        .delete_push_subscription(a, &browser.endpoint)
        .await
        .unwrap());
    h.notifier.subscribe(b, &his, "").await.unwrap();
    assert_eq!(h.store.push_subscriptions_of(b).await.unwrap().len(), 1);
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

fn with_endpoint(endpoint: &str) -> BrowserSubscription {
    let mut s = Browser::new("https://push.example.net/x".into()).subscription();
    s.endpoint = endpoint.into();
    s
}

/// Issue 14 item 12: an endpoint whose host is, or resolves to, a
/// loopback, private or link-local address is refused when a browser
/// subscribes — by the hub as configured by default. Names are resolved by
/// a fixed test table: nothing is looked up or contacted off this machine.
#[tokio::test]
async fn endpoints_on_this_machine_or_the_lan_are_refused_at_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let owner = store
        .create_user(
            NewUser {
                username: "olive",
                role: Role::Owner,
                password_hash: "x",
                keys: None,
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap()
        .id;
    let dns = Arc::new(porchlight_notify::endpoint::FixedResolver::new());
    dns.set("metadata.test", &[ip("169.254.169.254")]);
    dns.set("router.test", &[ip("192.168.1.1")]);
    dns.set("nas.test", &[ip("fd12:3456::7")]);
    dns.set("self.test", &[ip("127.0.0.1")]);
    dns.set("mixed.test", &[ip("8.8.8.8"), ip("10.0.0.1")]);
    dns.set(
        "push.test",
        &[ip("8.8.8.8"), ip("2a00:1450:4001:82b::200a")],
    );
    let strict = Notifier::open(store.clone(), dir.path(), CONTACT.into())
        .unwrap()
        .with_resolver(dns.clone());
    for (endpoint, why) in [
        ("https://127.0.0.1/push/x", "loopback"),
        ("https://[::1]:8443/push/x", "loopback"),
        ("https://2130706433/push/x", "loopback"),
        ("https://10.0.0.2/push/x", "private"),
        ("https://172.20.1.1/push/x", "private"),
        ("https://192.168.1.1:8443/admin", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[fe80::1]/push/x", "link-local"),
        ("https://[::ffff:10.1.2.3]/push/x", "private"),
        (
            "https://metadata.test/latest/meta-data",
            "169.254.169.254, a link-local",
        ),
        ("https://router.test/push/x", "192.168.1.1, a private"),
        ("https://nas.test/push/x", "private"),
        ("https://self.test/push/x", "127.0.0.1, a loopback"),
        ("https://mixed.test/push/x", "10.0.0.1, a private"),
        ("https://nowhere.test/push/x", "cannot resolve"),
    ] {
        let e = strict
            .subscribe(owner, &with_endpoint(endpoint), "")
            .await
            .unwrap_err();
        assert!(
            matches!(e, porchlight_notify::SubscribeError::Invalid(_)),
            "{endpoint}: {e:?}"
        );
        assert!(e.to_string().contains(why), "{endpoint}: {e}");
    }
    assert!(
        store.push_subscriptions_of(owner).await.unwrap().is_empty(),
        "nothing stored"
    );
    assert_eq!(
        dns.lookups("metadata.test"),
        1,
        "names are resolved to be judged"
    );
    // A public push service is accepted (no connection is made to subscribe).
    strict
        .subscribe(owner, &with_endpoint("https://push.test/wpush/abc"), "")
        .await
        .unwrap();
    // The loopback switch admits loopback IP literals only, not names
    // that resolve to loopback, and nothing on the LAN.
    let switch = strict.clone().allow_loopback_http_endpoints();
    switch
        .subscribe(owner, &with_endpoint("http://127.0.0.1:9/push/ok"), "")
        .await
        .unwrap();
    for endpoint in [
        "https://self.test/push/x",
        "https://192.168.1.1/x",
        "http://localhost:9/push/x",
        "https://metadata.test/x",
    ] {
        assert!(
            switch
                .subscribe(owner, &with_endpoint(endpoint), "")
                .await
                .is_err(),
            "{endpoint}"
        );
    }
    assert_eq!(store.push_subscriptions_of(owner).await.unwrap().len(), 2);
}

/// A TCP listener on 127.0.0.1 that counts the connections it accepts.
async fn counting_listener() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = n.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = listener.accept().await {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (port, n)
}

/// DNS rebinding: a name that was public when the browser subscribed and
/// resolves to this machine when the hub sends is refused at send time,
/// before any connection (the listener standing where it points accepts
/// none), with one lookup per send.
#[tokio::test]
async fn a_name_rebound_after_subscribing_is_refused_before_connecting() {
    let h = hub().await;
    let owner = h.user("olive", Role::Owner).await;
    let (port, accepted) = counting_listener().await;
    let dns = Arc::new(porchlight_notify::endpoint::FixedResolver::new());
    dns.set("push.rebind.test", &[ip("8.8.8.8")]);
    let strict = Notifier::open(h.store.clone(), h._dir.path(), CONTACT.into())
        .unwrap()
        .with_resolver(dns.clone());
    let endpoint = format!("https://push.rebind.test:{port}/push/olive");
    strict
        .subscribe(owner, &with_endpoint(&endpoint), "")
        .await
        .unwrap();
    assert_eq!(dns.lookups("push.rebind.test"), 1);
    for (rebound, why) in [
        ("127.0.0.1", "127.0.0.1, a loopback"),
        ("10.9.8.7", "10.9.8.7, a private"),
        ("169.254.169.254", "link-local"),
    ] {
        dns.set("push.rebind.test", &[ip(rebound)]);
        let before = dns.lookups("push.rebind.test");
        let d = strict.send_test(owner).await;
        assert!(
            matches!(&d[..], [porchlight_notify::Delivery { outcome: Outcome::Failed { status: None, reason }, .. }] if reason.contains("refused") && reason.contains(why)),
            "{rebound}: {d:?}"
        );
        assert_eq!(
            dns.lookups("push.rebind.test"),
            before + 1,
            "one lookup per send"
        );
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no connection was made"
    );
    // The subscription was refused, not removed: the failure is counted.
    assert_eq!(
        h.store.push_subscriptions_of(owner).await.unwrap()[0].failures,
        3
    );
}

/// The connection goes to the address the check saw: with a test resolver
/// pointing a name at the local push service, the push arrives there after
/// exactly one lookup, and stops arriving the moment the name points off
/// this machine.
#[tokio::test]
async fn the_send_connects_to_the_address_it_checked() {
    let h = hub().await;
    let owner = h.user("olive", Role::Owner).await;
    let dns = Arc::new(porchlight_notify::endpoint::FixedResolver::new());
    dns.set("push.local.test", &[ip("127.0.0.1")]);
    let n = h.notifier.clone().with_resolver(dns.clone());
    let port = h.origin.rsplit(':').next().unwrap();
    let browser = Browser::new(format!("http://push.local.test:{port}/push/olive-phone"));
    n.subscribe(owner, &browser.subscription(), "")
        .await
        .unwrap();
    assert_eq!(dns.lookups("push.local.test"), 1);
    let d = n.send_test(owner).await;
    assert!(
        matches!(
            d[..],
            [porchlight_notify::Delivery {
                outcome: Outcome::Delivered { status: 201 },
                ..
            }]
        ),
        "{d:?}"
    );
    assert_eq!(
        dns.lookups("push.local.test"),
        2,
        "the check and the connection share one lookup"
    );
    let got = h.take();
    assert_eq!(got.len(), 1);
    assert_eq!(
        browser.decrypt(&got[0].body)["title"],
        "Porchlight test notification"
    );
    dns.set("push.local.test", &[ip("10.0.0.1")]);
    let d = n.send_test(owner).await;
    assert!(
        matches!(&d[..], [porchlight_notify::Delivery { outcome: Outcome::Failed { reason, .. }, .. }] if reason.contains("10.0.0.1")),
        "{d:?}"
    );
    assert!(h.take().is_empty());
}

#[tokio::test]
async fn loopback_http_is_allowed_only_to_loopback_addresses_and_only_when_asked() {
    let h = hub().await;
    let owner = h.user("olive", Role::Owner).await;
    let strict = Notifier::open(h.store.clone(), h._dir.path(), CONTACT.into()).unwrap();
    let loopback = strict.clone().allow_loopback_http_endpoints();
    let with = |endpoint: &str| {
        let mut s = Browser::new("https://push.example.net/x".into()).subscription();
        s.endpoint = endpoint.into();
        s
    };
    for ok in [
        "http://127.0.0.1:9999/push/a",
        "http://127.8.9.10/push/a",
        "http://[::1]:8443/push/a",
        "https://push.example.net/wpush/abc",
    ] {
        assert_eq!(loopback.validate(&with(ok)), Ok(()), "{ok}");
    }
    for bad in [
        "http://192.168.1.1/admin",
        "http://10.0.0.2:8080/x",
        "http://localhost:9999/push/a",
        "http://127.0.0.1.evil.example/x",
        "http://[::ffff:192.168.1.1]/x",
        "http://push.example.net/x",
    ] {
        let e = loopback.validate(&with(bad)).unwrap_err();
        assert!(e.contains("127.0.0.1"), "{bad}: {e}");
    }
    // Without the opt-in, no http:// at all.
    let e = strict
        .validate(&with("http://127.0.0.1:9999/push/a"))
        .unwrap_err();
    assert!(e.contains("https://"), "{e}");
    assert!(
        !e.contains("127.0.0.1"),
        "the strict hub does not advertise the opt-in: {e}"
    );
    // The test notifier keeps every push on this machine; the opt-in does
    // not widen it to the LAN.
    let any = h.notifier.clone().allow_loopback_http_endpoints();
    assert!(any.validate(&with("http://192.168.1.1/x")).is_err());

    // A loopback subscription is delivered under the opt-in, and a hub
    // that no longer allows it does not send to the stored one.
    let browser = Browser::new(format!("{}/push/olive-laptop", h.origin));
    loopback
        .subscribe(owner, &browser.subscription(), "")
        .await
        .unwrap();
    let d = loopback.send_test(owner).await;
    assert!(
        matches!(
            d[..],
            [porchlight_notify::Delivery {
                outcome: Outcome::Delivered { status: 201 },
                ..
            }]
        ),
        "{d:?}"
    );
    let got = h.take();
    assert_eq!(got.len(), 1);
    assert_eq!(
        browser.decrypt(&got[0].body)["title"],
        "Porchlight test notification"
    );
    let d = strict.send_test(owner).await;
    assert!(
        matches!(&d[..], [porchlight_notify::Delivery { outcome: Outcome::Failed { status: None, reason }, .. }] if reason.contains("https://")),
        "{d:?}"
    );
    assert!(h.take().is_empty(), "nothing reached the push service");
}
