//! H.264 encoding with OpenH264 (built from the `openh264` crate's bundled
//! source): baseline profile, a key frame every [`GOP`] frames, about
//! [`BITRATE`] bit/s; output as length-prefixed access units plus the
//! avcC record and RFC 6381 string a [`VideoSampleEntry`] needs.

use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Level, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSlices;
use openh264::OpenH264API;
use porchlight_media::{Codec, VideoSampleEntry};

use crate::render::Image;

/// Frames per second of the demo cameras.
pub const FPS: u32 = 15;
/// Frames per group of pictures: a key frame every 2 s.
pub const GOP: u32 = 30;
/// Target bit rate.
pub const BITRATE: u32 = 500_000;

/// One encoded picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// An IDR picture: decoding can start here.
    pub key: bool,
    /// Length-prefixed NAL units (4-byte big-endian lengths), parameter
    /// sets included on key frames, as a camera sends them.
    pub data: Vec<u8>,
    /// The SPS and PPS, when this frame carried them.
    pub sps: Option<Vec<u8>>,
    pub pps: Option<Vec<u8>>,
}

/// An OpenH264 encoder set up for the demo cameras.
pub struct H264Encoder {
    enc: Encoder,
    width: usize,
    height: usize,
}

impl H264Encoder {
    pub fn new(width: usize, height: usize) -> Result<H264Encoder, openh264::Error> {
        Self::with_bitrate(width, height, BITRATE)
    }

    /// An encoder with another target bit rate (the sub-streams).
    pub fn with_bitrate(
        width: usize,
        height: usize,
        bitrate: u32,
    ) -> Result<H264Encoder, openh264::Error> {
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .level(Level::Level_3_0)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(FPS as f32))
            .intra_frame_period(IntraFramePeriod::from_num_frames(GOP))
            .skip_frames(true)
            .scene_change_detect(false)
            .num_threads(1);
        let enc = Encoder::with_api_config(OpenH264API::from_source(), config)?;
        Ok(H264Encoder { enc, width, height })
    }

    /// Encodes one picture. `None`: the encoder produced nothing for it.
    pub fn encode(&mut self, img: &Image) -> Result<Option<EncodedFrame>, openh264::Error> {
        assert_eq!((img.width, img.height), (self.width, self.height));
        let src = YUVSlices::new(
            (&img.y, &img.u, &img.v),
            (img.width, img.height),
            (img.width, img.width / 2, img.width / 2),
        );
        let bs = self.enc.encode(&src)?;
        let key = bs.frame_type() == FrameType::IDR;
        if matches!(bs.frame_type(), FrameType::Skip | FrameType::Invalid) {
            return Ok(None);
        }
        let mut out = EncodedFrame {
            key,
            data: Vec::new(),
            sps: None,
            pps: None,
        };
        for l in 0..bs.num_layers() {
            let Some(layer) = bs.layer(l) else { continue };
            for n in 0..layer.nal_count() {
                let Some(nal) = layer.nal_unit(n) else {
                    continue;
                };
                let nal = strip_start_code(nal);
                if nal.is_empty() {
                    continue;
                }
                match nal[0] & 0x1f {
                    7 => out.sps = Some(nal.to_vec()),
                    8 => out.pps = Some(nal.to_vec()),
                    _ => {}
                }
                out.data
                    .extend_from_slice(&(nal.len() as u32).to_be_bytes());
                out.data.extend_from_slice(nal);
            }
        }
        if out.data.is_empty() {
            return Ok(None);
        }
        Ok(Some(out))
    }
}

/// Removes a leading Annex B start code (`00 00 01` or `00 00 00 01`).
pub fn strip_start_code(nal: &[u8]) -> &[u8] {
    let zeros = nal.iter().take_while(|&&b| b == 0).count();
    if zeros >= 2 && nal.get(zeros) == Some(&1) {
        &nal[zeros + 1..]
    } else {
        nal
    }
}

/// The MP4 sample entry for an H.264 stream: an
/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1, 4-byte NAL
/// lengths) and `avc1.PPCCLL`.
pub fn sample_entry(sps: &[u8], pps: &[u8], width: u16, height: u16) -> VideoSampleEntry {
    let (p, c, l) = (
        sps.get(1).copied().unwrap_or(66),
        sps.get(2).copied().unwrap_or(0),
        sps.get(3).copied().unwrap_or(30),
    );
    let mut config = vec![1, p, c, l, 0xfc | 3, 0xe0 | 1];
    config.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    config.extend_from_slice(sps);
    config.push(1);
    config.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    config.extend_from_slice(pps);
    VideoSampleEntry {
        codec: Codec::H264,
        width,
        height,
        config,
        rfc6381: format!("avc1.{p:02x}{c:02x}{l:02x}"),
    }
}

