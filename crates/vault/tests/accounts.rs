//! Accounts end to end against a real store in a temporary folder, with a
//! manual clock so lockouts and expiry are tested without sleeping.

use std::sync::Arc;
use std::time::Duration;

use porchlight_base::ManualClock;
use porchlight_store::{Role, SessionStage, Store};
use porchlight_vault::accounts::{human_wait, Policy, Vault};
use porchlight_vault::keys::KdfParams;
use porchlight_vault::{totp, Actor, AuthError};

const PW: &str = "correct horse battery staple";

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    vault: Vault,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let policy = Policy {
        kdf: KdfParams::insecure_for_tests(),
        ..Policy::default()
    };
    let vault = Vault::new(store, clock.clone(), policy);
    Fixture { dir, clock, vault }
}

fn secret_of(enrol_b32: &str) -> Vec<u8> {
    data_encoding::BASE32_NOPAD
        .decode(enrol_b32.as_bytes())
        .unwrap()
}

impl Fixture {
    fn code_now(&self, secret: &[u8]) -> String {
        let now = self.vault.now().as_second();
        totp::code_for_step(secret, totp::step_at(now), 6)
    }

    /// Creates `name` with TOTP enrolled; returns the TOTP secret.
    async fn user_with_totp(&self, name: &str, role: Role) -> Vec<u8> {
        self.vault
            .create_user(name, role, PW, &Actor::cli())
            .await
            .unwrap();
        let s = self
            .vault
            .sign_in(name, PW, "10.0.0.1", "test")
            .await
            .unwrap();
        let e = self.vault.begin_totp(&s.session).await.unwrap();
        let secret = secret_of(&e.secret_base32);
        self.vault
            .confirm_totp(&s.session, &self.code_now(&secret))
            .await
            .unwrap();
        self.vault.sign_out(&s.session).await.unwrap();
        // Move past the step used for enrolment.
        self.clock.advance(Duration::from_secs(30));
        secret
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let f = fixture().await;
    f.vault
        .create_user("alice", Role::Member, PW, &Actor::cli())
        .await
        .unwrap();
    let wrong = f
        .vault
        .sign_in("alice", "not the password", "1.2.3.4", "t")
        .await
        .err()
        .unwrap();
    let unknown = f
        .vault
        .sign_in("nobody", PW, "1.2.3.4", "t")
        .await
        .err()
        .unwrap();
    assert!(matches!(wrong, AuthError::BadCredentials));
    assert_eq!(wrong.to_string(), unknown.to_string());
    let ok = f.vault.sign_in("ALICE", PW, "1.2.3.4", "t").await.unwrap();
    assert_eq!(ok.session.stage, SessionStage::Full);
    assert!(
        f.vault.unlocked_key(&ok.session).is_some(),
        "members get their key at sign-in"
    );
}

#[tokio::test]
async fn account_lockout_grows_and_expires() {
    let f = fixture().await;
    f.vault
        .create_user("bob", Role::Neighbor, PW, &Actor::cli())
        .await
        .unwrap();
    for _ in 0..4 {
        assert!(matches!(
            f.vault.sign_in("bob", "wrong-wrong", "1.1.1.1", "t").await,
            Err(AuthError::BadCredentials)
        ));
    }
    // The fifth failure starts a 30 s lockout.
    assert!(matches!(
        f.vault.sign_in("bob", "wrong-wrong", "1.1.1.2", "t").await,
        Err(AuthError::BadCredentials)
    ));
    let locked = f
        .vault
        .sign_in("bob", PW, "1.1.1.3", "t")
        .await
        .err()
        .unwrap();
    match &locked {
        AuthError::Locked { retry_after, .. } => assert_eq!(*retry_after, Duration::from_secs(30)),
        e => panic!("expected lockout, got {e}"),
    }
    assert!(
        locked.to_string().contains("try again in 30 seconds"),
        "{locked}"
    );
    // Even the right password is refused while locked…
    f.clock.advance(Duration::from_secs(29));
    assert!(matches!(
        f.vault.sign_in("bob", PW, "1.1.1.3", "t").await,
        Err(AuthError::Locked { .. })
    ));
    // …and one more failure after expiry doubles the delay.
    f.clock.advance(Duration::from_secs(1));
    assert!(matches!(
        f.vault.sign_in("bob", "wrong-wrong", "1.1.1.3", "t").await,
        Err(AuthError::BadCredentials)
    ));
    match f.vault.sign_in("bob", PW, "1.1.1.3", "t").await {
        Err(AuthError::Locked { retry_after, .. }) => {
            assert_eq!(retry_after, Duration::from_secs(60))
        }
        other => panic!("expected a 60 s lockout, got {:?}", other.err()),
    }
    f.clock.advance(Duration::from_secs(60));
    f.vault
        .sign_in("bob", PW, "1.1.1.3", "t")
        .await
        .expect("lockout expired");
    // Success resets the account's count.
    assert!(matches!(
        f.vault.sign_in("bob", "wrong-wrong", "1.1.1.3", "t").await,
        Err(AuthError::BadCredentials)
    ));
    f.vault
        .sign_in("bob", PW, "1.1.1.3", "t")
        .await
        .expect("one failure after a reset is free");
}

#[tokio::test]
async fn address_lockout_spans_accounts() {
    let f = fixture().await;
    // Password stuffing: one address, many names.
    for i in 0..20 {
        let r = f
            .vault
            .sign_in(&format!("user{i}"), "guess-guess", "6.6.6.6", "t")
            .await;
        assert!(matches!(r, Err(AuthError::BadCredentials)), "attempt {i}");
    }
    let e = f
        .vault
        .sign_in("user99", "guess-guess", "6.6.6.6", "t")
        .await
        .err()
        .unwrap();
    assert!(matches!(e, AuthError::Locked { .. }));
    assert!(e.to_string().contains("from this network address"), "{e}");
    // Another address is unaffected.
    assert!(matches!(
        f.vault
            .sign_in("user99", "guess-guess", "7.7.7.7", "t")
            .await,
        Err(AuthError::BadCredentials)
    ));
}

#[tokio::test]
async fn totp_accept_reject_replay() {
    let f = fixture().await;
    let secret = f.user_with_totp("carol", Role::Member).await;
    let s = f.vault.sign_in("carol", PW, "1.2.3.4", "t").await.unwrap();
    assert_eq!(s.session.stage, SessionStage::Totp);
    assert!(
        f.vault.unlocked_key(&s.session).is_none(),
        "no key before the second factor"
    );
    assert_eq!(
        f.vault.keyring().len(),
        0,
        "not even held back: nothing is unwrapped at the password step"
    );
    // Wrong code.
    assert!(matches!(
        f.vault
            .second_factor(&s.session, &s.token, "000000", "1.2.3.4")
            .await,
        Err(AuthError::BadSecondFactor)
    ));
    // Right code.
    let code = f.code_now(&secret);
    let full = f
        .vault
        .second_factor(&s.session, &s.token, &code, "1.2.3.4")
        .await
        .unwrap();
    assert_eq!(full.stage, SessionStage::Full);
    assert!(f.vault.unlocked_key(&full).is_some());
    // The same code again, in a new sign-in within the same 30 s: replay.
    let s2 = f.vault.sign_in("carol", PW, "1.2.3.4", "t").await.unwrap();
    assert!(matches!(
        f.vault
            .second_factor(&s2.session, &s2.token, &code, "1.2.3.4")
            .await,
        Err(AuthError::BadSecondFactor)
    ));
    // An older code (previous step, still within skew) is also refused.
    let older = totp::code_for_step(&secret, totp::step_at(f.vault.now().as_second()) - 1, 6);
    assert!(matches!(
        f.vault
            .second_factor(&s2.session, &s2.token, &older, "1.2.3.4")
            .await,
        Err(AuthError::BadSecondFactor)
    ));
    // The next step's code works.
    f.clock.advance(Duration::from_secs(30));
    let row = f
        .vault
        .authenticate(&s2.token)
        .await
        .unwrap()
        .unwrap()
        .session;
    f.vault
        .second_factor(&row, &s2.token, &f.code_now(&secret), "1.2.3.4")
        .await
        .unwrap();
}

/// A code that is wrong at the vault's current time.
fn wrong_code(f: &Fixture, secret: &[u8]) -> String {
    let step = totp::step_at(f.vault.now().as_second());
    let near: Vec<String> = (step - 1..=step + 1)
        .map(|s| totp::code_for_step(secret, s, 6))
        .collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap()
}

#[tokio::test]
async fn wrong_codes_count_per_address_across_accounts() {
    let f = fixture().await;
    let mut secrets = Vec::new();
    for i in 0..5 {
        secrets.push(f.user_with_totp(&format!("t{i}"), Role::Member).await);
    }
    // 40 wrong codes from one address (4 × an account's 10), spread so
    // that no account reaches its own limit.
    for (i, secret) in secrets.iter().enumerate() {
        for _ in 0..8 {
            let s = f
                .vault
                .sign_in(&format!("t{i}"), PW, "6.6.6.6", "t")
                .await
                .unwrap();
            assert!(matches!(
                f.vault
                    .second_factor(&s.session, &s.token, &wrong_code(&f, secret), "6.6.6.6")
                    .await,
                Err(AuthError::BadSecondFactor)
            ));
        }
    }
    let s = f.vault.sign_in("t0", PW, "6.6.6.6", "t").await.unwrap();
    let e = f
        .vault
        .second_factor(&s.session, &s.token, &f.code_now(&secrets[0]), "6.6.6.6")
        .await
        .err()
        .unwrap();
    assert!(matches!(e, AuthError::Locked { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("wrong codes from this network address"),
        "{e}"
    );
    assert_eq!(f.vault.keyring().len(), 0);
    // The same account from another address is fine.
    let s = f.vault.sign_in("t0", PW, "7.7.7.7", "t").await.unwrap();
    f.vault
        .second_factor(&s.session, &s.token, &f.code_now(&secrets[0]), "7.7.7.7")
        .await
        .unwrap();
}

#[tokio::test]
async fn recovery_codes_are_single_use() {
    let f = fixture().await;
    f.vault
        .create_user("dave", Role::Member, PW, &Actor::cli())
        .await
        .unwrap();
    let s = f.vault.sign_in("dave", PW, "1.2.3.4", "t").await.unwrap();
    let e = f.vault.begin_totp(&s.session).await.unwrap();
    let codes = f
        .vault
        .confirm_totp(&s.session, &f.code_now(&secret_of(&e.secret_base32)))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    let code = codes[3].to_lowercase(); // typed sloppily
    let p1 = f.vault.sign_in("dave", PW, "1.2.3.4", "t").await.unwrap();
    f.vault
        .second_factor(&p1.session, &p1.token, &code, "1.2.3.4")
        .await
        .expect("first use works");
    let p2 = f.vault.sign_in("dave", PW, "1.2.3.4", "t").await.unwrap();
    assert!(matches!(
        f.vault
            .second_factor(&p2.session, &p2.token, &code, "1.2.3.4")
            .await,
        Err(AuthError::BadSecondFactor)
    ));
    assert_eq!(
        f.vault
            .store()
            .recovery_codes_left(p2.session.user_id)
            .await
            .unwrap(),
        9
    );
}

#[tokio::test]
async fn owners_must_enrol_before_anything_else() {
    let f = fixture().await;
    f.vault
        .create_user("olivia", Role::Owner, PW, &Actor::cli())
        .await
        .unwrap();
    let s = f.vault.sign_in("olivia", PW, "1.2.3.4", "t").await.unwrap();
    assert_eq!(s.session.stage, SessionStage::Enroll);
    assert!(f.vault.unlocked_key(&s.session).is_none());
    let e = f.vault.begin_totp(&s.session).await.unwrap();
    assert!(e.otpauth_uri.contains(&e.secret_base32));
    let secret = secret_of(&e.secret_base32);
    let step = totp::step_at(f.vault.now().as_second());
    let near: Vec<String> = (step - 1..=step + 1)
        .map(|s| totp::code_for_step(&secret, s, 6))
        .collect();
    let wrong = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap();
    assert!(matches!(
        f.vault.confirm_totp(&s.session, &wrong).await,
        Err(AuthError::BadSecondFactor)
    ));
    f.vault
        .confirm_totp(&s.session, &f.code_now(&secret_of(&e.secret_base32)))
        .await
        .unwrap();
    let now = f
        .vault
        .authenticate(&s.token)
        .await
        .unwrap()
        .unwrap()
        .session;
    assert_eq!(now.stage, SessionStage::Full);
    assert!(f.vault.unlocked_key(&now).is_some());
}

#[tokio::test]
async fn revoke_takes_effect_at_once_and_forgets_the_key() {
    let f = fixture().await;
    f.vault
        .create_user("erin", Role::Member, PW, &Actor::cli())
        .await
        .unwrap();
    let phone = f
        .vault
        .sign_in("erin", PW, "1.2.3.4", "phone")
        .await
        .unwrap();
    let laptop = f
        .vault
        .sign_in("erin", PW, "1.2.3.5", "laptop")
        .await
        .unwrap();
    assert_eq!(
        f.vault
            .sessions_of(phone.session.user_id)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(f.vault.keyring().len(), 2);
    f.vault
        .revoke_session(laptop.session.user_id, phone.session.id, &Actor::cli())
        .await
        .unwrap();
    assert!(f.vault.authenticate(&phone.token).await.unwrap().is_none());
    assert!(f.vault.authenticate(&laptop.token).await.unwrap().is_some());
    assert_eq!(f.vault.keyring().len(), 1);
    // Someone else's session cannot be revoked.
    f.vault
        .create_user("frank", Role::Member, PW, &Actor::cli())
        .await
        .unwrap();
    let frank = f.vault.sign_in("frank", PW, "1.2.3.6", "t").await.unwrap();
    assert!(f
        .vault
        .revoke_session(frank.session.user_id, laptop.session.id, &Actor::cli())
        .await
        .is_err());
    assert!(f.vault.authenticate(&laptop.token).await.unwrap().is_some());
}

#[tokio::test]
async fn sessions_expire_when_idle_or_old_and_disabled_users_are_out() {
    let f = fixture().await;
    f.vault
        .create_user("gina", Role::Member, PW, &Actor::cli())
        .await
        .unwrap();
    let s = f.vault.sign_in("gina", PW, "1.2.3.4", "t").await.unwrap();
    f.clock.advance(Duration::from_secs(11 * 3600));
    assert!(
        f.vault.authenticate(&s.token).await.unwrap().is_some(),
        "used within the idle limit"
    );
    f.clock.advance(Duration::from_secs(12 * 3600 + 1));
    assert!(
        f.vault.authenticate(&s.token).await.unwrap().is_none(),
        "idle too long"
    );
    assert_eq!(f.vault.keyring().len(), 0, "the key went with the session");

    let s = f.vault.sign_in("gina", PW, "1.2.3.4", "t").await.unwrap();
    f.vault
        .set_disabled("gina", true, &Actor::cli())
        .await
        .unwrap();
    assert!(f.vault.authenticate(&s.token).await.unwrap().is_none());
    assert!(matches!(
        f.vault.sign_in("gina", PW, "1.2.3.4", "t").await,
        Err(AuthError::Disabled)
    ));
    assert_eq!(f.vault.keyring().len(), 0);
}

#[tokio::test]
async fn tampered_tokens_are_rejected() {
    let f = fixture().await;
    f.vault
        .create_user("hank", Role::Neighbor, PW, &Actor::cli())
        .await
        .unwrap();
    let s = f.vault.sign_in("hank", PW, "1.2.3.4", "t").await.unwrap();
    let mut t = s.token.to_string();
    let last = t.pop().unwrap();
    t.push(if last == 'A' { 'B' } else { 'A' });
    assert!(f.vault.authenticate(&t).await.unwrap().is_none());
    assert!(f.vault.authenticate("").await.unwrap().is_none());
    assert!(f
        .vault
        .authenticate(&"x".repeat(10_000))
        .await
        .unwrap()
        .is_none());
    assert!(f.vault.authenticate(&s.token).await.unwrap().is_some());
}

#[tokio::test]
async fn password_change_rewraps_the_same_key() {
    let f = fixture().await;
    f.vault
        .create_user("ivy", Role::Member, PW, &Actor::cli())
        .await
        .unwrap();
    let before = f.vault.user("ivy").await.unwrap().keys.unwrap();
    let s = f.vault.sign_in("ivy", PW, "1.2.3.4", "t").await.unwrap();
    assert!(matches!(
        f.vault
            .change_password(
                "ivy",
                "not my password",
                "a new long password",
                &Actor::cli()
            )
            .await,
        Err(AuthError::BadCredentials)
    ));
    f.vault
        .change_password("ivy", PW, "a new long password", &Actor::cli())
        .await
        .unwrap();
    let after = f.vault.user("ivy").await.unwrap().keys.unwrap();
    assert_eq!(
        before.recipient, after.recipient,
        "same key, so old recordings still open"
    );
    assert_ne!(before.by_password, after.by_password);
    assert!(
        f.vault.authenticate(&s.token).await.unwrap().is_none(),
        "other sessions end"
    );
    assert!(matches!(
        f.vault.sign_in("ivy", PW, "1.2.3.4", "t").await,
        Err(AuthError::BadCredentials)
    ));
    let s = f
        .vault
        .sign_in("ivy", "a new long password", "1.2.3.4", "t")
        .await
        .unwrap();
    let key = f.vault.unlocked_key(&s.session).unwrap();
    assert_eq!(key.recipient_string(), before.recipient);
}

#[tokio::test]
async fn recovery_code_restores_the_key_and_rotates() {
    let f = fixture().await;
    let created = f
        .vault
        .create_user("jack", Role::Owner, PW, &Actor::cli())
        .await
        .unwrap();
    let code = created.recovery_code.unwrap();
    let recipient = created.user.keys.unwrap().recipient;
    assert!(matches!(
        f.vault
            .recover_key(
                "jack",
                "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF",
                "a fresh password",
                &Actor::cli()
            )
            .await,
        Err(AuthError::BadRecoveryCode)
    ));
    let new_code = f
        .vault
        .recover_key("jack", &code, "a fresh password", &Actor::cli())
        .await
        .unwrap();
    assert_ne!(*new_code, *code);
    // The old code no longer works; the new one does.
    assert!(f
        .vault
        .recover_key("jack", &code, "another password", &Actor::cli())
        .await
        .is_err());
    let s = f
        .vault
        .sign_in("jack", "a fresh password", "1.2.3.4", "t")
        .await
        .unwrap();
    // Owner without TOTP: enrol stage, key held back until enrolled.
    assert_eq!(s.session.stage, SessionStage::Enroll);
    let e = f.vault.begin_totp(&s.session).await.unwrap();
    f.vault
        .confirm_totp(&s.session, &f.code_now(&secret_of(&e.secret_base32)))
        .await
        .unwrap();
    let s = f
        .vault
        .authenticate(&s.token)
        .await
        .unwrap()
        .unwrap()
        .session;
    assert_eq!(
        f.vault.unlocked_key(&s).unwrap().recipient_string(),
        recipient
    );
    f.vault
        .recover_key("jack", &new_code, "another password", &Actor::cli())
        .await
        .unwrap();
}

#[tokio::test]
async fn reset_without_old_password_makes_a_new_key() {
    let f = fixture().await;
    let created = f
        .vault
        .create_user("kim", Role::Member, PW, &Actor::cli())
        .await
        .unwrap();
    let old = created.user.keys.unwrap().recipient;
    let code = f
        .vault
        .reset_password("kim", "brand new password", &Actor::cli())
        .await
        .unwrap();
    assert!(code.is_some());
    assert_ne!(
        f.vault.user("kim").await.unwrap().keys.unwrap().recipient,
        old
    );
}

/// Every file under `dir`, in every subfolder.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// A member's private key in the forms a careless implementation could
/// leave on disk: age's text (any case) and the raw 32-byte X25519 scalar
/// (also hex-encoded).
struct Secret {
    text: String,
    raw: [u8; 32],
}

/// Where under `dir` any of `secrets`, or any `AGE-SECRET-KEY-1` text at
/// all, is found: one line per finding.
fn key_material_under(dir: &std::path::Path, secrets: &[Secret]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap();
        let upper = bytes.to_ascii_uppercase();
        let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        if has(&upper, b"AGE-SECRET-KEY-1") {
            found.push(format!("{}: an age secret key in text", f.display()));
        }
        for (i, s) in secrets.iter().enumerate() {
            if has(&upper, s.text.to_ascii_uppercase().as_bytes()) {
                found.push(format!("{}: key {i} in text", f.display()));
            }
            if has(&bytes, &s.raw) {
                found.push(format!("{}: key {i} raw", f.display()));
            }
            if has(&upper, hex::encode_upper(s.raw).as_bytes()) {
                found.push(format!("{}: key {i} in hex", f.display()));
            }
        }
    }
    found
}

/// Three members signed in (their keys unlocked, as in a running hub), a
/// snapshot sealed to them in a subfolder; the store closed so SQLite's
/// files are as a stolen disk would show them. Returns the folder's
/// fixture and the members' secrets.
async fn folder_with_unlocked_keys() -> (Fixture, Vec<Secret>) {
    let f = fixture().await;
    let mut secrets = Vec::new();
    let mut recipients = Vec::new();
    for (i, role) in [Role::Owner, Role::Member, Role::Member]
        .into_iter()
        .enumerate()
    {
        let name = format!("u{i}");
        f.vault
            .create_user(&name, role, PW, &Actor::cli())
            .await
            .unwrap();
        let s = f.vault.sign_in(&name, PW, "1.2.3.4", "t").await.unwrap();
        if role == Role::Owner {
            let e = f.vault.begin_totp(&s.session).await.unwrap();
            f.vault
                .confirm_totp(&s.session, &f.code_now(&secret_of(&e.secret_base32)))
                .await
                .unwrap();
        }
        let s = f
            .vault
            .authenticate(&s.token)
            .await
            .unwrap()
            .unwrap()
            .session;
        let key = f.vault.unlocked_key(&s).unwrap();
        use age::secrecy::ExposeSecret;
        let text = key.identity().to_string().expose_secret().to_string();
        assert!(text.starts_with("AGE-SECRET-KEY-1"));
        secrets.push(Secret {
            text,
            raw: *key.secret_scalar(),
        });
        recipients.push(key.recipient());
    }
    // Something in a subfolder, as the hub's snapshots and recordings are.
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.extend(std::iter::repeat_n(0x55, 4096));
    let rel =
        porchlight_vault::snapshot::relative_path(1, 1, porchlight_vault::snapshot::Kind::Full);
    porchlight_vault::snapshot::write(f.dir.path(), &rel, &jpeg, &recipients).unwrap();
    // Let SQLite write everything out (WAL included) as a stolen disk would show it.
    f.vault.store().clone().close().await;
    (f, secrets)
}

#[tokio::test]
async fn data_folder_holds_no_private_key_in_clear() {
    let (f, secrets) = folder_with_unlocked_keys().await;
    let files = files_under(f.dir.path());
    let total: u64 = files.iter().map(|p| p.metadata().unwrap().len()).sum();
    assert!(total > 4096, "scanned the real files");
    assert!(
        files.iter().any(|p| p.ends_with("snapshots/1/1.jpg.age")),
        "the scan reaches subfolders: {files:?}"
    );
    assert_eq!(
        key_material_under(f.dir.path(), &secrets),
        Vec::<String>::new()
    );
    // The public halves are there (they are meant to be).
    let all: Vec<u8> = files
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(String::from_utf8_lossy(&all).contains("age1"));
}

/// The scan above can fail: a raw key deep in a subfolder, a key's text in
/// lower case elsewhere, are both found.
#[tokio::test]
async fn the_key_scan_finds_raw_and_text_keys_in_subfolders() {
    let (f, secrets) = folder_with_unlocked_keys().await;
    let deep = f.dir.path().join("recordings/7");
    std::fs::create_dir_all(&deep).unwrap();
    let mut planted = vec![0u8; 1000];
    planted.extend_from_slice(&secrets[1].raw);
    planted.extend_from_slice(&[0u8; 1000]);
    std::fs::write(deep.join("main-1.seg"), &planted).unwrap();
    let found = key_material_under(f.dir.path(), &secrets);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("recordings/7/main-1.seg: key 1 raw"),
        "{found:?}"
    );

    std::fs::remove_file(deep.join("main-1.seg")).unwrap();
    std::fs::write(
        f.dir.path().join("snapshots/1/stray"),
        secrets[2].text.to_lowercase(),
    )
    .unwrap();
    let found = key_material_under(f.dir.path(), &secrets);
    assert!(
        found
            .iter()
            .any(|l| l.contains("snapshots/1/stray: key 2 in text")),
        "{found:?}"
    );
}

#[tokio::test]
async fn every_sign_in_step_is_audited_and_the_chain_holds() {
    let f = fixture().await;
    f.vault
        .create_user("lee", Role::Member, PW, &Actor::cli())
        .await
        .unwrap();
    let _ = f.vault.sign_in("lee", "wrong-wrong", "1.2.3.4", "t").await;
    let s = f.vault.sign_in("lee", PW, "1.2.3.4", "t").await.unwrap();
    f.vault.sign_out(&s.session).await.unwrap();
    let actions: Vec<String> = f
        .vault
        .store()
        .audit_entries(None, 100)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "auth.sign_in_failed",
            "key.unwrap",
            "auth.sign_in",
            "auth.sign_out"
        ]
    );
    assert_eq!(f.vault.store().verify_audit_chain().await.unwrap().1, None);
}

#[test]
fn waits_read_well() {
    assert_eq!(human_wait(Duration::from_secs(1)), "1 second");
    assert_eq!(human_wait(Duration::from_secs(45)), "45 seconds");
    assert_eq!(human_wait(Duration::from_secs(120)), "2 minutes");
    assert_eq!(human_wait(Duration::from_secs(3600)), "60 minutes");
    assert_eq!(human_wait(Duration::from_secs(7200)), "2 hours");
}
