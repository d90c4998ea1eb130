//! Fragmented MP4 for the live view (Media Source Extensions) and the web
//! player.
//!
//! A stream is one [`init_segment`] (`ftyp` + `moov` with an empty sample
//! table and `mvex`/`trex`) followed by any number of [`media_segment`]s
//! (`moof` + `mdat`), one per GOP or less. Track 1, timescale 90 kHz, as in
//! [`crate::mp4`].
//!
//! ```text
//! init:   ftyp (iso5, iso6, mp41)
//!         moov { mvhd, trak { tkhd, mdia { mdhd, hdlr, minf { vmhd, dinf,
//!                stbl { stsd, stts, stsc, stsz, stco (all empty) } } } },
//!                mvex { trex } }
//! media:  moof { mfhd (sequence), traf { tfhd (default-base-is-moof),
//!                tfdt (v1, base decode time), trun (data offset; per-sample
//!                duration, size, flags) } }
//!         mdat (the samples, in order)
//! ```
//!
//! The init segment's brands leave out `avc1`: ISO/IEC 14496-12 A.2 does
//! not allow the default-base-is-moof flag in files marked with it.

use crate::mp4::{
    start_mdia, validate_entry, write_mvhd, write_stsd, write_tkhd, BoxWriter, MovieTimes, Mp4Error,
};
use crate::{FrameInfo, VideoSampleEntry};

/// `sample_flags` of a sync sample: depends on no other sample.
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: depends on others, is non-sync.
const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// The initialization segment for `entry`: `ftyp` + `moov` (with `mvex`).
/// Deterministic: the same entry always gives the same bytes.
pub fn init_segment(entry: &VideoSampleEntry) -> Result<Vec<u8>, Mp4Error> {
    validate_entry(entry)?;
    let times = MovieTimes {
        created: 0,
        duration_90k: 0,
    };
    let mut w = BoxWriter::new();
    w.start(b"ftyp");
    w.bytes(b"iso5"); // major_brand
    w.u32(0x200); // minor_version
    w.bytes(b"iso5");
    w.bytes(b"iso6");
    w.bytes(b"mp41");
    w.end()?;

    w.start(b"moov");
    write_mvhd(&mut w, &times)?;
    w.start(b"trak");
    write_tkhd(&mut w, &times, entry)?;
    start_mdia(&mut w, &times)?;
    w.start(b"stbl");
    write_stsd(&mut w, entry)?;
    for fourcc in [b"stts", b"stsc", b"stco"] {
        w.start_full(fourcc, 0, 0);
        w.u32(0); // entry_count
        w.end()?;
    }
    w.start_full(b"stsz", 0, 0);
    w.u32(0); // sample_size
    w.u32(0); // sample_count
    w.end()?;
    w.end()?; // stbl
    w.end()?; // minf
    w.end()?; // mdia
    w.end()?; // trak
    w.start(b"mvex");
    w.start_full(b"trex", 0, 0);
    w.u32(1); // track_ID
    w.u32(1); // default_sample_description_index
    w.u32(0); // default_sample_duration
    w.u32(0); // default_sample_size
    w.u32(NON_SYNC_SAMPLE_FLAGS); // default_sample_flags
    w.end()?;
    w.end()?; // mvex
    w.end()?; // moov
    Ok(w.finish())
}

/// One media segment (`moof` + `mdat`) holding `frames` in decode order,
/// each frame's info with its sample data (length-prefixed NAL units, as
/// stored). `sequence` numbers the segment (1, 2, …); the first frame is
/// decoded at `base_decode_time_90k`, the sum of all earlier frames'
/// durations. Each `data.len()` must equal its `info.bytes`.
pub fn media_segment(
    sequence: u32,
    base_decode_time_90k: u64,
    frames: &[(FrameInfo, &[u8])],
) -> Result<Vec<u8>, Mp4Error> {
    if frames.is_empty() {
        return Err(Mp4Error::NoFrames);
    }
    let sample_count = u32::try_from(frames.len())
        .map_err(|_| Mp4Error::TooLarge(format!("{} frames in one fragment", frames.len())))?;
    let mut data_len: u64 = 0;
    for (index, (info, data)) in frames.iter().enumerate() {
        if data.len() as u64 != u64::from(info.bytes) {
            return Err(Mp4Error::InvalidFrame {
                index,
                reason: format!(
                    "info says {} bytes but the data has {}",
                    info.bytes,
                    data.len()
                ),
            });
        }
        if data.is_empty() {
            return Err(Mp4Error::InvalidFrame {
                index,
                reason: "frame has no data (0 bytes)".into(),
            });
        }
        data_len += data.len() as u64;
    }
    // A fragment is small (a GOP); keep mdat and the trun data offset in
    // their 32-bit forms, which every MSE implementation handles.
    let mdat_size = u32::try_from(data_len + 8)
        .map_err(|_| Mp4Error::TooLarge(format!("{data_len} bytes of data in one fragment")))?;

    let mut w = BoxWriter::new();
    w.buf.reserve(128 + frames.len() * 12 + data_len as usize);
    w.start(b"moof");
    w.start_full(b"mfhd", 0, 0);
    w.u32(sequence);
    w.end()?;
    w.start(b"traf");
    w.start_full(b"tfhd", 0, 0x02_0000); // default-base-is-moof
    w.u32(1); // track_ID
    w.end()?;
    w.start_full(b"tfdt", 1, 0);
    w.u64(base_decode_time_90k);
    w.end()?;
    // trun flags: data-offset, sample-duration, sample-size, sample-flags.
    w.start_full(b"trun", 0, 0x00_0001 | 0x00_0100 | 0x00_0200 | 0x00_0400);
    w.u32(sample_count);
    let data_offset_at = w.buf.len();
    w.u32(0); // data_offset: patched below
    for (info, _) in frames {
        w.u32(info.duration_90k);
        w.u32(info.bytes);
        w.u32(if info.key {
            SYNC_SAMPLE_FLAGS
        } else {
            NON_SYNC_SAMPLE_FLAGS
        });
    }
    w.end()?; // trun
    w.end()?; // traf
    w.end()?; // moof
              // Relative to the start of moof (at 0), past the 8-byte mdat header.
    let data_offset = i32::try_from(w.buf.len() + 8)
        .map_err(|_| Mp4Error::TooLarge("moof larger than 2 GiB".into()))?;
    w.buf[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());

    w.u32(mdat_size);
    w.bytes(b"mdat");
    for (_, data) in frames {
        w.bytes(data);
    }
    Ok(w.finish())
}
