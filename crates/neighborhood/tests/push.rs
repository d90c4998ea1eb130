//! Web Push for new posts, on SQLite and PostgreSQL, against a local push
//! service (axum on 127.0.0.1:0) standing in for the browser vendor's.
//! Browsers are test P-256 key pairs with auth secrets; what the push
//! service captured is decrypted (RFC 8291 `aes128gcm`) with the browser's
//! own key, and the VAPID header is verified against the key the API
//! serves. Every assertion reads what the push service actually received
//! or what the database holds afterwards.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{cell_at, home, next_door, Ctx};
use porchlight_neighborhood::accounts::Role;
use porchlight_neighborhood::moderation::{ContentAction, UserAction};
use porchlight_neighborhood::posts::Category;
use porchlight_neighborhood::push::{Outcome, PushOptions};
use porchlight_neighborhood::push_endpoint::{FixedResolver, LocalPush};
use porchlight_neighborhood::{Neighborhood, UserId};
use porchlight_vault::keys::KdfParams;
use serde_json::{json, Value};
use web_push_native::jwt_simple::prelude::*;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;
use web_push_native::{p256, Auth};

const CONTACT: &str = "mailto:ops@nb.example.org";

/// One request the push service received.
#[derive(Clone, Debug)]
struct Captured {
    name: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Clone)]
struct Service {
    log: Arc<Mutex<Vec<Captured>>>,
    /// `/push/hold…` waits for this before answering.
    release: Arc<tokio::sync::Semaphore>,
}

