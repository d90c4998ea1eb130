//! A virtual MP4 file, built on the fly for any run of frames.
//!
//! Playback and export serve a standard progressive `.mp4` (ISO/IEC
//! 14496-12) with the `moov` box *before* the `mdat` box, so a player can
//! start at once and seek with HTTP Range requests. The file is never
//! materialised: an [`Mp4Plan`] holds only the header bytes (`ftyp`, `moov`
//! and the `mdat` box header) and a list of chunks, each a contiguous range
//! of sample data in some caller-defined *source* (a recording's decrypted
//! sample space). Reads of sample data go through a [`SampleSource`], so
//! the plan itself does no I/O and is cheap to keep and share.
//!
//! Layout of the generated file:
//!
//! ```text
//! ftyp                      isom, mp42 + avc1 / hvc1
//! moov
//!   mvhd                    timescale 90 kHz
//!   trak
//!     tkhd                  track 1, width × height
//!     mdia
//!       mdhd                timescale 90 kHz, language "und"
//!       hdlr                vide
//!       minf
//!         vmhd
//!         dinf/dref/url     self-contained
//!         stbl
//!           stsd            avc1 + avcC, or hvc1 + hvcC
//!           stts            run-length sample durations
//!           stss            key frames (1-based)
//!           stsc            run-length samples per chunk
//!           stsz            per-sample sizes
//!           stco | co64     chunk offsets (co64 once an offset passes 4 GiB)
//! mdat                      64-bit size once the box passes 4 GiB
//!   chunk, chunk, ...       frames contiguous in one source share a chunk
//! ```
//!
//! Every input is validated; bad input is an [`Mp4Error`], never a panic.

use std::fmt;
use std::io;

use sha2::{Digest, Sha256};

use crate::{Codec, FrameInfo, VideoSampleEntry, TIMESCALE};

/// Bumped whenever the bytes produced for the same inputs change, so that
/// ETags of previously served files change with them.
const FORMAT_VERSION: u8 = 1;

/// Seconds from 1904-01-01 (the MP4 epoch) to 1970-01-01.
const MP4_EPOCH_OFFSET: i64 = 2_082_844_800;

/// How much sample data [`Mp4Plan::write_to`] reads from the source at once.
const COPY_BUF_LEN: usize = 256 * 1024;

/// Why an MP4 (or fragmented MP4) could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mp4Error {
    /// There were no frames to put in the file.
    #[error("no frames: an MP4 needs at least one frame")]
    NoFrames,
    /// The first frame is not a key frame, so nothing could be decoded.
    #[error("the first frame is not a key frame; a file must start at a key frame")]
    FirstFrameNotKey,
    /// The sample entry (codec configuration) is unusable.
    #[error("invalid video sample entry: {0}")]
    InvalidSampleEntry(String),
    /// One frame is unusable.
    #[error("invalid frame {index}: {reason}")]
    InvalidFrame { index: usize, reason: String },
    /// A size, offset or count does not fit the format's fields.
    #[error("too large: {0}")]
    TooLarge(String),
}

/// One frame of the requested range and where its data lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramePos {
    /// Duration, size and key-frame flag from the index.
    pub info: FrameInfo,
    /// Opaque id of the frame data's source, e.g. the recording id; passed
    /// back to [`SampleSource::read`].
    pub source: u64,
    /// Byte offset of this frame's data in that source's sample space.
    pub offset: u64,
}

