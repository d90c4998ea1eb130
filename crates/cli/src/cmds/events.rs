//! `porchlight events list [--camera NAME] [--since T] [--kind K] [--json]
//! [--user NAME [--password-stdin]]`: what happened, newest first —
//! detections (person, vehicle, animal, package delivered/taken), doorbell
//! presses, alarm transitions, events posted through the API. Read
//! straight from the store, so it works while the hub runs.
//!
//! An event's details (kind, labels, zones, score …) are sealed to the
//! members who may see them (`porchlight_vault::details`). Without
//! `--user` only the clear index is printed (id, time, camera, source,
//! snapshot; kind `sealed`); with `--user` that member's password unlocks
//! their key (audited as a key use) and what it opens is shown — an event
//! sealed to other members stays `sealed`. `--kind` needs `--user`.

use std::io::Write;

use anyhow::{anyhow, Context as _};
use porchlight_store::EventFilter;
use porchlight_vault::details;
use porchlight_vault::Actor;

use crate::context::Context;
use crate::secrets;

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
    /// Open the events' details with this member's key (asks for the
    /// password). Without it only the clear index is shown.
    #[arg(long)]
    pub user: Option<String>,
    /// Read that user's password from the first line of standard input.
    #[arg(long = "password-stdin", requires = "user")]
    pub password_stdin: bool,
}

pub async fn run(cmd: Command, ctx: Context) -> anyhow::Result<()> {
    match cmd {
        Command::List(a) => list(a, &ctx).await,
    }
}

async fn list(a: ListArgs, ctx: &Context) -> anyhow::Result<()> {
    if a.kind.is_some() && a.user.is_none() {
        return Err(anyhow!(
            "--kind needs --user NAME: an event's kind is sealed to the members who may see it"
        ));
    }
    let key = match &a.user {
        Some(user) => {
            let password = if a.password_stdin {
                secrets::stdin_lines(&["password"])?.remove(0)
            } else {
                secrets::prompt(&format!("Password of {user}: "), "--password-stdin")?
            };
            let vault = ctx.open_existing_vault().await?;
            let actor = Actor {
                name: user.clone(),
                client: "cli".into(),
            };
            Some(vault.unlock_key(user, &password, &actor).await?)
        }
        None => None,
    };
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
    let listing = details::events(
        &store,
        &EventFilter {
            cameras,
            from,
            to: None,
            limit: a.limit,
            ..Default::default()
        },
        a.kind.as_deref(),
        key.as_deref(),
    )
    .await
    .context("reading events")?;
    if listing.truncated {
        eprintln!(
            "note: looked through the newest {} events for kind `{}`; use --since to look further back",
            details::MAX_SCAN,
            a.kind.as_deref().unwrap_or_default()
        );
    }
    // Each event opened, or its clear index with why not.
    let rows: Vec<(porchlight_store::EventRow, Option<String>)> = listing
        .events
        .into_iter()
        .map(|r| match r {
            Ok(row) => (row, None),
            Err((stored, why)) => {
                let why = match (&why, key.is_some()) {
                    (details::Unreadable::Locked, false) => {
                        "sealed (give --user to open)".to_owned()
                    }
                    _ => why.to_string(),
                };
                let row = porchlight_store::EventRow::from_parts(
                    &stored,
                    porchlight_store::EventDetails {
                        kind: "sealed".into(),
                        ..Default::default()
                    },
                );
                (row, Some(why))
            }
        })
        .collect();
    let cam_name = |id: Option<i64>| {
        id.and_then(|id| cams.iter().find(|c| c.id == id))
            .map(|c| c.name.clone())
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(e, sealed)| {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                v["camera"] = serde_json::json!(cam_name(e.camera_id));
                v["labels"] = e
                    .detail
                    .get("labels")
                    .cloned()
                    .unwrap_or(serde_json::json!([]));
                v["sealed"] = serde_json::json!(sealed);
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
    for (e, _) in &rows {
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
