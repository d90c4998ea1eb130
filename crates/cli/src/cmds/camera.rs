//! `porchlight camera add|list|remove|grant|revoke|privacy|detection`: the
//! cameras this hub records.
//! Changes reach a running hub within a few seconds (it re-reads the list).

use std::io::Write;

use anyhow::{bail, Context as _};
use porchlight_store::{NewCamera, Role};
use porchlight_vault::Actor;

use crate::context::Context;
use crate::secrets;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add a camera (an RTSP URL; H.264 or H.265).
    Add(AddArgs),
    /// List cameras with their live status and recorded bytes.
    List(ListArgs),
    /// Remove a camera and delete its recordings.
    Remove(NameArg),
    /// Let a member see a camera (owners see all cameras). New recordings
    /// are encrypted to them from now on; older ones stay unreadable to them.
    Grant(GrantArgs),
    /// Take a member's access away (for recordings made from now on).
    Revoke(GrantArgs),
    /// Privacy mode: `on` pauses recording, live view, detection and
    /// notifications for the camera (whatever the alarm mode); `off`
    /// resumes. A running hub follows within a few seconds.
    Privacy(PrivacyArgs),
    /// Detection (motion, objects, events) for the camera: `on` or `off`.
    /// Off, the hub only records and streams it, and decodes nothing.
    /// Other detection settings (zones, labels) are kept.
    Detection(DetectionArgs),
}

#[derive(Debug, clap::Args)]
pub struct DetectionArgs {
    pub name: String,
    /// `on` or `off`.
    #[arg(value_parser = ["on", "off"])]
    pub state: String,
}

