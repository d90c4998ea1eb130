//! What the copies are: a description per segment and a copy per event,
//! each an age file to the household members who may see that camera
//! (the owners, for the alarm's events), so the destination learns none of
//! it. Restore opens the ones the restoring member's key opens.

use base64::Engine as _;
use porchlight_vault::details::Unreadable;
use porchlight_vault::keys::MemberKey;

use crate::{BackupError, Result};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A segment file's description: what restore needs besides the file to
/// build an MP4 (where it sits on the clock, its codec configuration) and
/// to find it (camera).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SegmentDescription {
    pub format: String,
    /// The recording's id on the hub (orders segments of one start time).
    pub recording_id: i64,
    pub camera_id: i64,
    pub camera: String,
    pub stream: String,
    pub run_id: i64,
    /// Wall clock of the first frame, µs since 1970.
    pub start_us: i64,
    pub codec: String,
    pub width: i64,
    pub height: i64,
    /// Base64 of the codec configuration (avcC / hvcC).
    pub config: String,
    pub rfc6381: String,
}

pub const SEGMENT_FORMAT: &str = "porchlight-backup-segment/1";
pub const EVENT_FORMAT: &str = "porchlight-backup-event/1";

impl SegmentDescription {
    /// The MP4 sample entry it describes.
    pub fn sample_entry(&self) -> Result<porchlight_media::VideoSampleEntry> {
        let config = B64.decode(&self.config).map_err(|e| {
            BackupError::Damaged(format!("a segment description's codec configuration: {e}"))
        })?;
        Ok(porchlight_recorder::export::entry_of(
            &porchlight_store::SampleEntryRow {
                id: 0,
                codec: self.codec.clone(),
                width: self.width,
                height: self.height,
                config,
                rfc6381: self.rfc6381.clone(),
            },
        ))
    }

    /// The description of `row` (of camera `camera`), with codec `entry`.
    pub fn of(
        row: &porchlight_store::RecordingRow,
        camera: &str,
        entry: &porchlight_store::SampleEntryRow,
    ) -> SegmentDescription {
        SegmentDescription {
            format: SEGMENT_FORMAT.into(),
            recording_id: row.id,
            camera_id: row.camera_id,
            camera: camera.to_owned(),
            stream: row.stream.clone(),
            run_id: row.run_id,
            start_us: row.start.as_microsecond(),
            codec: entry.codec.clone(),
            width: entry.width,
            height: entry.height,
            config: B64.encode(&entry.config),
            rfc6381: entry.rfc6381.clone(),
        }
    }
}

/// An event's copy: its index and its details exactly as sealed on the
/// hub (the uploader holds no key to open them; the restoring member's
/// key does).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventCopy {
    pub format: String,
    pub event_id: i64,
    pub camera_id: Option<i64>,
    pub camera: Option<String>,
    pub source: String,
    pub start_us: i64,
    pub end_us: Option<i64>,
    /// Base64 of the event's sealed details (an age file), empty if none
    /// were kept.
    pub details: String,
}

impl EventCopy {
    /// The sealed details (an age file to the same members).
    pub fn sealed_details(&self) -> Result<Vec<u8>> {
        B64.decode(&self.details)
            .map_err(|e| BackupError::Damaged(format!("event {}'s details: {e}", self.event_id)))
    }

    pub fn encode_details(sealed: &[u8]) -> String {
        B64.encode(sealed)
    }
}

/// `doc` as JSON in an age file to `recipients`
/// ([`porchlight_vault::details::seal_json`], as event details are).
pub fn seal<T: serde::Serialize>(
    doc: &T,
    recipients: &[age::x25519::Recipient],
) -> Result<Vec<u8>> {
    porchlight_vault::details::seal_json(doc, recipients)
        .map_err(|e| BackupError::Other(format!("sealing a description: {e}")))
}

/// No description or event copy is near this; a larger one is refused
/// unread.
pub const MAX_DOC: usize = 1 << 20;

/// Why a sealed document did not open.
#[derive(Debug)]
pub enum Unopened {
    /// Sealed to other members (a camera this member may not see).
    NotForThisKey,
    /// Altered, cut, or not a document of this kind.
    Damaged(String),
}

/// Opens a document sealed by [`seal`].
pub fn open<T: serde::de::DeserializeOwned>(
    sealed: &[u8],
    key: &MemberKey,
) -> std::result::Result<T, Unopened> {
    porchlight_vault::details::open_json(sealed, key, "a backup document", MAX_DOC).map_err(|e| {
        match e {
            Unreadable::OtherMembers => Unopened::NotForThisKey,
            Unreadable::Damaged(why) => Unopened::Damaged(why),
            other => Unopened::Damaged(other.to_string()),
        }
    })
}
