//! Detection for Porchlight, on the hub and offline:
//!
//! - [`decode`]: access units (as the recorder fans them out) to owned YUV
//!   frames: H.264 without B-frames with the bundled OpenH264, or — in a
//!   build with `--features ffmpeg` — H.264 with B-frames and H.265 with
//!   the system's libavcodec; a frame gives a small luma plane for
//!   motion, RGB crops for the object detector and JPEG snapshots.
//! - [`motion`] and [`zones`]: motion on the small luma plane with a
//!   background model that ignores noise, slow and sudden light changes;
//!   per-camera zones and masks; ON/OFF hysteresis.
//! - Object detection (this module): finds people, vehicles, animals and
//!   parcels in an image (a whole frame or a crop around motion) with the
//!   vendored SSD-MobileNetV2 (Open Images v4) model run by `tract-onnx`,
//!   and maps the model's 23 classes onto Porchlight's four labels.
//!
//! What it does not do (later work, see `design/detection.md`): running
//! the pipeline per camera, tracking parcels, events.
//!
//! Invariants:
//! - Runs offline: it loads only the model and label files it is given
//!   (normally the vendored `models/` directory) and never downloads or
//!   sends anything anywhere.
//! - The model is loaded and optimised once; a [`Detector`] is `Send +
//!   Sync` and [`Detector::detect`] runs on an immutable plan, so one
//!   detector can serve many threads.
//! - Boxes are always in source-image pixels, clamped to the image.
//! - Bad input (video, configuration, planes) is an error naming what is
//!   wrong, never a panic.

#![forbid(unsafe_code)]

pub mod decode;
pub mod motion;
mod ssd;
mod tiles;
pub mod zones;

pub use decode::{Backend, DecodeError, Decoded, Frame, LumaPlane, VideoDecoder, Yuv420};
pub use motion::{
    MotionChange, MotionConfig, MotionDetector, MotionError, MotionResult, MotionTracker, Region,
    TrackerConfig,
};
pub use zones::{Zone, ZoneError, ZoneKind};

pub use image;
use image::RgbImage;
pub use ssd::{anchors, decode, decode_box, iou, nms, Anchor, BoxF, Candidate, NUM_ANCHORS};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tract_onnx::prelude::*;

/// File name of the vendored model inside the models directory.
pub const MODEL_FILE: &str = "ssd_mobilenetv2_oidv4.onnx";
/// File name of the vendored label map inside the models directory.
pub const LABELS_FILE: &str = "ssd_mobilenetv2_oidv4.labels.txt";

/// Porchlight's coarse label for a detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Person,
    Vehicle,
    Animal,
    Parcel,
}

impl Label {
    /// The lower-case name (`person`, `vehicle`, `animal`, `parcel`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Label::Person => "person",
            Label::Vehicle => "vehicle",
            Label::Animal => "animal",
            Label::Parcel => "parcel",
        }
    }

    /// The Porchlight label of a model class (lower-case), if it has one.
    /// The label map has no motorcycle, bus, truck or other animals; the
    /// "stationary bicycle" (exercise machine) is not a vehicle.
    pub fn for_class(class: &str) -> Option<Label> {
        match class {
            "person" => Some(Label::Person),
            "car" | "vehicle" | "bicycle" | "motorcycle" | "bus" | "truck" => Some(Label::Vehicle),
            "dog" | "cat" | "cattle" | "horse" | "bird" => Some(Label::Animal),
            "box" => Some(Label::Parcel),
            _ => None,
        }
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object found in an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The model's class name, lower-cased (e.g. `dog`).
    pub class: String,
    /// Porchlight's label for that class, if any.
    pub label: Option<Label>,
    /// Sigmoid score in 0..1.
    pub score: f32,
    /// `(x, y, width, height)` in source-image pixels.
    pub bbox: (u32, u32, u32, u32),
}

/// Options of one [`Detector::detect`] call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectOptions {
    /// Minimum score kept (default 0.5).
    pub threshold: f32,
    /// IoU above which a lower-scored box of the same class is suppressed
    /// (default 0.5).
    pub nms_iou: f32,
    /// Also run on overlapping tiles when the image is large or wide
    /// (default true); see `design/detection.md`.
    pub tiling: bool,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            threshold: 0.5,
            nms_iou: 0.5,
            tiling: true,
        }
    }
}

/// Why a detector could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(
        "model file {0} is missing (set PORCHLIGHT_MODELS to the folder holding {MODEL_FILE})"
    )]
    ModelMissing(PathBuf),
    #[error(
        "label file {0} is missing (set PORCHLIGHT_MODELS to the folder holding {LABELS_FILE})"
    )]
    LabelsMissing(PathBuf),
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path} is not an ONNX model tract can load: {reason}")]
    NotOnnx { path: PathBuf, reason: String },
    #[error("{path} is not the expected detector: {reason}")]
    WrongShape { path: PathBuf, reason: String },
    #[error("inference failed: {0}")]
    Inference(String),
}

type Plan = Arc<TypedRunnableModel>;

