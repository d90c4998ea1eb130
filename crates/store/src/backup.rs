//! Off-site backup's bookkeeping (migration 14, design/backup.md): the
//! destinations, which events' footage goes off-site, and how far each
//! segment's copy got.
//!
//! Invariants:
//!
//! * `backup_segments.uploaded_to` only ever grows, and only to a record
//!   boundary that is already stored at the destination: a restart
//!   resumes from it and never re-sends what it covers.
//! * An event is marked for backup by its kind while that kind is known in
//!   clear (the moment the hub records or updates it, [`worthy`]); the
//!   kind is sealed afterwards and nothing here stores it.

use sqlx::Row;

use crate::{from_micros, micros, Doing, Result, Store};

/// Whether an event of this kind goes off-site in `events` mode: people,
/// vehicles, parcels, the doorbell, and the alarm when it goes off (its
/// `pending` and `triggered` events are alerts; arming and disarming are
/// not). Motion alone and animals do not.
pub fn worthy(kind: &str, alert: bool) -> bool {
    matches!(
        kind,
        "person" | "vehicle" | "package_delivered" | "package_taken" | "doorbell"
    ) || (kind == "alarm" && alert)
}

/// What the household chose to send where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupDestination {
    pub id: i64,
    pub name: String,
    pub url: String,
    /// JSON object: `endpoint`, `region`, `access_key_id`,
    /// `secret_access_key`, `allow_http`.
    pub options: String,
    /// `events` or `continuous`.
    pub mode: String,
    /// None: every camera.
    pub cameras: Option<Vec<i64>>,
    pub max_rate_bps: Option<i64>,
    pub may_delete: bool,
    pub retain_days: Option<i64>,
    pub retain_bytes: Option<i64>,
    pub created_at: jiff::Timestamp,
    pub bundle_digest: Option<Vec<u8>>,
    pub last_upload_at: Option<jiff::Timestamp>,
    pub last_error: Option<String>,
    pub last_error_at: Option<jiff::Timestamp>,
    pub uploaded_bytes: i64,
}

impl BackupDestination {
    /// Whether `camera_id` is among the chosen cameras.
    pub fn covers(&self, camera_id: i64) -> bool {
        self.cameras
            .as_ref()
            .is_none_or(|list| list.contains(&camera_id))
    }
}

/// A destination to add.
#[derive(Debug, Clone)]
pub struct NewBackupDestination<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub options: &'a str,
    pub mode: &'a str,
    pub cameras: Option<Vec<i64>>,
    pub max_rate_bps: Option<i64>,
    pub may_delete: bool,
    pub retain_days: Option<i64>,
    pub retain_bytes: Option<i64>,
}

/// One segment's copy at one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSegment {
    pub dest_id: i64,
    pub recording_id: i64,
    pub object_id: String,
    pub priority: i64,
    pub described: bool,
    pub uploaded_to: i64,
    pub done: bool,
}

/// A marked event and its copy's state at one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupEvent {
    pub event_id: i64,
    pub camera_id: Option<i64>,
    pub source: String,
    pub start: jiff::Timestamp,
    pub end: Option<jiff::Timestamp>,
    /// The sealed details exactly as the events table holds them (empty
    /// when none were kept).
    pub sealed: Vec<u8>,
    /// None: no copy yet.
    pub object_id: Option<String>,
    pub versions: i64,
    pub sent_end: bool,
}

/// Queue figures for `backup status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupQueue {
    /// Segments with something still to send.
    pub segments: i64,
    /// Marked events whose copy is not final.
    pub events: i64,
    /// When the longest-waiting of those segments was queued.
    pub oldest_queued_at: Option<jiff::Timestamp>,
}

const DEST_COLS: &str = "id, name, url, options, mode, cameras, max_rate_bps, may_delete, \
     retain_days, retain_bytes, created_at, bundle_digest, last_upload_at, last_error, \
     last_error_at, uploaded_bytes";

