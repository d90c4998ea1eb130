//! The append-only, hash-chained audit log.
//!
//! Every entry carries `prev_hash`, the hash of the entry before it, and
//! `hash = SHA-256(prev_hash ‖ seq ‖ at ‖ actor ‖ action ‖ target ‖ detail ‖ client)`
//! (each text field length-prefixed, so field boundaries cannot shift). The
//! first entry's `prev_hash` is 32 zero bytes. Consequences:
//!
//! * an **edited** entry no longer matches its own hash;
//! * a **removed** entry leaves a gap in `seq` and breaks the next entry's
//!   `prev_hash`;
//! * **reordered** entries fail both tests;
//! * a removed **tail** is caught by the anchor file `audit.head` beside the
//!   database, which records the newest `seq` and hash seen. (Someone who can
//!   rewrite both the database and the anchor can rewrite history; the chain
//!   makes tampering evident to anyone holding an older copy or export, it
//!   does not prevent it. See design/audit.md.)
//! * a removed tail **with the anchor file deleted too** is caught by the
//!   database's record that an anchor was written (table `audit_anchor`,
//!   one permanent row): a missing `audit.head` is a fresh folder only when
//!   that row is absent.
//!
//! Triggers in the schema refuse UPDATE and DELETE, so ordinary code paths
//! cannot change history by mistake; appends take SQLite's write lock
//! (`BEGIN IMMEDIATE`) so the hub and the CLI never fork the chain. The
//! anchor is read, compared and replaced under an exclusive lock on
//! `audit.head.lock` (`flock`, so also between processes), so of two
//! writers racing — the hub and the CLI, or two tasks — the one with the
//! newer entry always wins and the anchor never moves back.

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{from_micros, micros, Doing, Result, Store, StoreError};

/// The anchor file in the data folder.
pub const ANCHOR_FILE: &str = "audit.head";
/// The lock file that serialises updates of the anchor.
pub const ANCHOR_LOCK_FILE: &str = "audit.head.lock";

/// An entry to append.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    /// Who did it: a username, `cli`, or `system`.
    pub actor: String,
    /// What was done, dotted: `auth.sign_in`, `key.unwrap`, `user.role`…
    pub action: String,
    /// What it was done to: a user, a camera, a session.
    pub target: String,
    /// A small JSON object with particulars.
    pub detail: serde_json::Value,
    /// Client address, when the request came over the network.
    pub client: String,
}

/// A stored entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: jiff::Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
    pub client: String,
    #[serde(skip)]
    pub prev_hash: Vec<u8>,
    #[serde(serialize_with = "ser_hex")]
    pub hash: Vec<u8>,
}

fn ser_hex<S: serde::Serializer>(h: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(h))
}

/// The chain hash of one entry.
pub fn entry_hash(prev: &[u8], seq: i64, at_us: i64, fields: [&str; 5]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"porchlight-audit-v1");
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(at_us.to_be_bytes());
    for f in fields {
        h.update((f.len() as u64).to_be_bytes());
        h.update(f.as_bytes());
    }
    h.finalize().into()
}

/// The first problem found in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditProblem {
    /// Entry `seq`'s contents do not match its hash.
    Edited { seq: i64 },
    /// Entry `seq` does not follow the entry before it.
    BrokenLink { seq: i64, after: i64 },
    /// Entries between `after` and `next` are missing.
    Missing { after: i64, next: i64 },
    /// The log ends before the anchor's entry: entries were removed.
    Truncated { last: i64, anchor: i64 },
    /// The entry the anchor names does not have the anchored hash.
    AnchorMismatch { seq: i64 },
    /// The anchor file is unreadable.
    BadAnchor(String),
    /// The anchor file is gone, though the database records that one was
    /// written: the newest entries may have been removed with it.
    AnchorMissing { last: i64 },
}

impl std::fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditProblem::Edited { seq } => write!(f, "audit entry #{seq} was altered: its contents no longer match its hash"),
            AuditProblem::BrokenLink { seq, after } => write!(f, "audit entry #{seq} does not follow entry #{after}: the chain was reordered or rewritten at #{seq}"),
            AuditProblem::Missing { after, next } if next - after == 2 => write!(f, "audit entry #{} is missing (the log jumps from #{after} to #{next})", after + 1),
            AuditProblem::Missing { after, next } => write!(f, "audit entries #{}..#{} are missing (the log jumps from #{after} to #{next})", after + 1, next - 1),
            AuditProblem::Truncated { last, anchor } => write!(f, "audit log ends at entry #{last} but entry #{anchor} was written: entries #{}..#{anchor} were removed", last + 1),
            AuditProblem::AnchorMismatch { seq } => write!(f, "audit entry #{seq} differs from the one recorded in {ANCHOR_FILE}"),
            AuditProblem::BadAnchor(m) => write!(f, "{ANCHOR_FILE}: {m}"),
            AuditProblem::AnchorMissing { last } => write!(f, "the anchor file {ANCHOR_FILE} is missing, but the database records that it was written: the newest audit entries may have been removed with it (the log now ends at entry #{last})"),
        }
    }
}

