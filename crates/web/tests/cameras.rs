//! Editing an existing camera: `PATCH /api/v1/cameras/{name}` (address,
//! sub-stream, credentials, retention, pause) and the edit form on the
//! camera's page, in-process with a real router, store and vault.

#[allow(dead_code)]
mod support;

use axum::http::StatusCode;
use porchlight_store::{Camera, NewCamera, Role};
use serde_json::{json, Value};
use support::{closed_port, hub, Hub, Resp};

const GIB: i64 = 1 << 30;

impl Hub {
    async fn patch(&self, token: &str, body: Value) -> Resp {
        self.call("PATCH", "/api/v1/cameras/front", token, Some(body))
            .await
    }

    async fn front(&self) -> Camera {
        self.store.camera_by_name("front").await.unwrap().unwrap()
    }

    async fn actions(&self, action: &str) -> Vec<Value> {
        self.audit_log()
            .await
            .into_iter()
            .filter(|e| e.action == action)
            .map(|e| e.detail)
            .collect()
    }
}

async fn with_camera() -> (Hub, String) {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    h.vault
        .store()
        .create_camera(
            &NewCamera {
                name: "front".into(),
                main_url: "rtsp://127.0.0.1:9/front".into(),
                username: Some("admin".into()),
                password: Some("cam-secret".into()),
                ..Default::default()
            },
            h.vault.now(),
        )
        .await
        .unwrap();
    (h, owner)
}

