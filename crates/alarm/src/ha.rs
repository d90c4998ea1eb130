//! Home Assistant MQTT discovery: the retained config messages that make
//! the alarm panel, the per-camera binary sensors and the doorbell event
//! entities and the per-camera snapshot image entities appear in Home
//! Assistant by themselves. Every config is published retained (see
//! `sync_mqtt` in lib.rs) and is a JSON object with HA's schema fields.

use serde_json::{json, Value};

use crate::Topics;

/// Labels that get a binary sensor per camera (besides `motion`). Detection
/// does not publish them yet; the entities exist so automations can be
/// written now.
pub const LABELS: [&str; 5] = ["motion", "person", "vehicle", "animal", "parcel"];

fn device(t: &Topics) -> Value {
    json!({
        "identifiers": [t.node_id],
        "name": "Porchlight",
        "manufacturer": "Porchlight",
        "model": "hub",
    })
}

/// Every discovery message for these cameras and doorbells:
/// `(topic, config)`, to be published retained.
pub fn configs(t: &Topics, cameras: &[String], doorbells: &[String]) -> Vec<(String, Value)> {
    let node = &t.node_id;
    let disc = &t.discovery_prefix;
    let mut out = vec![(
        format!("{disc}/alarm_control_panel/{node}/config"),
        json!({
            "name": "Alarm",
            "unique_id": format!("{node}_alarm"),
            "object_id": format!("{node}_alarm"),
            "state_topic": t.alarm_state(),
            "command_topic": t.alarm_set(),
            "availability_topic": t.status(),
            "payload_available": "online",
            "payload_not_available": "offline",
            "payload_arm_home": "ARM_HOME",
            "payload_arm_away": "ARM_AWAY",
            "payload_disarm": "DISARM",
            "supported_features": ["arm_home", "arm_away"],
            "code_arm_required": false,
            "code_disarm_required": false,
            "device": device(t),
        }),
    )];
    for cam in cameras {
        for label in LABELS {
            out.push((
                format!("{disc}/binary_sensor/{node}/{cam}_{label}/config"),
                json!({
                    "name": format!("{cam} {label}"),
                    "unique_id": format!("{node}_{cam}_{label}"),
                    "state_topic": t.camera_label(cam, label),
                    "availability_topic": t.status(),
                    "payload_available": "online",
                    "payload_not_available": "offline",
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "device_class": if label == "motion" { "motion" } else { "occupancy" },
                    "device": device(t),
                }),
            ));
        }
    }
    for cam in cameras {
        out.push((
            format!("{disc}/image/{node}/{cam}_snapshot/config"),
            json!({
                "name": format!("{cam} snapshot"),
                "unique_id": format!("{node}_{cam}_snapshot"),
                "image_topic": t.camera_snapshot(cam),
                "content_type": "image/jpeg",
                "availability_topic": t.status(),
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": device(t),
            }),
        ));
    }
    for bell in doorbells {
        out.push((
            format!("{disc}/event/{node}/{bell}_doorbell/config"),
            json!({
                "name": format!("{bell} doorbell"),
                "unique_id": format!("{node}_{bell}_doorbell"),
                "state_topic": t.doorbell(bell),
                "availability_topic": t.status(),
                "payload_available": "online",
                "payload_not_available": "offline",
                "event_types": ["press"],
                "device_class": "doorbell",
                "device": device(t),
            }),
        ));
    }
    out
}
