//! The alarm's rows: sensors (MQTT devices), the one persisted alarm state,
//! and arm/disarm requests from the CLI to a running hub.
//!
//! The alarm's state machine lives in `porchlight-alarm`; this module keeps
//! its serialised snapshot as opaque JSON, the same way the store keeps the
//! vault's PHC strings without reading them.

use sqlx::Row;

use crate::{from_micros, micros, Doing, Result, Store, StoreError};

/// A configured sensor, siren, keypad or doorbell.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sensor {
    pub id: i64,
    pub name: String,
    /// `contact`, `motion`, `doorbell`, `siren` or `keypad`.
    pub kind: String,
    /// The device's Zigbee2MQTT topic, e.g. `zigbee2mqtt/front_door`.
    pub topic: String,
    pub camera_id: Option<i64>,
    pub created_at: jiff::Timestamp,
    /// Contact open / motion seen, as last reported; None: never heard.
    pub active: Option<bool>,
    pub battery: Option<f64>,
    pub linkquality: Option<i64>,
    /// From `TOPIC/availability`; None: unknown.
    pub available: Option<bool>,
    pub last_seen: Option<jiff::Timestamp>,
    /// The armed modes it sets the alarm off in, as chosen for this sensor:
    /// `home`, `away`, `home,away` or `none`; None: its kind's default (the
    /// alarm crate's `Modes::effective` reads it).
    pub modes: Option<String>,
}

/// What it takes to add a sensor.
#[derive(Debug, Clone, Default)]
pub struct NewSensor {
    pub name: String,
    pub kind: String,
    pub topic: String,
    pub camera_id: Option<i64>,
    /// See [`Sensor::modes`] (one of its four spellings); None: the kind's
    /// default.
    pub modes: Option<String>,
}

/// What a device last reported; `None` fields are left as they were.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SensorTelemetry {
    pub active: Option<bool>,
    pub battery: Option<f64>,
    pub linkquality: Option<i64>,
    pub available: Option<bool>,
}

/// The alarm's persisted state.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmStateRow {
    /// The state's name (`disarmed`, `armed_away`, …), for queries.
    pub state: String,
    /// The alarm crate's serialised machine.
    pub snapshot: serde_json::Value,
    pub updated: jiff::Timestamp,
}

/// The running hub's MQTT link, as it last reported it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlarmLink {
    pub connected: bool,
    pub last_error: Option<String>,
    /// When the hub last wrote this (its heartbeat).
    pub updated: jiff::Timestamp,
}

/// An arm/disarm request.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlarmRequest {
    pub id: i64,
    pub action: String,
    pub actor: String,
    pub options: serde_json::Value,
    pub requested: jiff::Timestamp,
    pub done: Option<jiff::Timestamp>,
    pub outcome: Option<serde_json::Value>,
}

/// The sensor columns, named rather than `*`: a pool connection that loaded
/// the schema before a migration added a column (migration 9's `modes`)
/// would prepare `SELECT *` with the old column count, while a named
/// column it does not know makes SQLite reload the schema and retry.
const SENSOR_COLUMNS: &str = "id, name, kind, topic, camera_id, created_at, active, battery, \
     linkquality, available, last_seen_us, modes";

fn sensor_from_row(r: &sqlx::sqlite::SqliteRow) -> Sensor {
    Sensor {
        id: r.get("id"),
        name: r.get("name"),
        kind: r.get("kind"),
        topic: r.get("topic"),
        camera_id: r.get("camera_id"),
        created_at: from_micros(r.get("created_at")),
        active: r.get::<Option<i64>, _>("active").map(|v| v != 0),
        battery: r.get("battery"),
        linkquality: r.get("linkquality"),
        available: r.get::<Option<i64>, _>("available").map(|v| v != 0),
        last_seen: r.get::<Option<i64>, _>("last_seen_us").map(from_micros),
        modes: r.get("modes"),
    }
}

fn parse_json(s: Option<String>) -> Option<serde_json::Value> {
    s.map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null))
}

fn request_from_row(r: &sqlx::sqlite::SqliteRow) -> AlarmRequest {
    AlarmRequest {
        id: r.get("id"),
        action: r.get("action"),
        actor: r.get("actor"),
        options: parse_json(r.get("options")).unwrap_or(serde_json::Value::Null),
        requested: from_micros(r.get("requested_us")),
        done: r.get::<Option<i64>, _>("done_us").map(from_micros),
        outcome: parse_json(r.get("outcome")),
    }
}

