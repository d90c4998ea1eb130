//! Event snapshots over HTTP and the event pages, in-process: a real
//! router, store and vault in a temporary folder, snapshots written in the
//! real encrypted format (`porchlight_vault::snapshot`) to the camera's
//! recipients, as the detection pipeline writes them.

#[allow(dead_code)]
mod support;

use axum::http::{header, StatusCode};
use porchlight_store::{NewEvent, Role, Store};
use porchlight_vault::snapshot::{self, Kind};
use serde_json::{json, Value};
use support::{hub, Hub};

impl Hub {
    /// Records an event on `camera_id` and, with `pictures`, writes its
    /// snapshot and thumbnail encrypted to the camera's recipients now.
    async fn event(&self, camera_id: i64, pictures: Option<(&[u8], &[u8])>) -> i64 {
        let store = self.vault.store();
        let now = self.vault.now();
        let id = porchlight_vault::details::insert_event(
            store,
            &NewEvent {
                camera_id: Some(camera_id),
                kind: "person".into(),
                source: "detection".into(),
                alert: true,
                start: Some(now - jiff::SignedDuration::from_mins(3)),
                end: Some(now - jiff::SignedDuration::from_mins(2)),
                zones: vec!["porch".into()],
                detail: json!({ "labels": ["person"], "preroll_s": 7 }),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
        if let Some((full, thumb)) = pictures {
            let recipients: Vec<age::x25519::Recipient> = store
                .camera_recipients(camera_id)
                .await
                .unwrap()
                .iter()
                .map(|r| r.parse().unwrap())
                .collect();
            let rel = snapshot::relative_path(camera_id, id, Kind::Full);
            snapshot::write(self.dir.path(), &rel, full, &recipients).unwrap();
            let trel = snapshot::relative_path(camera_id, id, Kind::Thumb);
            snapshot::write(self.dir.path(), &trel, thumb, &recipients).unwrap();
            store
                .set_event_snapshot(id, rel.to_str().unwrap())
                .await
                .unwrap();
        }
        id
    }

    async fn audit(&self) -> Vec<(String, String, Value)> {
        self.audit_log()
            .await
            .into_iter()
            .map(|e| (e.action, e.target, e.detail))
            .collect()
    }

    async fn count(&self, action: &str) -> usize {
        self.audit()
            .await
            .iter()
            .filter(|(a, _, _)| a == action)
            .count()
    }
}

/// JPEG-shaped bytes (the hub only checks the leading marker) that differ
/// by `seed`.
fn jpeg(seed: u8, len: usize) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
    v.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

#[tokio::test]
async fn snapshots_are_decrypted_for_who_may_see_the_camera_and_audited_per_view() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    let member = h.user("member", Role::Member).await;
    let stranger = h.user("stranger", Role::Member).await;
    let front = h.camera("front").await;
    let store = h.vault.store();
    let mid = store.user_by_name("member").await.unwrap().unwrap().id;
    store.grant_camera(front, mid, true).await.unwrap();
    let (full, thumb) = (jpeg(1, 50_000), jpeg(2, 3_000));
    let id = h.event(front, Some((&full, &thumb))).await;

    // On disk: nothing readable.
    let raw = std::fs::read(
        h.dir
            .path()
            .join(snapshot::relative_path(front, id, Kind::Full)),
    )
    .unwrap();
    assert!(raw.starts_with(b"age-encryption.org/v1"));

    let r = h
        .get(&format!("/api/v1/events/{id}/snapshot.jpg"), &owner)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header(header::CONTENT_TYPE), "image/jpeg");
    assert_eq!(r.header(header::CACHE_CONTROL), "private, no-store");
    assert_eq!(r.bytes, full);
    assert_eq!(h.count("event.snapshot").await, 1);
    // Every view is a new entry, naming the camera and the event.
    let r = h
        .get(&format!("/api/v1/events/{id}/snapshot.jpg"), &member)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.bytes, full);
    let views: Vec<_> = h
        .audit()
        .await
        .into_iter()
        .filter(|(a, _, _)| a == "event.snapshot")
        .collect();
    assert_eq!(views.len(), 2);
    assert_eq!(views[1].1, "front");
    assert_eq!(views[1].2["event"], id);

    // Thumbnails: the small picture, not audited one by one.
    let r = h
        .get(&format!("/api/v1/events/{id}/thumb.jpg"), &member)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.bytes, thumb);
    assert_eq!(r.header(header::CACHE_CONTROL), "private, no-store");
    assert_eq!(h.count("event.snapshot").await, 2);

    // No grant: 403 for the picture, the thumbnail and the event, each
    // audited as a denied look at the camera.
    let denied_before = h.count("camera.denied").await;
    for path in ["snapshot.jpg", "thumb.jpg"] {
        let r = h
            .get(&format!("/api/v1/events/{id}/{path}"), &stranger)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(r.json()["error"].as_str().unwrap().contains("front"));
        assert!(!r.bytes.windows(4).any(|w| w == [0xFF, 0xD8, 0xFF, 0xE0]));
    }
    let r = h.get(&format!("/api/v1/events/{id}"), &stranger).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h.get(&format!("/events/{id}"), &stranger).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(h.count("camera.denied").await, denied_before + 4);
    assert_eq!(h.count("event.snapshot").await, 2);

    // The event as JSON.
    let e = h.get(&format!("/api/v1/events/{id}"), &member).await.json();
    assert_eq!(e["camera"], "front");
    assert_eq!(e["labels"], json!(["person"]));
    assert_eq!(e["zones"], json!(["porch"]));
    assert_eq!(e["snapshot"], true);
    assert_eq!(e["preroll_s"], 7);
    assert_eq!(e["ongoing"], false);
}

