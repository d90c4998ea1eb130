//! Camera ingest: one task per camera stream — the main stream, and the
//! sub-stream when the camera has a `sub_url` — that connects with `retina`
//! over RTSP/TCP, publishes frames live ([`crate::LiveHub`], under the
//! stream's own key), hands main-stream frames to a [`StreamWriter`] (the
//! sub-stream is not recorded: design/storage.md says why), and reconnects with
//! exponential backoff (1 s doubling, capped at 10 s; back to 1 s after a
//! connection that delivered video) when the camera goes away, stalls, or
//! sends something unusable. Each segment is encrypted to the camera's
//! recipients as they are when it opens, and a change of them ends the
//! running segment at the next key frame ([`crate::recipients`]); the
//! task itself keeps no list. Nothing a camera sends can take the hub down:
//! every failure ends in this loop's error arm, recorded as that stream's
//! `last_error`. The two streams of a camera are independent: either may be
//! down while the other runs.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use porchlight_base::SharedClock;
use porchlight_media::{Codec, VideoSampleEntry};
use porchlight_store::{Camera, Store};
use retina::client::{
    PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions, Transport,
};
use retina::codec::{CodecItem, ParametersRef};
use tokio::sync::watch;

use crate::status::{StatusBoard, StreamKind, StreamStats};
use crate::writer::{Frame, StreamWriter, WriterOptions};
use crate::RecorderError;

/// A camera silent for this long is treated as stalled and reconnected.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnect delays: 1, 2, 4, 8, 10, 10, … seconds.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs((1u64 << attempt.min(4)).min(10))
}

pub(crate) struct CameraTask {
    pub store: Store,
    pub clock: SharedClock,
    pub recordings_dir: std::path::PathBuf,
    pub camera: Camera,
    /// Which of the camera's streams this task connects to.
    pub kind: StreamKind,
    pub opts: WriterOptions,
    pub status: Arc<StatusBoard>,
    pub live: Arc<crate::LiveHub>,
    pub batcher: Arc<crate::readbatch::ReadBatcher>,
    /// The store's recipient change counter, as the recorder polls it.
    pub recipient_changes: crate::recipients::RecipientChanges,
    pub shutdown: watch::Receiver<bool>,
}

