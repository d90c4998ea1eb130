//! A camera's detection settings over the API: owners read and change
//! them (validated, audited); a bad document is refused with what is
//! wrong; members cannot change them and cannot read another camera's.

#[allow(dead_code)]
mod support;

use axum::http::StatusCode;
use porchlight_store::Role;
use serde_json::json;
use support::hub;

#[tokio::test]
async fn owners_set_zones_and_labels_and_bad_documents_are_refused() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    let member = h.user("sam", Role::Member).await;
    h.camera("porch").await;
    h.camera("yard").await;
    let path = "/api/v1/cameras/porch/detection";

    // Never set: the defaults.
    let r = h.get(path, &owner).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["fps"], 5.0);
    assert_eq!(r.json()["alert_labels"], json!(["person", "parcel"]));

    let doc = json!({
        "alert_labels": ["person", "vehicle"],
        "motion": {"sensitivity": 0.7, "zones": [
            {"name": "porch", "polygon": [[0.4, 0.2], [0.9, 0.2], [0.9, 1.0], [0.4, 1.0]], "labels": ["person"]},
            {"name": "street", "kind": "mask", "polygon": [[0.0, 0.0], [1.0, 0.0], [1.0, 0.15]]}
        ]}
    });
    let r = h.call("PUT", path, &owner, Some(doc)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = h.get(path, &owner).await;
    assert_eq!(r.json()["alert_labels"], json!(["person", "vehicle"]));
    assert_eq!(r.json()["motion"]["zones"][1]["kind"], "mask");
    assert!((r.json()["motion"]["sensitivity"].as_f64().unwrap() - 0.7).abs() < 1e-6);
    let audited = h.audit_log().await.into_iter().filter(|e| e.action == "camera.detection").count();
    assert_eq!(audited, 1);

    // Bad documents name what is wrong, and change nothing.
    for (bad, says) in [
        (json!({"motion": {"zones": [{"name": "a", "polygon": [[0, 0], [1, 1]]}]}}), "at least 3 points"),
        (json!({"alert_labels": ["unicorn"]}), "unicorn"),
        (json!({"fsp": 5}), "fsp"),
        (json!({"fps": 500}), "fps"),
    ] {
        let r = h.call("PUT", path, &owner, Some(bad)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains(says), "{says}: {}", r.body);
    }
    assert_eq!(h.get(path, &owner).await.json()["alert_labels"], json!(["person", "vehicle"]));

    // Members: no change, and not another camera's settings.
    let r = h.call("PUT", path, &member, Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = h.get("/api/v1/cameras/yard/detection", &member).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = h.get("/api/v1/cameras/nowhere/detection", &owner).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}
