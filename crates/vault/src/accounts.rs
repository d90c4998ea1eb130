//! Accounts: creating users, signing in (password, throttling, second
//! factor), sessions, and the household key each hub user unlocks by
//! signing in.
//!
//! The [`Vault`] is the one place that decides who someone is. Web handlers
//! and CLI commands call it; none of them compares passwords or reads
//! session rows themselves.
//!
//! Sign-in, step by step:
//!
//! 1. Both password throttles are consulted — the account's and the client
//!    address's. While either is locked the password is not even checked.
//! 2. The password is verified with Argon2id (a decoy hash is verified for
//!    unknown names, so timing does not reveal which names exist). A wrong
//!    one counts against the account and the address.
//! 3. Without a second factor (or for an owner who must still enrol one,
//!    stage `enroll`) the sign-in is complete: the account's password
//!    counter is cleared, and a hub user's household key is unwrapped with
//!    the password and held in memory ([`Keyring`]).
//! 4. With a second factor the session starts at stage `totp` and holds no
//!    key and clears no counter. The password is kept only for the code
//!    step: in memory, sealed under a key derived from the session token
//!    (which the hub does not keep; only the client presents it), for at
//!    most `pending_max`.
//! 5. [`Vault::second_factor`] consults the code throttles (account and
//!    address, [`ThrottleScope::CodeAccount`] / [`ThrottleScope::CodeAddress`]);
//!    while either is locked even a right code is refused. A wrong code
//!    counts against both. A right code unseals the password, unwraps the
//!    key, makes the session `full`, and only then clears the account's
//!    password and code counters.
//!
//! Invariants:
//!
//! * An unlocked key exists in memory only for a `full` (or `enroll`)
//!   session, never for a half-finished sign-in.
//! * The [`Keyring`] files keys under the session's token hash and checks
//!   the user id on every lookup, so no session id — reused, renumbered or
//!   forged — can reach another sign-in's key. Whatever is derived from a
//!   key (a playback plan that decrypts with it) is kept in the same entry
//!   ([`Vault::session_cache_put`]) and is dropped with the key, the moment
//!   the session ends.
//! * Counters are cleared only by a complete sign-in (or `user unlock`),
//!   never by the password step alone.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use porchlight_base::{secret, SharedClock, Timestamp};
use porchlight_store::{
    NewAuditEntry, NewSession, NewUser, Role, SessionRow, SessionStage, Store, StoreError,
    ThrottleRow, ThrottleScope, User, UserKeys,
};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::keys::{self, KdfParams, MemberKey};
use crate::{password, totp};

/// Tunable policy, filled from the config file.
#[derive(Debug, Clone)]
pub struct Policy {
    /// A session unused for this long ends.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub session_max: Duration,
    /// A half-finished sign-in (waiting for the code) lasts this long.
    pub pending_max: Duration,
    /// Failed sign-ins allowed per account before delays start.
    pub free_attempts: u32,
    /// First lockout; each further failure doubles it…
    pub lockout_base: Duration,
    /// …up to this.
    pub lockout_max: Duration,
    /// Argon2id cost for password hashes and key wrapping.
    pub kdf: KdfParams,
    /// Owners cannot use the hub until they enrol a second factor.
    pub require_totp_for_owners: bool,
    /// Wrong second-factor codes allowed per account before it locks (per
    /// client address: four times as many).
    pub code_free_attempts: u32,
    /// How long each wrong code past the allowance locks the account's
    /// code step. With the defaults (10, 1 h): at most 10 wrong codes in
    /// any hour, then one an hour.
    pub code_lockout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            session_idle: Duration::from_secs(12 * 3600),
            session_max: Duration::from_secs(30 * 86400),
            pending_max: Duration::from_secs(300),
            free_attempts: 5,
            lockout_base: Duration::from_secs(30),
            lockout_max: Duration::from_secs(3600),
            kdf: KdfParams::default(),
            require_totp_for_owners: true,
            code_free_attempts: 10,
            code_lockout: Duration::from_secs(3600),
        }
    }
}

/// Per client address, this many times the per-account allowance: a
/// household behind one NAT shares an address.
const ADDRESS_ALLOWANCE_FACTOR: i64 = 4;
/// A throttle whose last failure is older than this starts afresh.
const THROTTLE_FORGET: Duration = Duration::from_secs(24 * 3600);
/// How many one-time second-factor recovery codes a user gets.
pub const RECOVERY_CODES: usize = 10;

