//! `porchlight events list [--camera NAME] [--since T] [--kind K] [--json]`:
//! what happened, newest first — detections (person, vehicle, animal,
//! package delivered/taken), doorbell presses, alarm transitions, events
//! posted through the API. Read straight from the store, so it works while
//! the hub runs.

use std::io::Write;

use anyhow::{anyhow, Context as _};
use porchlight_store::EventFilter;

use crate::context::Context;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List events, newest first.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this camera's events.
    #[arg(long)]
    pub camera: Option<String>,
    /// Only events starting at or after T (RFC 3339, or relative: -1h, -30m).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only events of this kind (person, package_delivered, doorbell, …).
    #[arg(long)]
    pub kind: Option<String>,
    /// At most this many (default 100).
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cmd: Command, ctx: Context) -> anyhow::Result<()> {
    match cmd {
        Command::List(a) => list(a, &ctx).await,
    }
}

async fn list(a: ListArgs, ctx: &Context) -> anyhow::Result<()> {
    let store = ctx.open_existing_store().await?;
    let now = jiff::Timestamp::now();
    let from = match &a.since {
        Some(t) => Some(
            porchlight_base::clock::parse_instant(t, now).map_err(|e| anyhow!("--since: {e}"))?,
        ),
        None => None,
    };
    let cams = store.cameras().await?;
    let cameras = match &a.camera {
        Some(name) => {
            let c = cams.iter().find(|c| &c.name == name).ok_or_else(|| {
                anyhow!("there is no camera `{name}` (see `porchlight camera list`)")
            })?;
            Some(vec![c.id])
        }
        None => None,
    };
    if !(1..=100_000).contains(&a.limit) {
        return Err(anyhow!("--limit must be between 1 and 100000"));
    }
    let rows = store
        .events(&EventFilter {
            cameras,
            kind: a.kind.clone(),
            from,
            to: None,
            limit: a.limit,
        })
        .await
        .context("reading events")?;
    let cam_name = |id: Option<i64>| {
        id.and_then(|id| cams.iter().find(|c| c.id == id))
            .map(|c| c.name.clone())
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                v["camera"] = serde_json::json!(cam_name(e.camera_id));
                v["labels"] = e
                    .detail
                    .get("labels")
                    .cloned()
                    .unwrap_or(serde_json::json!([]));
                v
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "No events.")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<6} {:<20} {:<12} {:<18} {:<9} {:<8} SNAPSHOT",
        "ID", "START", "CAMERA", "KIND", "REVIEW", "SECONDS"
    )?;
    for e in &rows {
        let secs = e
            .end
            .map(|end| format!("{:.1}", end.duration_since(e.start).as_secs_f64()))
            .unwrap_or_else(|| "ongoing".into());
        writeln!(
            out,
            "{:<6} {:<20} {:<12} {:<18} {:<9} {:<8} {}",
            e.id,
            e.start.strftime("%Y-%m-%d %H:%M:%S"),
            cam_name(e.camera_id).unwrap_or_else(|| "-".into()),
            e.kind,
            e.review,
            secs,
            if e.snapshot.is_some() { "yes" } else { "no" }
        )?;
    }
    Ok(())
}
