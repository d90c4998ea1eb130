//! Decoding of a camera's frames for analysis into [`Frame`]s that own
//! their planes; plus the conversions analysis needs from a frame: a small
//! box-filtered luma plane for motion ([`Frame::luma_scaled`]), RGB for the
//! object detector ([`Frame::to_rgb`], [`Frame::crop_rgb`]) and JPEG for
//! snapshots and thumbnails ([`Frame::to_jpeg`]).
//!
//! Two backends ([`Backend`]) sit behind one [`VideoDecoder`]:
//! - OpenH264 (the `openh264` crate, built from its bundled source; always
//!   there, nothing but cargo needed): H.264 without B-frames, what camera
//!   sub-streams send (Baseline, or Main/High with only I and P slices).
//! - libavcodec (the `ffmpeg-next` crate, only in a build with
//!   `--features ffmpeg`, linked to the system's FFmpeg libraries): H.264
//!   of any profile, B-frames included, and H.265. When built in, it
//!   decodes every stream (see `design/detection.md`, "Decoding").
//!
//! Input is what the recorder fans out: an access unit as length-prefixed
//! NAL units (4-byte big-endian lengths) and the stream's
//! [`VideoSampleEntry`] (its avcC or hvcC record carries the parameter
//! sets).
//!
//! Invariants:
//! - Never panics on bad input: malformed length prefixes, corrupt slices,
//!   missing parameter sets and unsupported codecs are [`DecodeError`]s.
//! - What this build cannot decode is a [`DecodeError::Unsupported`] whose
//!   text says what to do (an H.265 stream, or B-frames with OpenH264):
//!   it will not change until the stream does, so callers report it once.
//! - Parameter sets from the sample entry are fed before the first key
//!   frame and again whenever the entry's set changes (a camera that
//!   changes resolution); in-band parameter sets are passed through.
//! - After an error (or at start) the decoder outputs nothing until the
//!   next key frame (IDR, or IRAP for H.265): it never hands out pictures
//!   predicted from a broken reference.
//! - Pictures come out in display order with the timestamp given with the
//!   access unit that carried them ([`VideoDecoder::decode_at`]): with
//!   B-frames that is not the access unit just fed, and a picture may
//!   come out one or two access units later.
//! - Colour conversion assumes BT.601 limited range, what IP cameras send.

use image::RgbImage;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::formats::YUVSource;
use openh264::OpenH264API;
use porchlight_media::{Codec, VideoSampleEntry};

#[cfg(feature = "ffmpeg")]
mod libav;

/// What [`DecodeError::Unsupported`] says of an H.265 stream in a build
/// without the ffmpeg backend.
pub const H265_NEEDS_FFMPEG: &str =
    "H.265 needs a build with --features ffmpeg; add an H.264 sub-stream";

/// What [`DecodeError::Unsupported`] says of an H.264 stream with
/// B-frames given to OpenH264.
pub const B_FRAMES_NEED_FFMPEG: &str = "H.264 with B-frames needs a build with --features ffmpeg; \
     add a sub-stream without B-frames (H.264 Baseline, or B-frames off in the camera)";

/// What [`DecodeError::Unsupported`] says when the ffmpeg backend is
/// asked for in a build without it.
pub const NO_FFMPEG_BACKEND: &str = "the ffmpeg decoder is not in this build (--features ffmpeg)";

/// Why a frame could not be decoded or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A stream this build cannot decode; the text says what to do. It
    /// stays so until the stream changes.
    #[error("unsupported video: {0}")]
    Unsupported(&'static str),
    /// The codec configuration (avcC or hvcC) cannot be read.
    #[error("bad codec configuration: {0}")]
    BadConfig(String),
    /// The access unit is not well-formed length-prefixed NAL units.
    #[error("malformed access unit: {0}")]
    Malformed(String),
    /// The decoder rejected the data (corrupt or undecodable bitstream);
    /// the decoder waits for the next key frame.
    #[error("corrupt video frame: {0}")]
    Corrupt(String),
    /// A plane or image size that does not fit.
    #[error("bad picture: {0}")]
    BadPicture(String),
    /// JPEG encoding failed.
    #[error("JPEG encoding failed: {0}")]
    Jpeg(String),
}

/// NAL units, each without start code or length.
pub type NalUnits = Vec<Vec<u8>>;

/// The SPS and PPS NAL units (without start codes or lengths) of an
/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15, 5.3.3.1).
pub fn avcc_parameter_sets(avcc: &[u8]) -> Result<(NalUnits, NalUnits), DecodeError> {
    let bad = |what: &str| DecodeError::BadConfig(format!("avcC: {what}"));
    if avcc.len() < 7 {
        return Err(bad(&format!("{} bytes, too short", avcc.len())));
    }
    if avcc[0] != 1 {
        return Err(bad(&format!(
            "configurationVersion {} (expected 1)",
            avcc[0]
        )));
    }
    let mut at = 5;
    let read_sets = |at: &mut usize, count: usize, kind: &str| {
        let mut sets = Vec::with_capacity(count);
        for i in 0..count {
            let len_bytes = avcc
                .get(*at..*at + 2)
                .ok_or_else(|| bad(&format!("{kind} {i}: length cut off")))?;
            let len = u16::from_be_bytes([len_bytes[0], len_bytes[1]]) as usize;
            let nal = avcc
                .get(*at + 2..*at + 2 + len)
                .ok_or_else(|| bad(&format!("{kind} {i}: {len} bytes announced, fewer present")))?;
            if nal.is_empty() {
                return Err(bad(&format!("{kind} {i} is empty")));
            }
            sets.push(nal.to_vec());
            *at += 2 + len;
        }
        Ok(sets)
    };
    let num_sps = (avcc[at] & 0x1f) as usize;
    at += 1;
    let sps = read_sets(&mut at, num_sps, "SPS")?;
    let num_pps = *avcc.get(at).ok_or_else(|| bad("PPS count cut off"))? as usize;
    at += 1;
    let pps = read_sets(&mut at, num_pps, "PPS")?;
    if sps.is_empty() || pps.is_empty() {
        return Err(bad("no SPS or no PPS"));
    }
    Ok((sps, pps))
}

