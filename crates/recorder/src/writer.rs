//! Turns a camera's frames into segment files and index rows.
//!
//! One [`StreamWriter`] per camera stream. Frames arrive one at a time;
//! the writer holds back one frame (its duration is only known when the
//! next one arrives) and gathers frames into a record, which it seals and
//! writes with one `write` call:
//!
//! * when a key frame arrives (so every GOP starts a record), and
//! * before a frame that would take the record past
//!   [`WriterOptions::record_bytes`] (default 256 KiB): the frames so far
//!   are written, and the record after them starts mid-GOP — a
//!   *continuation record* (segment format version 3).
//!
//! **Memory.** The record buffer is one per stream, reused from record to
//! record (sealed in place, written, emptied). It holds at most
//! `record_bytes` of samples, or one frame when a frame alone is larger,
//! and its capacity settles near `max(record_bytes, largest frame)` — not
//! a GOP (about 1 MiB at 4 Mbit/s in 2 s GOPs). Besides it: the held-back
//! frame, and the segment's frame list (12 bytes a frame).
//!
//! **Threads.** A record is sealed and written on the caller's thread,
//! inside [`StreamWriter::push`]: at most `record_bytes` of ChaCha20-Poly1305
//! and one `writev` into the page cache, well under a millisecond, about
//! twice a second per 4 Mbit/s stream. Handing each record to another
//! thread cost more than that in wake-ups (two thread switches and a
//! futex hand-off per record, bench/RESULTS.md). The recorder runs its
//! camera tasks on a thread of their own (`IngestRuntime` in the crate
//! root), so a record being written never delays the web server; it
//! delays the other cameras' reads (which the kernel buffers meanwhile,
//! but live frames wait too: design/storage.md, "Which thread writes").
//! What can block for long stays off that thread: the periodic `fdatasync`
//! runs as a blocking task on a second handle of the file while writing
//! goes on (at most one per segment in flight; its error ends the run at
//! the next record), and so do a segment's creation and its closing fsync.
//!
//! **What a `kill -9` loses.** Every record whose `write` returned is in
//! the kernel and survives; start-up recovery keeps it. Lost are the
//! frames in the buffer (at most `record_bytes`, or one larger frame) and
//! the held-back frame. A power cut loses at most what was written since
//! the last fsync (`flush_interval`) on top of that.
//!
//! A segment is rotated at the first key frame after `segment_target` has
//! elapsed, with a per-camera offset on the first segment of a run so
//! cameras do not all rotate (and fsync) in the same second. So every
//! segment file starts at a key frame, in its record 0. A segment's
//! wall-clock start is its key frame's arrival for the first segment of a
//! run, and for later ones the previous segment's end plus a correction of
//! at most ±1000 ppm ([`crate::wallclock`]): a run's segments join without
//! gaps or overlaps however bursty the delivery (read batching).
//!
//! **Recipients.** Each segment file is encrypted to the recipients read
//! as it opens (after its row is inserted), not to a list kept for the
//! run; and at a key frame after the store's recipient counter moved
//! (a grant, revoke, disable, enable or removal), the segment ends early
//! when the camera's list is now different ([`crate::recipients`]). So a
//! revoked member gets no footage from about a second plus one GOP after
//! the change, and a newly granted one from then on too.
//!
//! Ordering per segment (design/storage.md):
//! 1. insert the row as `open` (recovery will look for its file); then
//!    read the segment's recipients;
//! 2. create the file and write the header; fsync file and directory;
//! 3. append records; start an fsync at least every `flush_interval`;
//! 4. on rotation: fsync the file, then mark the row `closed` with its index.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use porchlight_media::segment::{self, SegmentWriter};
use porchlight_media::{index, FrameInfo, VideoSampleEntry, TIMESCALE};
use porchlight_store::{ClosedRecording, NewRecording, Store};

use crate::recipients::{camera_recipients, Recipients};
use crate::wallclock::RunClock;
use crate::RecorderError;

