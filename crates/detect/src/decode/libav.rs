//! The libavcodec backend (`--features ffmpeg`): H.264 of any profile,
//! B-frames included, and H.265, through `ffmpeg-next`'s safe API.
//!
//! Access units go in as Annex B (start codes), with the sample entry's
//! parameter sets in front of every key frame, each with its timestamp as
//! the packet's pts; pictures come out in display order carrying the pts
//! of the access unit they came in. One decoder thread per camera
//! (libavcodec's own threads would add a frame of delay per thread and
//! compete with the other cameras' workers).
//!
//! Errors: libavcodec is asked to report bitstream errors rather than
//! conceal them (`err_recognition` explode), and a picture it marks
//! corrupt is an error too; after either the decoder is dropped and the
//! next key frame starts a fresh one, as with OpenH264.

use std::collections::VecDeque;
use std::sync::Once;

use ff::codec::decoder::Check;
use ff::format::Pixel;
use ffmpeg_next as ff;
use porchlight_media::Codec;

use super::{is_key_frame, push_annexb, split_nal_units, DecodeError, Decoded, Frame, ParamSets};

/// At most this many pictures wait to be taken (B-frame reordering gives
/// one per access unit in the steady state; more only after a burst).
const MAX_PENDING: usize = 8;

/// libavcodec's set-up and logging: its messages (one per corrupt slice)
/// would flood the hub's stderr; errors reach us as return values.
fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Quiet);
    });
}

pub(super) struct LibavDecoder {
    dec: Option<ff::decoder::Video>,
    /// The parameter sets `dec` was opened for (their key).
    fed: Option<Vec<u8>>,
    need_key: bool,
    annexb: Vec<u8>,
    picture: ff::frame::Video,
    pending: VecDeque<Decoded>,
}

impl LibavDecoder {
    pub(super) fn new() -> LibavDecoder {
        LibavDecoder {
            dec: None,
            fed: None,
            need_key: true,
            annexb: Vec::new(),
            picture: ff::frame::Video::empty(),
            pending: VecDeque::new(),
        }
    }

    pub(super) fn waiting_for_key_frame(&self) -> bool {
        self.need_key
    }

    fn reset(&mut self) {
        self.dec = None;
        self.fed = None;
        self.need_key = true;
        self.pending.clear();
    }

