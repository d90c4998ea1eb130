//! Moderation: the queue of reports, appeals and pending registrations;
//! hiding, removing and restoring posts and comments; muting and suspending
//! users with a reason and an expiry; notices to the affected author and
//! their appeals.
//!
//! Invariants:
//!
//! * Every action here is written to the `audit` table with its actor and
//!   reason before the call returns.
//! * Every action that affects someone creates a notice for them saying
//!   what happened and why; each notice can be appealed once, and a granted
//!   appeal undoes the action (restore, or lift the mute/suspension).
//! * A reason is required (1–500 characters); expiries are 1 hour to 1 year.
//! * Reporters are never shown to moderators or authors.

use serde_json::{json, Value};
use sqlx::Row;

use crate::accounts::{fmt_ms, Viewer};
use crate::db::now_ms;
use crate::{Error, Neighborhood, Result, UserId};

/// What a moderator does to a post or comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentAction {
    /// Hidden from everyone but the author and moderators; reversible.
    Hide,
    /// Taken down for breaking the rules; reversible by appeal.
    Remove,
    /// Visible again.
    Restore,
}

impl ContentAction {
    pub fn parse(s: &str) -> Result<ContentAction> {
        match s {
            "hide" => Ok(ContentAction::Hide),
            "remove" => Ok(ContentAction::Remove),
            "restore" => Ok(ContentAction::Restore),
            o => Err(Error::Invalid(format!(
                "unknown action {o:?}: expected hide, remove or restore"
            ))),
        }
    }
    fn status(self) -> &'static str {
        match self {
            ContentAction::Hide => "hidden",
            ContentAction::Remove => "removed",
            ContentAction::Restore => "visible",
        }
    }
    fn name(self) -> &'static str {
        match self {
            ContentAction::Hide => "hide",
            ContentAction::Remove => "remove",
            ContentAction::Restore => "restore",
        }
    }
}

/// What a moderator does to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    /// May read but not post, comment or react, until the expiry.
    Mute,
    /// May only read their notices and appeal, until the expiry.
    Suspend,
    /// Ends a mute and a suspension.
    Lift,
}

impl UserAction {
    pub fn parse(s: &str) -> Result<UserAction> {
        match s {
            "mute" => Ok(UserAction::Mute),
            "suspend" => Ok(UserAction::Suspend),
            "lift" => Ok(UserAction::Lift),
            o => Err(Error::Invalid(format!(
                "unknown action {o:?}: expected mute, suspend or lift"
            ))),
        }
    }
}

fn check_reason(reason: &str) -> Result<String> {
    let r = reason.trim();
    if r.is_empty() || r.chars().count() > 500 {
        return Err(Error::Invalid(
            "a reason of 1–500 characters is required".into(),
        ));
    }
    Ok(r.to_string())
}

