//! A planned playback holds the viewer's unlocked key; it must never serve
//! another sign-in, even one that ends up with the same session id, and
//! every sign-in's playback is audited as that user (issue 14, item 5).

#[allow(dead_code)]
mod support;

use axum::http::StatusCode;
use porchlight_media::{Codec, VideoSampleEntry};
use porchlight_recorder::writer::{Frame, StreamWriter, WriterOptions};
use porchlight_store::Role;
use porchlight_vault::Actor;
use serde_json::json;
use support::*;

/// Records three one-second GOPs of camera `camera_id`, starting at `t0`,
/// sealed to every member who may see it now.
async fn record(h: &Hub, camera_id: i64, t0: jiff::Timestamp) {
    let recipients: Vec<age::x25519::Recipient> = h
        .store
        .camera_recipients(camera_id)
        .await
        .unwrap()
        .iter()
        .map(|r| r.parse::<age::x25519::Recipient>().unwrap())
        .collect();
    let entry = VideoSampleEntry {
        codec: Codec::H264,
        width: 320,
        height: 240,
        config: vec![1, 0x4d, 0x40, 0x1f, 0xff, 0xe0, 0x00],
        rfc6381: "avc1.4d401f".into(),
    };
    let dir = h.dir.path().join(porchlight_recorder::RECORDINGS_DIR);
    let mut w = StreamWriter::new(
        h.store.clone(),
        &dir,
        camera_id,
        "main",
        &entry,
        recipients,
        WriterOptions::default(),
    )
    .await
    .unwrap();
    for i in 0..75i64 {
        w.push(
            Frame {
                pts_90k: i * 3600,
                key: i % 25 == 0,
                data: vec![(i % 251) as u8; 2000].into(),
            },
            t0 + jiff::SignedDuration::from_millis(40 * i),
        )
        .await
        .unwrap();
    }
    w.finish().await.unwrap();
}

#[tokio::test]
async fn a_new_sign_in_with_a_reused_session_id_plans_and_is_audited_on_its_own() {
    let h = hub().await;
    let cam = h.camera("front").await;
    let anna = h.user("anna", Role::Owner).await;
    h.vault
        .create_user("ben", Role::Member, PW, &Actor::cli())
        .await
        .unwrap();
    h.store
        .grant_camera(cam, h.user_id("ben").await, true)
        .await
        .unwrap();
    let t0 = h.vault.now() - jiff::SignedDuration::from_secs(120);
    record(&h, cam, t0).await;
    let url = format!(
        "/api/v1/cameras/front/view.mp4?from={}&to={}",
        t0,
        t0 + jiff::SignedDuration::from_secs(2)
    );

    // Anna plays, then signs out.
    let a = h.get(&url, &anna).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let anna_session = h.get("/api/v1/me", &anna).await.json()["session"]["id"]
        .as_i64()
        .unwrap();
    let r = h
        .call("DELETE", "/api/v1/sessions/current", &anna, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // Ben signs in; his session is made to carry Anna's old id (what SQLite
    // did by itself before ids were AUTOINCREMENT).
    let ben = h.token("ben").await;
    let ben_session = h.get("/api/v1/me", &ben).await.json()["session"]["id"]
        .as_i64()
        .unwrap();
    if ben_session != anna_session {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", h.store.db_path().display()))
            .await
            .unwrap();
        sqlx::query("UPDATE sessions SET id = ? WHERE id = ?")
            .bind(anna_session)
            .bind(ben_session)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    let me = h.get("/api/v1/me", &ben).await.json();
    assert_eq!(me["session"]["id"], json!(anna_session), "{me}");
    assert_eq!(me["username"], json!("ben"));

    // Ben opens the same URL: a decision of his own, audited as Ben.
    let b = h.get(&url, &ben).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    assert_eq!(
        b.bytes, a.bytes,
        "the same recording, opened with Ben's key"
    );
    let playbacks: Vec<String> = h
        .audit_log()
        .await
        .into_iter()
        .filter(|e| e.action == "recording.playback" && e.target == "front")
        .map(|e| e.actor)
        .collect();
    assert_eq!(playbacks, ["ben", "anna"], "newest first");
}

#[tokio::test]
async fn cached_plans_go_the_moment_their_session_ends() {
    let h = hub().await;
    let cam = h.camera("front").await;
    let phone = h.user("anna", Role::Owner).await;
    let laptop = h.token("anna").await;
    let t0 = h.vault.now() - jiff::SignedDuration::from_secs(120);
    record(&h, cam, t0).await;
    let url = format!(
        "/api/v1/cameras/front/view.mp4?from={}&to={}",
        t0,
        t0 + jiff::SignedDuration::from_secs(2)
    );
    assert_eq!(h.get(&url, &phone).await.status, StatusCode::OK);
    assert_eq!(h.vault.keyring().derived_len(), 1, "the plan is cached");
    // Range requests of the same playback reuse it: one audit entry.
    assert_eq!(h.get(&url, &phone).await.status, StatusCode::OK);
    let count = |log: Vec<porchlight_store::AuditEntry>| {
        log.iter()
            .filter(|e| e.action == "recording.playback")
            .count()
    };
    assert_eq!(count(h.audit_log().await), 1);
    // Revoked from the laptop: the phone's plan goes with its key, at once
    // (not at the next sweep, nor when someone next plays).
    let phone_id = h.get("/api/v1/me", &phone).await.json()["session"]["id"]
        .as_i64()
        .unwrap();
    let r = h
        .call(
            "DELETE",
            &format!("/api/v1/me/sessions/{phone_id}"),
            &laptop,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(h.vault.keyring().derived_len(), 0);
    assert_eq!(h.vault.keyring().len(), 1, "the laptop's key stays");
    // The laptop's own playback is its own, audited again.
    assert_eq!(h.get(&url, &laptop).await.status, StatusCode::OK);
    assert_eq!(count(h.audit_log().await), 2);
}