    pub(super) fn decode(
        &mut self,
        data: &[u8],
        params: &ParamSets,
        t_us: i64,
    ) -> Result<Option<Decoded>, DecodeError> {
        match self.try_decode(data, params, t_us) {
            Ok(()) => Ok(self.pending.pop_front()),
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    /// Drains the pictures held back; the decoder then starts afresh at
    /// the next key frame.
    pub(super) fn flush(&mut self) -> Vec<Decoded> {
        if let Some(dec) = self.dec.as_mut() {
            if dec.send_eof().is_ok() {
                let _ = self.receive_all();
            }
        }
        let out = std::mem::take(&mut self.pending).into();
        self.reset();
        out
    }

    fn open(codec: Codec) -> Result<ff::decoder::Video, DecodeError> {
        init();
        let (id, name) = match codec {
            Codec::H264 => (ff::codec::Id::H264, "H.264"),
            Codec::H265 => (ff::codec::Id::HEVC, "H.265"),
        };
        let found = ff::decoder::find(id).ok_or(DecodeError::Unsupported(
            "the system's libavcodec has no decoder for this codec",
        ))?;
        let mut ctx = ff::codec::Context::new_with_codec(found);
        ctx.set_threading(ff::codec::threading::Config {
            kind: ff::codec::threading::Type::None,
            count: 1,
            ..Default::default()
        });
        let mut dec = ctx.decoder();
        dec.check(Check::CRC | Check::EXPLODE);
        dec.video().map_err(|e| {
            DecodeError::Corrupt(format!("cannot start libavcodec's {name} decoder: {e}"))
        })
    }

    fn try_decode(
        &mut self,
        data: &[u8],
        params: &ParamSets,
        t_us: i64,
    ) -> Result<(), DecodeError> {
        let nals = split_nal_units(data)?;
        let is_key = is_key_frame(params.codec, &nals);
        if self.need_key && !is_key {
            return Ok(());
        }
        if self.fed.as_deref() != Some(&params.key[..]) {
            // New parameter sets (or none yet): a fresh decoder, which
            // the key frame below starts.
            if !is_key {
                self.reset();
                return Ok(());
            }
            self.dec = Some(Self::open(params.codec)?);
            self.fed = Some(params.key.clone());
            self.pending.clear();
        }
        self.annexb.clear();
        if is_key {
            for nal in &params.nals {
                push_annexb(&mut self.annexb, nal);
            }
        }
        for nal in &nals {
            push_annexb(&mut self.annexb, nal);
        }
        let mut packet = ff::Packet::copy(&self.annexb);
        packet.set_pts(Some(t_us));
        packet.set_dts(None);
        let dec = self.dec.as_mut().expect("opened above");
        dec.send_packet(&packet)
            .map_err(|e| DecodeError::Corrupt(format!("libavcodec: {e}")))?;
        if is_key {
            self.need_key = false;
        }
        self.receive_all()
    }

    /// Takes every picture libavcodec has ready.
    fn receive_all(&mut self) -> Result<(), DecodeError> {
        let dec = self.dec.as_mut().expect("opened");
        loop {
            match dec.receive_frame(&mut self.picture) {
                Ok(()) => {}
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {
                    return Ok(())
                }
                Err(ff::Error::Eof) => return Ok(()),
                Err(e) => return Err(DecodeError::Corrupt(format!("libavcodec: {e}"))),
            }
            let pic = &self.picture;
            if pic.is_corrupt() || pic.has_decode_errors() {
                return Err(DecodeError::Corrupt(
                    "libavcodec marked the picture corrupt".into(),
                ));
            }
            let Some(t_us) = pic.pts().or_else(|| pic.timestamp()) else {
                return Err(DecodeError::Corrupt("a picture without timestamp".into()));
            };
            let frame = to_frame(pic)?;
            if self.pending.len() == MAX_PENDING {
                self.pending.pop_front();
            }
            self.pending.push_back(Decoded { t_us, frame });
        }
    }
}

/// A libavcodec picture as an owned I420 [`Frame`]: 8-bit 4:2:0 copied,
/// 10-bit 4:2:0 (H.265 Main 10) shifted down to 8 bits.
fn to_frame(pic: &ff::frame::Video) -> Result<Frame, DecodeError> {
    let (w, h) = (pic.width() as usize, pic.height() as usize);
    match pic.format() {
        // YUVJ420P is full range; motion does not care, colours come out
        // a little flat.
        Pixel::YUV420P | Pixel::YUVJ420P => Frame::from_planes(
            w,
            h,
            (pic.data(0), pic.data(1), pic.data(2)),
            (pic.stride(0), pic.stride(1), pic.stride(2)),
        ),
        Pixel::YUV420P10LE => {
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let down = |i: usize, pw: usize, ph: usize| -> Result<Vec<u8>, DecodeError> {
                let (plane, stride) = (pic.data(i), pic.stride(i));
                let mut out = Vec::with_capacity(pw * ph);
                for row in 0..ph {
                    let line = plane
                        .get(row * stride..row * stride + 2 * pw)
                        .ok_or_else(|| {
                            DecodeError::BadPicture(format!("10-bit plane {i} too small"))
                        })?;
                    out.extend(
                        line.chunks_exact(2)
                            .map(|s| (u16::from_le_bytes([s[0], s[1]]) >> 2).min(255) as u8),
                    );
                }
                Ok(out)
            };
            let (y, u, v) = (down(0, w, h)?, down(1, cw, ch)?, down(2, cw, ch)?);
            Frame::from_planes(w, h, (&y, &u, &v), (w, cw, cw))
        }
        _ => Err(DecodeError::Unsupported(
            "a pixel format other than 4:2:0 (8 or 10 bits); set the sub-stream to 4:2:0",
        )),
    }
}
