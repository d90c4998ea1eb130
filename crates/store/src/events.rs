//! Events: what happened, when, on which camera — from detection, sensors,
//! the alarm or the API. One table, read by the events page, the home
//! page, the timelines' markers and the CLI.
//!
//! Invariants:
//!
//! * **Only the index is in clear** (migration 13): id, camera, source,
//!   start and end, and the snapshot's path (derived from the camera and
//!   event ids). What happened — kind, alert or not, score, zones and the
//!   detail object — is an opaque age file in `sealed`, written and opened
//!   by `porchlight_vault::details`; this crate never sees it in clear
//!   except on rows written before migration 13 ([`StoredDetails::Legacy`]),
//!   which the hub seals at start-up ([`Store::seal_legacy_event`] clears
//!   their plaintext; [`Store::vacuum`] then rewrites the file).
//! * Every connection runs with `secure_delete` on (`lib.rs`), so content a
//!   row no longer holds is zeroed in the page rather than left readable.
//! * Filtering by kind or label cannot happen here: callers open the rows
//!   and filter the result (bounded; `porchlight_vault::details::events`).

use sqlx::Row;

use crate::{from_micros, micros, Doing, Result, Store};

/// What an event was: the part sealed to the household's keys. The JSON
/// form of this struct is the plaintext of an `events.sealed` age file.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EventDetails {
    /// motion, person, vehicle, animal, package_delivered, package_taken,
    /// doorbell, alarm, or a trigger's own kind.
    pub kind: String,
    /// `alert` review (a configured label/zone) rather than `detection`.
    #[serde(default)]
    pub alert: bool,
    #[serde(default)]
    pub score: Option<f64>,
    /// Zone names.
    #[serde(default)]
    pub zones: Vec<String>,
    /// A JSON object (labels, objects, pre-roll, the alarm's from/to/by/cause …).
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// A stored event, opened: the index and its details.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventRow {
    pub id: i64,
    pub camera_id: Option<i64>,
    pub kind: String,
    pub source: String,
    /// `alert` (a configured label/zone) or `detection`.
    pub review: String,
    pub start: jiff::Timestamp,
    pub end: Option<jiff::Timestamp>,
    pub score: Option<f64>,
    pub zones: serde_json::Value,
    pub detail: serde_json::Value,
    pub snapshot: Option<String>,
}

impl EventRow {
    /// The row `index` with the `details` opened from it.
    pub fn from_parts(index: &StoredEvent, details: EventDetails) -> EventRow {
        EventRow {
            id: index.id,
            camera_id: index.camera_id,
            kind: details.kind,
            source: index.source.clone(),
            review: if details.alert { "alert" } else { "detection" }.to_owned(),
            start: index.start,
            end: index.end,
            score: details.score,
            zones: serde_json::to_value(&details.zones).unwrap_or(serde_json::Value::Null),
            detail: if details.detail.is_null() {
                serde_json::json!({})
            } else {
                details.detail
            },
            snapshot: index.snapshot.clone(),
        }
    }
}

/// An event to record (its details are sealed by
/// `porchlight_vault::details` before anything reaches the store).
#[derive(Debug, Clone, Default)]
pub struct NewEvent {
    pub camera_id: Option<i64>,
    pub kind: String,
    pub source: String,
    pub alert: bool,
    pub start: Option<jiff::Timestamp>,
    pub end: Option<jiff::Timestamp>,
    pub score: Option<f64>,
    pub zones: Vec<String>,
    pub detail: serde_json::Value,
    pub snapshot: Option<String>,
}

impl NewEvent {
    /// The part of this event that is sealed.
    pub fn details(&self) -> EventDetails {
        EventDetails {
            kind: self.kind.clone(),
            alert: self.alert,
            score: self.score,
            zones: self.zones.clone(),
            detail: if self.detail.is_null() {
                serde_json::json!({})
            } else {
                self.detail.clone()
            },
        }
    }
}

/// An event's details as the database holds them.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredDetails {
    /// An age file (`porchlight_vault::details` opens it).
    Sealed(Vec<u8>),
    /// Nobody could be sealed to when the event happened (no member with a
    /// key yet): the details were not kept.
    NotKept,
    /// A row written before migration 13, still in plaintext until the
    /// hub's start-up pass seals it.
    Legacy(EventDetails),
}

/// A stored event as read: the clear index and the sealed details.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    pub camera_id: Option<i64>,
    /// detection, mqtt, api or alarm.
    pub source: String,
    pub start: jiff::Timestamp,
    pub end: Option<jiff::Timestamp>,
    pub snapshot: Option<String>,
    pub details: StoredDetails,
}