/// Where sample bytes come from (e.g. decrypting a recording's segments).
pub trait SampleSource {
    /// Fills all of `buf` with the source's bytes at `[offset, offset +
    /// buf.len())`. A short source is an error (e.g. `UnexpectedEof`).
    fn read(&mut self, source: u64, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl<S: SampleSource + ?Sized> SampleSource for &mut S {
    fn read(&mut self, source: u64, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read(source, offset, buf)
    }
}

/// A run of sample data contiguous both in the file and in one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Chunk {
    /// Where the chunk starts in the generated file.
    file_offset: u64,
    /// Its length in bytes (never 0).
    len: u64,
    source: u64,
    source_offset: u64,
}

/// A virtual progressive MP4: everything needed to produce any byte range
/// of the file, given a [`SampleSource`] for the frame data.
///
/// Building one costs memory proportional to the number of frames (the
/// `moov` sample tables, about 4–5 bytes per frame, plus one small entry per
/// chunk); reading costs no more than the bytes asked for.
#[derive(Clone)]
pub struct Mp4Plan {
    /// `ftyp` + `moov` + the `mdat` box header.
    header: Vec<u8>,
    /// Sample data, in file order, starting right after `header`.
    chunks: Vec<Chunk>,
    len: u64,
    duration_90k: u64,
    frame_count: u32,
    etag: String,
    content_type: String,
}

impl fmt::Debug for Mp4Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mp4Plan")
            .field("len", &self.len)
            .field("header_len", &self.header.len())
            .field("chunks", &self.chunks.len())
            .field("frame_count", &self.frame_count)
            .field("duration_90k", &self.duration_90k)
            .field("etag", &self.etag)
            .field("content_type", &self.content_type)
            .finish()
    }
}

impl Mp4Plan {
    /// Plans the MP4 for `frames`, given in presentation (= decode: no
    /// B-frames) order. The first frame must be a key frame.
    /// `creation_time` goes into the `mvhd`, `tkhd` and `mdhd` boxes.
    pub fn new(
        entry: &VideoSampleEntry,
        frames: Vec<FramePos>,
        creation_time: jiff::Timestamp,
    ) -> Result<Mp4Plan, Mp4Error> {
        validate_entry(entry)?;
        let first = frames.first().ok_or(Mp4Error::NoFrames)?;
        if !first.info.key {
            return Err(Mp4Error::FirstFrameNotKey);
        }
        let frame_count = u32::try_from(frames.len()).map_err(|_| {
            Mp4Error::TooLarge(format!(
                "{} frames; an MP4 track holds at most {}",
                frames.len(),
                u32::MAX
            ))
        })?;

        // Chunks (offsets relative to the start of the sample data for now),
        // per-chunk sample counts, and totals.
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut samples_per_chunk: Vec<u32> = Vec::new();
        let mut data_len: u64 = 0;
        let mut duration_90k: u64 = 0;
        for (index, f) in frames.iter().enumerate() {
            let bytes = u64::from(f.info.bytes);
            if bytes == 0 {
                return Err(Mp4Error::InvalidFrame {
                    index,
                    reason: "frame has no data (0 bytes)".into(),
                });
            }
            if f.offset.checked_add(bytes).is_none() {
                return Err(Mp4Error::InvalidFrame {
                    index,
                    reason: format!(
                        "offset {} + {} bytes overflows the source's sample space",
                        f.offset, bytes
                    ),
                });
            }
            duration_90k += u64::from(f.info.duration_90k); // < 2^32 * 2^32: no overflow
            match chunks.last_mut() {
                Some(c)
                    if c.source == f.source
                        && c.source_offset.checked_add(c.len) == Some(f.offset) =>
                {
                    c.len += bytes;
                    *samples_per_chunk.last_mut().expect("one count per chunk") += 1;
                }
                _ => {
                    chunks.push(Chunk {
                        file_offset: data_len,
                        len: bytes,
                        source: f.source,
                        source_offset: f.offset,
                    });
                    samples_per_chunk.push(1);
                }
            }
            data_len = data_len
                .checked_add(bytes)
                .ok_or_else(|| Mp4Error::TooLarge("total sample data exceeds 2^64 bytes".into()))?;
        }
        let chunk_count = u32::try_from(chunks.len())
            .map_err(|_| Mp4Error::TooLarge(format!("{} chunks", chunks.len())))?;

        let times = MovieTimes::new(creation_time, duration_90k);
        let tables = Tables {
            frames: &frames,
            samples_per_chunk: &samples_per_chunk,
            chunk_count,
            frame_count,
        };

        // Build with 32-bit chunk offsets; rebuild with 64-bit ones if the
        // last chunk would start past 4 GiB.
        let last_rel = chunks.last().map_or(0, |c| c.file_offset);
        let mut built = build_header(entry, &times, &tables, data_len, false)?;
        if built
            .data_start
            .checked_add(last_rel)
            .is_none_or(|o| o > u64::from(u32::MAX))
        {
            built = build_header(entry, &times, &tables, data_len, true)?;
        }
        let Built {
            mut header,
            data_start,
            offsets_at,
            co64,
        } = built;
        // Patch in the chunk offsets, now that the header's length is known.
        for (i, c) in chunks.iter_mut().enumerate() {
            c.file_offset = data_start
                .checked_add(c.file_offset)
                .ok_or_else(|| Mp4Error::TooLarge("file size exceeds 2^64 bytes".into()))?;
            if co64 {
                let p = offsets_at + 8 * i;
                header[p..p + 8].copy_from_slice(&c.file_offset.to_be_bytes());
            } else {
                let p = offsets_at + 4 * i;
                let o = u32::try_from(c.file_offset)
                    .map_err(|_| Mp4Error::TooLarge("chunk offset does not fit stco".into()))?;
                header[p..p + 4].copy_from_slice(&o.to_be_bytes());
            }
        }
        let len = data_start
            .checked_add(data_len)
            .ok_or_else(|| Mp4Error::TooLarge("file size exceeds 2^64 bytes".into()))?;

        let mut h = Sha256::new();
        h.update([FORMAT_VERSION]);
        h.update((header.len() as u64).to_le_bytes());
        h.update(&header);
        for c in &chunks {
            h.update(c.source.to_le_bytes());
            h.update(c.source_offset.to_le_bytes());
            h.update(c.len.to_le_bytes());
        }
        let digest = h.finalize();
        let mut etag = String::with_capacity(2 + 2 * 20);
        etag.push('"');
        for b in &digest[..20] {
            etag.push_str(&format!("{b:02x}"));
        }
        etag.push('"');

        Ok(Mp4Plan {
            header,
            chunks,
            len,
            duration_90k,
            frame_count,
            etag,
            content_type: format!("video/mp4; codecs=\"{}\"", entry.rfc6381),
        })
    }

