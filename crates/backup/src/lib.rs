//! # porchlight-backup
//!
//! Off-site evidence (issue 17, design/backup.md): when something that
//! matters happens — a person, a vehicle, a parcel, the doorbell, the
//! alarm going off — the hub copies the footage around it to a place the
//! household chose, **while it is still happening**, so a burglar who rips
//! the hub off the shelf does not take the footage of himself with it.
//!
//! * [`admin`] — adding a destination (the CLI and the settings page).
//! * [`dest`] — where copies go: a folder (`file:///…`, a NAS or USB disk)
//!   or an S3-compatible bucket (`s3://bucket/prefix`), through the
//!   `object_store` crate.
//! * [`layout`] — the destination's object names, which say nothing about
//!   cameras, labels or kinds.
//! * [`bundle`] — the household's wrapped keys, as the hub stores them, so
//!   a member's password (or recovery code) alone opens the copies.
//! * [`catalog`] — what each segment and event is, sealed to the same
//!   members as the footage.
//! * [`uploader`] — the hub's task: follows segment files as they grow and
//!   ships each whole record, with a queue in SQLite that survives
//!   restarts, retries with backoff, a rate cap, and no part in recording.
//! * [`restore`] — on any machine, with no hub folder: list the events
//!   and write a plain MP4 of one, or of a time range.
//!
//! Invariants:
//!
//! * **Only ciphertext leaves the house.** Segment bytes go as they are on
//!   disk (sealed records, never decrypted or re-encrypted here); every
//!   description is an age file to the household's recipients; the key
//!   bundle holds keys only as wrapped by Argon2id. The uploader never
//!   holds a private key.
//! * **Every stored copy of a segment is a valid segment.** Parts are cut
//!   at record boundaries ([`porchlight_media::segment::whole_records_end`]),
//!   so whatever reached the destination before the hub died restores.
//! * **By default the hub never deletes or overwrites anything at the
//!   destination** (design/backup.md, "Against a thief holding the hub"):
//!   every object name is new, written once.

#![forbid(unsafe_code)]

pub mod admin;
pub mod bundle;
pub mod catalog;
pub mod dest;
pub mod layout;
pub mod restore;
pub mod uploader;

pub use dest::{DestOptions, Destination};

/// What can go wrong backing up or restoring; each says what and where.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The destination's address or options are not usable.
    #[error("{0}")]
    Config(String),
    /// The destination refused or could not be reached.
    #[error("the backup destination {dest}: {message}")]
    Destination { dest: String, message: String },
    /// Nothing there opens with what was given.
    #[error("{0}")]
    Unlock(String),
    /// An object is missing, damaged or altered.
    #[error("{0}")]
    Damaged(String),
    #[error("the hub's database: {0}")]
    Store(#[from] porchlight_store::StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = BackupError> = std::result::Result<T, E>;