fn entry_from_row(row: &sqlx::sqlite::SqliteRow) -> AuditEntry {
    let detail: String = row.get("detail");
    AuditEntry {
        seq: row.get("seq"),
        at: from_micros(row.get("at")),
        actor: row.get("actor"),
        action: row.get("action"),
        target: row.get("target"),
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
        client: row.get("client"),
        prev_hash: row.get("prev_hash"),
        hash: row.get("hash"),
    }
}

impl Store {
    /// Appends an entry to the chain and returns its sequence number.
    pub async fn append_audit(&self, e: &NewAuditEntry, at: jiff::Timestamp) -> Result<i64> {
        let detail = if e.detail.is_null() {
            "{}".to_owned()
        } else {
            e.detail.to_string()
        };
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .doing("starting an audit append")?;
        let last: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .doing("reading the audit chain's head")?;
        let (seq, prev) = match last {
            Some((s, h)) => (s + 1, h),
            None => (1, vec![0u8; 32]),
        };
        let at_us = micros(at);
        let hash = entry_hash(
            &prev,
            seq,
            at_us,
            [&e.actor, &e.action, &e.target, &detail, &e.client],
        );
        // The anchor exists (from an earlier append): make sure the
        // database says so, in case recording it after it was created
        // failed. A no-op once the row is there.
        if self.anchor_path().exists() {
            record_anchor(&mut *tx, at_us).await?;
        }
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, target, detail, client, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(seq)
        .bind(at_us)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.target)
        .bind(&detail)
        .bind(&e.client)
        .bind(&prev)
        .bind(&hash[..])
        .execute(&mut *tx)
        .await
        .doing("appending to the audit log")?;
        tx.commit().await.doing("committing an audit entry")?;
        if self.advance_anchor(seq, &hash)? {
            record_anchor(&self.pool, at_us).await?;
        }
        Ok(seq)
    }

    /// Reads entries, newest first, optionally before `before_seq`.
    pub async fn audit_entries(
        &self,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, detail, client, prev_hash, hash FROM audit_log
             WHERE seq < ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .doing("reading the audit log")?;
        Ok(rows.iter().map(entry_from_row).collect())
    }

    /// Walks the whole chain, oldest first; `Ok(None)` when intact.
    /// Returns the number of entries checked alongside.
    pub async fn verify_audit_chain(&self) -> Result<(i64, Option<AuditProblem>)> {
        use futures_lite::StreamExt;
        // The anchor first, then the log: an anchor is written only after
        // its entry is committed, so a hub appending meanwhile cannot make
        // the anchor look ahead of the log we read.
        let anchor = self.read_anchor();
        let anchor_recorded: Option<i64> =
            sqlx::query_scalar("SELECT written_at FROM audit_anchor WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .doing("reading whether the audit anchor was written")?;
        let mut rows = sqlx::query(
            "SELECT seq, at, actor, action, target, detail, client, prev_hash, hash FROM audit_log ORDER BY seq",
        )
        .fetch(&self.pool);
        let mut prev_seq = 0i64;
        let mut prev_hash = vec![0u8; 32];
        let mut count = 0i64;
        while let Some(row) = rows.next().await {
            let row = row.doing("reading the audit log")?;
            let seq: i64 = row.get("seq");
            let at: i64 = row.get("at");
            let fields: [String; 5] =
                ["actor", "action", "target", "detail", "client"].map(|c| row.get(c));
            let stored_prev: Vec<u8> = row.get("prev_hash");
            let stored: Vec<u8> = row.get("hash");
            let computed = entry_hash(&stored_prev, seq, at, fields.each_ref().map(|s| s.as_str()));
            if computed[..] != stored[..] {
                return Ok((count, Some(AuditProblem::Edited { seq })));
            }
            if seq != prev_seq + 1 {
                if seq > prev_seq + 1 {
                    return Ok((
                        count,
                        Some(AuditProblem::Missing {
                            after: prev_seq,
                            next: seq,
                        }),
                    ));
                }
                return Ok((
                    count,
                    Some(AuditProblem::BrokenLink {
                        seq,
                        after: prev_seq,
                    }),
                ));
            }
            if stored_prev != prev_hash {
                return Ok((
                    count,
                    Some(AuditProblem::BrokenLink {
                        seq,
                        after: prev_seq,
                    }),
                ));
            }
            prev_seq = seq;
            prev_hash = stored;
            count += 1;
        }
        drop(rows);
        match anchor {
            Err(m) => return Ok((count, Some(AuditProblem::BadAnchor(m)))),
            Ok(None) if anchor_recorded.is_some() => {
                return Ok((count, Some(AuditProblem::AnchorMissing { last: prev_seq })))
            }
            Ok(None) => {}
            Ok(Some((aseq, ahash))) => {
                if aseq > prev_seq {
                    return Ok((
                        count,
                        Some(AuditProblem::Truncated {
                            last: prev_seq,
                            anchor: aseq,
                        }),
                    ));
                }
                let h: Option<Vec<u8>> =
                    sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = ?")
                        .bind(aseq)
                        .fetch_optional(&self.pool)
                        .await
                        .doing("reading the anchored audit entry")?;
                if h.as_deref() != Some(&ahash[..]) {
                    return Ok((count, Some(AuditProblem::AnchorMismatch { seq: aseq })));
                }
            }
        }
        Ok((count, None))
    }

    fn anchor_path(&self) -> std::path::PathBuf {
        self.dir.join(ANCHOR_FILE)
    }

    /// `Ok(None)` when there is no anchor file (a fresh folder, unless the
    /// database records that one was written).
    fn read_anchor(&self) -> std::result::Result<Option<(i64, Vec<u8>)>, String> {
        let text = match std::fs::read_to_string(self.anchor_path()) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let (seq, hash) = text
            .trim()
            .split_once(' ')
            .ok_or_else(|| "expected `SEQ HASH`".to_owned())?;
        let seq: i64 = seq
            .parse()
            .map_err(|_| format!("bad sequence number `{seq}`"))?;
        let hash = hex::decode(hash).map_err(|_| "bad hash".to_owned())?;
        Ok(Some((seq, hash)))
    }

    /// Moves the anchor forward (never back: a slower writer racing a newer
    /// append must not hide entries from the truncation check), under the
    /// anchor lock. Returns whether the anchor file was created now (then
    /// file and folder are fsynced, so the database never records an anchor
    /// that a power cut can take back).
    fn advance_anchor(&self, seq: i64, hash: &[u8]) -> Result<bool> {
        let path = self.anchor_path();
        let fail = |message: String| StoreError::Anchor {
            path: path.clone(),
            message,
        };
        let _lock = AnchorLock::take(&self.dir.join(ANCHOR_LOCK_FILE))
            .map_err(|e| fail(format!("cannot lock {ANCHOR_LOCK_FILE}: {e}")))?;
        let created = match self.read_anchor() {
            Ok(Some((cur, _))) if cur >= seq => return Ok(false),
            Ok(Some(_)) => false,
            Ok(None) => true,
            // Unreadable: replaced by a good one (check has reported it, or
            // will, if the log ends before it).
            Err(_) => false,
        };
        // One writer at a time holds the lock, so the name need not be unique.
        let tmp = self.dir.join(format!("{ANCHOR_FILE}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, format!("{seq} {}\n", hex::encode(hash)).as_bytes())?;
            if created {
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            if created {
                std::fs::File::open(&self.dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| fail(e.to_string()))?;
        Ok(created)
    }
}

/// Records, once, that the anchor file was written.
async fn record_anchor<'e, E>(db: E, at_us: i64) -> Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query("INSERT OR IGNORE INTO audit_anchor (id, written_at) VALUES (1, ?)")
        .bind(at_us)
        .execute(db)
        .await
        .doing("recording that the audit anchor was written")?;
    Ok(())
}

/// An exclusive `flock` on the anchor's lock file, released on drop (and
/// by the kernel if the process dies). `flock` locks belong to the open
/// file, so two handles in one process exclude each other as two processes
/// do. Elsewhere than Unix the lock file is only opened: appends there
/// still never fork the chain (SQLite's lock), but the anchor may lag.
struct AnchorLock(#[allow(dead_code)] std::fs::File);

impl AnchorLock {
    fn take(path: &std::path::Path) -> std::io::Result<AnchorLock> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            loop {
                // SAFETY: flock on a file descriptor we own, open for the
                // lifetime of `f`.
                if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                    break;
                }
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
        Ok(AnchorLock(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store_with(n: i64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        for i in 0..n {
            let e = NewAuditEntry {
                actor: format!("user{i}"),
                action: "auth.sign_in".into(),
                target: format!("user{i}"),
                detail: serde_json::json!({ "i": i }),
                client: "127.0.0.1".into(),
            };
            store
                .append_audit(&e, jiff::Timestamp::from_second(1_700_000_000 + i).unwrap())
                .await
                .unwrap();
        }
        (dir, store)
    }

    /// Tampering as an intruder with the sqlite3 shell would: remove the
    /// append-only triggers first.
    async fn tamper(store: &Store, sql: &str) {
        sqlx::raw_sql(&format!(
            "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; {sql}"
        ))
        .execute(&store.pool)
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn intact_chain_verifies() {
        let (_d, store) = store_with(10).await;
        assert_eq!(store.verify_audit_chain().await.unwrap(), (10, None));
    }

    #[tokio::test]
    async fn triggers_refuse_update_and_delete() {
        let (_d, store) = store_with(2).await;
        assert!(sqlx::query("UPDATE audit_log SET actor = 'x'")
            .execute(&store.pool)
            .await
            .is_err());
        assert!(sqlx::query("DELETE FROM audit_log")
            .execute(&store.pool)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn edited_entry_is_named() {
        let (_d, store) = store_with(10).await;
        tamper(
            &store,
            "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 4",
        )
        .await;
        assert_eq!(
            store.verify_audit_chain().await.unwrap().1,
            Some(AuditProblem::Edited { seq: 4 })
        );
    }

    #[tokio::test]
    async fn deleted_entry_is_named() {
        let (_d, store) = store_with(10).await;
        tamper(&store, "DELETE FROM audit_log WHERE seq = 6").await;
        let problem = store.verify_audit_chain().await.unwrap().1.unwrap();
        assert_eq!(problem, AuditProblem::Missing { after: 5, next: 7 });
        assert!(problem.to_string().contains("#6 is missing"), "{problem}");
    }

    #[tokio::test]
    async fn deleted_then_renumbered_is_caught() {
        let (_d, store) = store_with(10).await;
        tamper(
            &store,
            "DELETE FROM audit_log WHERE seq = 6; UPDATE audit_log SET seq = seq - 1 WHERE seq > 6",
        )
        .await;
        // Renumbering changes seq, which is inside the hash.
        assert_eq!(
            store.verify_audit_chain().await.unwrap().1,
            Some(AuditProblem::Edited { seq: 6 })
        );
    }

    #[tokio::test]
    async fn reordered_entries_are_named() {
        let (_d, store) = store_with(10).await;
        // Swap the contents of #3 and #4, hashes and all.
        tamper(
            &store,
            "UPDATE audit_log SET seq = -3 WHERE seq = 3;
             UPDATE audit_log SET seq = 3 WHERE seq = 4;
             UPDATE audit_log SET seq = 4 WHERE seq = -3;",
        )
        .await;
        let problem = store.verify_audit_chain().await.unwrap().1.unwrap();
        assert_eq!(problem, AuditProblem::Edited { seq: 3 });
    }

    #[tokio::test]
    async fn removed_tail_is_caught_by_the_anchor() {
        let (_d, store) = store_with(10).await;
        tamper(&store, "DELETE FROM audit_log WHERE seq >= 9").await;
        assert_eq!(
            store.verify_audit_chain().await.unwrap().1,
            Some(AuditProblem::Truncated {
                last: 8,
                anchor: 10
            })
        );
    }

    #[tokio::test]
    async fn rewritten_tail_is_caught_by_the_anchor() {
        let (_d, store) = store_with(3).await;
        tamper(&store, "DELETE FROM audit_log WHERE seq = 3").await;
        // Re-append a different #3 through the proper path: the chain is
        // valid again, but the anchor remembers the original #3.
        let fake = NewAuditEntry {
            actor: "intruder".into(),
            action: "noop".into(),
            ..Default::default()
        };
        // The anchor refuses to move back, so it still names the old #3.
        store
            .append_audit(&fake, jiff::Timestamp::now())
            .await
            .unwrap();
        assert_eq!(
            store.verify_audit_chain().await.unwrap().1,
            Some(AuditProblem::AnchorMismatch { seq: 3 })
        );
    }

    #[tokio::test]
    async fn removed_tail_with_the_anchor_file_is_caught() {
        let (d, store) = store_with(10).await;
        tamper(&store, "DELETE FROM audit_log WHERE seq >= 9").await;
        std::fs::remove_file(d.path().join(ANCHOR_FILE)).unwrap();
        let problem = store.verify_audit_chain().await.unwrap().1.unwrap();
        assert_eq!(problem, AuditProblem::AnchorMissing { last: 8 });
        assert!(
            problem.to_string().contains("audit.head is missing"),
            "{problem}"
        );
        // The record of the anchor cannot be removed by ordinary code.
        assert!(sqlx::query("DELETE FROM audit_anchor")
            .execute(&store.pool)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn a_fresh_folder_needs_no_anchor() {
        let (d, store) = store_with(0).await;
        assert!(!d.path().join(ANCHOR_FILE).exists());
        assert_eq!(store.verify_audit_chain().await.unwrap(), (0, None));
        // The first entry writes the anchor and records that it did.
        let (d, store) = store_with(1).await;
        assert!(d.path().join(ANCHOR_FILE).exists());
        std::fs::remove_file(d.path().join(ANCHOR_FILE)).unwrap();
        assert_eq!(
            store.verify_audit_chain().await.unwrap().1,
            Some(AuditProblem::AnchorMissing { last: 1 })
        );
    }

    /// Several handles on one folder (as the hub and CLI processes are),
    /// each appending from its own thread: the anchor ends at the last
    /// entry, never behind it, and no append fails over the anchor.
    #[test]
    fn racing_writers_never_move_the_anchor_back() {
        let dir = tempfile::tempdir().unwrap();
        let rt = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        rt().block_on(Store::open(dir.path())).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = dir.path().to_owned();
                std::thread::spawn(move || {
                    rt().block_on(async {
                        let store = Store::open(&path).await.unwrap();
                        for i in 0..60 {
                            let e = NewAuditEntry {
                                actor: format!("t{t}"),
                                action: format!("test.{i}"),
                                ..Default::default()
                            };
                            store
                                .append_audit(&e, jiff::Timestamp::now())
                                .await
                                .unwrap();
                        }
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        rt().block_on(async {
            let store = Store::open(dir.path()).await.unwrap();
            assert_eq!(store.verify_audit_chain().await.unwrap(), (240, None));
            let (seq, hash) = store.read_anchor().unwrap().unwrap();
            assert_eq!(seq, 240, "the anchor fell behind the log");
            let newest = store.audit_entries(None, 1).await.unwrap();
            assert_eq!(hash, newest[0].hash);
        });
    }

    /// The anchor is replaced only under its lock: while another handle
    /// holds it, an append commits its entry but waits to move the anchor.
    #[test]
    fn the_anchor_waits_for_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = rt.block_on(async {
            let store = Store::open(dir.path()).await.unwrap();
            let e = NewAuditEntry::default();
            store
                .append_audit(&e, jiff::Timestamp::now())
                .await
                .unwrap();
            store
        });
        let held = AnchorLock::take(&dir.path().join(ANCHOR_LOCK_FILE)).unwrap();
        let s2 = store.clone();
        let appender = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(s2.append_audit(&NewAuditEntry::default(), jiff::Timestamp::now()))
                .unwrap()
        });
        // The entry is committed, the anchor still names entry 1.
        let t0 = std::time::Instant::now();
        while rt.block_on(store.audit_entries(None, 1)).unwrap()[0].seq < 2 {
            assert!(t0.elapsed() < std::time::Duration::from_secs(10));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(store.read_anchor().unwrap().unwrap().0, 1);
        assert!(
            !appender.is_finished(),
            "the append did not wait for the anchor lock"
        );
        drop(held);
        assert_eq!(appender.join().unwrap(), 2);
        assert_eq!(store.read_anchor().unwrap().unwrap().0, 2);
    }

    #[tokio::test]
    async fn concurrent_appends_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        // Two independent pools on one folder, as the hub and the CLI are.
        let a = Store::open(dir.path()).await.unwrap();
        let b = Store::open(dir.path()).await.unwrap();
        let mut tasks = Vec::new();
        for (i, s) in [a.clone(), b.clone()]
            .into_iter()
            .cycle()
            .take(40)
            .enumerate()
        {
            tasks.push(tokio::spawn(async move {
                let e = NewAuditEntry {
                    actor: format!("w{i}"),
                    action: "test".into(),
                    ..Default::default()
                };
                s.append_audit(&e, jiff::Timestamp::now()).await.unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(a.verify_audit_chain().await.unwrap(), (40, None));
    }
}
