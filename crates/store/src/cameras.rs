//! Cameras and who may see them.

use sqlx::Row;

use crate::{from_micros, micros, Doing, Result, Store, StoreError};

/// A camera as configured.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Camera {
    pub id: i64,
    pub name: String,
    pub main_url: String,
    pub sub_url: Option<String>,
    pub username: Option<String>,
    #[serde(skip)]
    pub password: Option<String>,
    pub enabled: bool,
    pub retain_max_age_secs: Option<i64>,
    pub retain_max_bytes: Option<i64>,
    pub created_at: jiff::Timestamp,
}

/// What it takes to add a camera.
#[derive(Debug, Clone, Default)]
pub struct NewCamera {
    pub name: String,
    pub main_url: String,
    pub sub_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub retain_max_age_secs: Option<i64>,
    pub retain_max_bytes: Option<i64>,
}

const COLS: &str = "id, name, main_url, sub_url, username, password, enabled, retain_max_age_secs, retain_max_bytes, created_at";

fn camera_from_row(r: &sqlx::sqlite::SqliteRow) -> Camera {
    Camera {
        id: r.get("id"),
        name: r.get("name"),
        main_url: r.get("main_url"),
        sub_url: r.get("sub_url"),
        username: r.get("username"),
        password: r.get("password"),
        enabled: r.get::<i64, _>("enabled") != 0,
        retain_max_age_secs: r.get("retain_max_age_secs"),
        retain_max_bytes: r.get("retain_max_bytes"),
        created_at: from_micros(r.get("created_at")),
    }
}

