//! A camera's detection settings over the API: owners read and change
//! them (validated, audited); a bad document is refused with what is
//! wrong; members cannot change them and cannot read another camera's.

#[allow(dead_code)]
mod support;

use axum::http::StatusCode;
use porchlight_store::Role;
use serde_json::json;
use support::{hub, Hub};

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
    let audited = h
        .audit_log()
        .await
        .into_iter()
        .filter(|e| e.action == "camera.detection")
        .count();
    assert_eq!(audited, 1);

    // Bad documents name what is wrong, and change nothing.
    for (bad, says) in [
        (
            json!({"motion": {"zones": [{"name": "a", "polygon": [[0, 0], [1, 1]]}]}}),
            "at least 3 points",
        ),
        (json!({"alert_labels": ["unicorn"]}), "unicorn"),
        (json!({"fsp": 5}), "fsp"),
        (json!({"fps": 500}), "fps"),
    ] {
        let r = h.call("PUT", path, &owner, Some(bad)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains(says), "{says}: {}", r.body);
    }
    assert_eq!(
        h.get(path, &owner).await.json()["alert_labels"],
        json!(["person", "vehicle"])
    );

    // Members: no change, and not another camera's settings.
    let r = h.call("PUT", path, &member, Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = h.get("/api/v1/cameras/yard/detection", &member).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = h.get("/api/v1/cameras/nowhere/detection", &owner).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

/// The owners' detection page (`/cameras/{name}/detection`): it shows the
/// stored settings and the zone editor's pieces, its form without
/// JavaScript saves through the same validation as the API (a bad zone is
/// refused with the server's reason, the text kept, nothing saved), it
/// needs the CSRF token, and members cannot open or post it.
#[tokio::test]
async fn the_detection_page_shows_and_saves_the_settings_for_owners_only() {
    let h = Hub::builder().browser_sessions().build().await;
    let owner = h.browser("olive", Role::Owner).await;
    let member = h.browser("sam", Role::Member).await;
    h.camera("porch").await;
    let page = "/cameras/porch/detection";
    let api = "/api/v1/cameras/porch/detection";

    let r = h.call(&owner, "GET", page, None, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for piece in [
        r#"id="detection-form""#,
        r#"data-camera="porch""#,
        r#"id="zone-editor""#,
        r#"src="/api/v1/cameras/porch/still.jpg""#,
        r#"<script src="/static/js/detection.js" defer"#,
        r#"name="zones""#,
        r#"value="auto" selected"#,
    ] {
        assert!(r.body.contains(piece), "the page has {piece}");
    }
    assert_eq!(r.csrf(), owner.csrf);
    // The camera page links to it, for owners.
    let cam_page = h.call(&owner, "GET", "/cameras/porch", None, false).await;
    assert!(cam_page.body.contains(r#"href="/cameras/porch/detection""#));
    // The script it loads is served.
    let js = h
        .call(&owner, "GET", "/static/js/detection.js", None, false)
        .await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js
        .header(axum::http::header::CONTENT_TYPE)
        .starts_with("text/javascript"));

    let zones = r#"[{"name": "porch", "polygon": [[0.1, 0.5], [0.6, 0.5], [0.6, 1], [0.1, 1]], "labels": ["person", "parcel"]},
                    {"name": "road", "kind": "mask", "polygon": [[0, 0], [1, 0], [1, 0.2]]}]"#;
    let form = |csrf: &str, zones: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("enabled".into(), "on".into()),
            ("objects".into(), "on".into()),
            ("stream".into(), "main".into()),
            ("fps".into(), "4".into()),
            ("threshold".into(), "0.6".into()),
            ("parcel_threshold".into(), "0.35".into()),
            ("alert_label".into(), "person".into()),
            ("alert_label".into(), "vehicle".into()),
            ("sensitivity".into(), "0.7".into()),
            ("min_area_pct".into(), "0.5".into()),
            ("preroll_s".into(), "3".into()),
            ("postroll_s".into(), "8".into()),
            ("zones".into(), zones.to_owned()),
        ]
    };
    let refs = |v: &[(String, String)]| {
        v.iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect::<Vec<_>>()
    };
    let post = |fields: Vec<(String, String)>| {
        let h = &h;
        let owner = &owner;
        async move {
            let f: Vec<(&str, &str)> = fields
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            h.form(owner, page, &f).await
        }
    };

    // Saved: the API returns exactly what the form said.
    let r = post(refs(&form(&owner.csrf, zones))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/cameras/porch/detection?saved=1");
    let saved = h.call(&owner, "GET", api, None, false).await.json();
    assert_eq!(saved["stream"], "main");
    assert_eq!(saved["fps"], 4.0);
    assert_eq!(saved["parcels"], false, "an unticked box is off");
    assert_eq!(saved["alert_labels"], json!(["person", "vehicle"]));
    assert_eq!(saved["preroll_s"], 3);
    assert!((saved["motion"]["min_area"].as_f64().unwrap() - 0.005).abs() < 1e-6);
    assert_eq!(
        saved["motion"]["zones"][0]["labels"],
        json!(["person", "parcel"])
    );
    assert_eq!(saved["motion"]["zones"][1]["kind"], "mask");
    let corner = &saved["motion"]["zones"][1]["polygon"][2];
    let (x, y) = (corner[0].as_f64().unwrap(), corner[1].as_f64().unwrap());
    assert!(
        (x - 1.0).abs() < 1e-6 && (y - 0.2).abs() < 1e-6,
        "the mask's third corner: {corner}"
    );
    let r = h
        .call(&owner, "GET", &format!("{page}?saved=1"), None, false)
        .await;
    assert!(r.testid("detection-saved").contains("Saved"));
    assert!(
        r.body.contains("&quot;road&quot;") || r.body.contains("\"road\""),
        "the zones text shows the saved zones"
    );

    // Refused with the settings code's own reasons; nothing saved.
    for (zones, says) in [
        (
            r#"[{"name": "tiny", "polygon": [[0.1, 0.1], [0.5, 0.5]]}]"#,
            "at least 3 points",
        ),
        (
            r#"[{"name": "far", "polygon": [[0.1, 0.1], [1.5, 0.5], [0.2, 0.9]]}]"#,
            "outside 0..1",
        ),
        (
            r#"[{"name": "road", "kind": "mask", "polygon": [[0, 0], [1, 0], [1, 0.2]], "labels": ["person"]}]"#,
            "road",
        ),
        ("not json", "not a JSON list"),
    ] {
        let r = post(refs(&form(&owner.csrf, zones))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{zones}: {}", r.body);
        assert!(
            r.testid("detection-error").contains(says),
            "{zones}: {}",
            r.testid("detection-error")
        );
        // The submitted text comes back to be fixed.
        let shown = zones.replace('"', "&quot;");
        assert!(
            r.body.contains(&shown) || r.body.contains(zones),
            "{zones} is shown again"
        );
    }
    let mut bad_number = form(&owner.csrf, zones);
    bad_number[4].1 = "fast".into();
    let r = post(bad_number).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.testid("detection-error").contains("fast"),
        "{}",
        r.testid("detection-error")
    );
    let after = h.call(&owner, "GET", api, None, false).await.json();
    assert_eq!(after, saved, "refused posts changed nothing");

    // The CSRF token is required.
    let r = post(refs(&form("wrong-token", "[]"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(h.call(&owner, "GET", api, None, false).await.json(), saved);

    // Members: neither the page nor its post.
    let sam = h.user_id("sam").await;
    let cam = h.store.camera_by_name("porch").await.unwrap().unwrap().id;
    h.store.grant_camera(cam, sam, true).await.unwrap();
    let r = h.call(&member, "GET", page, None, false).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let f: Vec<(String, String)> = form(&member.csrf, "[]");
    let f: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let r = h.form(&member, page, &f).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(h.call(&owner, "GET", api, None, false).await.json(), saved);
    let cam_page = h.call(&member, "GET", "/cameras/porch", None, false).await;
    assert_eq!(cam_page.status, StatusCode::OK);
    assert!(
        !cam_page.body.contains("/cameras/porch/detection"),
        "no link for members"
    );
    let audited = h
        .audit_log()
        .await
        .into_iter()
        .filter(|e| e.action == "camera.detection")
        .count();
    assert_eq!(audited, 1, "one change saved, one audited");
}
