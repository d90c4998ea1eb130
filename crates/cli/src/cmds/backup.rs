//! `porchlight backup`: off-site copies of event footage (design/backup.md).
//!
//! On the hub: `add`, `list`, `remove`, `status` — the running hub picks
//! changes up within seconds. Anywhere, with no hub folder at all:
//! `events` lists what a destination holds and `restore` writes a plain
//! MP4 of an event or a time range, opened with a member's password or
//! recovery code alone.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use porchlight_backup::bundle::Secret;
use porchlight_backup::{restore, DestOptions, Destination};
use porchlight_vault::Actor;

use crate::context::Context;
use crate::secrets;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Send footage to a folder (file:///mnt/nas/porchlight) or an
    /// S3-compatible bucket (s3://bucket/prefix). The household's wrapped
    /// keys are stored there at once, which also checks the credentials.
    Add(AddArgs),
    /// The destinations.
    List(ListArgs),
    /// Stop sending to a destination (what is there stays).
    Remove(RemoveArgs),
    /// Queue depth, last upload, lag and errors per destination.
    Status(ListArgs),
    /// List the events a destination holds (no hub needed).
    Events(EventsArgs),
    /// Write an event, or a time range of a camera, from a destination as
    /// a plain MP4 (no hub needed).
    Restore(RestoreArgs),
}

/// Where an S3 destination is and who the hub is there. Each falls back to
/// the usual environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct S3Args {
    /// S3 endpoint, e.g. http://127.0.0.1:3900 [env: AWS_ENDPOINT_URL]
    #[arg(long)]
    pub endpoint: Option<String>,
    /// S3 region [env: AWS_REGION; default us-east-1]
    #[arg(long)]
    pub region: Option<String>,
    /// S3 access key id [env: AWS_ACCESS_KEY_ID]
    #[arg(long = "access-key-id")]
    pub access_key_id: Option<String>,
    /// A file holding the S3 secret access key [env: AWS_SECRET_ACCESS_KEY]
    #[arg(long = "secret-access-key-file", value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
}

