//! Live per-camera statistics (connected, frame rate, bit rate, last
//! error), kept in memory by the ingest tasks and copied to the store every
//! few seconds so other processes (`porchlight camera list`) can read them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use porchlight_store::{CameraStatusRow, Store};

#[derive(Debug, Clone)]
struct Entry {
    connected: bool,
    window_start: Instant,
    frames: u64,
    bytes: u64,
    fps: f64,
    bitrate_bps: f64,
    last_error: Option<String>,
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            connected: false,
            window_start: Instant::now(),
            frames: 0,
            bytes: 0,
            fps: 0.0,
            bitrate_bps: 0.0,
            last_error: None,
        }
    }
}

/// Shared by every camera task.
#[derive(Default)]
pub struct StatusBoard {
    cams: Mutex<HashMap<i64, Entry>>,
}

/// Rates are averaged over windows of this length.
const WINDOW_SECS: f64 = 5.0;

impl StatusBoard {
    pub fn frame(&self, camera_id: i64, bytes: usize) {
        let mut m = self.cams.lock().unwrap();
        let e = m.entry(camera_id).or_default();
        if !e.connected {
            e.connected = true;
            e.window_start = Instant::now();
            e.frames = 0;
            e.bytes = 0;
        }
        e.frames += 1;
        e.bytes += bytes as u64;
        let secs = e.window_start.elapsed().as_secs_f64();
        if secs >= WINDOW_SECS {
            e.fps = e.frames as f64 / secs;
            e.bitrate_bps = e.bytes as f64 * 8.0 / secs;
            e.frames = 0;
            e.bytes = 0;
            e.window_start = Instant::now();
        }
    }

    /// Has the camera delivered a frame since it last disconnected?
    pub fn is_connected(&self, camera_id: i64) -> bool {
        self.cams
            .lock()
            .unwrap()
            .get(&camera_id)
            .is_some_and(|e| e.connected)
    }

    pub fn disconnected(&self, camera_id: i64, error: Option<String>) {
        let mut m = self.cams.lock().unwrap();
        let e = m.entry(camera_id).or_default();
        e.connected = false;
        e.fps = 0.0;
        e.bitrate_bps = 0.0;
        if error.is_some() {
            e.last_error = error;
        }
    }

    pub fn forget(&self, camera_id: i64) {
        self.cams.lock().unwrap().remove(&camera_id);
    }

    /// Copies every camera's status to the store.
    pub async fn publish(&self, store: &Store, now: jiff::Timestamp) {
        let snapshot: Vec<(i64, Entry)> = self
            .cams
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (id, e) in snapshot {
            let row = CameraStatusRow {
                connected: e.connected,
                fps: e.fps,
                bitrate_bps: e.bitrate_bps,
                last_error: e.last_error,
                updated_at: now,
            };
            if let Err(err) = store.put_camera_status(id, &row).await {
                tracing::warn!("storing camera status failed: {err}");
            }
        }
    }
}
