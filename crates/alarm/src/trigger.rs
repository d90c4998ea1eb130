//! External triggers over MQTT: a message on `<base>/<camera>/trigger`
//! (e.g. `porchlight/front-door/trigger`) asks the hub to record an event
//! on that camera with a snapshot of that moment, exactly as `POST
//! /api/v1/events` does. The alarm only reads and checks the message
//! ([`parse`]) and hands it on ([`crate::AlarmClient::triggers`]); the hub's
//! event path records it, attaches the snapshot and announces it.
//!
//! The payload is a JSON object:
//!
//! ```json
//! {"kind": "doorbell", "note": "side gate button", "alert": true, "detail": {"button": 2}}
//! ```
//!
//! * `kind` (or `label`): 1–40 lower-case letters, digits, `_` or `-`;
//! * `note`: optional text, at most 500 characters, kept in the detail;
//! * `alert`: optional, default true (notified, like the HTTP route);
//! * `detail`: optional JSON kept with the event, at most 4 KiB.
//!
//! Anything else — not JSON, another shape, an unknown field, a bad kind,
//! too large — is logged with the topic and ignored.

use serde::Deserialize;
use serde_json::{json, Value};

/// The largest payload read (larger ones are ignored unread).
pub const MAX_PAYLOAD: usize = 8 * 1024;

/// A checked trigger, for the event path.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TriggerRequest {
    /// The camera named by the topic (known to the hub when sent).
    pub camera: String,
    pub kind: String,
    pub alert: bool,
    /// The payload's `detail` (an object), with `note` added when given.
    pub detail: Value,
    /// The topic it came on.
    pub topic: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(alias = "label")]
    kind: String,
    #[serde(default)]
    note: Option<String>,
    #[serde(default = "yes")]
    alert: bool,
    #[serde(default)]
    detail: Value,
}

fn yes() -> bool {
    true
}

/// Whether `kind` is a usable event kind (the HTTP route's rule).
pub fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 40
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Reads and checks a trigger payload for `camera`; the error says what is
/// wrong, for the log.
pub fn parse(camera: &str, topic: &str, payload: &[u8]) -> Result<TriggerRequest, String> {
    if payload.len() > MAX_PAYLOAD {
        return Err(format!(
            "the payload is {} bytes; at most {MAX_PAYLOAD}",
            payload.len()
        ));
    }
    let b: Body = serde_json::from_slice(payload).map_err(|e| {
        format!(
            "not a trigger ({e}); expected JSON such as {{\"kind\":\"doorbell\",\"note\":\"…\"}}"
        )
    })?;
    let kind = b.kind.trim();
    if !valid_kind(kind) {
        return Err(format!(
            "event kind {:?}: use 1–40 lower-case letters, digits, '_' or '-' (e.g. doorbell)",
            b.kind
        ));
    }
    let mut detail = match b.detail {
        Value::Null => json!({}),
        Value::Object(o) => Value::Object(o),
        other => {
            return Err(format!(
                "`detail` must be a JSON object, not {}",
                match other {
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::String(_) => "a string",
                    _ => "an array",
                }
            ))
        }
    };
    if let Some(note) = b.note {
        if note.chars().count() > 500 {
            return Err("`note` is longer than 500 characters".into());
        }
        if detail.get("note").is_some() {
            return Err("give the note once: as `note` or as `detail.note`".into());
        }
        detail["note"] = json!(note);
    }
    if detail.to_string().len() > 4096 {
        return Err("`detail` is larger than 4 KiB".into());
    }
    Ok(TriggerRequest {
        camera: camera.to_owned(),
        kind: kind.to_owned(),
        alert: b.alert,
        detail,
        topic: topic.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "porchlight/front-door/trigger";

    #[test]
    fn good_payloads() {
        let r = parse(
            "front-door",
            T,
            br#"{"label":"doorbell","note":"side gate"}"#,
        )
        .unwrap();
        assert_eq!(r.kind, "doorbell");
        assert!(r.alert);
        assert_eq!(r.detail, json!({"note": "side gate"}));
        assert_eq!(r.camera, "front-door");
        let r = parse(
            "front-door",
            T,
            br#"{"kind":"gate_opened","alert":false,"detail":{"gate":2}}"#,
        )
        .unwrap();
        assert_eq!((r.kind.as_str(), r.alert), ("gate_opened", false));
        assert_eq!(r.detail, json!({"gate": 2}));
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"ding dong", "not a trigger"),
            (b"", "not a trigger"),
            (b"[1,2]", "not a trigger"),
            (br#"{"note":"x"}"#, "missing field `kind`"),
            (
                br#"{"kind":"doorbell","camera":"x"}"#,
                "unknown field `camera`",
            ),
            (br#"{"kind":"Door Bell"}"#, "event kind \"Door Bell\""),
            (br#"{"kind":""}"#, "event kind"),
            (br#"{"kind":7}"#, "invalid type"),
            (br#"{"kind":"doorbell","alert":"yes"}"#, "invalid type"),
            (
                br#"{"kind":"doorbell","detail":"x"}"#,
                "must be a JSON object, not a string",
            ),
            (
                br#"{"kind":"doorbell","note":"a","detail":{"note":"b"}}"#,
                "give the note once",
            ),
        ];
        for (payload, want) in cases {
            let e = parse("front-door", T, payload).unwrap_err();
            assert!(
                e.contains(want),
                "{:?}: {e} (wanted {want})",
                String::from_utf8_lossy(payload)
            );
        }
        let long = format!(r#"{{"kind":"x","note":"{}"}}"#, "n".repeat(501));
        assert!(parse("c", T, long.as_bytes()).unwrap_err().contains("500"));
        let big = format!(r#"{{"kind":"x","detail":{{"a":"{}"}}}}"#, "n".repeat(5000));
        assert!(parse("c", T, big.as_bytes()).unwrap_err().contains("4 KiB"));
        let huge = vec![b' '; MAX_PAYLOAD + 1];
        assert!(parse("c", T, &huge).unwrap_err().contains("at most"));
    }
}
