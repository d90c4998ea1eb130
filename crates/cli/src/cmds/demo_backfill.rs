//! "Yesterday" for the demo: a fresh demo folder has recordings only from
//! the moment it started, so there would be nothing to scrub back to. At
//! start, for each demo camera without a recording from the previous day,
//! this renders a few minutes of its scene as it looked about a day ago
//! (same renderer, resolution, frame rate and OpenH264 encoder as the live
//! demo camera) and records them through the recorder's real encrypted
//! [`StreamWriter`], stamped with yesterday's times. Playback, the timeline
//! and exports then treat them exactly like footage recorded live.
//!
//! It runs in the background (one thread renders and encodes, a task
//! writes), so the hub starts at once; the clip appears on the day
//! timeline when it is done. Invariants:
//!
//! * It never touches a camera that already has a recording in the
//!   "yesterday" window ([`YESTERDAY_FROM`]..[`YESTERDAY_TO`] before now),
//!   so running the demo again does not pile clips up.
//! * The clip starts [`CLIP_AGO`] before now: inside the timeline's default
//!   day window (which ends at the next full hour), and long before the
//!   live recording of this run starts, so the two never overlap.
//! * Frames go through the same writer as live video: encrypted to the
//!   camera's recipients, never plaintext on disk. With no recipients
//!   (nobody has a key yet) there is nothing to backfill.
//! * A failure is logged and ends the backfill; it never stops the demo.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use porchlight_demo::encode::{self, H264Encoder};
use porchlight_demo::{render, Scene};
use porchlight_recorder::writer::{Frame, StreamWriter, WriterOptions};
use porchlight_store::Store;

/// How long ago the clip starts.
pub const CLIP_AGO: jiff::SignedDuration = jiff::SignedDuration::from_hours(23);
/// How long the clip is, per camera.
pub const CLIP_LEN: Duration = Duration::from_secs(180);
/// A camera with any recording in [now − YESTERDAY_FROM, now − YESTERDAY_TO)
/// already has "yesterday".
pub const YESTERDAY_FROM: jiff::SignedDuration = jiff::SignedDuration::from_hours(36);
pub const YESTERDAY_TO: jiff::SignedDuration = jiff::SignedDuration::from_hours(12);

/// One encoded frame on its way from the encoder thread to the writer.
struct Encoded {
    entry: porchlight_media::VideoSampleEntry,
    frame: Frame,
    wall: jiff::Timestamp,
}

/// Starts the backfill in the background; the returned task ends when
/// every camera that needed it has its clip (or on the first error, which
/// is logged).
pub fn spawn(store: Store, now: jiff::Timestamp) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for scene in Scene::ALL {
            match backfill(&store, scene, now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    camera = scene.name(),
                    frames = n,
                    "recorded yesterday's demo footage"
                ),
                Err(e) => {
                    tracing::warn!(
                        camera = scene.name(),
                        "cannot record yesterday's demo footage: {e:#}"
                    );
                }
            }
        }
    })
}

