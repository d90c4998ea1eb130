//! Events: what happened, when, on which camera — from detection, sensors,
//! the alarm or the API. One table, read by the events page, the home
//! page, the timelines' markers and notifications.

use sqlx::Row;

use crate::{from_micros, micros, Doing, Result, Store};

/// A stored event.
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

/// An event to record.
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

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these cameras (None: all, including camera-less events).
    pub cameras: Option<Vec<i64>>,
    pub kind: Option<String>,
    pub from: Option<jiff::Timestamp>,
    pub to: Option<jiff::Timestamp>,
    pub limit: i64,
}

fn event_from_row(r: &sqlx::sqlite::SqliteRow) -> EventRow {
    let parse = |s: String| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null);
    EventRow {
        id: r.get("id"),
        camera_id: r.get("camera_id"),
        kind: r.get("kind"),
        source: r.get("source"),
        review: r.get("review"),
        start: from_micros(r.get("start_us")),
        end: r.get::<Option<i64>, _>("end_us").map(from_micros),
        score: r.get("score"),
        zones: parse(r.get("zones")),
        detail: parse(r.get("detail")),
        snapshot: r.get("snapshot"),
    }
}

impl Store {
    pub async fn insert_event(&self, e: &NewEvent, now: jiff::Timestamp) -> Result<i64> {
        let detail = if e.detail.is_null() {
            "{}".to_owned()
        } else {
            e.detail.to_string()
        };
        let id = sqlx::query(
            "INSERT INTO events (camera_id, kind, source, review, start_us, end_us, score, zones, detail, snapshot)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.camera_id)
        .bind(&e.kind)
        .bind(&e.source)
        .bind(if e.alert { "alert" } else { "detection" })
        .bind(micros(e.start.unwrap_or(now)))
        .bind(e.end.map(micros))
        .bind(e.score)
        .bind(serde_json::to_string(&e.zones).unwrap_or_else(|_| "[]".into()))
        .bind(detail)
        .bind(&e.snapshot)
        .execute(&self.pool)
        .await
        .doing("recording an event")?
        .last_insert_rowid();
        Ok(id)
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

    pub async fn event(&self, id: i64) -> Result<Option<EventRow>> {
        let r = sqlx::query("SELECT * FROM events WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .doing("reading an event")?;
        Ok(r.as_ref().map(event_from_row))
    }

    /// Events newest first (by start) matching the filter.
    pub async fn events(&self, f: &EventFilter) -> Result<Vec<EventRow>> {
        let mut sql = String::from("SELECT * FROM events WHERE start_us >= ? AND start_us < ?");
        if let Some(c) = &f.cameras {
            if c.is_empty() {
                return Ok(Vec::new());
            }
            sql.push_str(&format!(
                " AND camera_id IN ({})",
                vec!["?"; c.len()].join(",")
            ));
        }
        if f.kind.is_some() {
            sql.push_str(" AND kind = ?");
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
        if let Some(k) = &f.kind {
            q = q.bind(k);
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
            .insert_event(
                &NewEvent {
                    camera_id: Some(cam.id),
                    kind: "person".into(),
                    source: "detection".into(),
                    alert: true,
                    start: Some(t(100)),
                    ..Default::default()
                },
                t(100),
            )
            .await
            .unwrap();
        store
            .insert_event(
                &NewEvent {
                    kind: "alarm".into(),
                    source: "alarm".into(),
                    start: Some(t(200)),
                    ..Default::default()
                },
                t(200),
            )
            .await
            .unwrap();
        store.end_event(a, t(130)).await.unwrap();
        let all = store.events(&EventFilter::default()).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].kind, "alarm", "newest first");
        let door = store
            .events(&EventFilter {
                cameras: Some(vec![cam.id]),
                kind: Some("person".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(door.len(), 1);
        assert_eq!(door[0].end, Some(t(130)));
        assert_eq!(door[0].review, "alert");
        // Instants serialize as RFC 3339 strings (jiff's own serde).
        let v = serde_json::to_value(&door[0]).unwrap();
        assert_eq!(v["start"], "1970-01-01T00:01:40Z");
        assert_eq!(v["end"], "1970-01-01T00:02:10Z");
        let none = store
            .events(&EventFilter {
                from: Some(t(300)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(none.is_empty());

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
