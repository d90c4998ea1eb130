//! The web app's camera, user, grant, event and OpenAPI endpoints, and the
//! pages built on them, in-process: real router, real store and vault in a
//! temporary folder, bearer tokens (the CSRF guard lets those through, so
//! the same client posts the settings forms too).

#[allow(dead_code)]
mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use porchlight_store::Role;
use serde_json::{json, Value};
use support::{closed_port, hub, Hub, PW};

impl Hub {
    async fn audit_actions(&self) -> Vec<(String, String, String, Value)> {
        self.audit_log()
            .await
            .into_iter()
            .map(|e| (e.actor, e.action, e.target, e.detail))
            .collect()
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    let doc = h.get("/api/openapi.json", &owner).await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{paths:?}");
    let mut ops: Vec<(String, String)> = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            ops.push((method.clone(), path.clone()));
        }
    }
    // Ending this session goes last.
    ops.sort_by_key(|(m, p)| (p == "/api/v1/sessions/current", m.clone(), p.clone()));
    for (method, path) in ops {
        // Names that do not exist: nothing is changed, and a handler
        // answers 404 with a JSON body where the router would answer 404
        // with none.
        let uri = path
            .replace("{name}", "no-such-camera")
            .replace("{user}", "nobody")
            .replace("{id}", "999999");
        let body = matches!(method.as_str(), "post" | "put" | "patch").then(|| json!({}));
        let r = h.call(&method.to_uppercase(), &uri, &owner, body).await;
        assert_ne!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not routed"
        );
        assert!(
            !(r.status == StatusCode::NOT_FOUND && r.body.is_empty()),
            "{method} {path} is documented but not routed"
        );
    }
}

