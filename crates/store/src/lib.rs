//! # porchlight-store
//!
//! The hub's embedded store: one SQLite database (`porchlight.db`) in WAL
//! mode inside the data folder, with versioned migrations applied at
//! start-up, and *typed operations* — callers ask for "the user named X" or
//! "append this audit entry", never write SQL. Only the hub uses it: the
//! neighborhood server keeps its own database (SQLite or PostgreSQL, in
//! `porchlight-neighborhood`), which never holds household data.
//!
//! Invariants this crate keeps:
//!
//! * **Schema versions only move forward.** [`migrate`] applies the embedded
//!   steps in order, each in its own transaction, and records each with a
//!   checksum; a database written by a newer Porchlight is refused, not
//!   guessed at.
//! * **Several processes may share one folder.** The hub and the
//!   administrative CLI (`porchlight user add …`) open the same database at
//!   once; WAL mode and a busy timeout make that safe, and nothing here caches
//!   rows across calls, so a running hub sees CLI changes at once.
//! * **The audit log is append-only and hash-chained** ([`audit`]).
//! * **Times are UTC microseconds since the Unix epoch** in every column.
//!
//! Not here: password hashing, key wrapping, TOTP — the store keeps the
//! vault's opaque results (PHC strings, wrapped-key blobs) without
//! interpreting them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), porchlight_store::StoreError> {
//! let store = porchlight_store::Store::open(std::path::Path::new("porchlight-data")).await?;
//! println!("{} users", store.list_users().await?.len());
//! # Ok(()) }
//! ```

pub mod alarm;
pub mod audit;
pub mod backup;
pub mod camera_modes;
pub mod cameras;
pub mod detection;
pub mod events;
mod migrate;
pub mod push;
pub mod recordings;
pub mod rtsp_tokens;
pub mod sessions;
pub mod throttle;
pub mod users;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use alarm::{AlarmLink, AlarmRequest, AlarmStateRow, NewSensor, Sensor, SensorTelemetry};
pub use audit::{AuditEntry, AuditProblem, NewAuditEntry};
pub use backup::{
    BackupDestination, BackupEvent, BackupQueue, BackupSegment, NewBackupDestination,
};
pub use cameras::{Camera, CameraStatusRow, NewCamera};
pub use events::{EventDetails, EventFilter, EventRow, NewEvent, StoredDetails, StoredEvent};
pub use migrate::{MigrationStatus, MIGRATIONS};
pub use push::{NotificationRules, PushSubscription, QuietHours};
pub use recordings::{ClosedRecording, NewRecording, RecordingRow, SampleEntryRow};
pub use rtsp_tokens::RtspTokenRow;
pub use sessions::NewSession;
pub use sessions::{SessionRow, SessionStage};
pub use throttle::{ThrottleRow, ThrottleScope};
pub use users::{NewUser, Role, User, UserKeys};

/// Name of the database file inside the data folder.
pub const DB_FILE: &str = "porchlight.db";

/// Most connections the store's pool opens. They open on demand and stay
/// open, each holding the database and its WAL: a long-running hub's
/// descriptors on the database grow to at most twice this, plus the
/// shared `-shm` index.
pub const POOL_MAX_CONNECTIONS: u32 = 8;

/// Errors from the store. Each names what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("database {path} has schema version {found}, newer than this Porchlight knows ({known}); upgrade Porchlight")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("database error while {doing}: {source}")]
    Db {
        doing: &'static str,
        source: sqlx::Error,
    },
    #[error("audit anchor {path}: {message}")]
    Anchor { path: PathBuf, message: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches "what we were doing" to sqlx errors.
pub(crate) trait Doing<T> {
    fn doing(self, what: &'static str) -> Result<T>;
}

impl<T> Doing<T> for std::result::Result<T, sqlx::Error> {
    fn doing(self, what: &'static str) -> Result<T> {
        self.map_err(|source| StoreError::Db {
            doing: what,
            source,
        })
    }
}

/// A handle on the data folder's database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir` and brings its
    /// schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDir {
            path: data_dir.to_owned(),
            source,
        })?;
        restrict_permissions(data_dir);
        let path = data_dir.join(DB_FILE);
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .expect("static options")
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a power cut may lose the last transactions
            // but never corrupts; the recorder's own fsync ordering decides
            // what video is durable.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Deleted and overwritten content is zeroed in the page, not left
            // in free space where a stolen disk could read it (design/keys.md).
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_MAX_CONNECTIONS)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        let store = Store {
            pool,
            dir: data_dir.to_owned(),
        };
        migrate::apply(&store).await?;
        Ok(store)
    }

    /// The data folder this store lives in.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    /// SQLite's own consistency check; `Ok(None)` when sound.
    pub async fn integrity_problem(&self) -> Result<Option<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await
            .doing("running SQLite's integrity check")?;
        let msgs: Vec<String> = rows.into_iter().map(|r| r.0).collect();
        if msgs.len() == 1 && msgs[0] == "ok" {
            Ok(None)
        } else {
            Ok(Some(msgs.join("; ")))
        }
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// The data folder holds the household's recordings and wrapped keys: keep
/// other local users out of it.
fn restrict_permissions(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
}

pub(crate) fn micros(t: jiff::Timestamp) -> i64 {
    t.as_microsecond()
}

pub(crate) fn from_micros(us: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(us).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests;
