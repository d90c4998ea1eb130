//! RTP packetization of H.264 (RFC 6184) and H.265 (RFC 7798) access
//! units, framed for RTSP interleaved transport (`$`, channel, length), and
//! RTCP sender reports.
//!
//! One access unit becomes one or more packets sharing its 90 kHz
//! timestamp; the last carries the marker bit. A NAL unit up to
//! [`MAX_PAYLOAD`] bytes goes alone in a packet (single NAL unit mode);
//! a larger one is split into fragmentation units (FU-A, type 28, for
//! H.264; FU, type 49, for H.265). Aggregation packets are never sent.

use porchlight_media::Codec;

use crate::sdp::PAYLOAD_TYPE;

/// Largest RTP payload sent (keeps packets under a 1500-byte MTU, should
/// they ever be relayed over UDP).
pub const MAX_PAYLOAD: usize = 1400;

/// The NAL units of a length-prefixed access unit (4-byte big-endian
/// lengths). Stops at the first inconsistent length; empty NAL units are
/// skipped.
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || loop {
        if rest.len() < 4 {
            return None;
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(nal) = rest.get(4..4usize.checked_add(len)?) else {
            rest = &[];
            return None;
        };
        rest = &rest[4 + len..];
        if !nal.is_empty() {
            return Some(nal);
        }
    })
}

/// The NAL unit type (H.264: 5 bits; H.265: 6 bits).
pub fn nal_type(codec: Codec, nal: &[u8]) -> u8 {
    match codec {
        Codec::H264 => nal[0] & 0x1f,
        Codec::H265 => (nal[0] >> 1) & 0x3f,
    }
}

/// True when the access unit's NAL units include every kind of parameter
/// set the codec needs (SPS and PPS; for H.265 also VPS).
pub fn has_parameter_sets(codec: Codec, nals: &[&[u8]]) -> bool {
    let needed: &[u8] = match codec {
        Codec::H264 => &[7, 8],
        Codec::H265 => &[32, 33, 34],
    };
    needed
        .iter()
        .all(|t| nals.iter().any(|n| nal_type(codec, n) == *t))
}

/// Packetizes access units of one stream.
#[derive(Debug, Clone)]
pub struct Packetizer {
    pub codec: Codec,
    pub ssrc: u32,
    /// Sequence number of the next packet.
    pub seq: u16,
    /// Interleaved channel for RTP.
    pub channel: u8,
    /// Packets and payload octets sent (for sender reports).
    pub packets: u32,
    pub octets: u32,
}

impl Packetizer {
    pub fn new(codec: Codec, ssrc: u32, seq: u16, channel: u8) -> Packetizer {
        Packetizer {
            codec,
            ssrc,
            seq,
            channel,
            packets: 0,
            octets: 0,
        }
    }

    /// Appends the interleaved RTP packets of one access unit to `out`.
    pub fn packetize(&mut self, nals: &[&[u8]], timestamp: u32, out: &mut Vec<u8>) {
        let nals: Vec<&[u8]> = nals
            .iter()
            .copied()
            .filter(|n| n.len() >= self.header_len())
            .collect();
        for (i, nal) in nals.iter().enumerate() {
            let last_nal = i + 1 == nals.len();
            if nal.len() <= MAX_PAYLOAD {
                self.packet(timestamp, last_nal, &[nal], out);
                continue;
            }
            let hl = self.header_len();
            let (ind, typ) = match self.codec {
                Codec::H264 => (vec![(nal[0] & 0xe0) | 28], nal[0] & 0x1f),
                Codec::H265 => (
                    vec![(nal[0] & 0x81) | (49 << 1), nal[1]],
                    (nal[0] >> 1) & 0x3f,
                ),
            };
            let body = &nal[hl..];
            let chunk = MAX_PAYLOAD - hl - 1;
            let count = body.len().div_ceil(chunk);
            for (k, part) in body.chunks(chunk).enumerate() {
                let start = if k == 0 { 0x80 } else { 0 };
                let end = if k + 1 == count { 0x40 } else { 0 };
                let fu_header = [start | end | typ];
                let marker = last_nal && k + 1 == count;
                self.packet(timestamp, marker, &[&ind, &fu_header, part], out);
            }
        }
    }

    /// NAL unit header length: 1 (H.264) or 2 (H.265) bytes.
    fn header_len(&self) -> usize {
        match self.codec {
            Codec::H264 => 1,
            Codec::H265 => 2,
        }
    }

