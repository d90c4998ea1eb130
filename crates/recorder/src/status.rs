//! Live per-stream statistics (connected, frame rate, bit rate, last
//! error) of every camera's main and sub-stream, kept in memory by the
//! ingest tasks and copied to the store every few seconds so other
//! processes (`porchlight camera list`) can read them.
//!
//! Invariant: the per-frame path ([`StreamStats::frame`]) takes no lock and
//! allocates nothing — two relaxed atomic additions and one load. Each
//! ingest task registers once per run ([`StatusBoard::stream`]) and keeps
//! its [`StreamStats`]; rates are derived at publish time from the counters'
//! change since the previous publish, under the board's one mutex, which
//! only registration, `forget` and `publish` take.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use porchlight_store::{CameraStatusRow, Store};

/// Which of a camera's RTSP streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// The full-resolution stream (`main_url`): recorded, restreamed.
    Main,
    /// The optional low-resolution stream (`sub_url`): detection.
    Sub,
}

impl StreamKind {
    /// `main` or `sub`, as in the recordings table and the restream paths.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Main => "main",
            StreamKind::Sub => "sub",
        }
    }
}

/// The counters of one camera stream, shared by its ingest task and the
/// board. Cheap to update from the per-frame path.
#[derive(Debug, Default)]
pub struct StreamStats {
    connected: AtomicBool,
    frames: AtomicU64,
    bytes: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl StreamStats {
    /// Counts one received frame (and marks the stream connected).
    #[inline]
    pub fn frame(&self, bytes: usize) {
        if !self.connected.load(Ordering::Relaxed) {
            self.connected.store(true, Ordering::Relaxed);
        }
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Has the stream delivered a frame since it last disconnected?
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// The connection ended; `error` (if any) becomes the last error.
    pub fn disconnected(&self, error: Option<String>) {
        self.connected.store(false, Ordering::Relaxed);
        if error.is_some() {
            *self.last_error.lock().unwrap() = error;
        }
    }
}

/// What publish remembers between two publishes to derive rates.
struct Tracked {
    stats: Arc<StreamStats>,
    at: Instant,
    frames: u64,
    bytes: u64,
}

/// Shared by every camera task.
#[derive(Default)]
pub struct StatusBoard {
    streams: Mutex<HashMap<(i64, StreamKind), Tracked>>,
}

/// A stream's status as of a publish.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStatus {
    pub connected: bool,
    pub fps: f64,
    pub bitrate_bps: f64,
    pub last_error: Option<String>,
}

impl StatusBoard {
    /// The counters of a camera stream (created on first use; the same
    /// ones again until [`StatusBoard::forget`]).
    pub fn stream(&self, camera_id: i64, kind: StreamKind) -> Arc<StreamStats> {
        self.streams
            .lock()
            .unwrap()
            .entry((camera_id, kind))
            .or_insert_with(|| Tracked {
                stats: Arc::default(),
                at: Instant::now(),
                frames: 0,
                bytes: 0,
            })
            .stats
            .clone()
    }

    /// Has the camera's main stream delivered a frame since it last
    /// disconnected?
    pub fn is_connected(&self, camera_id: i64) -> bool {
        self.streams
            .lock()
            .unwrap()
            .get(&(camera_id, StreamKind::Main))
            .is_some_and(|t| t.stats.is_connected())
    }

    /// Drops both streams of a camera (removed or changed).
    pub fn forget(&self, camera_id: i64) {
        self.streams
            .lock()
            .unwrap()
            .retain(|(id, _), _| *id != camera_id);
    }

    /// Every stream's status, with rates averaged since the previous call.
    pub fn snapshot(&self) -> Vec<(i64, StreamKind, StreamStatus)> {
        let now = Instant::now();
        let mut m = self.streams.lock().unwrap();
        let mut out = Vec::with_capacity(m.len());
        for ((id, kind), t) in m.iter_mut() {
            let frames = t.stats.frames.load(Ordering::Relaxed);
            let bytes = t.stats.bytes.load(Ordering::Relaxed);
            let secs = now.duration_since(t.at).as_secs_f64();
            let connected = t.stats.is_connected();
            let (fps, bitrate_bps) = if connected && secs > 0.0 {
                (
                    (frames - t.frames) as f64 / secs,
                    (bytes - t.bytes) as f64 * 8.0 / secs,
                )
            } else {
                (0.0, 0.0)
            };
            // Very short intervals (a publish right after another) keep
            // the previous window going rather than report noise.
            if secs >= 1.0 || !connected {
                t.at = now;
                t.frames = frames;
                t.bytes = bytes;
            }
            out.push((
                *id,
                *kind,
                StreamStatus {
                    connected,
                    fps,
                    bitrate_bps,
                    last_error: t.stats.last_error.lock().unwrap().clone(),
                },
            ));
        }
        out
    }

    /// Copies every stream's status to the store.
    /// (In at most two statements, whatever the number of cameras.)
    pub async fn publish(&self, store: &Store, now: jiff::Timestamp) {
        let rows: Vec<(i64, StreamKind, CameraStatusRow)> = self
            .snapshot()
            .into_iter()
            .map(|(id, kind, s)| {
                let row = CameraStatusRow {
                    connected: s.connected,
                    fps: s.fps,
                    bitrate_bps: s.bitrate_bps,
                    last_error: s.last_error,
                    updated_at: now,
                };
                (id, kind, row)
            })
            .collect();
        let of = |k: StreamKind| -> Vec<(i64, &CameraStatusRow)> {
            rows.iter()
                .filter(|(_, kind, _)| *kind == k)
                .map(|(id, _, row)| (*id, row))
                .collect()
        };
        if let Err(err) = store
            .put_camera_statuses(&of(StreamKind::Main), &of(StreamKind::Sub))
            .await
        {
            tracing::warn!("storing camera status failed: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_counted_separately_and_rates_come_from_counters() {
        let board = StatusBoard::default();
        let main = board.stream(1, StreamKind::Main);
        let sub = board.stream(1, StreamKind::Sub);
        assert!(!board.is_connected(1));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        for _ in 0..10 {
            main.frame(1000);
        }
        sub.frame(10);
        assert!(board.is_connected(1));
        let snap = board.snapshot();
        let get = |k| {
            snap.iter()
                .find(|(id, kind, _)| *id == 1 && *kind == k)
                .unwrap()
                .2
                .clone()
        };
        let (m, s) = (get(StreamKind::Main), get(StreamKind::Sub));
        assert!(m.connected && s.connected);
        assert!(m.fps > 0.0 && m.fps <= 10.0, "{m:?}");
        assert!(m.fps > s.fps, "{m:?} {s:?}");
        assert!(m.bitrate_bps > s.bitrate_bps);
        sub.disconnected(Some("gone".into()));
        let snap = board.snapshot();
        let s = &snap
            .iter()
            .find(|(_, k, _)| *k == StreamKind::Sub)
            .unwrap()
            .2;
        assert_eq!((s.connected, s.fps), (false, 0.0));
        assert_eq!(s.last_error.as_deref(), Some("gone"));
        board.forget(1);
        assert!(board.snapshot().is_empty());
    }
}
