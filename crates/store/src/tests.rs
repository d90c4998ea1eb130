//! Store-level tests that span modules.

use crate::*;

fn t(s: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(s).unwrap()
}

#[tokio::test]
async fn fresh_folder_is_current_and_sound() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("new")).await.unwrap();
    assert_eq!(
        store.migration_status().await.unwrap(),
        MigrationStatus::Current {
            version: MIGRATIONS.last().unwrap().version
        }
    );
    assert_eq!(store.integrity_problem().await.unwrap(), None);
    // Reopening applies nothing twice.
    store.close().await;
    let store = Store::open(&dir.path().join("new")).await.unwrap();
    assert!(matches!(
        store.migration_status().await.unwrap(),
        MigrationStatus::Current { .. }
    ));
}

#[tokio::test]
async fn altered_migration_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    sqlx::query("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
        .execute(&store.pool)
        .await
        .unwrap();
    assert!(matches!(
        store.migration_status().await.unwrap(),
        MigrationStatus::Altered { version: 1, .. }
    ));
}

#[tokio::test]
async fn newer_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    sqlx::query("INSERT INTO schema_migrations VALUES (999, 'future', 'x', 0)")
        .execute(&store.pool)
        .await
        .unwrap();
    store.close().await;
    let err = Store::open(dir.path()).await.unwrap_err();
    assert!(
        err.to_string().contains("newer than this Porchlight knows"),
        "{err}"
    );
}

#[tokio::test]
async fn users_are_unique_case_insensitively_and_changes_show_in_other_handles() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Store::open(dir.path()).await.unwrap();
    let cli = Store::open(dir.path()).await.unwrap();
    let new = NewUser {
        username: "Alice",
        role: Role::Owner,
        password_hash: "$argon2id$x",
        keys: None,
    };
    let alice = cli.create_user(new.clone(), t(1)).await.unwrap();
    let dup = NewUser {
        username: "alice",
        ..new
    };
    assert!(matches!(
        cli.create_user(dup, t(2)).await,
        Err(StoreError::Conflict(_))
    ));
    // The "hub" handle sees the CLI's write at once: nothing is cached.
    assert_eq!(
        hub.user_by_name("ALICE").await.unwrap().unwrap().id,
        alice.id
    );
    cli.set_disabled(alice.id, true).await.unwrap();
    assert!(hub.user_by_id(alice.id).await.unwrap().unwrap().disabled);
}

#[tokio::test]
async fn key_columns_must_come_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let res = sqlx::query("INSERT INTO users (username, role, password_hash, created_at, age_recipient) VALUES ('x', 'member', 'h', 0, 'age1')")
        .execute(&store.pool)
        .await;
    assert!(
        res.is_err(),
        "a public key without wrapped private key must be refused"
    );
}

#[tokio::test]
async fn totp_steps_cannot_be_replayed_and_recovery_codes_are_single_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let u = store
        .create_user(
            NewUser {
                username: "bob",
                role: Role::Member,
                password_hash: "h",
                keys: None,
            },
            t(0),
        )
        .await
        .unwrap();
    store.set_pending_totp(u.id, b"secret").await.unwrap();
    store
        .enable_totp(u.id, 100, &[vec![1; 32], vec![2; 32]])
        .await
        .unwrap();
    assert!(!store.consume_totp_step(u.id, 100).await.unwrap());
    assert!(store.consume_totp_step(u.id, 101).await.unwrap());
    assert!(!store.consume_totp_step(u.id, 101).await.unwrap());
    assert!(!store.consume_totp_step(u.id, 99).await.unwrap());
    assert!(store
        .consume_recovery_code(u.id, &[1; 32], t(5))
        .await
        .unwrap());
    assert!(!store
        .consume_recovery_code(u.id, &[1; 32], t(6))
        .await
        .unwrap());
    assert!(!store
        .consume_recovery_code(u.id, &[9; 32], t(6))
        .await
        .unwrap());
    assert_eq!(store.recovery_codes_left(u.id).await.unwrap(), 1);
}

#[tokio::test]
async fn sessions_expire_and_vanish_with_their_user_being_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let u = store
        .create_user(
            NewUser {
                username: "carol",
                role: Role::Neighbor,
                password_hash: "h",
                keys: None,
            },
            t(0),
        )
        .await
        .unwrap();
    let mk = |hash: &'static [u8], exp: i64| NewSession {
        token_hash: hash,
        user_id: u.id,
        stage: SessionStage::Full,
        csrf_token: "c",
        now: t(10),
        expires_at: t(exp),
        client_addr: "127.0.0.1",
        user_agent: "test",
    };
    let s1 = store.create_session(mk(b"one", 100)).await.unwrap();
    let s2 = store.create_session(mk(b"two", 1000)).await.unwrap();
    assert_eq!(
        store
            .session_by_token_hash(b"one")
            .await
            .unwrap()
            .unwrap()
            .id,
        s1
    );
    let gone = store.delete_expired_sessions(t(100), t(0)).await.unwrap();
    assert_eq!(gone, vec![s1]);
    store.set_disabled(u.id, true).await.unwrap();
    assert!(store.session_by_id(s2).await.unwrap().is_none());
}

#[tokio::test]
async fn camera_statuses_are_stored_together_and_skip_removed_cameras() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let mut ids = Vec::new();
    for name in ["porch", "drive", "yard"] {
        let cam = store
            .create_camera(
                &NewCamera {
                    name: name.into(),
                    main_url: format!("rtsp://127.0.0.1:1/{name}"),
                    ..Default::default()
                },
                t(1_700_000_000),
            )
            .await
            .unwrap();
        ids.push(cam.id);
    }
    let row = |fps: f64, err: Option<&str>| CameraStatusRow {
        connected: err.is_none(),
        fps,
        bitrate_bps: fps * 1000.0,
        last_error: err.map(str::to_owned),
        updated_at: t(1_700_000_100),
    };
    let (a, b, c) = (row(25.0, None), row(0.0, Some("refused")), row(15.0, None));
    let gone = ids.iter().max().unwrap() + 100; // no such camera
    store
        .put_camera_statuses(&[(ids[0], &a), (ids[1], &b), (gone, &a)], &[(ids[2], &c)])
        .await
        .unwrap();
    assert_eq!(store.camera_status(ids[0]).await.unwrap(), Some(a.clone()));
    assert_eq!(store.camera_status(ids[1]).await.unwrap(), Some(b.clone()));
    assert_eq!(
        store.camera_status(ids[2]).await.unwrap(),
        None,
        "only a sub-stream row"
    );
    assert_eq!(
        store.camera_sub_status(ids[2]).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(store.camera_status(gone).await.unwrap(), None);
    // A second publish replaces the rows.
    store
        .put_camera_statuses(&[(ids[1], &a)], &[])
        .await
        .unwrap();
    assert_eq!(store.camera_status(ids[1]).await.unwrap(), Some(a));
    assert_eq!(
        store.camera_status(ids[0]).await.unwrap().unwrap().fps,
        25.0
    );
}
