//! A camera's page: the live view, and its recordings of the last day with
//! links to play or download any stretch.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{page, when};
use crate::error::{PageError, WebError};
use crate::session::PageUser;
use crate::App;

pub(super) async fn camera(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let store = app.vault.store();
    let cam = store
        .camera_by_name(&name)
        .await?
        .ok_or(WebError::NotFound)?;
    if !store.may_see_camera(u.session.user_id, cam.id).await? {
        app.vault
            .audit(
                &u.visitor.actor(),
                "camera.denied",
                &cam.name,
                serde_json::json!({ "what": "page" }),
            )
            .await?;
        return Err(
            WebError::Forbidden(format!("you have no access to camera `{}`", cam.name)).into(),
        );
    }
    let now = app.vault.now();
    let day_ago = now - jiff::SignedDuration::from_hours(24);
    let rows = store
        .recordings_between(cam.id, "main", day_ago, now)
        .await?;
    // Merge adjacent segments into spans.
    let mut spans: Vec<(jiff::Timestamp, jiff::Timestamp)> = Vec::new();
    for r in rows {
        let end = if r.open { now } else { r.end() };
        match spans.last_mut() {
            Some(last) if (r.start - last.1).get_seconds().abs() <= 1 => last.1 = last.1.max(end),
            _ => spans.push((r.start, end)),
        }
    }
    let key = app.vault.unlocked_key(&u.session).is_some();
    let enc = |t: jiff::Timestamp| t.to_string().replace(':', "%3A");
    Ok(page(
        &cam.name,
        &u.session,
        html! {
            h1 { (cam.name) }
            div.live {
                video data-live=(cam.name) muted autoplay playsinline controls {}
                p.muted { "Live · " span data-live-status=(cam.name) { "starting…" } }
            }
            h2 { "Recorded in the last 24 hours" }
            @if !key {
                p.notice { "Your household key is locked (the hub restarted since you signed in). Sign out and in again to watch recordings." }
            }
            @if spans.is_empty() {
                p.muted { "Nothing recorded yet." }
            } @else {
                table.list {
                    thead { tr { th { "From" } th { "To" } th {} } }
                    tbody {
                        @for (s, e) in spans.iter().rev() {
                            @let last5 = if (*e - *s).get_seconds() > 300 { *e - jiff::SignedDuration::from_mins(5) } else { *s };
                            tr {
                                td { (when(*s)) }
                                td { (when(*e)) }
                                td {
                                    a href={ "/api/v1/cameras/" (cam.name) "/view.mp4?from=" (enc(last5)) "&to=" (enc(*e)) } { "Play last 5 min" }
                                }
                            }
                        }
                    }
                }
            }
            script src="/static/live.js" defer {}
        },
    )
    .into_response())
}
