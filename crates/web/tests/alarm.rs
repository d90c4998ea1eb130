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
                modes: None,
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

/// The ticked boxes of camera `name`'s per-mode table on the alarm page,
/// as `(mode, [record, detect, notify])`, and whether they are editable.
fn modes_table(page: &str, name: &str) -> (Vec<(String, [bool; 3])>, bool) {
    let start = page
        .find(&format!("data-testid=\"camera-modes-{name}\""))
        .unwrap_or_else(|| panic!("no modes table for {name} in {page}"));
    let table = &page[start..start + page[start..].find("</table>").unwrap()];
    let input = regex::Regex::new(r#"<input type="checkbox" name="(\w+)\.(\w+)"[^>]*>"#).unwrap();
    let mut out: Vec<(String, [bool; 3])> = Vec::new();
    let mut editable = true;
    for c in input.captures_iter(table) {
        let (mode, flag, tag) = (&c[1], &c[2], &c[0]);
        if tag.contains(" disabled") {
            editable = false;
        }
        if out.last().map(|(m, _)| m.as_str()) != Some(mode) {
            out.push((mode.to_owned(), [false; 3]));
        }
        let i = ["record", "detect", "notify"]
            .iter()
            .position(|f| *f == flag)
            .unwrap();
        out.last_mut().unwrap().1[i] = tag.contains(" checked");
    }
    (out, editable)
}

fn flags(record: bool, detect: bool, notify: bool) -> porchlight_store::camera_modes::ModeFlags {
    porchlight_store::camera_modes::ModeFlags {
        record,
        detect,
        notify,
    }
}

#[tokio::test]
async fn the_modes_form_shows_saves_and_audits_for_owners_only() {
    let hub = hub_with(true, 0).await;
    let owner = hub.browser("olive", Role::Owner).await;
    let member = hub.browser("max", Role::Member).await;
    let hall = hub.camera("hall").await;
    let porch = hub.camera("porch").await;
    hub.store
        .grant_camera(porch, hub.user_id("max").await, true)
        .await
        .unwrap();
    // Indoor camera saved earlier: nothing while home.
    hub.store
        .set_camera_mode(hall, "home", flags(false, false, false))
        .await
        .unwrap();

    // The form shows the current flags of every camera in every mode.
    let page = hub.call(&owner, "GET", "/alarm", None, false).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("<script>"), "no inline script");
    let (hall_rows, editable) = modes_table(&page.body, "hall");
    assert!(editable);
    assert_eq!(
        hall_rows,
        vec![
            ("disarmed".to_owned(), [true, true, true]),
            ("home".to_owned(), [false, false, false]),
            ("away".to_owned(), [true, true, true]),
        ]
    );
    assert_eq!(modes_table(&page.body, "porch").0.len(), 3);
    assert!(page.body.contains("action=\"/alarm/cameras/hall/modes\""));

    // Posted: disarmed records only, home detects and notifies, away
    // keeps everything. A box not sent is off.
    let ticked = [
        ("csrf", owner.csrf.as_str()),
        ("disarmed.record", "1"),
        ("home.detect", "1"),
        ("home.notify", "1"),
        ("away.record", "1"),
        ("away.detect", "1"),
        ("away.notify", "1"),
    ];
    let r = hub.form(&owner, "/alarm/cameras/hall/modes", &ticked).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.location().starts_with("/alarm?msg="), "{}", r.location());
    let p = hub.store.camera_policy(hall).await.unwrap();
    assert_eq!(
        (p.mode, p.record, p.detect, p.notify),
        ("disarmed", true, false, false)
    );
    assert_eq!(
        hub.store.camera_modes(hall).await.unwrap(),
        vec![
            ("disarmed", flags(true, false, false)),
            ("home", flags(false, true, true)),
            ("away", flags(true, true, true)),
        ]
    );
    // The other camera is untouched.
    assert!(hub.store.camera_policy(porch).await.unwrap().detect);
    // Back on the page: the confirmation and the new flags.
    let page = hub.call(&owner, "GET", r.location(), None, false).await;
    assert!(page.body.contains("Saved what hall does"), "{}", page.body);
    assert_eq!(
        modes_table(&page.body, "hall").0[1],
        ("home".to_owned(), [false, true, true])
    );
    // The policy follows the mode the alarm is in.
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
    let p = hub.store.camera_policy(hall).await.unwrap();
    assert_eq!(
        (p.mode, p.record, p.detect, p.notify),
        ("home", false, true, true)
    );
    hub.call(&owner, "POST", "/api/v1/alarm/disarm", None, true)
        .await;
    // Audited by the same path as the API: one camera.modes entry by olive.
    let audit = hub.audit_log().await;
    let e = audit
        .iter()
        .find(|e| e.action == "camera.modes")
        .expect("camera.modes audited");
    assert_eq!(e.actor, "olive");
    assert_eq!(
        audit.iter().filter(|e| e.action == "camera.modes").count(),
        1
    );

    let before = hub.store.camera_modes(hall).await.unwrap();
    let none = [
        ("disarmed.record", "1"),
        ("disarmed.detect", "1"),
        ("disarmed.notify", "1"),
    ];

    // Without the CSRF token: refused, nothing changes.
    let r = hub.form(&owner, "/alarm/cameras/hall/modes", &none).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let mut wrong = vec![("csrf", "not-the-token")];
    wrong.extend(none);
    let r = hub.form(&owner, "/alarm/cameras/hall/modes", &wrong).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(hub.store.camera_modes(hall).await.unwrap(), before);

    // A field that is no mode's flag: refused, nothing changes.
    let r = hub
        .form(
            &owner,
            "/alarm/cameras/hall/modes",
            &[("csrf", owner.csrf.as_str()), ("night.record", "1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        r.location().starts_with("/alarm?error="),
        "{}",
        r.location()
    );
    assert_eq!(hub.store.camera_modes(hall).await.unwrap(), before);

    // A member sees the flags of the cameras granted to them, read-only,
    // and cannot change them, even with a valid token.
    let page = hub.call(&member, "GET", "/alarm", None, false).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (rows, editable) = modes_table(&page.body, "porch");
    assert_eq!(rows.len(), 3);
    assert!(!editable, "read-only for members");
    assert!(!page.body.contains("camera-modes-hall"), "not granted");
    assert!(!page.body.contains("/modes\""), "no form for members");
    for cam in ["porch", "hall"] {
        let mut fields = vec![("csrf", member.csrf.as_str())];
        fields.extend(none);
        let r = hub
            .form(&member, &format!("/alarm/cameras/{cam}/modes"), &fields)
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert!(
            r.location().starts_with("/alarm?error="),
            "{}",
            r.location()
        );
    }
    assert_eq!(hub.store.camera_modes(hall).await.unwrap(), before);
    assert_eq!(
        hub.store.camera_modes(porch).await.unwrap(),
        vec![
            ("disarmed", flags(true, true, true)),
            ("home", flags(true, true, true)),
            ("away", flags(true, true, true)),
        ]
    );
    assert!(!hub
        .audit_actions()
        .await
        .contains(&("max".into(), "camera.modes".into())));
    hub.alarm.unwrap().shutdown().await;
}

#[tokio::test]
async fn sensor_modes_show_in_the_api_and_on_the_page() {
    let hub = hub_with(true, 60_000).await;
    let member = hub.browser("mia", Role::Member).await;
    for (name, kind, modes) in [
        ("front_door", "contact", None),
        ("hall", "motion", Some("home,away")),
        ("landing", "motion", None),
        ("garage", "contact", Some("none")),
        ("bell", "doorbell", None),
    ] {
        hub.store
            .add_sensor(
                &NewSensor {
                    name: name.into(),
                    kind: kind.into(),
                    topic: format!("zigbee2mqtt/{name}"),
                    camera_id: None,
                    modes: modes.map(str::to_owned),
                },
                jiff::Timestamp::now(),
            )
            .await
            .unwrap();
    }
    let v = hub
        .call(&member, "GET", "/api/v1/alarm", None, false)
        .await
        .json();
    let by = |n: &str| {
        v["sensors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by("front_door")["modes"], json!(["home", "away"]), "{v:#}");
    assert_eq!(by("front_door")["modes_chosen"], false);
    assert_eq!(by("hall")["modes"], json!(["home", "away"]));
    assert_eq!(by("hall")["modes_chosen"], true);
    assert_eq!(by("landing")["modes"], json!(["away"]));
    assert_eq!(by("garage")["modes"], json!([]));
    assert_eq!(by("garage")["modes_chosen"], true);
    assert_eq!(by("bell")["modes"], json!([]));
    assert_eq!(by("bell")["modes_chosen"], false);

    let page = hub.call(&member, "GET", "/alarm", None, false).await;
    assert_eq!(page.status, StatusCode::OK);
    let cell = |n: &str| {
        let at = page
            .body
            .find(&format!("data-testid=\"sensor-modes-{n}\""))
            .unwrap_or_else(|| panic!("no modes cell for {n}: {}", page.body));
        let rest = &page.body[at..];
        rest[rest.find('>').unwrap() + 1..rest.find("</td>").unwrap()].to_owned()
    };
    assert_eq!(cell("front_door"), "armed home or away");
    assert!(cell("hall").starts_with("armed home or away") && cell("hall").contains("(chosen)"));
    assert_eq!(cell("landing"), "armed away");
    assert!(cell("garage").starts_with("never") && cell("garage").contains("(chosen)"));
    assert_eq!(cell("bell"), "never");
    // alarm.js redraws these parts in place (never a whole-page reload).
    for part in ["status", "broker", "sensors", "cameras"] {
        assert!(
            page.body.contains(&format!("data-part=\"{part}\"")),
            "part {part} marked"
        );
    }
    hub.alarm.unwrap().shutdown().await;
}
