//! The owner's view of the audit log: who did what, when, from where.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use porchlight_store::Role;
use serde::Deserialize;

use super::layout::{page, when};
use crate::error::PageError;
use crate::session::{require_role, PageUser};
use crate::App;

#[derive(Deserialize)]
pub(super) struct Q {
    before: Option<i64>,
}

const PAGE: i64 = 100;

pub(super) async fn audit(
    State(app): State<App>,
    u: PageUser,
    Query(q): Query<Q>,
) -> Result<Response, PageError> {
    require_role(&u.session, &[Role::Owner])?;
    let entries = app.vault.store().audit_entries(q.before, PAGE).await?;
    let (checked, problem) = app.vault.store().verify_audit_chain().await?;
    Ok(page(
        "Audit log",
        &u.session,
        html! {
            h1 { "Audit log" }
            @match &problem {
                None => p.ok { "Chain intact: all " (checked) " entries verified." },
                Some(p) => p.error role="alert" { "The audit log has been tampered with: " (p.to_string()) },
            }
            table.list {
                thead { tr { th { "#" } th { "When" } th { "Who" } th { "What" } th { "Target" } th { "From" } } }
                tbody {
                    @for e in &entries {
                        tr {
                            td { (e.seq) }
                            td { (when(e.at)) }
                            td { (e.actor) }
                            td { code { (e.action) } }
                            td { (e.target) }
                            td { (e.client) }
                        }
                    }
                }
            }
            @if let Some(last) = entries.last().filter(|_| entries.len() as i64 == PAGE) {
                p { a href={ "/audit?before=" (last.seq) } { "Older entries" } }
            }
        },
    )
    .into_response())
}
