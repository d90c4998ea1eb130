//! A camera's detection settings, stored as JSON per camera
//! (`camera_detection` table) and validated here before they are saved.

use std::collections::{BTreeMap, BTreeSet};

use porchlight_detect::{Label, MotionConfig, ZoneKind};
use serde::{Deserialize, Serialize};

use crate::activity::ActivityOptions;

/// Detection settings of one camera. Every field has a default, so `{}`
/// is a valid document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CameraDetection {
    /// Analyse this camera at all.
    pub enabled: bool,
    /// Frames analysed per second (every frame is decoded).
    pub fps: f32,
    /// Motion: sensitivity, minimum area, zones and masks.
    pub motion: MotionConfig,
    /// Run the object detector on motion regions.
    pub objects: bool,
    /// Minimum detector score for a person, vehicle or animal.
    pub threshold: f32,
    /// Minimum detector score for a parcel (the model's `box` class scores
    /// lower than people do; see design/detection.md).
    pub parcel_threshold: f32,
    /// Which stream to analyse: `auto` (the sub-stream when the camera has
    /// one, else the main stream if it is at most 1280 wide — a bigger
    /// main stream pauses detection with a warning rather than decoding
    /// every full-size frame), `main` or `sub`.
    pub stream: String,
    /// Labels that make an event an alert (`person`, `vehicle`, `animal`,
    /// `parcel`); zones may narrow this down per zone.
    pub alert_labels: Vec<String>,
    /// Track parcels (package delivered / taken).
    pub parcels: bool,
    /// Seconds of recording kept before an event's start in its clip.
    pub preroll_s: u32,
    /// Seconds of stillness that end an event (and are kept after it).
    pub postroll_s: u32,
}

impl Default for CameraDetection {
    fn default() -> Self {
        CameraDetection {
            enabled: true,
            fps: 5.0,
            motion: MotionConfig::default(),
            objects: true,
            threshold: 0.5,
            parcel_threshold: 0.3,
            stream: "auto".into(),
            alert_labels: vec!["person".into(), "parcel".into()],
            parcels: true,
            preroll_s: 5,
            postroll_s: 5,
        }
    }
}

/// What is wrong with detection settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("detection settings: {0}")]
    Json(#[from] serde_json::Error),
    #[error("detection settings: fps must be between 0.5 and 30, not {0}")]
    Fps(f32),
    #[error("detection settings: threshold must be between 0.05 and 0.99, not {0}")]
    Threshold(f32),
    #[error("detection settings: stream must be auto, main or sub, not {0:?}")]
    Stream(String),
    #[error("detection settings: unknown label {0:?} (known: person, vehicle, animal, parcel)")]
    Label(String),
    #[error("detection settings: post-roll must be 1 to 120 s and pre-roll at most 60 s")]
    Roll,
    #[error("detection settings: {0}")]
    Motion(String),
}

pub(crate) fn label(name: &str) -> Result<Label, SettingsError> {
    match name {
        "person" => Ok(Label::Person),
        "vehicle" => Ok(Label::Vehicle),
        "animal" => Ok(Label::Animal),
        "parcel" | "package" => Ok(Label::Parcel),
        other => Err(SettingsError::Label(other.to_owned())),
    }
}

impl CameraDetection {
    /// Parses and validates a stored or submitted document.
    pub fn from_json(v: &serde_json::Value) -> Result<CameraDetection, SettingsError> {
        let s: CameraDetection = serde_json::from_value(v.clone())?;
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(0.5..=30.0).contains(&self.fps) {
            return Err(SettingsError::Fps(self.fps));
        }
        for t in [self.threshold, self.parcel_threshold] {
            if !(0.05..=0.99).contains(&t) {
                return Err(SettingsError::Threshold(t));
            }
        }
        if !matches!(self.stream.as_str(), "auto" | "main" | "sub") {
            return Err(SettingsError::Stream(self.stream.clone()));
        }
        for l in &self.alert_labels {
            label(l)?;
        }
        if !(1..=120).contains(&self.postroll_s) || self.preroll_s > 60 {
            return Err(SettingsError::Roll);
        }
        self.motion
            .validate()
            .map_err(|e| SettingsError::Motion(e.to_string()))?;
        Ok(())
    }

    /// The activity tracker's options.
    pub fn activity(&self) -> ActivityOptions {
        let alert_labels: BTreeSet<Label> = self
            .alert_labels
            .iter()
            .filter_map(|l| label(l).ok())
            .collect();
        let zone_rules: BTreeMap<String, Option<BTreeSet<Label>>> = self
            .motion
            .zones
            .iter()
            .filter(|z| z.kind == ZoneKind::Include)
            .map(|z| {
                let rule = z
                    .labels
                    .as_ref()
                    .map(|ls| ls.iter().filter_map(|l| label(l).ok()).collect());
                (z.name.clone(), rule)
            })
            .collect();
        ActivityOptions {
            postroll_us: self.postroll_s as i64 * 1_000_000,
            alert_labels,
            zone_rules,
            ..ActivityOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_document_is_the_defaults() {
        let s = CameraDetection::from_json(&serde_json::json!({})).unwrap();
        assert_eq!(s, CameraDetection::default());
        assert!(s.activity().alert_labels.contains(&Label::Person));
    }

    #[test]
    fn bad_documents_name_the_problem() {
        let e = CameraDetection::from_json(&serde_json::json!({"fps": 100})).unwrap_err();
        assert!(e.to_string().contains("fps"), "{e}");
        let e = CameraDetection::from_json(&serde_json::json!({"alert_labels": ["unicorn"]}))
            .unwrap_err();
        assert!(e.to_string().contains("unicorn"), "{e}");
        let e = CameraDetection::from_json(&serde_json::json!({"sensitvity": 1})).unwrap_err();
        assert!(e.to_string().contains("sensitvity"), "{e}");
        let e = CameraDetection::from_json(
            &serde_json::json!({"motion": {"zones": [{"name": "a", "polygon": [[0, 0], [1, 1]]}]}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("at least 3 points"), "{e}");
    }

    #[test]
    fn zone_rules_follow_include_zones() {
        let s = CameraDetection::from_json(&serde_json::json!({"motion": {"zones": [
            {"name": "porch", "polygon": [[0, 0], [1, 0], [1, 1]], "labels": ["person", "parcel"]},
            {"name": "tree", "polygon": [[0, 0], [0.2, 0], [0.2, 0.2]], "kind": "mask"}
        ]}}))
        .unwrap();
        let a = s.activity();
        assert_eq!(a.zone_rules.len(), 1);
        assert!(a.zone_rules["porch"]
            .as_ref()
            .unwrap()
            .contains(&Label::Parcel));
    }
}
