//! Per-device RTSP credentials (`rtsp_tokens`, migration 11): rows only.
//! The policy — who may create one, how a secret is checked and
//! throttled, what is audited — lives in the vault
//! (`porchlight_vault::rtsp`).
//!
//! Invariants:
//! * Only SHA-256 of a secret is stored; a lookup is by that hash.
//! * Ids are never reused (AUTOINCREMENT): audit entries name tokens by id.
//! * A token never widens its user's rights: [`Store::rtsp_token_may_see`]
//!   is the user's own rule (owner: every camera; member: granted ones;
//!   nobody while disabled) intersected with the token's scope.

use sqlx::Row;

use crate::{from_micros, micros, Doing, Result, Role, Store, StoreError};

/// One RTSP token, joined with what a check needs about its user.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RtspTokenRow {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub user_disabled: bool,
    /// The device, as its user named it ("living-room TV", "home-assistant").
    pub label: String,
    /// `None`: every camera the user may see; else the names of the
    /// cameras it is limited to (possibly none left, after removals).
    pub cameras: Option<Vec<String>>,
    pub created_at: jiff::Timestamp,
    pub last_used_at: Option<jiff::Timestamp>,
}

const TOKEN_SELECT: &str = "SELECT t.id, t.user_id, u.username, u.role, u.disabled, t.label, \
     t.all_cameras, t.created_at, t.last_used_at, \
     (SELECT group_concat(c.name, char(10)) FROM \
        (SELECT c.name FROM rtsp_token_cameras tc JOIN cameras c ON c.id = tc.camera_id \
         WHERE tc.token_id = t.id ORDER BY c.name) c) AS camera_names \
     FROM rtsp_tokens t JOIN users u ON u.id = t.user_id";

fn token_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<RtspTokenRow> {
    let role: String = row.get("role");
    let all = row.get::<i64, _>("all_cameras") != 0;
    let names: Option<String> = row.get("camera_names");
    Ok(RtspTokenRow {
        id: row.get("id"),
        user_id: row.get("user_id"),
        username: row.get("username"),
        role: role.parse().map_err(|e: String| StoreError::Db {
            doing: "reading an RTSP token's user",
            source: sqlx::Error::Decode(e.into()),
        })?,
        user_disabled: row.get::<i64, _>("disabled") != 0,
        label: row.get("label"),
        cameras: (!all).then(|| {
            names
                .map(|n| n.split('\n').map(str::to_owned).collect())
                .unwrap_or_default()
        }),
        created_at: from_micros(row.get("created_at")),
        last_used_at: row.get::<Option<i64>, _>("last_used_at").map(from_micros),
    })
}

impl Store {
    /// Stores a new token for `user_id`; `cameras`: `None` for every camera
    /// the user may see, else the camera ids it is limited to. Returns its
    /// id.
    pub async fn create_rtsp_token(
        &self,
        user_id: i64,
        label: &str,
        token_hash: &[u8],
        cameras: Option<&[i64]>,
        now: jiff::Timestamp,
    ) -> Result<i64> {
        let mut tx = self
            .pool
            .begin()
            .await
            .doing("starting to create an RTSP token")?;
        let id = sqlx::query(
            "INSERT INTO rtsp_tokens (user_id, label, token_hash, all_cameras, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(user_id)
        .bind(label)
        .bind(token_hash)
        .bind(cameras.is_none() as i64)
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .doing("creating an RTSP token")?
        .last_insert_rowid();
        for cam in cameras.unwrap_or_default() {
            sqlx::query(
                "INSERT OR IGNORE INTO rtsp_token_cameras (token_id, camera_id) VALUES (?, ?)",
            )
            .bind(id)
            .bind(*cam)
            .execute(&mut *tx)
            .await
            .doing("limiting an RTSP token to a camera")?;
        }
        tx.commit().await.doing("committing an RTSP token")?;
        Ok(id)
    }

    /// A user's tokens, newest first.
    pub async fn rtsp_tokens_of(&self, user_id: i64) -> Result<Vec<RtspTokenRow>> {
        let rows = sqlx::query(&format!(
            "{TOKEN_SELECT} WHERE t.user_id = ? ORDER BY t.id DESC"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .doing("listing RTSP tokens")?;
        rows.iter().map(token_from_row).collect()
    }

    pub async fn rtsp_token_by_hash(&self, token_hash: &[u8]) -> Result<Option<RtspTokenRow>> {
        let row = sqlx::query(&format!("{TOKEN_SELECT} WHERE t.token_hash = ?"))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .doing("looking up an RTSP token")?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub async fn rtsp_token_by_id(&self, id: i64) -> Result<Option<RtspTokenRow>> {
        let row = sqlx::query(&format!("{TOKEN_SELECT} WHERE t.id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .doing("looking up an RTSP token")?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Deletes `user_id`'s token `id`; false if they have no such token.
    pub async fn delete_rtsp_token(&self, user_id: i64, id: i64) -> Result<bool> {
        let n = sqlx::query("DELETE FROM rtsp_tokens WHERE id = ? AND user_id = ?")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .doing("revoking an RTSP token")?
            .rows_affected();
        Ok(n == 1)
    }

    pub async fn touch_rtsp_token(&self, id: i64, now: jiff::Timestamp) -> Result<()> {
        sqlx::query("UPDATE rtsp_tokens SET last_used_at = ? WHERE id = ?")
            .bind(micros(now))
            .bind(id)
            .execute(&self.pool)
            .await
            .doing("noting an RTSP token's use")?;
        Ok(())
    }

    /// May token `token_id` show camera `camera_id` now? False when the
    /// token is gone (revoked), its user is disabled or may not see the
    /// camera, or the camera is outside the token's scope. One query: the
    /// restream asks it every few seconds per viewer.
    pub async fn rtsp_token_may_see(&self, token_id: i64, camera_id: i64) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM rtsp_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.id = ? AND u.disabled = 0
               AND (u.role = 'owner' OR (u.role = 'member' AND EXISTS
                    (SELECT 1 FROM camera_grants g WHERE g.camera_id = ? AND g.user_id = u.id)))
               AND (t.all_cameras = 1 OR EXISTS
                    (SELECT 1 FROM rtsp_token_cameras tc WHERE tc.token_id = t.id AND tc.camera_id = ?))",
        )
        .bind(token_id)
        .bind(camera_id)
        .bind(camera_id)
        .fetch_one(&self.pool)
        .await
        .doing("checking an RTSP token's camera")?;
        Ok(n > 0)
    }
}
