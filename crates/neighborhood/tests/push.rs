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
use common::{cell_at, home, Ctx};
use porchlight_neighborhood::accounts::Role;
use porchlight_neighborhood::moderation::{ContentAction, UserAction};
use porchlight_neighborhood::posts::Category;
use porchlight_neighborhood::push::{Outcome, PushOptions};
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
        allow_http_endpoints: true,
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
    let id = create(&c, &author, "lost_found_pet", title, home).await;
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
    create(&c, &author, "wildlife", "Heron at the pond", home).await;
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
    let id = create(&c, &fire, "alert", "Boil water notice", home).await;
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
        create(&c, &fire, "alert", "Road closed", home),
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
    // Plain http endpoints are refused unless allowed (tests only).
    c.n.set_push_options(PushOptions {
        contact: CONTACT.into(),
        allow_http_endpoints: false,
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
        allow_http_endpoints: true,
    })
    .unwrap();
    assert!(c
        .n
        .set_push_options(PushOptions {
            contact: "root@localhost".into(),
            allow_http_endpoints: true
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

both!(a_subscriber_in_range_decrypts_the_post_and_no_one_else_gets_it);
both!(agency_alerts_arrive_with_default_settings);
both!(hidden_posts_and_muted_or_suspended_authors_do_not_notify);
both!(expired_subscriptions_are_removed_and_failures_counted);
both!(creating_a_post_does_not_wait_for_the_push_service);
both!(subscriptions_are_validated_and_owned);