#[tokio::test]
async fn patch_changes_sub_stream_and_retention_and_checks_every_field() {
    let (h, owner) = with_camera().await;
    let r = h
        .patch(
            &owner,
            json!({ "sub_url": "rtsp://192.168.1.30/stream2", "retain_days": 14, "retain_gib": 2.5 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["sub_url"], "rtsp://192.168.1.30/stream2");
    assert_eq!(r.json()["retain_days"], 14);
    let cam = h.front().await;
    assert_eq!(cam.sub_url.as_deref(), Some("rtsp://192.168.1.30/stream2"));
    assert_eq!(cam.retain_max_age_secs, Some(14 * 86400));
    assert_eq!(cam.retain_max_bytes, Some(GIB * 5 / 2));
    assert_eq!(cam.main_url, "rtsp://127.0.0.1:9/front", "absent: kept");
    assert_eq!(cam.password.as_deref(), Some("cam-secret"));
    let audited = h.actions("camera.retention").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0]["retain_max_age_secs"], 14 * 86400);

    // Any wrong field: 400 naming it, and nothing at all is saved (the
    // valid url in the same request included).
    for (body, says) in [
        (
            json!({ "url": "rtsp://10.0.0.9/", "retain_days": -1 }),
            "retain_days",
        ),
        (
            json!({ "url": "rtsp://10.0.0.9/", "retain_gib": 1e12 }),
            "retain_gib",
        ),
        (
            json!({ "url": "rtsp://10.0.0.9/", "sub_url": "http://x/" }),
            "sub_url",
        ),
        (json!({ "url": "rtsp://u:p@10.0.0.9/" }), "separately"),
        (json!({ "url": "ftp://10.0.0.9/" }), "not an RTSP URL"),
        (json!({ "retain_days": "soon" }), ""),
        (json!({ "colour": "blue" }), ""),
    ] {
        let r = h.patch(&owner, body.clone()).await;
        assert!(
            r.status.is_client_error(),
            "{body}: {} {}",
            r.status,
            r.body
        );
        assert!(r.body.contains(says), "{body}: {}", r.body);
        assert_eq!(h.front().await, cam, "{body} changed nothing");
    }

    // `null` or 0 removes a limit; "" removes the sub-stream.
    let r = h
        .patch(
            &owner,
            json!({ "retain_days": null, "retain_gib": 0, "sub_url": "" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let cam = h.front().await;
    assert_eq!(
        (cam.sub_url, cam.retain_max_age_secs, cam.retain_max_bytes),
        (None, None, None)
    );

    // Members cannot edit cameras.
    let member = h.user("member", Role::Member).await;
    let r = h.patch(&member, json!({ "retain_days": 1 })).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(h.front().await.retain_max_age_secs, None);
}

#[tokio::test]
async fn patch_with_test_refuses_an_address_that_does_not_answer() {
    let (h, owner) = with_camera().await;
    let url = format!("rtsp://127.0.0.1:{}/stream", closed_port());
    let r = h.patch(&owner, json!({ "url": url, "test": true })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let msg = r.json()["error"].as_str().unwrap().to_owned();
    assert!(
        msg.starts_with("not saved: the camera does not answer"),
        "{msg}"
    );
    assert_eq!(h.front().await.main_url, "rtsp://127.0.0.1:9/front");
    assert_eq!(h.actions("camera.test").await.len(), 1);
    assert!(h.actions("camera.edit").await.is_empty());
    // Without `test`, the same address is saved (the camera may be off).
    let r = h.patch(&owner, json!({ "url": url })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(h.front().await.main_url, url);
    assert_eq!(h.actions("camera.edit").await.len(), 1);
}

#[tokio::test]
async fn the_edit_form_on_the_camera_page_saves_and_says_what_happened() {
    let (h, owner) = with_camera().await;
    let page = h.call("GET", "/cameras/front", &owner, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("action=\"/cameras/front/edit\""));
    assert!(page.body.contains("name=\"csrf\""));
    assert!(
        !page.body.contains("cam-secret"),
        "the password never reaches the page"
    );

    let r = h
        .form(
            "/cameras/front/edit",
            &owner,
            &[
                ("url", "rtsp://192.168.1.40/main"),
                ("sub_url", "rtsp://192.168.1.40/sub"),
                ("username", "viewer"),
                ("password", ""),
                ("retain_days", "3"),
                ("retain_gib", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/cameras/front?edited=1#edit");
    let cam = h.front().await;
    assert_eq!(cam.main_url, "rtsp://192.168.1.40/main");
    assert_eq!(cam.sub_url.as_deref(), Some("rtsp://192.168.1.40/sub"));
    assert_eq!(cam.username.as_deref(), Some("viewer"));
    assert_eq!(
        cam.password.as_deref(),
        Some("cam-secret"),
        "blank keeps it"
    );
    assert_eq!(cam.retain_max_age_secs, Some(3 * 86400));
    assert_eq!(cam.retain_max_bytes, None);
    let page = h.call("GET", r.location(), &owner, None).await.body;
    assert!(page.contains("Saved."));
    assert!(page.contains("value=\"rtsp://192.168.1.40/sub\""));

    // A wrong field: back to the page with the reason; nothing saved.
    let r = h
        .form(
            "/cameras/front/edit",
            &owner,
            &[("url", "http://192.168.1.41/"), ("retain_days", "2")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/cameras/front?edit_error="));
    assert_eq!(h.front().await, cam);
    let page = h.call("GET", r.location(), &owner, None).await.body;
    assert!(page.contains("is not an RTSP URL"), "{page}");
    let r = h
        .form("/cameras/front/edit", &owner, &[("retain_days", "lots")])
        .await;
    assert!(r.location().contains("edit_error="));
    assert_eq!(h.front().await, cam);

    // The form posts every field: unchanged ones are neither saved again
    // nor audited.
    let r = h
        .form(
            "/cameras/front/edit",
            &owner,
            &[
                ("url", "rtsp://192.168.1.40/main"),
                ("sub_url", "rtsp://192.168.1.40/sub"),
                ("username", "viewer"),
                ("password", ""),
                ("retain_days", "3"),
                ("retain_gib", "1.5"),
            ],
        )
        .await;
    assert_eq!(r.location(), "/cameras/front?edited=1#edit");
    let cam = h.front().await;
    assert_eq!(cam.retain_max_bytes, Some(GIB * 3 / 2));
    assert_eq!(h.actions("camera.edit").await.len(), 1);
    assert_eq!(h.actions("camera.retention").await.len(), 2);

    // Members get no form and cannot post it.
    let member = h.user("member", Role::Member).await;
    let mid = h
        .vault
        .store()
        .user_by_name("member")
        .await
        .unwrap()
        .unwrap()
        .id;
    h.vault
        .store()
        .grant_camera(cam.id, mid, true)
        .await
        .unwrap();
    let page = h.call("GET", "/cameras/front", &member, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("/cameras/front/edit"));
    let r = h
        .form("/cameras/front/edit", &member, &[("retain_days", "1")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(h.front().await, cam);
    // Audited, without the camera's password.
    let edits = h.actions("camera.edit").await;
    assert_eq!(edits.len(), 1);
    assert!(!format!("{edits:?}").contains("cam-secret"));
}