/// Tunables of the writer.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Target segment length (a segment ends at the first key frame after it).
    pub segment_target: Duration,
    /// Longest time written data may sit unsynced (power-loss window).
    pub flush_interval: Duration,
    /// Samples gathered before a record is written even mid-GOP: what a
    /// stream holds in memory, and at most what a `kill -9` loses (plus
    /// the held-back frame). A frame larger than this is a record of its
    /// own. Default 256 KiB (about half a second at 4 Mbit/s).
    pub record_bytes: usize,
}

/// [`WriterOptions::record_bytes`] by default.
pub const DEFAULT_RECORD_BYTES: usize = 256 << 10;

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            segment_target: Duration::from_secs(60),
            flush_interval: Duration::from_secs(10),
            record_bytes: DEFAULT_RECORD_BYTES,
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
    /// When the last background fsync started.
    last_sync: Instant,
    /// The background fsync in flight, if any (at most one per segment).
    syncing: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// The outcome of a background fsync, as the writer's error.
fn sync_result(
    r: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> Result<(), RecorderError> {
    r.map_err(|e| RecorderError::Internal(format!("the fsync task failed: {e}")))?
        .map_err(|e| RecorderError::io("syncing a segment".into(), e))
}

/// Writes one camera stream. See the module docs.
pub struct StreamWriter {
    store: Store,
    dir: PathBuf,
    camera_id: i64,
    stream: &'static str,
    run_id: i64,
    sample_entry_id: i64,
    /// Where each segment's recipients come from.
    recipients: Recipients,
    /// The open segment's recipients.
    seg_recipients: Vec<age::x25519::Recipient>,
    /// The store's recipient change counter as it was when the open
    /// segment's recipients were read (or last found unchanged).
    seen_changes: i64,
    opts: WriterOptions,
    /// The frame whose duration is not yet known.
    pending: Option<Frame>,
    /// The frames of the record being gathered, and their samples (the
    /// one reused record buffer).
    rec_frames: Vec<FrameInfo>,
    rec_data: Vec<u8>,
    segment: Option<OpenSegment>,
    first_segment: bool,
    /// Seconds cut off the first segment of a run, per camera, to stagger
    /// rotations across cameras.
    stagger_secs: u64,
    /// Wall time of the pending frame's arrival.
    pending_arrival: Option<jiff::Timestamp>,
    /// Places this run's segments on the wall clock.
    clock: RunClock,
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
        recipients: impl Into<Recipients>,
        opts: WriterOptions,
    ) -> Result<StreamWriter, RecorderError> {
        let recipients = recipients.into();
        if matches!(&recipients, Recipients::Fixed(list) if list.is_empty()) {
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
            seg_recipients: Vec::new(),
            seen_changes: 0,
            stagger_secs: (camera_id as u64 * 17 + if stream == "sub" { 7 } else { 0 })
                % opts.segment_target.as_secs().max(1),
            opts,
            pending: None,
            rec_frames: Vec::new(),
            rec_data: Vec::new(),
            segment: None,
            first_segment: true,
            pending_arrival: None,
            clock: RunClock::new(),
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
        self.add_frame(prev, duration, prev_arrival).await?;
        if frame.key {
            // A GOP starts a record.
            self.flush_record().await?;
        }
        self.pending = Some(frame);
        self.pending_arrival = Some(arrival);
        Ok(())
    }

    /// Adds a frame whose duration is now known to the record being
    /// gathered, writing that record first if the frame would take it past
    /// `record_bytes`. A key frame arrives here with the record already
    /// written (see [`StreamWriter::push`]), and may rotate the segment.
    async fn add_frame(
        &mut self,
        f: Frame,
        duration_90k: u32,
        arrival: jiff::Timestamp,
    ) -> Result<(), RecorderError> {
        if f.key
            && (self
                .segment
                .as_ref()
                .is_none_or(|s| s.duration_90k >= s.target_90k)
                || self.recipients_changed().await?)
        {
            // Rotation only at a key frame, with the buffer empty: the
            // new file's record 0 starts with this key frame. (Also early,
            // when who may see the camera changed.)
            self.flush_record().await?;
            // Joined to the run's previous segment, not simply the key
            // frame's arrival (crate::wallclock).
            let start_us = self.clock.start_segment(arrival.as_microsecond());
            let start = jiff::Timestamp::from_microsecond(start_us).unwrap_or(arrival);
            self.rotate(start).await?;
        }
        let Ok(bytes) = u32::try_from(f.data.len()) else {
            return Err(RecorderError::Camera(format!(
                "a {}-byte frame is too large to record",
                f.data.len()
            )));
        };
        if !self.rec_frames.is_empty()
            && self.rec_data.len() + f.data.len() > self.opts.record_bytes
        {
            // Record full: write it; this frame starts a continuation
            // record. (Never a key frame: the record before a key frame
            // was written when it arrived, so the buffer is empty here.)
            self.flush_record().await?;
        }
        self.clock.frame(arrival.as_microsecond(), duration_90k);
        self.rec_frames.push(FrameInfo {
            duration_90k,
            bytes,
            key: f.key,
        });
        let need = self.rec_data.len() + f.data.len();
        if need > self.rec_data.capacity() {
            let target = record_capacity(self.rec_data.capacity(), need, self.opts.record_bytes);
            self.rec_data.reserve_exact(target - self.rec_data.len());
        }
        self.rec_data.extend_from_slice(&f.data);
        Ok(())
    }

    /// Writes the frames gathered so far as one sealed record, on the
    /// calling thread (see the module docs, "Threads"), and starts a
    /// background fsync when one is due.
    async fn flush_record(&mut self) -> Result<(), RecorderError> {
        if self.rec_frames.is_empty() {
            return Ok(());
        }
        let seg = self
            .segment
            .as_mut()
            .expect("a segment is open once a key frame arrived");
        let file = seg.file.as_mut().expect("segment file present");
        // Sealed in place and written with one `writev`; the buffer comes
        // back empty with its capacity (one record buffer per stream, no
        // allocation per record).
        if let Err(e) = file.append_record_from(&self.rec_frames, &mut self.rec_data) {
            // The writer is broken now; what was gathered is lost with it.
            self.rec_frames.clear();
            self.rec_data.clear();
            return Err(e.into());
        }
        seg.duration_90k += self
            .rec_frames
            .iter()
            .map(|f| u64::from(f.duration_90k))
            .sum::<u64>();
        seg.frames.extend_from_slice(&self.rec_frames);
        self.rec_frames.clear();
        // The previous background fsync, if it is done: its failure ends
        // the run like a failed write (what it covered may be lost).
        if seg.syncing.as_ref().is_some_and(|h| h.is_finished()) {
            let h = seg.syncing.take().expect("checked above");
            sync_result(h.await)?;
        }
        if seg.syncing.is_none() && seg.last_sync.elapsed() >= self.opts.flush_interval {
            let f = file
                .sync_handle()
                .map_err(|e| RecorderError::io("opening a segment to fsync it".into(), e))?;
            seg.last_sync = Instant::now();
            seg.syncing = Some(tokio::task::spawn_blocking(move || f.sync_data()));
        }
        Ok(())
    }

    /// Did the camera's recipients change since the open segment's were
    /// read? Only asks the store when its change counter moved (one atomic
    /// load otherwise); called at key frames.
    async fn recipients_changed(&mut self) -> Result<bool, RecorderError> {
        let Recipients::Camera { changes } = &self.recipients else {
            return Ok(false);
        };
        let now = changes.current();
        if now == self.seen_changes {
            return Ok(false);
        }
        match camera_recipients(&self.store, self.camera_id).await {
            Ok(list) if list == self.seg_recipients => {
                // Someone else's grant: nothing to do for this camera.
                self.seen_changes = now;
                Ok(false)
            }
            // Changed, or nobody left: end the segment here (opening the
            // next one reads the list again, and stops on an empty one).
            Ok(_) | Err(RecorderError::NoRecipients) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The recipients of a segment opening now (see the module docs).
    async fn read_recipients(&mut self) -> Result<Vec<age::x25519::Recipient>, RecorderError> {
        match &self.recipients {
            Recipients::Fixed(list) => Ok(list.clone()),
            Recipients::Camera { changes } => {
                // The counter first, then the list: a change committed
                // after this read moves the counter past what we keep.
                let seen = changes.current();
                let list = camera_recipients(&self.store, self.camera_id).await?;
                self.seen_changes = seen;
                Ok(list)
            }
        }
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
        // Read after the row is in: a segment whose row was inserted after
        // a change committed is encrypted to the new list.
        let recipients = match self.read_recipients().await {
            Ok(r) => r,
            Err(e) => {
                // No file was made: the row goes too (recovery would
                // remove it at the next start otherwise).
                if let Err(e2) = self.store.abandon_recording(row_id).await {
                    tracing::warn!(
                        camera = self.camera_id,
                        "forgetting a segment that did not start: {e2}"
                    );
                }
                return Err(e);
            }
        };
        self.seg_recipients = recipients.clone();
        let path = self
            .dir
            .join(format!("{}-{}.seg", self.stream, start.as_microsecond()));
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
            syncing: None,
        });
        Ok(())
    }

    async fn close_segment(&mut self) -> Result<(), RecorderError> {
        let Some(mut seg) = self.segment.take() else {
            return Ok(());
        };
        if let Some(h) = seg.syncing.take() {
            sync_result(h.await)?;
        }
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
                    sha256: summary.digest.to_vec(), // BLAKE3 (version-3 file); the column keeps its old name
                    frame_index: index::encode(&seg.frames),
                },
            )
            .await?;
        tracing::debug!(camera = self.camera_id, start = %seg.start, frames = seg.frames.len(), "closed a segment");
        Ok(())
    }

    /// Ends the run cleanly: the frames gathered so far are written as a
    /// last record and the segment closed. The held-back last frame
    /// (duration unknown) is dropped.
    pub async fn finish(mut self) -> Result<(), RecorderError> {
        if self.segment.is_some() {
            self.flush_record().await?;
        }
        self.close_segment().await
    }

    /// Capacity of the record buffer (for tests and measurements).
    pub fn record_buffer_capacity(&self) -> usize {
        self.rec_data.capacity()
    }
}