/// Why an account operation was refused. The `Display` text is safe to
/// show to the person at the keyboard.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong username or password")]
    BadCredentials,
    #[error("{}", locked_message(*.scope, *.retry_after, *.until))]
    Locked {
        scope: ThrottleScope,
        retry_after: Duration,
        /// When the lock ends.
        until: Timestamp,
    },
    #[error("this account has two-factor sign-in: enter the current code from your authenticator app (or a recovery code) as well")]
    SecondFactorRequired,
    #[error("that code is not right (or was already used); use the current code from your authenticator app, or one of your recovery codes")]
    BadSecondFactor,
    #[error("your sign-in expired; sign in again")]
    SignInExpired,
    #[error("this account is disabled")]
    Disabled,
    #[error("no user named `{0}`")]
    NoSuchUser(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the recovery code does not unlock this account's key")]
    BadRecoveryCode,
    #[error("the account `{0}` has no household key (only owners and members have one)")]
    NoKey(String),
    #[error("the stored key of `{user}` cannot be read: {message}")]
    BrokenKey { user: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn locked_message(scope: ThrottleScope, retry_after: Duration, until: Timestamp) -> String {
    let what = if scope.is_code() {
        "too many wrong codes"
    } else {
        "too many failed sign-ins"
    };
    let whose = if scope.is_address() {
        "from this network address"
    } else {
        "for this account"
    };
    format!(
        "{what} {whose}; locked until {} (try again in {})",
        clock_time(until),
        human_wait(retry_after)
    )
}

/// `HH:MM` in the hub's time zone.
pub fn clock_time(t: Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%H:%M")
        .to_string()
}

/// "45 seconds", "3 minutes", "1 hour".
pub fn human_wait(d: Duration) -> String {
    let s = d.as_secs().max(1);
    let (n, unit) = if s < 90 {
        (s, "second")
    } else if s < 90 * 60 {
        (s.div_ceil(60), "minute")
    } else {
        (s.div_ceil(3600), "hour")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Who is acting, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub client: String,
}

impl Actor {
    /// The administrative command line on the hub's machine.
    pub fn cli() -> Actor {
        Actor {
            name: "cli".into(),
            client: "local".into(),
        }
    }
}

/// Household keys unlocked for live sessions, in memory only, and what
/// was derived from them. Dropping an entry zeroizes the key (see
/// [`MemberKey`]) and drops everything cached with it.
///
/// Filed under the session's token hash (unique to one sign-in for ever)
/// and checked against the user id on every lookup.
#[derive(Default)]
pub struct Keyring {
    keys: Mutex<HashMap<Vec<u8>, Unlocked>>,
}

struct Unlocked {
    user_id: i64,
    key: Arc<MemberKey>,
    /// Things built with `key` (playback plans), by name.
    derived: HashMap<String, Derived>,
}

struct Derived {
    expires: Instant,
    value: Arc<dyn Any + Send + Sync>,
}

/// Most cached items one session keeps; the oldest goes first.
const MAX_DERIVED: usize = 32;

impl Keyring {
    fn put(&self, token_hash: &[u8], user_id: i64, key: MemberKey) {
        self.keys.lock().unwrap().insert(
            token_hash.to_vec(),
            Unlocked {
                user_id,
                key: Arc::new(key),
                derived: HashMap::new(),
            },
        );
    }
    fn get(&self, token_hash: &[u8], user_id: i64) -> Option<Arc<MemberKey>> {
        let k = self.keys.lock().unwrap();
        k.get(token_hash)
            .filter(|u| u.user_id == user_id)
            .map(|u| u.key.clone())
    }
    fn remove(&self, token_hash: &[u8]) {
        self.keys.lock().unwrap().remove(token_hash);
    }
    /// Keeps only the keys of the given sessions (by token hash).
    fn retain(&self, live: &[Vec<u8>]) -> usize {
        let mut k = self.keys.lock().unwrap();
        let before = k.len();
        k.retain(|h, _| live.contains(h));
        before - k.len()
    }
    fn derived_get(
        &self,
        token_hash: &[u8],
        user_id: i64,
        name: &str,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let mut k = self.keys.lock().unwrap();
        let u = k.get_mut(token_hash).filter(|u| u.user_id == user_id)?;
        let now = Instant::now();
        u.derived.retain(|_, d| d.expires > now);
        u.derived.get(name).map(|d| d.value.clone())
    }
    fn derived_put(
        &self,
        token_hash: &[u8],
        user_id: i64,
        name: String,
        value: Arc<dyn Any + Send + Sync>,
        ttl: Duration,
    ) -> bool {
        let mut k = self.keys.lock().unwrap();
        let Some(u) = k.get_mut(token_hash).filter(|u| u.user_id == user_id) else {
            return false;
        };
        let now = Instant::now();
        u.derived.retain(|_, d| d.expires > now);
        while u.derived.len() >= MAX_DERIVED {
            let oldest = u
                .derived
                .iter()
                .min_by_key(|(_, d)| d.expires)
                .map(|(n, _)| n.clone())
                .expect("not empty");
            u.derived.remove(&oldest);
        }
        u.derived.insert(
            name,
            Derived {
                expires: now + ttl,
                value,
            },
        );
        true
    }
    /// Number of keys currently unlocked.
    pub fn len(&self) -> usize {
        self.keys.lock().unwrap().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of items cached with the unlocked keys, all sessions together.
    pub fn derived_len(&self) -> usize {
        self.keys
            .lock()
            .unwrap()
            .values()
            .map(|u| u.derived.len())
            .sum()
    }
}

/// Passwords of half-finished sign-ins (stage `totp`), each sealed under a
/// key derived from its session's token, which only the client holds: the
/// hub's memory alone cannot open them between the two steps. Filed under
/// the token hash; gone after the code step, sign-out, or `pending_max`.
#[derive(Default)]
struct Pending {
    map: Mutex<HashMap<Vec<u8>, PendingSignIn>>,
}

struct PendingSignIn {
    started: Timestamp,
    nonce: [u8; 24],
    sealed: Vec<u8>,
}

/// The key that seals a pending sign-in's password: a hash of the token
/// under its own label, so it is neither the stored token hash nor
/// derivable from it.
fn pending_key(token: &str) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(b"porchlight pending sign-in v1\0");
    h.update(token.as_bytes());
    Zeroizing::new(h.finalize().into())
}

impl Pending {
    fn seal(&self, token: &str, password: &str, now: Timestamp) {
        let key = pending_key(token);
        let nonce: [u8; 24] = secret::random_bytes();
        let sealed = XChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
            .encrypt(XNonce::from_slice(&nonce), password.as_bytes())
            .expect("XChaCha20-Poly1305 encryption of a bounded password cannot fail");
        self.map.lock().unwrap().insert(
            token_hash(token).to_vec(),
            PendingSignIn {
                started: now,
                nonce,
                sealed,
            },
        );
    }
    /// The password of the pending sign-in of `token`, if it is there and
    /// younger than `max_age`.
    fn open(&self, token: &str, now: Timestamp, max_age: Duration) -> Option<Zeroizing<String>> {
        let m = self.map.lock().unwrap();
        let p = m.get(token_hash(token).as_slice())?;
        if add(p.started, max_age) <= now {
            return None;
        }
        let key = pending_key(token);
        let plain = Zeroizing::new(
            XChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
                .decrypt(XNonce::from_slice(&p.nonce), p.sealed.as_slice())
                .ok()?,
        );
        std::str::from_utf8(&plain)
            .ok()
            .map(|s| Zeroizing::new(s.to_owned()))
    }
    fn remove(&self, token_hash: &[u8]) {
        self.map.lock().unwrap().remove(token_hash);
    }
    fn retain(&self, live: &[Vec<u8>], now: Timestamp, max_age: Duration) {
        self.map
            .lock()
            .unwrap()
            .retain(|h, p| live.contains(h) && add(p.started, max_age) > now);
    }
    fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }
}

/// A user just created, with the secret shown to them once.
pub struct CreatedUser {
    pub user: User,
    /// The key recovery code (hub roles only): shown once, never stored.
    pub recovery_code: Option<Zeroizing<String>>,
}

/// A started sign-in.
pub struct SignedIn {
    /// The opaque token for the cookie or `Authorization: Bearer`.
    pub token: Zeroizing<String>,
    pub session: SessionRow,
}

/// A second factor being set up.
pub struct TotpEnrollment {
    pub secret_base32: String,
    pub otpauth_uri: String,
}

/// What a request presents and what it learns.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub session: SessionRow,
}

/// Everything about identities: see the module docs.
pub struct Vault {
    store: Store,
    clock: SharedClock,
    policy: Policy,
    keyring: Keyring,
    pending: Pending,
    decoy: String,
}

/// SHA-256 of a token: what the store keeps.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn recovery_hash(code: &str) -> Vec<u8> {
    Sha256::digest(secret::normalize_human_code(code).as_bytes()).to_vec()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking task panicked")
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

fn sub(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_sub(jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(Timestamp::MIN)
}

impl Vault {
    pub fn new(store: Store, clock: SharedClock, policy: Policy) -> Vault {
        let decoy = password::decoy_hash(&policy.kdf);
        Vault {
            store,
            clock,
            policy,
            keyring: Keyring::default(),
            pending: Pending::default(),
            decoy,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Appends to the audit log. Audit failures are errors: an action that
    /// cannot be recorded must not silently happen.
    pub async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<i64, StoreError> {
        self.store
            .append_audit(
                &NewAuditEntry {
                    actor: actor.name.clone(),
                    action: action.into(),
                    target: target.into(),
                    detail,
                    client: actor.client.clone(),
                },
                self.clock.now(),
            )
            .await
    }

    // ---- users ---------------------------------------------------------

    /// Creates a user. Hub roles get a new household key, wrapped by the
    /// password and by a recovery code that is returned (once).
    pub async fn create_user(
        &self,
        username: &str,
        role: Role,
        password: &str,
        actor: &Actor,
    ) -> Result<CreatedUser, AuthError> {
        check_username(username)?;
        password::check_policy(password, username).map_err(AuthError::Invalid)?;
        let kdf = self.policy.kdf.clone();
        let pw = Zeroizing::new(password.to_owned());
        let hub = role.is_hub_role();
        let (hash, keys, code) = blocking(move || new_credentials(&pw, hub, &kdf)).await;
        let user = self
            .store
            .create_user(
                NewUser {
                    username,
                    role,
                    password_hash: &hash,
                    keys,
                },
                self.clock.now(),
            )
            .await?;
        self.audit(
            actor,
            "user.create",
            username,
            serde_json::json!({ "role": role }),
        )
        .await?;
        Ok(CreatedUser {
            user,
            recovery_code: code,
        })
    }

    pub async fn user(&self, username: &str) -> Result<User, AuthError> {
        self.store
            .user_by_name(username)
            .await?
            .ok_or_else(|| AuthError::NoSuchUser(username.into()))
    }

    /// The password hash and re-wrapped key for `new`, once `old` is
    /// verified. The household key is the same key, re-wrapped, so
    /// everything recorded for the user still opens.
    async fn rewrap_for(
        &self,
        user: &User,
        old: &str,
        new: &str,
    ) -> Result<(String, Option<UserKeys>), AuthError> {
        let (old, new, kdf) = (
            Zeroizing::new(old.to_owned()),
            Zeroizing::new(new.to_owned()),
            self.policy.kdf.clone(),
        );
        let u = user.clone();
        blocking(move || -> Result<(String, Option<UserKeys>), AuthError> {
            if !password::verify(&old, &u.password_hash) {
                return Err(AuthError::BadCredentials);
            }
            let hash = password::hash(&new, &kdf);
            let keys = match &u.keys {
                None => None,
                Some(k) => {
                    let key = keys::unwrap_with_password(&k.by_password, &old).map_err(|e| {
                        AuthError::BrokenKey {
                            user: u.username.clone(),
                            message: e.to_string(),
                        }
                    })?;
                    Some(UserKeys {
                        recipient: k.recipient.clone(),
                        by_password: keys::wrap_with_password(&key, &new, &kdf),
                        by_recovery: k.by_recovery.clone(),
                    })
                }
            };
            Ok((hash, keys))
        })
        .await
    }

    /// Stores a changed password, ends every session of the user (their
    /// keys and caches go at once), clears the account's counters, audits.
    async fn store_changed_password(
        &self,
        user: &User,
        hash: &str,
        keys: Option<&UserKeys>,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        self.store.set_password(user.id, hash, keys, true).await?;
        self.sweep().await?;
        for scope in [ThrottleScope::Account, ThrottleScope::CodeAccount] {
            self.store.throttle_clear(scope, &user.username).await?;
        }
        self.audit(
            actor,
            "user.password",
            &user.username,
            serde_json::json!({ "key": "rewrapped" }),
        )
        .await?;
        Ok(())
    }

    /// The signed-in user of `session` changes their own password (the web
    /// app). Throttled like a sign-in: while the account's or the client
    /// address's password throttle is locked nothing is checked, and a
    /// wrong current password counts against both. An account with
    /// two-factor sign-in must also give a current code (or a recovery
    /// code), under the code throttles. The household key is re-wrapped;
    /// every session of the user ends, this one included.
    pub async fn change_own_password(
        &self,
        session: &SessionRow,
        current: &str,
        new: &str,
        code: Option<&str>,
        client_addr: &str,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        let actor = Actor {
            name: session.username.clone(),
            client: client_addr.to_owned(),
        };
        let username = session.username.as_str();
        if let Err(e) = async {
            self.locked(ThrottleScope::Address, client_addr, now)
                .await?;
            self.locked(ThrottleScope::Account, username, now).await
        }
        .await
        {
            self.audit(
                &actor,
                "user.password_refused",
                username,
                serde_json::json!({ "reason": e.to_string() }),
            )
            .await?;
            return Err(e);
        }
        let user = self
            .store
            .user_by_id(session.user_id)
            .await?
            .ok_or(AuthError::SignInExpired)?;
        password::check_policy(new, &user.username).map_err(AuthError::Invalid)?;
        let code = if user.totp_enabled {
            self.code_locked(username, client_addr, now).await?;
            match code.map(str::trim).filter(|c| !c.is_empty()) {
                Some(c) => Some(c),
                None => return Err(AuthError::SecondFactorRequired),
            }
        } else {
            None
        };
        let (hash, keys) = match self.rewrap_for(&user, current, new).await {
            Ok(v) => v,
            Err(e) => {
                if matches!(e, AuthError::BadCredentials) {
                    self.password_failed(username, client_addr, now).await?;
                }
                self.audit(
                    &actor,
                    "user.password_failed",
                    username,
                    serde_json::json!({}),
                )
                .await?;
                return Err(e);
            }
        };
        if let Some(c) = code {
            self.check_code(&user, c, &actor, now).await?;
        }
        self.store_changed_password(&user, &hash, keys.as_ref(), &actor)
            .await
    }

    /// Changes a password knowing the old one, for the hub's command line
    /// (`porchlight user passwd`). The account's throttle applies; no
    /// second factor is asked, because the command line on the hub's own
    /// machine can reset any password anyway (`--reset`). The web app uses
    /// [`Vault::change_own_password`]. Every session of the user ends.
    pub async fn change_password(
        &self,
        username: &str,
        old_password: &str,
        new_password: &str,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        let user = self.user(username).await?;
        self.locked(ThrottleScope::Account, &user.username, now)
            .await?;
        password::check_policy(new_password, username).map_err(AuthError::Invalid)?;
        let (hash, keys) = match self.rewrap_for(&user, old_password, new_password).await {
            Ok(v) => v,
            Err(e) => {
                if matches!(e, AuthError::BadCredentials) {
                    self.record_failure(ThrottleScope::Account, &user.username, now)
                        .await?;
                }
                self.audit(
                    actor,
                    "user.password_failed",
                    username,
                    serde_json::json!({}),
                )
                .await?;
                return Err(e);
            }
        };
        self.store_changed_password(&user, &hash, keys.as_ref(), actor)
            .await
    }

    /// Restores access with the key recovery code: the key is unwrapped with
    /// the code, wrapped with the new password and a *new* recovery code,
    /// which is returned (the old code stops working).
    pub async fn recover_key(
        &self,
        username: &str,
        recovery_code: &str,
        new_password: &str,
        actor: &Actor,
    ) -> Result<Zeroizing<String>, AuthError> {
        let user = self.user(username).await?;
        let Some(k) = user.keys.clone() else {
            return Err(AuthError::NoKey(username.into()));
        };
        password::check_policy(new_password, username).map_err(AuthError::Invalid)?;
        let (code, new, kdf) = (
            Zeroizing::new(recovery_code.to_owned()),
            Zeroizing::new(new_password.to_owned()),
            self.policy.kdf.clone(),
        );
        let result = blocking(move || {
            let key =
                keys::unwrap_with_recovery_code(&k.by_recovery, &code).map_err(|e| match e {
                    keys::KeyError::WrongSecret => AuthError::BadRecoveryCode,
                    other => AuthError::Invalid(other.to_string()),
                })?;
            let fresh = keys::new_recovery_code();
            let stored = UserKeys {
                recipient: k.recipient.clone(),
                by_password: keys::wrap_with_password(&key, &new, &kdf),
                by_recovery: keys::wrap_with_recovery_code(&key, &fresh, &kdf),
            };
            Ok::<_, AuthError>((password::hash(&new, &kdf), stored, fresh))
        })
        .await;
        match result {
            Err(e) => {
                self.audit(actor, "key.recover_failed", username, serde_json::json!({}))
                    .await?;
                Err(e)
            }
            Ok((hash, stored, fresh)) => {
                self.store
                    .set_password(user.id, &hash, Some(&stored), true)
                    .await?;
                self.store
                    .throttle_clear(ThrottleScope::Account, username)
                    .await?;
                self.audit(actor, "key.recover", username, serde_json::json!({}))
                    .await?;
                Ok(fresh)
            }
        }
    }

    /// Sets a new password without the old one (an owner or the CLI helping
    /// someone who forgot theirs and lost the recovery code). The old key
    /// cannot be unwrapped, so a hub user gets a *new* key: recordings
    /// encrypted only to the old one are lost to them. Returns the new
    /// recovery code for hub users.
    pub async fn reset_password(
        &self,
        username: &str,
        new_password: &str,
        actor: &Actor,
    ) -> Result<Option<Zeroizing<String>>, AuthError> {
        let user = self.user(username).await?;
        password::check_policy(new_password, username).map_err(AuthError::Invalid)?;
        let (new, kdf, hub) = (
            Zeroizing::new(new_password.to_owned()),
            self.policy.kdf.clone(),
            user.keys.is_some() || user.role.is_hub_role(),
        );
        let (hash, keys, code) = blocking(move || new_credentials(&new, hub, &kdf)).await;
        self.store
            .set_password(user.id, &hash, keys.as_ref(), true)
            .await?;
        self.store
            .throttle_clear(ThrottleScope::Account, username)
            .await?;
        self.audit(
            actor,
            "user.password_reset",
            username,
            serde_json::json!({ "new_key": keys.is_some() }),
        )
        .await?;
        Ok(code)
    }

    pub async fn set_disabled(
        &self,
        username: &str,
        disabled: bool,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        let user = self.user(username).await?;
        self.store.set_disabled(user.id, disabled).await?;
        self.sweep().await?;
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        self.audit(actor, action, username, serde_json::json!({}))
            .await?;
        Ok(())
    }

    /// Lifts the account's sign-in lockouts, for passwords and for codes
    /// (the CLI's `user unlock`): the way back in for an owner whose account someone locked on purpose.
    pub async fn unlock_account(&self, username: &str, actor: &Actor) -> Result<(), AuthError> {
        let user = self.user(username).await?;
        for scope in [ThrottleScope::Account, ThrottleScope::CodeAccount] {
            self.store.throttle_clear(scope, &user.username).await?;
        }
        self.audit(actor, "user.unlock", &user.username, serde_json::json!({}))
            .await?;
        Ok(())
    }

    pub async fn set_role(
        &self,
        username: &str,
        role: Role,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        let user = self.user(username).await?;
        if user.role.is_hub_role() != role.is_hub_role() {
            return Err(AuthError::Invalid(format!(
                "cannot change `{username}` from {} to {role}: hub and neighborhood accounts are separate; create a new account",
                user.role
            )));
        }
        self.store.set_role(user.id, role).await?;
        self.audit(
            actor,
            "user.role",
            username,
            serde_json::json!({ "from": user.role, "to": role }),
        )
        .await?;
        Ok(())
    }

    // ---- sign-in -----------------------------------------------------

    /// Checks `password` against `user`, or against the decoy hash when
    /// there is no such user, so both take as long.
    async fn verify_password(&self, user: Option<&User>, password: &str) -> bool {
        let phc = user
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.decoy.clone());
        let pw = Zeroizing::new(password.to_owned());
        blocking(move || password::verify(&pw, &phc)).await
    }

    /// Unwraps `user`'s household key with their (already verified)
    /// password: `None` for accounts without one.
    async fn unwrap_key(
        &self,
        user: &User,
        password: &str,
    ) -> Result<Option<MemberKey>, AuthError> {
        let Some(wrapped) = user.keys.as_ref().map(|k| k.by_password.clone()) else {
            return Ok(None);
        };
        let pw = Zeroizing::new(password.to_owned());
        blocking(move || keys::unwrap_with_password(&wrapped, &pw))
            .await
            .map(Some)
            .map_err(|e| AuthError::BrokenKey {
                user: user.username.clone(),
                message: e.to_string(),
            })
    }

    pub(crate) async fn locked(
        &self,
        scope: ThrottleScope,
        key: &str,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        if let Some(row) = self.store.throttle_get(scope, key).await? {
            if row.locked_until > now {
                let us = (row.locked_until.as_microsecond() - now.as_microsecond()) as u64;
                let wait = Duration::from_secs(us.div_ceil(1_000_000));
                return Err(AuthError::Locked {
                    scope,
                    retry_after: wait,
                    until: row.locked_until,
                });
            }
        }
        Ok(())
    }

    /// Free failures, first lock and longest lock of a throttle.
    fn throttle_rule(&self, scope: ThrottleScope) -> (i64, Duration, Duration) {
        let p = &self.policy;
        let (free, base, max) = if scope.is_code() {
            (
                p.code_free_attempts,
                p.code_lockout,
                p.code_lockout.max(p.lockout_max),
            )
        } else {
            (p.free_attempts, p.lockout_base, p.lockout_max)
        };
        let factor = if scope.is_address() {
            ADDRESS_ALLOWANCE_FACTOR
        } else {
            1
        };
        (i64::from(free) * factor, base, max)
    }

    pub(crate) async fn record_failure(
        &self,
        scope: ThrottleScope,
        key: &str,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let prev = self.store.throttle_get(scope, key).await?;
        let failures = match prev {
            Some(r) if r.last_failure_at > sub(now, THROTTLE_FORGET) => r.failures + 1,
            _ => 1,
        };
        let (free, base, max) = self.throttle_rule(scope);
        let locked_until = if failures >= free {
            let doublings = (failures - free).min(30) as u32;
            let wait = base.saturating_mul(1u32 << doublings.min(20)).min(max);
            add(now, wait)
        } else {
            now
        };
        self.store
            .throttle_put(
                scope,
                key,
                ThrottleRow {
                    failures,
                    last_failure_at: now,
                    locked_until,
                },
            )
            .await?;
        Ok(())
    }

    /// A wrong password: counts against the account and the address.
    async fn password_failed(
        &self,
        username: &str,
        client: &str,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        self.record_failure(ThrottleScope::Account, username, now)
            .await?;
        self.record_failure(ThrottleScope::Address, client, now)
            .await
    }

    /// Refuses while either code throttle (the account's, the address's)
    /// is locked.
    async fn code_locked(
        &self,
        username: &str,
        client: &str,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        self.locked(ThrottleScope::CodeAccount, username, now)
            .await?;
        self.locked(ThrottleScope::CodeAddress, client, now).await
    }

    /// Checks a TOTP code or a one-time recovery code of `user`, consuming
    /// it when right (a code works once). A wrong one counts against the
    /// account's and the address's code throttles and is audited.
    async fn check_code(
        &self,
        user: &User,
        code: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let accepted = match (&user.totp_secret, user.totp_enabled) {
            (Some(secret), true) => match totp::matching_step(secret, code, now.as_second()) {
                Some(step) => self.store.consume_totp_step(user.id, step).await?,
                None => {
                    let h = recovery_hash(code);
                    let used = code.trim().len() >= 16
                        && self.store.consume_recovery_code(user.id, &h, now).await?;
                    if used {
                        self.audit(
                            actor,
                            "auth.recovery_code_used",
                            &user.username,
                            serde_json::json!({}),
                        )
                        .await?;
                    }
                    used
                }
            },
            _ => false,
        };
        if accepted {
            return Ok(());
        }
        self.record_failure(ThrottleScope::CodeAccount, &user.username, now)
            .await?;
        self.record_failure(ThrottleScope::CodeAddress, &actor.client, now)
            .await?;
        self.audit(
            actor,
            "auth.second_factor_failed",
            &user.username,
            serde_json::json!({}),
        )
        .await?;
        Err(AuthError::BadSecondFactor)
    }

    /// Step one of signing in: username and password.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        client_addr: &str,
        user_agent: &str,
    ) -> Result<SignedIn, AuthError> {
        let now = self.clock.now();
        let actor = Actor {
            name: username.to_owned(),
            client: client_addr.to_owned(),
        };
        if let Err(e) = async {
            self.locked(ThrottleScope::Address, client_addr, now)
                .await?;
            self.locked(ThrottleScope::Account, username, now).await
        }
        .await
        {
            self.audit(
                &actor,
                "auth.sign_in_refused",
                username,
                serde_json::json!({ "reason": e.to_string() }),
            )
            .await?;
            return Err(e);
        }
        let user = self.store.user_by_name(username).await?;
        let ok = self.verify_password(user.as_ref(), password).await;
        let user = match user {
            Some(u) if ok => u,
            _ => {
                self.password_failed(username, client_addr, now).await?;
                self.audit(
                    &actor,
                    "auth.sign_in_failed",
                    username,
                    serde_json::json!({}),
                )
                .await?;
                return Err(AuthError::BadCredentials);
            }
        };
        if user.disabled {
            self.audit(
                &actor,
                "auth.sign_in_refused",
                username,
                serde_json::json!({ "reason": "disabled" }),
            )
            .await?;
            return Err(AuthError::Disabled);
        }
        let stage = if user.totp_enabled {
            SessionStage::Totp
        } else if user.role == Role::Owner && self.policy.require_totp_for_owners {
            SessionStage::Enroll
        } else {
            SessionStage::Full
        };
        // The key only once the sign-in is complete: with a second factor,
        // that is after the code (`second_factor`).
        let key = if stage == SessionStage::Totp {
            None
        } else {
            self.unwrap_key(&user, password).await?
        };
        let token = Zeroizing::new(secret::url_token(32));
        let hash = token_hash(&token);
        let csrf = secret::url_token(24);
        let expires_at = if stage == SessionStage::Totp {
            add(now, self.policy.pending_max)
        } else {
            add(now, self.policy.session_max)
        };
        let id = self
            .store
            .create_session(NewSession {
                token_hash: &hash,
                user_id: user.id,
                stage,
                csrf_token: &csrf,
                now,
                expires_at,
                client_addr,
                user_agent: &user_agent.chars().take(200).collect::<String>(),
            })
            .await?;
        if stage == SessionStage::Totp {
            self.pending.seal(&token, password, now);
        } else {
            self.store
                .throttle_clear(ThrottleScope::Account, username)
                .await?;
        }
        if let Some(k) = key {
            self.keyring.put(&hash, user.id, k);
            self.audit(
                &actor,
                "key.unwrap",
                username,
                serde_json::json!({ "session": id }),
            )
            .await?;
        }
        self.audit(
            &actor,
            "auth.sign_in",
            username,
            serde_json::json!({ "session": id, "stage": stage.as_str() }),
        )
        .await?;
        let session = self
            .store
            .session_by_id(id)
            .await?
            .ok_or(AuthError::SignInExpired)?;
        Ok(SignedIn { token, session })
    }

    /// Step two: a TOTP code or a one-time recovery code, for the session
    /// of `token` at stage `totp`, from `client_addr`. Refused while the
    /// account's or the address's code throttle is locked; a wrong code
    /// counts against both. A right code unlocks the household key (with
    /// the password sealed at step one) and completes the sign-in, which
    /// is when the account's counters are cleared.
    pub async fn second_factor(
        &self,
        session: &SessionRow,
        token: &str,
        code: &str,
        client_addr: &str,
    ) -> Result<SessionRow, AuthError> {
        let now = self.clock.now();
        let actor = Actor {
            name: session.username.clone(),
            client: client_addr.to_owned(),
        };
        if session.stage != SessionStage::Totp {
            return Err(AuthError::Invalid(
                "this sign-in is not waiting for a code".into(),
            ));
        }
        if token_hash(token).as_slice() != session.token_hash.as_slice() {
            return Err(AuthError::SignInExpired);
        }
        if let Err(e) = self.code_locked(&session.username, client_addr, now).await {
            self.audit(
                &actor,
                "auth.second_factor_refused",
                &session.username,
                serde_json::json!({ "reason": e.to_string() }),
            )
            .await?;
            return Err(e);
        }
        let user = self
            .store
            .user_by_id(session.user_id)
            .await?
            .ok_or(AuthError::SignInExpired)?;
        // Without the sealed password (the hub restarted since step one,
        // or it is too old) the key could not be unlocked: start again,
        // before a code is spent.
        let password = match self.pending.open(token, now, self.policy.pending_max) {
            Some(p) => p,
            None if user.keys.is_none() => Zeroizing::new(String::new()),
            None => {
                self.end_session(session).await?;
                return Err(AuthError::SignInExpired);
            }
        };
        self.check_code(&user, code, &actor, now).await?;
        let key = self.unwrap_key(&user, &password).await?;
        drop(password);
        self.pending.remove(&session.token_hash);
        self.store
            .set_session_stage(session.id, SessionStage::Full)
            .await?;
        if let Some(k) = key {
            self.keyring.put(&session.token_hash, user.id, k);
            self.audit(
                &actor,
                "key.unwrap",
                &user.username,
                serde_json::json!({ "session": session.id }),
            )
            .await?;
        }
        // The whole sign-in succeeded: only now are the counters cleared.
        for scope in [ThrottleScope::Account, ThrottleScope::CodeAccount] {
            self.store.throttle_clear(scope, &user.username).await?;
        }
        self.audit(
            &actor,
            "auth.second_factor",
            &user.username,
            serde_json::json!({ "session": session.id }),
        )
        .await?;
        self.store
            .session_by_id(session.id)
            .await?
            .ok_or(AuthError::SignInExpired)
    }

    /// Half-finished sign-ins whose password is held (sealed) for the
    /// code step.
    pub fn pending_sign_ins(&self) -> usize {
        self.pending.len()
    }

    /// The session a token belongs to, if it is live: not expired, not idle
    /// too long, user not disabled. Ending sessions found dead on the way.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Authenticated>, AuthError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        self.authenticate_hash(&token_hash(token)).await
    }

    /// [`Vault::authenticate`] by the token's hash: what a long-lived
    /// stream keeps (not the token) to re-check its session every few
    /// seconds. A hash is never reused, unlike a session id.
    pub async fn authenticate_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<Authenticated>, AuthError> {
        let Some(s) = self.store.session_by_token_hash(hash).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        let idle_limit = if s.stage == SessionStage::Totp {
            self.policy.pending_max
        } else {
            self.policy.session_idle
        };
        if s.expires_at <= now || add(s.last_seen_at, idle_limit) <= now || s.user_disabled {
            self.end_session(&s).await?;
            return Ok(None);
        }
        // Write at most once a minute per session: reads stay cheap.
        if now.as_second() - s.last_seen_at.as_second() >= 60 {
            self.store.touch_session(s.id, now).await?;
        }
        Ok(Some(Authenticated { session: s }))
    }

    /// Unlocks a hub user's household key with their password, outside any
    /// session (the CLI's `export --user`). Throttled and audited like a
    /// sign-in; the key lives only as long as the caller holds it.
    pub async fn unlock_key(
        &self,
        username: &str,
        password: &str,
        actor: &Actor,
    ) -> Result<Arc<MemberKey>, AuthError> {
        let now = self.clock.now();
        self.locked(ThrottleScope::Account, username, now).await?;
        let user = self.store.user_by_name(username).await?;
        let ok = self.verify_password(user.as_ref(), password).await;
        let user = match user {
            Some(u) if ok && !u.disabled => u,
            Some(u) if ok && u.disabled => return Err(AuthError::Disabled),
            _ => {
                self.record_failure(ThrottleScope::Account, username, now)
                    .await?;
                self.audit(actor, "key.unwrap_failed", username, serde_json::json!({}))
                    .await?;
                return Err(AuthError::BadCredentials);
            }
        };
        self.store
            .throttle_clear(ThrottleScope::Account, &user.username)
            .await?;
        let Some(key) = self.unwrap_key(&user, password).await? else {
            return Err(AuthError::NoKey(user.username));
        };
        self.audit(
            actor,
            "key.unwrap",
            &user.username,
            serde_json::json!({ "session": null }),
        )
        .await?;
        Ok(Arc::new(key))
    }

    /// The household key unlocked by this session, if fully signed in.
    pub fn unlocked_key(&self, session: &SessionRow) -> Option<Arc<MemberKey>> {
        if session.stage != SessionStage::Full {
            return None;
        }
        self.keyring.get(&session.token_hash, session.user_id)
    }

    /// Something built with `session`'s unlocked key (a playback plan),
    /// cached under `name` by [`Vault::session_cache_put`]: only ever found
    /// by the same sign-in of the same user, and gone when it ends.
    pub fn session_cache_get<T: Any + Send + Sync>(
        &self,
        session: &SessionRow,
        name: &str,
    ) -> Option<Arc<T>> {
        if session.stage != SessionStage::Full {
            return None;
        }
        self.keyring
            .derived_get(&session.token_hash, session.user_id, name)?
            .downcast::<T>()
            .ok()
    }

    /// Keeps `value` with `session`'s unlocked key for at most `ttl`;
    /// dropped with the key when the session ends. False (nothing kept)
    /// when the session has no unlocked key.
    pub fn session_cache_put<T: Any + Send + Sync>(
        &self,
        session: &SessionRow,
        name: String,
        value: Arc<T>,
        ttl: Duration,
    ) -> bool {
        session.stage == SessionStage::Full
            && self
                .keyring
                .derived_put(&session.token_hash, session.user_id, name, value, ttl)
    }

    /// Ends a session: its key, whatever was cached with it, and a pending
    /// sign-in's sealed password go first, then the row.
    async fn end_session(&self, s: &SessionRow) -> Result<(), AuthError> {
        self.keyring.remove(&s.token_hash);
        self.pending.remove(&s.token_hash);
        self.store.delete_session(s.id).await?;
        Ok(())
    }

    pub async fn sign_out(&self, session: &SessionRow) -> Result<(), AuthError> {
        self.end_session(session).await?;
        let actor = Actor {
            name: session.username.clone(),
            client: session.client_addr.clone(),
        };
        self.audit(
            &actor,
            "auth.sign_out",
            &session.username,
            serde_json::json!({ "session": session.id }),
        )
        .await?;
        Ok(())
    }

    /// Ends one of `user_id`'s sessions. Refuses other users' sessions.
    pub async fn revoke_session(
        &self,
        user_id: i64,
        session_id: i64,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        match self.store.session_by_id(session_id).await? {
            Some(s) if s.user_id == user_id => {
                self.end_session(&s).await?;
                self.audit(
                    actor,
                    "session.revoke",
                    &s.username,
                    serde_json::json!({ "session": s.id }),
                )
                .await?;
                Ok(())
            }
            _ => Err(AuthError::Invalid(format!(
                "no session #{session_id} of yours"
            ))),
        }
    }

    pub async fn sessions_of(&self, user_id: i64) -> Result<Vec<SessionRow>, AuthError> {
        Ok(self.store.sessions_of_user(user_id).await?)
    }

    /// Ends expired sessions and forgets the keys of sessions that are gone
    /// (expired, revoked, or removed by another process such as the CLI).
    /// The hub runs this every few seconds.
    pub async fn sweep(&self) -> Result<usize, AuthError> {
        let now = self.clock.now();
        let idle_before = sub(now, self.policy.session_idle);
        self.store.delete_expired_sessions(now, idle_before).await?;
        let live = self.store.live_session_token_hashes().await?;
        self.pending.retain(&live, now, self.policy.pending_max);
        Ok(self.keyring.retain(&live))
    }

    // ---- second factor enrolment ----------------------------------------

    /// Starts setting up TOTP: a new secret, not yet active.
    pub async fn begin_totp(&self, session: &SessionRow) -> Result<TotpEnrollment, AuthError> {
        let secret: [u8; totp::SECRET_BYTES] = secret::random_bytes();
        self.store
            .set_pending_totp(session.user_id, &secret)
            .await?;
        Ok(TotpEnrollment {
            secret_base32: totp::secret_to_base32(&secret),
            otpauth_uri: totp::otpauth_uri("Porchlight", &session.username, &secret),
        })
    }

    /// Finishes TOTP set-up with a code from the app; returns the one-time
    /// recovery codes (shown once) and promotes an `enroll` session.
    pub async fn confirm_totp(
        &self,
        session: &SessionRow,
        code: &str,
    ) -> Result<Vec<String>, AuthError> {
        let user = self
            .store
            .user_by_id(session.user_id)
            .await?
            .ok_or(AuthError::SignInExpired)?;
        let Some(secret) = user.totp_secret.as_ref().filter(|_| !user.totp_enabled) else {
            return Err(AuthError::Invalid("start two-factor set-up first".into()));
        };
        let now = self.clock.now();
        let Some(step) = totp::matching_step(secret, code, now.as_second()) else {
            return Err(AuthError::BadSecondFactor);
        };
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| secret::human_code(4)).collect();
        let hashes: Vec<Vec<u8>> = codes.iter().map(|c| recovery_hash(c)).collect();
        self.store.enable_totp(user.id, step, &hashes).await?;
        if session.stage == SessionStage::Enroll {
            self.store
                .set_session_stage(session.id, SessionStage::Full)
                .await?;
        }
        let actor = Actor {
            name: user.username.clone(),
            client: session.client_addr.clone(),
        };
        self.audit(&actor, "totp.enable", &user.username, serde_json::json!({}))
            .await?;
        Ok(codes)
    }

    /// Creates the first owner; refused once any user exists. The check and
    /// the insert race only with another first-run, and the loser gets a
    /// uniqueness error or a second owner it cannot see — so we re-check.
    pub async fn create_first_owner(
        &self,
        username: &str,
        password: &str,
        client: &str,
    ) -> Result<CreatedUser, AuthError> {
        if self.store.count_users().await? > 0 {
            return Err(AuthError::Invalid(
                "this hub already has an owner; sign in instead".into(),
            ));
        }
        let actor = Actor {
            name: username.into(),
            client: client.into(),
        };
        self.create_user(username, Role::Owner, password, &actor)
            .await
    }
}

/// A password hash and, for hub roles, a new household key wrapped by the
/// password and by a new recovery code (returned, to show once).
fn new_credentials(
    password: &str,
    hub: bool,
    kdf: &KdfParams,
) -> (String, Option<UserKeys>, Option<Zeroizing<String>>) {
    let hash = password::hash(password, kdf);
    if !hub {
        return (hash, None, None);
    }
    let key = MemberKey::generate();
    let code = keys::new_recovery_code();
    let stored = UserKeys {
        recipient: key.recipient_string(),
        by_password: keys::wrap_with_password(&key, password, kdf),
        by_recovery: keys::wrap_with_recovery_code(&key, &code, kdf),
    };
    (hash, Some(stored), Some(code))
}

/// Usernames: 1–64 characters of letters, digits, `.`, `_`, `-`.
pub fn check_username(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "`{name}` is not a valid username: use 1 to 64 letters, digits, dots, dashes or underscores"
        )))
    }
}
