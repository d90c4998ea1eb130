//! Alarm modes drive cameras: per camera and per mode (`disarmed`, `home`,
//! `away`), whether it records, detects and notifies, and a per-camera
//! privacy switch that pauses all of that (and live view) whatever the mode
//! — indoor cameras off while people are home.
//!
//! Invariants:
//!
//! * No `camera_modes` row means record, detect and notify all on: a new
//!   camera behaves as before this table existed.
//! * [`Store::camera_policy`] evaluates against the alarm mode persisted in
//!   `alarm_state` right now: `disarmed` when disarmed, otherwise the armed
//!   mode (also while arming, pending or triggered). An unreadable saved
//!   mode counts as `away`, the mode that records most, never as "off".
//! * Privacy on forces every flag of [`Policy`] off.

use sqlx::Row;

use crate::{micros, Doing, Result, Store, StoreError};

/// The modes a camera's flags are kept for.
pub const MODES: [&str; 3] = ["disarmed", "home", "away"];

/// What one camera may do in one mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModeFlags {
    pub record: bool,
    pub detect: bool,
    pub notify: bool,
}

impl Default for ModeFlags {
    fn default() -> Self {
        ModeFlags {
            record: true,
            detect: true,
            notify: true,
        }
    }
}

/// What a camera may do right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Policy {
    pub record: bool,
    pub detect: bool,
    pub notify: bool,
    /// The privacy switch is on (everything above is then false).
    pub privacy: bool,
    /// The mode it was evaluated for.
    pub mode: &'static str,
}

impl Policy {
    /// The one rule: the mode's flags, all off while privacy is on.
    fn of(flags: ModeFlags, privacy: bool, mode: &'static str) -> Policy {
        Policy {
            record: flags.record && !privacy,
            detect: flags.detect && !privacy,
            notify: flags.notify && !privacy,
            privacy,
            mode,
        }
    }
}

/// `disarmed`, `home` or `away` from the persisted alarm state.
fn mode_of(state: &str, snapshot: &serde_json::Value) -> &'static str {
    match state {
        "disarmed" => "disarmed",
        "armed_home" => "home",
        "armed_away" => "away",
        _ => match snapshot.get("mode").and_then(|m| m.as_str()) {
            Some("home") => "home",
            _ => "away",
        },
    }
}

fn check_mode(mode: &str) -> Result<&'static str> {
    MODES.into_iter().find(|m| *m == mode).ok_or_else(|| {
        StoreError::NotFound(format!(
            "alarm mode `{mode}` (the modes are disarmed, home and away)"
        ))
    })
}

