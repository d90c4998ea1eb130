//! Playback and export: any time range of a camera as an MP4, built on the
//! fly from the index and decrypted with a household member's key.
//!
//! The range [from, to) is widened at the start to the key frame at or
//! before `from` (a decoder must start on one), so the result begins at
//! most one GOP early. Recordings of one range are joined in time order;
//! a change of resolution or codec ends the range there (an MP4 track has
//! one sample entry). The segment being written right now is included: its
//! index is read from the file itself.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use porchlight_media::mp4::{FramePos, Mp4Plan, SampleSource};
use porchlight_media::segment::{self, RecordInfo, SegmentReader};
use porchlight_media::{index, Codec, FrameInfo, VideoSampleEntry};
use porchlight_store::{Camera, RecordingRow, Store};
use porchlight_vault::keys::MemberKey;

use crate::RecorderError;

/// A planned export: the virtual MP4 and what it covers.
pub struct Export {
    pub plan: Mp4Plan,
    pub source: RecordingSource,
    /// Wall-clock time of the first frame (a key frame at or before `from`).
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
    pub recordings: Vec<i64>,
}

/// Frames of one recording with their wall-clock start times.
fn frames_of(row: &RecordingRow, dir: &Path) -> Result<Vec<FrameInfo>, RecorderError> {
    match (&row.frame_index, row.open) {
        (Some(blob), false) => index::decode(blob).map_err(|e| {
            RecorderError::Export(format!("recording #{}: bad frame index: {e}", row.id))
        }),
        _ => Ok(segment::scan_file(&dir.join(&row.file_name))?.frames),
    }
}

/// The MP4 sample entry a stored codec configuration describes.
pub fn entry_of(e: &porchlight_store::SampleEntryRow) -> VideoSampleEntry {
    VideoSampleEntry {
        codec: if e.codec == "h265" {
            Codec::H265
        } else {
            Codec::H264
        },
        width: e.width as u16,
        height: e.height as u16,
        config: e.config.clone(),
        rfc6381: e.rfc6381.clone(),
    }
}