/// The capacity to grow the record buffer to when `need` bytes do not fit
/// `cap`. Up to `record_bytes` it doubles (from 64 KiB) but never past
/// `record_bytes`, so it settles at `record_bytes`; a single frame larger
/// than that (the only way `need` exceeds it) gets `need`, rounded up to
/// 16 KiB so slowly growing key frames do not reallocate every time. The
/// buffer is kept from record to record, so its capacity settles near
/// `max(record_bytes, largest frame)`.
fn record_capacity(cap: usize, need: usize, record_bytes: usize) -> usize {
    if need > record_bytes {
        need.next_multiple_of(16 << 10)
    } else {
        cap.saturating_mul(2)
            .max(64 << 10)
            .clamp(need, record_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::record_capacity;

    #[test]
    fn record_buffer_settles_near_the_record_size_or_the_largest_frame() {
        let rb = 256 << 10;
        // Growing a record frame by frame: never past record_bytes.
        let mut cap = 0;
        for need in (1..=rb).step_by(5_000) {
            if need > cap {
                cap = record_capacity(cap, need, rb);
            }
            assert!(cap >= need && cap <= rb, "{need}: {cap}");
        }
        assert_eq!(record_capacity(cap, rb, rb), rb);
        // A frame larger than a record: about its size, not double.
        let big = 700_001;
        let c = record_capacity(rb, big, rb);
        assert!(c >= big && c < big + (16 << 10), "{c}");
        // A small record size: capped by it.
        assert_eq!(record_capacity(0, 100, 16 << 10), 16 << 10);
        assert_eq!(record_capacity(0, 100, 1 << 20), 64 << 10);
    }
}