/// Length-prefixed NAL units → Annex B (for decoders that want it).
pub fn to_annexb(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    let mut rest = data;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(nal) = rest.get(4..4 + len) else {
            break;
        };
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        rest = &rest[4 + len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{self, HEIGHT, LOOP_MS, PARCEL_AT, WIDTH};
    use crate::Scene;
    use openh264::decoder::Decoder;
    use openh264::formats::YUVSource;

    #[test]
    fn start_codes() {
        assert_eq!(strip_start_code(&[0, 0, 0, 1, 0x67, 0]), &[0x67, 0]);
        assert_eq!(strip_start_code(&[0, 0, 1, 0x68]), &[0x68]);
        assert_eq!(strip_start_code(&[0x65, 1]), &[0x65, 1]);
        assert_eq!(strip_start_code(&[0, 0]), &[0, 0]);
    }

    #[test]
    fn encoded_frames_decode_back_to_the_scene() {
        let t0 = 1_800_000_000_000 - 1_800_000_000_000 % LOOP_MS + 40_000; // parcel on the step
        let mut enc = H264Encoder::new(WIDTH, HEIGHT).unwrap();
        let mut dec = Decoder::new().unwrap();
        let bg = render::background(Scene::FrontDoor);
        let mut img = bg.clone();
        let mut checked = 0;
        for i in 0..35 {
            let at = t0 + i * 1000 / i64::from(FPS);
            render::render_onto(&mut img, &bg, Scene::FrontDoor, at, 0);
            let f = enc.encode(&img).unwrap().expect("a frame");
            if i == 0 {
                assert!(f.key, "the first frame is a key frame");
                let (sps, pps) = (f.sps.clone().unwrap(), f.pps.clone().unwrap());
                assert_eq!(sps[1], 66, "baseline profile");
                let e = sample_entry(&sps, &pps, WIDTH as u16, HEIGHT as u16);
                assert!(e.rfc6381.starts_with("avc1.42"), "{}", e.rfc6381);
                assert_eq!(e.config[0], 1);
            } else {
                assert_eq!(f.key, i == 30, "frame {i}: a key frame every 30 frames");
            }
            let Some(yuv) = dec.decode(&to_annexb(&f.data)).unwrap() else {
                continue;
            };
            assert_eq!(yuv.dimensions(), (WIDTH, HEIGHT));
            let stride = yuv.strides().0;
            for (x0, y0, x1, y1) in [
                (
                    PARCEL_AT.0 as usize,
                    PARCEL_AT.1 as usize,
                    PARCEL_AT.2 as usize,
                    PARCEL_AT.3 as usize,
                ),
                (60, 70, 210, 200),
                (0, 320, 640, 360),
            ] {
                let want = img.mean_luma(x0, y0, x1, y1);
                let got = render::mean_luma(yuv.y(), stride, x0, y0, x1, y1);
                assert!(
                    (want - got).abs() < 8.0,
                    "frame {i}, region {x0},{y0}: {got} vs {want}"
                );
            }
            checked += 1;
        }
        assert!(checked >= 30, "decoded {checked} frames");
    }

    #[test]
    fn annexb_roundtrip() {
        let data = [0, 0, 0, 2, 0x67, 1, 0, 0, 0, 1, 0x68];
        assert_eq!(to_annexb(&data), [0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68]);
    }
}

/// Not a check: prints what a demo camera costs (`cargo test -p
/// porchlight-demo -- --ignored --nocapture cost`).
#[cfg(test)]
mod cost {
    #[test]
    #[ignore]
    fn render_and_encode_cost() {
        use crate::render::{self, HEIGHT, WIDTH};
        for scene in crate::Scene::ALL {
            let bg = render::background(scene);
            let mut img = bg.clone();
            let t = std::time::Instant::now();
            for i in 0..150 {
                render::render_onto(&mut img, &bg, scene, 1_800_000_000_000 + i * 66, 0);
            }
            let render = t.elapsed() / 150;
            let mut enc = super::H264Encoder::new(WIDTH, HEIGHT).unwrap();
            let mut bytes = 0;
            let t = std::time::Instant::now();
            for i in 0..150 {
                render::render_onto(&mut img, &bg, scene, 1_800_000_000_000 + i * 66, 0);
                bytes += enc.encode(&img).unwrap().map_or(0, |f| f.data.len());
            }
            eprintln!(
                "{scene:?}: render {render:?}, render+encode {:?} per frame; {} kbit/s",
                t.elapsed() / 150,
                bytes * 8 / 10 / 1000
            );
        }
    }
}
