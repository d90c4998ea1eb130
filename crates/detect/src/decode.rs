//! H.264 decoding of a camera's frames for analysis, with OpenH264 (the
//! `openh264` crate, built from its bundled source), into [`Frame`]s that
//! own their planes; plus the conversions analysis needs from a frame: a
//! small box-filtered luma plane for motion ([`Frame::luma_scaled`]), RGB
//! for the object detector ([`Frame::to_rgb`], [`Frame::crop_rgb`]) and
//! JPEG for snapshots and thumbnails ([`Frame::to_jpeg`]).
//!
//! Input is what the recorder fans out: an access unit as length-prefixed
//! NAL units (4-byte big-endian lengths) and the stream's
//! [`VideoSampleEntry`] (its avcC record carries the SPS and PPS).
//!
//! Invariants:
//! - Never panics on bad input: malformed length prefixes, corrupt slices,
//!   missing parameter sets and unsupported codecs are [`DecodeError`]s.
//! - Parameter sets are fed to OpenH264 before the first key frame and
//!   again whenever the sample entry's set changes (a camera that changes
//!   resolution); in-band SPS/PPS in the access unit are passed through.
//! - After an error (or at start) the decoder outputs nothing until the
//!   next key frame (IDR): it never hands out pictures predicted from a
//!   broken reference.
//! - H.265 is not decoded by this backend: [`DecodeError::Unsupported`]
//!   (an ffmpeg backend behind a cargo feature is later work).
//! - Colour conversion assumes BT.601 limited range, what IP cameras send.

use image::RgbImage;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::formats::YUVSource;
use openh264::OpenH264API;
use porchlight_media::{Codec, VideoSampleEntry};

/// Why a frame could not be decoded or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A codec this build cannot decode.
    #[error("unsupported video: {0}")]
    Unsupported(&'static str),
    /// The codec configuration (avcC) cannot be read.
    #[error("bad codec configuration (avcC): {0}")]
    BadConfig(String),
    /// The access unit is not well-formed length-prefixed NAL units.
    #[error("malformed access unit: {0}")]
    Malformed(String),
    /// OpenH264 rejected the data (corrupt or undecodable bitstream); the
    /// decoder waits for the next key frame.
    #[error("corrupt H.264 frame: {0}")]
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

/// Parameter sets about to be fed: SPS, PPS, and the bytes remembered to
/// tell when they change.
type NewParams<'a> = Option<(&'a NalUnits, &'a NalUnits, &'a [u8])>;

/// The SPS and PPS NAL units (without start codes or lengths) of an
/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15, 5.3.3.1).
pub fn avcc_parameter_sets(avcc: &[u8]) -> Result<(NalUnits, NalUnits), DecodeError> {
    let bad = |what: &str| DecodeError::BadConfig(what.to_string());
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

fn push_annexb(out: &mut Vec<u8>, nal: &[u8]) {
    out.extend_from_slice(&[0, 0, 0, 1]);
    out.extend_from_slice(nal);
}

/// A decoder for one camera's H.264 stream. Feed it every frame in order
/// (analysis may then skip decoded pictures; a P-frame cannot be skipped
/// before decoding).
pub struct VideoDecoder {
    dec: Option<Decoder>,
    /// The parameter sets last fed to `dec` from a sample entry.
    fed: Option<Vec<u8>>,
    /// Output nothing until an IDR has been decoded.
    need_key: bool,
    annexb: Vec<u8>,
}

impl std::fmt::Debug for VideoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoDecoder")
            .field("need_key", &self.need_key)
            .finish_non_exhaustive()
    }
}

impl Default for VideoDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl VideoDecoder {
    /// A decoder waiting for its first key frame. OpenH264 itself is set
    /// up lazily, at the first key frame.
    pub fn new() -> VideoDecoder {
        VideoDecoder {
            dec: None,
            fed: None,
            need_key: true,
            annexb: Vec::new(),
        }
    }

    /// True until a key frame has been decoded (at start and after an
    /// error): non-key frames are skipped meanwhile.
    pub fn waiting_for_key_frame(&self) -> bool {
        self.need_key
    }

    /// Decodes one access unit of the stream described by `entry`.
    /// `Ok(None)`: no picture (waiting for a key frame, or OpenH264 gave
    /// none for this input). An error leaves the decoder waiting for the
    /// next key frame.
    pub fn decode(
        &mut self,
        data: &[u8],
        entry: &VideoSampleEntry,
    ) -> Result<Option<Frame>, DecodeError> {
        match entry.codec {
            Codec::H264 => {}
            Codec::H265 => {
                return Err(DecodeError::Unsupported(
                    "H.265: build with the ffmpeg feature",
                ))
            }
        }
        // Parse the parameter sets only when they change.
        if self.fed.as_deref() != Some(&entry.config[..]) {
            let (sps, pps) = avcc_parameter_sets(&entry.config)?;
            return self.decode_inner(data, Some((&sps, &pps, &entry.config)));
        }
        self.decode_inner(data, None)
    }

    /// [`VideoDecoder::decode`] with the SPS and PPS given directly
    /// (NAL units without start codes); they are fed when they change.
    pub fn decode_with_parameter_sets(
        &mut self,
        data: &[u8],
        sps: &[u8],
        pps: &[u8],
    ) -> Result<Option<Frame>, DecodeError> {
        let key: Vec<u8> = [&(sps.len() as u32).to_be_bytes()[..], sps, pps].concat();
        if self.fed.as_deref() != Some(&key[..]) {
            let (sps, pps) = (vec![sps.to_vec()], vec![pps.to_vec()]);
            return self.decode_inner(data, Some((&sps, &pps, &key)));
        }
        self.decode_inner(data, None)
    }

    fn decode_inner(
        &mut self,
        data: &[u8],
        new_params: NewParams<'_>,
    ) -> Result<Option<Frame>, DecodeError> {
        let result = self.try_decode(data, new_params);
        if result.is_err() {
            // Start afresh at the next key frame: a new OpenH264 instance
            // (its state after a bitstream error is not to be trusted) fed
            // the parameter sets again.
            self.dec = None;
            self.fed = None;
            self.need_key = true;
        }
        result
    }

    fn try_decode(
        &mut self,
        data: &[u8],
        new_params: NewParams<'_>,
    ) -> Result<Option<Frame>, DecodeError> {
        let nals = split_nal_units(data)?;
        let is_key = nals.iter().any(|n| n[0] & 0x1f == 5);
        if self.need_key && !is_key {
            return Ok(None);
        }
        self.annexb.clear();
        if let Some((sps, pps, key)) = new_params {
            for nal in sps.iter().chain(pps.iter()) {
                push_annexb(&mut self.annexb, nal);
            }
            self.fed = Some(key.to_vec());
        } else if self.dec.is_none() {
            // A fresh decoder with no sample-entry parameters fed yet.
            return Err(DecodeError::BadConfig("no SPS/PPS fed".into()));
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
        Ok(Some(frame))
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
        let e = VideoDecoder::new()
            .decode(&[0, 0, 0, 1, 0x26], &entry)
            .unwrap_err();
        assert_eq!(
            e,
            DecodeError::Unsupported("H.265: build with the ffmpeg feature")
        );
        assert!(e.to_string().contains("ffmpeg"));
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
