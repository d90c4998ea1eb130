//! The home page: the cameras at a glance (status and a still picture),
//! the alarm, recent events, and what the hub does with your video.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout::{page_in, time_el, Tab};
use crate::access::{camera_state, visible_cameras, CameraState};
use crate::error::PageError;
use crate::session::{PageRedirect, Visitor};
use crate::App;
use porchlight_store::{Role, SessionStage};

pub(super) async fn home(State(app): State<App>, v: Visitor) -> Result<Response, PageError> {
    if app.vault.store().count_users().await? == 0 {
        return Ok(Redirect::to("/setup").into_response());
    }
    let s = match &v.session {
        None => return Ok(Redirect::to("/signin").into_response()),
        Some(s) if s.stage == SessionStage::Full => s,
        Some(s) if s.stage == SessionStage::Totp => {
            return Ok(PageRedirect::To("/signin/code").into_response())
        }
        Some(_) => return Ok(PageRedirect::To("/account/two-factor").into_response()),
    };
    let key = app.vault.unlocked_key(s).is_some();
    let owner = s.role == Role::Owner;
    let cameras = visible_cameras(&app, s).await?;
    let mut cams = Vec::new();
    for c in &cameras {
        let (state, _) = camera_state(&app, c).await?;
        cams.push((c, state));
    }
    let now = app.vault.now();
    let events = crate::events::events_between(
        &app,
        s,
        &cameras,
        None,
        now - jiff::SignedDuration::from_hours(24),
        now,
    )
    .await?;
    let stills = app.live.is_some();
    let alarm_state = app.alarm.as_ref().map(|a| {
        let l = a.link();
        (a.state(), l.enabled && !l.connected)
    });
    Ok(page_in(
        Some(Tab::Home),
        "Home",
        s,
        html! {
            h1 { "Hello, " (s.username) }
            section.card {
                div.card-head {
                    h2 { "Cameras" }
                    @if !cams.is_empty() { a.btn-small href="/live" { "Watch all live" } }
                }
                @if cams.is_empty() {
                    @if owner {
                        p.muted { "No cameras yet. " a href="/settings/cameras" { "Add your first camera" } "." }
                    } @else {
                        p.muted { "No cameras are shared with you yet. An owner of this hub can grant you cameras." }
                    }
                } @else {
                    ul.tiles {
                        @for (c, state) in &cams {
                            li { a.tile href={ "/cameras/" (c.name) } {
                                @if stills && *state == CameraState::Live {
                                    // A JPEG of the next key frame; `data-fallback` names the
                                    // one-frame MP4 for cameras the hub cannot decode.
                                    img.still src={ "/api/v1/cameras/" (c.name) "/still.jpg" }
                                        data-fallback={ "/api/v1/cameras/" (c.name) "/still.mp4" }
                                        alt={ "Still picture of " (c.name) } width="640" height="360";
                                } @else {
                                    div.still.empty { (state.label()) }
                                }
                                span.tile-caption {
                                    span class={ "dot " (state.class()) } {}
                                    strong { (c.name) }
                                    span.muted { " · " (state.label()) }
                                }
                            } }
                        }
                    }
                }
            }
            section.card data-testid="alarm-tile" {
                div.card-head {
                    h2 { "Alarm" }
                    @if alarm_state.is_some() && crate::alarm::ROLES.contains(&s.role) { a.btn-small href="/alarm" { "Open the alarm" } }
                }
                @match &alarm_state {
                    Some((state, away)) => {
                        p { "The alarm is " strong { (state.replace('_', " ")) } "." }
                        @if *away { p.warning { "The MQTT broker is away: sensors and sirens cannot be reached." } }
                    }
                    None => p.muted { "The alarm does not run in this process." }
                }
            }
            section.card {
                div.card-head {
                    h2 { "Recent events" }
                    a.btn-small href="/events" { "All events" }
                }
                @if events.is_empty() {
                    p.muted.empty-state {
                        "No events in the last day."
                        @if !crate::events::detection_available(&app) { " Motion, person and doorbell detection are not set up on this hub yet." }
                    }
                } @else {
                    ul.events.with-thumbs {
                        @for e in events.iter().take(5) {
                            li { a href={ "/events/" (e.id) } {
                                (super::events::thumb(e))
                                span.event-text { strong { (crate::events::kind_label(&e.kind)) } " · " (e.camera) " · " (time_el(e.start, "datetime")) }
                            } }
                        }
                    }
                }
            }
            section.card {
                h2 { "Privacy" }
                ul {
                    li { "Video stays on this hub, encrypted to your household's keys." }
                    @if s.role.is_hub_role() {
                        li { "Your household key is " @if key { "unlocked for this session only" } @else { "locked" } "." }
                    }
                    li { "Every sign-in and every look at footage is written to the audit log"
                        @if owner { " — " a href="/audit" { "read it" } } "." }
                }
            }
        },
    )
    .into_response())
}