    /// Total size of the file in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: a plan has at least one frame. (For clippy's
    /// `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Size of everything before the first sample byte: `ftyp`, `moov` and
    /// the `mdat` box header. `len() == header_len() + sum of frame sizes`.
    pub fn header_len(&self) -> u64 {
        self.header.len() as u64
    }

    /// Number of frames (samples) in the file.
    pub fn frame_count(&self) -> u32 {
        self.frame_count
    }

    /// Total duration, in 90 kHz units.
    pub fn duration_90k(&self) -> u64 {
        self.duration_90k
    }

    /// A strong HTTP entity tag, quoted as the `ETag` header wants it, e.g.
    /// `"3f2a…"`. Equal for equal inputs (a hash of the header bytes and of
    /// each chunk's source, offset and length).
    pub fn etag(&self) -> String {
        self.etag.clone()
    }

    /// The `Content-Type` value, e.g. `video/mp4; codecs="avc1.4d401f"`.
    pub fn content_type(&self) -> String {
        self.content_type.clone()
    }

    /// Reads the file's bytes at `offset` into `buf`, for any offset and
    /// length (HTTP Range requests). Returns the number of bytes filled:
    /// `buf.len()` unless the end of the file comes first; 0 at or past the
    /// end.
    pub fn read_at(
        &self,
        offset: u64,
        buf: &mut [u8],
        src: &mut dyn SampleSource,
    ) -> io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        // Fits usize: no more than buf.len().
        let want = std::cmp::min(buf.len() as u64, self.len - offset) as usize;
        let mut filled = 0usize;
        let mut pos = offset;
        let header_len = self.header.len() as u64;
        if pos < header_len {
            let start = pos as usize;
            let n = std::cmp::min(want, self.header.len() - start);
            buf[..n].copy_from_slice(&self.header[start..start + n]);
            filled = n;
            pos += n as u64;
        }
        if filled < want {
            let mut i = self
                .chunks
                .partition_point(|c| c.file_offset + c.len <= pos);
            while filled < want {
                let c = self.chunks.get(i).ok_or_else(|| {
                    io::Error::other("mp4 plan: read past the last chunk (internal error)")
                })?;
                let within = pos - c.file_offset;
                let n = std::cmp::min(c.len - within, (want - filled) as u64) as usize;
                src.read(
                    c.source,
                    c.source_offset + within,
                    &mut buf[filled..filled + n],
                )?;
                filled += n;
                pos += n as u64;
                i += 1;
            }
        }
        Ok(filled)
    }

    /// Writes the whole file to `out`, calling `progress(done, total)` with
    /// byte counts as it goes (first with `done == 0`, last with `done ==
    /// total`).
    pub fn write_to(
        &self,
        out: &mut dyn io::Write,
        src: &mut dyn SampleSource,
        progress: &mut dyn FnMut(u64, u64),
    ) -> io::Result<()> {
        let total = self.len;
        progress(0, total);
        out.write_all(&self.header)?;
        let mut done = self.header.len() as u64;
        progress(done, total);
        let max_chunk = self.chunks.iter().map(|c| c.len).max().unwrap_or(0);
        let mut buf = vec![0u8; std::cmp::min(max_chunk, COPY_BUF_LEN as u64) as usize];
        for c in &self.chunks {
            let mut within = 0u64;
            while within < c.len {
                let n = std::cmp::min(c.len - within, buf.len() as u64) as usize;
                src.read(c.source, c.source_offset + within, &mut buf[..n])?;
                out.write_all(&buf[..n])?;
                within += n as u64;
                done += n as u64;
                progress(done, total);
            }
        }
        out.flush()
    }
}

