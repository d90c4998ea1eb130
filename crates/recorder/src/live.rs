//! Live frames, fanned out from the one camera connection to every local
//! consumer (the RTSP restream, the web live view, detection) without a
//! second connection to the camera.
//!
//! A bounded broadcast channel per camera: a consumer that falls behind
//! loses the oldest frames (`RecvError::Lagged`) and should skip to the
//! next key frame — the recorder itself never waits for a viewer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use porchlight_media::VideoSampleEntry;
use tokio::sync::broadcast;

/// One frame as received from the camera (main stream).
#[derive(Debug, Clone)]
pub struct LiveFrame {
    /// 90 kHz presentation time, monotonic within one camera connection.
    pub pts_90k: i64,
    pub key: bool,
    /// Length-prefixed NAL units (4-byte big-endian lengths).
    pub data: Bytes,
    /// The codec parameters in force for this frame.
    pub entry: Arc<VideoSampleEntry>,
    /// Hub wall-clock time of arrival.
    pub arrival: jiff::Timestamp,
}

/// Frames buffered per camera for slow consumers: about 4 s at 30 fps.
const CAPACITY: usize = 128;

/// The per-camera channels.
#[derive(Default)]
pub struct LiveHub {
    channels: Mutex<HashMap<i64, broadcast::Sender<Arc<LiveFrame>>>>,
}

impl LiveHub {
    fn sender(&self, camera_id: i64) -> broadcast::Sender<Arc<LiveFrame>> {
        self.channels
            .lock()
            .unwrap()
            .entry(camera_id)
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .clone()
    }

    /// Receives the camera's frames from now on (the first may not be a
    /// key frame: wait for one).
    pub fn subscribe(&self, camera_id: i64) -> broadcast::Receiver<Arc<LiveFrame>> {
        self.sender(camera_id).subscribe()
    }

    /// The camera's sending end, taken once per connection so the
    /// per-frame path does not lock the map of channels.
    pub(crate) fn publisher(&self, camera_id: i64) -> Publisher {
        Publisher(self.sender(camera_id))
    }
}

/// Publishes one camera's frames; see [`LiveHub::publisher`].
pub(crate) struct Publisher(broadcast::Sender<Arc<LiveFrame>>);

impl Publisher {
    /// Publishes a frame; free (no allocation) when nobody listens.
    pub(crate) fn publish(&self, make: impl FnOnce() -> LiveFrame) {
        if self.0.receiver_count() > 0 {
            let _ = self.0.send(Arc::new(make()));
        }
    }
}
