//! A camera's page: the live view, the timeline of recordings (and, once
//! detection exists, events) with a player, and downloads of any range.
//!
//! Owners also find the camera's edit form here (address, sub-stream,
//! credentials, retention; handled in `camera_admin`) and a link to its
//! detection settings and zone editor (`pages::detection`).
//!
//! Members reach only the cameras granted to them: anything else is a 403
//! and a `camera.denied` audit entry, for the page, the timeline fragment
//! and the download link alike (the API under them checks again).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use porchlight_store::Role;
use serde::Deserialize;

use super::layout::{page_in, Tab};
use super::timeline::{self, TimelineQ, Window};
use crate::access::{camera_state, recorded_spans, visible_camera, CameraState};
use crate::error::{PageError, WebError};
use crate::session::PageUser;
use crate::App;

async fn timeline_markup(
    app: &App,
    session: &porchlight_store::SessionRow,
    cam: &porchlight_store::Camera,
    tq: &TimelineQ,
) -> Result<maud::Markup, WebError> {
    let w = Window::new(tq, app.vault.now()).map_err(WebError::BadRequest)?;
    let spans = recorded_spans(app, cam, w.from, w.to).await?;
    let events =
        crate::events::events_between(app, session, std::slice::from_ref(cam), None, w.from, w.to)
            .await?;
    Ok(timeline::render(cam, &w, &spans, &events))
}

/// What the edit form's last post did (it redirects back here).
#[derive(Debug, Default, Deserialize)]
pub(super) struct EditFlash {
    edited: Option<String>,
    edit_error: Option<String>,
}

/// The owner's form to change a camera: address, sub-stream, credentials
/// and retention, optionally tested before saving. Posts to
/// `/cameras/{name}/edit` (in `camera_admin`), which answers by sending the
/// browser back here with the outcome.
fn edit_form(cam: &porchlight_store::Camera, csrf: &str, flash: &EditFlash) -> maud::Markup {
    let days = cam
        .retain_max_age_secs
        .map(|s| (s as f64 / 86400.0).to_string());
    let gib = cam.retain_max_bytes.map(|b| {
        format!(
            "{}",
            (b as f64 / (1u64 << 30) as f64 * 100.0).round() / 100.0
        )
    });
    let open = flash.edited.is_some() || flash.edit_error.is_some();
    html! {
        details.card #edit open[open] {
            summary { "Edit this camera" }
            @if flash.edited.is_some() {
                p.ok role="status" data-testid="edit-saved" { "Saved. The hub reconnects to the camera within a few seconds." }
            }
            @if let Some(e) = &flash.edit_error {
                p.error role="alert" data-testid="edit-error" { (e) }
            }
            form method="post" action={ "/cameras/" (cam.name) "/edit" } data-testid="camera-edit" {
                (super::layout::csrf_field(csrf))
                label { "RTSP address (main stream)"
                    input type="url" name="url" value=(cam.main_url) required autocomplete="off";
                }
                label { "Sub-stream address " span.muted { "(optional, for detection and small tiles)" }
                    input type="url" name="sub_url" value=(cam.sub_url.clone().unwrap_or_default()) autocomplete="off";
                }
                label { "User name"
                    input type="text" name="username" value=(cam.username.clone().unwrap_or_default()) autocomplete="off";
                }
                label { "Password " span.muted { "(blank: keep the saved one)" }
                    input type="password" name="password" autocomplete="new-password";
                }
                label.check { input type="checkbox" name="clear_password" value="1"; " Remove the saved password" }
                label { "Keep recordings for at most (days) " span.muted { "(blank: no limit)" }
                    input type="number" name="retain_days" min="0" step="any" value=(days.unwrap_or_default()) inputmode="decimal";
                }
                label { "Keep at most (GiB) " span.muted { "(blank: no limit)" }
                    input type="number" name="retain_gib" min="0" step="any" value=(gib.unwrap_or_default()) inputmode="decimal";
                }
                label.check { input type="checkbox" name="test" value="1"; " Test the connection before saving" }
                button type="submit" { "Save changes" }
            }
        }
    }
}

