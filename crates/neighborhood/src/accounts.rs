//! Accounts of the neighborhood (separate from the hub's): roles,
//! registration (invite codes or open with moderator approval), sign-in with
//! Argon2id and optional TOTP, bearer sessions stored hashed, home areas,
//! notification subscriptions, and the admin functions the CLI calls.
//!
//! Invariants:
//!
//! * Session tokens are 32 random bytes; only their SHA-256 is stored.
//! * Sign-in failures are counted per username (known or not) and refused
//!   with 429 after [`crate::Limits::login_failures`] within 15 minutes; an
//!   unknown username costs one Argon2id verification like a known one.
//! * A TOTP code's time step is recorded and never accepted twice.
//! * A home cell is stored only after [`area::parse_home_cell`] accepted it
//!   and is returned only to its owner.
//! * Every admin action is audited (actor `cli` when run from the CLI).

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::now_ms;
use crate::{area, Error, Neighborhood, Result, UserId};

/// How long a session lasts.
pub const SESSION_MS: i64 = 30 * 24 * 3600 * 1000;
/// Window over which failed sign-ins are counted.
const LOGIN_WINDOW_MS: i64 = 15 * 60 * 1000;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Neighbor,
    Agency,
    Moderator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Neighbor => "neighbor",
            Role::Agency => "agency",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "neighbor" => Ok(Role::Neighbor),
            "agency" => Ok(Role::Agency),
            "moderator" => Ok(Role::Moderator),
            "admin" => Ok(Role::Admin),
            other => Err(Error::Invalid(format!(
                "unknown role {other:?}: expected neighbor, agency, moderator or admin"
            ))),
        }
    }

    /// Moderators and admins may moderate.
    pub fn moderates(self) -> bool {
        matches!(self, Role::Moderator | Role::Admin)
    }
}

/// How new residents join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// Only with an invite code (the default).
    Invite,
    /// Anyone may register; a moderator approves before they can sign in.
    Open,
}

/// A signed-in user as the request handlers see them.
#[derive(Debug, Clone, Serialize)]
pub struct Viewer {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub agency_name: Option<String>,
    pub agency_verified: bool,
    #[serde(skip)]
    pub home_cell: Option<h3o::CellIndex>,
    pub radius_km: f64,
    pub muted_until: Option<i64>,
    pub mute_reason: Option<String>,
    pub suspended_until: Option<i64>,
    pub suspend_reason: Option<String>,
    pub totp_enabled: bool,
}

impl Viewer {
    /// True while a suspension runs.
    pub fn suspended(&self) -> bool {
        self.suspended_until.is_some_and(|t| t > now_ms())
    }

    /// Refuses anything but reading one's own notices and appealing while
    /// suspended.
    pub fn require_not_suspended(&self) -> Result<()> {
        if self.suspended() {
            return Err(Error::Forbidden(format!(
                "your account is suspended until {} ({}); you can read your notices and appeal",
                fmt_ms(self.suspended_until.unwrap_or(0)),
                self.suspend_reason.as_deref().unwrap_or("no reason given")
            )));
        }
        Ok(())
    }

    /// Refuses writing while muted or suspended.
    pub fn require_can_write(&self) -> Result<()> {
        self.require_not_suspended()?;
        if let Some(until) = self.muted_until.filter(|t| *t > now_ms()) {
            return Err(Error::Forbidden(format!(
                "you are muted until {} ({}); you can read but not post, comment or react",
                fmt_ms(until),
                self.mute_reason.as_deref().unwrap_or("no reason given")
            )));
        }
        Ok(())
    }

    /// Refuses non-moderators.
    pub fn require_moderator(&self) -> Result<()> {
        self.require_not_suspended()?;
        if !self.role.moderates() {
            return Err(Error::Forbidden(
                "only moderators and admins can do this".into(),
            ));
        }
        Ok(())
    }

    /// Refuses non-admins.
    pub fn require_admin(&self) -> Result<()> {
        self.require_not_suspended()?;
        if self.role != Role::Admin {
            return Err(Error::Forbidden("only admins can do this".into()));
        }
        Ok(())
    }

    /// Refuses agency accounts (media, reactions, residents' threads).
    pub fn require_not_agency(&self, what: &str) -> Result<()> {
        if self.role == Role::Agency {
            return Err(Error::Forbidden(format!("agency accounts cannot {what}")));
        }
        Ok(())
    }
}

