//! Versioned schema migrations, embedded in the binary.
//!
//! Each step is a SQL file under `migrations/sqlite/`, applied once, in
//! order, inside a transaction that also records it in `schema_migrations`
//! with the SHA-256 of its text. `porchlight check` compares those
//! checksums, so a database whose history differs from this build's is
//! reported rather than silently trusted.

use sha2::{Digest, Sha256};

use crate::{micros, Doing, Result, Store, StoreError};

/// One schema step.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every schema step this build knows, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "accounts_and_audit",
        sql: include_str!("../migrations/sqlite/0001_accounts_and_audit.sql"),
    },
    Migration {
        version: 2,
        name: "cameras_and_recordings",
        sql: include_str!("../migrations/sqlite/0002_cameras_and_recordings.sql"),
    },
    Migration {
        version: 3,
        name: "events",
        sql: include_str!("../migrations/sqlite/0003_events.sql"),
    },
    Migration {
        version: 4,
        name: "alarm",
        sql: include_str!("../migrations/sqlite/0004_alarm.sql"),
    },
    Migration {
        version: 5,
        name: "push",
        sql: include_str!("../migrations/sqlite/0005_push.sql"),
    },
    Migration {
        version: 6,
        name: "camera_modes",
        sql: include_str!("../migrations/sqlite/0006_camera_modes.sql"),
    },
    // Keep this list sorted by version: `apply` skips steps below the
    // recorded maximum.
    Migration {
        version: 7,
        name: "camera_sub_status",
        sql: include_str!("../migrations/sqlite/0007_camera_sub_status.sql"),
    },
    Migration {
        version: 8,
        name: "detection",
        sql: include_str!("../migrations/sqlite/0008_detection.sql"),
    },
    Migration {
        version: 9,
        name: "sensor_modes",
        sql: include_str!("../migrations/sqlite/0009_sensor_modes.sql"),
    },
    Migration {
        version: 10,
        name: "sessions_never_reuse_ids",
        sql: include_str!("../migrations/sqlite/0010_sessions_never_reuse_ids.sql"),
    },
    Migration {
        version: 11,
        name: "rtsp_tokens",
        sql: include_str!("../migrations/sqlite/0011_rtsp_tokens.sql"),
    },
    Migration {
        version: 12,
        name: "recipient_changes_and_audit_anchor",
        sql: include_str!("../migrations/sqlite/0012_recipient_changes_and_audit_anchor.sql"),
    },
    Migration {
        version: 13,
        name: "sealed_event_details",
        sql: include_str!("../migrations/sqlite/0013_sealed_event_details.sql"),
    },
    Migration {
        version: 14,
        name: "backup",
        sql: include_str!("../migrations/sqlite/0014_backup.sql"),
    },
];

pub(crate) fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

pub(crate) async fn apply(store: &Store) -> Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL,
            checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .execute(&store.pool)
    .await
    .doing("creating the schema_migrations table")?;

    let known = MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
    for m in MIGRATIONS {
        // IMMEDIATE: two processes starting on one folder at once must not
        // both apply the same step.
        let mut tx = store
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .doing("starting a migration")?;
        let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await
            .doing("reading the schema version")?;
        let found = found.unwrap_or(0);
        if found > known {
            return Err(StoreError::TooNew {
                path: store.db_path(),
                found,
                known,
            });
        }
        if found >= m.version {
            continue;
        }
        let err = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(err)?;
        sqlx::query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)")
            .bind(m.version)
            .bind(m.name)
            .bind(checksum(m.sql))
            .bind(micros(jiff::Timestamp::now()))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied schema migration"
        );
    }
    Ok(())
}

/// What `porchlight check` reports about the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationStatus {
    /// Every known step applied, with matching checksums.
    Current { version: i64 },
    /// A recorded step's text differs from this build's.
    Altered { version: i64, name: String },
    /// A step this build knows is not recorded.
    Missing { version: i64, name: &'static str },
    /// A recorded step this build does not know.
    Unknown { version: i64 },
}

impl std::fmt::Display for MigrationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MigrationStatus::Current { version } => write!(f, "schema at version {version}, all migrations applied"),
            MigrationStatus::Altered { version, name } => write!(f, "migration {version} ({name}) was recorded with a different checksum than this build's"),
            MigrationStatus::Missing { version, name } => write!(f, "migration {version} ({name}) has not been applied"),
            MigrationStatus::Unknown { version } => write!(f, "migration {version} is recorded but unknown to this build"),
        }
    }
}

impl Store {
    /// Compares the recorded migrations with this build's.
    pub async fn migration_status(&self) -> Result<MigrationStatus> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await
        .doing("reading schema_migrations")?;
        for (version, name, sum) in &rows {
            match MIGRATIONS.iter().find(|m| m.version == *version) {
                None => return Ok(MigrationStatus::Unknown { version: *version }),
                Some(m) if checksum(m.sql) != *sum => {
                    return Ok(MigrationStatus::Altered {
                        version: *version,
                        name: name.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        for m in MIGRATIONS {
            if !rows.iter().any(|r| r.0 == m.version) {
                return Ok(MigrationStatus::Missing {
                    version: m.version,
                    name: m.name,
                });
            }
        }
        Ok(MigrationStatus::Current {
            version: MIGRATIONS.last().map(|m| m.version).unwrap_or(0),
        })
    }
}
