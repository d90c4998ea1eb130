//! Turns a camera's frames into segment files and index rows.
//!
//! One [`StreamWriter`] per camera stream. Frames arrive one at a time;
//! the writer holds back one frame (its duration is only known when the next
//! one arrives) and the current GOP; when a key frame starts a new GOP the
//! previous one is sealed and written with one `write` call. The GOP
//! buffer is one per stream, reused from GOP to GOP (sealed in place,
//! written, emptied), and sized to the largest GOP seen. A segment is
//! rotated at the first key frame after `segment_target` has elapsed, with a
//! per-camera offset on the first segment of a run so cameras do not all
//! rotate (and fsync) in the same second.
//!
//! Ordering per segment (design/storage.md):
//! 1. insert the row as `open` (recovery will look for its file);
//! 2. create the file and write the header; fsync file and directory;
//! 3. append GOP records; fsync at least every `flush_interval`;
//! 4. on rotation: fsync the file, then mark the row `closed` with its index.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use porchlight_media::segment::{self, SegmentWriter};
use porchlight_media::{index, FrameInfo, VideoSampleEntry, TIMESCALE};
use porchlight_store::{ClosedRecording, NewRecording, Store};

use crate::RecorderError;

/// Tunables of the writer.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Target segment length (a segment ends at the first key frame after it).
    pub segment_target: Duration,
    /// Longest time written data may sit unsynced (power-loss window).
    pub flush_interval: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            segment_target: Duration::from_secs(60),
            flush_interval: Duration::from_secs(10),
        }
    }
}

/// A frame as the ingest hands it over.
pub struct Frame {
    /// Presentation time in 90 kHz ticks, monotonic within a run (retina
    /// extends RTP's 32-bit timestamps, so wrap-around is already handled).
    pub pts_90k: i64,
    pub key: bool,
    /// Length-prefixed NAL units.
    pub data: bytes::Bytes,
}

struct OpenSegment {
    row_id: i64,
    file: Option<SegmentWriter>,
    /// Wall-clock start of the segment.
    start: jiff::Timestamp,
    frames: Vec<FrameInfo>,
    duration_90k: u64,
    target_90k: u64,
    last_sync: Instant,
}

/// Writes one camera stream. See the module docs.
pub struct StreamWriter {
    store: Store,
    dir: PathBuf,
    camera_id: i64,
    stream: &'static str,
    run_id: i64,
    sample_entry_id: i64,
    recipients: Vec<age::x25519::Recipient>,
    opts: WriterOptions,
    /// The frame whose duration is not yet known.
    pending: Option<Frame>,
    gop: Vec<FrameInfo>,
    gop_data: Vec<u8>,
    segment: Option<OpenSegment>,
    first_segment: bool,
    /// Seconds cut off the first segment of a run, per camera, to stagger
    /// rotations across cameras.
    stagger_secs: u64,
    /// Wall time of the pending frame's arrival (start of a new segment).
    pending_arrival: Option<jiff::Timestamp>,
}

/// Typical duration used when a timestamp jumps backwards or far ahead
/// (a camera clock step): 1/15 s.
const FALLBACK_DURATION: u32 = TIMESCALE / 15;
/// Longest plausible gap between frames; longer is a discontinuity.
const MAX_FRAME_GAP_90K: i64 = 10 * TIMESCALE as i64;

