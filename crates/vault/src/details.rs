//! Event details sealed to the household's keys: what happened (kind,
//! alert, score, zones, labels, the alarm's from/to/by/cause, a trigger's
//! note) is kept as one small age file per event in `events.sealed`, the
//! same format as snapshots and exports ([`crate::stream`], X25519
//! recipients). `age -d -i key.txt` opens a value copied out of the
//! database.
//!
//! * **Writing needs only public keys.** [`insert_event`] and
//!   [`update_event`] seal to [`recipients_for`] the event *at that moment*
//!   — the camera's recipients (owners and members granted it), or the
//!   owners for the alarm's events and events tied to no camera — so
//!   recording goes on with nobody signed in, and an update (an ongoing
//!   event gained labels) is sealed again to whoever may see it now.
//! * **Nobody to seal to, nothing kept.** With no recipient (no member
//!   with a key yet) the event is stored with its clear index only and an
//!   empty `sealed`: there is no plaintext fallback.
//! * **Reading needs a member's unlocked key.** [`open_event`] returns the
//!   opened row or why it cannot be ([`Unreadable`]): sealed to other
//!   members, not kept, no key, damaged — a list shows such an event as a
//!   bare index entry rather than failing. Only bytes age authenticated
//!   are parsed; sealed values over [`MAX_SEALED_BYTES`] are refused
//!   unread.
//! * **Filtering by kind happens after opening** ([`events`]) and is
//!   bounded: at most [`MAX_SCAN`] rows are opened per query.
//! * **Old rows.** [`seal_legacy_events`] seals rows written before
//!   migration 13 to the recipients of now, clears their plaintext
//!   (`secure_delete` zeroes it in the page) and vacuums the database so no
//!   free page or WAL frame keeps it; the hub runs it at start-up.

use std::io::{Read, Write};

use porchlight_store::{
    EventDetails, EventFilter, EventRow, NewAuditEntry, NewEvent, Store, StoreError, StoredDetails,
    StoredEvent,
};

use crate::keys::MemberKey;
use crate::stream::{self, StreamError};

/// Largest sealed value [`open_event`] reads (an event's details are a few
/// hundred bytes; detection keeps at most 20 objects, a trigger's detail is
/// at most 4 KiB).
pub const MAX_SEALED_BYTES: usize = 256 << 10;

/// Most rows one [`events`] query opens while looking for a kind.
pub const MAX_SCAN: usize = 5000;

