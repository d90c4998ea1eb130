//! `index::decode` on arbitrary bytes: must never panic, and whatever it
//! accepts must re-encode to a blob that decodes to the same frames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porchlight_media::index;

fuzz_target!(|data: &[u8]| {
    if let Ok(frames) = index::decode(data) {
        assert!(frames.len() <= data.len() / 2);
        let again = index::decode(&index::encode(&frames)).expect("re-encoded index decodes");
        assert_eq!(again, frames);
    }
});