    fn packet(&mut self, timestamp: u32, marker: bool, payload: &[&[u8]], out: &mut Vec<u8>) {
        let len: usize = 12 + payload.iter().map(|p| p.len()).sum::<usize>();
        out.push(b'$');
        out.push(self.channel);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push(0x80);
        out.push(if marker { 0x80 } else { 0 } | PAYLOAD_TYPE);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for p in payload {
            out.extend_from_slice(p);
        }
        self.seq = self.seq.wrapping_add(1);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add((len - 12) as u32);
    }
}

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Appends an interleaved RTCP sender report (RFC 3550 6.4.1) saying that
/// wall-clock time `at` corresponds to RTP time `rtp_ts`.
pub fn sender_report(
    p: &Packetizer,
    channel: u8,
    at: jiff::Timestamp,
    rtp_ts: u32,
    out: &mut Vec<u8>,
) {
    let secs = (at.as_second() as u64).wrapping_add(NTP_UNIX_OFFSET);
    let frac = ((u64::from(at.subsec_nanosecond().unsigned_abs()) << 32) / 1_000_000_000) as u32;
    out.push(b'$');
    out.push(channel);
    out.extend_from_slice(&28u16.to_be_bytes());
    out.push(0x80); // V=2, P=0, RC=0
    out.push(200); // SR
    out.extend_from_slice(&6u16.to_be_bytes()); // length in words - 1
    out.extend_from_slice(&p.ssrc.to_be_bytes());
    out.extend_from_slice(&(secs as u32).to_be_bytes());
    out.extend_from_slice(&frac.to_be_bytes());
    out.extend_from_slice(&rtp_ts.to_be_bytes());
    out.extend_from_slice(&p.packets.to_be_bytes());
    out.extend_from_slice(&p.octets.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parsed interleaved RTP packet.
    #[derive(Debug)]
    struct Pkt {
        channel: u8,
        marker: bool,
        pt: u8,
        seq: u16,
        ts: u32,
        ssrc: u32,
        payload: Vec<u8>,
    }

    fn split(mut b: &[u8]) -> Vec<Pkt> {
        let mut out = Vec::new();
        while !b.is_empty() {
            assert_eq!(b[0], b'$');
            let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
            let p = &b[4..4 + len];
            assert_eq!(p[0], 0x80, "V=2, no padding, no extension, no CSRC");
            out.push(Pkt {
                channel: b[1],
                marker: p[1] & 0x80 != 0,
                pt: p[1] & 0x7f,
                seq: u16::from_be_bytes([p[2], p[3]]),
                ts: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
                payload: p[12..].to_vec(),
            });
            b = &b[4 + len..];
        }
        out
    }

    /// An independent depacketizer: RTP payloads back to NAL units.
    fn depacketize(codec: Codec, pkts: &[Pkt]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        let mut fu: Option<Vec<u8>> = None;
        for p in pkts {
            let d = &p.payload;
            match codec {
                Codec::H264 => match d[0] & 0x1f {
                    28 => {
                        let (s, e) = (d[1] & 0x80 != 0, d[1] & 0x40 != 0);
                        if s {
                            assert!(fu.is_none(), "FU-A start inside a fragment");
                            fu = Some(vec![(d[0] & 0xe0) | (d[1] & 0x1f)]);
                        }
                        fu.as_mut()
                            .expect("FU-A continuation without start")
                            .extend_from_slice(&d[2..]);
                        if e {
                            nals.push(fu.take().unwrap());
                        }
                    }
                    1..=23 => nals.push(d.clone()),
                    t => panic!("unexpected packet type {t}"),
                },
                Codec::H265 => match (d[0] >> 1) & 0x3f {
                    49 => {
                        let (s, e) = (d[2] & 0x80 != 0, d[2] & 0x40 != 0);
                        if s {
                            assert!(fu.is_none());
                            fu = Some(vec![(d[0] & 0x81) | ((d[2] & 0x3f) << 1), d[1]]);
                        }
                        fu.as_mut().unwrap().extend_from_slice(&d[3..]);
                        if e {
                            nals.push(fu.take().unwrap());
                        }
                    }
                    48 | 50 => panic!("aggregation / PACI never sent"),
                    _ => nals.push(d.clone()),
                },
            }
        }
        assert!(fu.is_none(), "unfinished fragment");
        nals
    }

    fn pattern(len: usize, header: &[u8]) -> Vec<u8> {
        let mut v = header.to_vec();
        v.extend((0..len - header.len()).map(|i| (i * 7 + len) as u8));
        v
    }

    #[test]
    fn h264_single_and_fu_a_roundtrip() {
        let nals = [
            pattern(9, &[0x67]),
            pattern(4, &[0x68]),
            pattern(1400, &[0x65]),
            pattern(1401, &[0x65]),
            pattern(50_000, &[0x65]),
            pattern(2 * 1398 + 1, &[0x41]),
        ];
        let refs: Vec<&[u8]> = nals.iter().map(Vec::as_slice).collect();
        let mut p = Packetizer::new(Codec::H264, 0xdead_beef, 65_530, 0);
        let mut out = Vec::new();
        p.packetize(&refs, 123_456, &mut out);
        let pkts = split(&out);
        assert!(pkts.len() > 40);
        for (i, k) in pkts.iter().enumerate() {
            assert_eq!(k.channel, 0);
            assert_eq!(k.pt, 96);
            assert_eq!(k.ts, 123_456);
            assert_eq!(k.ssrc, 0xdead_beef);
            assert_eq!(k.seq, 65_530u16.wrapping_add(i as u16), "wraps");
            assert_eq!(k.marker, i + 1 == pkts.len(), "marker on the last only");
            assert!(k.payload.len() <= MAX_PAYLOAD);
        }
        assert_eq!(
            pkts[2].payload.len(),
            1400,
            "1400 bytes still fit in one packet"
        );
        assert_eq!(depacketize(Codec::H264, &pkts), nals);
        assert_eq!(p.packets as usize, pkts.len());
        assert_eq!(
            p.octets as usize,
            pkts.iter().map(|k| k.payload.len()).sum::<usize>()
        );
    }

    #[test]
    fn h265_fu_roundtrip() {
        let nals = [
            pattern(30, &[0x40, 0x01]),
            pattern(3000, &[0x26, 0x01]),
            pattern(700, &[0x02, 0x01]),
        ];
        let refs: Vec<&[u8]> = nals.iter().map(Vec::as_slice).collect();
        let mut p = Packetizer::new(Codec::H265, 1, 0, 2);
        let mut out = Vec::new();
        p.packetize(&refs, 9, &mut out);
        let pkts = split(&out);
        assert_eq!(pkts.len(), 1 + 3 + 1);
        assert!(pkts.iter().all(|k| k.channel == 2));
        assert!(pkts.last().unwrap().marker);
        assert_eq!(pkts.iter().filter(|k| k.marker).count(), 1);
        assert_eq!(depacketize(Codec::H265, &pkts), nals);
    }

    #[test]
    fn frames_from_length_prefixed_data() {
        let mut au = Vec::new();
        for n in [&[0x67u8, 1, 2][..], &[], &[0x65, 9]] {
            au.extend_from_slice(&(n.len() as u32).to_be_bytes());
            au.extend_from_slice(n);
        }
        let got: Vec<&[u8]> = nal_units(&au).collect();
        assert_eq!(got, [&[0x67u8, 1, 2][..], &[0x65, 9]]);
        assert!(!has_parameter_sets(Codec::H264, &got));
        // Truncated and absurd lengths end the iteration.
        assert_eq!(nal_units(&au[..au.len() - 1]).count(), 1);
        assert_eq!(nal_units(&[0xff, 0xff, 0xff, 0xff, 1]).count(), 0);
        assert_eq!(nal_units(&[0, 0]).count(), 0);
    }

    #[test]
    fn parameter_set_detection() {
        let h264: [&[u8]; 3] = [&[0x67, 0], &[0x68, 0], &[0x65, 0]];
        assert!(has_parameter_sets(Codec::H264, &h264));
        assert!(!has_parameter_sets(Codec::H264, &h264[1..]));
        let h265: [&[u8]; 4] = [&[0x40, 1], &[0x42, 1], &[0x44, 1], &[0x26, 1]];
        assert!(has_parameter_sets(Codec::H265, &h265));
        assert!(!has_parameter_sets(Codec::H265, &h265[1..]));
    }

    #[test]
    fn sender_report_layout() {
        let p = Packetizer::new(Codec::H264, 7, 0, 0);
        let mut out = Vec::new();
        let at = jiff::Timestamp::from_second(0).unwrap();
        sender_report(&p, 1, at, 99, &mut out);
        assert_eq!(out.len(), 4 + 28);
        assert_eq!(&out[..4], &[b'$', 1, 0, 28]);
        assert_eq!(&out[4..8], &[0x80, 200, 0, 6]);
        assert_eq!(
            u32::from_be_bytes(out[12..16].try_into().unwrap()),
            2_208_988_800
        );
        assert_eq!(u32::from_be_bytes(out[20..24].try_into().unwrap()), 99);
    }
}