/// Which events to read (by the clear index only).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these cameras (None: all, including camera-less events).
    pub cameras: Option<Vec<i64>>,
    pub from: Option<jiff::Timestamp>,
    pub to: Option<jiff::Timestamp>,
    /// Only events strictly older than this (start, id) in the newest-first
    /// order: the cursor for reading on past a page.
    pub before: Option<(jiff::Timestamp, i64)>,
    /// At most this many rows (0: 100).
    pub limit: i64,
}

/// The neutral values that rows written since migration 13 keep in the old
/// plaintext columns.
const CLEARED: &str = "kind = '', review = 'detection', score = NULL, zones = '[]', detail = '{}'";

const COLUMNS: &str =
    "id, camera_id, source, start_us, end_us, snapshot, sealed, kind, review, score, zones, detail";

fn event_from_row(r: &sqlx::sqlite::SqliteRow) -> StoredEvent {
    let sealed: Option<Vec<u8>> = r.get("sealed");
    let details = match sealed {
        Some(b) if b.is_empty() => StoredDetails::NotKept,
        Some(b) => StoredDetails::Sealed(b),
        None => {
            let parse = |s: String| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null);
            StoredDetails::Legacy(EventDetails {
                kind: r.get("kind"),
                alert: r.get::<String, _>("review") == "alert",
                score: r.get("score"),
                zones: serde_json::from_value(parse(r.get("zones"))).unwrap_or_default(),
                detail: parse(r.get("detail")),
            })
        }
    };
    StoredEvent {
        id: r.get("id"),
        camera_id: r.get("camera_id"),
        source: r.get("source"),
        start: from_micros(r.get("start_us")),
        end: r.get::<Option<i64>, _>("end_us").map(from_micros),
        snapshot: r.get("snapshot"),
        details,
    }
}

impl Store {
    /// Records an event whose details are already sealed (`sealed`; empty:
    /// nobody to seal to, details not kept). `e`'s detail fields are not
    /// read: only its index (camera, source, start, end, snapshot) is
    /// stored in clear. Use `porchlight_vault::details::SealedEvents`.
    pub async fn insert_sealed_event(
        &self,
        e: &NewEvent,
        sealed: &[u8],
        now: jiff::Timestamp,
    ) -> Result<i64> {
        let id = sqlx::query(
            "INSERT INTO events (camera_id, kind, source, review, start_us, end_us, score, zones, detail, snapshot, sealed)
             VALUES (?, '', ?, 'detection', ?, ?, NULL, '[]', '{}', ?, ?)",
        )
        .bind(e.camera_id)
        .bind(&e.source)
        .bind(micros(e.start.unwrap_or(now)))
        .bind(e.end.map(micros))
        .bind(&e.snapshot)
        .bind(sealed)
        .execute(&self.pool)
        .await
        .doing("recording an event")?
        .last_insert_rowid();
        Ok(id)
    }

    /// Replaces an event's sealed details (an ongoing event gained labels,
    /// zones or a better score; sealed again to the recipients of now).
    pub async fn reseal_event(&self, id: i64, sealed: &[u8]) -> Result<()> {
        sqlx::query(&format!(
            "UPDATE events SET sealed = ?, {CLEARED} WHERE id = ?"
        ))
        .bind(sealed)
        .bind(id)
        .execute(&self.pool)
        .await
        .doing("updating an event")?;
        Ok(())
    }

