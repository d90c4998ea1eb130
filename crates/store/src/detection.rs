//! Detection settings per camera, and closing the detection events a crash
//! or stop left open. (An ongoing event's kind, labels, zones and score
//! change by sealing its details again: `Store::reseal_event`, through
//! `porchlight_vault::details`.)
//!
//! The settings are stored as an opaque JSON document: the detection crates
//! own its schema and validate it before it is written here.

use sqlx::Row;

use crate::{micros, Doing, Result, Store};

impl Store {
    /// The camera's detection settings (JSON), if any were saved.
    pub async fn camera_detection(&self, camera_id: i64) -> Result<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT config FROM camera_detection WHERE camera_id = ?")
            .bind(camera_id)
            .fetch_optional(&self.pool)
            .await
            .doing("reading detection settings")?;
        Ok(row.and_then(|r| serde_json::from_str(&r.get::<String, _>("config")).ok()))
    }

    /// [`Store::camera_detection`] of every camera that has settings
    /// saved, by camera id, in one query (re-read every few seconds by
    /// detection's supervisor).
    pub async fn camera_detections(
        &self,
    ) -> Result<std::collections::HashMap<i64, Option<serde_json::Value>>> {
        let rows = sqlx::query("SELECT camera_id, config FROM camera_detection")
            .fetch_all(&self.pool)
            .await
            .doing("reading detection settings")?;
        Ok(rows
            .iter()
            .map(|r| {
                let v = serde_json::from_str(&r.get::<String, _>("config")).ok();
                (r.get::<i64, _>("camera_id"), v)
            })
            .collect())
    }

    /// Saves the camera's detection settings (already validated).
    pub async fn set_camera_detection(
        &self,
        camera_id: i64,
        config: &serde_json::Value,
        now: jiff::Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO camera_detection (camera_id, config, updated_us) VALUES (?, ?, ?)
             ON CONFLICT (camera_id) DO UPDATE SET config = excluded.config, updated_us = excluded.updated_us",
        )
        .bind(camera_id)
        .bind(config.to_string())
        .bind(micros(now))
        .execute(&self.pool)
        .await
        .doing("saving detection settings")?;
        Ok(())
    }

    /// Ends every event of `source` still open (after a restart, nothing is
    /// watching them any more). Returns how many were closed.
    pub async fn end_open_events(&self, source: &str, at: jiff::Timestamp) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE events SET end_us = MAX(start_us, ?) WHERE source = ? AND end_us IS NULL",
        )
        .bind(micros(at))
        .bind(source)
        .execute(&self.pool)
        .await
        .doing("closing interrupted events")?;
        Ok(r.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewCamera, NewEvent};

    #[tokio::test]
    async fn settings_and_updates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let t = |s| jiff::Timestamp::from_second(s).unwrap();
        let cam = store
            .create_camera(
                &NewCamera {
                    name: "door".into(),
                    main_url: "rtsp://x/".into(),
                    ..Default::default()
                },
                t(0),
            )
            .await
            .unwrap();
        assert_eq!(store.camera_detection(cam.id).await.unwrap(), None);
        let cfg = serde_json::json!({"sensitivity": 0.7});
        store
            .set_camera_detection(cam.id, &cfg, t(1))
            .await
            .unwrap();
        store
            .set_camera_detection(cam.id, &serde_json::json!({"sensitivity": 0.2}), t(2))
            .await
            .unwrap();
        assert_eq!(
            store.camera_detection(cam.id).await.unwrap(),
            Some(serde_json::json!({"sensitivity": 0.2}))
        );

        let open = store
            .insert_sealed_event(
                &NewEvent {
                    camera_id: Some(cam.id),
                    source: "detection".into(),
                    start: Some(t(30)),
                    ..Default::default()
                },
                b"sealed",
                t(30),
            )
            .await
            .unwrap();
        assert_eq!(store.end_open_events("detection", t(40)).await.unwrap(), 1);
        assert_eq!(store.event(open).await.unwrap().unwrap().end, Some(t(40)));
    }
}