impl Neighborhood {
    async fn notify(
        &self,
        user: UserId,
        action: &str,
        kind: &str,
        target: i64,
        reason: &str,
        until: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO notices (user_id, action, target_kind, target_id, reason, until_ms, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user)
        .bind(action)
        .bind(kind)
        .bind(target)
        .bind(reason)
        .bind(until)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Hides, removes or restores a post (`kind = "post"`) or comment.
    pub async fn moderate_content(
        &self,
        m: &Viewer,
        kind: &str,
        id: i64,
        action: ContentAction,
        reason: &str,
    ) -> Result<()> {
        m.require_moderator()?;
        let reason = check_reason(reason)?;
        let table = match kind {
            "post" => "posts",
            "comment" => "comments",
            o => {
                return Err(Error::Invalid(format!(
                    "unknown target {o:?}: expected post or comment"
                )))
            }
        };
        let author: i64 =
            sqlx::query_scalar(&format!("SELECT author_id FROM {table} WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?
                .ok_or_else(|| Error::NotFound(format!("{kind} {id}")))?;
        sqlx::query(&format!("UPDATE {table} SET status = $1 WHERE id = $2"))
            .bind(action.status())
            .bind(id)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "UPDATE reports SET status = 'resolved', resolved_by = $1, resolved_at = $2
             WHERE target_kind = $3 AND target_id = $4 AND status = 'open'",
        )
        .bind(m.id)
        .bind(now_ms())
        .bind(kind)
        .bind(id)
        .execute(self.pool())
        .await?;
        self.notify(author, action.name(), kind, id, &reason, None)
            .await?;
        self.audit(Some(m.id), action.name(), kind, id, &reason)
            .await
    }

    /// Dismisses a report without acting on its target.
    pub async fn dismiss_report(&self, m: &Viewer, report: i64, reason: &str) -> Result<()> {
        m.require_moderator()?;
        let reason = check_reason(reason)?;
        let n = sqlx::query(
            "UPDATE reports SET status = 'dismissed', resolved_by = $1, resolved_at = $2 WHERE id = $3 AND status = 'open'",
        )
        .bind(m.id)
        .bind(now_ms())
        .bind(report)
        .execute(self.pool())
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::NotFound(format!("open report {report}")));
        }
        self.audit(Some(m.id), "dismiss_report", "report", report, &reason)
            .await
    }