/// Records the clip of `scene`'s camera if it needs one; returns how many
/// frames were written (0: not needed or not possible).
pub async fn backfill(store: &Store, scene: Scene, now: jiff::Timestamp) -> anyhow::Result<u64> {
    let Some(cam) = store.camera_by_name(scene.name()).await? else {
        return Ok(0);
    };
    let existing = store
        .recordings_between(cam.id, "main", now - YESTERDAY_FROM, now - YESTERDAY_TO)
        .await?;
    if !existing.is_empty() {
        return Ok(0);
    }
    let recipients = store
        .camera_recipients(cam.id)
        .await?
        .iter()
        .map(|r| {
            r.parse::<age::x25519::Recipient>().map_err(|e| {
                anyhow::anyhow!("a stored recipient of `{}` is invalid: {e}", cam.name)
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if recipients.is_empty() {
        return Ok(0);
    }
    let start = now - CLIP_AGO;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<anyhow::Result<Encoded>>(64);
    let encoder = std::thread::Builder::new()
        .name(format!("backfill-{}", scene.name()))
        .spawn(move || encode_clip(scene, start, &tx))
        .context("cannot start the backfill thread")?;
    let recordings_dir: PathBuf = store.data_dir().join(porchlight_recorder::RECORDINGS_DIR);
    let mut writer: Option<StreamWriter> = None;
    let mut written = 0u64;
    let result: anyhow::Result<()> = async {
        while let Some(item) = rx.recv().await {
            let Encoded { entry, frame, wall } = item?;
            if writer.is_none() {
                writer = Some(
                    StreamWriter::new(
                        store.clone(),
                        &recordings_dir,
                        cam.id,
                        "main",
                        &entry,
                        recipients.clone(),
                        WriterOptions::default(),
                    )
                    .await?,
                );
            }
            let w = writer.as_mut().expect("set above");
            w.push(frame, wall).await?;
            written += 1;
        }
        Ok(())
    }
    .await;
    drop(rx);
    let _ = encoder.join();
    if let Some(w) = writer {
        w.finish().await?;
    }
    result.map(|()| written)
}

/// Renders and encodes [`CLIP_LEN`] of `scene` from `start` on, sending
/// each frame with its wall time. Stops when the receiver is gone.
fn encode_clip(
    scene: Scene,
    start: jiff::Timestamp,
    tx: &tokio::sync::mpsc::Sender<anyhow::Result<Encoded>>,
) {
    let mut enc = match H264Encoder::new(render::WIDTH, render::HEIGHT) {
        Ok(e) => e,
        Err(e) => {
            let _ = tx.blocking_send(Err(anyhow::anyhow!("cannot start the H.264 encoder: {e}")));
            return;
        }
    };
    let tz = jiff::tz::TimeZone::system();
    let bg = render::background(scene);
    let mut img = bg.clone();
    let ticks = i64::from(porchlight_media::TIMESCALE / encode::FPS);
    let frames = CLIP_LEN.as_secs() * u64::from(encode::FPS);
    let mut entry = None;
    for n in 0..frames {
        let wall = start
            + jiff::SignedDuration::from_nanos((n as i64) * 1_000_000_000 / i64::from(encode::FPS));
        let offset = tz.to_offset(wall).seconds();
        render::render_onto(&mut img, &bg, scene, wall.as_millisecond(), offset);
        let f = match enc.encode(&img) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                let _ = tx.blocking_send(Err(anyhow::anyhow!("encoding failed: {e}")));
                return;
            }
        };
        if let (Some(sps), Some(pps)) = (&f.sps, &f.pps) {
            entry = Some(encode::sample_entry(
                sps,
                pps,
                render::WIDTH as u16,
                render::HEIGHT as u16,
            ));
        }
        // Nothing is decodable before the first key frame's parameters.
        let Some(e) = &entry else { continue };
        let item = Encoded {
            entry: e.clone(),
            frame: Frame {
                pts_90k: n as i64 * ticks,
                key: f.key,
                data: f.data.into(),
            },
            wall,
        };
        if tx.blocking_send(Ok(item)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use porchlight_store::NewCamera;

    #[tokio::test]
    async fn records_a_clip_once_and_only_with_recipients() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let cam = store
            .create_camera(
                &NewCamera {
                    name: Scene::Driveway.name().into(),
                    main_url: "rtsp://127.0.0.1:9/demo/driveway".into(),
                    ..Default::default()
                },
                now,
            )
            .await
            .unwrap();
        // No household key yet: nothing to encrypt to, nothing written.
        assert_eq!(backfill(&store, Scene::Driveway, now).await.unwrap(), 0);
        assert!(store
            .recordings_between(cam.id, "main", now - YESTERDAY_FROM, now)
            .await
            .unwrap()
            .is_empty());

        let key = porchlight_vault::keys::MemberKey::generate();
        store
            .create_user(
                porchlight_store::NewUser {
                    username: "demo-owner",
                    role: porchlight_store::Role::Owner,
                    password_hash: "not used here",
                    keys: Some(porchlight_store::UserKeys {
                        recipient: key.recipient_string(),
                        by_password: vec![1],
                        by_recovery: vec![2],
                    }),
                },
                now,
            )
            .await
            .unwrap();
        let n = backfill(&store, Scene::Driveway, now).await.unwrap();
        assert!(n > 100, "{n} frames");
        let rows = store
            .recordings_between(cam.id, "main", now - YESTERDAY_FROM, now)
            .await
            .unwrap();
        assert!(!rows.is_empty());
        let first = rows.iter().map(|r| r.start).min().unwrap();
        let last = rows.iter().map(|r| r.end()).max().unwrap();
        assert!(
            first >= now - CLIP_AGO && first < now - CLIP_AGO + jiff::SignedDuration::from_secs(5)
        );
        // Minus the held-back last frame and an unfinished last GOP.
        assert!(
            last.duration_since(first) >= jiff::SignedDuration::from_secs(170),
            "{first}..{last}"
        );
        assert!(rows.iter().all(|r| !r.open));
        // The segments are encrypted: no H.264 start or SPS in clear.
        let seg = std::fs::read_dir(dir.path().join("recordings").join(cam.id.to_string()))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let raw = std::fs::read(seg).unwrap();
        assert!(raw.len() > 10_000);
        // Running again finds yesterday and does nothing.
        assert_eq!(backfill(&store, Scene::Driveway, now).await.unwrap(), 0);
        // And the clip plays: an export of a minute of it decrypts.
        let export = porchlight_recorder::export::plan(
            &store,
            &dir.path().join("recordings"),
            &cam,
            first + jiff::SignedDuration::from_secs(30),
            first + jiff::SignedDuration::from_secs(90),
            std::sync::Arc::new(key),
        )
        .await
        .unwrap();
        assert!(export.plan.len() > 10_000);
    }
}