/// The loaded object detector. Load once, share freely.
pub struct Detector {
    plan: Plan,
    labels: Vec<String>,
    anchors: Vec<Anchor>,
    /// Index of the box-encodings output (the other is the class logits).
    boxes_output: usize,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("classes", &self.labels.len())
            .finish_non_exhaustive()
    }
}

impl Detector {
    /// Where the vendored model and labels are: `$PORCHLIGHT_MODELS` if set;
    /// else the first `models/` folder holding the model found beside the
    /// executable, in `../share/porchlight/models` from it, or in any of the
    /// executable's parent folders (a `target/debug` build in the repo);
    /// else the repository's `models/` as seen at build time.
    pub fn default_paths() -> (PathBuf, PathBuf) {
        let dir = models_dir();
        (dir.join(MODEL_FILE), dir.join(LABELS_FILE))
    }

    /// [`Detector::load`] on [`Detector::default_paths`].
    pub fn load_default() -> Result<Detector, DetectError> {
        let (m, l) = Self::default_paths();
        Self::load(&m, &l)
    }

    /// Loads, checks and optimises the model. Errors name the file and the
    /// problem: missing, unreadable, not ONNX, or not shaped like the
    /// SSD-MobileNetV2 detector (input `[1,3,300,300]`, outputs
    /// `[1,1917,4]` and `[1,1917,classes]`).
    pub fn load(model_path: &Path, labels_path: &Path) -> Result<Detector, DetectError> {
        if !model_path.is_file() {
            return Err(DetectError::ModelMissing(model_path.to_owned()));
        }
        if !labels_path.is_file() {
            return Err(DetectError::LabelsMissing(labels_path.to_owned()));
        }
        let labels_text =
            std::fs::read_to_string(labels_path).map_err(|e| DetectError::Unreadable {
                path: labels_path.to_owned(),
                reason: e.to_string(),
            })?;
        let labels: Vec<String> = labels_text
            .lines()
            .map(|l| l.trim().to_lowercase())
            .filter(|l| !l.is_empty())
            .collect();
        let not_onnx = |e: TractError| DetectError::NotOnnx {
            path: model_path.to_owned(),
            reason: format!("{e:#}"),
        };
        let wrong = |reason: String| DetectError::WrongShape {
            path: model_path.to_owned(),
            reason,
        };
        let model = tract_onnx::onnx()
            .model_for_path(model_path)
            .map_err(not_onnx)?
            .into_typed()
            .map_err(not_onnx)?;
        let input = model.input_fact(0).map_err(not_onnx)?;
        let want_in = [1usize, 3, ssd::INPUT_SIDE, ssd::INPUT_SIDE];
        if input.shape.as_concrete() != Some(&want_in[..]) || input.datum_type != f32::datum_type()
        {
            return Err(wrong(format!(
                "input is {input:?}, expected f32 [1,3,300,300]"
            )));
        }
        let outputs = model.output_outlets().map_err(not_onnx)?.len();
        if outputs != 2 {
            return Err(wrong(format!("{outputs} outputs, expected 2")));
        }
        let mut boxes_output = None;
        for i in 0..2 {
            let fact = model.output_fact(i).map_err(not_onnx)?;
            match fact.shape.as_concrete() {
                Some(&[1, NUM_ANCHORS, 4]) => boxes_output = Some(i),
                Some(&[1, NUM_ANCHORS, n]) if n == labels.len() => {}
                _ => {
                    return Err(wrong(format!(
                        "output {i} is {fact:?}, expected [1,{NUM_ANCHORS},4] or [1,{NUM_ANCHORS},{}] ({} labels in {})",
                        labels.len(),
                        labels.len(),
                        labels_path.display()
                    )))
                }
            }
        }
        let boxes_output =
            boxes_output.ok_or_else(|| wrong("no [1,1917,4] box output".to_string()))?;
        let plan = model
            .into_optimized()
            .map_err(not_onnx)?
            .into_runnable()
            .map_err(not_onnx)?;
        Ok(Detector {
            plan,
            labels,
            anchors: ssd::anchors(),
            boxes_output,
        })
    }

    /// The model's class names, lower-cased, index 0 being background.
    pub fn classes(&self) -> &[String] {
        &self.labels
    }

    /// Runs the model once on the whole of `img`, stretched to 300x300.
    /// Returns candidates in normalised coordinates, before NMS.
    fn infer(&self, img: &RgbImage, threshold: f32) -> Result<Vec<Candidate>, DetectError> {
        let side = ssd::INPUT_SIDE as u32;
        let small;
        let view = if img.width() == side && img.height() == side {
            img
        } else {
            small = image::imageops::resize(img, side, side, image::imageops::FilterType::Triangle);
            &small
        };
        let n = ssd::INPUT_SIDE;
        let mut data = vec![0f32; 3 * n * n];
        for (x, y, p) in view.enumerate_pixels() {
            let i = y as usize * n + x as usize;
            for c in 0..3 {
                data[c * n * n + i] = p[c] as f32 / 127.5 - 1.0;
            }
        }
        let tensor = Tensor::from_shape(&[1, 3, n, n], &data)
            .map_err(|e| DetectError::Inference(format!("{e:#}")))?;
        let out = self
            .plan
            .run(tvec!(tensor.into()))
            .map_err(|e| DetectError::Inference(format!("{e:#}")))?;
        let boxes = out[self.boxes_output]
            .to_plain_array_view::<f32>()
            .map_err(|e| DetectError::Inference(format!("{e:#}")))?
            .iter()
            .copied()
            .collect::<Vec<f32>>();
        let logits = out[1 - self.boxes_output]
            .to_plain_array_view::<f32>()
            .map_err(|e| DetectError::Inference(format!("{e:#}")))?
            .iter()
            .copied()
            .collect::<Vec<f32>>();
        Ok(ssd::decode(
            &boxes,
            &logits,
            self.labels.len(),
            &self.anchors,
            threshold,
        ))
    }

