//! The compact per-frame index kept in the database for every recording.
//!
//! Playback and export build MP4 sample tables from it, and `check`
//! compares it with the segment file, so it holds exactly what
//! [`FrameInfo`] holds — each frame's duration, size and key-frame flag —
//! for every frame, in order.
//!
//! # Encoding
//!
//! In the spirit of Moonfire NVR's `video_index`: per frame, two unsigned
//! LEB128 varints, and nothing else (no header, no count; the blob's length
//! ends it):
//!
//! | varint | value |
//! |--------|-------|
//! | 1 | `zigzag(duration − previous frame's duration) << 1 \| key` |
//! | 2 | `zigzag(bytes − bytes of the previous frame of the same kind)` |
//!
//! "Previous" values start at 0; "same kind" means key frames are
//! delta-coded against key frames and other frames against other frames,
//! because the two differ in size by an order of magnitude. `zigzag(d)` is
//! `(d << 1) ^ (d >> 63)` on `i64`, mapping 0, −1, 1, −2, … to 0, 1, 2, 3, ….
//!
//! A steady 25 fps stream has a duration delta of 0 (varint 1 is one byte)
//! and size deltas of a few KB (varint 2 is two bytes): about 3 bytes per
//! frame, ~4.5 KB for a minute.
//!
//! # Invariants
//!
//! * `decode(encode(f)) == f` for every `f`.
//! * [`decode`] never panics and never allocates more than a small
//!   multiple of the blob's length: each frame takes at least two bytes, so
//!   a blob of `n` bytes has at most `n / 2` frames.
//! * A varint that is cut short, longer than 64 bits, or a value outside
//!   `u32` is an [`IndexError`] naming the byte offset.

use crate::FrameInfo;

/// Why an index blob could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The blob ends in the middle of a varint (or after the first varint
    /// of a frame).
    #[error(
        "frame index truncated: varint starting at byte {offset} (frame {frame}) is cut short"
    )]
    Truncated { offset: usize, frame: usize },
    /// A varint does not fit in 64 bits.
    #[error(
        "frame index corrupt: varint starting at byte {offset} (frame {frame}) overflows 64 bits"
    )]
    VarintOverflow { offset: usize, frame: usize },
    /// A decoded duration or size is outside `0..=u32::MAX`.
    #[error("frame index corrupt: {what} of frame {frame} (varint at byte {offset}) is {value}, outside 0..=4294967295")]
    ValueOverflow {
        what: &'static str,
        value: i64,
        offset: usize,
        frame: usize,
    },
}

/// Totals over a run of frames, as the database keeps them per recording.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexSummary {
    /// Number of frames.
    pub frames: u64,
    /// Number of key frames.
    pub key_frames: u64,
    /// Sum of durations, in 90 kHz ticks.
    pub duration_90k: u64,
    /// Sum of frame sizes, in bytes.
    pub bytes: u64,
}

/// Sums `frames`.
pub fn summarize(frames: &[FrameInfo]) -> IndexSummary {
    frames.iter().fold(IndexSummary::default(), |mut s, f| {
        s.frames += 1;
        s.key_frames += u64::from(f.key);
        s.duration_90k = s.duration_90k.saturating_add(u64::from(f.duration_90k));
        s.bytes = s.bytes.saturating_add(u64::from(f.bytes));
        s
    })
}

fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes `frames` (see the module docs for the format).
pub fn encode(frames: &[FrameInfo]) -> Vec<u8> {
    // Typical data takes about 3 bytes a frame.
    let mut out = Vec::with_capacity(frames.len() * 3 + 8);
    let mut prev_duration = 0i64;
    let mut prev_bytes = [0i64; 2]; // [non-key, key]
    for f in frames {
        let d = i64::from(f.duration_90k);
        let b = i64::from(f.bytes);
        let kind = usize::from(f.key);
        put_varint(
            &mut out,
            (zigzag(d - prev_duration) << 1) | u64::from(f.key),
        );
        put_varint(&mut out, zigzag(b - prev_bytes[kind]));
        prev_duration = d;
        prev_bytes[kind] = b;
    }
    out
}