impl Store {
    pub async fn add_sensor(&self, s: &NewSensor, now: jiff::Timestamp) -> Result<Sensor> {
        let r = sqlx::query(
            "INSERT INTO sensors (name, kind, topic, camera_id, created_at, modes) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.name)
        .bind(&s.kind)
        .bind(&s.topic)
        .bind(s.camera_id)
        .bind(micros(now))
        .bind(&s.modes)
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(format!(
                    "a sensor named `{}` or on topic `{}`",
                    s.name, s.topic
                )))
            }
            Err(source) => {
                return Err(StoreError::Db {
                    doing: "adding a sensor",
                    source,
                })
            }
        }
        self.sensor_by_name(&s.name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("sensor `{}`", s.name)))
    }

    /// Every sensor, by name.
    pub async fn sensors(&self) -> Result<Vec<Sensor>> {
        let rows = sqlx::query(&format!(
            "SELECT {SENSOR_COLUMNS} FROM sensors ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await
        .doing("listing sensors")?;
        Ok(rows.iter().map(sensor_from_row).collect())
    }

    pub async fn sensor_by_name(&self, name: &str) -> Result<Option<Sensor>> {
        let r = sqlx::query(&format!(
            "SELECT {SENSOR_COLUMNS} FROM sensors WHERE name = ?"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .doing("reading a sensor")?;
        Ok(r.as_ref().map(sensor_from_row))
    }

    /// Sets (or, with None, clears back to the kind's default) the modes a
    /// sensor counts in; returns the sensor as it is now. The table only
    /// takes `home`, `away`, `home,away` or `none` (anything else is a
    /// database error): callers spell it with the alarm crate's `Modes`.
    pub async fn set_sensor_modes(&self, name: &str, modes: Option<&str>) -> Result<Sensor> {
        let n = sqlx::query("UPDATE sensors SET modes = ? WHERE name = ?")
            .bind(modes)
            .bind(name)
            .execute(&self.pool)
            .await
            .doing("setting a sensor's modes")?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("sensor `{name}`")));
        }
        self.sensor_by_name(name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("sensor `{name}`")))
    }

    pub async fn remove_sensor(&self, name: &str) -> Result<()> {
        let n = sqlx::query("DELETE FROM sensors WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .doing("removing a sensor")?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("sensor `{name}`")));
        }
        Ok(())
    }

    /// Records what a device reported (fields left `None` are kept).
    pub async fn put_sensor_telemetry(
        &self,
        id: i64,
        t: &SensorTelemetry,
        now: jiff::Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE sensors SET active = COALESCE(?, active), battery = COALESCE(?, battery),
                linkquality = COALESCE(?, linkquality), available = COALESCE(?, available),
                last_seen_us = ? WHERE id = ?",
        )
        .bind(t.active.map(i64::from))
        .bind(t.battery)
        .bind(t.linkquality)
        .bind(t.available.map(i64::from))
        .bind(micros(now))
        .bind(id)
        .execute(&self.pool)
        .await
        .doing("recording sensor telemetry")?;
        Ok(())
    }

    pub async fn alarm_state(&self) -> Result<AlarmStateRow> {
        let r = sqlx::query("SELECT state, snapshot, updated_us FROM alarm_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .doing("reading the alarm state")?;
        Ok(AlarmStateRow {
            state: r.get("state"),
            snapshot: parse_json(r.get("snapshot")).unwrap_or(serde_json::Value::Null),
            updated: from_micros(r.get("updated_us")),
        })
    }

    pub async fn put_alarm_state(&self, s: &AlarmStateRow) -> Result<()> {
        sqlx::query("UPDATE alarm_state SET state = ?, snapshot = ?, updated_us = ? WHERE id = 1")
            .bind(&s.state)
            .bind(s.snapshot.to_string())
            .bind(micros(s.updated))
            .execute(&self.pool)
            .await
            .doing("saving the alarm state")?;
        Ok(())
    }

    /// The keypad PIN's Argon2id PHC string, if one is set.
    pub async fn alarm_pin_hash(&self) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT pin_hash FROM alarm_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .doing("reading the alarm PIN")
    }

    pub async fn set_alarm_pin_hash(&self, phc: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE alarm_state SET pin_hash = ? WHERE id = 1")
            .bind(phc)
            .execute(&self.pool)
            .await
            .doing("setting the alarm PIN")?;
        Ok(())
    }

    pub async fn alarm_link(&self) -> Result<AlarmLink> {
        let r = sqlx::query(
            "SELECT link_connected, link_error, link_updated_us FROM alarm_state WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await
        .doing("reading the MQTT link status")?;
        Ok(AlarmLink {
            connected: r.get::<i64, _>("link_connected") != 0,
            last_error: r.get("link_error"),
            updated: from_micros(r.get("link_updated_us")),
        })
    }

    pub async fn put_alarm_link(&self, l: &AlarmLink) -> Result<()> {
        sqlx::query(
            "UPDATE alarm_state SET link_connected = ?, link_error = ?, link_updated_us = ? WHERE id = 1",
        )
        .bind(i64::from(l.connected))
        .bind(&l.last_error)
        .bind(micros(l.updated))
        .execute(&self.pool)
        .await
        .doing("saving the MQTT link status")?;
        Ok(())
    }

    /// Queues an arm/disarm request for the hub; returns its id.
    pub async fn push_alarm_request(
        &self,
        action: &str,
        actor: &str,
        options: &serde_json::Value,
        now: jiff::Timestamp,
    ) -> Result<i64> {
        Ok(sqlx::query(
            "INSERT INTO alarm_requests (action, actor, options, requested_us) VALUES (?, ?, ?, ?)",
        )
        .bind(action)
        .bind(actor)
        .bind(options.to_string())
        .bind(micros(now))
        .execute(&self.pool)
        .await
        .doing("queueing an alarm request")?
        .last_insert_rowid())
    }

    /// Requests not yet performed, oldest first.
    pub async fn pending_alarm_requests(&self) -> Result<Vec<AlarmRequest>> {
        let rows = sqlx::query("SELECT * FROM alarm_requests WHERE done_us IS NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .doing("reading alarm requests")?;
        Ok(rows.iter().map(request_from_row).collect())
    }

    pub async fn alarm_request(&self, id: i64) -> Result<Option<AlarmRequest>> {
        let r = sqlx::query("SELECT * FROM alarm_requests WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .doing("reading an alarm request")?;
        Ok(r.as_ref().map(request_from_row))
    }

    pub async fn finish_alarm_request(
        &self,
        id: i64,
        outcome: &serde_json::Value,
        now: jiff::Timestamp,
    ) -> Result<()> {
        sqlx::query("UPDATE alarm_requests SET done_us = ?, outcome = ? WHERE id = ?")
            .bind(micros(now))
            .bind(outcome.to_string())
            .bind(id)
            .execute(&self.pool)
            .await
            .doing("finishing an alarm request")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sensors_state_and_requests_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let s = store
            .add_sensor(
                &NewSensor {
                    name: "door".into(),
                    kind: "contact".into(),
                    topic: "z2m/door".into(),
                    camera_id: None,
                    modes: None,
                },
                now,
            )
            .await
            .unwrap();
        assert_eq!(s.active, None);
        assert!(matches!(
            store
                .add_sensor(
                    &NewSensor {
                        name: "door".into(),
                        kind: "contact".into(),
                        topic: "z2m/other".into(),
                        camera_id: None,
                        modes: None,
                    },
                    now,
                )
                .await,
            Err(StoreError::Conflict(_))
        ));
        store
            .put_sensor_telemetry(
                s.id,
                &SensorTelemetry {
                    active: Some(true),
                    battery: Some(90.0),
                    ..Default::default()
                },
                now,
            )
            .await
            .unwrap();
        store
            .put_sensor_telemetry(
                s.id,
                &SensorTelemetry {
                    linkquality: Some(80),
                    ..Default::default()
                },
                now,
            )
            .await
            .unwrap();
        let s = store.sensor_by_name("door").await.unwrap().unwrap();
        assert_eq!(
            (s.active, s.battery, s.linkquality),
            (Some(true), Some(90.0), Some(80))
        );

        assert_eq!(store.alarm_state().await.unwrap().state, "disarmed");
        store
            .put_alarm_state(&AlarmStateRow {
                state: "armed_away".into(),
                snapshot: serde_json::json!({"x": 1}),
                updated: now,
            })
            .await
            .unwrap();
        let st = store.alarm_state().await.unwrap();
        assert_eq!(st.state, "armed_away");
        assert_eq!(st.snapshot["x"], 1);

        let id = store
            .push_alarm_request("disarm", "cli", &serde_json::json!({}), now)
            .await
            .unwrap();
        assert_eq!(store.pending_alarm_requests().await.unwrap().len(), 1);
        store
            .finish_alarm_request(id, &serde_json::json!({"ok": true}), now)
            .await
            .unwrap();
        assert!(store.pending_alarm_requests().await.unwrap().is_empty());
        assert_eq!(s.modes, None);
        let s = store.set_sensor_modes("door", Some("away")).await.unwrap();
        assert_eq!(s.modes.as_deref(), Some("away"));
        assert!(matches!(
            store.set_sensor_modes("door", Some("night")).await,
            Err(StoreError::Db { .. })
        ));
        assert!(matches!(
            store.set_sensor_modes("nobody", None).await,
            Err(StoreError::NotFound(_))
        ));
        let s = store.set_sensor_modes("door", None).await.unwrap();
        assert_eq!(s.modes, None);
        store.remove_sensor("door").await.unwrap();
        assert!(store.remove_sensor("door").await.is_err());
    }
}
