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
//!
//! Triggers in the schema refuse UPDATE and DELETE, so ordinary code paths
//! cannot change history by mistake; appends take SQLite's write lock
//! (`BEGIN IMMEDIATE`) so the hub and the CLI never fork the chain.

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{from_micros, micros, Doing, Result, Store, StoreError};

/// The anchor file in the data folder.
pub const ANCHOR_FILE: &str = "audit.head";

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
        self.advance_anchor(seq, &hash)?;
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
        match self.read_anchor() {
            Err(m) => return Ok((count, Some(AuditProblem::BadAnchor(m)))),
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

    /// `Ok(None)` when there is no anchor yet (a fresh folder).
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
    /// append must not hide entries from the truncation check).
    fn advance_anchor(&self, seq: i64, hash: &[u8]) -> Result<()> {
        let path = self.anchor_path();
        if let Ok(Some((cur, _))) = self.read_anchor() {
            if cur >= seq {
                return Ok(());
            }
        }
        let tmp = self
            .dir
            .join(format!("{ANCHOR_FILE}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, format!("{seq} {}\n", hex::encode(hash)))
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| StoreError::Anchor {
                path,
                message: e.to_string(),
            })
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