#[tokio::test]
async fn missing_unknown_damaged_and_not_encrypted_to_you() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    let front = h.camera("front").await;
    let bare = h.event(front, None).await;
    let r = h
        .get(&format!("/api/v1/events/{bare}/snapshot.jpg"), &owner)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("has no snapshot"));
    let r = h.get("/api/v1/events/424242/thumb.jpg", &owner).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("no event 424242"));
    let r = h.get("/api/v1/events/abc/snapshot.jpg", &owner).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Written before a member existed: the member cannot open it, and is
    // told why rather than shown a broken picture.
    let id = h.event(front, Some((&jpeg(3, 900), &jpeg(4, 90)))).await;
    let late = h.user("late", Role::Member).await;
    let lid = h
        .vault
        .store()
        .user_by_name("late")
        .await
        .unwrap()
        .unwrap()
        .id;
    h.vault
        .store()
        .grant_camera(front, lid, true)
        .await
        .unwrap();
    let r = h
        .get(&format!("/api/v1/events/{id}/snapshot.jpg"), &late)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("not encrypted to your key"));

    // A truncated file is an error, never a partial picture.
    let path = h
        .dir
        .path()
        .join(snapshot::relative_path(front, id, Kind::Full));
    let raw = std::fs::read(&path).unwrap();
    std::fs::write(&path, &raw[..raw.len() - 5]).unwrap();
    let r = h
        .get(&format!("/api/v1/events/{id}/snapshot.jpg"), &owner)
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!r.bytes.starts_with(&[0xFF, 0xD8]));
    // A thumbnail that is gone falls back to the full picture.
    let thumb = h
        .dir
        .path()
        .join(snapshot::relative_path(front, id, Kind::Thumb));
    std::fs::write(&path, &raw).unwrap();
    std::fs::remove_file(thumb).unwrap();
    let r = h
        .get(&format!("/api/v1/events/{id}/thumb.jpg"), &owner)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.bytes, jpeg(3, 900));
}

#[tokio::test]
async fn a_locked_key_is_a_423_asking_to_sign_in_again() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    let front = h.camera("front").await;
    let id = h.event(front, Some((&jpeg(5, 100), &jpeg(6, 10)))).await;
    // The hub "restarts": same folder, a new vault with no unlocked keys;
    // the session itself is still valid.
    let store = Store::open(h.dir.path()).await.unwrap();
    let restarted = Hub::builder().with_store(store).build().await;
    let r = restarted
        .get(&format!("/api/v1/events/{id}/snapshot.jpg"), &owner)
        .await;
    assert_eq!(r.status, StatusCode::LOCKED, "{}", r.text());
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("sign in again"));
    let page = restarted.get(&format!("/events/{id}"), &owner).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("household key is locked"));
}

#[tokio::test]
async fn event_pages_show_snapshots_and_link_to_the_video() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    let front = h.camera("front").await;
    let with = h.event(front, Some((&jpeg(7, 100), &jpeg(8, 10)))).await;
    let without = h.event(front, None).await;

    let page = h.get(&format!("/events/{with}"), &owner).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    assert!(html.contains(&format!("src=\"/api/v1/events/{with}/snapshot.jpg\"")));
    assert!(html.contains("porch"), "zones are shown");
    // The clip starts at the event's start minus its pre-roll (7 s).
    let start = h.vault.now() - jiff::SignedDuration::from_mins(3);
    let from = (start - jiff::SignedDuration::from_secs(7)).to_string();
    let from_q: String = form_urlencoded::byte_serialize(from.as_bytes()).collect();
    assert!(
        html.contains(&format!("/api/v1/cameras/front/view.mp4?from={from_q}")),
        "play from the pre-roll: {html}"
    );
    assert!(html.contains("&amp;download=1"), "a download link");
    assert!(!html.contains("<script>"), "no inline script");

    let page = h.get(&format!("/events/{without}"), &owner).await.text();
    assert!(page.contains("No snapshot was kept"));
    assert!(!page.contains("snapshot.jpg"));

    // The list and the home page link to the detail page, with thumbnails
    // where there are pictures; opening them audits no snapshot view.
    for path in ["/events", "/"] {
        let list = h.get(path, &owner).await;
        assert_eq!(list.status, StatusCode::OK, "{path}");
        let list = list.text();
        assert!(
            list.contains(&format!("src=\"/api/v1/events/{with}/thumb.jpg\"")),
            "{path}: {list}"
        );
        assert!(
            list.contains(&format!("href=\"/events/{without}\"")),
            "{path}"
        );
        assert!(!list.contains(&format!("/api/v1/events/{without}/thumb.jpg")));
    }
    assert_eq!(h.count("event.snapshot").await, 0);
    let r = h.get("/events/0", &owner).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
