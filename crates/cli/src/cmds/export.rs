//! `porchlight export`: any time range of a camera as a plain MP4 file
//! (or an age-encrypted one), decrypted with a household member's key.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use porchlight_vault::Actor;

use crate::context::Context;
use crate::secrets;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The camera to export.
    #[arg(long)]
    pub camera: String,
    /// Start: RFC 3339 (2026-11-29T14:00:00Z) or relative to now (`-5m`,
    /// `-90s`, `-2h`, `-1d`, `now`).
    #[arg(long, allow_hyphen_values = true)]
    pub from: String,
    /// End (exclusive), in the same forms.
    #[arg(long, allow_hyphen_values = true)]
    pub to: String,
    /// The MP4 file to write (written whole or not at all).
    #[arg(long)]
    pub output: PathBuf,
    /// Whose household key opens the recordings.
    #[arg(long)]
    pub user: String,
    /// Read that user's password from the first line of standard input.
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// Write the MP4 encrypted to this age recipient (`age1…`), so only its
    /// holder can play it: `age -d -i key.txt clip.mp4.age > clip.mp4`.
    #[arg(long = "encrypt-to")]
    pub encrypt_to: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Parses `--from`/`--to` (see [`porchlight_base::clock::parse_instant`]).
pub fn parse_time(s: &str, now: jiff::Timestamp) -> anyhow::Result<jiff::Timestamp> {
    porchlight_base::clock::parse_instant(s, now).map_err(anyhow::Error::msg)
}

pub async fn run(a: Args, ctx: Context) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    let from = parse_time(&a.from, now).context("--from")?;
    let to = parse_time(&a.to, now).context("--to")?;
    if from >= to {
        bail!("--from ({from}) must be before --to ({to})");
    }
    let recipient = match &a.encrypt_to {
        None => None,
        Some(r) => Some(r.parse::<age::x25519::Recipient>().map_err(|e| {
            anyhow::anyhow!("--encrypt-to `{r}` is not an age recipient (age1…): {e}")
        })?),
    };
    let password = if a.password_stdin {
        secrets::stdin_lines(&["password"])?.remove(0)
    } else {
        secrets::prompt(&format!("Password of {}: ", a.user), "--password-stdin")?
    };
    let vault = ctx.open_existing_vault().await?;
    let store = vault.store();
    let camera = store
        .camera_by_name(&a.camera)
        .await?
        .with_context(|| format!("no camera named `{}`", a.camera))?;
    let actor = Actor {
        name: a.user.clone(),
        client: "cli".into(),
    };
    let key = vault.unlock_key(&a.user, &password, &actor).await?;
    drop(password);
    let user = vault.user(&a.user).await?;
    if !store.may_see_camera(user.id, camera.id).await? {
        vault
            .audit(
                &actor,
                "recording.export_denied",
                &camera.name,
                serde_json::json!({}),
            )
            .await?;
        bail!(
            "`{}` has no access to camera `{}`",
            user.username,
            camera.name
        );
    }
    let dir = ctx.data_dir.join(porchlight_recorder::RECORDINGS_DIR);
    let export = porchlight_recorder::export::plan(store, &dir, &camera, from, to, key).await?;
    let total = export.plan.len();
    vault
        .audit(
            &actor,
            "recording.export",
            &camera.name,
            serde_json::json!({
                "from": export.start.to_string(),
                "to": export.end.to_string(),
                "bytes": total,
                "encrypted_to": a.encrypt_to,
                "output": a.output.display().to_string(),
            }),
        )
        .await?;

    let output = a.output.clone();
    let quiet = a.quiet;
    let (start, end) = (export.start, export.end);
    tokio::task::spawn_blocking(move || write_file(export, &output, recipient, quiet))
        .await
        .context("export task")??;
    eprintln!(
        "Wrote {} ({:.1} MB, {} to {}).",
        a.output.display(),
        total as f64 / 1e6,
        start,
        end
    );
    Ok(())
}

pub(crate) fn write_file(
    mut export: porchlight_recorder::export::Export,
    output: &std::path::Path,
    recipient: Option<age::x25519::Recipient>,
    quiet: bool,
) -> anyhow::Result<()> {
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(export.plan.len()).with_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("static template"),
        )
    };
    let mut progress = |done: u64, _total: u64| bar.set_position(done);
    {
        let file = std::io::BufWriter::new(tmp.as_file_mut());
        match recipient {
            None => {
                let mut file = file;
                export
                    .plan
                    .write_to(&mut file, &mut export.source, &mut progress)?;
                file.flush()?;
            }
            Some(r) => {
                let mut w = porchlight_vault::stream::encrypt_to(&[r], file)?;
                export
                    .plan
                    .write_to(&mut w, &mut export.source, &mut progress)?;
                let mut file = w.finish()?;
                file.flush()?;
            }
        }
    }
    bar.finish_and_clear();
    tmp.as_file().sync_all()?;
    tmp.persist(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    Ok(())
}
