//! Live frames, fanned out from the one camera connection to every local
//! consumer (the RTSP restream, the web live view, detection) without a
//! second connection to the camera.
//!
//! A bounded broadcast channel per camera stream: a consumer that falls
//! behind loses the oldest frames (`RecvError::Lagged`) and should skip to
//! the next key frame — the recorder itself never waits for a viewer.
//!
//! Each camera has up to two streams: the main stream (recorded; what
//! [`LiveHub::subscribe`] gives, for the live view and the restream) and,
//! when the camera has a `sub_url`, its low-resolution sub-stream
//! ([`LiveHub::subscribe_sub`]). Detection should use
//! [`LiveHub::subscribe_detect`]: the sub-stream when the camera has one,
//! else the main stream — decoding the small stream costs a fraction of
//! the large one. Which one it is is decided when subscribing; the
//! recorder's camera list is re-read every few seconds, so a consumer that
//! cares about a camera gaining or losing its `sub_url` resubscribes when
//! the camera row changes (or when its channel goes quiet).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use porchlight_media::VideoSampleEntry;
use tokio::sync::broadcast;

use crate::status::StreamKind;

/// One frame as received from the camera (main or sub-stream).
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

/// A stream's sending end.
type Sender = broadcast::Sender<Arc<LiveFrame>>;

/// The per-camera-stream channels.
#[derive(Default)]
pub struct LiveHub {
    channels: Mutex<HashMap<(i64, StreamKind), Sender>>,
    /// Cameras whose row has a `sub_url` (kept by the recorder).
    with_sub: Mutex<HashSet<i64>>,
}

impl LiveHub {
    fn sender(&self, camera_id: i64, kind: StreamKind) -> Sender {
        self.channels
            .lock()
            .unwrap()
            .entry((camera_id, kind))
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .clone()
    }

    /// Receives the camera's main-stream frames from now on (the first may
    /// not be a key frame: wait for one).
    pub fn subscribe(&self, camera_id: i64) -> broadcast::Receiver<Arc<LiveFrame>> {
        self.sender(camera_id, StreamKind::Main).subscribe()
    }

    /// Receives the camera's sub-stream frames from now on. A camera
    /// without a `sub_url` never sends on this channel.
    pub fn subscribe_sub(&self, camera_id: i64) -> broadcast::Receiver<Arc<LiveFrame>> {
        self.sender(camera_id, StreamKind::Sub).subscribe()
    }

    /// The stream detection should decode: the sub-stream if the camera
    /// has one configured, else the main stream.
    pub fn subscribe_detect(&self, camera_id: i64) -> broadcast::Receiver<Arc<LiveFrame>> {
        if self.has_sub(camera_id) {
            self.subscribe_sub(camera_id)
        } else {
            self.subscribe(camera_id)
        }
    }

    /// Is a sub-stream configured for the camera (as of the recorder's
    /// last look at the camera list)?
    pub fn has_sub(&self, camera_id: i64) -> bool {
        self.with_sub.lock().unwrap().contains(&camera_id)
    }

    /// Records whether the camera has a sub-stream (the recorder calls it
    /// when it starts or stops a camera's tasks).
    pub fn set_has_sub(&self, camera_id: i64, has: bool) {
        let mut s = self.with_sub.lock().unwrap();
        if has {
            s.insert(camera_id);
        } else {
            s.remove(&camera_id);
        }
    }

    /// The stream's sending end, taken once per connection so the
    /// per-frame path does not lock the map of channels.
    pub(crate) fn publisher(&self, camera_id: i64, kind: StreamKind) -> Publisher {
        Publisher(self.sender(camera_id, kind))
    }
}

/// Publishes one camera's frames; see [`LiveHub::publisher`].
pub(crate) struct Publisher(broadcast::Sender<Arc<LiveFrame>>);

impl Publisher {
    /// Whether anyone listens (for read batching: a watched stream is not
    /// batched, see [`crate::readbatch`]).
    pub(crate) fn watched(&self) -> crate::readbatch::Watched {
        let s = self.0.clone();
        std::sync::Arc::new(move || s.receiver_count() > 0)
    }

    /// Publishes a frame; free (no allocation) when nobody listens.
    pub(crate) fn publish(&self, make: impl FnOnce() -> LiveFrame) {
        if self.0.receiver_count() > 0 {
            let _ = self.0.send(Arc::new(make()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u16) -> LiveFrame {
        LiveFrame {
            pts_90k: 0,
            key: true,
            data: Bytes::from_static(b"\0\0\0\x01\x65"),
            entry: Arc::new(VideoSampleEntry {
                codec: porchlight_media::Codec::H264,
                width: w,
                height: w / 16 * 9,
                config: vec![],
                rfc6381: "avc1.42c01e".into(),
            }),
            arrival: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn main_sub_and_detect_channels() {
        let hub = LiveHub::default();
        let mut main = hub.subscribe(7);
        let mut sub = hub.subscribe_sub(7);
        let mut detect_before = hub.subscribe_detect(7); // no sub yet: main
        hub.set_has_sub(7, true);
        let mut detect_after = hub.subscribe_detect(7);
        hub.publisher(7, StreamKind::Main).publish(|| frame(1920));
        hub.publisher(7, StreamKind::Sub).publish(|| frame(320));
        assert_eq!(main.try_recv().unwrap().entry.width, 1920);
        assert!(main.try_recv().is_err(), "main sees only the main stream");
        assert_eq!(sub.try_recv().unwrap().entry.width, 320);
        assert!(sub.try_recv().is_err());
        assert_eq!(detect_before.try_recv().unwrap().entry.width, 1920);
        assert_eq!(detect_after.try_recv().unwrap().entry.width, 320);
        assert!(detect_after.try_recv().is_err());
        // Other cameras are separate.
        assert!(hub.subscribe_sub(8).try_recv().is_err());
        hub.set_has_sub(7, false);
        assert!(!hub.has_sub(7));
    }
}