    /// Mutes, suspends (for `hours`) or lifts both.
    pub async fn moderate_user(
        &self,
        m: &Viewer,
        user: UserId,
        action: UserAction,
        reason: &str,
        hours: Option<i64>,
    ) -> Result<()> {
        m.require_moderator()?;
        let reason = check_reason(reason)?;
        let role: String = sqlx::query_scalar("SELECT role FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {user}")))?;
        if user == m.id {
            return Err(Error::Forbidden(
                "moderators cannot act on their own account".into(),
            ));
        }
        if role == "admin" && m.role != crate::accounts::Role::Admin {
            return Err(Error::Forbidden("only an admin can act on an admin".into()));
        }
        let until = match action {
            UserAction::Lift => None,
            _ => {
                let h =
                    hours.ok_or_else(|| Error::Invalid("\"hours\" (1–8760) is required".into()))?;
                if !(1..=8760).contains(&h) {
                    return Err(Error::Invalid(format!("\"hours\" must be 1–8760, not {h}")));
                }
                Some(now_ms() + h * 3_600_000)
            }
        };
        let (sql, name) = match action {
            UserAction::Mute => ("UPDATE users SET muted_until = $1, mute_reason = $2 WHERE id = $3", "mute"),
            UserAction::Suspend => (
                "UPDATE users SET suspended_until = $1, suspend_reason = $2 WHERE id = $3",
                "suspend",
            ),
            UserAction::Lift => (
                "UPDATE users SET muted_until = $1, mute_reason = $2, suspended_until = NULL, suspend_reason = NULL WHERE id = $3",
                "lift",
            ),
        };
        sqlx::query(sql)
            .bind(until)
            .bind(if action == UserAction::Lift {
                None
            } else {
                Some(reason.clone())
            })
            .bind(user)
            .execute(self.pool())
            .await?;
        self.notify(user, name, "user", user, &reason, until)
            .await?;
        self.audit(Some(m.id), name, "user", user, &reason).await
    }

    /// The moderator queue: open reports with their targets, open appeals
    /// and pending registrations.
    pub async fn queue(&self, m: &Viewer) -> Result<Value> {
        m.require_moderator()?;
        let rows = sqlx::query(
            "SELECT id, target_kind, target_id, reason, note, created_at FROM reports WHERE status = 'open' ORDER BY id LIMIT 200",
        )
        .fetch_all(self.pool())
        .await?;
        let mut reports = Vec::new();
        for r in rows {
            let kind: String = r.try_get("target_kind")?;
            let target_id: i64 = r.try_get("target_id")?;
            let target = if kind == "post" {
                sqlx::query("SELECT p.title, p.body, p.status, p.author_id, u.display_name FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = $1")
            } else {
                sqlx::query("SELECT '' AS title, c.body, c.status, c.author_id, u.display_name FROM comments c JOIN users u ON u.id = c.author_id WHERE c.id = $1")
            }
            .bind(target_id)
            .fetch_optional(self.pool())
            .await?;
            let Some(t) = target else { continue };
            reports.push(json!({
                "id": r.try_get::<i64, _>("id")?,
                "target_kind": kind,
                "target_id": target_id,
                "reason": r.try_get::<String, _>("reason")?,
                "note": r.try_get::<String, _>("note")?,
                "created_at": fmt_ms(r.try_get("created_at")?),
                "target": {
                    "title": t.try_get::<String, _>("title")?,
                    "body": t.try_get::<String, _>("body")?,
                    "status": t.try_get::<String, _>("status")?,
                    "author_id": t.try_get::<i64, _>("author_id")?,
                    "author": t.try_get::<String, _>("display_name")?,
                },
            }));
        }
        let appeals = sqlx::query(
            "SELECT a.id, a.text, a.created_at, n.action, n.target_kind, n.target_id, n.reason, u.display_name
             FROM appeals a JOIN notices n ON n.id = a.notice_id JOIN users u ON u.id = a.user_id
             WHERE a.status = 'open' ORDER BY a.id",
        )
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|a| {
            Ok(json!({
                "id": a.try_get::<i64, _>("id")?,
                "text": a.try_get::<String, _>("text")?,
                "created_at": fmt_ms(a.try_get("created_at")?),
                "action": a.try_get::<String, _>("action")?,
                "target_kind": a.try_get::<String, _>("target_kind")?,
                "target_id": a.try_get::<i64, _>("target_id")?,
                "reason": a.try_get::<String, _>("reason")?,
                "user": a.try_get::<String, _>("display_name")?,
            }))
        })
        .collect::<Result<Vec<_>>>()?;
        let registrations = sqlx::query(
            "SELECT id, username, display_name, created_at FROM users WHERE status = 'pending' ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|u| {
            Ok(json!({
                "id": u.try_get::<i64, _>("id")?,
                "username": u.try_get::<String, _>("username")?,
                "display_name": u.try_get::<String, _>("display_name")?,
                "created_at": fmt_ms(u.try_get("created_at")?),
            }))
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(json!({ "reports": reports, "appeals": appeals, "registrations": registrations }))
    }

    /// The viewer's notices, newest first, with their appeal's state.
    pub async fn notices(&self, v: &Viewer) -> Result<Value> {
        let rows = sqlx::query(
            "SELECT n.id, n.action, n.target_kind, n.target_id, n.reason, n.until_ms, n.created_at,
                    (SELECT a.status FROM appeals a WHERE a.notice_id = n.id ORDER BY a.id DESC LIMIT 1) AS appeal
             FROM notices n WHERE n.user_id = $1 ORDER BY n.id DESC",
        )
        .bind(v.id)
        .fetch_all(self.pool())
        .await?;
        let list = rows
            .iter()
            .map(|n| {
                let action: String = n.try_get("action")?;
                let kind: String = n.try_get("target_kind")?;
                let until: Option<i64> = n.try_get("until_ms")?;
                let what = match (action.as_str(), kind.as_str()) {
                    ("mute", _) => format!("you were muted until {}", fmt_ms(until.unwrap_or(0))),
                    ("suspend", _) => format!(
                        "your account was suspended until {}",
                        fmt_ms(until.unwrap_or(0))
                    ),
                    ("lift", _) => "your mute or suspension was lifted".to_string(),
                    ("appeal_granted", _) => "your appeal was granted".to_string(),
                    ("appeal_denied", _) => "your appeal was denied".to_string(),
                    (a, k) => format!("a moderator chose to {a} your {k}"),
                };
                Ok(json!({
                    "id": n.try_get::<i64, _>("id")?,
                    "action": action,
                    "target_kind": kind,
                    "target_id": n.try_get::<i64, _>("target_id")?,
                    "reason": n.try_get::<String, _>("reason")?,
                    "until": until.map(fmt_ms),
                    "message": what,
                    "created_at": fmt_ms(n.try_get("created_at")?),
                    "appeal": n.try_get::<Option<String>, _>("appeal")?,
                    "appealable": matches!(action.as_str(), "hide" | "remove" | "mute" | "suspend"),
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(json!({ "notices": list }))
    }

    /// The viewer appeals notice `notice` (once).
    pub async fn appeal(&self, v: &Viewer, notice: i64, text: &str) -> Result<i64> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > 2000 {
            return Err(Error::Invalid(
                "the appeal must be 1–2000 characters".into(),
            ));
        }
        let n = sqlx::query("SELECT user_id, action FROM notices WHERE id = $1")
            .bind(notice)
            .fetch_optional(self.pool())
            .await?
            .filter(|n| n.try_get::<i64, _>("user_id").ok() == Some(v.id))
            .ok_or_else(|| Error::NotFound(format!("notice {notice}")))?;
        let action: String = n.try_get("action")?;
        if !matches!(action.as_str(), "hide" | "remove" | "mute" | "suspend") {
            return Err(Error::Conflict(
                "this notice is not about an action that can be appealed".into(),
            ));
        }
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM appeals WHERE notice_id = $1")
            .bind(notice)
            .fetch_one(self.pool())
            .await?;
        if existing > 0 {
            return Err(Error::Conflict("this notice was already appealed".into()));
        }
        Ok(sqlx::query_scalar(
            "INSERT INTO appeals (notice_id, user_id, text, status, created_at) VALUES ($1, $2, $3, 'open', $4) RETURNING id",
        )
        .bind(notice)
        .bind(v.id)
        .bind(text)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?)
    }

    /// Grants (undoing the action) or denies an appeal.
    pub async fn decide_appeal(
        &self,
        m: &Viewer,
        appeal: i64,
        grant: bool,
        reason: &str,
    ) -> Result<()> {
        m.require_moderator()?;
        let reason = check_reason(reason)?;
        let a = sqlx::query(
            "SELECT a.user_id, n.action, n.target_kind, n.target_id FROM appeals a JOIN notices n ON n.id = a.notice_id
             WHERE a.id = $1 AND a.status = 'open'",
        )
        .bind(appeal)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| Error::NotFound(format!("open appeal {appeal}")))?;
        let user: i64 = a.try_get("user_id")?;
        if user == m.id {
            return Err(Error::Forbidden(
                "another moderator must decide your own appeal".into(),
            ));
        }
        let action: String = a.try_get("action")?;
        let kind: String = a.try_get("target_kind")?;
        let target: i64 = a.try_get("target_id")?;
        sqlx::query(
            "UPDATE appeals SET status = $1, decided_by = $2, decided_at = $3 WHERE id = $4",
        )
        .bind(if grant { "granted" } else { "denied" })
        .bind(m.id)
        .bind(now_ms())
        .bind(appeal)
        .execute(self.pool())
        .await?;
        if grant {
            match action.as_str() {
                "hide" | "remove" => {
                    let table = if kind == "post" { "posts" } else { "comments" };
                    sqlx::query(&format!(
                        "UPDATE {table} SET status = 'visible' WHERE id = $1"
                    ))
                    .bind(target)
                    .execute(self.pool())
                    .await?;
                }
                _ => {
                    let sql = if action == "mute" {
                        "UPDATE users SET muted_until = NULL, mute_reason = NULL WHERE id = $1"
                    } else {
                        "UPDATE users SET suspended_until = NULL, suspend_reason = NULL WHERE id = $1"
                    };
                    sqlx::query(sql).bind(target).execute(self.pool()).await?;
                }
            }
        }
        let name = if grant {
            "appeal_granted"
        } else {
            "appeal_denied"
        };
        self.notify(user, name, &kind, target, &reason, None)
            .await?;
        self.audit(Some(m.id), name, "appeal", appeal, &reason)
            .await
    }
}