/// The push service: `/push/gone…` answers 410, `/push/broken…` 500,
/// `/push/hold…` answers 201 once released, anything else 201.
async fn push_service() -> (String, Service) {
    async fn receive(
        State(s): State<Service>,
        Path(name): Path<String>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> StatusCode {
        s.log.lock().unwrap().push(Captured {
            name: name.clone(),
            headers,
            body: body.to_vec(),
        });
        if name.starts_with("gone") {
            StatusCode::GONE
        } else if name.starts_with("broken") {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            if name.starts_with("hold") {
                let _ = s.release.acquire().await.unwrap();
            }
            StatusCode::CREATED
        }
    }
    let service = Service {
        log: Arc::default(),
        release: Arc::new(tokio::sync::Semaphore::new(0)),
    };
    let app = Router::new()
        .route("/push/{name}", post(receive))
        .with_state(service.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (origin, service)
}

impl Service {
    /// What was received since the last call, by endpoint name.
    fn take(&self) -> Vec<Captured> {
        let mut v = std::mem::take(&mut *self.log.lock().unwrap());
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

/// A browser: its ECDH key pair and auth secret.
struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
    endpoint: String,
}

impl Browser {
    fn new(origin: &str, name: &str) -> Browser {
        Browser {
            secret: p256::SecretKey::random(&mut rand::rngs::OsRng),
            auth: rand::random(),
            endpoint: format!("{origin}/push/{name}"),
        }
    }
    fn subscription(&self) -> Value {
        json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(self.secret.public_key().to_encoded_point(false).as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(self.auth),
            }
        })
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

/// Sets up the push options and the service.
async fn service(c: &Ctx) -> (String, Service) {
    c.n.set_push_options(PushOptions {
        contact: CONTACT.into(),
        local: LocalPush::LoopbackLiterals,
    })
    .unwrap();
    push_service().await
}

/// Subscribes a browser through the API as `token`'s user.
async fn subscribe(c: &Ctx, token: &str, origin: &str, name: &str) -> Browser {
    let b = Browser::new(origin, name);
    let r = c
        .req(
            "POST",
            "/api/v1/push/subscriptions",
            Some(token),
            b.subscription(),
        )
        .await;
    assert_eq!(r.status, 201, "subscribe {name}: {r:?}");
    b
}

async fn set_categories(c: &Ctx, token: &str, cats: &[&str]) {
    let r = c
        .req(
            "PUT",
            "/api/v1/me/subscriptions",
            Some(token),
            json!({ "categories": cats }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

async fn create(c: &Ctx, token: &str, category: &str, title: &str, cell: h3o::CellIndex) -> i64 {
    let r = c
        .req(
            "POST",
            "/api/v1/posts",
            Some(token),
            json!({ "category": category, "title": title, "body": "Last seen by the corner shop, on Elm Street 14.", "cell": cell.to_string() }),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.json()["id"].as_i64().unwrap()
}

async fn a_subscriber_in_range_decrypts_the_post_and_no_one_else_gets_it(c: Ctx) {
    let (origin, svc) = service(&c).await;
    let home = home();
    let near = cell_at(home, 0.8, 1.6);
    let far = cell_at(home, 9.0, 12.0);
    let (_, author) = c.user("ana", Role::Neighbor, Some(home)).await;
    let (_, ben) = c.user("ben", Role::Neighbor, Some(near)).await;
    let (_, cyd) = c.user("cyd", Role::Neighbor, Some(far)).await;
    let (_, dee) = c.user("dee", Role::Neighbor, Some(home)).await;
    for t in [&author, &ben, &cyd] {
        set_categories(&c, t, &["alert", "lost_found_pet"]).await;
    }
    // dee keeps the defaults (alerts only).
    let _ana_phone = subscribe(&c, &author, &origin, "ana-phone").await;
    let ben_phone = subscribe(&c, &ben, &origin, "ben-phone").await;
    let _cyd_phone = subscribe(&c, &cyd, &origin, "cyd-phone").await;
    let _dee_phone = subscribe(&c, &dee, &origin, "dee-phone").await;

    let title = "Lost: black and white cat, Pepper";
    let id = create(&c, &author, "lost_found_pet", title, next_door(home)).await;
    c.n.push_idle().await;
    let got = svc.take();
    let names: Vec<&str> = got.iter().map(|g| g.name.as_str()).collect();
    // Not the author, not cyd (about 10 km away, radius 3), not dee (not
    // subscribed to lost pets): only ben.
    assert_eq!(names, ["ben-phone"], "who received the push");
    let req = &got[0];
    assert_eq!(req.headers["content-encoding"], "aes128gcm");
    assert_eq!(req.headers["urgency"], "normal");
    let ttl: u64 = req.headers["ttl"].to_str().unwrap().parse().unwrap();
    assert!(ttl > 0);
    let payload = ben_phone.decrypt(&req.body);
    assert_eq!(
        payload,
        json!({
            "title": title,
            "body": "Lost & found pet · ana",
            "category": "lost_found_pet",
            "post_id": id,
            "url": format!("/posts/{id}"),
            "tag": format!("post-{id}"),
        })
    );
    // Nothing about place: not the post's cell, not its body (which names a street).
    let text = payload.to_string();
    assert!(
        !text.contains(&home.to_string()) && !text.contains("Elm Street") && !text.contains("km"),
        "{text}"
    );

    // VAPID: signed by the key the API serves, for the push service's
    // origin (port included), with our contact.
    let r = c
        .req("GET", "/api/v1/push/key", Some(&ben), Value::Null)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let key = r.json()["public_key"].as_str().unwrap().to_string();
    assert_eq!(key, c.n.push_public_key());
    let authz = req.headers["authorization"].to_str().unwrap();
    let (token, k) = authz
        .strip_prefix("vapid t=")
        .expect("a vapid header")
        .split_once(", k=")
        .unwrap();
    assert_eq!(k, key);
    let public = ES256PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(&key).unwrap()).unwrap();
    let opts = VerificationOptions {
        allowed_audiences: Some(HashSet::from([origin.clone()])),
        ..Default::default()
    };
    let claims = public
        .verify_token::<NoCustomClaims>(token, Some(opts))
        .expect("the VAPID JWT verifies");
    assert_eq!(claims.subject.as_deref(), Some(CONTACT));
    assert!(ES256KeyPair::generate()
        .public_key()
        .verify_token::<NoCustomClaims>(token, None)
        .is_err());

    // A category nobody in range follows: nothing at all.
    create(
        &c,
        &author,
        "wildlife",
        "Heron at the pond",
        next_door(home),
    )
    .await;
    c.n.push_idle().await;
    assert!(svc.take().is_empty(), "nobody follows wildlife");
}

async fn agency_alerts_arrive_with_default_settings(c: Ctx) {
    let (origin, svc) = service(&c).await;
    let home = home();
    let (_, fire) = c.user("fire", Role::Agency, Some(home)).await;
    let (eve_id, eve) = c.user("eve", Role::Neighbor, Some(home)).await;
    let (_, fay) = c.user("fay", Role::Neighbor, Some(home)).await;
    // eve never touched her settings: alerts are on.
    assert_eq!(c.n.subscriptions(eve_id).await.unwrap(), ["alert"]);
    // fay turned everything off.
    set_categories(&c, &fay, &[]).await;
    let eve_phone = subscribe(&c, &eve, &origin, "eve-phone").await;
    let _fay_phone = subscribe(&c, &fay, &origin, "fay-phone").await;
    // Safety tips are not on by default; alerts are.
    create(
        &c,
        &fire,
        "safety_tip",
        "Clear the hydrants",
        cell_at(home, 0.4, 1.2),
    )
    .await;
    let id = create(
        &c,
        &fire,
        "alert",
        "Gas leak: avoid Pine Street",
        cell_at(home, 0.4, 1.2),
    )
    .await;
    c.n.push_idle().await;
    let got = svc.take();
    let names: Vec<&str> = got.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["eve-phone"], "only the alert, only to eve");
    assert_eq!(got[0].headers["urgency"], "high", "alerts are urgent");
    let p = eve_phone.decrypt(&got[0].body);
    assert_eq!(p["title"], "Gas leak: avoid Pine Street");
    assert_eq!(p["category"], "alert");
    assert_eq!(p["post_id"], id);
    assert_eq!(p["body"], "Alert · City Fire Department");
}

async fn hidden_posts_and_muted_or_suspended_authors_do_not_notify(c: Ctx) {
    let (origin, svc) = service(&c).await;
    let home = home();
    let (gus, _) = c.user("gus", Role::Neighbor, Some(home)).await;
    let (_, hal) = c.user("hal", Role::Neighbor, Some(home)).await;
    let (ivy, _) = c.user("ivy", Role::Neighbor, Some(home)).await;
    let (m, _) = c.user("moe", Role::Moderator, Some(home)).await;
    let mv = c.n.viewer(m).await.unwrap();
    set_categories(&c, &hal, &["wildlife"]).await;
    let hal_phone = subscribe(&c, &hal, &origin, "hal-phone").await;
    let raw = |author: UserId, title: &'static str| {
        let n = c.n.clone();
        async move {
            n.insert_post_raw(
                author,
                Category::Wildlife,
                title,
                "By the pond.",
                home,
                json!({}),
                jiff::Timestamp::now().as_millisecond(),
            )
            .await
            .unwrap()
        }
    };
    // The control: a visible post by an author in good standing notifies.
    let ok = raw(gus, "Heron").await;
    let d = c.n.notify_new_post(ok).await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].outcome, Outcome::Delivered { status: 201 });
    assert_eq!(hal_phone.decrypt(&svc.take()[0].body)["post_id"], ok);
    // Hidden by a moderator before the push went out: nothing.
    let hidden = raw(gus, "Fox").await;
    c.n.moderate_content(&mv, "post", hidden, ContentAction::Hide, "off topic")
        .await
        .unwrap();
    assert!(c.n.notify_new_post(hidden).await.is_empty());
    // Muted author: nothing.
    let muted_post = raw(gus, "Owl").await;
    c.n.moderate_user(&mv, gus, UserAction::Mute, "heated thread", Some(24))
        .await
        .unwrap();
    assert!(c.n.notify_new_post(muted_post).await.is_empty());
    // Suspended author: nothing.
    let susp_post = raw(ivy, "Deer").await;
    c.n.moderate_user(&mv, ivy, UserAction::Suspend, "spam", Some(24))
        .await
        .unwrap();
    assert!(c.n.notify_new_post(susp_post).await.is_empty());
    assert!(
        svc.take().is_empty(),
        "the push service received nothing for those three"
    );
    // And a suspended *recipient* gets nothing either.
    let (_, jo) = c.user("joy", Role::Neighbor, Some(home)).await;
    let jv = c.n.viewer_for_token(&jo).await.unwrap();
    let post = raw(jv.id, "Coyote").await;
    let hal_id = c.n.viewer_for_token(&hal).await.unwrap().id;
    c.n.moderate_user(&mv, hal_id, UserAction::Suspend, "spam", Some(24))
        .await
        .unwrap();
    assert!(c.n.notify_new_post(post).await.is_empty());
}

async fn expired_subscriptions_are_removed_and_failures_counted(c: Ctx) {
    let (origin, svc) = service(&c).await;
    let home = home();
    let (_, fire) = c.user("fire", Role::Agency, Some(home)).await;
    let (kim, kt) = c.user("kim", Role::Neighbor, Some(home)).await;
    subscribe(&c, &kt, &origin, "gone-1").await;
    subscribe(&c, &kt, &origin, "broken-1").await;
    subscribe(&c, &kt, &origin, "kim-phone").await;
    assert_eq!(c.n.push_subscription_count(kim).await.unwrap(), 3);
    let id = create(&c, &fire, "alert", "Boil water notice", next_door(home)).await;
    c.n.push_idle().await;
    assert_eq!(svc.take().len(), 3);
    // The 410 one is gone, the 500 one stays.
    assert_eq!(c.n.push_subscription_count(kim).await.unwrap(), 2);
    let d = c.n.notify_new_post(id).await;
    let outcomes: Vec<_> = d.iter().map(|d| d.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Failed {
                status: Some(500),
                reason: "push service answered 500".into()
            },
            Outcome::Delivered { status: 201 }
        ]
    );
    assert!(
        d.iter().all(|d| d.service == origin),
        "only the origin is reported: {d:?}"
    );
}

async fn creating_a_post_does_not_wait_for_the_push_service(c: Ctx) {
    let (origin, svc) = service(&c).await;
    let home = home();
    let (_, fire) = c.user("fire", Role::Agency, Some(home)).await;
    let (_, lu) = c.user("lulu", Role::Neighbor, Some(home)).await;
    subscribe(&c, &lu, &origin, "hold-lu").await;
    // The push service holds its answer until released; the post is created anyway.
    let created = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        create(&c, &fire, "alert", "Road closed", next_door(home)),
    )
    .await;
    assert!(created.is_ok(), "the POST waited for the push service");
    svc.release.add_permits(1);
    c.n.push_idle().await;
    assert_eq!(svc.take().len(), 1);
}