pub(super) async fn camera(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    Query(tq): Query<TimelineQ>,
    Query(flash): Query<EditFlash>,
) -> Result<Response, PageError> {
    let cam = visible_camera(&app, &u.session, &u.visitor, &name, "page").await?;
    let (state, last_error) = camera_state(&app, &cam).await?;
    let key = app.vault.unlocked_key(&u.session).is_some();
    let tl = timeline_markup(&app, &u.session, &cam, &tq).await?;
    let now = app.vault.now();
    let default_from = now - jiff::SignedDuration::from_mins(5);
    Ok(page_in(
        Some(Tab::Live),
        &cam.name,
        &u.session,
        html! {
            div.title-row {
                h1 { (cam.name) }
                span class={ "chip " (state.class()) } { span.dot {} (state.label()) }
            }
            @if state == CameraState::Paused {
                p.notice { "Paused (privacy mode): this camera is not recording and cannot be watched live until an owner switches it back on." }
            } @else {
                div.live {
                    video data-live=(cam.name) muted autoplay playsinline controls {}
                    p.muted.live-status { "Live · " span data-live-status=(cam.name) { "starting…" } }
                }
                @if let Some(e) = last_error.filter(|_| state == CameraState::Offline) {
                    p.error { "The camera does not answer: " (e) }
                }
            }
            h2 { "Recordings" }
            @if !key {
                p.notice { "Your household key is locked (the hub restarted since you signed in). Sign out and in again to watch recordings." }
            }
            (tl)
            section #playback .playback hidden {
                video data-playback controls playsinline preload="auto" {}
                p.playback-status data-playback-status aria-live="polite" { "Choose a moment on the bar above." }
                p.actions {
                    a.button data-download href="#" download { "Download this clip" }
                }
            }
            details.card.download {
                summary { "Download a range as MP4" }
                p.muted { "A plain MP4 file that any video player opens. Downloads are written to the audit log." }
                form method="get" action={ "/cameras/" (cam.name) "/download" } data-download-form {
                    input type="hidden" name="tz" value="0";
                    label { "From " span data-tz-label { "(UTC)" }
                        input type="datetime-local" name="from" step="1" required
                            value=(default_from.strftime("%Y-%m-%dT%H:%M:%S"));
                    }
                    label { "Minutes"
                        input type="number" name="minutes" min="1" max="1440" value="5" required;
                    }
                    button type="submit" { "Download MP4" }
                }
            }
            @if u.session.role == Role::Owner {
                (edit_form(&cam, &u.session.csrf_token, &flash))
                p { a.button.secondary href={ "/cameras/" (cam.name) "/detection" } data-testid="detection-link" { "Detection: zones, masks and alerts" } }
                p { a href={ "/settings/cameras/" (cam.name) } { "All camera settings" } }
            }
            script src="/static/live.js" defer {}
            script src="/static/timeline.js" defer {}
        },
    )
    .into_response())
}

/// The timeline section alone, for the script to swap in when zooming or
/// moving to another hour or day (the live view keeps playing).
pub(super) async fn timeline_fragment(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    Query(tq): Query<TimelineQ>,
) -> Result<Response, PageError> {
    let cam = visible_camera(&app, &u.session, &u.visitor, &name, "timeline").await?;
    Ok(timeline_markup(&app, &u.session, &cam, &tq)
        .await?
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct DownloadQ {
    /// `YYYY-MM-DDTHH:MM[:SS]` as a `datetime-local` input sends it.
    from: String,
    minutes: u32,
    /// The reader's offset from UTC in minutes (the script fills it in;
    /// without it the time is UTC, as the form says).
    #[serde(default)]
    tz: i32,
}

fn parse_local(s: &str, tz_minutes: i32) -> Result<jiff::Timestamp, WebError> {
    let dt: jiff::civil::DateTime = s.trim().parse().map_err(|_| {
        WebError::BadRequest(format!(
            "`{s}` is not a date and time like 2026-11-29T14:02"
        ))
    })?;
    let utc = dt
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| WebError::BadRequest(format!("`{s}`: {e}")))?
        .timestamp();
    Ok(utc - jiff::SignedDuration::from_mins(i64::from(tz_minutes.clamp(-18 * 60, 18 * 60))))
}

/// The download form's target: checks the camera and sends the browser on
/// to the MP4 (as an attachment).
pub(super) async fn download(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    Query(d): Query<DownloadQ>,
) -> Result<Response, PageError> {
    let cam = visible_camera(&app, &u.session, &u.visitor, &name, "download").await?;
    let from = parse_local(&d.from, d.tz)?;
    if !(1..=1440).contains(&d.minutes) {
        return Err(WebError::BadRequest("choose between 1 and 1440 minutes".into()).into());
    }
    let to = from + jiff::SignedDuration::from_mins(i64::from(d.minutes));
    Ok(Redirect::to(&format!(
        "{}&download=1",
        timeline::view_url(&cam, from, to)
    ))
    .into_response())
}

/// All cameras live at once.
pub(super) async fn live_grid(State(app): State<App>, u: PageUser) -> Result<Response, PageError> {
    let cams = crate::access::visible_cameras(&app, &u.session).await?;
    let mut rows = Vec::new();
    for c in cams {
        let (state, _) = camera_state(&app, &c).await?;
        rows.push((c, state));
    }
    Ok(page_in(
        Some(Tab::Live),
        "Live",
        &u.session,
        html! {
            h1 { "Live" }
            @if rows.is_empty() {
                p.muted { "No cameras to show." }
            } @else {
                ul.live-grid {
                    @for (c, state) in &rows {
                        li {
                            @if *state == CameraState::Paused {
                                div.paused-box { "Paused (privacy mode)" }
                            } @else {
                                video data-live=(c.name) muted autoplay playsinline {}
                            }
                            a.caption href={ "/cameras/" (c.name) } {
                                span class={ "dot " (state.class()) } {}
                                strong { (c.name) }
                                span.muted { " · " span data-live-status=(c.name) { (state.label()) } }
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
