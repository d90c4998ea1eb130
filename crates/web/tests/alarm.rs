//! The alarm's API and page in-process: real router, store, vault and a
//! running alarm (no broker configured) in a temporary folder, with
//! browser-style cookie sessions so the CSRF guard applies.

#[allow(dead_code)]
mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use porchlight_store::{NewSensor, Role, SensorTelemetry};
use serde_json::json;
use support::{Cookies, Hub};

/// A hub whose requests come from browsers, with a running alarm (exit
/// delay `exit_ms`) when `alarm`.
async fn hub_with(alarm: bool, exit_ms: u64) -> Hub<Cookies> {
    let b = Hub::builder().browser_sessions();
    let b = if alarm { b.with_alarm(exit_ms) } else { b };
    b.build().await
}

impl Hub<Cookies> {
    async fn audit_actions(&self) -> Vec<(String, String)> {
        self.audit_log()
            .await
            .into_iter()
            .map(|e| (e.actor, e.action))
            .collect()
    }
}

#[tokio::test]
async fn status_arm_disarm_with_csrf_and_audit() {
    let hub = hub_with(true, 60_000).await;
    let owner = hub.browser("olive", Role::Owner).await;
    hub.store
        .add_sensor(
            &NewSensor {
                name: "kitchen_window".into(),
                kind: "contact".into(),
                topic: "zigbee2mqtt/kitchen_window".into(),
                camera_id: None,
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    let id = hub
        .store
        .sensor_by_name("kitchen_window")
        .await
        .unwrap()
        .unwrap()
        .id;
    hub.store
        .put_sensor_telemetry(
            id,
            &SensorTelemetry {
                active: Some(true),
                battery: Some(81.0),
                linkquality: Some(120),
                available: Some(true),
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();

    let st = hub.call(&owner, "GET", "/api/v1/alarm", None, false).await;
    assert_eq!(st.status, StatusCode::OK, "{}", st.body);
    let v = st.json();
    assert_eq!(v["state"], "disarmed");
    assert_eq!(v["mqtt"]["enabled"], false);
    assert_eq!(v["mqtt"]["broker_away"], false);
    let s = &v["sensors"][0];
    assert_eq!(s["name"], "kitchen_window");
    assert_eq!(s["state"], "open");
    assert_eq!(s["battery"], 81.0);
    assert_eq!(s["linkquality"], 120);
    assert!(s["last_seen"].is_string());

    // Without the CSRF token: refused, nothing changes.
    let r = hub
        .call(
            &owner,
            "POST",
            "/api/v1/alarm/arm",
            Some(json!({"mode": "away"})),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(hub.alarm.as_ref().unwrap().state(), "disarmed");

    // A wrong mode is a 400 naming it.
    let r = hub
        .call(
            &owner,
            "POST",
            "/api/v1/alarm/arm",
            Some(json!({"mode": "night"})),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("night"), "{}", r.body);

    // The open window waits for the sensors to load (poll): the hub reads
    // the store each poll; wait until the alarm knows it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = hub
        .call(
            &owner,
            "POST",
            "/api/v1/alarm/arm",
            Some(json!({"mode": "away"})),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let out = r.json();
    assert_eq!(out["state"], "arming");
    assert_eq!(out["bypassed"], json!(["kitchen_window"]));
    assert!(out["warning"].as_str().unwrap().contains("kitchen_window"));

    let v = hub
        .call(&owner, "GET", "/api/v1/alarm", None, false)
        .await
        .json();
    assert_eq!(v["state"], "arming");
    assert_eq!(v["mode"], "away");
    let left = v["exit_delay_left_ms"]
        .as_u64()
        .expect("exit delay counting down");
    assert!(left > 0 && left <= 60_000, "{left}");
    assert_eq!(v["sensors"][0]["bypassed"], true);

    // Switching mode while arming is allowed (the machine's rule).
    let r = hub
        .call(
            &owner,
            "POST",
            "/api/v1/alarm/arm",
            Some(json!({"mode": "home"})),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = hub
        .call(&owner, "GET", "/api/v1/alarm", None, false)
        .await
        .json();
    assert_eq!(v["mode"], "home");

    let r = hub
        .call(&owner, "POST", "/api/v1/alarm/disarm", None, true)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["state"], "disarmed");

    let audit = hub.audit_actions().await;
    assert!(
        audit.contains(&("olive".into(), "alarm.arm".into())),
        "{audit:?}"
    );
    assert!(
        audit.contains(&("olive".into(), "alarm.disarm".into())),
        "{audit:?}"
    );
    hub.alarm.unwrap().shutdown().await;
}

#[tokio::test]
async fn a_member_can_arm_and_disarm_anonymous_cannot() {
    let hub = hub_with(true, 0).await;
    let member = hub.browser("max", Role::Member).await;
    let r = hub
        .call(
            &member,
            "POST",
            "/api/v1/alarm/arm",
            Some(json!({"mode": "home"})),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // No exit delay: armed at once.
    assert_eq!(r.json()["state"], "armed_home");
    let r = hub
        .call(&member, "POST", "/api/v1/alarm/disarm", None, true)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(hub
        .audit_actions()
        .await
        .contains(&("max".into(), "alarm.disarm".into())));

    for (method, path) in [
        ("GET", "/api/v1/alarm"),
        ("POST", "/api/v1/alarm/arm"),
        ("POST", "/api/v1/alarm/disarm"),
    ] {
        let mut req = Request::builder().method(method).uri(path);
        if method == "POST" {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let body = if path.ends_with("arm") && !path.ends_with("disarm") {
            Body::from(json!({"mode": "away"}).to_string())
        } else {
            Body::empty()
        };
        let r = hub.send(req.body(body).unwrap()).await;
        assert!(
            r.status == StatusCode::UNAUTHORIZED || r.status == StatusCode::FORBIDDEN,
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
        if method == "GET" {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
    }
    assert_eq!(hub.alarm.as_ref().unwrap().state(), "disarmed");
    hub.alarm.unwrap().shutdown().await;
}

#[tokio::test]
async fn the_page_works_without_javascript_and_without_the_alarm() {
    let hub = hub_with(true, 60_000).await;
    let owner = hub.browser("olive", Role::Owner).await;
    let page = hub.call(&owner, "GET", "/alarm", None, false).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("data-testid=\"alarm-status\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("Arm away"));
    assert!(page.body.contains("/static/js/alarm.js"));
    assert!(!page.body.contains("<script>"), "no inline script");
    assert!(page.body.contains("href=\"/alarm\""), "linked from the nav");

    // The form post, CSRF in the form.
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("csrf", owner.csrf.as_str()), ("mode", "home")])
        .finish();
    let r = hub
        .send(
            Request::post("/alarm/arm")
                .header(header::HOST, "hub.local")
                .header(header::COOKIE, &owner.cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(hub.alarm.as_ref().unwrap().state(), "arming");
    let page = hub.call(&owner, "GET", "/alarm", None, false).await;
    assert!(page.body.contains("Leave now"), "countdown shown");
    let home = hub.call(&owner, "GET", "/", None, false).await;
    assert!(home.body.contains("arming"), "home tile shows the state");
    hub.alarm.unwrap().shutdown().await;

    // A process without the alarm says so.
    let hub = hub_with(false, 0).await;
    let owner = hub.browser("olive", Role::Owner).await;
    let r = hub.call(&owner, "GET", "/api/v1/alarm", None, false).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.json()["error"].as_str().unwrap().contains("does not run"));
    let page = hub.call(&owner, "GET", "/alarm", None, false).await;
    assert!(page.body.contains("alarm-unavailable"));
}

#[tokio::test]
async fn privacy_and_modes_per_camera_are_checked_audited_and_enforced() {
    let hub = hub_with(true, 0).await;
    let owner = hub.browser("olive", Role::Owner).await;
    let member = hub.browser("max", Role::Member).await;
    let cam = hub
        .store
        .create_camera(
            &porchlight_store::NewCamera {
                name: "hall".into(),
                main_url: "rtsp://127.0.0.1:9/hall".into(),
                ..Default::default()
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();

    // Defaults: everything on, disarmed.
    let v = hub
        .call(&owner, "GET", "/api/v1/cameras/hall/modes", None, false)
        .await
        .json();
    assert_eq!(v["modes"]["home"]["record"], true);
    assert_eq!(v["policy"]["mode"], "disarmed");
    assert_eq!(v["policy"]["record"], true);

    // Indoor camera: no recording at home. Members may not change modes.
    let body = json!({"home": {"record": false, "detect": true, "notify": false}});
    let r = hub
        .call(
            &member,
            "PUT",
            "/api/v1/cameras/hall/modes",
            Some(body.clone()),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = hub
        .call(
            &owner,
            "PUT",
            "/api/v1/cameras/hall/modes",
            Some(json!({"night": {"record": true, "detect": true, "notify": true}})),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("night"));
    let r = hub
        .call(
            &owner,
            "PUT",
            "/api/v1/cameras/hall/modes",
            Some(body),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["modes"]["home"]["record"], false);

    // Arming home makes the policy say "do not record" (what the recorder
    // reads every housekeeping tick).
    let r = hub
        .call(
            &owner,
            "POST",
            "/api/v1/alarm/arm",
            Some(json!({"mode": "home"})),
            true,
        )
        .await;
    assert_eq!(r.json()["state"], "armed_home");
    let p = hub.store.camera_policy(cam.id).await.unwrap();
    assert_eq!((p.mode, p.record, p.notify), ("home", false, false));
    hub.call(&owner, "POST", "/api/v1/alarm/disarm", None, true)
        .await;
    assert!(hub.store.camera_policy(cam.id).await.unwrap().record);

    // Privacy: CSRF needed; a member without a grant cannot; the owner can.
    let r = hub
        .call(
            &owner,
            "PUT",
            "/api/v1/cameras/hall/privacy",
            Some(json!({"on": true})),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = hub
        .call(
            &member,
            "PUT",
            "/api/v1/cameras/hall/privacy",
            Some(json!({"on": true})),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = hub
        .call(
            &owner,
            "PUT",
            "/api/v1/cameras/hall/privacy",
            Some(json!({"on": true})),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let p = hub.store.camera_policy(cam.id).await.unwrap();
    assert!(p.privacy && !p.record && !p.detect && !p.notify);
    // Stills refuse with a clear message.
    let r = hub
        .call(&owner, "GET", "/api/v1/cameras/hall/still.jpg", None, false)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("privacy mode"), "{}", r.body);
    // The alarm page shows it with a toggle.
    let page = hub.call(&owner, "GET", "/alarm", None, false).await;
    assert!(page.body.contains("privacy mode: paused"), "{}", page.body);
    assert!(page.body.contains("/alarm/cameras/hall/privacy"));

    let audit = hub.audit_actions().await;
    assert!(
        audit.contains(&("olive".into(), "camera.privacy".into())),
        "{audit:?}"
    );
    assert!(
        audit.contains(&("olive".into(), "camera.modes".into())),
        "{audit:?}"
    );
    hub.alarm.unwrap().shutdown().await;
}
