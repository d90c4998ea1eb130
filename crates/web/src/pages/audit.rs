//! The owner's view of the audit log: who did what, when, from where —
//! with a filter for looks at video (live views, stills, playbacks,
//! downloads and refusals), the question an owner most often asks.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use porchlight_store::{AuditEntry, Role};
use serde::Deserialize;

use super::layout::{page_in, time_el, Tab};
use crate::error::PageError;
use crate::session::{require_role, PageUser};
use crate::App;

#[derive(Deserialize)]
pub(super) struct Q {
    before: Option<i64>,
    /// `video`: only looks at video.
    only: Option<String>,
}

const PAGE: i64 = 100;
/// Most entries read to fill one filtered page.
const SCAN: i64 = 5000;

/// Actions that are a look at video (or a refused attempt at one).
const VIDEO: [&str; 6] = [
    "live.view",
    "live.still",
    "live.restream",
    "recording.playback",
    "recording.export",
    "camera.denied",
];

fn detail_text(e: &AuditEntry) -> String {
    let d = &e.detail;
    let mut parts = Vec::new();
    if let (Some(f), Some(t)) = (d["from"].as_str(), d["to"].as_str()) {
        let short = |s: &str| {
            s.parse::<jiff::Timestamp>()
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|_| s.to_owned())
        };
        parts.push(format!("{} – {} UTC", short(f), short(t)));
    }
    for k in ["what", "user", "role", "url"] {
        if let Some(v) = d[k].as_str() {
            parts.push(format!("{k}: {v}"));
        }
    }
    parts.join(" · ")
}

pub(super) async fn audit(
    State(app): State<App>,
    u: PageUser,
    Query(q): Query<Q>,
) -> Result<Response, PageError> {
    require_role(&u.session, &[Role::Owner])?;
    let store = app.vault.store();
    let video_only = q.only.as_deref() == Some("video");
    let mut entries = Vec::new();
    let mut before = q.before;
    let mut more = false;
    if video_only {
        let mut scanned = 0;
        'scan: loop {
            let batch = store.audit_entries(before, 500).await?;
            let n = batch.len() as i64;
            for e in batch {
                scanned += 1;
                before = Some(e.seq);
                if VIDEO.contains(&e.action.as_str()) {
                    entries.push(e);
                    if entries.len() as i64 == PAGE {
                        more = true;
                        break 'scan;
                    }
                }
            }
            if n < 500 {
                break;
            }
            if scanned >= SCAN {
                more = true;
                break;
            }
        }
    } else {
        entries = store.audit_entries(q.before, PAGE).await?;
        more = entries.len() as i64 == PAGE;
        before = entries.last().map(|e| e.seq);
    }
    let (checked, problem) = store.verify_audit_chain().await?;
    Ok(page_in(
        Some(Tab::Settings),
        "Audit log",
        &u.session,
        html! {
            h1 { "Audit log" }
            @match &problem {
                None => p.ok { "Chain intact: all " (checked) " entries verified." },
                Some(p) => p.error role="alert" { "The audit log has been tampered with: " (p.to_string()) },
            }
            div.seg role="group" aria-label="Show" {
                a.seg-item href="/audit" aria-current=[(!video_only).then_some("true")] { "Everything" }
                a.seg-item href="/audit?only=video" aria-current=[video_only.then_some("true")] { "Who watched what" }
            }
            @if entries.is_empty() {
                p.muted { "Nothing to show." }
            }
            ol.audit {
                @for e in &entries {
                    li class=[VIDEO.contains(&e.action.as_str()).then_some("video")] {
                        span.what { code { (e.action) } " " (e.target) }
                        span.seq { "#" (e.seq) }
                        span.who {
                            strong { (e.actor) }
                            @if !e.client.is_empty() { " from " (e.client) }
                            " · " (time_el(e.at, "full"))
                            @let d = detail_text(e);
                            @if !d.is_empty() { " · " (d) }
                        }
                    }
                }
            }
            @if let Some(b) = before.filter(|_| more) {
                p { a.btn-small href={ "/audit?before=" (b) (if video_only { "&only=video" } else { "" }) } { "Older entries" } }
            }
        },
    )
    .into_response())
}