/// Checks the sample entry; shared with [`crate::fmp4`].
pub(crate) fn validate_entry(entry: &VideoSampleEntry) -> Result<(), Mp4Error> {
    let bad = |m: String| Err(Mp4Error::InvalidSampleEntry(m));
    if entry.width == 0 || entry.height == 0 {
        return bad(format!(
            "width and height must be non-zero, got {}x{}",
            entry.width, entry.height
        ));
    }
    let record = match entry.codec {
        Codec::H264 => "avcC",
        Codec::H265 => "hvcC",
    };
    match entry.config.first() {
        None => return bad(format!("the {record} configuration record is empty")),
        Some(1) => {}
        Some(v) => {
            return bad(format!(
                "the {record} configuration record starts with version {v}, not 1 \
                 (Annex B parameter sets instead of a decoder configuration record?)"
            ))
        }
    }
    // The record sits in a box inside stsd/trak/moov; leave generous room.
    if entry.config.len() > (u32::MAX / 2) as usize {
        return bad(format!("the {record} record is too large"));
    }
    let prefixes: &[&str] = match entry.codec {
        Codec::H264 => &["avc1", "avc3"],
        Codec::H265 => &["hvc1", "hev1"],
    };
    let codec_tag = entry.rfc6381.split('.').next().unwrap_or("");
    if !prefixes.contains(&codec_tag) {
        return bad(format!(
            "RFC 6381 codec string {:?} does not name a {:?} codec ({})",
            entry.rfc6381,
            entry.codec,
            prefixes.join(" or ")
        ));
    }
    if let Some(c) = entry
        .rfc6381
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return bad(format!(
            "RFC 6381 codec string {:?} contains {c:?}",
            entry.rfc6381
        ));
    }
    Ok(())
}

/// Writes ISO BMFF boxes into a byte buffer, filling in box sizes.
pub(crate) struct BoxWriter {
    pub(crate) buf: Vec<u8>,
    open: Vec<usize>,
}