    /// Up to `limit` rows written before migration 13 (details in clear).
    pub async fn legacy_events(&self, limit: i64) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE sealed IS NULL ORDER BY id LIMIT ?"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .doing("reading events written before sealing")?;
        Ok(rows.iter().map(event_from_row).collect())
    }

    /// Seals a row written before migration 13: stores `sealed` and clears
    /// its plaintext columns (zeroed in the page: `secure_delete`).
    pub async fn seal_legacy_event(&self, id: i64, sealed: &[u8]) -> Result<()> {
        sqlx::query(&format!(
            "UPDATE events SET sealed = ?, {CLEARED} WHERE id = ? AND sealed IS NULL"
        ))
        .bind(sealed)
        .bind(id)
        .execute(&self.pool)
        .await
        .doing("sealing an event written before sealing")?;
        Ok(())
    }

    /// Writes `e` the way Porchlight did before migration 13, details in
    /// clear. Only for tests of the sealing pass (an upgraded hub's rows).
    #[doc(hidden)]
    pub async fn insert_plaintext_event_as_before_v13(
        &self,
        e: &NewEvent,
        now: jiff::Timestamp,
    ) -> Result<i64> {
        let d = e.details();
        Ok(sqlx::query(
            "INSERT INTO events (camera_id, kind, source, review, start_us, end_us, score, zones, detail, snapshot)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.camera_id)
        .bind(&d.kind)
        .bind(&e.source)
        .bind(if d.alert { "alert" } else { "detection" })
        .bind(micros(e.start.unwrap_or(now)))
        .bind(e.end.map(micros))
        .bind(d.score)
        .bind(serde_json::to_string(&d.zones).unwrap_or_else(|_| "[]".into()))
        .bind(d.detail.to_string())
        .bind(&e.snapshot)
        .execute(&self.pool)
        .await
        .doing("recording an event as before sealing")?
        .last_insert_rowid())
    }

    /// Public keys of every enabled owner: what the alarm's and camera-less
    /// events are sealed to.
    pub async fn owner_recipients(&self) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT age_recipient FROM users
             WHERE disabled = 0 AND age_recipient IS NOT NULL AND role = 'owner' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .doing("reading the owners' recipients")
    }

    /// Rewrites the database without free pages and empties the WAL, so
    /// nothing a row once held survives in the files (after sealing old
    /// rows). Takes a moment on a large database; other writers wait.
    pub async fn vacuum(&self) -> Result<()> {
        let mut c = self.pool.acquire().await.doing("vacuuming the database")?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *c)
            .await
            .doing("checkpointing the WAL")?;
        sqlx::query("VACUUM")
            .execute(&mut *c)
            .await
            .doing("vacuuming the database")?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *c)
            .await
            .doing("checkpointing the WAL")?;
        Ok(())
    }

    /// Ends an ongoing event.
    pub async fn end_event(&self, id: i64, end: jiff::Timestamp) -> Result<()> {
        sqlx::query("UPDATE events SET end_us = ? WHERE id = ? AND end_us IS NULL")
            .bind(micros(end))
            .bind(id)
            .execute(&self.pool)
            .await
            .doing("ending an event")?;
        Ok(())
    }

    pub async fn set_event_snapshot(&self, id: i64, file: &str) -> Result<()> {
        sqlx::query("UPDATE events SET snapshot = ? WHERE id = ?")
            .bind(file)
            .bind(id)
            .execute(&self.pool)
            .await
            .doing("attaching a snapshot")?;
        Ok(())
    }

    /// The stored event `id`, details still sealed.
    pub async fn event(&self, id: i64) -> Result<Option<StoredEvent>> {
        let r = sqlx::query(&format!("SELECT {COLUMNS} FROM events WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .doing("reading an event")?;
        Ok(r.as_ref().map(event_from_row))
    }

    /// Events newest first (by start, then id) matching the filter, details
    /// still sealed.
    pub async fn events(&self, f: &EventFilter) -> Result<Vec<StoredEvent>> {
        let mut sql = format!("SELECT {COLUMNS} FROM events WHERE start_us >= ? AND start_us < ?");
        if let Some(c) = &f.cameras {
            if c.is_empty() {
                return Ok(Vec::new());
            }
            sql.push_str(&format!(
                " AND camera_id IN ({})",
                vec!["?"; c.len()].join(",")
            ));
        }
        if f.before.is_some() {
            sql.push_str(" AND (start_us, id) < (?, ?)");
        }
        sql.push_str(" ORDER BY start_us DESC, id DESC LIMIT ?");
        let mut q = sqlx::query(&sql)
            .bind(f.from.map(micros).unwrap_or(i64::MIN))
            .bind(f.to.map(micros).unwrap_or(i64::MAX));
        if let Some(c) = &f.cameras {
            for id in c {
                q = q.bind(id);
            }
        }
        if let Some((t, id)) = f.before {
            q = q.bind(micros(t)).bind(id);
        }
        let rows = q
            .bind(if f.limit > 0 { f.limit } else { 100 })
            .fetch_all(&self.pool)
            .await
            .doing("listing events")?;
        Ok(rows.iter().map(event_from_row).collect())
    }
}

/// A camera's sub-stream and retention, as the camera settings change them.
///
/// (This belongs with the other camera updates in `cameras.rs`; it was added
/// here while that file had another owner, and is a plain addition.)
#[derive(Debug, Clone, PartialEq)]
pub struct CameraRetention {
    /// The sub-stream's RTSP address (None: none).
    pub sub_url: Option<String>,
    /// Keep recordings at most this long (None: no age limit).
    pub retain_max_age_secs: Option<i64>,
    /// Keep at most this many bytes of recordings (None: no size limit).
    pub retain_max_bytes: Option<i64>,
}

impl Store {
    /// Changes a camera's sub-stream and retention limits. A running hub
    /// picks the change up like any other change of the camera row.
    pub async fn update_camera_retention(&self, id: i64, r: &CameraRetention) -> Result<()> {
        sqlx::query(
            "UPDATE cameras SET sub_url = ?, retain_max_age_secs = ?, retain_max_bytes = ? WHERE id = ?",
        )
        .bind(&r.sub_url)
        .bind(r.retain_max_age_secs)
        .bind(r.retain_max_bytes)
        .bind(id)
        .execute(&self.pool)
        .await
        .doing("updating a camera's sub-stream and retention")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn insert_filter_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let t = |s| jiff::Timestamp::from_second(s).unwrap();
        let cam = store
            .create_camera(
                &crate::NewCamera {
                    name: "door".into(),
                    main_url: "rtsp://x/".into(),
                    ..Default::default()
                },
                t(0),
            )
            .await
            .unwrap();
        let a = store
            .insert_sealed_event(
                &NewEvent {
                    camera_id: Some(cam.id),
                    kind: "person".into(),
                    source: "detection".into(),
                    alert: true,
                    start: Some(t(100)),
                    zones: vec!["porch".into()],
                    ..Default::default()
                },
                b"age-sealed-a",
                t(100),
            )
            .await
            .unwrap();
        let b = store
            .insert_sealed_event(
                &NewEvent {
                    kind: "alarm".into(),
                    source: "alarm".into(),
                    start: Some(t(200)),
                    ..Default::default()
                },
                b"",
                t(200),
            )
            .await
            .unwrap();
        store.end_event(a, t(130)).await.unwrap();
        let all = store.events(&EventFilter::default()).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].id, b, "newest first");
        assert_eq!(all[0].details, StoredDetails::NotKept);
        let door = store
            .events(&EventFilter {
                cameras: Some(vec![cam.id]),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(door.len(), 1);
        assert_eq!(door[0].end, Some(t(130)));
        assert_eq!(door[0].source, "detection");
        // Only the sealed bytes are kept: the kind and zones handed in are
        // not stored.
        assert_eq!(
            door[0].details,
            StoredDetails::Sealed(b"age-sealed-a".to_vec())
        );
        let kinds: Vec<String> = sqlx::query_scalar("SELECT kind || zones FROM events")
            .fetch_all(&store.pool)
            .await
            .unwrap();
        assert_eq!(kinds, ["[]", "[]"]);
        store.reseal_event(a, b"age-sealed-a2").await.unwrap();
        assert_eq!(
            store.event(a).await.unwrap().unwrap().details,
            StoredDetails::Sealed(b"age-sealed-a2".to_vec())
        );
        let none = store
            .events(&EventFilter {
                from: Some(t(300)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(none.is_empty());
        // The cursor reads on past a page.
        let older = store
            .events(&EventFilter {
                before: Some((t(200), b)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(older.iter().map(|e| e.id).collect::<Vec<_>>(), [a]);

        // Snapshots attach to an event after the fact.
        assert_eq!(store.event(a).await.unwrap().unwrap().snapshot, None);
        store
            .set_event_snapshot(a, "snapshots/1/1.jpg.age")
            .await
            .unwrap();
        assert_eq!(
            store.event(a).await.unwrap().unwrap().snapshot.as_deref(),
            Some("snapshots/1/1.jpg.age")
        );

        // A row written before migration 13 reads as legacy plaintext until
        // it is sealed; sealing clears the plaintext columns.
        sqlx::query("INSERT INTO events (camera_id, kind, source, review, start_us, zones, detail) VALUES (?, 'person', 'detection', 'alert', 5, '[\"gate\"]', '{\"labels\":[\"person\"]}')")
            .bind(cam.id)
            .execute(&store.pool)
            .await
            .unwrap();
        let legacy = store.legacy_events(10).await.unwrap();
        assert_eq!(legacy.len(), 1);
        let StoredDetails::Legacy(d) = &legacy[0].details else {
            panic!("{legacy:?}")
        };
        assert_eq!(
            (d.kind.as_str(), d.alert, d.zones.clone()),
            ("person", true, vec!["gate".to_owned()])
        );
        assert_eq!(d.detail["labels"][0], "person");
        store
            .seal_legacy_event(legacy[0].id, b"age-sealed-old")
            .await
            .unwrap();
        assert!(store.legacy_events(10).await.unwrap().is_empty());
        let kinds: Vec<String> =
            sqlx::query_scalar("SELECT kind || review || zones || detail FROM events WHERE id = ?")
                .bind(legacy[0].id)
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(kinds, ["detection[]{}"]);
        store.vacuum().await.unwrap();

        // A camera's sub-stream and retention change in place.
        let r = CameraRetention {
            sub_url: Some("rtsp://x/sub".into()),
            retain_max_age_secs: Some(86400),
            retain_max_bytes: Some(1 << 30),
        };
        store.update_camera_retention(cam.id, &r).await.unwrap();
        let c = store.camera_by_id(cam.id).await.unwrap().unwrap();
        assert_eq!(
            (c.sub_url, c.retain_max_age_secs, c.retain_max_bytes),
            (r.sub_url, r.retain_max_age_secs, r.retain_max_bytes)
        );
    }
}