impl CameraTask {
    /// Runs until shutdown.
    pub async fn run(mut self) {
        let stats = self.status.stream(self.camera.id, self.kind);
        let mut attempt = 0u32;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let started = std::time::Instant::now();
            let res = self.session(&stats).await;
            // A connection that delivered video was a good one, however
            // short: the next outage backs off from 1 s again. (Counting
            // only connections over 30 s left a camera that drops every
            // 20 s waiting the full 10 s after every drop.)
            let streamed = stats.is_connected();
            stats.disconnected(res.as_ref().err().map(|e| e.to_string()));
            match res {
                Ok(()) => return, // shutdown
                Err(e) => {
                    tracing::warn!(camera = %self.camera.name, stream = self.kind.as_str(), "camera connection ended: {e}");
                }
            }
            if streamed || started.elapsed() > Duration::from_secs(30) {
                attempt = 0;
            }
            let wait = backoff(attempt);
            attempt += 1;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.shutdown.changed() => return,
            }
        }
    }

    /// One connection: describe, setup, play, record until error/shutdown.
    async fn session(&mut self, stats: &StreamStats) -> Result<(), RecorderError> {
        let raw = match self.kind {
            StreamKind::Main => self.camera.main_url.as_str(),
            StreamKind::Sub => self.camera.sub_url.as_deref().ok_or_else(|| {
                RecorderError::Internal("a sub-stream task for a camera without a sub_url".into())
            })?,
        };
        let url = url::Url::parse(raw)
            .map_err(|e| RecorderError::Camera(format!("bad URL `{raw}`: {e}")))?;
        // Where the connection goes, for read batching (crate::readbatch);
        // resolved before retina connects so the addresses match.
        let peers: Vec<std::net::SocketAddr> = match url.host_str() {
            Some(h) => {
                let h = h.trim_start_matches('[').trim_end_matches(']');
                let port = url.port().unwrap_or(554);
                tokio::net::lookup_host((h, port))
                    .await
                    .map(|a| a.collect())
                    .unwrap_or_default()
            }
            None => Vec::new(),
        };
        let creds = match (&self.camera.username, &self.camera.password) {
            (Some(u), p) => Some(retina::client::Credentials {
                username: u.clone(),
                password: p.clone().unwrap_or_default(),
            }),
            _ => None,
        };
        let opts = SessionOptions::default()
            .creds(creds)
            .user_agent(format!("Porchlight/{}", env!("CARGO_PKG_VERSION")));
        let mut session = tokio::time::timeout(STALL_TIMEOUT, Session::describe(url, opts))
            .await
            .map_err(|_| RecorderError::Camera("no answer to DESCRIBE within 10 s".into()))?
            .map_err(|e| RecorderError::Camera(e.to_string()))?;
        let video_i = session
            .streams()
            .iter()
            .position(|s| s.media() == "video" && matches!(s.encoding_name(), "h264" | "h265"))
            .ok_or_else(|| {
                let found: Vec<String> = session
                    .streams()
                    .iter()
                    .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                    .collect();
                RecorderError::Camera(format!(
                    "no H.264 or H.265 video stream (camera offers: {})",
                    found.join(", ")
                ))
            })?;
        session
            .setup(
                video_i,
                SetupOptions::default().transport(Transport::Tcp(TcpTransportOptions::default())),
            )
            .await
            .map_err(|e| RecorderError::Camera(e.to_string()))?;
        let mut demuxed = session
            .play(PlayOptions::default())
            .await
            .map_err(|e| RecorderError::Camera(e.to_string()))?
            .demuxed()
            .map_err(|e| RecorderError::Camera(e.to_string()))?;

        let live = self.live.publisher(self.camera.id, self.kind);
        let _batching = self.batcher.register(peers, live.watched());
        let record = self.kind == StreamKind::Main;
        let mut writer: Option<StreamWriter> = None;
        let mut entry: Option<Arc<VideoSampleEntry>> = None;
        // Stall detection without a timer per frame, nor a wake-up a
        // second: one timer set STALL_TIMEOUT after the last video frame
        // known when it was set. When it fires early (video came since),
        // it is moved to STALL_TIMEOUT after the last frame: a healthy
        // stream wakes it about once per STALL_TIMEOUT.
        let mut last_video = tokio::time::Instant::now();
        let stall = tokio::time::sleep(STALL_TIMEOUT);
        tokio::pin!(stall);
        let result = loop {
            let item = tokio::select! {
                biased;
                _ = self.shutdown.changed() => break Ok(()),
                item = demuxed.next() => item,
                _ = &mut stall => {
                    if last_video.elapsed() >= STALL_TIMEOUT {
                        break Err(RecorderError::Camera("no video for 10 s (stalled)".into()));
                    }
                    stall.as_mut().reset(last_video + STALL_TIMEOUT);
                    continue;
                }
            };
            let item = match item {
                None => break Err(RecorderError::Camera("the camera ended the stream".into())),
                Some(Err(e)) => break Err(RecorderError::Camera(e.to_string())),
                Some(Ok(item)) => item,
            };
            let CodecItem::VideoFrame(frame) = item else {
                continue;
            };
            last_video = tokio::time::Instant::now();
            if frame.loss() > 0 {
                tracing::debug!(camera = %self.camera.name, lost = frame.loss(), "packets lost before a frame");
            }
            if entry.is_none() || frame.has_new_parameters() {
                let Some(ParametersRef::Video(p)) = demuxed.streams()[video_i].parameters() else {
                    continue; // parameters not known yet: wait for SPS/PPS
                };
                let e = sample_entry(p)?;
                if entry.as_deref() != Some(&e) {
                    // New parameters start a new recording (main stream
                    // only; the sub-stream is live-only).
                    if record {
                        if let Some(w) = writer.take() {
                            w.finish().await?;
                        }
                        let recipients = crate::recipients::Recipients::Camera {
                            changes: self.recipient_changes.clone(),
                        };
                        writer = Some(
                            StreamWriter::new(
                                self.store.clone(),
                                &self.recordings_dir,
                                self.camera.id,
                                self.kind.as_str(),
                                &e,
                                recipients,
                                self.opts.clone(),
                            )
                            .await?,
                        );
                    }
                    entry = Some(Arc::new(e));
                }
            }
            let now = self.clock.now();
            let pts = frame.timestamp().timestamp();
            let rap = frame.is_random_access_point();
            let data = bytes::Bytes::from(frame.into_data());
            let key = rap
                || (entry.as_ref().is_some_and(|e| e.codec == Codec::H265)
                    && porchlight_media::nal::hevc_is_irap(&data));
            stats.frame(data.len());
            if let Some(e) = &entry {
                live.publish(|| crate::LiveFrame {
                    pts_90k: pts,
                    key,
                    data: data.clone(),
                    entry: e.clone(),
                    arrival: now,
                });
            }
            if let Some(w) = writer.as_mut() {
                if let Err(e) = w
                    .push(
                        Frame {
                            pts_90k: pts,
                            key,
                            data,
                        },
                        now,
                    )
                    .await
                {
                    break Err(e);
                }
            }
        };
        if let Some(w) = writer.take() {
            if let Err(e) = w.finish().await {
                tracing::warn!(camera = %self.camera.name, "closing the last segment failed: {e}");
            }
        }
        result
    }
}