impl BoxWriter {
    pub(crate) fn new() -> Self {
        BoxWriter {
            buf: Vec::new(),
            open: Vec::new(),
        }
    }

    /// Opens a box; its size is filled in by [`BoxWriter::end`].
    pub(crate) fn start(&mut self, fourcc: &[u8; 4]) {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(fourcc);
    }

    /// Opens a full box (with version and flags).
    pub(crate) fn start_full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) {
        self.start(fourcc);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
    }

    /// Closes the innermost open box.
    pub(crate) fn end(&mut self) -> Result<(), Mp4Error> {
        let start = self.open.pop().expect("BoxWriter::end without start");
        let size = self.buf.len() - start;
        let size = u32::try_from(size).map_err(|_| {
            let name = String::from_utf8_lossy(&self.buf[start + 4..start + 8]).into_owned();
            Mp4Error::TooLarge(format!("the {name} box would be {size} bytes (max 4 GiB)"))
        })?;
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
        Ok(())
    }

    /// Returns the bytes; all boxes must be closed.
    pub(crate) fn finish(self) -> Vec<u8> {
        debug_assert!(self.open.is_empty(), "BoxWriter: unclosed boxes");
        self.buf
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
}

/// The unity matrix of `mvhd` and `tkhd`.
const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Creation time and duration, as the movie, track and media headers want
/// them.
pub(crate) struct MovieTimes {
    /// Seconds since 1904-01-01 (clamped at 0).
    pub(crate) created: u64,
    pub(crate) duration_90k: u64,
}

impl MovieTimes {
    pub(crate) fn new(creation_time: jiff::Timestamp, duration_90k: u64) -> Self {
        let created = creation_time
            .as_second()
            .saturating_add(MP4_EPOCH_OFFSET)
            .max(0) as u64;
        MovieTimes {
            created,
            duration_90k,
        }
    }

    /// Version 1 (64-bit fields) only when a value does not fit 32 bits.
    fn version(&self) -> u8 {
        u8::from(self.created > u64::from(u32::MAX) || self.duration_90k > u64::from(u32::MAX))
    }

    /// creation_time, modification_time; then `mid` (timescale or track
    /// id + reserved); then duration — in version 0 or 1 layout.
    fn write(&self, w: &mut BoxWriter, mid: &[u32]) {
        let v1 = self.version() == 1;
        for _ in 0..2 {
            if v1 {
                w.u64(self.created);
            } else {
                w.u32(self.created as u32);
            }
        }
        for &m in mid {
            w.u32(m);
        }
        if v1 {
            w.u64(self.duration_90k);
        } else {
            w.u32(self.duration_90k as u32);
        }
    }
}

/// `mvhd` (ISO/IEC 14496-12 8.2.2).
pub(crate) fn write_mvhd(w: &mut BoxWriter, t: &MovieTimes) -> Result<(), Mp4Error> {
    w.start_full(b"mvhd", t.version(), 0);
    t.write(w, &[TIMESCALE]);
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(2 + 8); // reserved
    for m in UNITY_MATRIX {
        w.u32(m);
    }
    w.zeros(6 * 4); // pre_defined
    w.u32(2); // next_track_ID
    w.end()
}

/// `tkhd` (8.3.2) for the one video track, track id 1.
pub(crate) fn write_tkhd(
    w: &mut BoxWriter,
    t: &MovieTimes,
    entry: &VideoSampleEntry,
) -> Result<(), Mp4Error> {
    // flags: track_enabled | track_in_movie | track_in_preview
    w.start_full(b"tkhd", t.version(), 0x7);
    t.write(w, &[1, 0]); // track_ID, reserved
    w.zeros(8); // reserved
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(0); // volume: 0 for video
    w.u16(0); // reserved
    for m in UNITY_MATRIX {
        w.u32(m);
    }
    w.u32(u32::from(entry.width) << 16); // 16.16 fixed point
    w.u32(u32::from(entry.height) << 16);
    w.end()
}

