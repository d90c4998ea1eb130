//! `segment::scan` (no key) and `SegmentReader` (with a key) on arbitrary
//! bytes: must never panic, and what the scan reports must be
//! self-consistent.
//!
//! Random bytes almost never get past the header (it holds an age file),
//! so the first input byte picks a mode: bit 0 set → the input follows a
//! real, valid segment header (made once at start-up for a fresh member
//! key), which puts the fuzzer straight into record parsing and, with the
//! key, into authentication; clear → the input is the whole file. With a
//! real header, bit 1 picks its version: clear → version 3 (as written;
//! records may start mid-GOP), set → the same header relabelled version 2
//! (every record after the first must start with a key frame), so both
//! rules are fuzzed.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use porchlight_media::segment::{self, SegmentReader, SegmentWriter, FILE_MAGIC_V2};
use porchlight_vault::keys::MemberKey;

/// A valid header for a fresh key, and the key.
fn header() -> &'static (Vec<u8>, MemberKey) {
    static H: OnceLock<(Vec<u8>, MemberKey)> = OnceLock::new();
    H.get_or_init(|| {
        let key = MemberKey::generate();
        let path =
            std::env::temp_dir().join(format!("porchlight-fuzz-header-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let w = SegmentWriter::create(&path, &[key.recipient()]).expect("create header");
        drop(w);
        let bytes = std::fs::read(&path).expect("read header");
        let _ = std::fs::remove_file(&path);
        (bytes, key)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (head, key) = header();
    let bytes = if mode & 1 == 1 {
        let mut b = head.clone();
        if mode & 2 == 2 {
            b[..8].copy_from_slice(FILE_MAGIC_V2);
        }
        b.extend_from_slice(rest);
        b
    } else {
        rest.to_vec()
    };
    if let Ok(s) = segment::scan(Cursor::new(&bytes)) {
        assert!(s.valid_len <= s.file_len);
        assert_eq!(s.file_len, bytes.len() as u64);
        let end = s.records.last().map_or(s.header_len, |r| r.end());
        assert_eq!(end, s.valid_len);
        assert_eq!(s.records.last().map_or(0, |r| r.frames.end), s.frames.len());
        if s.problem.is_none() {
            assert_eq!(s.valid_len, s.file_len);
        }
        if s.header_len > 0 {
            assert_eq!(s.version, bytes[6] - b'0', "version by the magic");
        }
        // Versions 1 and 2: no continuation records.
        if s.version < 3 {
            for r in s.records.iter().skip(1) {
                assert!(
                    s.frames[r.frames.start].key,
                    "a v{} record {} starts mid-GOP",
                    s.version, r.seq
                );
            }
        }
    }
    if let Ok(mut r) = SegmentReader::open(Cursor::new(&bytes), key) {
        // Nothing the fuzzer writes can authenticate.
        if let Ok(recs) = r.records() {
            for rec in &recs {
                assert!(r.read_record(rec).is_err(), "a forged record authenticated");
            }
        }
        let _ = r.verify_all();
    }
});