impl S3Args {
    fn options(&self, url: &str) -> anyhow::Result<DestOptions> {
        let env = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        if !url.starts_with("s3://") {
            return Ok(DestOptions::default());
        }
        let secret = match &self.secret_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("--secret-access-key-file {}", f.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => env("AWS_SECRET_ACCESS_KEY"),
        };
        Ok(DestOptions {
            endpoint: self
                .endpoint
                .clone()
                .or_else(|| env("AWS_ENDPOINT_URL"))
                .or_else(|| env("AWS_ENDPOINT")),
            region: self.region.clone().or_else(|| env("AWS_REGION")),
            access_key_id: self
                .access_key_id
                .clone()
                .or_else(|| env("AWS_ACCESS_KEY_ID")),
            secret_access_key: secret,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// file:///absolute/path or s3://bucket[/prefix]
    pub url: String,
    /// A name for it [default: backup, backup-2, …]
    #[arg(long)]
    pub name: Option<String>,
    /// `events`: footage around people, vehicles, parcels, the doorbell
    /// and the alarm; `continuous`: everything, events first.
    #[arg(long, default_value = "events", value_parser = ["events", "continuous"])]
    pub mode: String,
    /// Only these cameras (comma-separated names) [default: all]
    #[arg(long, value_delimiter = ',')]
    pub cameras: Option<Vec<String>>,
    /// Upload at most this many Mbit/s.
    #[arg(long = "max-rate", value_name = "MBIT")]
    pub max_rate: Option<f64>,
    /// Let the hub delete old copies there (with --retain-days). Off by
    /// default: a stolen hub's credentials then cannot erase the evidence
    /// if the destination refuses deletes (design/backup.md).
    #[arg(long = "allow-delete")]
    pub allow_delete: bool,
    /// With --allow-delete: delete copies older than this many days.
    #[arg(long = "retain-days", requires = "allow_delete")]
    pub retain_days: Option<i64>,
    /// With --allow-delete: keep at most this many GiB there, deleting the
    /// oldest copies first (never one still being sent).
    #[arg(long = "retain-gib", requires = "allow_delete")]
    pub retain_gib: Option<f64>,
    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    pub name: String,
}

/// Who opens a destination's copies.
#[derive(Debug, Clone, clap::Args)]
pub struct Opener {
    /// The destination: file:///… or s3://bucket/prefix
    #[arg(long = "from", value_name = "URL")]
    pub url: String,
    /// The household member whose key opens the copies.
    #[arg(long)]
    pub user: String,
    /// Read the password from the first line of standard input.
    #[arg(long = "password-stdin", conflicts_with = "recovery_code_stdin")]
    pub password_stdin: bool,
    /// Read the member's key recovery code (shown when the account was
    /// made) from standard input instead of a password.
    #[arg(long = "recovery-code-stdin")]
    pub recovery_code_stdin: bool,
    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub who: Opener,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub who: Opener,
    /// The event to restore (its id in `backup events`): its camera from
    /// 10 s before it started to 10 s after it ended.
    #[arg(long, conflicts_with_all = ["camera", "start", "end"])]
    pub event: Option<i64>,
    /// Or a camera's time range: --camera C --start T --end T.
    #[arg(long, requires_all = ["start", "end"])]
    pub camera: Option<String>,
    /// Start of the range: RFC 3339 or relative to now (-10m).
    #[arg(long, allow_hyphen_values = true)]
    pub start: Option<String>,
    /// End of the range (exclusive).
    #[arg(long, allow_hyphen_values = true)]
    pub end: Option<String>,
    /// The MP4 file to write.
    #[arg(long)]
    pub output: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub async fn run(cmd: Command, ctx: Context) -> anyhow::Result<()> {
    match cmd {
        Command::Add(a) => add(a, &ctx).await,
        Command::List(a) => list(a, &ctx, false).await,
        Command::Status(a) => list(a, &ctx, true).await,
        Command::Remove(a) => remove(a, &ctx).await,
        Command::Events(a) => events(a).await,
        Command::Restore(a) => restore_cmd(a, &ctx).await,
    }
}

async fn add(a: AddArgs, ctx: &Context) -> anyhow::Result<()> {
    let vault = ctx.open_existing_vault().await?;
    let req = porchlight_backup::admin::AddRequest {
        url: a.url.clone(),
        name: a.name.clone(),
        mode: a.mode.clone(),
        cameras: a.cameras.clone(),
        max_rate_mbit: a.max_rate,
        allow_delete: a.allow_delete,
        retain_days: a.retain_days,
        retain_gib: a.retain_gib,
        options: a.s3.options(&a.url)?,
    };
    let row = porchlight_backup::admin::add(vault.store(), &req, vault.now()).await?;
    vault
        .audit(
            &Actor::cli(),
            "backup.add",
            &row.name,
            serde_json::json!({
                "url": row.url, "mode": row.mode, "cameras": a.cameras,
                "max_rate_bps": row.max_rate_bps, "may_delete": row.may_delete,
                "retain_days": row.retain_days, "retain_bytes": row.retain_bytes,
            }),
        )
        .await?;
    println!(
        "Backing up to `{}` ({}, {} mode{}). The running hub starts within seconds.",
        row.name,
        row.url,
        row.mode,
        if row.may_delete {
            ", may delete old copies"
        } else {
            ", never deletes there"
        }
    );
    Ok(())
}

async fn remove(a: RemoveArgs, ctx: &Context) -> anyhow::Result<()> {
    let vault = ctx.open_existing_vault().await?;
    if !vault.store().remove_backup_destination(&a.name).await? {
        bail!("no backup destination named `{}`", a.name);
    }
    vault
        .audit(
            &Actor::cli(),
            "backup.remove",
            &a.name,
            serde_json::json!({}),
        )
        .await?;
    println!(
        "Stopped backing up to `{}`; what is stored there stays.",
        a.name
    );
    Ok(())
}

async fn list(a: ListArgs, ctx: &Context, status: bool) -> anyhow::Result<()> {
    let store = ctx.open_existing_store().await?;
    let cameras = store.cameras().await?;
    let now = jiff::Timestamp::now();
    let mut out = Vec::new();
    for d in store.backup_destinations().await? {
        let q = store.backup_queue(d.id).await?;
        let names: Option<Vec<String>> = d.cameras.as_ref().map(|ids| {
            ids.iter()
                .filter_map(|id| cameras.iter().find(|c| c.id == *id).map(|c| c.name.clone()))
                .collect()
        });
        let lag_s = q
            .oldest_queued_at
            .map(|t| (now.as_microsecond() - t.as_microsecond()) as f64 / 1e6);
        out.push(serde_json::json!({
            "name": d.name,
            "url": d.url,
            "mode": d.mode,
            "cameras": names,
            "max_rate_mbit": d.max_rate_bps.map(|b| b as f64 / 1e6),
            "may_delete": d.may_delete,
            "retain_days": d.retain_days,
            "retain_gib": d.retain_bytes.map(|b| b as f64 / (1u64 << 30) as f64),
            "queued_segments": q.segments,
            "queued_events": q.events,
            "lag_seconds": lag_s,
            "last_upload": d.last_upload_at.map(|t| t.to_string()),
            "uploaded_bytes": d.uploaded_bytes,
            "last_error": d.last_error,
            "last_error_at": d.last_error_at.map(|t| t.to_string()),
        }));
    }
    let mut w = std::io::stdout().lock();
    if a.json {
        writeln!(w, "{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(());
    }
    if out.is_empty() {
        writeln!(
            w,
            "No backup destination. Add one: porchlight backup add file:///mnt/nas/porchlight"
        )?;
        return Ok(());
    }
    for d in &out {
        writeln!(
            w,
            "{}  {}  {} mode{}{}",
            d["name"].as_str().unwrap_or(""),
            d["url"].as_str().unwrap_or(""),
            d["mode"].as_str().unwrap_or(""),
            if d["may_delete"] == true {
                ", may delete"
            } else {
                ", never deletes"
            },
            d["cameras"]
                .as_array()
                .map(|c| format!(
                    ", cameras: {}",
                    c.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                ))
                .unwrap_or_default()
        )?;
        if status {
            writeln!(
                w,
                "  queue: {} segment(s), {} event(s){}; last upload: {}; {:.1} MB sent",
                d["queued_segments"],
                d["queued_events"],
                d["lag_seconds"]
                    .as_f64()
                    .map(|s| format!(", oldest waiting {s:.0} s"))
                    .unwrap_or_default(),
                d["last_upload"].as_str().unwrap_or("never"),
                d["uploaded_bytes"].as_f64().unwrap_or(0.0) / 1e6
            )?;
            if let Some(e) = d["last_error"].as_str() {
                writeln!(
                    w,
                    "  last error ({}): {e}",
                    d["last_error_at"].as_str().unwrap_or("?")
                )?;
            }
        }
    }
    Ok(())
}

/// Opens the destination and unlocks the member's key (about a second).
async fn open(
    who: &Opener,
) -> anyhow::Result<(Destination, Arc<porchlight_vault::keys::MemberKey>)> {
    let dest = Destination::open(&who.url, &who.s3.options(&who.url)?)?;
    let secret = if who.recovery_code_stdin {
        Secret::RecoveryCode(secrets::stdin_lines(&["recovery code"])?.remove(0))
    } else if who.password_stdin {
        Secret::Password(secrets::stdin_lines(&["password"])?.remove(0))
    } else {
        Secret::Password(secrets::prompt(
            &format!("Password of {}: ", who.user),
            "--password-stdin or --recovery-code-stdin",
        )?)
    };
    let key = restore::unlock(&dest, &who.user, &secret).await?;
    Ok((dest, Arc::new(key)))
}

async fn events(a: EventsArgs) -> anyhow::Result<()> {
    let (dest, key) = open(&a.who).await?;
    let cat = restore::catalog(&dest, &key).await?;
    let list = cat.event_summaries(&key);
    let mut w = std::io::stdout().lock();
    if a.json {
        writeln!(w, "{}", serde_json::to_string_pretty(&list)?)?;
    } else if list.is_empty() {
        writeln!(
            w,
            "No event that {} may see is stored at {}.",
            a.who.user, a.who.url
        )?;
    } else {
        for e in &list {
            writeln!(
                w,
                "{:>6}  {}  {:<18} {}{}",
                e.id,
                e.start,
                e.kind,
                e.camera.as_deref().unwrap_or("(all cameras)"),
                e.end
                    .map(|t| format!("  until {t}"))
                    .unwrap_or_else(|| "  (no end stored)".into())
            )?;
        }
    }
    drop(w);
    for p in &cat.problems {
        eprintln!("warning: {p}");
    }
    Ok(())
}

async fn restore_cmd(a: RestoreArgs, ctx: &Context) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    if a.event.is_none() && a.camera.is_none() {
        bail!("say what to restore: --event ID, or --camera C --start T --end T");
    }
    let (dest, key) = open(&a.who).await?;
    let cat = restore::catalog(&dest, &key).await?;
    let ten = jiff::SignedDuration::from_secs(10);
    let (camera, from, to) = match a.event {
        Some(id) => {
            let e = cat.event(id).with_context(|| {
                format!(
                    "no event {id} that `{}` may see at {} (list them: porchlight backup events)",
                    a.who.user, a.who.url
                )
            })?;
            let camera = e.camera.clone().with_context(|| {
                format!("event {id} belongs to no single camera (an alarm): restore each camera with --camera C --start T --end T")
            })?;
            let start = jiff::Timestamp::from_microsecond(e.start_us)?;
            let end = match e.end_us {
                Some(u) => jiff::Timestamp::from_microsecond(u)? + ten,
                // The hub died during the event: everything that reached
                // the destination.
                None => start + jiff::SignedDuration::from_hours(1),
            };
            (camera, start - ten, end)
        }
        None => {
            let camera = a.camera.clone().expect("checked above");
            let from = crate::cmds::export::parse_time(a.start.as_deref().unwrap_or(""), now)
                .context("--start")?;
            let to = crate::cmds::export::parse_time(a.end.as_deref().unwrap_or(""), now)
                .context("--end")?;
            if from >= to {
                bail!("--start ({from}) must be before --end ({to})");
            }
            (camera, from, to)
        }
    };
    let work = tempfile::tempdir().context("a temporary folder for the rebuilt segments")?;
    let restored =
        restore::restore(&dest, &cat, key.clone(), &camera, from, to, work.path()).await?;
    let total = restored.export.plan.len();
    let (start, end) = (restored.export.start, restored.export.end);
    let output = a.output.clone();
    let quiet = a.quiet;
    let export = restored.export;
    tokio::task::spawn_blocking(move || {
        crate::cmds::export::write_file(export, &output, None, quiet)
    })
    .await
    .context("restore task")??;
    for p in &restored.problems {
        eprintln!("warning: {p}");
    }
    eprintln!(
        "Restored {} ({:.1} MB, camera `{camera}`, {start} to {end}, {} segment(s)) from {} as {}.",
        a.output.display(),
        total as f64 / 1e6,
        restored.segments,
        a.who.url,
        a.who.user
    );
    // On this machine's hub, if there is one, the restore is audited too.
    if ctx.data_dir.join(porchlight_store::DB_FILE).exists() {
        if let Ok(vault) = ctx.open_existing_vault().await {
            let _ = vault
                .audit(
                    &Actor {
                        name: a.who.user.clone(),
                        client: "cli".into(),
                    },
                    "backup.restore",
                    &camera,
                    serde_json::json!({
                        "from": start.to_string(), "to": end.to_string(),
                        "destination": a.who.url, "event": a.event,
                        "output": a.output.display().to_string(),
                    }),
                )
                .await;
        }
    }
    Ok(())
}