/// `mdhd` (8.4.2) + `hdlr` (8.4.3) + the start of `minf` with `vmhd`
/// (12.1.2) and `dinf` (8.7.1). Leaves `mdia` and `minf` open: the caller
/// writes `stbl` and closes both.
pub(crate) fn start_mdia(w: &mut BoxWriter, t: &MovieTimes) -> Result<(), Mp4Error> {
    w.start(b"mdia");
    w.start_full(b"mdhd", t.version(), 0);
    t.write(w, &[TIMESCALE]);
    w.u16(0x55c4); // language "und", packed ISO-639-2/T
    w.u16(0); // pre_defined
    w.end()?;

    w.start_full(b"hdlr", 0, 0);
    w.u32(0); // pre_defined
    w.bytes(b"vide");
    w.zeros(12); // reserved
    w.bytes(b"Porchlight video\0");
    w.end()?;

    w.start(b"minf");
    w.start_full(b"vmhd", 0, 1);
    w.u16(0); // graphicsmode: copy
    w.zeros(6); // opcolor
    w.end()?;
    w.start(b"dinf");
    w.start_full(b"dref", 0, 0);
    w.u32(1); // entry_count
    w.start_full(b"url ", 0, 1); // self-contained: data in this file
    w.end()?;
    w.end()?; // dref
    w.end() // dinf
}

/// `stsd` (8.5.2) with one `avc1` + `avcC` or `hvc1` + `hvcC` entry.
pub(crate) fn write_stsd(w: &mut BoxWriter, entry: &VideoSampleEntry) -> Result<(), Mp4Error> {
    w.start_full(b"stsd", 0, 0);
    w.u32(1); // entry_count
    let (fourcc, record) = match entry.codec {
        Codec::H264 => (b"avc1", b"avcC"),
        Codec::H265 => (b"hvc1", b"hvcC"),
    };
    // VisualSampleEntry (8.5.2.2 / 12.1.3).
    w.start(fourcc);
    w.zeros(6); // reserved
    w.u16(1); // data_reference_index
    w.u16(0); // pre_defined
    w.u16(0); // reserved
    w.zeros(12); // pre_defined
    w.u16(entry.width);
    w.u16(entry.height);
    w.u32(0x0048_0000); // horizresolution: 72 dpi
    w.u32(0x0048_0000); // vertresolution: 72 dpi
    w.u32(0); // reserved
    w.u16(1); // frame_count: one frame per sample
    w.zeros(32); // compressorname: empty Pascal string
    w.u16(0x0018); // depth: colour, no alpha
    w.u16(0xffff); // pre_defined = -1
    w.start(record);
    w.bytes(&entry.config);
    w.end()?;
    w.end()?; // sample entry
    w.end() // stsd
}

/// Inputs to the sample table boxes.
struct Tables<'a> {
    frames: &'a [FramePos],
    samples_per_chunk: &'a [u32],
    chunk_count: u32,
    frame_count: u32,
}

/// The header of a plan, before the chunk offsets are filled in.
struct Built {
    header: Vec<u8>,
    /// File offset of the first sample byte (== header length).
    data_start: u64,
    /// Position of the first chunk offset in `header`.
    offsets_at: usize,
    co64: bool,
}