impl StreamWriter {
    #[allow(clippy::too_many_arguments)]
    pub async fn new(
        store: Store,
        recordings_dir: &Path,
        camera_id: i64,
        stream: &'static str,
        entry: &VideoSampleEntry,
        recipients: Vec<age::x25519::Recipient>,
        opts: WriterOptions,
    ) -> Result<StreamWriter, RecorderError> {
        if recipients.is_empty() {
            return Err(RecorderError::NoRecipients);
        }
        let codec = match entry.codec {
            porchlight_media::Codec::H264 => "h264",
            porchlight_media::Codec::H265 => "h265",
        };
        let sample_entry_id = store
            .sample_entry_id(
                codec,
                entry.width.into(),
                entry.height.into(),
                &entry.config,
                &entry.rfc6381,
            )
            .await?;
        let run_id = store.next_run_id().await?;
        let dir = recordings_dir.join(camera_id.to_string());
        std::fs::create_dir_all(&dir)
            .map_err(|e| RecorderError::io(format!("creating {}", dir.display()), e))?;
        Ok(StreamWriter {
            store,
            dir,
            camera_id,
            stream,
            run_id,
            sample_entry_id,
            recipients,
            stagger_secs: (camera_id as u64 * 17 + if stream == "sub" { 7 } else { 0 })
                % opts.segment_target.as_secs().max(1),
            opts,
            pending: None,
            gop: Vec::new(),
            gop_data: Vec::new(),
            segment: None,
            first_segment: true,
            pending_arrival: None,
        })
    }

    /// Takes one frame. Frames before the first key frame are dropped.
    pub async fn push(
        &mut self,
        frame: Frame,
        arrival: jiff::Timestamp,
    ) -> Result<(), RecorderError> {
        let Some(prev) = self.pending.take() else {
            if frame.key {
                self.pending = Some(frame);
                self.pending_arrival = Some(arrival);
            }
            return Ok(());
        };
        let gap = frame.pts_90k - prev.pts_90k;
        let duration = if gap <= 0 || gap > MAX_FRAME_GAP_90K {
            tracing::warn!(
                camera = self.camera_id,
                gap,
                "timestamp discontinuity; using a nominal frame duration"
            );
            FALLBACK_DURATION
        } else {
            gap as u32
        };
        let prev_arrival = self.pending_arrival.take().unwrap_or(arrival);
        self.add_to_gop(prev, duration, prev_arrival).await?;
        if frame.key {
            self.flush_gop().await?;
        }
        self.pending = Some(frame);
        self.pending_arrival = Some(arrival);
        Ok(())
    }

    async fn add_to_gop(
        &mut self,
        f: Frame,
        duration_90k: u32,
        arrival: jiff::Timestamp,
    ) -> Result<(), RecorderError> {
        if f.key
            && self
                .segment
                .as_ref()
                .is_none_or(|s| s.duration_90k >= s.target_90k)
        {
            self.rotate(arrival).await?;
        }
        self.gop.push(FrameInfo {
            duration_90k,
            bytes: f.data.len() as u32,
            key: f.key,
        });
        // Grow in steps of 1/8 rather than doubling: the buffer is kept
        // from GOP to GOP, so it settles just above the largest GOP instead
        // of at up to twice it. (Large reallocations are `mremap`s, not
        // copies.)
        let need = self.gop_data.len() + f.data.len();
        if need > self.gop_data.capacity() {
            let step = (self.gop_data.capacity() / 8).max(64 << 10);
            self.gop_data.reserve_exact(f.data.len().max(step));
        }
        self.gop_data.extend_from_slice(&f.data);
        Ok(())
    }

    /// Writes the GOP gathered so far as one sealed record.
    async fn flush_gop(&mut self) -> Result<(), RecorderError> {
        if self.gop.is_empty() {
            return Ok(());
        }
        let frames = std::mem::take(&mut self.gop);
        // (`frames` comes back below and is reused as the next `gop`.)
        // The one GOP buffer goes to the blocking thread and comes back
        // empty with its capacity: no allocation per GOP, and a stream
        // holds one GOP-sized buffer, not two.
        let mut payload = std::mem::take(&mut self.gop_data);
        let seg = self
            .segment
            .as_mut()
            .expect("a segment is open once a key frame arrived");
        let mut file = seg.file.take().expect("segment file present");
        let sync_due = seg.last_sync.elapsed() >= self.opts.flush_interval;
        let (file, frames, payload, res) = tokio::task::spawn_blocking(move || {
            let r = file.append_gop_from(&frames, &mut payload).map(|_| ());
            let r = r.map_err(RecorderError::from).and_then(|_| {
                if sync_due {
                    file.sync()
                        .map_err(|e| RecorderError::io("syncing a segment".into(), e))
                } else {
                    Ok(())
                }
            });
            (file, frames, payload, r)
        })
        .await
        .map_err(|e| RecorderError::Internal(e.to_string()))?;
        self.gop_data = payload;
        self.gop_data.clear();
        seg.file = Some(file);
        res?;
        if sync_due {
            seg.last_sync = Instant::now();
        }
        seg.duration_90k += frames
            .iter()
            .map(|f| u64::from(f.duration_90k))
            .sum::<u64>();
        seg.frames.extend_from_slice(&frames);
        let mut frames = frames;
        frames.clear();
        self.gop = frames;
        Ok(())
    }