fn dest_from_row(r: &sqlx::sqlite::SqliteRow) -> BackupDestination {
    let cameras: Option<String> = r.get("cameras");
    BackupDestination {
        id: r.get("id"),
        name: r.get("name"),
        url: r.get("url"),
        options: r.get("options"),
        mode: r.get("mode"),
        // Written only by `add_backup_destination`, as a JSON array.
        cameras: cameras.and_then(|c| serde_json::from_str(&c).ok()),
        max_rate_bps: r.get("max_rate_bps"),
        may_delete: r.get::<i64, _>("may_delete") != 0,
        retain_days: r.get("retain_days"),
        retain_bytes: r.get("retain_bytes"),
        created_at: from_micros(r.get("created_at")),
        bundle_digest: r.get("bundle_digest"),
        last_upload_at: r.get::<Option<i64>, _>("last_upload_at").map(from_micros),
        last_error: r.get("last_error"),
        last_error_at: r.get::<Option<i64>, _>("last_error_at").map(from_micros),
        uploaded_bytes: r.get("uploaded_bytes"),
    }
}

fn seg_from_row(r: &sqlx::sqlite::SqliteRow) -> BackupSegment {
    BackupSegment {
        dest_id: r.get("dest_id"),
        recording_id: r.get("recording_id"),
        object_id: r.get("object_id"),
        priority: r.get("priority"),
        described: r.get::<i64, _>("described") != 0,
        uploaded_to: r.get("uploaded_to"),
        done: r.get::<i64, _>("done") != 0,
    }
}

impl Store {
    /// Adds a destination; its name must be new.
    pub async fn add_backup_destination(
        &self,
        d: &NewBackupDestination<'_>,
        now: jiff::Timestamp,
    ) -> Result<BackupDestination> {
        let cameras = d
            .cameras
            .as_ref()
            .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".into()));
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO backup_destinations (name, url, options, mode, cameras, max_rate_bps,
                 may_delete, retain_days, retain_bytes, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(d.name)
        .bind(d.url)
        .bind(d.options)
        .bind(d.mode)
        .bind(cameras)
        .bind(d.max_rate_bps)
        .bind(i64::from(d.may_delete))
        .bind(d.retain_days)
        .bind(d.retain_bytes)
        .bind(micros(now))
        .fetch_one(&self.pool)
        .await
        .doing("adding a backup destination")?;
        self.backup_destination(id)
            .await?
            .ok_or(crate::StoreError::Db {
                doing: "reading back a new backup destination",
                source: sqlx::Error::RowNotFound,
            })
    }

    /// The destination `id`, if it still exists.
    pub async fn backup_destination(&self, id: i64) -> Result<Option<BackupDestination>> {
        let row = sqlx::query(&format!(
            "SELECT {DEST_COLS} FROM backup_destinations WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .doing("reading a backup destination")?;
        Ok(row.as_ref().map(dest_from_row))
    }

    /// Every destination, oldest first.
    pub async fn backup_destinations(&self) -> Result<Vec<BackupDestination>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEST_COLS} FROM backup_destinations ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .doing("listing backup destinations")?;
        Ok(rows.iter().map(dest_from_row).collect())
    }

    /// Removes the destination `name` (and its progress); false if there
    /// was none. Nothing at the destination is touched.
    pub async fn remove_backup_destination(&self, name: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM backup_destinations WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .doing("removing a backup destination")?
            .rows_affected();
        Ok(n > 0)
    }

    /// Records that the key bundle with this digest is stored at `dest_id`.
    pub async fn set_backup_bundle_digest(&self, dest_id: i64, digest: &[u8]) -> Result<()> {
        sqlx::query("UPDATE backup_destinations SET bundle_digest = ? WHERE id = ?")
            .bind(digest)
            .bind(dest_id)
            .execute(&self.pool)
            .await
            .doing("recording a backup's key bundle")?;
        Ok(())
    }

    /// Records a successful upload of `bytes` and clears the last error.
    pub async fn note_backup_upload(
        &self,
        dest_id: i64,
        bytes: i64,
        now: jiff::Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE backup_destinations SET last_upload_at = ?, uploaded_bytes = uploaded_bytes + ?,
                 last_error = NULL, last_error_at = NULL WHERE id = ?",
        )
        .bind(micros(now))
        .bind(bytes)
        .bind(dest_id)
        .execute(&self.pool)
        .await
        .doing("recording a backup upload")?;
        Ok(())
    }