/// The MP4 sample entry for retina's video parameters.
pub fn sample_entry(p: &retina::codec::VideoParameters) -> Result<VideoSampleEntry, RecorderError> {
    let codec = if p.rfc6381_codec().starts_with("avc1") {
        Codec::H264
    } else if p.rfc6381_codec().starts_with("hvc1") || p.rfc6381_codec().starts_with("hev1") {
        Codec::H265
    } else {
        return Err(RecorderError::Camera(format!(
            "unsupported codec {}",
            p.rfc6381_codec()
        )));
    };
    let (w, h) = p.pixel_dimensions();
    Ok(VideoSampleEntry {
        codec,
        width: u16::try_from(w)
            .map_err(|_| RecorderError::Camera(format!("width {w} too large")))?,
        height: u16::try_from(h)
            .map_err(|_| RecorderError::Camera(format!("height {h} too large")))?,
        config: p.extra_data().to_vec(),
        rfc6381: p.rfc6381_codec().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_is_capped_at_ten_seconds() {
        let secs: Vec<u64> = (0..8).map(|a| super::backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10, 10, 10]);
    }
}

/// What a test connection to a camera found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeInfo {
    /// The streams the camera offers, e.g. `video/h264`, `audio/mpeg4-generic`.
    pub streams: Vec<String>,
    /// RFC 6381 codec of the video stream, when its parameters were in the SDP.
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Connects to a camera the way the recorder would (DESCRIBE only) and
/// reports what it offers, or a clear reason why not: for "test
/// connection" before a camera is saved.
pub async fn probe(
    url: &str,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<ProbeInfo, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let creds = username.map(|u| retina::client::Credentials {
        username: u.to_owned(),
        password: password.unwrap_or_default().to_owned(),
    });
    let opts = SessionOptions::default()
        .creds(creds)
        .user_agent(format!("Porchlight/{}", env!("CARGO_PKG_VERSION")));
    let session = tokio::time::timeout(Duration::from_secs(8), Session::describe(parsed, opts))
        .await
        .map_err(|_| {
            "the camera did not answer within 8 s (wrong address or port, or a firewall)".to_owned()
        })?
        .map_err(|e| explain(&e.to_string()))?;
    let streams: Vec<String> = session
        .streams()
        .iter()
        .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
        .collect();
    let video = session
        .streams()
        .iter()
        .find(|s| s.media() == "video" && matches!(s.encoding_name(), "h264" | "h265"))
        .ok_or_else(|| {
            format!(
                "the camera offers no H.264 or H.265 video (it offers: {})",
                streams.join(", ")
            )
        })?;
    let (codec, width, height) = match video.parameters() {
        Some(ParametersRef::Video(p)) => {
            let (w, h) = p.pixel_dimensions();
            (Some(p.rfc6381_codec().to_owned()), Some(w), Some(h))
        }
        _ => (None, None, None),
    };
    Ok(ProbeInfo {
        streams,
        codec,
        width,
        height,
    })
}

/// Turns retina's error text into advice.
fn explain(e: &str) -> String {
    let lower = e.to_lowercase();
    if lower.contains("401") || lower.contains("unauthorized") {
        format!("the camera refused the user name or password ({e})")
    } else if lower.contains("404") || lower.contains("not found") {
        format!("the camera has no stream at that path ({e})")
    } else if lower.contains("connection refused") {
        format!("nothing listens at that address and port ({e})")
    } else {
        e.to_owned()
    }
}
