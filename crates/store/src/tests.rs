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

#[tokio::test]
async fn session_ids_are_never_handed_out_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let u = store
        .create_user(
            NewUser {
                username: "dora",
                role: Role::Neighbor,
                password_hash: "h",
                keys: None,
            },
            t(0),
        )
        .await
        .unwrap();
    let mk = |hash: &'static [u8]| NewSession {
        token_hash: hash,
        user_id: u.id,
        stage: SessionStage::Full,
        csrf_token: "c",
        now: t(10),
        expires_at: t(1000),
        client_addr: "127.0.0.1",
        user_agent: "test",
    };
    let first = store.create_session(mk(b"one")).await.unwrap();
    assert!(store.delete_session(first).await.unwrap());
    // The newest session is gone; its id must not come back.
    let second = store.create_session(mk(b"two")).await.unwrap();
    assert!(second > first, "{second} after {first}");
}

/// A data folder as the release before migration 10 left it: ids that
/// were handed out and ended (the audit log names them) stay used up.
#[tokio::test]
async fn the_upgrade_keeps_live_sessions_and_never_reuses_an_audited_id() {
    use sqlx::sqlite::SqliteConnectOptions;
    let dir = tempfile::tempdir().unwrap();
    {
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join(DB_FILE))
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        sqlx::query(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
             checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        for m in MIGRATIONS.iter().filter(|m| m.version < 10) {
            sqlx::raw_sql(m.sql).execute(&pool).await.unwrap();
            sqlx::query("INSERT INTO schema_migrations VALUES (?, ?, ?, 0)")
                .bind(m.version)
                .bind(m.name)
                .bind(crate::migrate::checksum(m.sql))
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::raw_sql(
            "INSERT INTO users (id, username, role, password_hash, created_at) VALUES (1, 'eve', 'neighbor', 'h', 0);
             INSERT INTO sessions (id, token_hash, user_id, stage, csrf_token, created_at, last_seen_at, expires_at, client_addr, user_agent)
                VALUES (3, x'03', 1, 'full', 'c', 0, 0, 9999999999999, '127.0.0.1', 't');
             INSERT INTO login_throttle VALUES ('account', 'eve', 2, 5, 5);
             INSERT INTO audit_log (seq, at, actor, action, target, detail, client, prev_hash, hash)
                VALUES (1, 0, 'eve', 'auth.sign_in', 'eve', '{\"session\":7,\"stage\":\"full\"}', 'x', x'00', x'00');",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(
        store.migration_status().await.unwrap(),
        MigrationStatus::Current {
            version: MIGRATIONS.last().unwrap().version
        }
    );
    let live = store.session_by_id(3).await.unwrap().expect("kept");
    assert_eq!(live.token_hash, vec![3u8]);
    assert_eq!(
        store
            .throttle_get(ThrottleScope::Account, "eve")
            .await
            .unwrap()
            .map(|r| r.failures),
        Some(2),
        "throttle counters survive"
    );
    let id = store
        .create_session(NewSession {
            token_hash: b"new",
            user_id: 1,
            stage: SessionStage::Full,
            csrf_token: "c",
            now: t(10),
            expires_at: t(1000),
            client_addr: "127.0.0.1",
            user_agent: "test",
        })
        .await
        .unwrap();
    assert_eq!(id, 8, "past session 7, which the audit log shows was used");
    // The new throttle scopes are accepted.
    let row = ThrottleRow {
        failures: 1,
        last_failure_at: t(1),
        locked_until: t(1),
    };
    store
        .throttle_put(ThrottleScope::CodeAccount, "eve", row)
        .await
        .unwrap();
    store
        .throttle_put(ThrottleScope::CodeAddress, "10.0.0.1", row)
        .await
        .unwrap();
}

/// Every change that can change a camera's recipients bumps the counter the
/// recorder polls, through whichever handle (process) it comes; changes
/// that cannot, do not (design/keys.md).
#[tokio::test]
async fn recipient_changes_count_every_grant_and_account_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let other = Store::open(dir.path()).await.unwrap(); // as the CLI would
    let keys = |r: &str| UserKeys {
        recipient: r.into(),
        by_password: vec![1],
        by_recovery: vec![2],
    };
    let n0 = store.recipient_changes().await.unwrap();
    let cam = store
        .create_camera(
            &NewCamera {
                name: "porch".into(),
                main_url: "rtsp://x/".into(),
                ..Default::default()
            },
            t(0),
        )
        .await
        .unwrap();
    assert_eq!(
        store.recipient_changes().await.unwrap(),
        n0,
        "a camera alone changes nobody's keys"
    );
    let sam = other
        .create_user(
            NewUser {
                username: "sam",
                role: Role::Member,
                password_hash: "h",
                keys: Some(keys("age1sam")),
            },
            t(0),
        )
        .await
        .unwrap();
    let mut n = store.recipient_changes().await.unwrap();
    assert!(n > n0, "a new account");
    let mut bumped = |what: &str, now: i64, expect: bool| {
        assert_eq!(now > n, expect, "{what}");
        n = now;
    };
    other.grant_camera(cam.id, sam.id, true).await.unwrap();
    bumped("grant", store.recipient_changes().await.unwrap(), true);
    other.grant_camera(cam.id, sam.id, true).await.unwrap();
    bumped(
        "the same grant again",
        store.recipient_changes().await.unwrap(),
        false,
    );
    other.set_disabled(sam.id, true).await.unwrap();
    bumped("disable", store.recipient_changes().await.unwrap(), true);
    other.set_disabled(sam.id, false).await.unwrap();
    bumped("enable", store.recipient_changes().await.unwrap(), true);
    other.set_role(sam.id, Role::Owner).await.unwrap();
    bumped("role", store.recipient_changes().await.unwrap(), true);
    other.set_password(sam.id, "h2", None, false).await.unwrap();
    bumped(
        "password only",
        store.recipient_changes().await.unwrap(),
        false,
    );
    other
        .set_password(sam.id, "h2", Some(&keys("age1sam")), false)
        .await
        .unwrap();
    bumped(
        "the same key re-wrapped",
        store.recipient_changes().await.unwrap(),
        false,
    );
    other
        .set_password(sam.id, "h3", Some(&keys("age1new")), false)
        .await
        .unwrap();
    bumped("a new key", store.recipient_changes().await.unwrap(), true);
    other.grant_camera(cam.id, sam.id, false).await.unwrap();
    bumped("revoke", store.recipient_changes().await.unwrap(), true);
    sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(sam.id)
        .execute(&other.pool)
        .await
        .unwrap();
    bumped("removal", store.recipient_changes().await.unwrap(), true);
}
