//! Just enough NAL-unit parsing for the recorder's decisions.

/// True when a length-prefixed (4-byte, "AVC form") H.265 access unit
/// holds an IRAP picture: a VCL NAL unit of type 16..=23 (BLA, IDR, CRA).
///
/// Why the recorder needs this: `retina` marks only IDR pictures as random
/// access points, but encoders such as x265 start GOPs with CRA pictures.
/// Without B-frames (no RASL pictures follow a CRA) decoding can start at a
/// CRA exactly as at an IDR, so segments and exports may start there too.
pub fn hevc_is_irap(au: &[u8]) -> bool {
    let mut rest = au;
    while rest.len() >= 6 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(nal) = rest.get(4..4 + len) else {
            return false;
        };
        if let Some(&b) = nal.first() {
            let t = (b >> 1) & 0x3f;
            if t < 32 {
                // The first VCL NAL unit decides.
                return (16..=23).contains(&t);
            }
        }
        rest = &rest[4 + len..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::hevc_is_irap;

    fn au(types: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for t in types {
            v.extend_from_slice(&3u32.to_be_bytes());
            v.extend_from_slice(&[t << 1, 1, 0xaf]);
        }
        v
    }

    #[test]
    fn irap_types() {
        assert!(hevc_is_irap(&au(&[32, 33, 34, 21]))); // VPS SPS PPS CRA
        assert!(hevc_is_irap(&au(&[19]))); // IDR_W_RADL
        assert!(!hevc_is_irap(&au(&[1]))); // TRAIL_R
        assert!(!hevc_is_irap(&au(&[35, 0]))); // AUD, TRAIL_N
        assert!(!hevc_is_irap(&[]));
        assert!(!hevc_is_irap(&[0, 0, 0, 99, 1])); // truncated: no panic
    }
}
