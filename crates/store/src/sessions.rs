//! Sign-in sessions. The store knows only the SHA-256 of each token, so a
//! copy of the database cannot be replayed as cookies.
//!
//! A session id is never handed out twice (`AUTOINCREMENT`, migration 10):
//! whatever is keyed by an id — an audit entry, a cache — cannot come to
//! mean another sign-in. Memory that holds secrets for a session keys them
//! by the token hash all the same (see `porchlight-vault`'s keyring).

use sqlx::Row;

use crate::{from_micros, micros, Doing, Result, Role, Store, StoreError};

/// How far a session has come through sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStage {
    /// Password accepted; waiting for the second factor. Grants nothing.
    Totp,
    /// Signed in, but the account must enrol a second factor before
    /// anything else (owners).
    Enroll,
    /// Fully signed in.
    Full,
}

impl SessionStage {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStage::Totp => "totp",
            SessionStage::Enroll => "enroll",
            SessionStage::Full => "full",
        }
    }

    fn parse(s: &str) -> SessionStage {
        match s {
            "full" => SessionStage::Full,
            "enroll" => SessionStage::Enroll,
            _ => SessionStage::Totp,
        }
    }
}

/// A session, joined with the facts about its user that every request needs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionRow {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub user_disabled: bool,
    pub stage: SessionStage,
    pub csrf_token: String,
    pub created_at: jiff::Timestamp,
    pub last_seen_at: jiff::Timestamp,
    pub expires_at: jiff::Timestamp,
    pub client_addr: String,
    pub user_agent: String,
    /// SHA-256 of the session's token: unique to this sign-in for ever.
    #[serde(skip)]
    pub token_hash: Vec<u8>,
}

const SESSION_SELECT: &str =
    "SELECT s.id, s.user_id, u.username, u.role, u.disabled, s.stage, s.csrf_token, \
     s.created_at, s.last_seen_at, s.expires_at, s.client_addr, s.user_agent, s.token_hash \
     FROM sessions s JOIN users u ON u.id = s.user_id";

fn session_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<SessionRow> {
    let role: String = row.get("role");
    Ok(SessionRow {
        id: row.get("id"),
        user_id: row.get("user_id"),
        username: row.get("username"),
        role: role.parse().map_err(|e: String| StoreError::Db {
            doing: "reading a session's role",
            source: sqlx::Error::Decode(e.into()),
        })?,
        user_disabled: row.get::<i64, _>("disabled") != 0,
        stage: SessionStage::parse(row.get("stage")),
        csrf_token: row.get("csrf_token"),
        created_at: from_micros(row.get("created_at")),
        last_seen_at: from_micros(row.get("last_seen_at")),
        expires_at: from_micros(row.get("expires_at")),
        client_addr: row.get("client_addr"),
        user_agent: row.get("user_agent"),
        token_hash: row.get("token_hash"),
    })
}

/// What it takes to create a session.
pub struct NewSession<'a> {
    pub token_hash: &'a [u8],
    pub user_id: i64,
    pub stage: SessionStage,
    pub csrf_token: &'a str,
    pub now: jiff::Timestamp,
    pub expires_at: jiff::Timestamp,
    pub client_addr: &'a str,
    pub user_agent: &'a str,
}

impl Store {
    pub async fn create_session(&self, s: NewSession<'_>) -> Result<i64> {
        let id = sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, stage, csrf_token, created_at, last_seen_at, expires_at, client_addr, user_agent)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.token_hash)
        .bind(s.user_id)
        .bind(s.stage.as_str())
        .bind(s.csrf_token)
        .bind(micros(s.now))
        .bind(micros(s.now))
        .bind(micros(s.expires_at))
        .bind(s.client_addr)
        .bind(s.user_agent)
        .execute(&self.pool)
        .await
        .doing("creating a session")?
        .last_insert_rowid();
        Ok(id)
    }

    /// The session with this token hash, whatever its state; the caller
    /// decides about expiry and disabled users.
    pub async fn session_by_token_hash(&self, token_hash: &[u8]) -> Result<Option<SessionRow>> {
        let row = sqlx::query(&format!("{SESSION_SELECT} WHERE s.token_hash = ?"))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .doing("looking up a session")?;
        row.as_ref().map(session_from_row).transpose()
    }

    pub async fn session_by_id(&self, id: i64) -> Result<Option<SessionRow>> {
        let row = sqlx::query(&format!("{SESSION_SELECT} WHERE s.id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .doing("looking up a session")?;
        row.as_ref().map(session_from_row).transpose()
    }

    pub async fn sessions_of_user(&self, user_id: i64) -> Result<Vec<SessionRow>> {
        let rows = sqlx::query(&format!(
            "{SESSION_SELECT} WHERE s.user_id = ? ORDER BY s.last_seen_at DESC"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .doing("listing sessions")?;
        rows.iter().map(session_from_row).collect()
    }

    pub async fn touch_session(&self, id: i64, now: jiff::Timestamp) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id = ?")
            .bind(micros(now))
            .bind(id)
            .execute(&self.pool)
            .await
            .doing("touching a session")?;
        Ok(())
    }

    pub async fn set_session_stage(&self, id: i64, stage: SessionStage) -> Result<()> {
        sqlx::query("UPDATE sessions SET stage = ? WHERE id = ?")
            .bind(stage.as_str())
            .bind(id)
            .execute(&self.pool)
            .await
            .doing("advancing a session")?;
        Ok(())
    }

    /// Deletes one session; true if it existed.
    pub async fn delete_session(&self, id: i64) -> Result<bool> {
        let n = sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .doing("ending a session")?
            .rows_affected();
        Ok(n == 1)
    }

    /// Deletes sessions past their absolute expiry or idle for longer than
    /// `idle_before` allows; returns the ids removed.
    pub async fn delete_expired_sessions(
        &self,
        now: jiff::Timestamp,
        idle_before: jiff::Timestamp,
    ) -> Result<Vec<i64>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ? RETURNING id",
        )
        .bind(micros(now))
        .bind(micros(idle_before))
        .fetch_all(&self.pool)
        .await
        .doing("removing expired sessions")?;
        Ok(ids)
    }

    /// Ids of every session still in the store (the hub drops in-memory
    /// keys of sessions that are gone, e.g. ended by the CLI).
    pub async fn live_session_ids(&self) -> Result<Vec<i64>> {
        sqlx::query_scalar("SELECT id FROM sessions")
            .fetch_all(&self.pool)
            .await
            .doing("listing live sessions")
    }

    /// Token hashes of every session still in the store: what the hub's
    /// in-memory keys are filed under.
    pub async fn live_session_token_hashes(&self) -> Result<Vec<Vec<u8>>> {
        sqlx::query_scalar("SELECT token_hash FROM sessions")
            .fetch_all(&self.pool)
            .await
            .doing("listing live sessions")
    }
}