/// Plans the MP4 of `camera` over [from, to).
pub async fn plan(
    store: &Store,
    recordings_dir: &Path,
    camera: &Camera,
    from: jiff::Timestamp,
    to: jiff::Timestamp,
    key: Arc<MemberKey>,
) -> Result<Export, RecorderError> {
    if from >= to {
        return Err(RecorderError::Export(format!(
            "the range is empty: {from} is not before {to}"
        )));
    }
    // Look one recording further back than `from`: the key frame that
    // starts the range may be in it.
    let rows = store
        .recordings_between(camera.id, "main", from, to)
        .await?;
    if rows.is_empty() {
        return Err(RecorderError::Export(format!(
            "camera `{}` has no recordings between {from} and {to}",
            camera.name
        )));
    }
    let entry_id = rows[0].sample_entry_id;
    let entry = entry_of(&store.sample_entry(entry_id).await?);
    let dir = recordings_dir.to_owned();
    let rows_c = rows.clone();
    let per_row: Vec<Vec<FrameInfo>> = tokio::task::spawn_blocking(move || {
        rows_c
            .iter()
            .map(|r| frames_of(r, &dir))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| RecorderError::Internal(e.to_string()))??;

    let recs = rows
        .iter()
        .zip(per_row)
        // One sample entry per MP4 track.
        .take_while(|(row, _)| row.sample_entry_id == entry_id)
        .map(|(row, frames)| PlannedRecording {
            id: row.id,
            start: row.start,
            frames,
            path: recordings_dir.join(&row.file_name),
        })
        .collect();
    plan_recordings(&camera.name, &entry, recs, from, to, key)
}

/// One recording as [`plan_recordings`] needs it: where it starts on the
/// wall clock, its frames in order, and its segment file.
#[derive(Debug, Clone)]
pub struct PlannedRecording {
    pub id: i64,
    pub start: jiff::Timestamp,
    pub frames: Vec<FrameInfo>,
    pub path: PathBuf,
}

/// Plans the MP4 over [from, to) of `recs` (one camera's recordings in
/// time order, all of one sample entry), reading nothing but what it is
/// given: the hub's export ([`plan`]) and a restore from an off-site
/// backup (which rebuilds the segment files first) share it. `label`
/// names the camera in errors.
pub fn plan_recordings(
    label: &str,
    entry: &VideoSampleEntry,
    recs: Vec<PlannedRecording>,
    from: jiff::Timestamp,
    to: jiff::Timestamp,
    key: Arc<MemberKey>,
) -> Result<Export, RecorderError> {
    if from >= to {
        return Err(RecorderError::Export(format!(
            "the range is empty: {from} is not before {to}"
        )));
    }
    let (from_us, to_us) = (from.as_microsecond(), to.as_microsecond());
    // Every frame of the overlapping recordings, with its wall-clock start.
    let mut all: Vec<(i64, FramePos)> = Vec::new();
    for rec in &recs {
        let (mut t90, mut offset) = (0u64, 0u64);
        for f in &rec.frames {
            let t_us = rec.start.as_microsecond() + (t90 * 100 / 9) as i64;
            all.push((
                t_us,
                FramePos {
                    info: *f,
                    source: rec.id as u64,
                    offset,
                },
            ));
            t90 += u64::from(f.duration_90k);
            offset += u64::from(f.bytes);
        }
    }
    let dur_us = |f: &FramePos| (u64::from(f.info.duration_90k) * 100 / 9) as i64;
    // Start at the last key frame at or before `from`, or else the first key
    // frame that is still showing after `from`.
    let start_i = all
        .iter()
        .rposition(|(t, f)| f.info.key && *t <= from_us)
        .or_else(|| {
            all.iter()
                .position(|(t, f)| f.info.key && *t + dur_us(f) > from_us)
        })
        .ok_or_else(|| {
            RecorderError::Export(format!(
                "camera `{}` has no key frame between {from} and {to} to start playback from",
                label
            ))
        })?;
    let picked: Vec<(i64, FramePos)> = all[start_i..]
        .iter()
        .take_while(|(t, _)| *t < to_us)
        .cloned()
        .collect();
    let Some(&(start_us, _)) = picked.first() else {
        return Err(RecorderError::Export(format!(
            "camera `{}` has no key frame between {from} and {to} to start playback from",
            label
        )));
    };
    let end_us = picked
        .last()
        .map(|(t, f)| t + dur_us(f))
        .unwrap_or(start_us);
    let mut used: Vec<i64> = picked.iter().map(|(_, f)| f.source as i64).collect();
    used.dedup();
    let out: Vec<FramePos> = picked.into_iter().map(|(_, f)| f).collect();
    let plan = Mp4Plan::new(entry, out, from).map_err(|e| RecorderError::Export(e.to_string()))?;
    let paths: HashMap<u64, PathBuf> = recs
        .into_iter()
        .filter(|r| used.contains(&r.id))
        .map(|r| (r.id as u64, r.path))
        .collect();
    Ok(Export {
        plan,
        source: RecordingSource {
            paths,
            key,
            open: HashMap::new(),
            cache: None,
        },
        start: jiff::Timestamp::from_microsecond(start_us).unwrap_or(from),
        end: jiff::Timestamp::from_microsecond(end_us).unwrap_or(to),
        recordings: used,
    })
}

struct OpenSegment {
    reader: SegmentReader<File>,
    records: Vec<RecordInfo>,
    /// Plaintext offset where each record's payload starts.
    starts: Vec<u64>,
}

/// Decrypts recordings' records (a GOP or part of one) on demand for the
/// MP4 builder, by plaintext offset. Keeps the last decrypted record, since
/// reads arrive in order.
pub struct RecordingSource {
    paths: HashMap<u64, PathBuf>,
    key: Arc<MemberKey>,
    open: HashMap<u64, OpenSegment>,
    cache: Option<(u64, usize, Vec<u8>)>,
}

impl RecordingSource {
    fn segment(&mut self, source: u64) -> std::io::Result<&mut OpenSegment> {
        if !self.open.contains_key(&source) {
            let path = self.paths.get(&source).ok_or_else(|| {
                std::io::Error::other(format!("recording #{source} is not part of this export"))
            })?;
            let file = File::open(path)?;
            let mut reader = SegmentReader::open(file, &self.key)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let records = reader
                .records()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let mut starts = Vec::with_capacity(records.len());
            let mut acc = 0u64;
            for r in &records {
                starts.push(acc);
                acc += u64::from(r.payload_len);
            }
            self.open.insert(
                source,
                OpenSegment {
                    reader,
                    records,
                    starts,
                },
            );
        }
        Ok(self.open.get_mut(&source).expect("just inserted"))
    }
}

impl SampleSource for RecordingSource {
    fn read(&mut self, source: u64, mut offset: u64, mut buf: &mut [u8]) -> std::io::Result<()> {
        while !buf.is_empty() {
            let cached = matches!(&self.cache, Some((s, i, data)) if *s == source && {
                let seg = self.open.get(&source);
                seg.is_some_and(|seg| seg.starts[*i] <= offset && offset < seg.starts[*i] + data.len() as u64)
            });
            if !cached {
                let seg = self.segment(source)?;
                let i = seg
                    .starts
                    .partition_point(|s| *s <= offset)
                    .saturating_sub(1);
                let rec = seg.records.get(i).cloned().ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "offset past the recording",
                    )
                })?;
                let data = seg
                    .reader
                    .read_record(&rec)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                self.cache = Some((source, i, data));
            }
            let (_, i, data) = self.cache.as_ref().expect("cached");
            let start = self.open[&source].starts[*i];
            let within = (offset - start) as usize;
            if within >= data.len() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "offset past the recording",
                ));
            }
            let n = buf.len().min(data.len() - within);
            buf[..n].copy_from_slice(&data[within..within + n]);
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }
}
