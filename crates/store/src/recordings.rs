//! The recording index: one row per segment file, plus sample entries and
//! the garbage list. See design/storage.md for the ordering rules.

use sqlx::Row;

use crate::{from_micros, micros, Doing, Result, Store, StoreError};

/// A codec configuration shared by many recordings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleEntryRow {
    pub id: i64,
    pub codec: String,
    pub width: i64,
    pub height: i64,
    pub config: Vec<u8>,
    pub rfc6381: String,
}

/// One segment file's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRow {
    pub id: i64,
    pub camera_id: i64,
    pub stream: String,
    /// Still being written (or interrupted by a crash).
    pub open: bool,
    pub run_id: i64,
    pub start: jiff::Timestamp,
    pub duration_90k: i64,
    pub frames: i64,
    pub sample_bytes: i64,
    pub file_bytes: i64,
    pub sample_entry_id: i64,
    /// Relative to the data folder's `recordings/` directory.
    pub file_name: String,
    pub sha256: Option<Vec<u8>>,
    pub frame_index: Option<Vec<u8>>,
}

impl RecordingRow {
    /// End of the recording on the wall clock.
    pub fn end(&self) -> jiff::Timestamp {
        let us = micros(self.start) + self.duration_90k * 100 / 9;
        from_micros(us)
    }
}

/// A recording being started.
#[derive(Debug, Clone)]
pub struct NewRecording<'a> {
    pub camera_id: i64,
    pub stream: &'a str,
    pub run_id: i64,
    pub start: jiff::Timestamp,
    pub sample_entry_id: i64,
    pub file_name: &'a str,
}

/// What closing a recording records.
#[derive(Debug, Clone)]
pub struct ClosedRecording {
    pub duration_90k: i64,
    pub frames: i64,
    pub sample_bytes: i64,
    pub file_bytes: i64,
    pub sha256: Vec<u8>,
    pub frame_index: Vec<u8>,
}

const COLS: &str = "id, camera_id, stream, state, run_id, start_us, duration_90k, frames, sample_bytes, file_bytes, \
     sample_entry_id, file_name, sha256, frame_index";

fn rec_from_row(r: &sqlx::sqlite::SqliteRow) -> RecordingRow {
    RecordingRow {
        id: r.get("id"),
        camera_id: r.get("camera_id"),
        stream: r.get("stream"),
        open: r.get::<String, _>("state") == "open",
        run_id: r.get("run_id"),
        start: from_micros(r.get("start_us")),
        duration_90k: r.get("duration_90k"),
        frames: r.get("frames"),
        sample_bytes: r.get("sample_bytes"),
        file_bytes: r.get("file_bytes"),
        sample_entry_id: r.get("sample_entry_id"),
        file_name: r.get("file_name"),
        sha256: r.get("sha256"),
        frame_index: r.get("frame_index"),
    }
}

impl Store {
    /// The id of this sample entry, adding it if new.
    pub async fn sample_entry_id(
        &self,
        codec: &str,
        width: i64,
        height: i64,
        config: &[u8],
        rfc6381: &str,
    ) -> Result<i64> {
        sqlx::query(
            "INSERT INTO video_sample_entries (codec, width, height, config, rfc6381) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (codec, width, height, config) DO NOTHING",
        )
        .bind(codec)
        .bind(width)
        .bind(height)
        .bind(config)
        .bind(rfc6381)
        .execute(&self.pool)
        .await
        .doing("storing a sample entry")?;
        sqlx::query_scalar("SELECT id FROM video_sample_entries WHERE codec = ? AND width = ? AND height = ? AND config = ?")
            .bind(codec)
            .bind(width)
            .bind(height)
            .bind(config)
            .fetch_one(&self.pool)
            .await
            .doing("reading a sample entry id")
    }