/// Builds `ftyp` + `moov` + the `mdat` header, with zeroed chunk offsets.
fn build_header(
    entry: &VideoSampleEntry,
    times: &MovieTimes,
    tables: &Tables<'_>,
    data_len: u64,
    co64: bool,
) -> Result<Built, Mp4Error> {
    let frames = tables.frames;
    let mut w = BoxWriter::new();
    w.buf.reserve(
        1024 + entry.config.len()
            + frames.len() * 4
            + tables.samples_per_chunk.len() * if co64 { 8 } else { 4 },
    );

    w.start(b"ftyp");
    w.bytes(b"isom"); // major_brand
    w.u32(0x200); // minor_version
    w.bytes(b"isom");
    w.bytes(b"iso2");
    w.bytes(b"mp41");
    w.bytes(b"mp42");
    w.bytes(match entry.codec {
        Codec::H264 => b"avc1",
        Codec::H265 => b"hvc1",
    });
    w.end()?;

    w.start(b"moov");
    write_mvhd(&mut w, times)?;
    w.start(b"trak");
    write_tkhd(&mut w, times, entry)?;
    start_mdia(&mut w, times)?;
    w.start(b"stbl");
    write_stsd(&mut w, entry)?;

    // stts: run-length durations.
    w.start_full(b"stts", 0, 0);
    let count_at = w.buf.len();
    w.u32(0);
    let mut entries = 0u32;
    let mut run: Option<(u32, u32)> = None; // (count, delta)
    for f in frames {
        let d = f.info.duration_90k;
        match &mut run {
            Some((n, delta)) if *delta == d => *n += 1,
            _ => {
                if let Some((n, delta)) = run {
                    w.u32(n);
                    w.u32(delta);
                    entries += 1;
                }
                run = Some((1, d));
            }
        }
    }
    if let Some((n, delta)) = run {
        w.u32(n);
        w.u32(delta);
        entries += 1;
    }
    w.buf[count_at..count_at + 4].copy_from_slice(&entries.to_be_bytes());
    w.end()?;

    // stss: 1-based numbers of key frames.
    w.start_full(b"stss", 0, 0);
    let count_at = w.buf.len();
    w.u32(0);
    let mut keys = 0u32;
    for (i, f) in frames.iter().enumerate() {
        if f.info.key {
            w.u32(i as u32 + 1); // frames.len() <= u32::MAX checked
            keys += 1;
        }
    }
    w.buf[count_at..count_at + 4].copy_from_slice(&keys.to_be_bytes());
    w.end()?;

    // stsc: run-length samples per chunk, all with sample entry 1.
    w.start_full(b"stsc", 0, 0);
    let count_at = w.buf.len();
    w.u32(0);
    let mut entries = 0u32;
    let mut prev = None;
    for (i, &n) in tables.samples_per_chunk.iter().enumerate() {
        if prev != Some(n) {
            w.u32(i as u32 + 1); // first_chunk; chunk count <= frame count
            w.u32(n);
            w.u32(1); // sample_description_index
            entries += 1;
            prev = Some(n);
        }
    }
    w.buf[count_at..count_at + 4].copy_from_slice(&entries.to_be_bytes());
    w.end()?;

    // stsz: per-sample sizes.
    w.start_full(b"stsz", 0, 0);
    w.u32(0); // sample_size: varies
    w.u32(tables.frame_count);
    for f in frames {
        w.u32(f.info.bytes);
    }
    w.end()?;

    // stco / co64: placeholders, patched by the caller.
    w.start_full(if co64 { b"co64" } else { b"stco" }, 0, 0);
    w.u32(tables.chunk_count);
    let offsets_at = w.buf.len();
    w.zeros(tables.samples_per_chunk.len() * if co64 { 8 } else { 4 });
    w.end()?;

    w.end()?; // stbl
    w.end()?; // minf
    w.end()?; // mdia
    w.end()?; // trak
    w.end()?; // moov

    // mdat header; the 64-bit form only when needed.
    match data_len.checked_add(8).map(u32::try_from) {
        Some(Ok(size)) => {
            w.u32(size);
            w.bytes(b"mdat");
        }
        _ => {
            let size = data_len
                .checked_add(16)
                .ok_or_else(|| Mp4Error::TooLarge("mdat exceeds 2^64 bytes".into()))?;
            w.u32(1); // size 1: largesize follows
            w.bytes(b"mdat");
            w.u64(size);
        }
    }
    let header = w.finish();
    Ok(Built {
        data_start: header.len() as u64,
        header,
        offsets_at,
        co64,
    })
}
