//! Adding a destination: shared by `porchlight backup add` and the
//! settings page, so both check the same things in the same order and
//! neither saves a destination that cannot be written to.

use bytes::Bytes;
use porchlight_store::{BackupDestination, NewBackupDestination, Store};

use crate::dest::{DestOptions, Destination};
use crate::{bundle, layout, BackupError, Result};

/// What the household asks for.
#[derive(Debug, Clone, Default)]
pub struct AddRequest {
    pub url: String,
    /// None: `backup`, `backup-2`, …
    pub name: Option<String>,
    /// `events` or `continuous`.
    pub mode: String,
    /// Camera names; None: all.
    pub cameras: Option<Vec<String>>,
    pub max_rate_mbit: Option<f64>,
    pub allow_delete: bool,
    pub retain_days: Option<i64>,
    /// Keep at most this many GiB there (oldest copies go first).
    pub retain_gib: Option<f64>,
    pub options: DestOptions,
}

/// Checks `req`, stores the household's key bundle at the destination
/// (the first write: it proves the address and the credentials), then
/// saves the destination. The running hub starts sending within seconds.
pub async fn add(
    store: &Store,
    req: &AddRequest,
    now: jiff::Timestamp,
) -> Result<BackupDestination> {
    let bad = |m: String| Err(BackupError::Config(m));
    if !matches!(req.mode.as_str(), "events" | "continuous") {
        return bad(format!("mode `{}`: use events or continuous", req.mode));
    }
    let existing = store.backup_destinations().await?;
    let name = match &req.name {
        Some(n) => n.trim().to_owned(),
        None => (1..)
            .map(|i| {
                if i == 1 {
                    "backup".to_owned()
                } else {
                    format!("backup-{i}")
                }
            })
            .find(|n| !existing.iter().any(|d| &d.name == n))
            .unwrap_or_default(),
    };
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return bad(format!(
            "the name `{name}`: use 1 to 64 letters, digits, - or _"
        ));
    }
    if existing.iter().any(|d| d.name == name) {
        return bad(format!(
            "a backup destination named `{name}` exists already"
        ));
    }
    let cameras = match &req.cameras {
        None => None,
        Some(names) => {
            let mut ids = Vec::new();
            for n in names {
                match store.camera_by_name(n.trim()).await? {
                    Some(c) => ids.push(c.id),
                    None => return bad(format!("there is no camera named `{}`", n.trim())),
                }
            }
            Some(ids)
        }
    };
    let max_rate_bps = match req.max_rate_mbit {
        None => None,
        Some(m) if m.is_finite() && m > 0.0 && m <= 100_000.0 => Some((m * 1e6) as i64),
        Some(m) => return bad(format!("the rate cap {m}: give Mbit/s above 0")),
    };
    if let Some(d) = req.retain_days {
        if !req.allow_delete {
            return bad(
                "keeping copies for a number of days needs permission to delete them".into(),
            );
        }
        if !(1..=36_500).contains(&d) {
            return bad(format!("retention of {d} days: give 1 or more"));
        }
    }
    let retain_bytes = match req.retain_gib {
        None => None,
        Some(_) if !req.allow_delete => {
            return bad("a size limit there needs permission to delete copies".into())
        }
        Some(g) if g.is_finite() && g > 0.0 => Some((g * (1u64 << 30) as f64) as i64),
        Some(g) => return bad(format!("a size limit of {g} GiB: give a positive number")),
    };
    let dest = Destination::open(&req.url, &req.options)?;
    let (b, digest) = bundle::current(store).await?;
    if b.members.is_empty() {
        return bad("no household member has a key yet (add an owner first): nothing could ever open the copies".into());
    }
    dest.put(&layout::bundle_name(now), Bytes::from(b.to_bytes()))
        .await?;
    let row = store
        .add_backup_destination(
            &NewBackupDestination {
                name: &name,
                url: &req.url,
                options: &req.options.to_json(),
                mode: &req.mode,
                cameras,
                max_rate_bps,
                may_delete: req.allow_delete,
                retain_days: req.retain_days,
                retain_bytes,
            },
            now,
        )
        .await?;
    store.set_backup_bundle_digest(row.id, &digest).await?;
    Ok(row)
}