    pub async fn sample_entry(&self, id: i64) -> Result<SampleEntryRow> {
        let r = sqlx::query("SELECT id, codec, width, height, config, rfc6381 FROM video_sample_entries WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .doing("reading a sample entry")?
            .ok_or_else(|| StoreError::NotFound(format!("sample entry #{id}")))?;
        Ok(SampleEntryRow {
            id: r.get("id"),
            codec: r.get("codec"),
            width: r.get("width"),
            height: r.get("height"),
            config: r.get("config"),
            rfc6381: r.get("rfc6381"),
        })
    }

    /// Step 1 of a segment's life: the row exists (state `open`) before the
    /// file does, so start-up recovery always knows which files to examine.
    pub async fn begin_recording(&self, r: NewRecording<'_>) -> Result<i64> {
        let id = sqlx::query(
            "INSERT INTO recordings (camera_id, stream, state, run_id, start_us, sample_entry_id, file_name)
             VALUES (?, ?, 'open', ?, ?, ?, ?)",
        )
        .bind(r.camera_id)
        .bind(r.stream)
        .bind(r.run_id)
        .bind(micros(r.start))
        .bind(r.sample_entry_id)
        .bind(r.file_name)
        .execute(&self.pool)
        .await
        .doing("starting a recording")?
        .last_insert_rowid();
        Ok(id)
    }

    /// Forgets a row from [`Store::begin_recording`] whose file was never
    /// created (the segment could not start). Only an `open` row goes.
    pub async fn abandon_recording(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM recordings WHERE id = ? AND state = 'open'")
            .bind(id)
            .execute(&self.pool)
            .await
            .doing("forgetting a recording that did not start")?;
        Ok(())
    }

    /// The last step: the file is complete and synced; record its index.
    pub async fn close_recording(&self, id: i64, c: &ClosedRecording) -> Result<()> {
        sqlx::query(
            "UPDATE recordings SET state = 'closed', duration_90k = ?, frames = ?, sample_bytes = ?, file_bytes = ?,
             sha256 = ?, frame_index = ? WHERE id = ?",
        )
        .bind(c.duration_90k)
        .bind(c.frames)
        .bind(c.sample_bytes)
        .bind(c.file_bytes)
        .bind(&c.sha256)
        .bind(&c.frame_index)
        .bind(id)
        .execute(&self.pool)
        .await
        .doing("closing a recording")?;
        Ok(())
    }

    pub async fn recording(&self, id: i64) -> Result<Option<RecordingRow>> {
        let r = sqlx::query(&format!("SELECT {COLS} FROM recordings WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .doing("reading a recording")?;
        Ok(r.as_ref().map(rec_from_row))
    }

    /// Recordings still marked open (being written, or cut by a crash).
    pub async fn open_recordings(&self) -> Result<Vec<RecordingRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM recordings WHERE state = 'open' ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .doing("listing open recordings")?;
        Ok(rows.iter().map(rec_from_row).collect())
    }

    /// Every recording, oldest first (for `check`).
    pub async fn all_recordings(&self) -> Result<Vec<RecordingRow>> {
        let rows = sqlx::query(&format!("SELECT {COLS} FROM recordings ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .doing("listing recordings")?;
        Ok(rows.iter().map(rec_from_row).collect())
    }

    /// Recordings of a camera's stream that overlap [from, to), oldest
    /// first. Open recordings are included when they start before `to`
    /// (their extent is only known from the file).
    pub async fn recordings_between(
        &self,
        camera_id: i64,
        stream: &str,
        from: jiff::Timestamp,
        to: jiff::Timestamp,
    ) -> Result<Vec<RecordingRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM recordings WHERE camera_id = ? AND stream = ? AND start_us < ?
             AND (state = 'open' OR start_us + duration_90k * 100 / 9 > ?) ORDER BY start_us, id"
        ))
        .bind(camera_id)
        .bind(stream)
        .bind(micros(to))
        .bind(micros(from))
        .fetch_all(&self.pool)
        .await
        .doing("finding recordings in a time range")?;
        Ok(rows.iter().map(rec_from_row).collect())
    }

    /// The oldest closed recordings of a camera (any stream), for retention.
    pub async fn oldest_recordings(
        &self,
        camera_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RecordingRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM recordings WHERE state = 'closed' AND (? IS NULL OR camera_id = ?)
             ORDER BY start_us, id LIMIT ?"
        ))
        .bind(camera_id)
        .bind(camera_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .doing("finding the oldest recordings")?;
        Ok(rows.iter().map(rec_from_row).collect())
    }

    /// Bytes on disk and count of a camera's closed recordings.
    pub async fn camera_usage(&self, camera_id: i64) -> Result<(i64, i64)> {
        let (bytes, n): (Option<i64>, i64) =
            sqlx::query_as("SELECT SUM(file_bytes), COUNT(*) FROM recordings WHERE camera_id = ? AND state = 'closed'")
                .bind(camera_id)
                .fetch_one(&self.pool)
                .await
                .doing("measuring a camera's recordings")?;
        Ok((bytes.unwrap_or(0), n))
    }

    /// Moves recordings to the garbage list in one transaction; the caller
    /// then unlinks the files and calls [`Store::forget_garbage`].
    pub async fn delete_recordings(&self, ids: &[i64]) -> Result<Vec<String>> {
        let mut tx = self
            .pool
            .begin()
            .await
            .doing("starting a recording deletion")?;
        let mut names = Vec::with_capacity(ids.len());
        for id in ids {
            let row: Option<(String, i64)> = sqlx::query_as(
                "DELETE FROM recordings WHERE id = ? RETURNING file_name, camera_id",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .doing("deleting a recording row")?;
            if let Some((name, camera)) = row {
                sqlx::query("INSERT OR IGNORE INTO garbage (file_name, camera_id) VALUES (?, ?)")
                    .bind(&name)
                    .bind(camera)
                    .execute(&mut *tx)
                    .await
                    .doing("adding a garbage row")?;
                names.push(name);
            }
        }
        tx.commit().await.doing("committing a recording deletion")?;
        Ok(names)
    }

    pub async fn garbage(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT file_name FROM garbage ORDER BY file_name")
            .fetch_all(&self.pool)
            .await
            .doing("listing garbage")
    }

    /// Forgets garbage rows whose files are gone (unlinked, dir synced).
    pub async fn forget_garbage(&self, names: &[String]) -> Result<()> {
        for n in names {
            sqlx::query("DELETE FROM garbage WHERE file_name = ?")
                .bind(n)
                .execute(&self.pool)
                .await
                .doing("forgetting garbage")?;
        }
        Ok(())
    }

    /// The next run id (one per unbroken camera connection).
    pub async fn next_run_id(&self) -> Result<i64> {
        let n: Option<i64> = sqlx::query_scalar("SELECT MAX(run_id) FROM recordings")
            .fetch_one(&self.pool)
            .await
            .doing("reading the last run id")?;
        Ok(n.unwrap_or(0) + 1)
    }
}