/// The VPS, SPS and PPS NAL units (in that order, without lengths) of an
/// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15, 8.3.3.1); other
/// arrays (SEI) are skipped.
pub fn hvcc_parameter_sets(hvcc: &[u8]) -> Result<NalUnits, DecodeError> {
    let bad = |what: &str| DecodeError::BadConfig(format!("hvcC: {what}"));
    if hvcc.len() < 23 {
        return Err(bad(&format!("{} bytes, too short", hvcc.len())));
    }
    if hvcc[0] != 1 {
        return Err(bad(&format!(
            "configurationVersion {} (expected 1)",
            hvcc[0]
        )));
    }
    let num_arrays = hvcc[22] as usize;
    let mut at = 23;
    let mut by_type: [NalUnits; 3] = Default::default();
    for a in 0..num_arrays {
        let head = hvcc
            .get(at..at + 3)
            .ok_or_else(|| bad(&format!("array {a} cut off")))?;
        let nal_type = head[0] & 0x3f;
        let count = u16::from_be_bytes([head[1], head[2]]) as usize;
        at += 3;
        for i in 0..count {
            let len_bytes = hvcc
                .get(at..at + 2)
                .ok_or_else(|| bad(&format!("array {a} NAL {i}: length cut off")))?;
            let len = u16::from_be_bytes([len_bytes[0], len_bytes[1]]) as usize;
            let nal = hvcc.get(at + 2..at + 2 + len).ok_or_else(|| {
                bad(&format!(
                    "array {a} NAL {i}: {len} bytes announced, fewer present"
                ))
            })?;
            if nal.len() < 2 {
                return Err(bad(&format!("array {a} NAL {i}: {len} bytes")));
            }
            if (32..=34).contains(&nal_type) {
                by_type[usize::from(nal_type - 32)].push(nal.to_vec());
            }
            at += 2 + len;
        }
    }
    for (sets, name) in by_type.iter().zip(["VPS", "SPS", "PPS"]) {
        if sets.is_empty() {
            return Err(bad(&format!("no {name}")));
        }
    }
    Ok(by_type.into_iter().flatten().collect())
}

/// The NAL units of a length-prefixed (4-byte big-endian) access unit.
pub fn split_nal_units(data: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(DecodeError::Malformed(format!(
                "{} stray bytes after the last NAL unit",
                rest.len()
            )));
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let nal = rest.get(4..4 + len).ok_or_else(|| {
            DecodeError::Malformed(format!(
                "NAL unit of {len} bytes announced, {} present",
                rest.len() - 4
            ))
        })?;
        if nal.is_empty() {
            return Err(DecodeError::Malformed("empty NAL unit".into()));
        }
        if nal[0] & 0x80 != 0 {
            return Err(DecodeError::Malformed(
                "NAL unit with forbidden_zero_bit set".into(),
            ));
        }
        out.push(nal);
        rest = &rest[4 + len..];
    }
    if out.is_empty() {
        return Err(DecodeError::Malformed("no NAL units".into()));
    }
    Ok(out)
}

/// Whether an access unit (its NAL units) starts a picture that needs no
/// earlier one: an IDR slice for H.264, an IRAP picture (BLA, IDR, CRA)
/// for H.265.
pub fn is_key_frame(codec: Codec, nals: &[&[u8]]) -> bool {
    match codec {
        Codec::H264 => nals.iter().any(|n| n[0] & 0x1f == 5),
        Codec::H265 => nals
            .iter()
            .any(|n| (16..=23).contains(&((n[0] >> 1) & 0x3f))),
    }
}

/// Reads Exp-Golomb codes from the start of a NAL unit's payload, with
/// emulation prevention bytes (`00 00 03`) removed.
struct BitReader {
    bytes: Vec<u8>,
    bit: usize,
}

impl BitReader {
    /// The first `max` payload bytes of `rbsp_with_emulation`.
    fn new(rbsp_with_emulation: &[u8], max: usize) -> BitReader {
        let mut bytes = Vec::with_capacity(max);
        let mut zeros = 0;
        for &b in rbsp_with_emulation {
            if bytes.len() == max {
                break;
            }
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            bytes.push(b);
        }
        BitReader { bytes, bit: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = *self.bytes.get(self.bit / 8)?;
        let v = (byte >> (7 - self.bit % 8)) & 1;
        self.bit += 1;
        Some(u32::from(v))
    }

    /// ue(v); `None` when the data ends or the code is longer than 31 bits.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let mut v = 1u64;
        for _ in 0..zeros {
            v = (v << 1) | u64::from(self.bit()?);
        }
        u32::try_from(v - 1).ok()
    }
}

/// The `slice_type` (0–9, ITU-T H.264 7.4.3) of an H.264 coded slice NAL
/// unit (types 1 and 5), `None` for other NAL units or a header cut off.
pub fn h264_slice_type(nal: &[u8]) -> Option<u32> {
    if !matches!(nal.first()? & 0x1f, 1 | 5) {
        return None;
    }
    let mut r = BitReader::new(&nal[1..], 12);
    let _first_mb_in_slice = r.ue()?;
    r.ue().filter(|&t| t <= 9)
}

/// Whether an H.264 access unit holds a B slice (`slice_type` 1 or 6).
pub fn h264_has_b_slice(nals: &[&[u8]]) -> bool {
    nals.iter()
        .any(|n| matches!(h264_slice_type(n), Some(1 | 6)))
}

/// The `profile_idc` of an H.264 SPS NAL unit.
fn h264_profile(sps: &[u8]) -> Option<u8> {
    (sps.first()? & 0x1f == 7).then(|| sps.get(1).copied())?
}

