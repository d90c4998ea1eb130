//! Web Push endpoints and the notifications settings in-process: real
//! router, store, vault and notifier in a temporary folder, browser-style
//! cookie sessions (so the CSRF guard applies), and a local push service
//! (axum on 127.0.0.1:0) that records what it receives.

#[allow(dead_code)]
mod support;

use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use porchlight_store::Role;
use rand::RngCore;
use serde_json::{json, Value};
use support::{Browser, Cookies, Hub};
use web_push_native::p256;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;

/// A hub whose requests come from browsers, with Web Push when `push`.
async fn hub_with(push: bool) -> Hub<Cookies> {
    let b = Hub::builder().browser_sessions();
    let b = if push { b.with_notifier() } else { b };
    b.build().await
}

/// A browser's `PushSubscription.toJSON()` with a fresh test key pair.
fn subscription(endpoint: &str) -> Value {
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let mut auth = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut auth);
    json!({
        "endpoint": endpoint,
        "expirationTime": null,
        "keys": {
            "p256dh": URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes()),
            "auth": URL_SAFE_NO_PAD.encode(auth),
        },
    })
}

/// A push service that records the names pushed to and answers 201.
async fn push_service() -> (String, Arc<Mutex<Vec<String>>>) {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = log.clone();
    let app = Router::new().route(
        "/push/{name}",
        post(move |Path(name): Path<String>| {
            let l = l.clone();
            async move {
                l.lock().unwrap().push(name);
                StatusCode::CREATED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (origin, log)
}

#[tokio::test]
async fn subscribe_and_unsubscribe_need_the_csrf_token() {
    let h = hub_with(true).await;
    let mia = h.browser("mia", Role::Member).await;
    let mia_id = h.user_id("mia").await;
    let store = h.vault.store();

    let key = h.call(&mia, "GET", "/api/v1/push/key", None, false).await;
    assert_eq!(key.status, StatusCode::OK, "{}", key.body);
    assert_eq!(
        key.json()["public_key"],
        h.notifier.as_ref().unwrap().public_key_b64()
    );

    let sub = subscription("https://push.example.net/wpush/mia-phone");
    let r = h
        .call(
            &mia,
            "POST",
            "/api/v1/push/subscriptions",
            Some(sub.clone()),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token: {}", r.body);
    let wrong = Browser {
        cookie: mia.cookie.clone(),
        csrf: "not-the-token".into(),
    };
    let r = h
        .call(
            &wrong,
            "POST",
            "/api/v1/push/subscriptions",
            Some(sub.clone()),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "wrong CSRF token");
    assert!(store
        .push_subscriptions_of(mia_id)
        .await
        .unwrap()
        .is_empty());

    let r = h
        .call(
            &mia,
            "POST",
            "/api/v1/push/subscriptions",
            Some(sub.clone()),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let subs = store.push_subscriptions_of(mia_id).await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].endpoint, "https://push.example.net/wpush/mia-phone");
    assert_eq!(subs[0].p256dh, sub["keys"]["p256dh"].as_str().unwrap());

    // Bad subscriptions are refused with the reason.
    let mut bad = subscription("https://push.example.net/wpush/x");
    bad["keys"]["auth"] = json!(URL_SAFE_NO_PAD.encode([7u8; 8]));
    let r = h
        .call(&mia, "POST", "/api/v1/push/subscriptions", Some(bad), true)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["error"].as_str().unwrap().contains("keys.auth"),
        "{}",
        r.body
    );
    let r = h
        .call(
            &mia,
            "POST",
            "/api/v1/push/subscriptions",
            Some(subscription("file:///etc/passwd")),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    let gone = json!({ "endpoint": "https://push.example.net/wpush/mia-phone" });
    let r = h
        .call(
            &mia,
            "DELETE",
            "/api/v1/push/subscriptions",
            Some(gone.clone()),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(store.push_subscriptions_of(mia_id).await.unwrap().len(), 1);
    // Someone else cannot remove it.
    let ola = h.browser("ola", Role::Owner).await;
    let r = h
        .call(
            &ola,
            "DELETE",
            "/api/v1/push/subscriptions",
            Some(gone.clone()),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .call(
            &mia,
            "DELETE",
            "/api/v1/push/subscriptions",
            Some(gone.clone()),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(store
        .push_subscriptions_of(mia_id)
        .await
        .unwrap()
        .is_empty());
    let r = h
        .call(
            &mia,
            "DELETE",
            "/api/v1/push/subscriptions",
            Some(gone),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rules_round_trip_with_checks_and_csrf() {
    let h = hub_with(true).await;
    let mia = h.browser("mia", Role::Member).await;
    let mia_id = h.user_id("mia").await;
    let front = h.camera("front").await;

    let r = h
        .call(&mia, "GET", "/api/v1/notifications/rules", None, false)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({ "cameras": null, "kinds": null, "quiet_hours": null, "alarm_always": true, "alarm_modes": null })
    );

    let rules = json!({
        "cameras": ["front"],
        "kinds": ["Person", "package"],
        "quiet_hours": { "start": "22:30", "end": "07:00" },
        "alarm_always": true,
        "alarm_modes": ["away"],
    });
    let r = h
        .call(
            &mia,
            "PUT",
            "/api/v1/notifications/rules",
            Some(rules.clone()),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
    // A camera mia may not see is refused like one that does not exist.
    let r = h
        .call(
            &mia,
            "PUT",
            "/api/v1/notifications/rules",
            Some(rules.clone()),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("no camera `front` you may see"),
        "{}",
        r.body
    );

    h.vault
        .store()
        .grant_camera(front, mia_id, true)
        .await
        .unwrap();
    let r = h
        .call(
            &mia,
            "PUT",
            "/api/v1/notifications/rules",
            Some(rules),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let want = json!({
        "cameras": ["front"],
        "kinds": ["person", "package"],
        "quiet_hours": { "start": "22:30", "end": "07:00" },
        "alarm_always": true,
        "alarm_modes": ["away"],
    });
    assert_eq!(r.json(), want);
    let r = h
        .call(&mia, "GET", "/api/v1/notifications/rules", None, false)
        .await;
    assert_eq!(r.json(), want);
    let stored = h.vault.store().notification_rules(mia_id).await.unwrap();
    assert_eq!(stored.cameras, Some(vec![front]));
    assert_eq!(stored.quiet_hours.unwrap().start_min, 22 * 60 + 30);

    for (bad, why) in [
        (
            json!({ "quiet_hours": { "start": "25:00", "end": "07:00" } }),
            "25:00",
        ),
        (
            json!({ "quiet_hours": { "start": "07:00", "end": "07:00" } }),
            "different",
        ),
        (json!({ "alarm_modes": ["vacation"] }), "vacation"),
        (json!({ "kinds": ["per son"] }), "per son"),
    ] {
        let r = h
            .call(&mia, "PUT", "/api/v1/notifications/rules", Some(bad), true)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains(why), "{why}: {}", r.body);
    }
    let r = h
        .call(
            &mia,
            "PUT",
            "/api/v1/notifications/rules",
            Some(json!({ "colour": "red" })),
            true,
        )
        .await;
    assert!(r.status.is_client_error(), "unknown fields are refused");
    // The refused rules changed nothing.
    let r = h
        .call(&mia, "GET", "/api/v1/notifications/rules", None, false)
        .await;
    assert_eq!(r.json(), want);
}

#[tokio::test]
async fn a_test_push_reaches_only_the_callers_devices() {
    let h = hub_with(true).await;
    let (origin, log) = push_service().await;
    let mia = h.browser("mia", Role::Member).await;
    let ola = h.browser("ola", Role::Owner).await;
    for (b, name) in [(&mia, "mia-phone"), (&ola, "ola-laptop")] {
        let r = h
            .call(
                b,
                "POST",
                "/api/v1/push/subscriptions",
                Some(subscription(&format!("{origin}/push/{name}"))),
                true,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let r = h.call(&mia, "POST", "/api/v1/push/test", None, false).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
    assert!(log.lock().unwrap().is_empty());
    let r = h.call(&mia, "POST", "/api/v1/push/test", None, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["sent"], 1);
    assert_eq!(r.json()["delivered"], 1);
    assert_eq!(r.json()["deliveries"][0]["outcome"], "delivered");
    assert_eq!(*log.lock().unwrap(), ["mia-phone"]);
}

#[tokio::test]
async fn without_web_push_the_push_endpoints_say_so() {
    let h = hub_with(false).await;
    let ola = h.browser("ola", Role::Owner).await;
    let r = h.call(&ola, "GET", "/api/v1/push/key", None, false).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.json()["error"].as_str().unwrap().contains("not set up"));
    let r = h
        .call(
            &ola,
            "POST",
            "/api/v1/push/subscriptions",
            Some(subscription("https://push.example.net/x")),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    // Rules still work.
    let r = h
        .call(&ola, "GET", "/api/v1/notifications/rules", None, false)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let page = h.call(&ola, "GET", "/settings", None, false).await;
    assert!(
        page.body.contains("Web Push is not set up"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("/static/js/push.js"));
}

#[tokio::test]
async fn the_settings_form_saves_rules_without_javascript() {
    let h = hub_with(true).await;
    let ola = h.browser("ola", Role::Owner).await;
    let ola_id = h.user_id("ola").await;
    h.camera("front").await;
    let page = h.call(&ola, "GET", "/settings", None, false).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"id="notifications""#));
    assert!(page.body.contains(r#"action="/settings/notifications""#));
    assert!(page.body.contains(r#"src="/static/js/push.js""#));
    let js = h.call(&ola, "GET", "/static/js/push.js", None, false).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.body.contains("pushManager.subscribe"));

    let fields = [
        ("back", "/settings"),
        ("cameras", "all"),
        ("kinds", "some"),
        ("kind", "person"),
        ("kind", "doorbell"),
        ("quiet", "on"),
        ("quiet_start", "23:00"),
        ("quiet_end", "06:30"),
        ("mode", "home"),
        ("mode", "away"),
    ];
    let r = h.form(&ola, "/settings/notifications", &fields).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF field");
    let mut with_csrf = fields.to_vec();
    with_csrf.push(("csrf", &ola.csrf));
    let r = h.form(&ola, "/settings/notifications", &with_csrf).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        r.headers[header::LOCATION],
        "/settings?saved=notifications#notifications"
    );
    let stored = h.vault.store().notification_rules(ola_id).await.unwrap();
    assert_eq!(stored.cameras, None);
    assert_eq!(
        stored.kinds,
        Some(vec!["person".to_string(), "doorbell".to_string()])
    );
    let q = stored.quiet_hours.unwrap();
    assert_eq!((q.start_min, q.end_min), (23 * 60, 6 * 60 + 30));
    assert!(!stored.alarm_always, "the box was not ticked");
    assert_eq!(
        stored.alarm_modes,
        Some(vec!["home".to_string(), "away".to_string()])
    );
    let page = h
        .call(&ola, "GET", "/settings?saved=notifications", None, false)
        .await;
    assert!(page.body.contains("rules-saved"));
    assert!(page.body.contains(r#"value="23:00""#));

    // Members have no settings index but do have their notifications page.
    let mia = h.browser("mia", Role::Member).await;
    assert_eq!(
        h.call(&mia, "GET", "/settings", None, false).await.status,
        StatusCode::FORBIDDEN
    );
    let page = h
        .call(&mia, "GET", "/settings/notifications", None, false)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"id="notifications""#));
    assert!(
        !page.body.contains(r#"value="front""#),
        "mia may not see `front`"
    );
    let r = h
        .form(
            &mia,
            "/settings/notifications",
            &[
                ("csrf", &mia.csrf),
                ("back", "/settings"),
                ("quiet", "on"),
                ("quiet_start", "nonsense"),
                ("quiet_end", "06:00"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("nonsense"), "{}", r.body);
}

/// Issue 14 item 12 through the API: an endpoint on this machine's network
/// is refused with the reason (400), and an endpoint another account
/// subscribed stays theirs (409).
#[tokio::test]
async fn lan_endpoints_are_refused_and_an_endpoint_never_changes_hands() {
    let h = hub_with(true).await;
    let mia = h.browser("mia", Role::Member).await;
    let mia_id = h.user_id("mia").await;
    let olive = h.browser("olive", Role::Owner).await;
    let olive_id = h.user_id("olive").await;
    let store = h.vault.store();
    for endpoint in [
        "https://10.0.0.2/wpush/x",
        "https://192.168.1.1:8443/admin",
        "https://169.254.169.254/latest/meta-data",
        "https://[fe80::1]/wpush/x",
        "http://192.168.1.1/admin",
        "https://unknown.example.net/wpush/x",
    ] {
        let r = h
            .call(
                &mia,
                "POST",
                "/api/v1/push/subscriptions",
                Some(subscription(endpoint)),
                true,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{endpoint}: {}", r.body);
        assert!(
            r.json()["error"]
                .as_str()
                .is_some_and(|e| e.contains("endpoint")),
            "{}",
            r.body
        );
    }
    assert!(store
        .push_subscriptions_of(mia_id)
        .await
        .unwrap()
        .is_empty());

    let shared = subscription("https://push.example.net/wpush/hall-tablet");
    let r = h
        .call(
            &mia,
            "POST",
            "/api/v1/push/subscriptions",
            Some(shared.clone()),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = h
        .call(
            &olive,
            "POST",
            "/api/v1/push/subscriptions",
            Some(shared.clone()),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("another account"),
        "{}",
        r.body
    );
    assert_eq!(
        store.push_subscriptions_of(mia_id).await.unwrap().len(),
        1,
        "still mia's"
    );
    assert!(store
        .push_subscriptions_of(olive_id)
        .await
        .unwrap()
        .is_empty());
    // mia subscribing it again is fine.
    let r = h
        .call(
            &mia,
            "POST",
            "/api/v1/push/subscriptions",
            Some(shared),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}
