//! Adding and removing cameras: the rules both the CLI and the HTTP API
//! apply, kept in one place.

use std::path::Path;

use porchlight_store::{Camera, Store};

use crate::{recovery, RecorderError};

/// Checks a camera name and RTSP URL; the message says what is wrong.
pub fn validate(name: &str, url: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 48
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "`{name}` is not a valid camera name: use 1 to 48 letters, digits, `-` or `_`"
        ));
    }
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "rtsp" | "rtsps") {
        return Err(format!(
            "`{url}` is not an RTSP URL (it must start with rtsp://)"
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "give the camera's user name and password separately, not in the URL (URLs end up in logs)".into(),
        );
    }
    Ok(())
}

/// Deletes a camera and all its recordings (through the garbage list).
/// Returns how many segments were deleted.
///
/// A running hub (possibly another process) may be writing the camera: it
/// is disabled first, and its open segment is given time to close (the hub
/// re-reads the camera list every few seconds) before rows go.
pub async fn remove(
    store: &Store,
    recordings_dir: &Path,
    camera: &Camera,
) -> Result<usize, RecorderError> {
    store.set_camera_enabled(camera.id, false).await?;
    // Wait only if a hub has reported on this camera lately.
    let hub_running = store
        .camera_status(camera.id)
        .await?
        .is_some_and(|s| (jiff::Timestamp::now() - s.updated_at).get_seconds() < 20);
    let wait = if hub_running { 20 } else { 0 };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
    while store
        .open_recordings()
        .await?
        .iter()
        .any(|r| r.camera_id == camera.id)
    {
        if std::time::Instant::now() > deadline {
            break; // a crashed hub left it open: delete it anyway
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let ids: Vec<i64> = store
        .all_recordings()
        .await?
        .iter()
        .filter(|r| r.camera_id == camera.id)
        .map(|r| r.id)
        .collect();
    store.delete_recordings(&ids).await?;
    recovery::collect_garbage(store, recordings_dir).await?;
    store.delete_camera(camera.id).await?;
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn names_and_urls() {
        assert!(validate("front-door", "rtsp://192.168.1.20:554/stream1").is_ok());
        assert!(validate("front door", "rtsp://x/")
            .unwrap_err()
            .contains("not a valid camera name"));
        assert!(validate("a", "http://x/")
            .unwrap_err()
            .contains("not an RTSP URL"));
        assert!(validate("a", "rtsp://u:p@x/")
            .unwrap_err()
            .contains("not in the URL"));
        assert!(validate("a", "garbage").unwrap_err().contains("not a URL"));
    }
}