fn push_annexb(out: &mut Vec<u8>, nal: &[u8]) {
    out.extend_from_slice(&[0, 0, 0, 1]);
    out.extend_from_slice(nal);
}

/// Which library decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// OpenH264, bundled: H.264 without B-frames.
    OpenH264,
    /// libavcodec through `ffmpeg-next` (`--features ffmpeg`): H.264 and
    /// H.265, B-frames included.
    Ffmpeg,
}

impl Backend {
    /// What [`VideoDecoder::new`] uses: libavcodec when built in, for every
    /// stream; OpenH264 otherwise.
    pub const DEFAULT: Backend = if cfg!(feature = "ffmpeg") {
        Backend::Ffmpeg
    } else {
        Backend::OpenH264
    };

    /// Whether this build has the backend.
    pub fn available(self) -> bool {
        match self {
            Backend::OpenH264 => true,
            Backend::Ffmpeg => cfg!(feature = "ffmpeg"),
        }
    }

    /// `openh264` or `ffmpeg`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::OpenH264 => "openh264",
            Backend::Ffmpeg => "ffmpeg",
        }
    }
}

/// A decoded picture and the timestamp of the access unit that carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub t_us: i64,
    pub frame: Frame,
}

/// The parameter sets of the stream being decoded: VPS (H.265), SPS and
/// PPS NAL units in feeding order, and the bytes they came from (the
/// codec configuration record), to tell when they change.
#[derive(Debug)]
struct ParamSets {
    codec: Codec,
    nals: NalUnits,
    key: Vec<u8>,
    /// An H.264 SPS with profile_idc 66 (Baseline): it cannot have B
    /// slices, no need to look for them.
    baseline: bool,
}

impl ParamSets {
    fn of(entry: &VideoSampleEntry) -> Result<ParamSets, DecodeError> {
        let nals = match entry.codec {
            Codec::H264 => {
                let (sps, pps) = avcc_parameter_sets(&entry.config)?;
                sps.into_iter().chain(pps).collect()
            }
            Codec::H265 => hvcc_parameter_sets(&entry.config)?,
        };
        Ok(ParamSets::new(entry.codec, nals, entry.config.clone()))
    }

    fn new(codec: Codec, nals: NalUnits, key: Vec<u8>) -> ParamSets {
        let baseline =
            codec == Codec::H264 && nals.iter().filter_map(|n| h264_profile(n)).all(|p| p == 66);
        ParamSets {
            codec,
            nals,
            key,
            baseline,
        }
    }
}

enum Inner {
    OpenH264(OpenH264Decoder),
    #[cfg(feature = "ffmpeg")]
    Libav(libav::LibavDecoder),
}

/// A decoder for one camera's stream. Feed it every access unit in
/// decoding order (analysis may then skip decoded pictures; a P-frame
/// cannot be skipped before decoding).
pub struct VideoDecoder {
    inner: Inner,
    params: Option<ParamSets>,
    /// Timestamps for [`VideoDecoder::decode`], which is given none.
    auto_t: i64,
}

impl std::fmt::Debug for VideoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoDecoder")
            .field("backend", &self.backend())
            .field("need_key", &self.waiting_for_key_frame())
            .finish_non_exhaustive()
    }
}

impl Default for VideoDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl VideoDecoder {
    /// A decoder with this build's [`Backend::DEFAULT`], waiting for its
    /// first key frame. The library itself is set up lazily, at the first
    /// key frame.
    pub fn new() -> VideoDecoder {
        Self::with_backend(Backend::DEFAULT).expect("the default backend is built in")
    }

    /// A decoder with the given backend; an error when this build does
    /// not have it.
    pub fn with_backend(backend: Backend) -> Result<VideoDecoder, DecodeError> {
        let inner = match backend {
            Backend::OpenH264 => Inner::OpenH264(OpenH264Decoder::new()),
            #[cfg(feature = "ffmpeg")]
            Backend::Ffmpeg => Inner::Libav(libav::LibavDecoder::new()),
            #[cfg(not(feature = "ffmpeg"))]
            Backend::Ffmpeg => return Err(DecodeError::Unsupported(NO_FFMPEG_BACKEND)),
        };
        Ok(VideoDecoder {
            inner,
            params: None,
            auto_t: 0,
        })
    }

