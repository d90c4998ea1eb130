//! Wires the event path (`porchlight-events`) into the running hub:
//!
//! * detection on every camera's live frames, with the vendored object
//!   model when it loads (motion only, with a warning, when it does not),
//!   loaded only once a camera with object detection on starts;
//! * MQTT through the alarm's broker link (`porchlight/<camera>/…`);
//! * Web Push: a notice for every new alert, and for every event the alarm
//!   records (doorbell presses, alarm transitions);
//! * snapshots for the alarm's events that name a camera (a doorbell
//!   linked to the front door camera gets a picture of that moment);
//! * external triggers heard over MQTT on `<base>/<camera>/trigger`
//!   (checked by `porchlight_alarm::trigger`), recorded through the same
//!   [`EventsHandle::trigger`] as `POST /api/v1/events` — snapshot,
//!   announcement and push alike — and audited as `event.trigger` by
//!   `mqtt` (with the event id and topic; the kind is sealed with the
//!   event's details).

use std::sync::Arc;

use porchlight_alarm::AlarmClient;
use porchlight_events::{EventChange, Events, EventsHandle, EventsOptions, Publish};
use porchlight_notify::{Notice, Notifier};
use porchlight_recorder::LiveHub;
use porchlight_store::Store;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

struct AlarmMqtt(porchlight_alarm::MqttPublisher);

impl Publish for AlarmMqtt {
    fn publish(&self, topic: &str, retain: bool, payload: Vec<u8>) {
        self.0.publish(topic, retain, payload);
    }
}

/// The running event path and its helpers.
pub struct HubEvents {
    events: Events,
    tasks: Vec<JoinHandle<()>>,
}

impl HubEvents {
    pub async fn start(
        store: Store,
        data_dir: std::path::PathBuf,
        live: Arc<LiveHub>,
        alarm: &AlarmClient,
        notifier: Option<Notifier>,
        mqtt_prefix: &str,
    ) -> HubEvents {
        // Loaded when the first camera with object detection on starts.
        let detector =
            porchlight_events::DetectorSource::Lazy(porchlight_detect::Detector::load_default);
        let mqtt = alarm
            .mqtt()
            .map(|p| Arc::new(AlarmMqtt(p)) as Arc<dyn Publish>);
        let events = Events::start(
            store.clone(),
            porchlight_base::clock::system(),
            live,
            detector,
            mqtt,
            EventsOptions {
                prefix: mqtt_prefix.to_owned(),
                ..EventsOptions::new(data_dir)
            },
        )
        .await;
        let mut tasks = Vec::new();
        if let Some(n) = notifier.clone() {
            tasks.push(tokio::spawn(push_alerts(
                events.subscribe(),
                n,
                store.clone(),
            )));
        }
        // Subscribed before anything else runs, so no trigger is missed.
        let triggers = alarm.triggers();
        tasks.push(tokio::spawn(mqtt_triggers(
            events.handle(),
            triggers,
            store.clone(),
        )));
        tasks.push(tokio::spawn(alarm_events(
            events.handle(),
            alarm.clone(),
            store,
            notifier,
        )));
        HubEvents { events, tasks }
    }

    pub fn handle(&self) -> EventsHandle {
        self.events.handle()
    }

    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.events.shutdown().await;
    }
}

fn title_of(kind: &str, camera: Option<&str>) -> String {
    let what = match kind {
        "person" => "Person",
        "vehicle" => "Vehicle",
        "animal" => "Animal",
        "parcel" => "Parcel",
        "package_delivered" => "Package delivered",
        "package_taken" => "Package taken",
        "doorbell" => "Doorbell",
        "alarm" => "Alarm",
        "motion" => "Motion",
        other => other,
    };
    match camera {
        Some(c) => format!("{what} — {c}"),
        None => what.to_owned(),
    }
}