/// Why an event's details could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("cannot seal an event's details: {0}")]
    Encrypt(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a reader cannot see an event's details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// The reader's key is not among the recipients (the event happened
    /// before they were granted the camera, or it is an alarm event, which
    /// is sealed to the owners).
    #[error("sealed to other members")]
    OtherMembers,
    /// Nobody could be sealed to when it happened.
    #[error("details not kept (no member had a key when it happened)")]
    NotKept,
    /// The reader's key is not unlocked (the hub restarted since sign-in).
    #[error("your household key is locked: sign in again to see the details")]
    Locked,
    /// Altered, truncated or oversized.
    #[error("the sealed details are damaged: {0}")]
    Damaged(String),
}

/// Public keys an event of `camera_id` written by `source` is sealed to:
/// the owners for the alarm's events and events tied to no camera, else
/// the camera's recipients. Keys that do not parse are skipped.
pub async fn recipients_for(
    store: &Store,
    camera_id: Option<i64>,
    source: &str,
) -> Result<Vec<age::x25519::Recipient>, StoreError> {
    let raw = match camera_id {
        Some(c) if source != "alarm" => store.camera_recipients(c).await?,
        _ => store.owner_recipients().await?,
    };
    Ok(raw.iter().filter_map(|r| r.parse().ok()).collect())
}

/// `details` as an age file to `recipients`; empty when there are none.
pub fn seal(
    details: &EventDetails,
    recipients: &[age::x25519::Recipient],
) -> Result<Vec<u8>, SealError> {
    if recipients.is_empty() {
        return Ok(Vec::new());
    }
    seal_json(details, recipients)
}

/// Any value as JSON in an age file to `recipients` (at least one). The
/// plaintext JSON is zeroed when dropped. Event details use it, and so do
/// the off-site backup's descriptions and event copies.
pub fn seal_json<T: serde::Serialize>(
    value: &T,
    recipients: &[age::x25519::Recipient],
) -> Result<Vec<u8>, SealError> {
    let json = zeroize::Zeroizing::new(
        serde_json::to_vec(value).map_err(|e| SealError::Encrypt(e.to_string()))?,
    );
    let mut w = stream::encrypt_to(recipients, Vec::with_capacity(json.len() + 512))
        .map_err(|e| SealError::Encrypt(e.to_string()))?;
    w.write_all(&json)
        .map_err(|e| SealError::Encrypt(e.to_string()))?;
    w.finish().map_err(|e| SealError::Encrypt(e.to_string()))
}

/// Opens a value sealed by [`seal_json`] with `key`; a sealed value over
/// `limit` bytes is refused unread and at most `limit` bytes of plaintext
/// are read. [`Unreadable::OtherMembers`] when `key` is not a recipient,
/// else [`Unreadable::Damaged`] with why (`what` names the value when its
/// JSON is not one).
pub fn open_json<T: serde::de::DeserializeOwned>(
    sealed: &[u8],
    key: &MemberKey,
    what: &str,
    limit: usize,
) -> Result<T, Unreadable> {
    if sealed.len() > limit {
        return Err(Unreadable::Damaged(format!(
            "{} bytes, over the {limit}-byte limit",
            sealed.len()
        )));
    }
    let reader = stream::open_sequential(key, sealed).map_err(|e| match e {
        StreamError::NotARecipient => Unreadable::OtherMembers,
        other => Unreadable::Damaged(other.to_string()),
    })?;
    let mut json = zeroize::Zeroizing::new(Vec::new());
    reader
        .take(limit as u64)
        .read_to_end(&mut json)
        .map_err(|e| Unreadable::Damaged(e.to_string()))?;
    serde_json::from_slice(&json).map_err(|e| Unreadable::Damaged(format!("not {what}: {e}")))
}

/// Opens one sealed value with `key`.
pub fn open(sealed: &[u8], key: &MemberKey) -> Result<EventDetails, Unreadable> {
    if sealed.is_empty() {
        return Err(Unreadable::NotKept);
    }
    open_json(sealed, key, "event details", MAX_SEALED_BYTES)
}

/// The stored event `e` opened with `key` (None: no unlocked key).
pub fn open_event(e: &StoredEvent, key: Option<&MemberKey>) -> Result<EventRow, Unreadable> {
    let details = match &e.details {
        StoredDetails::Legacy(d) => d.clone(),
        StoredDetails::NotKept => return Err(Unreadable::NotKept),
        StoredDetails::Sealed(b) => open(b, key.ok_or(Unreadable::Locked)?)?,
    };
    Ok(EventRow::from_parts(e, details))
}

/// Records `e`, its details sealed to [`recipients_for`] it now.
pub async fn insert_event(
    store: &Store,
    e: &NewEvent,
    now: jiff::Timestamp,
) -> Result<i64, SealError> {
    let to = recipients_for(store, e.camera_id, &e.source).await?;
    let sealed = seal(&e.details(), &to)?;
    let id = store.insert_sealed_event(e, &sealed, now).await?;
    mark_for_backup(store, id, e, now).await?;
    Ok(id)
}

/// Marks event `id` for off-site backup when its kind is one that goes
/// ([`porchlight_store::backup::worthy`]): decided here, the one place an
/// event's kind is in clear before it is sealed.
async fn mark_for_backup(
    store: &Store,
    id: i64,
    e: &NewEvent,
    now: jiff::Timestamp,
) -> Result<(), StoreError> {
    if porchlight_store::backup::worthy(&e.kind, e.alert) {
        store.mark_event_for_backup(id, now).await?;
    }
    Ok(())
}

/// Replaces the details of the ongoing event `id` with `e`'s (the whole
/// current state, not a difference: nobody on the hub can read the old
/// ones), sealed to the recipients of now. `e`'s index (times, snapshot)
/// is not changed here.
pub async fn update_event(store: &Store, id: i64, e: &NewEvent) -> Result<(), SealError> {
    let to = recipients_for(store, e.camera_id, &e.source).await?;
    let sealed = seal(&e.details(), &to)?;
    store.reseal_event(id, &sealed).await?;
    // A detection that opened as motion may have become a person.
    mark_for_backup(store, id, e, jiff::Timestamp::now()).await?;
    Ok(())
}

/// One page of events for a reader.
#[derive(Debug, Default)]
pub struct Listing {
    /// Newest first: each event opened, or its index and why not.
    pub events: Vec<Result<EventRow, (StoredEvent, Unreadable)>>,
    /// More rows matched the index than were opened ([`MAX_SCAN`]) while
    /// looking for a kind: the result may miss older ones.
    pub truncated: bool,
}

/// Events matching `f` (at most `f.limit`, 0: 100), opened with `key`.
/// With `kind`, only events whose opened kind is `kind` (events the key
/// cannot open are left out, since their kind is unknown), looking through
/// at most [`MAX_SCAN`] rows.
pub async fn events(
    store: &Store,
    f: &EventFilter,
    kind: Option<&str>,
    key: Option<&MemberKey>,
) -> Result<Listing, StoreError> {
    let limit = if f.limit > 0 { f.limit as usize } else { 100 };
    let mut out = Listing::default();
    let mut page = f.clone();
    page.limit = if kind.is_some() { 200 } else { limit as i64 };
    let mut scanned = 0;
    loop {
        let rows = store.events(&page).await?;
        let last = rows.last().map(|r| (r.start, r.id));
        let n = rows.len();
        for r in rows {
            scanned += 1;
            let opened = open_event(&r, key);
            let keep = match (&opened, kind) {
                (_, None) => true,
                (Ok(row), Some(k)) => row.kind == k,
                (Err(_), Some(_)) => false,
            };
            if keep {
                out.events.push(opened.map_err(|why| (r, why)));
            }
            if out.events.len() >= limit {
                return Ok(out);
            }
        }
        if kind.is_none() || (n as i64) < page.limit {
            return Ok(out);
        }
        if scanned >= MAX_SCAN {
            out.truncated = true;
            return Ok(out);
        }
        page.before = last;
    }
}

/// Seals every row written before migration 13 to the recipients of now,
/// clears its plaintext, and when there were any, audits the pass and
/// vacuums the database (no free page or WAL frame keeps the plaintext).
/// Returns how many rows were sealed.
pub async fn seal_legacy_events(store: &Store, now: jiff::Timestamp) -> Result<usize, SealError> {
    let mut sealed = 0;
    let mut not_kept = 0;
    loop {
        let rows = store.legacy_events(200).await?;
        if rows.is_empty() {
            break;
        }
        for r in rows {
            let StoredDetails::Legacy(d) = &r.details else {
                continue;
            };
            let to = recipients_for(store, r.camera_id, &r.source).await?;
            if to.is_empty() {
                not_kept += 1;
            }
            store.seal_legacy_event(r.id, &seal(d, &to)?).await?;
            sealed += 1;
        }
    }
    if sealed > 0 {
        store
            .append_audit(
                &NewAuditEntry {
                    actor: "system".into(),
                    action: "events.seal".into(),
                    target: "events".into(),
                    detail: serde_json::json!({"sealed": sealed - not_kept, "not_kept": not_kept}),
                    client: String::new(),
                },
                now,
            )
            .await?;
        store.vacuum().await?;
    }
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details() -> EventDetails {
        EventDetails {
            kind: "person".into(),
            alert: true,
            score: Some(0.81),
            zones: vec!["porch".into()],
            detail: serde_json::json!({"labels": ["person"]}),
        }
    }

    #[test]
    fn sealed_to_recipients_only() {
        let (a, b) = (MemberKey::generate(), MemberKey::generate());
        let blob = seal(&details(), &[a.recipient()]).unwrap();
        assert!(!String::from_utf8_lossy(&blob).contains("person"));
        assert!(!String::from_utf8_lossy(&blob).contains("porch"));
        assert_eq!(open(&blob, &a).unwrap(), details());
        assert_eq!(open(&blob, &b), Err(Unreadable::OtherMembers));
        assert!(seal(&details(), &[]).unwrap().is_empty());
        assert_eq!(open(&[], &a), Err(Unreadable::NotKept));
    }

    #[test]
    fn damage_is_an_error_never_garbage() {
        let a = MemberKey::generate();
        let mut blob = seal(&details(), &[a.recipient()]).unwrap();
        let n = blob.len();
        blob[n - 5] ^= 1;
        assert!(matches!(open(&blob, &a), Err(Unreadable::Damaged(_))));
        assert!(matches!(
            open(&blob[..n - 20], &a),
            Err(Unreadable::Damaged(_))
        ));
        assert!(matches!(open(b"not age", &a), Err(Unreadable::Damaged(_))));
        let huge = vec![0u8; MAX_SEALED_BYTES + 1];
        assert!(matches!(open(&huge, &a), Err(Unreadable::Damaged(_))));
    }

    #[test]
    fn interop_with_age_cli() {
        // `age -d` opens a value copied out of the database, when installed.
        let Ok(out) = std::process::Command::new("age").arg("--version").output() else {
            return;
        };
        if !out.status.success() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let key = MemberKey::generate();
        let id = dir.path().join("key.txt");
        {
            use age::secrecy::ExposeSecret;
            std::fs::write(&id, key.identity().to_string().expose_secret()).unwrap();
        }
        let blob_path = dir.path().join("d.age");
        std::fs::write(&blob_path, seal(&details(), &[key.recipient()]).unwrap()).unwrap();
        let out = std::process::Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&id)
            .arg(&blob_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let d: EventDetails = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(d, details());
    }
}