    /// Finds objects in `img`. Runs the model on the whole image and, when
    /// the image is large or far from square (and `opts.tiling`), on
    /// overlapping square tiles too; merges with per-class NMS. Sorted by
    /// descending score.
    pub fn detect(
        &self,
        img: &RgbImage,
        opts: &DetectOptions,
    ) -> Result<Vec<Detection>, DetectError> {
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        let mut all: Vec<Candidate> = Vec::new();
        let whole = tiles::Tile { x: 0, y: 0, w, h };
        let mut regions = vec![whole];
        if opts.tiling {
            regions.extend(tiles::tiles(w, h));
        }
        for t in &regions {
            let found = if *t == whole {
                self.infer(img, opts.threshold)?
            } else {
                let crop = image::imageops::crop_imm(img, t.x, t.y, t.w, t.h).to_image();
                self.infer(&crop, opts.threshold)?
            };
            for c in found {
                let b = BoxF {
                    x0: t.x as f32 + c.bbox.x0 * t.w as f32,
                    y0: t.y as f32 + c.bbox.y0 * t.h as f32,
                    x1: t.x as f32 + c.bbox.x1 * t.w as f32,
                    y1: t.y as f32 + c.bbox.y1 * t.h as f32,
                };
                // An object cut by a tile edge inside the image is left to
                // the tile (or whole-image pass) that sees all of it.
                if *t != whole && tiles::cut_by_tile(&b, t, w, h) {
                    continue;
                }
                all.push(Candidate { bbox: b, ..c });
            }
        }
        let kept = ssd::nms(all, opts.nms_iou);
        Ok(kept
            .into_iter()
            .filter_map(|c| {
                let x0 = c.bbox.x0.clamp(0.0, w as f32);
                let y0 = c.bbox.y0.clamp(0.0, h as f32);
                let x1 = c.bbox.x1.clamp(0.0, w as f32);
                let y1 = c.bbox.y1.clamp(0.0, h as f32);
                if x1 - x0 < 1.0 || y1 - y0 < 1.0 {
                    return None;
                }
                let class = self.labels.get(c.class)?.clone();
                Some(Detection {
                    label: Label::for_class(&class),
                    class,
                    score: c.score,
                    bbox: (
                        x0.round() as u32,
                        y0.round() as u32,
                        (x1 - x0).round() as u32,
                        (y1 - y0).round() as u32,
                    ),
                })
            })
            .collect())
    }
}

fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PORCHLIGHT_MODELS") {
        return PathBuf::from(dir);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(exe_dir) = exe.parent() {
            let mut candidates = vec![
                exe_dir.join("models"),
                exe_dir.join("../share/porchlight/models"),
            ];
            candidates.extend(exe_dir.ancestors().skip(1).map(|d| d.join("models")));
            if let Some(found) = candidates
                .into_iter()
                .find(|d| d.join(MODEL_FILE).is_file())
            {
                return found;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Detector>();
    }

    #[test]
    fn label_mapping() {
        assert_eq!(Label::for_class("person"), Some(Label::Person));
        for c in ["car", "vehicle", "bicycle"] {
            assert_eq!(Label::for_class(c), Some(Label::Vehicle), "{c}");
        }
        for c in ["dog", "cat", "cattle"] {
            assert_eq!(Label::for_class(c), Some(Label::Animal), "{c}");
        }
        assert_eq!(Label::for_class("box"), Some(Label::Parcel));
        assert_eq!(Label::for_class("stationary bicycle"), None);
        assert_eq!(Label::for_class("laptop"), None);
    }

    #[test]
    fn missing_files_are_named() {
        let e = Detector::load(Path::new("/nonexistent/m.onnx"), Path::new("/x")).unwrap_err();
        assert!(matches!(e, DetectError::ModelMissing(_)));
        assert!(e.to_string().contains("/nonexistent/m.onnx"));
    }

    #[test]
    fn a_text_file_is_not_an_onnx_model() {
        let dir = std::env::temp_dir().join(format!("porchlight-detect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = dir.join("bogus.onnx");
        std::fs::write(&m, "this is not a model\n").unwrap();
        let (_, labels) = Detector::default_paths();
        let e = Detector::load(&m, &labels).unwrap_err();
        std::fs::remove_dir_all(&dir).ok();
        assert!(matches!(e, DetectError::NotOnnx { .. }), "{e}");
        assert!(e.to_string().contains("bogus.onnx"), "{e}");
    }
}