    /// The library decoding.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::OpenH264(_) => Backend::OpenH264,
            #[cfg(feature = "ffmpeg")]
            Inner::Libav(_) => Backend::Ffmpeg,
        }
    }

    /// True until a key frame has been decoded (at start and after an
    /// error): non-key frames are skipped meanwhile.
    pub fn waiting_for_key_frame(&self) -> bool {
        match &self.inner {
            Inner::OpenH264(d) => d.need_key,
            #[cfg(feature = "ffmpeg")]
            Inner::Libav(d) => d.waiting_for_key_frame(),
        }
    }

    /// Decodes one access unit of the stream described by `entry` and
    /// returns the next picture in display order, if there is one.
    /// `Ok(None)`: no picture yet (waiting for a key frame, or the decoder
    /// holds it back to reorder B-frames). An error leaves the decoder
    /// waiting for the next key frame.
    ///
    /// Without B-frames the picture is the one this access unit carried;
    /// with them use [`VideoDecoder::decode_at`] to know which it is.
    pub fn decode(
        &mut self,
        data: &[u8],
        entry: &VideoSampleEntry,
    ) -> Result<Option<Frame>, DecodeError> {
        let t = self.auto_t;
        self.auto_t += 1;
        Ok(self.decode_at(data, entry, t)?.map(|d| d.frame))
    }

    /// [`VideoDecoder::decode`] of the access unit shown at `t_us`
    /// (its presentation time, any epoch): the picture comes with the
    /// timestamp of the access unit that carried it.
    pub fn decode_at(
        &mut self,
        data: &[u8],
        entry: &VideoSampleEntry,
        t_us: i64,
    ) -> Result<Option<Decoded>, DecodeError> {
        if entry.codec == Codec::H265 && self.backend() == Backend::OpenH264 {
            return Err(DecodeError::Unsupported(H265_NEEDS_FFMPEG));
        }
        // Parse the parameter sets only when they change.
        let current = self
            .params
            .as_ref()
            .is_some_and(|p| p.codec == entry.codec && p.key == entry.config);
        if !current {
            self.params = None;
            self.params = Some(ParamSets::of(entry)?);
        }
        self.decode_inner(data, t_us)
    }

    /// [`VideoDecoder::decode`] of an H.264 stream with the SPS and PPS
    /// given directly (NAL units without start codes); they are fed when
    /// they change.
    pub fn decode_with_parameter_sets(
        &mut self,
        data: &[u8],
        sps: &[u8],
        pps: &[u8],
    ) -> Result<Option<Frame>, DecodeError> {
        let key: Vec<u8> = [&(sps.len() as u32).to_be_bytes()[..], sps, pps].concat();
        let current = self
            .params
            .as_ref()
            .is_some_and(|p| p.codec == Codec::H264 && p.key == key);
        if !current {
            self.params = Some(ParamSets::new(
                Codec::H264,
                vec![sps.to_vec(), pps.to_vec()],
                key,
            ));
        }
        let t = self.auto_t;
        self.auto_t += 1;
        Ok(self.decode_inner(data, t)?.map(|d| d.frame))
    }

    /// The pictures the decoder still holds back (B-frame reordering), at
    /// the end of a stream or to get the picture of a lone key frame (a
    /// still); the decoder then waits for a key frame.
    pub fn flush(&mut self) -> Vec<Decoded> {
        match &mut self.inner {
            Inner::OpenH264(d) => {
                d.reset();
                Vec::new()
            }
            #[cfg(feature = "ffmpeg")]
            Inner::Libav(d) => d.flush(),
        }
    }

    /// Decodes a lone key frame (a still picture) and returns its picture,
    /// with no picture held back.
    pub fn decode_still(
        &mut self,
        data: &[u8],
        entry: &VideoSampleEntry,
    ) -> Result<Frame, DecodeError> {
        let got = self.decode_at(data, entry, 0)?;
        let held = self.flush();
        got.into_iter()
            .chain(held)
            .next()
            .map(|d| d.frame)
            .ok_or_else(|| DecodeError::Corrupt("the key frame gave no picture".into()))
    }

    fn decode_inner(&mut self, data: &[u8], t_us: i64) -> Result<Option<Decoded>, DecodeError> {
        let params = self.params.as_ref().expect("set by the caller");
        match &mut self.inner {
            Inner::OpenH264(d) => d.decode(data, params, t_us),
            #[cfg(feature = "ffmpeg")]
            Inner::Libav(d) => d.decode(data, params, t_us),
        }
    }
}

/// The OpenH264 backend.
struct OpenH264Decoder {
    dec: Option<Decoder>,
    /// The parameter sets last fed to `dec` (their key).
    fed: Option<Vec<u8>>,
    /// Output nothing until an IDR has been decoded.
    need_key: bool,
    annexb: Vec<u8>,
}

impl OpenH264Decoder {
    fn new() -> OpenH264Decoder {
        OpenH264Decoder {
            dec: None,
            fed: None,
            need_key: true,
            annexb: Vec::new(),
        }
    }

    /// Start afresh at the next key frame: a new OpenH264 instance (its
    /// state after a bitstream error is not to be trusted) fed the
    /// parameter sets again.
    fn reset(&mut self) {
        self.dec = None;
        self.fed = None;
        self.need_key = true;
    }

    fn decode(
        &mut self,
        data: &[u8],
        params: &ParamSets,
        t_us: i64,
    ) -> Result<Option<Decoded>, DecodeError> {
        let result = self.try_decode(data, params, t_us);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn try_decode(
        &mut self,
        data: &[u8],
        params: &ParamSets,
        t_us: i64,
    ) -> Result<Option<Decoded>, DecodeError> {
        let nals = split_nal_units(data)?;
        // B slices are refused: this backend hands out one picture per
        // access unit, in decoding order, with that unit's time, which
        // B-frames (display order ≠ decoding order) break. A Baseline SPS
        // cannot have them.
        if !params.baseline && h264_has_b_slice(&nals) {
            return Err(DecodeError::Unsupported(B_FRAMES_NEED_FFMPEG));
        }
        let is_key = is_key_frame(Codec::H264, &nals);
        if self.need_key && !is_key {
            return Ok(None);
        }
        self.annexb.clear();
        if self.fed.as_deref() != Some(&params.key[..]) {
            for nal in &params.nals {
                push_annexb(&mut self.annexb, nal);
            }
            self.fed = Some(params.key.clone());
        }
        for nal in &nals {
            push_annexb(&mut self.annexb, nal);
        }
        if self.dec.is_none() {
            let dec = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
                .map_err(|e| DecodeError::Corrupt(format!("cannot start OpenH264: {e}")))?;
            self.dec = Some(dec);
        }
        let dec = self.dec.as_mut().expect("set above");
        let pic = dec
            .decode(&self.annexb)
            .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
        let Some(pic) = pic else {
            return Ok(None);
        };
        let (w, h) = pic.dimensions();
        let (ys, us, vs) = pic.strides();
        let frame = Frame::from_planes(w, h, (pic.y(), pic.u(), pic.v()), (ys, us, vs))?;
        if is_key {
            self.need_key = false;
        }
        Ok(Some(Decoded { t_us, frame }))
    }
}

/// A small luma (grey) plane, rows packed (`data.len() == w * h`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LumaPlane {
    pub w: u32,
    pub h: u32,
    pub data: Vec<u8>,
}