impl Store {
    pub async fn create_camera(&self, c: &NewCamera, now: jiff::Timestamp) -> Result<Camera> {
        let res = sqlx::query(
            "INSERT INTO cameras (name, main_url, sub_url, username, password, retain_max_age_secs, retain_max_bytes, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.name)
        .bind(&c.main_url)
        .bind(&c.sub_url)
        .bind(&c.username)
        .bind(&c.password)
        .bind(c.retain_max_age_secs)
        .bind(c.retain_max_bytes)
        .bind(micros(now))
        .execute(&self.pool)
        .await;
        match res {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict(format!("camera `{}`", c.name)))
            }
            r => {
                let id = r.doing("adding a camera")?.last_insert_rowid();
                self.camera_by_id(id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("camera #{id}")))
            }
        }
    }

    pub async fn cameras(&self) -> Result<Vec<Camera>> {
        let rows = sqlx::query(&format!("SELECT {COLS} FROM cameras ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .doing("listing cameras")?;
        Ok(rows.iter().map(camera_from_row).collect())
    }

    pub async fn camera_by_id(&self, id: i64) -> Result<Option<Camera>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM cameras WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .doing("looking up a camera")?;
        Ok(row.as_ref().map(camera_from_row))
    }

    pub async fn camera_by_name(&self, name: &str) -> Result<Option<Camera>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM cameras WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .doing("looking up a camera")?;
        Ok(row.as_ref().map(camera_from_row))
    }

    /// Removes a camera. Its recordings must have been moved to garbage
    /// first (see [`Store::delete_recordings`]).
    pub async fn delete_camera(&self, id: i64) -> Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .doing("starting to remove a camera")?;
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recordings WHERE camera_id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .doing("counting a camera's recordings")?;
        if left > 0 {
            return Err(StoreError::Conflict(format!(
                "camera #{id} still has {left} recordings"
            )));
        }
        sqlx::query("DELETE FROM cameras WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .doing("removing a camera")?;
        tx.commit().await.doing("committing a camera removal")
    }

    /// Points a camera at a new address and credentials (a running hub
    /// reconnects within a few seconds: it restarts tasks whose camera row
    /// changed).
    pub async fn update_camera_source(
        &self,
        id: i64,
        main_url: &str,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE cameras SET main_url = ?, username = ?, password = ? WHERE id = ?")
            .bind(main_url)
            .bind(username)
            .bind(password)
            .bind(id)
            .execute(&self.pool)
            .await
            .doing("updating a camera's address")?;
        Ok(())
    }

    /// Sets or clears a camera's sub-stream address (the hub picks the
    /// change up at its next look at the camera list).
    pub async fn set_camera_sub_url(&self, id: i64, sub_url: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE cameras SET sub_url = ? WHERE id = ?")
            .bind(sub_url)
            .bind(id)
            .execute(&self.pool)
            .await
            .doing("updating a camera's sub-stream address")?;
        Ok(())
    }

    /// Turns recording of a camera on or off (privacy mode, removal).
    pub async fn set_camera_enabled(&self, id: i64, enabled: bool) -> Result<()> {
        sqlx::query("UPDATE cameras SET enabled = ? WHERE id = ?")
            .bind(enabled as i64)
            .bind(id)
            .execute(&self.pool)
            .await
            .doing("switching a camera on or off")?;
        Ok(())
    }

    /// Public keys a new recording of `camera_id` is encrypted to: every
    /// enabled owner, and every enabled member granted this camera.
    pub async fn camera_recipients(&self, camera_id: i64) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT u.age_recipient FROM users u
             WHERE u.disabled = 0 AND u.age_recipient IS NOT NULL AND (
                u.role = 'owner' OR
                (u.role = 'member' AND EXISTS (SELECT 1 FROM camera_grants g WHERE g.camera_id = ? AND g.user_id = u.id)))
             ORDER BY u.id",
        )
        .bind(camera_id)
        .fetch_all(&self.pool)
        .await
        .doing("reading a camera's recipients")
    }

    /// A number that grows whenever anything that decides a camera's
    /// recipients changes (a grant, a revoke, an account added, removed,
    /// disabled, enabled, its role or its key), in the same transaction as
    /// the change: triggers keep it (migration 12), whichever process made
    /// the change. The recorder polls it to re-key running segments
    /// (design/keys.md, "When a change of recipients takes effect"). One
    /// row, one page: cheap to read every second.
    pub async fn recipient_changes(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT n FROM recipient_changes WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .doing("reading the recipient change counter")
    }

    pub async fn grant_camera(&self, camera_id: i64, user_id: i64, granted: bool) -> Result<()> {
        let q = if granted {
            "INSERT OR IGNORE INTO camera_grants (camera_id, user_id) VALUES (?, ?)"
        } else {
            "DELETE FROM camera_grants WHERE camera_id = ? AND user_id = ?"
        };
        sqlx::query(q)
            .bind(camera_id)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .doing("changing a camera grant")?;
        Ok(())
    }

    /// May `user_id` see `camera_id`? Owners see every camera.
    pub async fn may_see_camera(&self, user_id: i64, camera_id: i64) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users u WHERE u.id = ? AND u.disabled = 0 AND (u.role = 'owner' OR
               (u.role = 'member' AND EXISTS (SELECT 1 FROM camera_grants g WHERE g.camera_id = ? AND g.user_id = u.id)))",
        )
        .bind(user_id)
        .bind(camera_id)
        .fetch_one(&self.pool)
        .await
        .doing("checking a camera grant")?;
        Ok(n > 0)
    }
}

/// What the hub last reported about a camera's connection.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CameraStatusRow {
    pub connected: bool,
    pub fps: f64,
    pub bitrate_bps: f64,
    pub last_error: Option<String>,
    pub updated_at: jiff::Timestamp,
}

/// Which stream's status table: a fixed name, never user input.
#[derive(Clone, Copy)]
enum StatusTable {
    Main,
    Sub,
}

impl StatusTable {
    fn name(self) -> &'static str {
        match self {
            StatusTable::Main => "camera_status",
            StatusTable::Sub => "camera_sub_status",
        }
    }

    fn storing(self) -> &'static str {
        match self {
            StatusTable::Main => "storing camera status",
            StatusTable::Sub => "storing camera sub-stream status",
        }
    }

    fn reading(self) -> &'static str {
        match self {
            StatusTable::Main => "reading camera status",
            StatusTable::Sub => "reading camera sub-stream status",
        }
    }
}