    /// Closes the current segment (if any) and opens the next one.
    async fn rotate(&mut self, start: jiff::Timestamp) -> Result<(), RecorderError> {
        self.close_segment().await?;
        let file_name = format!(
            "{}/{}-{}.seg",
            self.camera_id,
            self.stream,
            start.as_microsecond()
        );
        let row_id = self
            .store
            .begin_recording(NewRecording {
                camera_id: self.camera_id,
                stream: self.stream,
                run_id: self.run_id,
                start,
                sample_entry_id: self.sample_entry_id,
                file_name: &file_name,
            })
            .await?;
        let path = self
            .dir
            .join(format!("{}-{}.seg", self.stream, start.as_microsecond()));
        let recipients = self.recipients.clone();
        let dir = self.dir.clone();
        let file = tokio::task::spawn_blocking(move || -> Result<SegmentWriter, RecorderError> {
            let mut w = SegmentWriter::create(&path, &recipients)?;
            w.sync()
                .map_err(|e| RecorderError::io(format!("syncing {}", path.display()), e))?;
            segment::sync_dir(&dir)
                .map_err(|e| RecorderError::io(format!("syncing {}", dir.display()), e))?;
            Ok(w)
        })
        .await
        .map_err(|e| RecorderError::Internal(e.to_string()))??;
        let target = self.opts.segment_target.as_secs();
        let target = if self.first_segment {
            target - self.stagger_secs.min(target - 1)
        } else {
            target
        };
        self.first_segment = false;
        self.segment = Some(OpenSegment {
            row_id,
            file: Some(file),
            start,
            frames: Vec::new(),
            duration_90k: 0,
            target_90k: target * u64::from(TIMESCALE),
            last_sync: Instant::now(),
        });
        Ok(())
    }

    async fn close_segment(&mut self) -> Result<(), RecorderError> {
        let Some(mut seg) = self.segment.take() else {
            return Ok(());
        };
        let file = seg.file.take().expect("segment file present");
        let summary = tokio::task::spawn_blocking(move || file.finish())
            .await
            .map_err(|e| RecorderError::Internal(e.to_string()))??;
        let sample_bytes: u64 = seg.frames.iter().map(|f| u64::from(f.bytes)).sum();
        self.store
            .close_recording(
                seg.row_id,
                &ClosedRecording {
                    duration_90k: seg.duration_90k as i64,
                    frames: seg.frames.len() as i64,
                    sample_bytes: sample_bytes as i64,
                    file_bytes: summary.bytes as i64,
                    sha256: summary.digest.to_vec(), // BLAKE3 (version-2 file); the column keeps its old name
                    frame_index: index::encode(&seg.frames),
                },
            )
            .await?;
        tracing::debug!(camera = self.camera_id, start = %seg.start, frames = seg.frames.len(), "closed a segment");
        Ok(())
    }

    /// Ends the run cleanly: the last full GOP is written and the segment
    /// closed. The held-back last frame (duration unknown) is dropped.
    pub async fn finish(mut self) -> Result<(), RecorderError> {
        if self.segment.is_some() {
            self.flush_gop().await?;
        }
        self.close_segment().await
    }
}
