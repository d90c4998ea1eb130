//! Users: who may sign in, with which role, and their opaque secrets.

use sqlx::Row;

use crate::{from_micros, micros, Doing, Result, Store, StoreError};

/// What a user is. Hub roles (`Owner`, `Member`) hold a household key;
/// neighborhood roles do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the hub: all cameras, users, the audit log.
    Owner,
    /// A household member: cameras the owner grants.
    Member,
    /// A resident on the neighborhood server.
    Neighbor,
    /// A verified public agency (police, fire, city): posts only.
    Agency,
    /// Reviews reports on the neighborhood server.
    Moderator,
    /// Runs the neighborhood server.
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Owner,
        Role::Member,
        Role::Neighbor,
        Role::Agency,
        Role::Moderator,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
            Role::Neighbor => "neighbor",
            Role::Agency => "agency",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    /// Hub roles see video and therefore hold a household key.
    pub fn is_hub_role(self) -> bool {
        matches!(self, Role::Owner | Role::Member)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown role `{s}`; expected one of: owner, member, neighbor, agency, moderator, admin"
                )
            })
    }
}

/// The household key of a hub user, as stored: public half in clear,
/// private half wrapped twice (by password, by recovery code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKeys {
    pub recipient: String,
    pub by_password: Vec<u8>,
    pub by_recovery: Vec<u8>,
}

/// A user row.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: jiff::Timestamp,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_enabled: bool,
    pub totp_last_step: Option<i64>,
    pub keys: Option<UserKeys>,
}

/// What it takes to create a user.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
    pub keys: Option<UserKeys>,
}

const USER_COLS: &str = "id, username, role, password_hash, disabled, created_at, totp_secret, \
     totp_enabled, totp_last_step, age_recipient, key_by_password, key_by_recovery";

fn user_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<User> {
    let role: String = row.get("role");
    let recipient: Option<String> = row.get("age_recipient");
    let keys = recipient.map(|recipient| UserKeys {
        recipient,
        by_password: row.get("key_by_password"),
        by_recovery: row.get("key_by_recovery"),
    });
    Ok(User {
        id: row.get("id"),
        username: row.get("username"),
        role: role.parse().map_err(|e: String| StoreError::Db {
            doing: "reading a user's role",
            source: sqlx::Error::Decode(e.into()),
        })?,
        password_hash: row.get("password_hash"),
        disabled: row.get::<i64, _>("disabled") != 0,
        created_at: from_micros(row.get("created_at")),
        totp_secret: row.get("totp_secret"),
        totp_enabled: row.get::<i64, _>("totp_enabled") != 0,
        totp_last_step: row.get("totp_last_step"),
        keys,
    })
}

