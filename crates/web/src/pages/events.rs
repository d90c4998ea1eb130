//! The events list with filters by camera, kind and time, each event with
//! its thumbnail and a link to its detail page (`/events/{id}`, in
//! [`crate::events`]). With no events the page says why instead of
//! pretending.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout::{page_in, time_el, Tab};
use crate::access::visible_cameras;
use crate::error::PageError;
use crate::events::{detection_available, events_between, resolve_query, EventsQ, KINDS};
use crate::session::PageUser;
use crate::App;

const SPANS: [(&str, &str); 4] = [
    ("-1d", "Last day"),
    ("-7d", "Last week"),
    ("-30d", "Last 30 days"),
    ("-365d", "Last year"),
];

pub(super) async fn events(
    State(app): State<App>,
    u: PageUser,
    Query(q): Query<EventsQ>,
) -> Result<Response, PageError> {
    let all = visible_cameras(&app, &u.session).await?;
    let (cameras, kind, from, to) = resolve_query(&app, &u.session, &u.visitor, &q).await?;
    let list = events_between(&app, &u.session, &cameras, kind.as_deref(), from, to).await?;
    let sel_camera = q.camera.clone().unwrap_or_default();
    let sel_from = q.from.clone().unwrap_or_else(|| "-7d".into());
    Ok(page_in(
        Some(Tab::Events),
        "Events",
        &u.session,
        html! {
            h1 { "Events" }
            form.filters method="get" action="/events" {
                label { "Camera"
                    select name="camera" {
                        option value="" selected[sel_camera.is_empty()] { "All cameras" }
                        @for c in &all { option value=(c.name) selected[sel_camera == c.name] { (c.name) } }
                    }
                }
                label { "Kind"
                    select name="kind" {
                        option value="" selected[kind.is_none()] { "Everything" }
                        @for (id, label) in KINDS { option value=(id) selected[kind.as_deref() == Some(id)] { (label) } }
                    }
                }
                label { "When"
                    select name="from" {
                        @for (v, label) in SPANS { option value=(v) selected[sel_from == v] { (label) } }
                    }
                }
                button type="submit" { "Show" }
            }
            @if list.is_empty() {
                div.empty-state data-testid="events-empty" {
                    p { strong { "No events" } " between " (time_el(from, "datetime")) " and " (time_el(to, "datetime")) "." }
                    @if !detection_available(&app) {
                        p.muted { "Motion, person and doorbell detection are not set up on this hub yet, so nothing creates events. Recordings are still kept: find them on each camera's timeline." }
                    }
                    @if !all.is_empty() {
                        ul.links { @for c in &all { li { a href={ "/cameras/" (c.name) } { (c.name) "'s timeline" } } } }
                    }
                }
            } @else {
                ul.events.with-thumbs data-testid="events-list" {
                    @for e in &list {
                        li { a href={ "/events/" (e.id) } {
                            (thumb(e))
                            span.event-text {
                                strong { (crate::events::kind_label(&e.kind)) } " · " (e.camera) " · " (time_el(e.start, "datetime"))
                                @if !e.zones.is_empty() { span.muted { " · " (e.zones.join(", ")) } }
                            }
                        } }
                    }
                }
            }
        },
    )
    .into_response())
}

/// An event's thumbnail (decrypted by the hub for the reader), or a plain
/// box naming the kind when it has none. Thumbnails load lazily: a long
/// list fetches only what is on screen.
pub(crate) fn thumb(e: &crate::events::Event) -> maud::Markup {
    html! {
        @if e.snapshot {
            img.thumb src={ "/api/v1/events/" (e.id) "/thumb.jpg" } loading="lazy" alt="" width="96" height="54";
        } @else {
            span.thumb.empty aria-hidden="true" { (e.kind) }
        }
    }
}