/// RFC 3339 form of a millisecond timestamp.
pub fn fmt_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn check_username(username: &str) -> Result<()> {
    let ok = (3..=32).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(
            "the username must be 3–32 characters of letters, digits, '.', '_' or '-'".into(),
        ))
    }
}

fn check_display_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(Error::Invalid(
            "the display name must be 1–60 characters".into(),
        ));
    }
    Ok(name.to_string())
}

/// Agency alerts are on by default for everyone.
pub const DEFAULT_SUBSCRIPTIONS: &[&str] = &["alert"];

impl Neighborhood {
    /// Creates an account (admin/CLI path; also used by registration).
    /// Agencies start unverified.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        display_name: &str,
        role: Role,
        agency_name: Option<&str>,
    ) -> Result<UserId> {
        self.insert_user(
            username,
            password,
            display_name,
            role,
            agency_name,
            "active",
        )
        .await
    }

    /// Creates an account with `role` and audits it (admin API and CLI;
    /// `actor` is `None` from the CLI).
    pub async fn admin_create_user(
        &self,
        actor: Option<UserId>,
        username: &str,
        password: &str,
        display_name: &str,
        role: Role,
        agency_name: Option<&str>,
    ) -> Result<UserId> {
        let id = self
            .create_user(username, password, display_name, role, agency_name)
            .await?;
        self.audit(actor, "create_user", "user", id, role.as_str())
            .await?;
        Ok(id)
    }

    async fn insert_user(
        &self,
        username: &str,
        password: &str,
        display_name: &str,
        role: Role,
        agency_name: Option<&str>,
        status: &str,
    ) -> Result<UserId> {
        check_username(username)?;
        let display_name = check_display_name(display_name)?;
        porchlight_vault::password::check_policy(password, username).map_err(Error::Invalid)?;
        let agency_name = match (role, agency_name.map(str::trim)) {
            (Role::Agency, Some(n)) if !n.is_empty() && n.chars().count() <= 80 => {
                Some(n.to_string())
            }
            (Role::Agency, _) => {
                return Err(Error::Invalid(
                    "an agency account needs an agency name of 1–80 characters".into(),
                ))
            }
            (_, Some(n)) if !n.is_empty() => {
                return Err(Error::Invalid(
                    "only agency accounts have an agency name".into(),
                ))
            }
            _ => None,
        };
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE username = $1")
            .bind(username)
            .fetch_one(self.pool())
            .await?;
        if exists > 0 {
            return Err(Error::Conflict(format!(
                "the username {username:?} is taken"
            )));
        }
        let phc = {
            let kdf = self.inner.kdf.clone();
            let pw = password.to_string();
            tokio::task::spawn_blocking(move || porchlight_vault::password::hash(&pw, &kdf))
                .await
                .map_err(|e| Error::Invalid(format!("password hashing failed: {e}")))?
        };
        let mut tx = self.pool().begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, display_name, role, agency_name, agency_verified, password_hash, status, radius_km, created_at)
             VALUES ($1, $2, $3, $4, 0, $5, $6, 3.0, $7) RETURNING id",
        )
        .bind(username)
        .bind(&display_name)
        .bind(role.as_str())
        .bind(agency_name)
        .bind(phc)
        .bind(status)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        for c in DEFAULT_SUBSCRIPTIONS {
            sqlx::query("INSERT INTO subscriptions (user_id, category) VALUES ($1, $2)")
                .bind(id)
                .bind(*c)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// The id of `username`, if any.
    pub async fn user_id(&self, username: &str) -> Result<UserId> {
        sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {username:?}")))
    }

    /// Marks an agency account verified (admin). `actor` is `None` from the CLI.
    pub async fn verify_agency(&self, actor: Option<UserId>, user: UserId) -> Result<()> {
        let role: Option<String> = sqlx::query_scalar("SELECT role FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(self.pool())
            .await?;
        match role.as_deref() {
            None => return Err(Error::NotFound(format!("user {user}"))),
            Some("agency") => {}
            Some(_) => {
                return Err(Error::Invalid(
                    "only agency accounts can be verified".into(),
                ))
            }
        }
        sqlx::query("UPDATE users SET agency_verified = 1 WHERE id = $1")
            .bind(user)
            .execute(self.pool())
            .await?;
        self.audit(actor, "verify_agency", "user", user, "").await
    }

    /// A new single-use invite code (admin).
    pub async fn create_invite(&self, actor: Option<UserId>) -> Result<String> {
        let code = porchlight_base::secret::human_code(4);
        sqlx::query("INSERT INTO invites (code, created_by, created_at) VALUES ($1, $2, $3)")
            .bind(porchlight_base::secret::normalize_human_code(&code))
            .bind(actor)
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        self.audit(actor, "create_invite", "invite", 0, "").await?;
        Ok(code)
    }

    /// Sets how new residents join (admin).
    pub async fn set_registration_mode(
        &self,
        actor: Option<UserId>,
        mode: RegistrationMode,
    ) -> Result<()> {
        let v = match mode {
            RegistrationMode::Invite => "invite",
            RegistrationMode::Open => "open",
        };
        self.set_setting("registration", v).await?;
        self.audit(actor, "set_registration_mode", "setting", 0, v)
            .await
    }

    /// The current registration mode.
    pub async fn registration_mode(&self) -> Result<RegistrationMode> {
        Ok(match self.setting("registration").await?.as_deref() {
            Some("open") => RegistrationMode::Open,
            _ => RegistrationMode::Invite,
        })
    }

    async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2)")
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Self-registration. With a valid invite the account is active at
    /// once; in open mode without one it waits for a moderator. Returns the
    /// id and `"active"` or `"pending"`.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        display_name: &str,
        invite: Option<&str>,
    ) -> Result<(UserId, &'static str)> {
        let mode = self.registration_mode().await?;
        let invite = invite.map(porchlight_base::secret::normalize_human_code);
        let status = match (&invite, mode) {
            (Some(code), _) => {
                let ok: Option<String> = sqlx::query_scalar(
                    "SELECT code FROM invites WHERE code = $1 AND used_by IS NULL",
                )
                .bind(code)
                .fetch_optional(self.pool())
                .await?;
                if ok.is_none() {
                    return Err(Error::Forbidden(
                        "that invite code is unknown or already used".into(),
                    ));
                }
                "active"
            }
            (None, RegistrationMode::Open) => "pending",
            (None, RegistrationMode::Invite) => {
                return Err(Error::Forbidden(
                    "this neighborhood joins by invitation: an invite code is required".into(),
                ))
            }
        };
        let id = self
            .insert_user(
                username,
                password,
                display_name,
                Role::Neighbor,
                None,
                status,
            )
            .await?;
        if let Some(code) = invite {
            let n = sqlx::query(
                "UPDATE invites SET used_by = $1, used_at = $2 WHERE code = $3 AND used_by IS NULL",
            )
            .bind(id)
            .bind(now_ms())
            .bind(&code)
            .execute(self.pool())
            .await?
            .rows_affected();
            if n == 0 {
                // Lost a race for the same code: undo the account.
                sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                return Err(Error::Forbidden(
                    "that invite code is unknown or already used".into(),
                ));
            }
        }
        Ok((id, status))
    }

    /// Approves or rejects a pending registration (moderator).
    pub async fn decide_registration(
        &self,
        actor: UserId,
        user: UserId,
        approve: bool,
    ) -> Result<()> {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(self.pool())
            .await?;
        if status.as_deref() != Some("pending") {
            return Err(Error::NotFound(format!("pending registration {user}")));
        }
        if approve {
            sqlx::query("UPDATE users SET status = 'active' WHERE id = $1")
                .bind(user)
                .execute(self.pool())
                .await?;
        } else {
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(user)
                .execute(self.pool())
                .await?;
        }
        let action = if approve {
            "approve_registration"
        } else {
            "reject_registration"
        };
        self.audit(Some(actor), action, "user", user, "").await
    }

    fn login_throttle_check(&self, key: &str) -> Result<()> {
        let limit = self.limits().login_failures;
        let map = self
            .inner
            .login_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((count, start)) = map.get(key) {
            let left = start + LOGIN_WINDOW_MS - now_ms();
            if *count >= limit && left > 0 {
                return Err(Error::RateLimited {
                    message: "too many failed sign-ins for this username; try again later".into(),
                    retry_after_s: (left as u64).div_ceil(1000),
                });
            }
        }
        Ok(())
    }

    fn login_failed(&self, key: &str) {
        let mut map = self
            .inner
            .login_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        // Bound the memory a flood of made-up usernames can take.
        if map.len() >= 10_000 {
            map.retain(|_, (_, start)| now - *start <= LOGIN_WINDOW_MS);
        }
        let e = map.entry(key.to_string()).or_insert((0, now));
        if now - e.1 > LOGIN_WINDOW_MS {
            *e = (0, now);
        }
        e.0 += 1;
    }

    /// Signs in; returns a new bearer token.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        totp: Option<&str>,
    ) -> Result<String> {
        let key = username.to_ascii_lowercase();
        self.login_throttle_check(&key)?;
        let row = sqlx::query(
            "SELECT id, password_hash, status, totp_secret, totp_last_step FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(self.pool())
        .await?;
        let phc = row
            .as_ref()
            .map(|r| r.try_get::<String, _>("password_hash"))
            .transpose()?
            .unwrap_or_else(|| self.inner.decoy_hash.clone());
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || porchlight_vault::password::verify(&pw, &phc))
            .await
            .unwrap_or(false);
        let refused = || Error::Unauthorized("wrong username or password".into());
        let Some(row) = row.filter(|_| ok) else {
            self.login_failed(&key);
            return Err(refused());
        };
        let id: i64 = row.try_get("id")?;
        let status: String = row.try_get("status")?;
        if status == "pending" {
            return Err(Error::Forbidden(
                "your registration is waiting for a moderator's approval".into(),
            ));
        }
        if let Some(secret) = row.try_get::<Option<String>, _>("totp_secret")? {
            let secret = hex::decode(secret).unwrap_or_default();
            let Some(code) = totp else {
                return Err(Error::Unauthorized(
                    "a TOTP code is required for this account".into(),
                ));
            };
            let Some(step) = porchlight_vault::totp::matching_step(&secret, code, now_ms() / 1000)
            else {
                self.login_failed(&key);
                return Err(Error::Unauthorized("wrong TOTP code".into()));
            };
            let n = sqlx::query(
                "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
            )
            .bind(step)
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected();
            if n == 0 {
                return Err(Error::Unauthorized(
                    "that TOTP code was already used; wait for the next one".into(),
                ));
            }
        }
        self.inner
            .login_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        let token = porchlight_base::secret::url_token(32);
        let now = now_ms();
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash(&token))
            .bind(id)
            .bind(now)
            .bind(now + SESSION_MS)
            .execute(self.pool())
            .await?;
        Ok(token)
    }

    /// Ends the session holding `token`.
    pub async fn logout(&self, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash(token))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The user behind a bearer token, if the session is live.
    pub async fn viewer_for_token(&self, token: &str) -> Result<Viewer> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT user_id FROM sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash(token))
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        let id = id.ok_or_else(|| {
            Error::Unauthorized("the session is unknown or expired; sign in again".into())
        })?;
        self.viewer(id).await
    }

    /// The user `id` as a [`Viewer`].
    pub async fn viewer(&self, id: UserId) -> Result<Viewer> {
        let r = sqlx::query(
            "SELECT id, username, display_name, role, agency_name, agency_verified, home_cell, radius_km,
                    muted_until, mute_reason, suspended_until, suspend_reason, totp_secret, status
             FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| Error::Unauthorized("the account no longer exists".into()))?;
        if r.try_get::<String, _>("status")? != "active" {
            return Err(Error::Unauthorized("the account is not active".into()));
        }
        Ok(Viewer {
            id: r.try_get("id")?,
            username: r.try_get("username")?,
            display_name: r.try_get("display_name")?,
            role: Role::parse(&r.try_get::<String, _>("role")?)?,
            agency_name: r.try_get("agency_name")?,
            agency_verified: r.try_get::<i64, _>("agency_verified")? != 0,
            home_cell: r
                .try_get::<Option<i64>, _>("home_cell")?
                .and_then(|c| h3o::CellIndex::try_from(c as u64).ok()),
            radius_km: r.try_get("radius_km")?,
            muted_until: r.try_get("muted_until")?,
            mute_reason: r.try_get("mute_reason")?,
            suspended_until: r.try_get("suspended_until")?,
            suspend_reason: r.try_get("suspend_reason")?,
            totp_enabled: r.try_get::<Option<String>, _>("totp_secret")?.is_some(),
        })
    }

    /// Sets the viewer's home area (and optionally default radius).
    pub async fn set_area(
        &self,
        user: UserId,
        cell: &str,
        radius_km: Option<f64>,
    ) -> Result<h3o::CellIndex> {
        let cell = area::parse_home_cell(cell).map_err(|e| Error::Invalid(e.to_string()))?;
        let v = self.viewer(user).await?;
        let radius = match radius_km {
            Some(r) => area::check_radius_km(r).map_err(|e| Error::Invalid(e.to_string()))?,
            None => v.radius_km,
        };
        sqlx::query("UPDATE users SET home_cell = $1, radius_km = $2 WHERE id = $3")
            .bind(u64::from(cell) as i64)
            .bind(radius)
            .bind(user)
            .execute(self.pool())
            .await?;
        // Posts this resident made at the new home (or inside it) would
        // now show their home cell: move them out to the wider area. An
        // agency's area is the public area it serves, nobody's home.
        if v.role != Role::Agency {
            self.coarsen_posts_at_home(user, cell).await?;
        }
        Ok(cell)
    }

    /// The categories `user` is notified about.
    pub async fn subscriptions(&self, user: UserId) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT category FROM subscriptions WHERE user_id = $1 ORDER BY category",
        )
        .bind(user)
        .fetch_all(self.pool())
        .await?)
    }

    /// Replaces `user`'s notification categories.
    pub async fn set_subscriptions(&self, user: UserId, categories: &[String]) -> Result<()> {
        for c in categories {
            crate::posts::Category::parse(c)?;
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM subscriptions WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        let mut seen = std::collections::BTreeSet::new();
        for c in categories.iter().filter(|c| seen.insert(c.as_str())) {
            sqlx::query("INSERT INTO subscriptions (user_id, category) VALUES ($1, $2)")
                .bind(user)
                .bind(c)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Starts TOTP enrolment: returns the secret (base32) and otpauth URI.
    /// It takes effect after [`confirm_totp`](Self::confirm_totp).
    pub async fn begin_totp(&self, user: UserId) -> Result<(String, String)> {
        let v = self.viewer(user).await?;
        let secret =
            porchlight_base::secret::random_bytes::<{ porchlight_vault::totp::SECRET_BYTES }>();
        sqlx::query("UPDATE users SET totp_pending = $1 WHERE id = $2")
            .bind(hex::encode(secret))
            .bind(user)
            .execute(self.pool())
            .await?;
        Ok((
            porchlight_vault::totp::secret_to_base32(&secret),
            porchlight_vault::totp::otpauth_uri("Porchlight Neighborhood", &v.username, &secret),
        ))
    }

    /// Confirms TOTP enrolment with a current code.
    pub async fn confirm_totp(&self, user: UserId, code: &str) -> Result<()> {
        let pending: Option<String> =
            sqlx::query_scalar("SELECT totp_pending FROM users WHERE id = $1")
                .bind(user)
                .fetch_one(self.pool())
                .await?;
        let pending =
            pending.ok_or_else(|| Error::Conflict("start TOTP enrolment first".into()))?;
        let secret = hex::decode(&pending).unwrap_or_default();
        let step = porchlight_vault::totp::matching_step(&secret, code, now_ms() / 1000)
            .ok_or_else(|| {
                Error::Invalid("that code does not match; check the phone's clock".into())
            })?;
        sqlx::query("UPDATE users SET totp_secret = $1, totp_pending = NULL, totp_last_step = $2 WHERE id = $3")
            .bind(&pending)
            .bind(step)
            .bind(user)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Appends to this neighborhood's audit table.
    pub(crate) async fn audit(
        &self,
        actor: Option<UserId>,
        action: &str,
        target_kind: &str,
        target_id: i64,
        reason: &str,
    ) -> Result<()> {
        let actor_name = match actor {
            Some(id) => sqlx::query_scalar::<_, String>("SELECT username FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?
                .unwrap_or_else(|| format!("user {id}")),
            None => "cli".to_string(),
        };
        sqlx::query(
            "INSERT INTO audit (actor_id, actor, action, target_kind, target_id, reason, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(actor)
        .bind(actor_name)
        .bind(action)
        .bind(target_kind)
        .bind(target_id)
        .bind(reason)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The audit table, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<serde_json::Value>> {
        let rows = sqlx::query(
            "SELECT id, actor, action, target_kind, target_id, reason, created_at FROM audit ORDER BY id DESC LIMIT $1",
        )
        .bind(limit.clamp(1, 1000))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(serde_json::json!({
                    "id": r.try_get::<i64, _>("id")?,
                    "actor": r.try_get::<String, _>("actor")?,
                    "action": r.try_get::<String, _>("action")?,
                    "target_kind": r.try_get::<String, _>("target_kind")?,
                    "target_id": r.try_get::<i64, _>("target_id")?,
                    "reason": r.try_get::<String, _>("reason")?,
                    "at": fmt_ms(r.try_get("created_at")?),
                }))
            })
            .collect()
    }
}