    /// Records why the destination could not be reached.
    pub async fn note_backup_error(
        &self,
        dest_id: i64,
        error: &str,
        now: jiff::Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE backup_destinations SET last_error = ?, last_error_at = ? WHERE id = ?",
        )
        .bind(error)
        .bind(micros(now))
        .bind(dest_id)
        .execute(&self.pool)
        .await
        .doing("recording a backup error")?;
        Ok(())
    }

    /// Marks event `event_id` for backup (idempotent).
    pub async fn mark_event_for_backup(&self, event_id: i64, now: jiff::Timestamp) -> Result<()> {
        sqlx::query("INSERT OR IGNORE INTO backup_events (event_id, marked_at) VALUES (?, ?)")
            .bind(event_id)
            .bind(micros(now))
            .execute(&self.pool)
            .await
            .doing("marking an event for backup")?;
        Ok(())
    }

    /// Marked events whose copy at `dest_id` is not done, marked after
    /// `since` (a destination does not reach back before it was added),
    /// oldest first.
    pub async fn backup_events_pending(
        &self,
        dest_id: i64,
        since: jiff::Timestamp,
    ) -> Result<Vec<BackupEvent>> {
        let rows = sqlx::query(
            "SELECT e.id, e.camera_id, e.source, e.start_us, e.end_us, e.sealed,
                    c.object_id, COALESCE(c.versions, 0) AS versions, COALESCE(c.sent_end, 0) AS sent_end
             FROM backup_events b JOIN events e ON e.id = b.event_id
             LEFT JOIN backup_event_copies c ON c.dest_id = ? AND c.event_id = b.event_id
             WHERE COALESCE(c.done, 0) = 0 AND b.marked_at >= ?
             ORDER BY e.id LIMIT 200",
        )
        .bind(dest_id)
        .bind(micros(since))
        .fetch_all(&self.pool)
        .await
        .doing("listing events to back up")?;
        Ok(rows
            .iter()
            .map(|r| BackupEvent {
                event_id: r.get("id"),
                camera_id: r.get("camera_id"),
                source: r.get("source"),
                start: from_micros(r.get("start_us")),
                end: r.get::<Option<i64>, _>("end_us").map(from_micros),
                sealed: r.get::<Option<Vec<u8>>, _>("sealed").unwrap_or_default(),
                object_id: r.get("object_id"),
                versions: r.get("versions"),
                sent_end: r.get::<i64, _>("sent_end") != 0,
            })
            .collect())
    }

    /// Records the state of event `event_id`'s copy at `dest_id`.
    pub async fn set_backup_event_copy(
        &self,
        dest_id: i64,
        event_id: i64,
        object_id: &str,
        versions: i64,
        sent_end: bool,
        done: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO backup_event_copies (dest_id, event_id, object_id, versions, sent_end, done)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (dest_id, event_id) DO UPDATE SET object_id = excluded.object_id,
                 versions = excluded.versions, sent_end = excluded.sent_end, done = excluded.done",
        )
        .bind(dest_id)
        .bind(event_id)
        // Forgotten once final, as a segment's (set_backup_progress).
        .bind(if done { "" } else { object_id })
        .bind(versions)
        .bind(i64::from(sent_end))
        .bind(i64::from(done))
        .execute(&self.pool)
        .await
        .doing("recording an event's backup copy")?;
        Ok(())
    }

    /// Queues recording `recording_id` for `dest_id` (idempotent; a
    /// segment already queued keeps its state, and its priority rises to
    /// `priority` if that is more urgent).
    pub async fn queue_backup_segment(
        &self,
        dest_id: i64,
        recording_id: i64,
        object_id: &str,
        priority: i64,
        now: jiff::Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO backup_segments (dest_id, recording_id, object_id, priority, queued_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (dest_id, recording_id) DO UPDATE SET
                 priority = MIN(priority, excluded.priority)",
        )
        .bind(dest_id)
        .bind(recording_id)
        .bind(object_id)
        .bind(priority)
        .bind(micros(now))
        .execute(&self.pool)
        .await
        .doing("queueing a segment for backup")?;
        Ok(())
    }

    /// Segments with something left to send to `dest_id`, most urgent
    /// first: an event's newest segment before its pre-roll (the footage
    /// of the moment is what a thief is about to cut off), then the
    /// continuous backlog oldest first.
    pub async fn pending_backup_segments(
        &self,
        dest_id: i64,
        limit: i64,
    ) -> Result<Vec<BackupSegment>> {
        let rows = sqlx::query(
            "SELECT dest_id, recording_id, object_id, priority, described, uploaded_to, done
             FROM backup_segments WHERE dest_id = ? AND done = 0
             ORDER BY priority, CASE WHEN priority = 0 THEN -recording_id ELSE recording_id END
             LIMIT ?",
        )
        .bind(dest_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .doing("listing segments to back up")?;
        Ok(rows.iter().map(seg_from_row).collect())
    }

    /// Records how far segment `recording_id`'s copy at `dest_id` got.
    pub async fn set_backup_progress(
        &self,
        dest_id: i64,
        recording_id: i64,
        described: bool,
        uploaded_to: i64,
        done: bool,
    ) -> Result<()> {
        sqlx::query(
            // A finished copy's object id is forgotten: a thief holding
            // the hub (and a key that cannot list) can then not name its
            // objects to overwrite them (design/backup.md).
            "UPDATE backup_segments SET described = ?1, uploaded_to = MAX(uploaded_to, ?2), done = ?3,
                 object_id = CASE WHEN ?3 = 1 THEN '' ELSE object_id END
             WHERE dest_id = ?4 AND recording_id = ?5",
        )
        .bind(i64::from(described))
        .bind(uploaded_to)
        .bind(i64::from(done))
        .bind(dest_id)
        .bind(recording_id)
        .execute(&self.pool)
        .await
        .doing("recording backup progress")?;
        Ok(())
    }

    /// Main-stream recordings of `cameras` (None: all) not yet queued for
    /// `dest_id` (continuous mode), oldest first.
    pub async fn recordings_not_backed_up(
        &self,
        dest_id: i64,
        cameras: Option<&[i64]>,
        limit: i64,
    ) -> Result<Vec<i64>> {
        let cameras = cameras.map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".into()));
        let ids = sqlx::query_scalar(
            "SELECT r.id FROM recordings r
             WHERE r.stream = 'main'
               AND (?1 IS NULL OR r.camera_id IN (SELECT value FROM json_each(?1)))
               AND NOT EXISTS (
                 SELECT 1 FROM backup_segments b WHERE b.dest_id = ?2 AND b.recording_id = r.id)
             ORDER BY r.id LIMIT ?3",
        )
        .bind(cameras)
        .bind(dest_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .doing("finding recordings to back up")?;
        Ok(ids)
    }

    /// What is still to send to `dest_id`.
    pub async fn backup_queue(&self, dest_id: i64) -> Result<BackupQueue> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(queued_at) AS oldest FROM backup_segments
             WHERE dest_id = ? AND done = 0",
        )
        .bind(dest_id)
        .fetch_one(&self.pool)
        .await
        .doing("counting the backup queue")?;
        let segments: i64 = row.get("n");
        let oldest_queued_at = row.get::<Option<i64>, _>("oldest").map(from_micros);
        let since: i64 =
            sqlx::query_scalar("SELECT created_at FROM backup_destinations WHERE id = ?")
                .bind(dest_id)
                .fetch_optional(&self.pool)
                .await
                .doing("counting the backup queue")?
                .unwrap_or(0);
        let events: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM backup_events b
             LEFT JOIN backup_event_copies c ON c.dest_id = ? AND c.event_id = b.event_id
             WHERE COALESCE(c.done, 0) = 0 AND b.marked_at >= ?",
        )
        .bind(dest_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .doing("counting the backup queue")?;
        Ok(BackupQueue {
            segments,
            events,
            oldest_queued_at,
        })
    }
}
