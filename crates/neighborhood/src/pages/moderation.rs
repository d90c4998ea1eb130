//! The moderation queue (reports with their post or comment, appeals,
//! pending registrations) and each user's notices with the appeal form.
//! Every action posts to `/moderation/{kind}/{id}/{action}` and goes
//! through the same service methods as the API (which audit it and tell
//! the author).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{html, Markup};

use super::{csrf_field, page, see_other, Form, Nav, PageError, PageResult, Session};
use crate::moderation::{ContentAction, UserAction};
use crate::Neighborhood;

fn bad(msg: impl Into<String>) -> PageError {
    PageError::new(StatusCode::UNPROCESSABLE_ENTITY, msg)
}

fn action_form(
    csrf: &str,
    path: &str,
    label: &str,
    with_hours: bool,
    extra: Option<(&str, &str)>,
) -> Markup {
    html! {
        form.action method="post" action=(path) {
            (csrf_field(csrf))
            @if let Some((k, v)) = extra { input type="hidden" name=(k) value=(v); }
            input name="reason" required maxlength="500" placeholder="Reason (shown to the author)";
            @if with_hours { input name="hours" type="number" min="1" max="8760" value="24" aria-label="Hours"; }
            button.secondary type="submit" { (label) }
        }
    }
}

/// `GET /moderation`.
pub async fn queue(State(n): State<Neighborhood>, s: Session) -> PageResult {
    let q = n.queue(&s.v).await?;
    let reports = q["reports"].as_array().cloned().unwrap_or_default();
    let appeals = q["appeals"].as_array().cloned().unwrap_or_default();
    let regs = q["registrations"].as_array().cloned().unwrap_or_default();
    let c = &s.csrf;
    let body = html! {
        h1 { "Moderation" }
        h2 { "Reports (" (reports.len()) ")" }
        @if reports.is_empty() { p.muted { "No open reports." } }
        @for r in &reports {
            @let kind = r["target_kind"].as_str().unwrap_or("post");
            @let tid = r["target_id"].as_i64().unwrap_or(0);
            @let rid = r["id"].as_i64().unwrap_or(0);
            @let author = r["target"]["author_id"].as_i64().unwrap_or(0);
            @let plural = if kind == "post" { "posts" } else { "comments" };
            article.card.report {
                p.meta { span.badge.warn { (r["reason"].as_str().unwrap_or("")) } " · reported " (r["created_at"].as_str().unwrap_or("")) }
                @if let Some(note) = r["note"].as_str().filter(|n| !n.is_empty()) { p { "Reporter's note: " (note) } }
                @if kind == "post" {
                    h3 { a href={ "/posts/" (tid) } { (r["target"]["title"].as_str().unwrap_or("")) } }
                } @else { h3 { "Comment #" (tid) } }
                p.body { (r["target"]["body"].as_str().unwrap_or("")) }
                p.muted { "By " (r["target"]["author"].as_str().unwrap_or("")) " · now " (r["target"]["status"].as_str().unwrap_or("")) }
                div.actions {
                    (action_form(c, &format!("/moderation/{plural}/{tid}/hide"), "Hide", false, None))
                    (action_form(c, &format!("/moderation/{plural}/{tid}/remove"), "Remove", false, None))
                    (action_form(c, &format!("/moderation/{plural}/{tid}/restore"), "Restore", false, None))
                    (action_form(c, &format!("/moderation/reports/{rid}/dismiss"), "Dismiss report", false, None))
                    (action_form(c, &format!("/moderation/users/{author}/mute"), "Mute author (hours)", true, None))
                    (action_form(c, &format!("/moderation/users/{author}/suspend"), "Suspend author (hours)", true, None))
                }
            }
        }
        h2 { "Appeals (" (appeals.len()) ")" }
        @if appeals.is_empty() { p.muted { "No open appeals." } }
        @for a in &appeals {
            @let aid = a["id"].as_i64().unwrap_or(0);
            article.card {
                p { strong { (a["user"].as_str().unwrap_or("")) } " appeals: " (a["action"].as_str().unwrap_or("")) " of " (a["target_kind"].as_str().unwrap_or("")) " #" (a["target_id"].as_i64().unwrap_or(0)) }
                p.muted { "Original reason: " (a["reason"].as_str().unwrap_or("")) }
                p.body { (a["text"].as_str().unwrap_or("")) }
                div.actions {
                    (action_form(c, &format!("/moderation/appeals/{aid}/grant"), "Grant", false, None))
                    (action_form(c, &format!("/moderation/appeals/{aid}/deny"), "Deny", false, None))
                }
            }
        }
        h2 { "Registrations waiting (" (regs.len()) ")" }
        @if regs.is_empty() { p.muted { "Nobody is waiting." } }
        @for u in &regs {
            @let uid = u["id"].as_i64().unwrap_or(0);
            article.card {
                p { strong { (u["display_name"].as_str().unwrap_or("")) } " (" (u["username"].as_str().unwrap_or("")) ") · " (u["created_at"].as_str().unwrap_or("")) }
                div.actions {
                    form.inline method="post" action={ "/moderation/registrations/" (uid) "/approve" } { (csrf_field(c)) button type="submit" { "Approve" } }
                    " "
                    form.inline method="post" action={ "/moderation/registrations/" (uid) "/reject" } { (csrf_field(c)) button.danger type="submit" { "Reject" } }
                }
            }
        }
    };
    Ok(page("Moderation", &s, Nav::Moderation, body).into_response())
}

