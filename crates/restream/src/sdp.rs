//! The session description a `DESCRIBE` returns, made from the camera's
//! MP4 sample entry: parameter sets come out of the avcC / hvcC record and
//! go into `sprop-…` attributes (RFC 6184 section 8.1, RFC 7798 section
//! 7.1), so a client can set up its decoder before the first key frame.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use porchlight_media::{Codec, VideoSampleEntry};

/// The RTP payload type used for video.
pub const PAYLOAD_TYPE: u8 = 96;
/// The control attribute of the one track.
pub const TRACK_CONTROL: &str = "trackID=0";

/// Parameter sets of a codec configuration record, in the order a decoder
/// needs them (VPS, SPS, PPS), each without start code or length prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParameterSets {
    pub vps: Vec<Vec<u8>>,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
}

impl ParameterSets {
    /// All of them in decoding order.
    pub fn all(&self) -> impl Iterator<Item = &[u8]> {
        self.vps
            .iter()
            .chain(&self.sps)
            .chain(&self.pps)
            .map(Vec::as_slice)
    }

    /// Reads the record of `entry`. A truncated or odd record yields what
    /// could be read (possibly nothing), never a panic.
    pub fn of(entry: &VideoSampleEntry) -> ParameterSets {
        match entry.codec {
            Codec::H264 => from_avcc(&entry.config),
            Codec::H265 => from_hvcc(&entry.config),
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
}

/// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1).
fn from_avcc(c: &[u8]) -> ParameterSets {
    let mut out = ParameterSets::default();
    let mut r = Reader { b: c, pos: 5 };
    let _ = (|| -> Option<()> {
        let n_sps = r.u8()? & 0x1f;
        for _ in 0..n_sps {
            let len = usize::from(r.u16()?);
            out.sps.push(r.bytes(len)?.to_vec());
        }
        let n_pps = r.u8()?;
        for _ in 0..n_pps {
            let len = usize::from(r.u16()?);
            out.pps.push(r.bytes(len)?.to_vec());
        }
        Some(())
    })();
    out.sps.retain(|s| !s.is_empty());
    out.pps.retain(|s| !s.is_empty());
    out
}

/// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1).
fn from_hvcc(c: &[u8]) -> ParameterSets {
    let mut out = ParameterSets::default();
    let mut r = Reader { b: c, pos: 22 };
    let _ = (|| -> Option<()> {
        let arrays = r.u8()?;
        for _ in 0..arrays {
            let t = r.u8()? & 0x3f;
            let n = r.u16()?;
            for _ in 0..n {
                let len = usize::from(r.u16()?);
                let nal = r.bytes(len)?.to_vec();
                match t {
                    32 => out.vps.push(nal),
                    33 => out.sps.push(nal),
                    34 => out.pps.push(nal),
                    _ => {}
                }
            }
        }
        Some(())
    })();
    out.vps.retain(|s| !s.is_empty());
    out.sps.retain(|s| !s.is_empty());
    out.pps.retain(|s| !s.is_empty());
    out
}

fn b64_list(sets: &[Vec<u8>]) -> String {
    sets.iter()
        .map(|s| STANDARD.encode(s))
        .collect::<Vec<_>>()
        .join(",")
}

/// The `a=rtpmap` and `a=fmtp` lines' values for the entry.
pub fn rtpmap_fmtp(entry: &VideoSampleEntry) -> (String, String) {
    let ps = ParameterSets::of(entry);
    match entry.codec {
        Codec::H264 => {
            let mut fmtp = format!("{PAYLOAD_TYPE} packetization-mode=1");
            if let Some(sps) = ps.sps.first().filter(|s| s.len() >= 4) {
                fmtp.push_str(&format!(
                    ";profile-level-id={:02X}{:02X}{:02X}",
                    sps[1], sps[2], sps[3]
                ));
            }
            if !ps.sps.is_empty() && !ps.pps.is_empty() {
                fmtp.push_str(&format!(
                    ";sprop-parameter-sets={},{}",
                    b64_list(&ps.sps),
                    b64_list(&ps.pps)
                ));
            }
            (format!("{PAYLOAD_TYPE} H264/90000"), fmtp)
        }
        Codec::H265 => {
            let mut parts = Vec::new();
            if !ps.vps.is_empty() {
                parts.push(format!("sprop-vps={}", b64_list(&ps.vps)));
            }
            if !ps.sps.is_empty() {
                parts.push(format!("sprop-sps={}", b64_list(&ps.sps)));
            }
            if !ps.pps.is_empty() {
                parts.push(format!("sprop-pps={}", b64_list(&ps.pps)));
            }
            (
                format!("{PAYLOAD_TYPE} H265/90000"),
                format!("{PAYLOAD_TYPE} {}", parts.join(";")),
            )
        }
    }
}

/// The SDP for one video track. `origin_id` is a number unique to this
/// description; `title` names the stream (`s=`).
pub fn describe(
    entry: &VideoSampleEntry,
    origin_id: u64,
    local_ip: std::net::IpAddr,
    title: &str,
) -> String {
    let (rtpmap, fmtp) = rtpmap_fmtp(entry);
    let (ip_kind, ip) = match local_ip {
        std::net::IpAddr::V4(a) => ("IP4", a.to_string()),
        std::net::IpAddr::V6(a) => ("IP6", a.to_string()),
    };
    let title: String = title.chars().filter(|c| !c.is_control()).collect();
    format!(
        "v=0\r\n\
         o=- {origin_id} 1 IN {ip_kind} {ip}\r\n\
         s={title}\r\n\
         c=IN {ip_kind} {ip}\r\n\
         t=0 0\r\n\
         a=tool:Porchlight\r\n\
         a=control:*\r\n\
         a=range:npt=now-\r\n\
         m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n\
         a=rtpmap:{rtpmap}\r\n\
         a=fmtp:{fmtp}\r\n\
         a=framesize:{PAYLOAD_TYPE} {}-{}\r\n\
         a=control:{TRACK_CONTROL}\r\n",
        entry.width, entry.height
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5];
    pub const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    pub fn avcc(sps: &[u8], pps: &[u8]) -> Vec<u8> {
        let mut c = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        c.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        c.extend_from_slice(sps);
        c.push(1);
        c.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        c.extend_from_slice(pps);
        c
    }

    pub fn h264_entry() -> VideoSampleEntry {
        VideoSampleEntry {
            codec: Codec::H264,
            width: 640,
            height: 360,
            config: avcc(SPS, PPS),
            rfc6381: "avc1.42c01e".into(),
        }
    }

    #[test]
    fn h264_sdp() {
        let sdp = describe(
            &h264_entry(),
            42,
            "127.0.0.1".parse().unwrap(),
            "front-door",
        );
        assert!(sdp.contains("m=video 0 RTP/AVP 96\r\n"), "{sdp}");
        assert!(sdp.contains("a=rtpmap:96 H264/90000\r\n"), "{sdp}");
        let fmtp = format!(
            "a=fmtp:96 packetization-mode=1;profile-level-id=42C01E;sprop-parameter-sets={},{}\r\n",
            STANDARD.encode(SPS),
            STANDARD.encode(PPS)
        );
        assert!(sdp.contains(&fmtp), "{sdp}");
        assert!(sdp.contains("a=control:trackID=0\r\n"), "{sdp}");
        assert!(sdp.starts_with("v=0\r\no=- 42 1 IN IP4 127.0.0.1\r\ns=front-door\r\n"));
        assert!(sdp
            .lines()
            .all(|l| !l.is_empty() && l.as_bytes()[1] == b'='));
    }

    #[test]
    fn h265_sdp() {
        let vps = vec![0x40, 0x01, 0x0c];
        let sps = vec![0x42, 0x01, 0x01, 0x01];
        let pps = vec![0x44, 0x01, 0xc1];
        let mut c = vec![1u8; 22];
        c.push(3);
        for (t, nal) in [(32u8, &vps), (33, &sps), (34, &pps)] {
            c.push(0x80 | t);
            c.extend_from_slice(&1u16.to_be_bytes());
            c.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            c.extend_from_slice(nal);
        }
        let entry = VideoSampleEntry {
            codec: Codec::H265,
            width: 1280,
            height: 720,
            config: c,
            rfc6381: "hvc1.1.6.L93.B0".into(),
        };
        let ps = ParameterSets::of(&entry);
        assert_eq!(ps.all().collect::<Vec<_>>(), [&vps[..], &sps[..], &pps[..]]);
        let sdp = describe(&entry, 1, "::1".parse().unwrap(), "x");
        assert!(sdp.contains("a=rtpmap:96 H265/90000\r\n"), "{sdp}");
        assert!(
            sdp.contains(&format!(
                "a=fmtp:96 sprop-vps={};sprop-sps={};sprop-pps={}\r\n",
                STANDARD.encode(&vps),
                STANDARD.encode(&sps),
                STANDARD.encode(&pps)
            )),
            "{sdp}"
        );
        assert!(sdp.contains("IN IP6 ::1"), "{sdp}");
    }

    #[test]
    fn broken_records_do_not_panic() {
        let mut e = h264_entry();
        for len in 0..e.config.len() {
            let mut t = e.clone();
            t.config.truncate(len);
            let _ = describe(&t, 1, "127.0.0.1".parse().unwrap(), "x");
        }
        e.codec = Codec::H265;
        let _ = describe(&e, 1, "127.0.0.1".parse().unwrap(), "x");
        e.config = vec![0xff; 40];
        let _ = describe(&e, 1, "127.0.0.1".parse().unwrap(), "x");
    }
}