/// One push per alert event: when it is new and already an alert, or when
/// an update first makes it one (motion that turns out to be a person).
async fn push_alerts(
    mut rx: tokio::sync::broadcast::Receiver<EventChange>,
    n: Notifier,
    store: Store,
) {
    let mut pushed = std::collections::HashSet::new();
    loop {
        let c = match rx.recv().await {
            Ok(c) => c,
            Err(RecvError::Lagged(k)) => {
                tracing::warn!("push: skipped {k} event changes");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if !c.alert || c.change == "end" || !pushed.insert(c.id) {
            continue;
        }
        if pushed.len() > 10_000 {
            pushed.clear();
        }
        // The alarm mode may silence this camera (or it is in privacy).
        if let Some(cam) = c.camera_id {
            if let Ok(p) = store.camera_policy(cam).await {
                if !p.notify || p.privacy {
                    continue;
                }
            }
        }
        let at = c.start.strftime("%H:%M:%S").to_string();
        n.notify_in_background(Notice {
            title: title_of(&c.kind, c.camera.as_deref()),
            body: format!("{} at {at}", c.kind.replace('_', " ")),
            kind: c.kind.clone(),
            camera_id: c.camera_id,
            camera_name: c.camera.clone(),
            event_id: Some(c.id),
            labels: c.labels.clone(),
            alarm_mode: None,
            url: format!("/events/{}", c.id),
            at: c.start,
        });
    }
}

/// Triggers heard over MQTT, recorded like `POST /api/v1/events` (source
/// `mqtt`) and audited. A refusal (a camera removed meanwhile, …) is
/// logged with the topic and ignored.
async fn mqtt_triggers(
    events: EventsHandle,
    mut rx: tokio::sync::broadcast::Receiver<porchlight_alarm::TriggerRequest>,
    store: Store,
) {
    loop {
        let t = match rx.recv().await {
            Ok(t) => t,
            Err(RecvError::Lagged(k)) => {
                tracing::warn!("MQTT triggers: skipped {k} (too many at once)");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let trigger = porchlight_events::Trigger {
            camera: Some(t.camera.clone()),
            kind: t.kind.clone(),
            source: "mqtt".into(),
            alert: t.alert,
            detail: t.detail.clone(),
        };
        match events.trigger(trigger).await {
            Ok(id) => {
                let entry = porchlight_store::NewAuditEntry {
                    actor: "mqtt".into(),
                    action: "event.trigger".into(),
                    target: t.camera.clone(),
                    // No kind: it is sealed with the event's details
                    // (design/keys.md); the id leads there.
                    detail: serde_json::json!({ "event": id, "topic": t.topic }),
                    client: String::new(),
                };
                if let Err(e) = store.append_audit(&entry, jiff::Timestamp::now()).await {
                    tracing::error!("MQTT trigger: cannot write the audit log: {e}");
                }
            }
            Err(e) => tracing::warn!(topic = %t.topic, "ignoring a trigger on {}: {e}", t.topic),
        }
    }
}

/// The alarm's events: a snapshot when they name a camera, and a push.
async fn alarm_events(events: EventsHandle, alarm: AlarmClient, store: Store, n: Option<Notifier>) {
    let mut rx = alarm.event_notices();
    loop {
        let e = match rx.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        if let Some(cam) = e.camera_id {
            events.attach_snapshot(e.id, cam).await;
        }
        if let Some(n) = &n {
            if !matches!(e.kind.as_str(), "doorbell" | "alarm") {
                continue;
            }
            let camera_name = match e.camera_id {
                Some(id) => store.camera_by_id(id).await.ok().flatten().map(|c| c.name),
                None => None,
            };
            let state = alarm.machine().state_name();
            let mode = if state.contains("away") {
                "away"
            } else if state.contains("home") {
                "home"
            } else {
                "disarmed"
            }
            .to_owned();
            n.notify_in_background(Notice {
                title: title_of(&e.kind, camera_name.as_deref()),
                body: format!("{} at {}", e.kind, e.at.strftime("%H:%M:%S")),
                kind: e.kind.clone(),
                camera_id: e.camera_id,
                camera_name,
                event_id: Some(e.id),
                labels: Vec::new(),
                alarm_mode: Some(mode),
                url: format!("/events/{}", e.id),
                at: e.at,
            });
        }
    }
}
