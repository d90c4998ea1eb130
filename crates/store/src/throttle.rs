//! Sign-in throttling state, per account and per client address, kept
//! apart for passwords and for second-factor codes.
//!
//! Kept in the database, not in memory, so it survives restarts and is
//! shared by every process on the folder (an attacker cannot reset it by
//! crashing the hub). The policy — how many free attempts, how the delay
//! grows — lives in the vault; this module only stores counters.

use crate::{from_micros, micros, Doing, Result, Store};

/// Failure counter for one account or address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRow {
    pub failures: i64,
    pub last_failure_at: jiff::Timestamp,
    pub locked_until: jiff::Timestamp,
}

/// Which kind of key a throttle row counts for, and what failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleScope {
    /// Wrong passwords for one account (the key is the username).
    Account,
    /// Wrong passwords from one client address.
    Address,
    /// Wrong second-factor codes for one account.
    CodeAccount,
    /// Wrong second-factor codes from one client address.
    CodeAddress,
}

impl ThrottleScope {
    /// Counts client addresses (rather than accounts).
    pub fn is_address(self) -> bool {
        matches!(self, ThrottleScope::Address | ThrottleScope::CodeAddress)
    }

    /// Counts wrong second-factor codes (rather than passwords).
    pub fn is_code(self) -> bool {
        matches!(
            self,
            ThrottleScope::CodeAccount | ThrottleScope::CodeAddress
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            ThrottleScope::Account => "account",
            ThrottleScope::Address => "address",
            ThrottleScope::CodeAccount => "code_account",
            ThrottleScope::CodeAddress => "code_address",
        }
    }
}

impl Store {
    pub async fn throttle_get(
        &self,
        scope: ThrottleScope,
        key: &str,
    ) -> Result<Option<ThrottleRow>> {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT failures, last_failure_at, locked_until FROM login_throttle WHERE scope = ? AND key = ?",
        )
        .bind(scope.as_str())
        .bind(key.to_lowercase())
        .fetch_optional(&self.pool)
        .await
        .doing("reading sign-in throttle state")?;
        Ok(row.map(|(failures, last, until)| ThrottleRow {
            failures,
            last_failure_at: from_micros(last),
            locked_until: from_micros(until),
        }))
    }

    pub async fn throttle_put(
        &self,
        scope: ThrottleScope,
        key: &str,
        row: ThrottleRow,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO login_throttle (scope, key, failures, last_failure_at, locked_until) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (scope, key) DO UPDATE SET failures = excluded.failures,
               last_failure_at = excluded.last_failure_at, locked_until = excluded.locked_until",
        )
        .bind(scope.as_str())
        .bind(key.to_lowercase())
        .bind(row.failures)
        .bind(micros(row.last_failure_at))
        .bind(micros(row.locked_until))
        .execute(&self.pool)
        .await
        .doing("writing sign-in throttle state")?;
        Ok(())
    }

    pub async fn throttle_clear(&self, scope: ThrottleScope, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_throttle WHERE scope = ? AND key = ?")
            .bind(scope.as_str())
            .bind(key.to_lowercase())
            .execute(&self.pool)
            .await
            .doing("clearing sign-in throttle state")?;
        Ok(())
    }
}
