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
//! 1. Both throttles are consulted — the account's and the client address's.
//!    While either is locked the password is not even checked.
//! 2. The password is verified with Argon2id (a decoy hash is verified for
//!    unknown names, so timing does not reveal which names exist).
//! 3. For hub users the household key is unwrapped with the same password
//!    and held in memory ([`Keyring`]) under the new session's id.
//! 4. The session starts at stage `totp` when the account has a second
//!    factor, `enroll` when it must set one up (owners), else `full`.
//!    Only `full` sessions get the key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    #[error("too many failed sign-ins {}; try again in {}", scope_words(*.scope), human_wait(*.retry_after))]
    Locked {
        scope: ThrottleScope,
        retry_after: Duration,
    },
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

fn scope_words(s: ThrottleScope) -> &'static str {
    match s {
        ThrottleScope::Account => "for this account",
        ThrottleScope::Address => "from this network address",
    }
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

/// Household keys unlocked for live sessions, in memory only. Dropping an
/// entry zeroizes the key (see [`MemberKey`]).
#[derive(Default)]
pub struct Keyring {
    keys: Mutex<HashMap<i64, Arc<MemberKey>>>,
}

impl Keyring {
    fn put(&self, session_id: i64, key: MemberKey) {
        self.keys.lock().unwrap().insert(session_id, Arc::new(key));
    }
    fn get(&self, session_id: i64) -> Option<Arc<MemberKey>> {
        self.keys.lock().unwrap().get(&session_id).cloned()
    }
    fn remove(&self, session_id: i64) {
        self.keys.lock().unwrap().remove(&session_id);
    }
    /// Keeps only the keys of the given sessions.
    fn retain(&self, live: &[i64]) -> usize {
        let mut k = self.keys.lock().unwrap();
        let before = k.len();
        k.retain(|id, _| live.contains(id));
        before - k.len()
    }
    /// Number of keys currently unlocked.
    pub fn len(&self) -> usize {
        self.keys.lock().unwrap().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// Changes a password knowing the old one. The household key is the
    /// same key, re-wrapped, so everything recorded for the user still
    /// opens. Other sessions of the user end.
    pub async fn change_password(
        &self,
        username: &str,
        old_password: &str,
        new_password: &str,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        let user = self.user(username).await?;
        password::check_policy(new_password, username).map_err(AuthError::Invalid)?;
        let (old, new, kdf) = (
            Zeroizing::new(old_password.to_owned()),
            Zeroizing::new(new_password.to_owned()),
            self.policy.kdf.clone(),
        );
        let u = user.clone();
        let result = blocking(move || -> Result<(String, Option<UserKeys>), AuthError> {
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
        .await;
        let (hash, keys) = match result {
            Ok(v) => v,
            Err(e) => {
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
        self.store
            .set_password(user.id, &hash, keys.as_ref(), true)
            .await?;
        self.audit(
            actor,
            "user.password",
            username,
            serde_json::json!({ "key": "rewrapped" }),
        )
        .await?;
        Ok(())
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

    /// Lifts the account's sign-in lockout (the CLI's `user unlock`): the
    /// way back in for an owner whose account someone locked on purpose.
    pub async fn unlock_account(&self, username: &str, actor: &Actor) -> Result<(), AuthError> {
        let user = self.user(username).await?;
        self.store
            .throttle_clear(ThrottleScope::Account, &user.username)
            .await?;
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

    /// Checks `password` against `user` (or the decoy hash when there is no
    /// such user, so both take as long) and, when it matches, unwraps the
    /// user's household key with it.
    async fn verify_and_unwrap(
        &self,
        user: Option<&User>,
        password: &str,
    ) -> (bool, Option<Result<MemberKey, keys::KeyError>>) {
        let phc = user
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.decoy.clone());
        let wrapped = user.and_then(|u| u.keys.as_ref().map(|k| k.by_password.clone()));
        let pw = Zeroizing::new(password.to_owned());
        blocking(move || {
            if !password::verify(&pw, &phc) {
                return (false, None);
            }
            (true, wrapped.map(|w| keys::unwrap_with_password(&w, &pw)))
        })
        .await
    }

    async fn locked(
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
                });
            }
        }
        Ok(())
    }

    async fn record_failure(
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
        let free = i64::from(self.policy.free_attempts)
            * if scope == ThrottleScope::Address {
                ADDRESS_ALLOWANCE_FACTOR
            } else {
                1
            };
        let locked_until = if failures >= free {
            let doublings = (failures - free).min(30) as u32;
            let wait = self
                .policy
                .lockout_base
                .saturating_mul(1u32 << doublings.min(20))
                .min(self.policy.lockout_max);
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
        let (ok, key) = self.verify_and_unwrap(user.as_ref(), password).await;
        let user = match user {
            Some(u) if ok => u,
            _ => {
                self.record_failure(ThrottleScope::Account, username, now)
                    .await?;
                self.record_failure(ThrottleScope::Address, client_addr, now)
                    .await?;
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
        let key = match key {
            None => None,
            Some(Ok(k)) => Some(k),
            Some(Err(e)) => {
                return Err(AuthError::BrokenKey {
                    user: user.username.clone(),
                    message: e.to_string(),
                })
            }
        };
        self.store
            .throttle_clear(ThrottleScope::Account, username)
            .await?;
        let stage = if user.totp_enabled {
            SessionStage::Totp
        } else if user.role == Role::Owner && self.policy.require_totp_for_owners {
            SessionStage::Enroll
        } else {
            SessionStage::Full
        };
        let token = Zeroizing::new(secret::url_token(32));
        let csrf = secret::url_token(24);
        let expires_at = if stage == SessionStage::Totp {
            add(now, self.policy.pending_max)
        } else {
            add(now, self.policy.session_max)
        };
        let id = self
            .store
            .create_session(NewSession {
                token_hash: &token_hash(&token),
                user_id: user.id,
                stage,
                csrf_token: &csrf,
                now,
                expires_at,
                client_addr,
                user_agent: &user_agent.chars().take(200).collect::<String>(),
            })
            .await?;
        if let Some(k) = key {
            self.keyring.put(id, k);
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

    /// Step two: a TOTP code or a one-time recovery code, for a session at
    /// stage `totp`. Failures count towards the account's throttle.
    pub async fn second_factor(
        &self,
        session: &SessionRow,
        code: &str,
    ) -> Result<SessionRow, AuthError> {
        let now = self.clock.now();
        let actor = Actor {
            name: session.username.clone(),
            client: session.client_addr.clone(),
        };
        if session.stage != SessionStage::Totp {
            return Err(AuthError::Invalid(
                "this sign-in is not waiting for a code".into(),
            ));
        }
        self.locked(ThrottleScope::Account, &session.username, now)
            .await?;
        let user = self
            .store
            .user_by_id(session.user_id)
            .await?
            .ok_or(AuthError::SignInExpired)?;
        let accepted = match (&user.totp_secret, user.totp_enabled) {
            (Some(secret), true) => match totp::matching_step(secret, code, now.as_second()) {
                Some(step) => self.store.consume_totp_step(user.id, step).await?,
                None => {
                    let h = recovery_hash(code);
                    let used = code.trim().len() >= 16
                        && self.store.consume_recovery_code(user.id, &h, now).await?;
                    if used {
                        self.audit(
                            &actor,
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
        if !accepted {
            self.record_failure(ThrottleScope::Account, &user.username, now)
                .await?;
            self.audit(
                &actor,
                "auth.second_factor_failed",
                &user.username,
                serde_json::json!({}),
            )
            .await?;
            return Err(AuthError::BadSecondFactor);
        }
        self.store
            .set_session_stage(session.id, SessionStage::Full)
            .await?;
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

    /// The session a token belongs to, if it is live: not expired, not idle
    /// too long, user not disabled. Ending sessions found dead on the way.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Authenticated>, AuthError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let Some(s) = self.store.session_by_token_hash(&token_hash(token)).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        let idle_limit = if s.stage == SessionStage::Totp {
            self.policy.pending_max
        } else {
            self.policy.session_idle
        };
        if s.expires_at <= now || add(s.last_seen_at, idle_limit) <= now || s.user_disabled {
            self.end_session(s.id).await?;
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
        let (ok, key) = self.verify_and_unwrap(user.as_ref(), password).await;
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
        let key = match key {
            None => return Err(AuthError::NoKey(user.username)),
            Some(Err(e)) => {
                return Err(AuthError::BrokenKey {
                    user: user.username,
                    message: e.to_string(),
                })
            }
            Some(Ok(k)) => k,
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
        self.keyring.get(session.id)
    }

    async fn end_session(&self, id: i64) -> Result<(), AuthError> {
        self.keyring.remove(id);
        self.store.delete_session(id).await?;
        Ok(())
    }

    pub async fn sign_out(&self, session: &SessionRow) -> Result<(), AuthError> {
        self.end_session(session.id).await?;
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
                self.end_session(s.id).await?;
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
        let live = self.store.live_session_ids().await?;
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