/// `POST /moderation/{kind}/{id}/{action}`.
pub async fn act(
    State(n): State<Neighborhood>,
    Path((kind, id, action)): Path<(String, i64, String)>,
    f: Form,
) -> PageResult {
    let v = &f.s.v;
    v.require_moderator()?;
    let reason = f.text("reason");
    match kind.as_str() {
        "posts" => {
            n.moderate_content(v, "post", id, ContentAction::parse(&action)?, reason)
                .await?
        }
        "comments" => {
            n.moderate_content(v, "comment", id, ContentAction::parse(&action)?, reason)
                .await?
        }
        "users" => {
            let hours = match f.get("hours").filter(|h| !h.is_empty()) {
                Some(h) => Some(
                    h.parse::<i64>()
                        .map_err(|_| bad(format!("{h:?} is not a number of hours.")))?,
                ),
                None => None,
            };
            n.moderate_user(v, id, UserAction::parse(&action)?, reason, hours)
                .await?
        }
        "reports" if action == "dismiss" => n.dismiss_report(v, id, reason).await?,
        "appeals" => {
            let grant = match action.as_str() {
                "grant" => true,
                "deny" => false,
                o => {
                    return Err(bad(format!(
                        "Unknown decision {o:?}: expected grant or deny."
                    )))
                }
            };
            n.decide_appeal(v, id, grant, reason).await?
        }
        "registrations" => {
            let approve = match action.as_str() {
                "approve" => true,
                "reject" => false,
                o => {
                    return Err(bad(format!(
                        "Unknown decision {o:?}: expected approve or reject."
                    )))
                }
            };
            n.decide_registration(v.id, id, approve).await?
        }
        other => {
            return Err(PageError::new(
                StatusCode::NOT_FOUND,
                format!("There is no moderation action for {other:?}."),
            ))
        }
    }
    Ok(see_other("/moderation"))
}

/// `GET /notices`: what moderators did about my posts or account, with an
/// appeal form where appealable.
pub async fn notices(State(n): State<Neighborhood>, s: Session) -> PageResult {
    let list = n.notices(&s.v).await?;
    let list = list["notices"].as_array().cloned().unwrap_or_default();
    let body = html! {
        h1 { "Notices" }
        @if list.is_empty() { p.muted { "Nothing here: no moderator has acted on your posts or account." } }
        @for x in &list {
            @let id = x["id"].as_i64().unwrap_or(0);
            article.card {
                p { strong { (x["message"].as_str().unwrap_or("")) } }
                p { "Reason: " (x["reason"].as_str().unwrap_or("")) }
                p.muted.small { (x["created_at"].as_str().unwrap_or("")) }
                @if let Some(a) = x["appeal"].as_str() {
                    p { "Your appeal: " span.badge { (a) } }
                } @else if x["appealable"].as_bool().unwrap_or(false) {
                    form method="post" action={ "/notices/" (id) "/appeal" } {
                        (csrf_field(&s.csrf))
                        label { "Appeal this decision" textarea name="text" rows="3" required maxlength="2000" {} }
                        button.secondary type="submit" { "Send appeal" }
                    }
                }
            }
        }
    };
    Ok(page("Notices", &s, Nav::Notices, body).into_response())
}

/// `POST /notices/{id}/appeal`.
pub async fn appeal(State(n): State<Neighborhood>, Path(id): Path<i64>, f: Form) -> PageResult {
    n.appeal(&f.s.v, id, f.text("text")).await?;
    Ok(see_other("/notices"))
}
