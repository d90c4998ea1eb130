//! `porchlight detect IMAGE [--json] [--threshold X]`: runs the object
//! detector on one image file and prints what it finds — the model's class
//! (`dog`), Porchlight's label (`animal`, or `-`), the score and the box in
//! the image's pixels — so a user can see what the hub would see when
//! tuning a camera. Large or wide images are tiled, not squashed (see
//! `porchlight_detect`). Runs offline on the vendored model; reads nothing
//! but the image and the model, writes nothing.

use std::path::PathBuf;

use anyhow::{anyhow, Context as _};
use porchlight_detect::{image, DetectOptions, Detector};

use crate::context::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image file (JPEG or PNG).
    pub image: PathBuf,
    /// Print a JSON array of {class, label, score, box: {x, y, width, height}}.
    #[arg(long)]
    pub json: bool,
    /// Minimum score to report, 0..1.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
}

pub async fn run(args: Args, _ctx: Context) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.threshold) {
        return Err(anyhow!(
            "--threshold must be between 0 and 1, not {}",
            args.threshold
        ));
    }
    let path = args.image.clone();
    let shown = path.display().to_string();
    let img = load_image(&path).with_context(|| format!("cannot read image {shown}"))?;
    let detector = Detector::load_default().context("cannot load the object detector")?;
    let opts = DetectOptions {
        threshold: args.threshold,
        ..DetectOptions::default()
    };
    let found = tokio::task::spawn_blocking(move || detector.detect(&img, &opts))
        .await
        .map_err(|e| anyhow!("detector thread failed: {e}"))?
        .with_context(|| format!("detection failed on {shown}"))?;
    if args.json {
        let items: Vec<serde_json::Value> = found
            .iter()
            .map(|d| {
                serde_json::json!({
                    "class": d.class,
                    "label": d.label.map(|l| l.as_str()),
                    "score": (f64::from(d.score) * 1000.0).round() / 1000.0,
                    "box": {"x": d.bbox.0, "y": d.bbox.1, "width": d.bbox.2, "height": d.bbox.3},
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if found.is_empty() {
        println!("nothing found at threshold {}", args.threshold);
    } else {
        for d in &found {
            println!(
                "{:<12} {:<8} {:.2}  x={} y={} w={} h={}",
                d.class,
                d.label.map(|l| l.as_str()).unwrap_or("-"),
                d.score,
                d.bbox.0,
                d.bbox.1,
                d.bbox.2,
                d.bbox.3
            );
        }
    }
    Ok(())
}

/// Reads and decodes the file, telling a missing file from an unreadable
/// one from one that is not a JPEG or PNG image.
fn load_image(path: &std::path::Path) -> anyhow::Result<image::RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow!("no such file"),
        _ => anyhow!("{e}"),
    })?;
    let format =
        image::guess_format(&bytes).map_err(|_| anyhow!("not an image (JPEG or PNG expected)"))?;
    let img = image::load_from_memory_with_format(&bytes, format)
        .map_err(|e| anyhow!("cannot decode it as {format:?}: {e}"))?;
    Ok(img.to_rgb8())
}
