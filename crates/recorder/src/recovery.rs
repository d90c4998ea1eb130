//! Start-up recovery: make the folder and the index agree again after a
//! crash or power cut, before any camera starts recording.
//!
//! 1. **Garbage**: files listed for deletion are unlinked (again), the
//!    directory synced, the rows forgotten.
//! 2. **Open recordings**: each is a segment that was being written. Its
//!    file is scanned *without any key* (record framing only), cut back to
//!    the last complete record, synced, and the row closed with the
//!    index read from the file. A segment with no complete record is
//!    removed. This is what bounds a `kill -9` to the record in memory
//!    (at most `record_bytes`, part of a GOP).
//! 3. **Orphans**: `.seg` files that no row names (not produced by the
//!    ordering above, but possible after manual meddling) are reported and
//!    left alone — deleting unknown files is never automatic.

use std::path::Path;

use porchlight_media::{index, segment};
use porchlight_store::{ClosedRecording, Store};

use crate::RecorderError;

/// What recovery did, for the log and for tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    pub garbage_removed: usize,
    pub recovered: usize,
    pub recovered_frames: u64,
    pub bytes_cut: u64,
    pub empty_removed: usize,
}

pub async fn recover(
    store: &Store,
    recordings_dir: &Path,
) -> Result<RecoveryReport, RecorderError> {
    let mut report = RecoveryReport {
        garbage_removed: collect_garbage(store, recordings_dir).await?,
        ..Default::default()
    };
    for row in store.open_recordings().await? {
        let path = recordings_dir.join(&row.file_name);
        let scanned = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || segment::recover(&path))
                .await
                .map_err(|e| RecorderError::Internal(e.to_string()))?
        };
        let scan = match scanned {
            Ok(s) => s,
            Err(e) => {
                if path.exists() {
                    tracing::warn!(file = %path.display(), "unreadable segment header after a crash ({e}); removing it");
                }
                store.delete_recordings(&[row.id]).await?;
                collect_garbage(store, recordings_dir).await?;
                report.empty_removed += 1;
                continue;
            }
        };
        report.bytes_cut += scan.file_len - scan.valid_len;
        if scan.frames.is_empty() {
            store.delete_recordings(&[row.id]).await?;
            collect_garbage(store, recordings_dir).await?;
            report.empty_removed += 1;
            continue;
        }
        let duration: u64 = scan.frames.iter().map(|f| u64::from(f.duration_90k)).sum();
        let sample_bytes: u64 = scan.frames.iter().map(|f| u64::from(f.bytes)).sum();
        store
            .close_recording(
                row.id,
                &ClosedRecording {
                    duration_90k: duration as i64,
                    frames: scan.frames.len() as i64,
                    sample_bytes: sample_bytes as i64,
                    file_bytes: scan.valid_len as i64,
                    sha256: scan.digest_of_valid.to_vec(), // the file digest (BLAKE3 for version-2 files)
                    frame_index: index::encode(&scan.frames),
                },
            )
            .await?;
        report.recovered += 1;
        report.recovered_frames += scan.frames.len() as u64;
    }
    if report != RecoveryReport::default() {
        tracing::info!(?report, "recovered the recordings after an unclean stop");
    }
    Ok(report)
}

/// Unlinks every file on the garbage list, syncs their directories, then
/// forgets them. Returns how many were removed.
pub async fn collect_garbage(store: &Store, recordings_dir: &Path) -> Result<usize, RecorderError> {
    let names = store.garbage().await?;
    if names.is_empty() {
        return Ok(0);
    }
    let dir = recordings_dir.to_owned();
    let list = names.clone();
    tokio::task::spawn_blocking(move || -> Result<(), RecorderError> {
        let mut dirs = std::collections::BTreeSet::new();
        for n in &list {
            let p = dir.join(n);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RecorderError::io(format!("removing {}", p.display()), e)),
            }
            if let Some(parent) = p.parent() {
                dirs.insert(parent.to_owned());
            }
        }
        for d in dirs {
            if d.exists() {
                segment::sync_dir(&d)
                    .map_err(|e| RecorderError::io(format!("syncing {}", d.display()), e))?;
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| RecorderError::Internal(e.to_string()))??;
    store.forget_garbage(&names).await?;
    Ok(names.len())
}