async fn subscriptions_are_validated_and_owned(c: Ctx) {
    let (origin, _svc) = service(&c).await;
    let (mia, mt) = c.user("mia", Role::Neighbor, Some(home())).await;
    let (_, nt) = c.user("ned", Role::Neighbor, Some(home())).await;
    let good = Browser::new(&origin, "mia").subscription();
    let mut cases = Vec::new();
    let mut b = good.clone();
    b["endpoint"] = "ftp://push.example/x".into();
    cases.push((b, "https:// URL"));
    let mut b = good.clone();
    b["endpoint"] = "not a url".into();
    cases.push((b, "not a URL"));
    let mut b = good.clone();
    b["keys"]["p256dh"] = URL_SAFE_NO_PAD.encode([4u8; 65]).into();
    cases.push((b, "not a P-256 public key"));
    let mut b = good.clone();
    b["keys"]["auth"] = URL_SAFE_NO_PAD.encode([1u8; 8]).into();
    cases.push((b, "keys.auth must be 16 bytes, not 8"));
    let mut b = good.clone();
    b["keys"]["auth"] = "***".into();
    cases.push((b, "keys.auth is not base64url"));
    let mut b = good.clone();
    b["endpoint"] = format!("https://push.example/{}", "x".repeat(3000)).into();
    cases.push((b, "longer than 2048"));
    for (body, why) in cases {
        let r = c
            .req("POST", "/api/v1/push/subscriptions", Some(&mt), body)
            .await;
        assert_eq!(r.status, 422, "{why}: {r:?}");
        assert!(
            r.json()["error"].as_str().unwrap().contains(why),
            "{why}: {r:?}"
        );
    }
    // A push service on this machine is refused unless allowed (tests only).
    c.n.set_push_options(PushOptions {
        contact: CONTACT.into(),
        local: LocalPush::Off,
    })
    .unwrap();
    let r = c
        .req(
            "POST",
            "/api/v1/push/subscriptions",
            Some(&mt),
            good.clone(),
        )
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    c.n.set_push_options(PushOptions {
        contact: CONTACT.into(),
        local: LocalPush::LoopbackLiterals,
    })
    .unwrap();
    assert!(c
        .n
        .set_push_options(PushOptions {
            contact: "root@localhost".into(),
            local: LocalPush::LoopbackLiterals
        })
        .is_err());
    assert_eq!(c.n.push_subscription_count(mia).await.unwrap(), 0);
    // Subscribing twice keeps one row; someone else cannot remove it.
    for _ in 0..2 {
        let r = c
            .req(
                "POST",
                "/api/v1/push/subscriptions",
                Some(&mt),
                good.clone(),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    assert_eq!(c.n.push_subscription_count(mia).await.unwrap(), 1);
    let ep = json!({ "endpoint": good["endpoint"] });
    let r = c
        .req(
            "DELETE",
            "/api/v1/push/subscriptions",
            Some(&nt),
            ep.clone(),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(c.n.push_subscription_count(mia).await.unwrap(), 1);
    let r = c
        .req(
            "DELETE",
            "/api/v1/push/subscriptions",
            Some(&mt),
            ep.clone(),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(c.n.push_subscription_count(mia).await.unwrap(), 0);
    // The key is made once and kept: a second server on the same database uses it.
    let again = Neighborhood::open_with(&c.url, KdfParams::insecure_for_tests())
        .await
        .unwrap();
    assert_eq!(again.push_public_key(), c.n.push_public_key());
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(again.push_public_key())
            .unwrap()
            .len(),
        65,
        "an uncompressed P-256 point"
    );
    again.close().await;
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

/// Issue 14 item 12: with the default options (no push service on this
/// machine), an endpoint whose host is or resolves to a loopback, private
/// or link-local address is refused when a browser subscribes. Names are
/// resolved by a fixed test table: nothing is looked up off this machine.
async fn endpoints_on_this_machine_or_the_lan_are_refused(c: Ctx) {
    let dns = Arc::new(FixedResolver::new());
    dns.set("metadata.test", &[ip("169.254.169.254")]);
    dns.set("router.test", &[ip("192.168.1.1")]);
    dns.set("self.test", &[ip("::1")]);
    dns.set("mixed.test", &[ip("8.8.8.8"), ip("10.0.0.1")]);
    dns.set("push.test", &[ip("8.8.8.8")]);
    c.n.set_push_resolver(dns.clone()).unwrap();
    c.n.set_push_options(PushOptions {
        contact: CONTACT.into(),
        local: LocalPush::Off,
    })
    .unwrap();
    let (mia, mt) = c.user("mia", Role::Neighbor, Some(home())).await;
    let sub = |endpoint: &str| {
        let mut s = Browser::new("https://push.test", "x").subscription();
        s["endpoint"] = endpoint.into();
        s
    };
    for (endpoint, why) in [
        ("https://127.0.0.1/push/x", "loopback"),
        ("https://[::1]:8443/push/x", "loopback"),
        ("https://127.1/push/x", "loopback"),
        ("https://10.0.0.2/push/x", "private"),
        ("https://192.168.1.1:8443/admin", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[fe80::1]/push/x", "link-local"),
        ("http://192.168.1.1/admin", "https://"),
        (
            "https://metadata.test/latest",
            "169.254.169.254, a link-local",
        ),
        ("https://router.test/x", "192.168.1.1, a private"),
        ("https://self.test/x", "::1, a loopback"),
        ("https://mixed.test/x", "10.0.0.1, a private"),
        ("https://nowhere.test/x", "cannot resolve"),
    ] {
        let r = c
            .req(
                "POST",
                "/api/v1/push/subscriptions",
                Some(&mt),
                sub(endpoint),
            )
            .await;
        assert_eq!(r.status, 422, "{endpoint}: {r:?}");
        assert!(
            r.json()["error"].as_str().unwrap().contains(why),
            "{endpoint}: {r:?}"
        );
    }
    assert_eq!(c.n.push_subscription_count(mia).await.unwrap(), 0);
    assert_eq!(dns.lookups("metadata.test"), 1);
    // A public push service is accepted (subscribing contacts nothing).
    let r = c
        .req(
            "POST",
            "/api/v1/push/subscriptions",
            Some(&mt),
            sub("https://push.test/wpush/mia"),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    // The loopback switch admits loopback IP literals, not names that
    // resolve to loopback, nor the LAN.
    c.n.set_push_options(PushOptions {
        contact: CONTACT.into(),
        local: LocalPush::LoopbackLiterals,
    })
    .unwrap();
    let r = c
        .req(
            "POST",
            "/api/v1/push/subscriptions",
            Some(&mt),
            sub("http://127.0.0.1:9/push/ok"),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    for endpoint in [
        "https://self.test/x",
        "https://10.0.0.2/x",
        "http://localhost:9/push/x",
    ] {
        let r = c
            .req(
                "POST",
                "/api/v1/push/subscriptions",
                Some(&mt),
                sub(endpoint),
            )
            .await;
        assert_eq!(r.status, 422, "{endpoint}: {r:?}");
    }
    assert_eq!(c.n.push_subscription_count(mia).await.unwrap(), 2);
}

/// A TCP listener on 127.0.0.1 that counts the connections it accepts.
async fn counting_listener() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = n.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (port, n)
}

/// DNS rebinding: a push service name that was public at subscription and
/// points at this machine or the LAN when the post goes out is refused at
/// send time, before any connection, with one lookup per send.
async fn a_name_rebound_after_subscribing_is_refused_before_connecting(c: Ctx) {
    let dns = Arc::new(FixedResolver::new());
    dns.set("push.rebind.test", &[ip("8.8.8.8")]);
    c.n.set_push_resolver(dns.clone()).unwrap();
    c.n.set_push_options(PushOptions {
        contact: CONTACT.into(),
        local: LocalPush::Off,
    })
    .unwrap();
    let (port, accepted) = counting_listener().await;
    let home = home();
    let (_, fire) = c.user("fire", Role::Agency, Some(home)).await;
    let (kim, kt) = c.user("kim", Role::Neighbor, Some(home)).await;
    let b = Browser::new(&format!("https://push.rebind.test:{port}"), "kim-phone");
    let r = c
        .req(
            "POST",
            "/api/v1/push/subscriptions",
            Some(&kt),
            b.subscription(),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(dns.lookups("push.rebind.test"), 1);
    // The name moves to this machine before anything is sent.
    dns.set("push.rebind.test", &[ip("127.0.0.1")]);
    let id = create(&c, &fire, "alert", "Boil water notice", next_door(home)).await;
    c.n.push_idle().await;
    assert_eq!(
        dns.lookups("push.rebind.test"),
        2,
        "the post's push looked it up once"
    );
    for (rebound, why) in [
        ("127.0.0.1", "127.0.0.1, a loopback"),
        ("10.9.8.7", "10.9.8.7, a private"),
        ("169.254.169.254", "link-local"),
    ] {
        dns.set("push.rebind.test", &[ip(rebound)]);
        let before = dns.lookups("push.rebind.test");
        let d = c.n.notify_new_post(id).await;
        assert!(
            matches!(&d[..], [porchlight_neighborhood::push::Delivery { outcome: Outcome::Failed { status: None, reason }, .. }] if reason.contains("refused") && reason.contains(why)),
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
    assert_eq!(
        c.n.push_subscription_count(kim).await.unwrap(),
        1,
        "refused, not removed"
    );
}

/// The connection goes to the address the check saw: a name the test
/// resolver points at the local push service gets the push after one
/// lookup per send; pointed off this machine, it gets nothing.
async fn the_send_connects_to_the_address_it_checked(c: Ctx) {
    let (origin, svc) = push_service().await;
    let port = origin.rsplit(':').next().unwrap().to_string();
    let dns = Arc::new(FixedResolver::new());
    dns.set("push.local.test", &[ip("127.0.0.1")]);
    c.n.set_push_resolver(dns.clone()).unwrap();
    c.n.set_push_options(PushOptions {
        contact: CONTACT.into(),
        local: LocalPush::LoopbackOnly,
    })
    .unwrap();
    let home = home();
    let (_, fire) = c.user("fire", Role::Agency, Some(home)).await;
    let (_, kt) = c.user("kim", Role::Neighbor, Some(home)).await;
    let phone = subscribe(
        &c,
        &kt,
        &format!("http://push.local.test:{port}"),
        "kim-phone",
    )
    .await;
    assert_eq!(dns.lookups("push.local.test"), 1);
    let id = create(&c, &fire, "alert", "Boil water notice", next_door(home)).await;
    c.n.push_idle().await;
    let got = svc.take();
    assert_eq!(got.len(), 1, "delivered to the checked address");
    assert_eq!(phone.decrypt(&got[0].body)["post_id"], id);
    assert_eq!(
        dns.lookups("push.local.test"),
        2,
        "the check and the connection share one lookup"
    );
    dns.set("push.local.test", &[ip("10.0.0.1")]);
    let d = c.n.notify_new_post(id).await;
    assert!(
        matches!(&d[..], [porchlight_neighborhood::push::Delivery { outcome: Outcome::Failed { reason, .. }, .. }] if reason.contains("10.0.0.1")),
        "{d:?}"
    );
    assert!(svc.take().is_empty());
}

/// Issue 14 item 12: an endpoint stays with the account that subscribed
/// it; another account gets 409 (API and page) and the row is not moved.
async fn an_endpoint_never_moves_to_another_account(c: Ctx) {
    let (origin, svc) = service(&c).await;
    let home = home();
    let (_, fire) = c.user("fire", Role::Agency, Some(home)).await;
    let (ana, at) = c.user("ana", Role::Neighbor, Some(home)).await;
    let (bo, bt) = c.user("bobo", Role::Neighbor, Some(home)).await;
    set_categories(&c, &bt, &[]).await;
    let phone = subscribe(&c, &at, &origin, "ana-phone").await;
    // bo replays ana's endpoint, with her keys or his own: refused.
    let mine = Browser::new(&origin, "ana-phone");
    for body in [phone.subscription(), mine.subscription()] {
        let r = c
            .req("POST", "/api/v1/push/subscriptions", Some(&bt), body)
            .await;
        assert_eq!(r.status, 409, "{r:?}");
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .contains("another account"),
            "{r:?}"
        );
    }
    let s = mine.subscription();
    let form = [
        ("csrf", porchlight_neighborhood::pages::csrf_for(&bt)),
        ("endpoint", s["endpoint"].as_str().unwrap().to_string()),
        ("p256dh", s["keys"]["p256dh"].as_str().unwrap().to_string()),
        ("auth", s["keys"]["auth"].as_str().unwrap().to_string()),
    ];
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter())
        .finish();
    let r = c
        .page(
            "POST",
            "/push/subscribe",
            &bt,
            Some((
                "application/x-www-form-urlencoded".into(),
                body.into_bytes(),
            )),
        )
        .await;
    assert_eq!(r.status, 409, "the page refuses it too: {r:?}");
    assert_eq!(
        (
            c.n.push_subscription_count(ana).await.unwrap(),
            c.n.push_subscription_count(bo).await.unwrap()
        ),
        (1, 0)
    );
    // ana's alert still reaches ana's keys.
    create(&c, &fire, "alert", "Road closed", next_door(home)).await;
    c.n.push_idle().await;
    let got = svc.take();
    assert_eq!(got.len(), 1);
    assert_eq!(phone.decrypt(&got[0].body)["title"], "Road closed");
}

both!(endpoints_on_this_machine_or_the_lan_are_refused);
both!(a_name_rebound_after_subscribing_is_refused_before_connecting);
both!(the_send_connects_to_the_address_it_checked);
both!(an_endpoint_never_moves_to_another_account);
both!(a_subscriber_in_range_decrypts_the_post_and_no_one_else_gets_it);
both!(agency_alerts_arrive_with_default_settings);
both!(hidden_posts_and_muted_or_suspended_authors_do_not_notify);
both!(expired_subscriptions_are_removed_and_failures_counted);
both!(creating_a_post_does_not_wait_for_the_push_service);
both!(subscriptions_are_validated_and_owned);