#[tokio::test]
async fn test_connection_explains_what_is_wrong() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    let port = closed_port();
    let r = h
        .call(
            "POST",
            "/api/v1/cameras/test",
            &owner,
            Some(json!({ "url": format!("rtsp://127.0.0.1:{port}/stream1") })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["ok"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("nothing listens at that address and port"),
        "{v}"
    );
    let r = h
        .call(
            "POST",
            "/api/v1/cameras/test",
            &owner,
            Some(json!({ "url": "http://192.168.1.20/x" })),
        )
        .await;
    assert_eq!(r.json()["ok"], false);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("is not an RTSP URL"));
    let r = h
        .call(
            "POST",
            "/api/v1/cameras/test",
            &owner,
            Some(json!({ "url": "rtsp://admin:secret@192.168.1.20/x" })),
        )
        .await;
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("not in the URL"));
    let r = h
        .call("POST", "/api/v1/cameras/test", &owner, Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A saved camera is tested with its own address.
    h.camera("porch").await;
    let r = h
        .call(
            "POST",
            "/api/v1/cameras/test",
            &owner,
            Some(json!({ "camera": "porch" })),
        )
        .await;
    assert_eq!(r.json()["ok"], false);
    // Members may not make the hub connect anywhere.
    h.camera("front").await;
    let member = h.user("sam", Role::Member).await;
    let r = h
        .call(
            "POST",
            "/api/v1/cameras/test",
            &member,
            Some(json!({ "url": "rtsp://127.0.0.1/x" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let audit = h.audit_actions().await;
    assert!(audit
        .iter()
        .any(|(a, act, _, _)| a == "owner" && act == "camera.test"));
}

#[tokio::test]
async fn pause_and_resume_a_camera_and_a_camera_called_test() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    h.camera("front").await;
    let r = h
        .call(
            "PATCH",
            "/api/v1/cameras/front",
            &owner,
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["enabled"], false);
    let one = h.get("/api/v1/cameras/front", &owner).await.json();
    assert_eq!(one["enabled"], false);
    assert_eq!(one["url"], "rtsp://127.0.0.1:9/front");
    assert!(one.get("password").is_none());
    // Unknown fields are refused rather than ignored.
    let r = h
        .call(
            "PATCH",
            "/api/v1/cameras/front",
            &owner,
            Some(json!({ "colour": "red" })),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    h.call(
        "PATCH",
        "/api/v1/cameras/front",
        &owner,
        Some(json!({ "enabled": true })),
    )
    .await;
    let actions: Vec<String> = h
        .audit_actions()
        .await
        .into_iter()
        .map(|(_, a, _, _)| a)
        .collect();
    assert!(actions.contains(&"camera.disable".to_owned()));
    assert!(actions.contains(&"camera.enable".to_owned()));
    // `/api/v1/cameras/test` is also the camera called `test`.
    h.camera("test").await;
    assert_eq!(
        h.get("/api/v1/cameras/test", &owner).await.json()["name"],
        "test"
    );
    let r = h
        .call(
            "PATCH",
            "/api/v1/cameras/test",
            &owner,
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(r.json()["enabled"], false);
    let r = h.call("DELETE", "/api/v1/cameras/test", &owner, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        h.get("/api/v1/cameras/test", &owner).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn users_grants_and_what_members_see() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    h.camera("front").await;
    h.camera("back").await;
    let r = h
        .call(
            "POST",
            "/api/v1/users",
            &owner,
            Some(json!({ "username": "sam", "role": "member", "password": PW })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let code = r.json()["recovery_code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 29, "{code}");
    // Neighborhood roles are not made here; taken names are refused.
    for body in [
        json!({ "username": "nina", "role": "neighbor", "password": PW }),
        json!({ "username": "sam", "role": "member", "password": PW }),
        json!({ "username": "short", "role": "member", "password": "short" }),
    ] {
        let r = h.call("POST", "/api/v1/users", &owner, Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    }
    let sam = h.token("sam").await;
    assert_eq!(h.get("/api/v1/cameras", &sam).await.json(), json!([]));

    let r = h
        .call("PUT", "/api/v1/cameras/front/grants/sam", &owner, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let users = h.get("/api/v1/users", &owner).await.json();
    let s = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "sam")
        .unwrap();
    assert_eq!(s["cameras"], json!(["front"]));
    let o = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "owner")
        .unwrap();
    assert_eq!(o["cameras"], json!(["front", "back"]));

    // The member sees the granted camera, and nothing of the other one.
    let cams = h.get("/api/v1/cameras", &sam).await.json();
    assert_eq!(cams.as_array().unwrap().len(), 1);
    assert_eq!(cams[0]["name"], "front");
    assert!(
        cams[0].get("url").is_none(),
        "members get no camera settings"
    );
    assert_eq!(h.get("/cameras/front", &sam).await.status, StatusCode::OK);
    for path in [
        "/cameras/back",
        "/cameras/back/timeline",
        "/cameras/back/download?from=2027-01-15T08:00&minutes=5",
        "/api/v1/cameras/back",
        "/api/v1/cameras/back/recordings",
        "/api/v1/cameras/back/view.mp4?from=-1m",
        "/api/v1/cameras/back/view.mp4?from=-1m&download=1",
        "/api/v1/cameras/back/still.mp4",
        "/api/v1/events?camera=back",
    ] {
        assert_eq!(
            h.get(path, &sam).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let denied: Vec<String> = h
        .audit_actions()
        .await
        .into_iter()
        .filter(|(a, act, t, _)| a == "sam" && act == "camera.denied" && t == "back")
        .map(|(_, _, _, d)| d["what"].as_str().unwrap_or("").to_owned())
        .collect();
    for what in ["page", "timeline", "download", "details", "still", "events"] {
        assert!(
            denied.contains(&what.to_owned()),
            "refused {what} is audited: {denied:?}"
        );
    }
    // Members manage nothing.
    for (m, p) in [
        ("GET", "/api/v1/users"),
        ("PUT", "/api/v1/cameras/back/grants/sam"),
        ("PATCH", "/api/v1/cameras/front"),
        ("GET", "/settings"),
        ("GET", "/settings/users"),
    ] {
        let body = (m == "PATCH").then(|| json!({ "enabled": false }));
        assert_eq!(
            h.call(m, p, &sam, body).await.status,
            StatusCode::FORBIDDEN,
            "{m} {p}"
        );
    }
    // Grants are for members only; owners cannot lock themselves out.
    let r = h
        .call("PUT", "/api/v1/cameras/front/grants/owner", &owner, None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .call(
            "PATCH",
            "/api/v1/users/owner",
            &owner,
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Taking the grant back works at once.
    let r = h
        .call("DELETE", "/api/v1/cameras/front/grants/sam", &owner, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(h.get("/api/v1/cameras", &sam).await.json(), json!([]));
    assert_eq!(
        h.get("/cameras/front", &sam).await.status,
        StatusCode::FORBIDDEN
    );
    // Disabling ends the member's sessions.
    let r = h
        .call(
            "PATCH",
            "/api/v1/users/sam",
            &owner,
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["disabled"], true);
    assert_eq!(
        h.get("/api/v1/me", &sam).await.status,
        StatusCode::UNAUTHORIZED
    );
    let actions: Vec<(String, String)> = h
        .audit_actions()
        .await
        .into_iter()
        .map(|(_, a, t, _)| (a, t))
        .collect();
    for (a, t) in [
        ("user.create", "sam"),
        ("camera.grant", "front"),
        ("camera.revoke", "front"),
        ("user.disable", "sam"),
    ] {
        assert!(
            actions.contains(&(a.to_owned(), t.to_owned())),
            "{a} {t} audited"
        );
    }
}

#[tokio::test]
async fn events_are_honestly_empty() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    h.camera("front").await;
    let v = h.get("/api/v1/events", &owner).await.json();
    assert_eq!(v["detection"], "not set up");
    assert_eq!(v["events"], json!([]));
    let v = h
        .get("/api/v1/events?camera=front&kind=person&from=-1d", &owner)
        .await;
    assert_eq!(v.status, StatusCode::OK);
    assert_eq!(
        h.get("/api/v1/events?kind=ufo", &owner).await.status,
        StatusCode::BAD_REQUEST
    );
    let page = h.get("/events", &owner).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-testid=\"events-empty\""));
    assert!(page.body.contains("not set up"));
}

#[tokio::test]
async fn settings_forms_add_test_pause_remove_and_manage_users() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    // A bad address: the reason, and the typed values kept.
    let r = h
        .form(
            "/settings/cameras",
            &owner,
            &[
                ("action", "add"),
                ("name", "porch"),
                ("url", "http://192.168.1.20/x"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("is not an RTSP URL"), "{}", r.body);
    assert!(r.body.contains("value=\"http://192.168.1.20/x\""));
    let r = h
        .form(
            "/settings/cameras",
            &owner,
            &[
                ("action", "add"),
                ("name", "porch"),
                ("url", "rtsp://127.0.0.1:9/x"),
                ("retain_days", "many"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("is not a number"));
    // Test connection without JavaScript: the page answers.
    let port = closed_port().to_string();
    let url = format!("rtsp://127.0.0.1:{port}/x");
    let r = h
        .form(
            "/settings/cameras",
            &owner,
            &[("action", "test"), ("name", "porch"), ("url", &url)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .contains("Connection failed: nothing listens at that address and port"),
        "{}",
        r.body
    );
    // Add, pause, resume, remove.
    let r = h
        .form(
            "/settings/cameras",
            &owner,
            &[
                ("action", "add"),
                ("name", "porch"),
                ("url", &url),
                ("retain_days", "14"),
            ],
        )
        .await;
    assert_eq!(
        r.location(),
        "/settings/cameras/porch?added=1",
        "{}",
        r.body
    );
    let cam = h
        .vault
        .store()
        .camera_by_name("porch")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cam.retain_max_age_secs, Some(14 * 86400));
    let page = h.get("/settings/cameras/porch?added=1", &owner).await;
    assert!(page.body.contains("Added."));
    h.form(
        "/settings/cameras/porch/enabled",
        &owner,
        &[("enabled", "0")],
    )
    .await;
    assert!(
        !h.vault
            .store()
            .camera_by_name("porch")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    let page = h.get("/cameras/porch", &owner).await;
    assert!(page.body.contains("Paused (privacy mode)"));
    assert!(
        !page.body.contains("data-live=\"porch\""),
        "no live view while paused"
    );
    let r = h
        .form(
            "/settings/cameras/porch/remove",
            &owner,
            &[("confirm", "nope")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .form(
            "/settings/cameras/porch/remove",
            &owner,
            &[("confirm", "porch")],
        )
        .await;
    assert_eq!(r.location(), "/settings/cameras");
    assert!(h
        .vault
        .store()
        .camera_by_name("porch")
        .await
        .unwrap()
        .is_none());

    // Users: add a member, see the recovery code once, tick cameras.
    h.camera("front").await;
    h.camera("back").await;
    let r = h
        .form(
            "/settings/users",
            &owner,
            &[("username", "sam"), ("role", "member"), ("password", PW)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("data-testid=\"recovery-code\""));
    let r = h
        .form(
            "/settings/users",
            &owner,
            &[("username", "sam"), ("role", "member"), ("password", PW)],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("already an account"));
    let r = h
        .form(
            "/settings/users/sam/grants",
            &owner,
            &[("camera", "front"), ("camera", "back")],
        )
        .await;
    assert_eq!(r.location(), "/settings/users");
    let sam = h.token("sam").await;
    assert_eq!(
        h.get("/api/v1/cameras", &sam)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    h.form("/settings/users/sam/grants", &owner, &[("camera", "back")])
        .await;
    let cams = h.get("/api/v1/cameras", &sam).await.json();
    assert_eq!(cams.as_array().unwrap().len(), 1);
    assert_eq!(cams[0]["name"], "back");
    let page = h.get("/settings/users", &owner).await;
    assert!(page.body.contains("name=\"camera\" value=\"back\" checked"));
    h.form("/settings/users/sam/disabled", &owner, &[("disabled", "1")])
        .await;
    assert_eq!(
        h.get("/api/v1/me", &sam).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn camera_page_timeline_and_downloads() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    h.camera("front").await;
    let page = h.get("/cameras/front", &owner).await;
    assert_eq!(page.status, StatusCode::OK);
    for needle in [
        "id=\"timeline\"",
        "data-zoom=\"day\"",
        "Nothing recorded in this day.",
        "data-live=\"front\"",
        "/static/timeline.js",
        "No events.",
    ] {
        assert!(page.body.contains(needle), "camera page has {needle}");
    }
    // The fragment the script swaps in: an hour, aligned to ten minutes.
    let frag = h
        .get(
            "/cameras/front/timeline?zoom=hour&end=2027-01-15T06:03:00Z",
            &owner,
        )
        .await;
    assert_eq!(frag.status, StatusCode::OK);
    assert!(
        frag.body.starts_with("<section id=\"timeline\""),
        "{}",
        frag.body
    );
    assert!(frag.body.contains("data-zoom=\"hour\""));
    let from = "2027-01-15T05:10:00Z".parse::<jiff::Timestamp>().unwrap();
    assert!(frag
        .body
        .contains(&format!("data-from=\"{}\"", from.as_millisecond())));
    assert!(frag.body.contains("class=\"tl-labels n6\""));
    // The window never runs into the future.
    let frag = h
        .get(
            "/cameras/front/timeline?zoom=day&end=2099-01-01T00:00:00Z",
            &owner,
        )
        .await;
    let to = porchlight_base::clock::parse_instant("now", h.vault.now()).unwrap();
    let to_ceiled = (to.as_second() + 3599) / 3600 * 3600 * 1000;
    assert!(
        frag.body.contains(&format!("data-to=\"{to_ceiled}\"")),
        "{}",
        frag.body
    );
    assert_eq!(
        h.get("/cameras/front/timeline?end=garbage", &owner)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // The download form turns local time into the MP4's range.
    let r = h
        .get(
            "/cameras/front/download?from=2027-01-15T08:00&minutes=5&tz=60",
            &owner,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.location(),
        "/api/v1/cameras/front/view.mp4?from=2027-01-15T07%3A00%3A00Z&to=2027-01-15T07%3A05%3A00Z&download=1"
    );
    assert_eq!(
        h.get("/cameras/front/download?from=yesterday&minutes=5", &owner)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // Nothing recorded: a clear 404, not an empty file.
    let r = h
        .get("/api/v1/cameras/front/view.mp4?from=-1m&download=1", &owner)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("no recordings"));
    // No still without a recorder in this process.
    assert_eq!(
        h.get("/api/v1/cameras/front/still.mp4", &owner)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn new_pages_have_no_inline_script_and_a_tab_bar() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    h.camera("front").await;
    let tags = regex::Regex::new(r"<script[^>]*>").unwrap();
    let handler = regex::Regex::new(r"<[^>]*\son[a-z]+=").unwrap();
    let style = regex::Regex::new(r"<[^>]*\sstyle=").unwrap();
    for path in [
        "/",
        "/live",
        "/events",
        "/cameras/front",
        "/cameras/front?zoom=hour",
        "/settings",
        "/settings/cameras",
        "/settings/cameras/front",
        "/settings/users",
        "/audit",
        "/audit?only=video",
    ] {
        let r = h.get(path, &owner).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        for tag in tags.find_iter(&r.body) {
            assert!(tag.as_str().contains("src="), "{path}: inline script");
        }
        assert!(!handler.is_match(&r.body), "{path}: inline handler");
        assert!(
            !style.is_match(&r.body),
            "{path}: inline style (the CSP refuses it)"
        );
        assert!(r.body.contains("nav class=\"tabs\""), "{path}: tab bar");
    }
    for path in [
        "/static/timeline.js",
        "/static/settings.js",
        "/static/offline.html",
        "/static/icon-maskable-512.png",
    ] {
        let r = h
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    let manifest: Value = serde_json::from_str(
        &h.send(
            Request::get("/manifest.webmanifest")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .body,
    )
    .unwrap();
    let icons = manifest["icons"].as_array().unwrap();
    for size in ["192x192", "512x512"] {
        assert!(icons
            .iter()
            .any(|i| i["sizes"] == size && i["type"] == "image/png"));
    }
}

#[tokio::test]
async fn edit_a_cameras_address_and_credentials() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    h.camera("front").await;
    let r = h
        .call(
            "PATCH",
            "/api/v1/cameras/front",
            &owner,
            Some(json!({ "url": "rtsp://192.168.1.30/stream1", "username": "admin", "password": "cam-secret" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["url"], "rtsp://192.168.1.30/stream1");
    assert_eq!(r.json()["username"], "admin");
    let cam = h
        .vault
        .store()
        .camera_by_name("front")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cam.password.as_deref(), Some("cam-secret"));
    // Bad addresses and fields that cannot change in place are refused.
    for body in [
        json!({ "url": "http://192.168.1.30/" }),
        json!({ "url": "rtsp://u:p@192.168.1.30/" }),
        json!({ "retain_days": -1 }),
        json!({ "sub_url": "http://192.168.1.30/2" }),
    ] {
        let r = h
            .call("PATCH", "/api/v1/cameras/front", &owner, Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
    }
    // The settings form: a blank password keeps the saved one.
    let r = h
        .form(
            "/settings/cameras/front/edit",
            &owner,
            &[
                ("action", "save"),
                ("url", "rtsp://192.168.1.31/stream1"),
                ("username", "admin"),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Saved."));
    let cam = h
        .vault
        .store()
        .camera_by_name("front")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cam.main_url, "rtsp://192.168.1.31/stream1");
    assert_eq!(cam.password.as_deref(), Some("cam-secret"));
    assert!(
        !r.body.contains("cam-secret"),
        "the password never reaches the page"
    );
    let r = h
        .form(
            "/settings/cameras/front/edit",
            &owner,
            &[
                ("action", "save"),
                ("url", "rtsp://192.168.1.31/stream1"),
                ("username", ""),
                ("clear_password", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let cam = h
        .vault
        .store()
        .camera_by_name("front")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((cam.username, cam.password), (None, None));
    let r = h
        .form(
            "/settings/cameras/front/edit",
            &owner,
            &[("action", "save"), ("url", "ftp://x/")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("is not an RTSP URL"));
    let edits: Vec<Value> = h
        .audit_actions()
        .await
        .into_iter()
        .filter(|(_, a, _, _)| a == "camera.edit")
        .map(|(_, _, _, d)| d)
        .collect();
    assert_eq!(edits.len(), 3, "{edits:?}");
    assert!(edits.iter().all(|d| !d.to_string().contains("cam-secret")));
}

#[tokio::test]
async fn stored_events_show_only_for_visible_cameras() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    let member = h.user("member", Role::Member).await;
    h.camera("front").await;
    h.camera("back").await;
    let store = h.vault.store();
    let front = store.camera_by_name("front").await.unwrap().unwrap();
    let back = store.camera_by_name("back").await.unwrap().unwrap();
    let mid = store.user_by_name("member").await.unwrap().unwrap().id;
    store.grant_camera(front.id, mid, true).await.unwrap();
    let now = h.vault.now();
    for (cam, kind) in [(front.id, "doorbell"), (back.id, "person")] {
        porchlight_vault::details::insert_event(
            store,
            &porchlight_store::NewEvent {
                camera_id: Some(cam),
                kind: kind.into(),
                source: "api".into(),
                start: Some(now - jiff::SignedDuration::from_mins(5)),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    }
    let all = h.get("/api/v1/events", &owner).await.json();
    assert_eq!(all["events"].as_array().unwrap().len(), 2, "{all}");
    let mine = h.get("/api/v1/events", &member).await.json();
    let kinds: Vec<&str> = mine["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["doorbell"],
        "a member sees only granted cameras' events"
    );
    let filtered = h.get("/api/v1/events?kind=person", &owner).await.json();
    assert_eq!(filtered["events"][0]["camera"], "back");
}