#[derive(Debug, clap::Args)]
pub struct PrivacyArgs {
    pub name: String,
    /// `on` or `off`.
    #[arg(value_parser = ["on", "off"])]
    pub state: String,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// A short name, used in URLs: letters, digits, `-`, `_`.
    pub name: String,
    /// The main stream, e.g. rtsp://192.168.1.20:554/stream1
    #[arg(long)]
    pub url: String,
    /// The low-resolution sub-stream, used for detection and previews.
    #[arg(long = "sub-url")]
    pub sub_url: Option<String>,
    /// The camera's user name, if it asks for one.
    #[arg(long)]
    pub username: Option<String>,
    /// Read the camera's password from the first line of standard input.
    #[arg(long = "password-stdin", requires = "username")]
    pub password_stdin: bool,
    /// Delete recordings older than this many days.
    #[arg(long = "retain-days")]
    pub retain_days: Option<u32>,
    /// Keep at most this many GiB of this camera's recordings.
    #[arg(long = "retain-gib")]
    pub retain_gib: Option<f64>,
    /// Record only: no detection (motion, objects, events) for this camera.
    /// `porchlight camera detection NAME on` turns it on later.
    #[arg(long = "no-detect")]
    pub no_detect: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct NameArg {
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct GrantArgs {
    pub camera: String,
    pub user: String,
}

pub async fn run(cmd: Command, ctx: Context) -> anyhow::Result<()> {
    match cmd {
        Command::Add(a) => add(a, &ctx).await,
        Command::List(a) => list(a, &ctx).await,
        Command::Remove(a) => remove(&a.name, &ctx).await,
        Command::Grant(a) => grant(a, true, &ctx).await,
        Command::Revoke(a) => grant(a, false, &ctx).await,
        Command::Privacy(a) => privacy(a, &ctx).await,
        Command::Detection(a) => {
            let vault = ctx.open_existing_vault().await?;
            let cam = vault
                .store()
                .camera_by_name(&a.name)
                .await?
                .with_context(|| format!("no camera named `{}`", a.name))?;
            let on = a.state == "on";
            set_detection(&vault, &cam, on).await?;
            if on {
                println!("Detection is on for `{}`.", cam.name);
            } else {
                println!(
                    "Detection is off for `{}`: it is recorded and streamed, not analysed.",
                    cam.name
                );
            }
            Ok(())
        }
    }
}

/// Turns detection on or off for a camera, keeping its other detection
/// settings (the same document and audit entry as
/// `PUT /api/v1/cameras/{name}/detection`).
async fn set_detection(
    vault: &porchlight_vault::Vault,
    cam: &porchlight_store::Camera,
    on: bool,
) -> anyhow::Result<()> {
    let store = vault.store();
    let mut settings = match store.camera_detection(cam.id).await? {
        Some(v) => porchlight_events::CameraDetection::from_json(&v).with_context(|| {
            format!(
                "`{}` has detection settings this version cannot read; fix them over the API first",
                cam.name
            )
        })?,
        None => porchlight_events::CameraDetection::default(),
    };
    settings.enabled = on;
    let doc = serde_json::json!(settings);
    store
        .set_camera_detection(cam.id, &doc, vault.now())
        .await?;
    vault
        .audit(
            &Actor::cli(),
            "camera.detection",
            &cam.name,
            serde_json::json!({ "zones": settings.motion.zones.len(), "enabled": on }),
        )
        .await?;
    Ok(())
}

async fn privacy(a: PrivacyArgs, ctx: &Context) -> anyhow::Result<()> {
    let on = a.state == "on";
    let vault = ctx.open_existing_vault().await?;
    let store = vault.store();
    let cam = store
        .camera_by_name(&a.name)
        .await?
        .with_context(|| format!("no camera named `{}`", a.name))?;
    store
        .set_camera_privacy(cam.id, on, jiff::Timestamp::now())
        .await?;
    vault
        .audit(
            &Actor::cli(),
            "camera.privacy",
            &cam.name,
            serde_json::json!({ "on": on }),
        )
        .await?;
    if on {
        println!(
            "`{}` is in privacy mode: no recording, live view, detection or notifications until `porchlight camera privacy {} off`.",
            cam.name, cam.name
        );
    } else {
        println!("`{}` is out of privacy mode.", cam.name);
    }
    Ok(())
}

/// Checks a camera name and URL (the same rules as the HTTP API).
pub fn check_camera(name: &str, url: &str) -> anyhow::Result<()> {
    porchlight_recorder::cameras::validate(name, url).map_err(anyhow::Error::msg)
}

async fn add(a: AddArgs, ctx: &Context) -> anyhow::Result<()> {
    check_camera(&a.name, &a.url)?;
    if let Some(sub) = &a.sub_url {
        check_camera(&a.name, sub).context("--sub-url")?;
    }
    let password = if a.password_stdin {
        Some(
            secrets::stdin_lines(&["camera password"])?
                .remove(0)
                .to_string(),
        )
    } else {
        None
    };
    let vault = ctx.open_vault().await?;
    let cam = vault
        .store()
        .create_camera(
            &NewCamera {
                name: a.name.clone(),
                main_url: a.url.clone(),
                sub_url: a.sub_url.clone(),
                username: a.username.clone(),
                password,
                retain_max_age_secs: a.retain_days.map(|d| i64::from(d) * 86400),
                retain_max_bytes: a.retain_gib.map(|g| (g * 1024.0 * 1024.0 * 1024.0) as i64),
            },
            vault.now(),
        )
        .await?;
    vault
        .audit(
            &Actor::cli(),
            "camera.add",
            &cam.name,
            serde_json::json!({ "url": cam.main_url }),
        )
        .await?;
    if a.no_detect {
        set_detection(&vault, &cam, false).await?;
    }
    println!(
        "Added camera `{}`{}. A running hub starts recording it within a few seconds.",
        cam.name,
        if a.no_detect { " (detection off)" } else { "" }
    );
    if vault
        .store()
        .list_users()
        .await?
        .iter()
        .all(|u| u.role != Role::Owner)
    {
        println!("Note: recording starts once the hub has an owner (recordings are encrypted to the household's keys).");
    }
    Ok(())
}

fn human_bytes(b: i64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

async fn list(a: ListArgs, ctx: &Context) -> anyhow::Result<()> {
    let store = ctx.open_existing_store().await?;
    let now = jiff::Timestamp::now();
    let mut rows = Vec::new();
    for c in store.cameras().await? {
        let (bytes, segments) = store.camera_usage(c.id).await?;
        let status = store.camera_status(c.id).await?;
        // Unreadable settings count as the defaults (what the hub does).
        let detection = store
            .camera_detection(c.id)
            .await?
            .and_then(|v| porchlight_events::CameraDetection::from_json(&v).ok())
            .unwrap_or_default()
            .enabled;
        // A status older than this means no hub is running on the folder.
        let fresh = status
            .as_ref()
            .is_some_and(|s| (now - s.updated_at).get_seconds() < 20);
        rows.push((c, bytes, segments, status, fresh, detection));
    }
    if a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(c, bytes, segments, s, fresh, detection)| {
                serde_json::json!({
                    "name": c.name,
                    "url": c.main_url,
                    "sub_url": c.sub_url,
                    "enabled": c.enabled,
                    "detection": detection,
                    "hub_running": fresh,
                    "connected": *fresh && s.as_ref().is_some_and(|s| s.connected),
                    "fps": s.as_ref().filter(|_| *fresh).map(|s| s.fps),
                    "bitrate_bps": s.as_ref().filter(|_| *fresh).map(|s| s.bitrate_bps),
                    "last_error": s.as_ref().and_then(|s| s.last_error.clone()),
                    "recorded_bytes": bytes,
                    "segments": segments,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if rows.is_empty() {
        writeln!(
            out,
            "No cameras. Add one with: porchlight camera add NAME --url rtsp://…"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<16} {:<12} {:>6} {:>11} {:>10}  LAST ERROR",
        "NAME", "STATUS", "FPS", "BITRATE", "RECORDED"
    )?;
    for (c, bytes, _, s, fresh, _) in &rows {
        let (state, fps, rate) = match (fresh, s) {
            (false, _) => ("hub stopped".to_string(), "-".to_string(), "-".to_string()),
            (true, Some(s)) if s.connected => (
                "recording".to_string(),
                format!("{:.1}", s.fps),
                format!("{:.0} kbit/s", s.bitrate_bps / 1000.0),
            ),
            (true, _) => ("offline".to_string(), "-".to_string(), "-".to_string()),
        };
        let err = s
            .as_ref()
            .and_then(|s| s.last_error.clone())
            .unwrap_or_default();
        writeln!(
            out,
            "{:<16} {:<12} {:>6} {:>11} {:>10}  {}",
            c.name,
            state,
            fps,
            rate,
            human_bytes(*bytes),
            err
        )?;
    }
    Ok(())
}

async fn remove(name: &str, ctx: &Context) -> anyhow::Result<()> {
    let vault = ctx.open_existing_vault().await?;
    let store = vault.store();
    let cam = store
        .camera_by_name(name)
        .await?
        .with_context(|| format!("no camera named `{name}`"))?;
    let dir = ctx.data_dir.join(porchlight_recorder::RECORDINGS_DIR);
    let n = porchlight_recorder::cameras::remove(store, &dir, &cam).await?;
    vault
        .audit(
            &Actor::cli(),
            "camera.remove",
            &cam.name,
            serde_json::json!({ "segments_deleted": n }),
        )
        .await?;
    println!("Removed camera `{}` and {n} recorded segments.", cam.name);
    Ok(())
}

async fn grant(a: GrantArgs, on: bool, ctx: &Context) -> anyhow::Result<()> {
    let vault = ctx.open_existing_vault().await?;
    let store = vault.store();
    let cam = store
        .camera_by_name(&a.camera)
        .await?
        .with_context(|| format!("no camera named `{}`", a.camera))?;
    let user = vault.user(&a.user).await?;
    if user.role != Role::Member {
        bail!(
            "`{}` is {}: only members get per-camera grants (owners see every camera)",
            user.username,
            user.role
        );
    }
    store.grant_camera(cam.id, user.id, on).await?;
    let action = if on { "camera.grant" } else { "camera.revoke" };
    vault
        .audit(
            &Actor::cli(),
            action,
            &cam.name,
            serde_json::json!({ "user": user.username }),
        )
        .await?;
    if on {
        println!(
            "`{}` can now see `{}` (recordings from now on are encrypted to them too).",
            user.username, cam.name
        );
    } else {
        println!(
            "`{}` no longer gets `{}`'s new recordings.",
            user.username, cam.name
        );
    }
    Ok(())
}