impl Store {
    /// The alarm mode cameras follow now.
    pub async fn current_camera_mode(&self) -> Result<&'static str> {
        let s = self.alarm_state().await?;
        Ok(mode_of(&s.state, &s.snapshot))
    }

    /// One camera's flags in every mode (defaults where none are saved).
    pub async fn camera_modes(&self, camera_id: i64) -> Result<Vec<(&'static str, ModeFlags)>> {
        let rows = sqlx::query(
            "SELECT mode, record, detect, notify FROM camera_modes WHERE camera_id = ?",
        )
        .bind(camera_id)
        .fetch_all(&self.pool)
        .await
        .doing("reading a camera's modes")?;
        Ok(MODES
            .into_iter()
            .map(|m| {
                let f = rows
                    .iter()
                    .find(|r| r.get::<String, _>("mode") == m)
                    .map(|r| ModeFlags {
                        record: r.get::<i64, _>("record") != 0,
                        detect: r.get::<i64, _>("detect") != 0,
                        notify: r.get::<i64, _>("notify") != 0,
                    })
                    .unwrap_or_default();
                (m, f)
            })
            .collect())
    }

    /// Sets one camera's flags for `mode`.
    pub async fn set_camera_mode(&self, camera_id: i64, mode: &str, f: ModeFlags) -> Result<()> {
        let mode = check_mode(mode)?;
        sqlx::query(
            "INSERT INTO camera_modes (camera_id, mode, record, detect, notify) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (camera_id, mode) DO UPDATE SET
               record = excluded.record, detect = excluded.detect, notify = excluded.notify",
        )
        .bind(camera_id)
        .bind(mode)
        .bind(f.record as i64)
        .bind(f.detect as i64)
        .bind(f.notify as i64)
        .execute(&self.pool)
        .await
        .doing("saving a camera's mode")?;
        Ok(())
    }

    /// Whether the camera's privacy switch is on.
    pub async fn camera_privacy(&self, camera_id: i64) -> Result<bool> {
        let r = sqlx::query("SELECT privacy FROM camera_privacy WHERE camera_id = ?")
            .bind(camera_id)
            .fetch_optional(&self.pool)
            .await
            .doing("reading a camera's privacy switch")?;
        Ok(r.is_some_and(|r| r.get::<i64, _>("privacy") != 0))
    }

    /// Turns the camera's privacy switch on or off.
    pub async fn set_camera_privacy(
        &self,
        camera_id: i64,
        on: bool,
        now: jiff::Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO camera_privacy (camera_id, privacy, updated) VALUES (?, ?, ?)
             ON CONFLICT (camera_id) DO UPDATE SET privacy = excluded.privacy, updated = excluded.updated",
        )
        .bind(camera_id)
        .bind(on as i64)
        .bind(micros(now))
        .execute(&self.pool)
        .await
        .doing("saving a camera's privacy switch")?;
        Ok(())
    }

    /// [`Store::camera_policy`] of every camera, by camera id, in two
    /// queries whatever the number of cameras (the recorder and detection
    /// re-read it every few seconds).
    pub async fn camera_policies(&self) -> Result<std::collections::HashMap<i64, Policy>> {
        let mode = self.current_camera_mode().await?;
        let rows = sqlx::query(
            "SELECT c.id AS id, COALESCE(p.privacy, 0) AS privacy,
                    COALESCE(m.record, 1) AS record, COALESCE(m.detect, 1) AS detect,
                    COALESCE(m.notify, 1) AS notify
             FROM cameras c
             LEFT JOIN camera_privacy p ON p.camera_id = c.id
             LEFT JOIN camera_modes m ON m.camera_id = c.id AND m.mode = ?",
        )
        .bind(mode)
        .fetch_all(&self.pool)
        .await
        .doing("reading the cameras' mode policies")?;
        Ok(rows
            .iter()
            .map(|r| {
                let flags = ModeFlags {
                    record: r.get::<i64, _>("record") != 0,
                    detect: r.get::<i64, _>("detect") != 0,
                    notify: r.get::<i64, _>("notify") != 0,
                };
                let privacy = r.get::<i64, _>("privacy") != 0;
                (r.get::<i64, _>("id"), Policy::of(flags, privacy, mode))
            })
            .collect())
    }

    /// What the camera may do now, in the current persisted alarm mode.
    pub async fn camera_policy(&self, camera_id: i64) -> Result<Policy> {
        let mode = self.current_camera_mode().await?;
        let privacy = self.camera_privacy(camera_id).await?;
        let flags = self
            .camera_modes(camera_id)
            .await?
            .into_iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, f)| f)
            .unwrap_or_default();
        Ok(Policy::of(flags, privacy, mode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AlarmStateRow, NewCamera};

    async fn add_camera(store: &Store, name: &str) -> i64 {
        store
            .create_camera(
                &NewCamera {
                    name: name.into(),
                    main_url: format!("rtsp://127.0.0.1:1/{name}"),
                    ..Default::default()
                },
                jiff::Timestamp::now(),
            )
            .await
            .unwrap()
            .id
    }

    async fn store_with_camera() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let cam = add_camera(&store, "hall").await;
        (dir, store, cam)
    }

    async fn set_state(store: &Store, state: &str, mode: Option<&str>) {
        store
            .put_alarm_state(&AlarmStateRow {
                state: state.into(),
                snapshot: serde_json::json!({ "mode": mode }),
                updated: jiff::Timestamp::now(),
            })
            .await
            .unwrap();
    }

    /// The one camera's policy, checked to be what the all-cameras query
    /// says of it.
    async fn both(store: &Store, cam: i64) -> Policy {
        let one = store.camera_policy(cam).await.unwrap();
        let all = store.camera_policies().await.unwrap();
        assert_eq!(all.get(&cam), Some(&one), "camera_policies disagrees");
        one
    }

    #[tokio::test]
    async fn policy_follows_the_persisted_mode_and_privacy() {
        let (_d, store, cam) = store_with_camera().await;
        // Defaults: everything on, in the disarmed mode.
        let p = both(&store, cam).await;
        assert_eq!(p.mode, "disarmed");
        assert!(p.record && p.detect && p.notify && !p.privacy);

        // Indoor camera: no recording or notifications while people are home.
        let off = ModeFlags {
            record: false,
            detect: true,
            notify: false,
        };
        store.set_camera_mode(cam, "home", off).await.unwrap();
        assert!(both(&store, cam).await.record, "still disarmed");
        set_state(&store, "armed_home", Some("home")).await;
        let p = both(&store, cam).await;
        assert_eq!(
            (p.mode, p.record, p.detect, p.notify),
            ("home", false, true, false)
        );
        // Arming and pending follow the snapshot's mode.
        set_state(&store, "pending", Some("home")).await;
        assert_eq!(both(&store, cam).await.mode, "home");
        set_state(&store, "arming", Some("away")).await;
        let p = both(&store, cam).await;
        assert_eq!(p.mode, "away");
        assert!(p.record, "away keeps the defaults");
        // Unreadable mode: away (records most), never off.
        set_state(&store, "triggered", None).await;
        assert_eq!(both(&store, cam).await.mode, "away");

        // Privacy pauses everything whatever the mode, and comes back.
        store
            .set_camera_privacy(cam, true, jiff::Timestamp::now())
            .await
            .unwrap();
        let p = both(&store, cam).await;
        assert!(p.privacy && !p.record && !p.detect && !p.notify);
        store
            .set_camera_privacy(cam, false, jiff::Timestamp::now())
            .await
            .unwrap();
        assert!(both(&store, cam).await.record);

        let modes = store.camera_modes(cam).await.unwrap();
        assert_eq!(modes.len(), 3);
        assert_eq!(modes[1], ("home", off));
        assert!(store.set_camera_mode(cam, "night", off).await.is_err());

        // Every camera is in the all-cameras answer, a new one with the
        // defaults, and one camera's rows do not leak into another's.
        set_state(&store, "armed_home", Some("home")).await;
        let porch = add_camera(&store, "porch").await;
        let all = store.camera_policies().await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(!all[&cam].record && all[&cam].detect, "hall: home flags");
        assert!(all[&porch].record && all[&porch].notify, "porch: defaults");
        assert_eq!(all[&porch], both(&store, porch).await);
    }
}
