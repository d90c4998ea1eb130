//! Retention: what to delete so the disk never fills.
//!
//! Three limits, checked every few seconds and after each segment:
//! * per camera, a maximum **age** (`retain_max_age_secs`);
//! * per camera, a maximum **size** (`retain_max_bytes`);
//! * for the whole data folder, a **free-space floor**: when the
//!   filesystem has less free space than the floor, the oldest recordings
//!   of any camera go first until it is back above — except each camera's
//!   newest closed recording, which the floor never takes.
//!
//! Oldest first, always whole segments, never an open (being written) one.
//! Each pass that deletes writes one audit entry per camera with a count,
//! not one per file: the log records decisions, not disk churn.

use std::path::Path;

use porchlight_store::{NewAuditEntry, Store};

use crate::recovery::collect_garbage;
use crate::RecorderError;

/// Free bytes on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// One retention pass. `free` tells the free space (a function, so tests
/// can simulate a full disk).
pub async fn enforce(
    store: &Store,
    recordings_dir: &Path,
    min_free_bytes: u64,
    free: &(dyn Fn() -> std::io::Result<u64> + Sync),
    now: jiff::Timestamp,
) -> Result<u64, RecorderError> {
    let mut deleted_total = 0u64;
    let mut per_camera: std::collections::BTreeMap<i64, (u64, i64)> = Default::default();
    for cam in store.cameras().await? {
        // Age.
        if let Some(max_age) = cam.retain_max_age_secs {
            let cutoff = now.as_microsecond() - max_age * 1_000_000;
            loop {
                let old = store.oldest_recordings(Some(cam.id), 64).await?;
                let ids: Vec<(i64, i64)> = old
                    .iter()
                    .filter(|r| r.end().as_microsecond() <= cutoff)
                    .map(|r| (r.id, r.file_bytes))
                    .collect();
                if ids.is_empty() {
                    break;
                }
                delete(store, &ids, &mut per_camera, cam.id).await?;
            }
        }
        // Size.
        if let Some(max_bytes) = cam.retain_max_bytes {
            loop {
                let (used, _) = store.camera_usage(cam.id).await?;
                if used <= max_bytes {
                    break;
                }
                let old = store.oldest_recordings(Some(cam.id), 1).await?;
                let Some(r) = old.first() else { break };
                delete(store, &[(r.id, r.file_bytes)], &mut per_camera, cam.id).await?;
                collect_garbage(store, recordings_dir).await?;
            }
        }
    }
    collect_garbage(store, recordings_dir).await?;
    // Free-space floor, across cameras: the oldest first, but never a
    // camera's newest closed recording. Without that exception a floor
    // that cannot be met (another program filling the disk) deleted every
    // closed recording on every pass, leaving only the segments being
    // written: the footage of what just happened went within seconds.
    // A camera's oldest closed recording is its newest only when it has
    // one, and rows of such cameras are distinct, so among the
    // (cameras + 1) oldest rows there is a deletable one if any exists.
    let limit = i64::try_from(store.cameras().await?.len()).unwrap_or(i64::MAX - 1) + 1;
    loop {
        let f = free().map_err(|e| RecorderError::io("measuring free space".into(), e))?;
        if f >= min_free_bytes {
            break;
        }
        let mut victim = None;
        for r in store.oldest_recordings(None, limit).await? {
            if store.camera_usage(r.camera_id).await?.1 >= 2 {
                victim = Some(r);
                break;
            }
        }
        let Some(r) = victim else {
            tracing::warn!(
                free = f,
                floor = min_free_bytes,
                "disk below the free-space floor; only each camera's newest recording is left"
            );
            break;
        };
        delete(store, &[(r.id, r.file_bytes)], &mut per_camera, r.camera_id).await?;
        collect_garbage(store, recordings_dir).await?;
    }
    for (camera_id, (count, bytes)) in per_camera {
        deleted_total += count;
        let name = store
            .camera_by_id(camera_id)
            .await?
            .map(|c| c.name)
            .unwrap_or_else(|| format!("#{camera_id}"));
        store
            .append_audit(
                &NewAuditEntry {
                    actor: "system".into(),
                    action: "recording.retention".into(),
                    target: name,
                    detail: serde_json::json!({ "segments_deleted": count, "bytes": bytes }),
                    client: "hub".into(),
                },
                now,
            )
            .await?;
    }
    Ok(deleted_total)
}

async fn delete(
    store: &Store,
    ids: &[(i64, i64)],
    tally: &mut std::collections::BTreeMap<i64, (u64, i64)>,
    camera_id: i64,
) -> Result<(), RecorderError> {
    let only: Vec<i64> = ids.iter().map(|x| x.0).collect();
    store.delete_recordings(&only).await?;
    let t = tally.entry(camera_id).or_default();
    t.0 += ids.len() as u64;
    t.1 += ids.iter().map(|x| x.1).sum::<i64>();
    Ok(())
}
