//! # porchlight-media
//!
//! The formats on the media path, free of I/O policy and of any camera or
//! network code, so they can be tested and fuzzed on their own:
//!
//! * [`index`] — the compact per-frame index (duration, size, key-frame
//!   flag) kept for every recording.
//! * [`segment`] — the segment file: about a minute of one camera's
//!   samples, written as independently sealed records (a GOP, or a part of
//!   one up to a size bound) so a crash loses at most the record in memory,
//!   and encrypted to the household's keys.
//! * [`mp4`] — a virtual MP4 (moov before mdat) built on the fly from the
//!   index for any time range, readable at any byte offset (HTTP Range).
//! * [`fmp4`] — fragmented MP4 (init segment + fragments) for the live view
//!   and the web player.
//!
//! Invariants: samples are stored exactly as the camera sent them (H.264 /
//! H.265 access units in length-prefixed "AVC" form), never transcoded;
//! times are 90 kHz ticks; nothing here writes plaintext video to disk.

#![forbid(unsafe_code)]

pub mod fmp4;
pub mod index;
pub mod mp4;
pub mod nal;
pub mod segment;

/// The media clock: 90 kHz, as RTP video and MP4 tracks here use.
pub const TIMESCALE: u32 = 90_000;

/// One frame's entry in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FrameInfo {
    /// How long the frame is shown, in 90 kHz ticks.
    pub duration_90k: u32,
    /// Size of the frame's sample data in bytes.
    pub bytes: u32,
    /// A key frame (IDR / IRAP): decoding can start here.
    pub key: bool,
}

/// Video codecs Porchlight records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

/// What a decoder needs before the first frame: the MP4 sample entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoSampleEntry {
    pub codec: Codec,
    pub width: u16,
    pub height: u16,
    /// The codec configuration record: `AVCDecoderConfigurationRecord`
    /// (avcC) for H.264, `HEVCDecoderConfigurationRecord` (hvcC) for H.265
    /// — as the `retina` crate's `VideoParameters::extra_data()` returns it.
    pub config: Vec<u8>,
    /// RFC 6381 codec string, e.g. `avc1.4d401f`, for MSE and HTTP.
    pub rfc6381: String,
}