impl Store {
    /// Many cameras' statuses of one table in one statement (one commit).
    async fn put_statuses(
        &self,
        table: StatusTable,
        rows: &[(i64, &CameraStatusRow)],
    ) -> Result<()> {
        // SQLite's limit on bound parameters is 32766; 6 per row.
        for chunk in rows.chunks(1000) {
            let values = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            // Rows of cameras removed meanwhile are skipped (the join);
            // `WHERE true` makes the upsert parse.
            let sql = format!(
                "INSERT INTO {} (camera_id, connected, fps, bitrate_bps, last_error, updated_at)
                 SELECT v.* FROM (VALUES {values}) AS v JOIN cameras c ON c.id = v.column1 WHERE true
                 ON CONFLICT (camera_id) DO UPDATE SET connected = excluded.connected, fps = excluded.fps,
                   bitrate_bps = excluded.bitrate_bps, last_error = excluded.last_error, updated_at = excluded.updated_at",
                table.name()
            );
            let mut q = sqlx::query(&sql);
            for (camera_id, s) in chunk {
                q = q
                    .bind(*camera_id)
                    .bind(s.connected as i64)
                    .bind(s.fps)
                    .bind(s.bitrate_bps)
                    .bind(&s.last_error)
                    .bind(micros(s.updated_at));
            }
            q.execute(&self.pool).await.doing(table.storing())?;
        }
        Ok(())
    }

    /// Stores the statuses of many camera streams at once: `main` for the
    /// main streams, `sub` for sub-streams (two statements at most,
    /// whatever the number of cameras). Rows of cameras that no longer
    /// exist are skipped.
    pub async fn put_camera_statuses(
        &self,
        main: &[(i64, &CameraStatusRow)],
        sub: &[(i64, &CameraStatusRow)],
    ) -> Result<()> {
        if !main.is_empty() {
            self.put_statuses(StatusTable::Main, main).await?;
        }
        if !sub.is_empty() {
            self.put_statuses(StatusTable::Sub, sub).await?;
        }
        Ok(())
    }

    async fn status(&self, table: StatusTable, camera_id: i64) -> Result<Option<CameraStatusRow>> {
        let sql = format!(
            "SELECT connected, fps, bitrate_bps, last_error, updated_at FROM {} WHERE camera_id = ?",
            table.name()
        );
        let r = sqlx::query(&sql)
            .bind(camera_id)
            .fetch_optional(&self.pool)
            .await
            .doing(table.reading())?;
        Ok(r.map(|r| CameraStatusRow {
            connected: r.get::<i64, _>("connected") != 0,
            fps: r.get("fps"),
            bitrate_bps: r.get("bitrate_bps"),
            last_error: r.get("last_error"),
            updated_at: from_micros(r.get("updated_at")),
        }))
    }

    /// Stores what the hub last saw of the camera's main stream.
    pub async fn put_camera_status(&self, camera_id: i64, s: &CameraStatusRow) -> Result<()> {
        self.put_statuses(StatusTable::Main, &[(camera_id, s)])
            .await
    }

    /// What the hub last reported about the camera's main stream.
    pub async fn camera_status(&self, camera_id: i64) -> Result<Option<CameraStatusRow>> {
        self.status(StatusTable::Main, camera_id).await
    }

    /// Stores what the hub last saw of the camera's sub-stream (cameras
    /// with a `sub_url` only).
    pub async fn put_camera_sub_status(&self, camera_id: i64, s: &CameraStatusRow) -> Result<()> {
        self.put_statuses(StatusTable::Sub, &[(camera_id, s)]).await
    }

    /// What the hub last reported about the camera's sub-stream, if it
    /// has one and a hub has run since.
    pub async fn camera_sub_status(&self, camera_id: i64) -> Result<Option<CameraStatusRow>> {
        self.status(StatusTable::Sub, camera_id).await
    }
}