impl LumaPlane {
    /// Checks that `data` holds `w * h` bytes and the size is not zero.
    pub fn new(w: u32, h: u32, data: Vec<u8>) -> Result<LumaPlane, DecodeError> {
        if w == 0 || h == 0 || data.len() != w as usize * h as usize {
            return Err(DecodeError::BadPicture(format!(
                "luma plane {w}x{h} with {} bytes",
                data.len()
            )));
        }
        Ok(LumaPlane { w, h, data })
    }
}

/// A decoded picture in I420 (YUV 4:2:0), owning its planes. Chroma
/// planes are `ceil(width/2) x ceil(height/2)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    /// Bytes per row of `y`.
    pub y_stride: usize,
    /// Bytes per row of `u` and `v`.
    pub uv_stride: usize,
}

/// Another name for [`Frame`].
pub type Yuv420 = Frame;

impl Frame {
    /// Copies (and packs) planes with the given strides into a frame,
    /// checking every size.
    pub fn from_planes(
        width: usize,
        height: usize,
        (y, u, v): (&[u8], &[u8], &[u8]),
        (ys, us, vs): (usize, usize, usize),
    ) -> Result<Frame, DecodeError> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let fits = |plane: &[u8], stride: usize, w: usize, h: usize| {
            stride >= w
                && stride
                    .checked_mul(h.saturating_sub(1))
                    .and_then(|n| n.checked_add(w))
                    .is_some_and(|need| plane.len() >= need)
        };
        if width == 0
            || height == 0
            || width > u32::MAX as usize
            || height > u32::MAX as usize
            || !fits(y, ys, width, height)
            || !fits(u, us, cw, ch)
            || !fits(v, vs, cw, ch)
        {
            return Err(DecodeError::BadPicture(format!(
                "{width}x{height} with planes of {}/{}/{} bytes and strides {ys}/{us}/{vs}",
                y.len(),
                u.len(),
                v.len()
            )));
        }
        let pack = |plane: &[u8], stride: usize, w: usize, h: usize| {
            let mut out = Vec::with_capacity(w * h);
            for row in 0..h {
                out.extend_from_slice(&plane[row * stride..row * stride + w]);
            }
            out
        };
        Ok(Frame {
            width: width as u32,
            height: height as u32,
            y: pack(y, ys, width, height),
            u: pack(u, us, cw, ch),
            v: pack(v, vs, cw, ch),
            y_stride: width,
            uv_stride: cw,
        })
    }

    /// The luma plane box-filtered down to at most `max_width` columns
    /// (aspect ratio kept; never enlarged). Each output pixel is the mean
    /// of the source pixels its area covers.
    pub fn luma_scaled(&self, max_width: u32) -> LumaPlane {
        let (w, h) = (self.width as usize, self.height as usize);
        let out_w = (max_width.max(1) as usize).min(w);
        let out_h = ((h * out_w + w / 2) / w).clamp(1, h);
        // Source column/row ranges for each output column/row.
        let bounds = |n_in: usize, n_out: usize| -> Vec<(usize, usize)> {
            (0..n_out)
                .map(|i| {
                    let a = i * n_in / n_out;
                    let b = ((i + 1) * n_in / n_out).max(a + 1);
                    (a, b)
                })
                .collect()
        };
        let mut data = vec![0u8; out_w * out_h];
        let (fx, fy) = (w / out_w, h / out_h);
        if (fx, fy) == (2, 2) && 2 * out_w == w && 2 * out_h == h {
            // The common case (640x360 → 320x180), two rows at a time.
            for (oy, out) in data.chunks_exact_mut(out_w).enumerate() {
                let a = &self.y[2 * oy * self.y_stride..][..w];
                let b = &self.y[(2 * oy + 1) * self.y_stride..][..w];
                for ((o, pa), pb) in out.iter_mut().zip(a.chunks_exact(2)).zip(b.chunks_exact(2)) {
                    let sum = u16::from(pa[0])
                        .wrapping_add(u16::from(pa[1]))
                        .wrapping_add(u16::from(pb[0]))
                        .wrapping_add(u16::from(pb[1]))
                        .wrapping_add(2);
                    *o = (sum >> 2) as u8;
                }
            }
            return LumaPlane {
                w: out_w as u32,
                h: out_h as u32,
                data,
            };
        }
        if fx * out_w == w && fy * out_h == h {
            // Whole factors (640x360 → 320x180): fixed-size boxes, a loop
            // the compiler vectorises.
            let n = (fx * fy) as u32;
            let mut acc = vec![0u32; out_w];
            for (oy, out) in data.chunks_exact_mut(out_w).enumerate() {
                acc.fill(0);
                for r in oy * fy..(oy + 1) * fy {
                    let line = &self.y[r * self.y_stride..r * self.y_stride + w];
                    for (a, px) in acc.iter_mut().zip(line.chunks_exact(fx)) {
                        *a += px.iter().map(|&p| u32::from(p)).sum::<u32>();
                    }
                }
                for (o, a) in out.iter_mut().zip(&acc) {
                    *o = ((a + n / 2) / n) as u8;
                }
            }
            return LumaPlane {
                w: out_w as u32,
                h: out_h as u32,
                data,
            };
        }
        let cols = bounds(w, out_w);
        let rows = bounds(h, out_h);
        let mut acc = vec![0u32; out_w];
        for (oy, &(r0, r1)) in rows.iter().enumerate() {
            acc.fill(0);
            for r in r0..r1 {
                let line = &self.y[r * self.y_stride..r * self.y_stride + w];
                for (a, &(c0, c1)) in acc.iter_mut().zip(&cols) {
                    *a += line[c0..c1].iter().map(|&p| u32::from(p)).sum::<u32>();
                }
            }
            let out = &mut data[oy * out_w..(oy + 1) * out_w];
            for ((o, a), &(c0, c1)) in out.iter_mut().zip(&acc).zip(&cols) {
                let n = ((c1 - c0) * (r1 - r0)) as u32;
                *o = ((a + n / 2) / n) as u8;
            }
        }
        LumaPlane {
            w: out_w as u32,
            h: out_h as u32,
            data,
        }
    }

    /// The whole picture as RGB.
    pub fn to_rgb(&self) -> RgbImage {
        self.rgb_of(0, 0, self.width, self.height)
    }

    /// The rectangle `(x, y, w, h)` in pixels as RGB, clipped to the
    /// picture; an error when nothing of it is inside.
    pub fn crop_rgb(&self, x: u32, y: u32, w: u32, h: u32) -> Result<RgbImage, DecodeError> {
        let x1 = x.saturating_add(w).min(self.width);
        let y1 = y.saturating_add(h).min(self.height);
        if x >= x1 || y >= y1 {
            return Err(DecodeError::BadPicture(format!(
                "crop {x},{y} {w}x{h} lies outside the {}x{} picture",
                self.width, self.height
            )));
        }
        Ok(self.rgb_of(x, y, x1 - x, y1 - y))
    }

    /// A box in normalised coordinates `[x0, y0, x1, y1]` (as motion
    /// regions report them) as a pixel rectangle `(x, y, w, h)` of this
    /// picture, grown by `margin` (a fraction of the box's size on each
    /// side) and clipped; at least 1x1.
    pub fn pixel_rect(&self, bbox: [f32; 4], margin: f32) -> (u32, u32, u32, u32) {
        let (fw, fh) = (self.width as f32, self.height as f32);
        let m = if margin.is_finite() {
            margin.max(0.0)
        } else {
            0.0
        };
        let clean = |v: f32| {
            if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        let (x0, y0, x1, y1) = (
            clean(bbox[0]),
            clean(bbox[1]),
            clean(bbox[2]),
            clean(bbox[3]),
        );
        let (bw, bh) = ((x1 - x0).max(0.0), (y1 - y0).max(0.0));
        let px0 = ((x0 - bw * m) * fw).floor().clamp(0.0, fw - 1.0) as u32;
        let py0 = ((y0 - bh * m) * fh).floor().clamp(0.0, fh - 1.0) as u32;
        let px1 = ((x1 + bw * m) * fw).ceil().clamp(px0 as f32 + 1.0, fw) as u32;
        let py1 = ((y1 + bh * m) * fh).ceil().clamp(py0 as f32 + 1.0, fh) as u32;
        (px0, py0, px1 - px0, py1 - py0)
    }

    /// BT.601 limited range → RGB of an in-bounds rectangle.
    fn rgb_of(&self, x0: u32, y0: u32, w: u32, h: u32) -> RgbImage {
        let mut img = RgbImage::new(w, h);
        let buf: &mut [u8] = &mut img;
        for row in 0..h as usize {
            let sy = y0 as usize + row;
            let yl = &self.y[sy * self.y_stride..];
            let ul = &self.u[(sy / 2) * self.uv_stride..];
            let vl = &self.v[(sy / 2) * self.uv_stride..];
            let out = &mut buf[row * w as usize * 3..(row + 1) * w as usize * 3];
            for (col, px) in out.chunks_exact_mut(3).enumerate() {
                let sx = x0 as usize + col;
                let c = 298 * (i32::from(yl[sx]) - 16);
                let d = i32::from(ul[sx / 2]) - 128;
                let e = i32::from(vl[sx / 2]) - 128;
                let clip = |v: i32| ((v + 128) >> 8).clamp(0, 255) as u8;
                px[0] = clip(c + 409 * e);
                px[1] = clip(c - 100 * d - 208 * e);
                px[2] = clip(c + 516 * d);
            }
        }
        img
    }

    /// The picture as a JPEG of the given quality (1–100, clamped),
    /// scaled down to at most `max_width` pixels wide (never enlarged).
    pub fn to_jpeg(&self, quality: u8, max_width: u32) -> Result<Vec<u8>, DecodeError> {
        let rgb = self.to_rgb();
        let rgb = if max_width > 0 && self.width > max_width {
            let h = ((u64::from(self.height) * u64::from(max_width) + u64::from(self.width) / 2)
                / u64::from(self.width))
            .max(1) as u32;
            image::imageops::resize(&rgb, max_width, h, image::imageops::FilterType::Triangle)
        } else {
            rgb
        };
        let mut out = Vec::new();
        let enc =
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
        rgb.write_with_encoder(enc)
            .map_err(|e| DecodeError::Jpeg(e.to_string()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey_frame(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> Frame {
        let y: Vec<u8> = (0..w * h).map(|i| f(i % w, i / w)).collect();
        let c = vec![128u8; w.div_ceil(2) * h.div_ceil(2)];
        Frame::from_planes(w, h, (&y, &c, &c), (w, w.div_ceil(2), w.div_ceil(2))).unwrap()
    }

    #[test]
    fn decoder_and_frames_move_between_threads() {
        fn send<T: Send>() {}
        send::<VideoDecoder>();
        send::<Frame>();
    }

    #[test]
    fn avcc_is_parsed_and_bad_ones_are_named() {
        let sps = [0x67, 0x42, 0xc0, 0x1e, 0xda];
        let pps = [0x68, 0xce, 0x3c, 0x80];
        let mut avcc = vec![1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 5];
        avcc.extend_from_slice(&sps);
        avcc.extend_from_slice(&[1, 0, 4]);
        avcc.extend_from_slice(&pps);
        let (s, p) = avcc_parameter_sets(&avcc).unwrap();
        assert_eq!(s, vec![sps.to_vec()]);
        assert_eq!(p, vec![pps.to_vec()]);
        let e = avcc_parameter_sets(&avcc[..10]).unwrap_err();
        assert!(e.to_string().contains("SPS 0"), "{e}");
        let mut v2 = avcc.clone();
        v2[0] = 2;
        assert!(avcc_parameter_sets(&v2)
            .unwrap_err()
            .to_string()
            .contains("configurationVersion 2"));
        assert!(avcc_parameter_sets(&[]).is_err());
    }

    #[test]
    fn nal_splitting_rejects_bad_lengths() {
        assert_eq!(
            split_nal_units(&[0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41]).unwrap(),
            vec![&[0x65, 1][..], &[0x41][..]]
        );
        for bad in [
            &[0, 0, 0, 9, 0x65][..],
            &[0, 0, 0, 1, 0x65, 0][..],
            &[0, 0, 0, 0][..],
            &[][..],
            &[0, 0, 0, 1, 0xe5][..],
        ] {
            assert!(
                matches!(split_nal_units(bad), Err(DecodeError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn h265_is_refused_clearly() {
        let entry = VideoSampleEntry {
            codec: Codec::H265,
            width: 640,
            height: 360,
            config: vec![1],
            rfc6381: "hvc1.1.6.L93.B0".into(),
        };
        let mut dec = VideoDecoder::with_backend(Backend::OpenH264).unwrap();
        for _ in 0..3 {
            let e = dec.decode(&[0, 0, 0, 1, 0x26], &entry).unwrap_err();
            assert_eq!(e, DecodeError::Unsupported(H265_NEEDS_FFMPEG));
            assert!(
                e.to_string().contains("--features ffmpeg")
                    && e.to_string().contains("H.264 sub-stream"),
                "{e}"
            );
        }
    }

    #[test]
    fn backends_of_this_build() {
        assert!(Backend::OpenH264.available());
        assert_eq!(Backend::Ffmpeg.available(), cfg!(feature = "ffmpeg"));
        assert_eq!(VideoDecoder::new().backend(), Backend::DEFAULT);
        let openh264 = VideoDecoder::with_backend(Backend::OpenH264).unwrap();
        assert_eq!(openh264.backend(), Backend::OpenH264);
        match VideoDecoder::with_backend(Backend::Ffmpeg) {
            Ok(d) => assert_eq!(d.backend(), Backend::Ffmpeg),
            Err(e) => assert_eq!(e, DecodeError::Unsupported(NO_FFMPEG_BACKEND)),
        }
    }

    /// An hvcC record: 22 bytes of profile and such, then the arrays.
    fn hvcc(arrays: &[(u8, &[&[u8]])]) -> Vec<u8> {
        let mut v = vec![1];
        v.extend_from_slice(&[0; 21]);
        v.push(arrays.len() as u8);
        for (t, nals) in arrays {
            v.push(0x80 | t);
            v.extend_from_slice(&(nals.len() as u16).to_be_bytes());
            for n in *nals {
                v.extend_from_slice(&(n.len() as u16).to_be_bytes());
                v.extend_from_slice(n);
            }
        }
        v
    }

    #[test]
    fn hvcc_is_parsed_in_feeding_order_and_bad_ones_are_named() {
        let (vps, sps, pps, sei) = (
            &[0x40, 0x01, 0x0c][..],
            &[0x42, 0x01, 0x01, 0x60][..],
            &[0x44, 0x01, 0xc1][..],
            &[0x4e, 0x01, 0x05][..],
        );
        // Arrays in any order; SEI skipped; VPS, SPS, PPS out.
        let rec = hvcc(&[(34, &[pps]), (39, &[sei]), (32, &[vps]), (33, &[sps])]);
        assert_eq!(
            hvcc_parameter_sets(&rec).unwrap(),
            vec![vps.to_vec(), sps.to_vec(), pps.to_vec()]
        );
        let e = hvcc_parameter_sets(&hvcc(&[(32, &[vps]), (33, &[sps])])).unwrap_err();
        assert!(e.to_string().contains("no PPS"), "{e}");
        let e = hvcc_parameter_sets(&rec[..rec.len() - 2]).unwrap_err();
        assert!(e.to_string().contains("fewer present"), "{e}");
        let mut v0 = rec.clone();
        v0[0] = 0;
        assert!(hvcc_parameter_sets(&v0)
            .unwrap_err()
            .to_string()
            .contains("configurationVersion 0"));
        assert!(hvcc_parameter_sets(&[1; 10]).is_err());
        // The avcC reader names its record too.
        assert!(avcc_parameter_sets(&rec)
            .unwrap_err()
            .to_string()
            .contains("avcC"));
    }

    #[test]
    // Bit groups follow the syntax elements, not nibbles.
    #[allow(clippy::unusual_byte_groupings)]
    fn key_frames_and_slice_types() {
        // H.264: IDR (5) is key, a non-IDR slice (1) is not.
        assert!(is_key_frame(Codec::H264, &[&[0x67, 0], &[0x65, 0x88]]));
        assert!(!is_key_frame(Codec::H264, &[&[0x41, 0x9a]]));
        // H.265: IDR_W_RADL (19), CRA (21) are key; TRAIL_R (1) is not.
        assert!(is_key_frame(Codec::H265, &[&[19 << 1, 1, 0xaf]]));
        assert!(is_key_frame(Codec::H265, &[&[21 << 1, 1, 0xaf]]));
        assert!(!is_key_frame(Codec::H265, &[&[1 << 1, 1, 0xd0]]));
        // first_mb_in_slice = 0 ("1"), slice_type ue(v):
        // 0 → "1", 1 → "010", 5 → "00110", 6 → "00111".
        assert_eq!(h264_slice_type(&[0x41, 0b1_1_000000]), Some(0));
        assert_eq!(h264_slice_type(&[0x01, 0b1_010_0000]), Some(1));
        assert_eq!(h264_slice_type(&[0x01, 0b1_00111_00]), Some(6));
        assert_eq!(h264_slice_type(&[0x65, 0b1_00110_00]), Some(5));
        // first_mb_in_slice = 3 ("00100"), then B (6) across a byte.
        assert_eq!(h264_slice_type(&[0x01, 0b00100_001, 0b11_000000]), Some(6));
        // Emulation-prevention bytes in the header are skipped:
        // first_mb_in_slice = 2^22 - 1 (22 zeros, a one, 22 zeros), then
        // B ("010"): 00 00 02 00 00 02, escaped 00 00 03 02 00 00 03 02.
        let nal = [0x01, 0x00, 0x00, 0x03, 0x02, 0x00, 0x00, 0x03, 0x02];
        assert_eq!(h264_slice_type(&nal), Some(1));
        // Not a slice, cut off, or out of range (10: "0001011").
        assert_eq!(h264_slice_type(&[0x67, 0x42]), None);
        assert_eq!(h264_slice_type(&[0x01]), None);
        assert_eq!(h264_slice_type(&[0x01, 0b1_0000000, 0b0000_1111]), None);
        assert_eq!(h264_slice_type(&[0x01, 0b1_0001011]), None);
        assert!(h264_has_b_slice(&[&[0x09, 0xf0], &[0x01, 0b1_010_0000]]));
        assert!(!h264_has_b_slice(&[&[0x41, 0b1_1_000000]]));
        assert_eq!(h264_profile(&[0x67, 100, 0, 30]), Some(100));
        assert_eq!(h264_profile(&[0x68, 100]), None);
    }

    #[test]
    fn planes_that_do_not_fit_are_refused() {
        let y = vec![0u8; 10];
        let c = vec![0u8; 4];
        assert!(Frame::from_planes(4, 4, (&y, &c, &c), (4, 2, 2)).is_err());
        assert!(Frame::from_planes(0, 4, (&y, &c, &c), (4, 2, 2)).is_err());
        assert!(Frame::from_planes(4, 4, (&y, &c, &c), (usize::MAX, 2, 2)).is_err());
        assert!(LumaPlane::new(3, 3, vec![0; 8]).is_err());
    }

    #[test]
    fn luma_is_box_filtered() {
        // Left half 40, right half 200 → 4 columns 40,40,200,200.
        let f = grey_frame(16, 8, |x, _| if x < 8 { 40 } else { 200 });
        let l = f.luma_scaled(4);
        assert_eq!((l.w, l.h), (4, 2));
        assert_eq!(l.data, vec![40, 40, 200, 200, 40, 40, 200, 200]);
        // A 1-pixel checkerboard averages to its mean.
        let f = grey_frame(640, 360, |x, y| if (x + y) % 2 == 0 { 100 } else { 140 });
        let l = f.luma_scaled(320);
        assert_eq!((l.w, l.h), (320, 180));
        assert!(l.data.iter().all(|&p| p == 120), "{:?}", &l.data[..8]);
        // Never enlarged; odd ratios keep every pixel counted.
        assert_eq!(f.luma_scaled(4000).w, 640);
        let l = grey_frame(100, 50, |x, _| x as u8).luma_scaled(30);
        assert_eq!((l.w, l.h), (30, 15));
        assert!(l.data[0] < l.data[29]);
    }

    #[test]
    fn the_half_size_fast_path_matches_the_general_box_filter() {
        let f = grey_frame(64, 36, |x, y| ((x * 37 + y * 101 + x * y) % 251) as u8);
        let fast = f.luma_scaled(32);
        assert_eq!((fast.w, fast.h), (32, 18));
        for (i, &p) in fast.data.iter().enumerate() {
            let (x, y) = (2 * (i % 32), 2 * (i / 32));
            let sum: u32 = [(x, y), (x + 1, y), (x, y + 1), (x + 1, y + 1)]
                .iter()
                .map(|&(x, y)| u32::from(f.y[y * 64 + x]))
                .sum();
            assert_eq!(u32::from(p), (sum + 2) / 4, "cell {i}");
        }
    }

    #[test]
    fn rgb_conversion_and_crops() {
        // Y=235, U=V=128 is white; Y=16 black; pure red from demo colours.
        let f = grey_frame(8, 4, |x, _| if x < 4 { 16 } else { 235 });
        let rgb = f.to_rgb();
        assert_eq!(rgb.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(rgb.get_pixel(7, 3).0, [255, 255, 255]);
        let c = f.crop_rgb(3, 1, 100, 100).unwrap();
        assert_eq!(c.dimensions(), (5, 3));
        assert_eq!(c.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(c.get_pixel(1, 0).0, [255, 255, 255]);
        assert!(f.crop_rgb(8, 0, 2, 2).is_err());
        let mut red = grey_frame(2, 2, |_, _| 82);
        red.u[0] = 90;
        red.v[0] = 240;
        let p = red.to_rgb().get_pixel(1, 1).0;
        assert!(p[0] > 240 && p[1] < 15 && p[2] < 15, "{p:?}");
    }

    #[test]
    fn pixel_rects_from_normalised_boxes() {
        let f = grey_frame(640, 360, |_, _| 0);
        assert_eq!(
            f.pixel_rect([0.25, 0.5, 0.5, 1.0], 0.0),
            (160, 180, 160, 180)
        );
        assert_eq!(f.pixel_rect([0.25, 0.5, 0.5, 1.0], 0.5), (80, 90, 320, 270));
        assert_eq!(f.pixel_rect([f32::NAN, 2.0, -1.0, 0.0], 0.0).2, 1);
    }

    #[test]
    fn jpeg_is_a_jpeg_and_scaled() {
        let f = grey_frame(640, 360, |x, y| ((x + y) % 256) as u8);
        let jpeg = f.to_jpeg(80, 160).unwrap();
        assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
        let back = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (160, 90));
        let full = f.to_jpeg(0, 0).unwrap();
        assert_eq!(image::load_from_memory(&full).unwrap().width(), 640);
    }
}