/// Reads one varint at `*pos`, advancing it.
fn get_varint(blob: &[u8], pos: &mut usize, frame: usize) -> Result<u64, IndexError> {
    let start = *pos;
    let mut v = 0u64;
    let mut shift = 0u32;
    loop {
        let Some(&byte) = blob.get(*pos) else {
            return Err(IndexError::Truncated {
                offset: start,
                frame,
            });
        };
        *pos += 1;
        let bits = u64::from(byte & 0x7f);
        // The 10th byte may only carry the top bit of a u64.
        if shift == 63 && bits > 1 || shift > 63 {
            return Err(IndexError::VarintOverflow {
                offset: start,
                frame,
            });
        }
        v |= bits << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
    }
}

fn to_u32(value: i64, what: &'static str, offset: usize, frame: usize) -> Result<u32, IndexError> {
    u32::try_from(value).map_err(|_| IndexError::ValueOverflow {
        what,
        value,
        offset,
        frame,
    })
}

/// Decodes a blob made by [`encode`]. Never panics; see [`IndexError`].
pub fn decode(blob: &[u8]) -> Result<Vec<FrameInfo>, IndexError> {
    // Each frame takes at least two bytes: this bounds the allocation by
    // the blob's length whatever it contains.
    let mut frames = Vec::with_capacity(blob.len() / 2);
    let mut pos = 0;
    let mut prev_duration = 0i64;
    let mut prev_bytes = [0i64; 2];
    while pos < blob.len() {
        let i = frames.len();
        let at1 = pos;
        let v1 = get_varint(blob, &mut pos, i)?;
        let key = v1 & 1 == 1;
        let kind = usize::from(key);
        // v1 >> 1 < 2^63, so the zigzag value and the sum stay in i64 range
        // (|delta| < 2^62, |prev| < 2^32).
        let duration = to_u32(prev_duration + unzigzag(v1 >> 1), "duration", at1, i)?;
        let at2 = pos;
        let v2 = get_varint(blob, &mut pos, i)?;
        let delta = unzigzag(v2);
        let bytes = match prev_bytes[kind].checked_add(delta) {
            Some(b) => to_u32(b, "size", at2, i)?,
            None => {
                return Err(IndexError::ValueOverflow {
                    what: "size",
                    value: delta,
                    offset: at2,
                    frame: i,
                })
            }
        };
        prev_duration = i64::from(duration);
        prev_bytes[kind] = i64::from(bytes);
        frames.push(FrameInfo {
            duration_90k: duration,
            bytes,
            key,
        });
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A 25 fps stream with a key frame every 50 frames: key frames about
    /// 100 KB, others about 10 KB, sizes varying pseudo-randomly, durations
    /// mostly 3600 ticks with the odd jitter of a tick or two as RTP
    /// timestamps have.
    fn typical(n: usize) -> Vec<FrameInfo> {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        (0..n)
            .map(|i| {
                let key = i % 50 == 0;
                let r = next();
                let bytes = if key {
                    95_000 + (r % 10_000) as u32
                } else {
                    8_000 + (r % 4_000) as u32
                };
                let jitter = match (r >> 32) % 20 {
                    0 => 3599,
                    1 => 3601,
                    _ => 3600,
                };
                FrameInfo {
                    duration_90k: jitter,
                    bytes,
                    key,
                }
            })
            .collect()
    }

    #[test]
    fn typical_round_trip_and_size() {
        let frames = typical(25 * 60);
        let blob = encode(&frames);
        assert_eq!(decode(&blob).unwrap(), frames);
        let per_frame = blob.len() as f64 / frames.len() as f64;
        eprintln!(
            "1 minute at 25 fps: {} bytes, {per_frame:.2} bytes/frame",
            blob.len()
        );
        assert!(per_frame < 4.0, "{per_frame} bytes per frame");
        let s = summarize(&frames);
        assert_eq!(s.frames, 1500);
        assert_eq!(s.key_frames, 30);
        assert_eq!(
            s.duration_90k,
            frames
                .iter()
                .map(|f| u64::from(f.duration_90k))
                .sum::<u64>()
        );
        assert_eq!(
            s.bytes,
            frames.iter().map(|f| u64::from(f.bytes)).sum::<u64>()
        );
    }

    #[test]
    fn edge_cases_round_trip() {
        let max = FrameInfo {
            duration_90k: u32::MAX,
            bytes: u32::MAX,
            key: true,
        };
        let zero = FrameInfo::default();
        let all_key: Vec<_> = (0..100)
            .map(|i| FrameInfo {
                duration_90k: 3000,
                bytes: 50_000 + i,
                key: true,
            })
            .collect();
        let cases: Vec<Vec<FrameInfo>> = vec![
            vec![],
            vec![zero],
            vec![max],
            vec![max, zero, max, FrameInfo { key: false, ..max }, zero],
            vec![zero, max, zero],
            all_key,
        ];
        for frames in cases {
            let blob = encode(&frames);
            assert_eq!(decode(&blob).unwrap(), frames, "{frames:?}");
        }
        assert_eq!(encode(&[]), Vec::<u8>::new());
        assert_eq!(summarize(&[]), IndexSummary::default());
        let s = summarize(&[max, max]);
        assert_eq!(s.bytes, 2 * u64::from(u32::MAX));
        assert_eq!(s.key_frames, 2);
    }

    #[test]
    fn errors_name_the_offset() {
        let frames = typical(10);
        let blob = encode(&frames);
        // Cut inside the last frame.
        let err = decode(&blob[..blob.len() - 1]).unwrap_err();
        assert!(
            matches!(err, IndexError::Truncated { frame: 9, .. }),
            "{err:?}"
        );
        // A lone continuation byte.
        assert_eq!(
            decode(&[0x80]).unwrap_err(),
            IndexError::Truncated {
                offset: 0,
                frame: 0
            }
        );
        // Eleven continuation bytes: overflows 64 bits.
        let mut long = vec![0x00, 0x00];
        long.extend([0xff; 10]);
        long.push(0x01);
        let err = decode(&long).unwrap_err();
        assert_eq!(
            err,
            IndexError::VarintOverflow {
                offset: 2,
                frame: 1
            }
        );
        assert!(err.to_string().contains("byte 2"), "{err}");
        // A duration of -1.
        let err = decode(&[zigzag(-1) as u8 * 2, 0]).unwrap_err();
        assert!(
            matches!(
                err,
                IndexError::ValueOverflow {
                    what: "duration",
                    value: -1,
                    ..
                }
            ),
            "{err:?}"
        );
        // A size of 2^32.
        let mut big = vec![0];
        put_varint(&mut big, zigzag(1 << 32));
        let err = decode(&big).unwrap_err();
        assert!(
            matches!(err, IndexError::ValueOverflow { what: "size", .. }),
            "{err:?}"
        );
        // Maximal varints everywhere: errors, no panic, no overflow.
        let mut worst = Vec::new();
        put_varint(&mut worst, u64::MAX);
        put_varint(&mut worst, u64::MAX);
        assert!(decode(&worst).is_err());
    }

    fn frame() -> impl Strategy<Value = FrameInfo> {
        (any::<u32>(), any::<u32>(), any::<bool>()).prop_map(|(d, b, k)| FrameInfo {
            duration_90k: d,
            bytes: b,
            key: k,
        })
    }

    proptest! {
        #[test]
        fn prop_round_trip(frames in proptest::collection::vec(frame(), 0..300)) {
            let blob = encode(&frames);
            prop_assert!(blob.len() >= 2 * frames.len());
            prop_assert_eq!(decode(&blob).unwrap(), frames);
        }

        #[test]
        fn prop_decode_arbitrary_bytes_never_panics(
            blob in proptest::collection::vec(any::<u8>(), 0..400)
        ) {
            if let Ok(frames) = decode(&blob) {
                prop_assert!(frames.len() <= blob.len() / 2);
                // What decodes re-encodes to a blob that decodes the same.
                prop_assert_eq!(decode(&encode(&frames)).unwrap(), frames);
            }
        }
    }
}
