//! Object names at a destination. They carry no camera name, label, event
//! kind or user name: a random id per segment and per event, byte offsets,
//! and times only where they are the upload's own (the key bundle's).
//!
//! ```text
//! k/<µs since 1970, 16 digits>-<8 hex>     key bundle (newest wins, older kept)
//! d/<32 hex>                               a segment's description (sealed)
//! s/<32 hex>/<from, 12 hex>-<to, 12 hex>   bytes [from, to) of that segment's file
//! e/<32 hex>/<version, 4 digits>           an event's copy (sealed), one per version
//! ```
//!
//! A segment's parts cover its file from offset 0 without gaps; each ends
//! at a record boundary. Parts may overlap (an upload repeated after a
//! crash, with more records): restore takes each byte once.

use rand::RngCore;

/// A fresh random object id (128 bits, hex).
pub fn new_object_id() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Whether `id` looks like one of [`new_object_id`]'s.
pub fn is_object_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit())
}

pub const BUNDLES: &str = "k/";
pub const DESCRIPTIONS: &str = "d/";
pub const SEGMENTS: &str = "s/";
pub const EVENTS: &str = "e/";

/// A new key bundle's name at `now`.
pub fn bundle_name(now: jiff::Timestamp) -> String {
    let mut b = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut b);
    format!(
        "{BUNDLES}{:016}-{}",
        now.as_microsecond().max(0),
        hex::encode(b)
    )
}

pub fn description_name(object_id: &str) -> String {
    format!("{DESCRIPTIONS}{object_id}")
}

pub fn part_name(object_id: &str, from: u64, to: u64) -> String {
    format!("{SEGMENTS}{object_id}/{from:012x}-{to:012x}")
}

/// The folder of a segment's parts.
pub fn parts_prefix(object_id: &str) -> String {
    format!("{SEGMENTS}{object_id}/")
}

/// `(from, to)` of a part named by [`part_name`] (the last path element).
pub fn parse_part(name: &str) -> Option<(u64, u64)> {
    let last = name.rsplit('/').next()?;
    let (a, b) = last.split_once('-')?;
    let from = u64::from_str_radix(a, 16).ok()?;
    let to = u64::from_str_radix(b, 16).ok()?;
    (from < to).then_some((from, to))
}

pub fn event_name(object_id: &str, version: i64) -> String {
    format!("{EVENTS}{object_id}/{version:04}")
}

/// `(object id, version)` of an event copy's name.
pub fn parse_event(name: &str) -> Option<(String, i64)> {
    let rest = name.strip_prefix(EVENTS)?;
    let (id, v) = rest.split_once('/')?;
    (is_object_id(id)).then_some(())?;
    Some((id.to_owned(), v.parse().ok()?))
}

/// The object id of a description's name.
pub fn parse_description(name: &str) -> Option<String> {
    let id = name.strip_prefix(DESCRIPTIONS)?;
    is_object_id(id).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reveal_nothing() {
        let id = new_object_id();
        assert!(is_object_id(&id));
        assert_eq!(parse_part(&part_name(&id, 0, 4096)), Some((0, 4096)));
        assert_eq!(parse_part(&part_name(&id, 4096, 4096)), None, "empty");
        assert_eq!(parse_event(&event_name(&id, 3)), Some((id.clone(), 3)));
        assert_eq!(parse_description(&description_name(&id)), Some(id.clone()));
        assert_eq!(parse_description("d/front-door"), None);
        let b = bundle_name(jiff::Timestamp::from_second(1_800_000_000).unwrap());
        assert!(b.starts_with("k/1800000000000000-"), "{b}");
        // Lexical order of bundle names is time order.
        let later = bundle_name(jiff::Timestamp::from_second(1_900_000_000).unwrap());
        assert!(later > b);
    }
}