impl Store {
    /// Creates a user; `Conflict` if the name is taken (names compare
    /// case-insensitively).
    pub async fn create_user(&self, new: NewUser<'_>, now: jiff::Timestamp) -> Result<User> {
        let (recipient, by_pw, by_rec) = match &new.keys {
            Some(k) => (
                Some(k.recipient.as_str()),
                Some(k.by_password.as_slice()),
                Some(k.by_recovery.as_slice()),
            ),
            None => (None, None, None),
        };
        let res = sqlx::query(
            "INSERT INTO users (username, role, password_hash, created_at, age_recipient, key_by_password, key_by_recovery)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(new.username)
        .bind(new.role.as_str())
        .bind(new.password_hash)
        .bind(micros(now))
        .bind(recipient)
        .bind(by_pw)
        .bind(by_rec)
        .execute(&self.pool)
        .await;
        match res {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict(format!("user `{}`", new.username)))
            }
            r => {
                let id = r.doing("creating a user")?.last_insert_rowid();
                self.user_by_id(id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("user #{id}")))
            }
        }
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE username = ?"))
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .doing("looking up a user by name")?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .doing("looking up a user by id")?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!("SELECT {USER_COLS} FROM users ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .doing("listing users")?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn count_users(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .doing("counting users")
    }

    /// Replaces the password hash and (for hub users) the password-wrapped
    /// key in one transaction, so the two never disagree. Ends every session
    /// of the user when `end_sessions`.
    pub async fn set_password(
        &self,
        user_id: i64,
        password_hash: &str,
        keys: Option<&UserKeys>,
        end_sessions: bool,
    ) -> Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .doing("starting a password change")?;
        let n = match keys {
            Some(k) => sqlx::query(
                "UPDATE users SET password_hash = ?, age_recipient = ?, key_by_password = ?, key_by_recovery = ? WHERE id = ?",
            )
            .bind(password_hash)
            .bind(&k.recipient)
            .bind(&k.by_password)
            .bind(&k.by_recovery)
            .bind(user_id),
            None => sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
                .bind(password_hash)
                .bind(user_id),
        }
        .execute(&mut *tx)
        .await
        .doing("changing a password")?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("user #{user_id}")));
        }
        if end_sessions {
            sqlx::query("DELETE FROM sessions WHERE user_id = ?")
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .doing("ending sessions after a password change")?;
        }
        tx.commit().await.doing("committing a password change")
    }

    /// Disables (or re-enables) a user. Disabling ends their sessions at once.
    pub async fn set_disabled(&self, user_id: i64, disabled: bool) -> Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .doing("starting to disable a user")?;
        let n = sqlx::query("UPDATE users SET disabled = ? WHERE id = ?")
            .bind(disabled as i64)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .doing("disabling a user")?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("user #{user_id}")));
        }
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE user_id = ?")
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .doing("ending a disabled user's sessions")?;
        }
        tx.commit().await.doing("committing a user's disabled flag")
    }

    pub async fn set_role(&self, user_id: i64, role: Role) -> Result<()> {
        sqlx::query("UPDATE users SET role = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(user_id)
            .execute(&self.pool)
            .await
            .doing("changing a role")?;
        Ok(())
    }

    /// Stores a TOTP secret not yet confirmed (enrolment in progress).
    pub async fn set_pending_totp(&self, user_id: i64, secret: &[u8]) -> Result<()> {
        sqlx::query("UPDATE users SET totp_secret = ?, totp_enabled = 0, totp_last_step = NULL WHERE id = ?")
            .bind(secret)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .doing("storing a pending TOTP secret")?;
        Ok(())
    }

    /// Turns TOTP on after the user proved their authenticator works, and
    /// replaces their one-time recovery codes (given as hashes).
    pub async fn enable_totp(
        &self,
        user_id: i64,
        accepted_step: i64,
        recovery_hashes: &[Vec<u8>],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.doing("starting TOTP enrolment")?;
        sqlx::query("UPDATE users SET totp_enabled = 1, totp_last_step = ? WHERE id = ? AND totp_secret IS NOT NULL")
            .bind(accepted_step)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .doing("enabling TOTP")?;
        sqlx::query("DELETE FROM totp_recovery_codes WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .doing("replacing recovery codes")?;
        for h in recovery_hashes {
            sqlx::query("INSERT INTO totp_recovery_codes (user_id, code_hash) VALUES (?, ?)")
                .bind(user_id)
                .bind(h)
                .execute(&mut *tx)
                .await
                .doing("storing a recovery code")?;
        }
        tx.commit().await.doing("committing TOTP enrolment")
    }

    /// Turns TOTP off and forgets the secret and recovery codes.
    pub async fn disable_totp(&self, user_id: i64) -> Result<()> {
        let mut tx = self.pool.begin().await.doing("starting to turn TOTP off")?;
        sqlx::query("UPDATE users SET totp_enabled = 0, totp_secret = NULL, totp_last_step = NULL WHERE id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .doing("turning TOTP off")?;
        sqlx::query("DELETE FROM totp_recovery_codes WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .doing("removing recovery codes")?;
        tx.commit().await.doing("committing TOTP off")
    }

    /// Records `step` as used, if it is newer than the last accepted one.
    /// Returns false when the step (or a later one) was already used: a
    /// replayed code. Atomic, so two racing requests cannot both win.
    pub async fn consume_totp_step(&self, user_id: i64, step: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE users SET totp_last_step = ? WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)",
        )
        .bind(step)
        .bind(user_id)
        .bind(step)
        .execute(&self.pool)
        .await
        .doing("recording a used TOTP step")?
        .rows_affected();
        Ok(n == 1)
    }

    /// Marks a recovery code (by hash) used; false if unknown or used before.
    pub async fn consume_recovery_code(
        &self,
        user_id: i64,
        code_hash: &[u8],
        now: jiff::Timestamp,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE totp_recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
        )
        .bind(micros(now))
        .bind(user_id)
        .bind(code_hash)
        .execute(&self.pool)
        .await
        .doing("using a recovery code")?
        .rows_affected();
        Ok(n == 1)
    }

    /// How many one-time recovery codes the user has left.
    pub async fn recovery_codes_left(&self, user_id: i64) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM totp_recovery_codes WHERE user_id = ? AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
        .doing("counting recovery codes")
    }
}
