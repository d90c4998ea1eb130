//! Zigbee2MQTT payloads: what a device's state message means.
//!
//! A device publishes a JSON object on its topic (`zigbee2mqtt/NAME`) and
//! `online`/`offline` (or `{"state":"online"}`) on `TOPIC/availability`.
//! Anything that is not what a field should be is an error: the whole
//! message is ignored (logged by the caller with the device's name), so a
//! garbled message can never set the alarm off.

use serde_json::Value;

use crate::machine::Kind;

/// What one state message said. `None`: not mentioned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Contact open (`"contact": false`) or motion seen (`"occupancy": true`).
    pub active: Option<bool>,
    /// A button or keypad action (`single`, `disarm`, `arm_all_zones`, …).
    pub action: Option<String>,
    /// The code typed on a keypad.
    pub action_code: Option<String>,
    pub battery: Option<f64>,
    pub linkquality: Option<i64>,
}

fn field_bool(obj: &serde_json::Map<String, Value>, k: &str) -> Result<Option<bool>, String> {
    match obj.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(format!("`{k}` should be true or false, not {v}")),
    }
}

/// Parses a device's state message.
pub fn parse_state(kind: Kind, payload: &[u8]) -> Result<Reading, String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not valid JSON ({e})"))?;
    let Value::Object(obj) = v else {
        return Err("not a JSON object".into());
    };
    let mut r = Reading::default();
    match kind {
        Kind::Contact => r.active = field_bool(&obj, "contact")?.map(|closed| !closed),
        Kind::Motion => r.active = field_bool(&obj, "occupancy")?,
        Kind::Doorbell | Kind::Keypad | Kind::Siren => {}
    }
    if matches!(kind, Kind::Doorbell | Kind::Keypad) {
        r.action = match obj.get("action") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => return Err(format!("`action` should be a string, not {v}")),
        };
        r.action_code = match obj.get("action_code") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(v) => return Err(format!("`action_code` should be a string, not {v}")),
        };
    }
    r.battery = match obj.get("battery") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(v) => return Err(format!("`battery` should be a number, not {v}")),
    };
    r.linkquality = match obj.get("linkquality") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_i64(),
        Some(v) => return Err(format!("`linkquality` should be a number, not {v}")),
    };
    Ok(r)
}

/// Parses `TOPIC/availability`: `online`/`offline`, plain or as
/// `{"state": "online"}` (Zigbee2MQTT's newer form).
pub fn parse_availability(payload: &[u8]) -> Result<bool, String> {
    let text = std::str::from_utf8(payload).map_err(|_| "not UTF-8".to_string())?;
    let word = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => o
            .get("state")
            .and_then(Value::as_str)
            .ok_or("no `state` string")?
            .to_owned(),
        _ => text.trim().to_owned(),
    };
    match word.as_str() {
        "online" => Ok(true),
        "offline" => Ok(false),
        other => Err(format!("unknown availability `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_motion_action_and_telemetry() {
        let r = parse_state(
            Kind::Contact,
            br#"{"contact":false,"battery":87,"linkquality":120,"voltage":3000}"#,
        )
        .unwrap();
        assert_eq!(r.active, Some(true));
        assert_eq!(r.battery, Some(87.0));
        assert_eq!(r.linkquality, Some(120));
        assert_eq!(
            parse_state(Kind::Contact, br#"{"contact":true}"#)
                .unwrap()
                .active,
            Some(false)
        );
        assert_eq!(
            parse_state(Kind::Contact, br#"{"battery":50}"#)
                .unwrap()
                .active,
            None
        );
        assert_eq!(
            parse_state(Kind::Motion, br#"{"occupancy":true}"#)
                .unwrap()
                .active,
            Some(true)
        );
        let k = parse_state(Kind::Keypad, br#"{"action":"disarm","action_code":"1234"}"#).unwrap();
        assert_eq!(
            (k.action.as_deref(), k.action_code.as_deref()),
            (Some("disarm"), Some("1234"))
        );
        assert_eq!(
            parse_state(Kind::Doorbell, br#"{"action":""}"#)
                .unwrap()
                .action,
            None
        );
    }

    #[test]
    fn malformed_and_wrong_types_are_errors() {
        assert!(parse_state(Kind::Contact, b"{not json").is_err());
        assert!(parse_state(Kind::Contact, b"[1,2]").is_err());
        assert!(parse_state(Kind::Contact, br#"{"contact":"open"}"#).is_err());
        assert!(parse_state(Kind::Contact, br#"{"contact":0}"#).is_err());
        assert!(parse_state(Kind::Motion, br#"{"occupancy":"yes"}"#).is_err());
        assert!(parse_state(Kind::Doorbell, br#"{"action":5}"#).is_err());
        assert!(parse_state(Kind::Contact, br#"{"contact":true,"battery":"full"}"#).is_err());
    }

    #[test]
    fn availability_forms() {
        assert_eq!(parse_availability(b"online"), Ok(true));
        assert_eq!(parse_availability(br#"{"state":"offline"}"#), Ok(false));
        assert!(parse_availability(b"maybe").is_err());
    }
}
