//! The `/alarm` page: the alarm's state with arm home / arm away / disarm
//! buttons (plain form posts, so it works without JavaScript), a countdown
//! during the exit and entry delays, bypass warnings, the sensor list
//! (open/closed, which armed modes it sets the alarm off in, battery,
//! link quality, last seen) and the MQTT broker's
//! status, with "broker away" impossible to miss, and per camera the
//! privacy switch and what it does in each mode (record, detect, notify:
//! a form for owners, read-only for members). `assets/js/alarm.js`
//! watches `GET /api/v1/alarm`, runs the countdown, and on a change
//! redraws the parts marked `data-part` except one holding an unsaved
//! edit.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use axum::extract::Path;
use maud::Markup;
use porchlight_store::camera_modes::{ModeFlags, MODES};
use porchlight_store::Role;

use super::layout::{csrf_field, page_in, q, Tab};
use crate::alarm::{back, save_modes, ModesBody};
use crate::error::PageError;
use crate::session::{require_role, PageUser};
use crate::App;

/// The flags of the per-mode form, in column order.
const FLAGS: [&str; 3] = ["record", "detect", "notify"];

fn flag(f: &ModeFlags, name: &str) -> bool {
    match name {
        "record" => f.record,
        "detect" => f.detect,
        _ => f.notify,
    }
}

/// Per camera a table of modes × record/detect/notify. Owners get
/// checkboxes in a form (one per camera, posted to
/// `/alarm/cameras/{name}/modes`); members, like the API's `GET …/modes`,
/// only read them for the cameras they see.
fn modes_section(
    modes: &[(String, Vec<(&'static str, ModeFlags)>)],
    now_mode: &str,
    owner: bool,
    csrf: &str,
) -> Markup {
    let table = |name: &str, flags: &[(&'static str, ModeFlags)]| {
        html! {
            table.list data-testid={ "camera-modes-" (name) } {
                thead { tr { th { "Mode" } @for f in FLAGS { th { (f) } } } }
                tbody {
                    @for (m, fl) in flags {
                        tr data-mode=(m) {
                            td { (m) @if *m == now_mode { span.muted { " (now)" } } }
                            @for f in FLAGS {
                                td {
                                    input type="checkbox" name={ (m) "." (f) } value="1"
                                        aria-label={ (name) ": " (f) " when " (m) }
                                        checked[flag(fl, f)] disabled[!owner];
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html! {
        section.card data-testid="alarm-camera-modes" {
            h2 { "What cameras do in each mode" }
            p.muted {
                "Per camera and alarm mode: record, detect (people, vehicles, parcels…) and notify. Privacy mode above overrides them."
                @if !owner { " Only an owner can change them." }
            }
            @if modes.is_empty() { p.muted { "No cameras." } }
            @for (name, flags) in modes {
                // One part per camera: alarm.js redraws it unless its
                // boxes are being changed.
                div data-part={ "modes-" (name) } {
                    h3 { (name) }
                    @if owner {
                        form method="post" action={ "/alarm/cameras/" (q(name)) "/modes" } {
                            (csrf_field(csrf))
                            (table(name, flags))
                            button.secondary type="submit" { "Save " (name) }
                        }
                    } @else {
                        (table(name, flags))
                    }
                }
            }
        }
    }
}

/// The per-mode form's fields, `{mode}.{flag}` for each ticked box, as the
/// API's body: every mode, a box not sent is off.
fn parse_modes(body: &[u8]) -> Result<ModesBody, String> {
    let mut b: ModesBody = MODES
        .iter()
        .map(|m| {
            (
                (*m).to_owned(),
                ModeFlags {
                    record: false,
                    detect: false,
                    notify: false,
                },
            )
        })
        .collect();
    for (k, _) in form_urlencoded::parse(body) {
        if k == "csrf" {
            continue;
        }
        let known = k.split_once('.').and_then(|(m, f)| {
            let fl = b.get_mut(m)?;
            match f {
                "record" => fl.record = true,
                "detect" => fl.detect = true,
                "notify" => fl.notify = true,
                _ => return None,
            }
            Some(())
        });
        if known.is_none() {
            return Err(format!(
                "unknown field `{k}`: the modes are disarmed, home and away, each with record, detect and notify"
            ));
        }
    }
    Ok(b)
}

/// `POST /alarm/cameras/{name}/modes`: the form above, saved through the
/// API's own [`save_modes`] (owners only, audited `camera.modes`), then
/// back to `/alarm` saying so.
pub(crate) async fn modes_form(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let b = match parse_modes(&body) {
        Ok(b) => b,
        Err(e) => return Ok(back("error", &e)),
    };
    match save_modes(&app, &u.session, &u.visitor, &name, &b).await {
        Ok(_) => Ok(back("msg", &format!("Saved what {name} does in each mode"))),
        Err(e) if e.status().is_client_error() => Ok(back("error", &e.to_string())),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct Flash {
    msg: Option<String>,
    error: Option<String>,
}

fn secs(ms: &Value) -> Option<u64> {
    ms.as_u64().map(|m| m.div_ceil(1000))
}

pub(crate) async fn page(
    State(app): State<App>,
    u: PageUser,
    Query(f): Query<Flash>,
) -> Result<Response, PageError> {
    require_role(&u.session, &crate::alarm::ROLES).map_err(PageError)?;
    let st = match &app.alarm {
        Some(a) => Some(crate::alarm::status_json(&app, a).await?),
        None => None,
    };
    let csrf = &u.session.csrf_token;
    let store = app.vault.store();
    let mut cams = Vec::new();
    let mut modes = Vec::new();
    for c in crate::access::visible_cameras(&app, &u.session).await? {
        let p = store.camera_policy(c.id).await?;
        modes.push((c.name.clone(), store.camera_modes(c.id).await?));
        cams.push((c.name, p));
    }
    let owner = u.session.role == Role::Owner;
    let now_mode = store.current_camera_mode().await?;
    Ok(page_in(
        Some(Tab::Alarm),
        "Alarm",
        &u.session,
        html! {
            h1 { "Alarm" }
            @if let Some(m) = &f.msg { p.notice role="status" { (m) } }
            @if let Some(e) = &f.error { p.error role="alert" { (e) } }
            @match &st {
                None => p.muted data-testid="alarm-unavailable" { (crate::alarm::UNAVAILABLE) },
                Some(v) => {
                    @let state = v["state"].as_str().unwrap_or("?");
                    // Switching home ↔ away is allowed until a sensor trips.
                    @let can_arm = !matches!(state, "pending" | "triggered");
                    section.card #alarm data-testid="alarm-status" data-part="status" data-state=(state) {
                        p.alarm-state { "The alarm is " strong #alarm-state { (state.replace('_', " ")) } }
                        p #alarm-countdown hidden[v["exit_delay_left_ms"].is_null() && v["entry_delay_left_ms"].is_null()] {
                            @if let Some(s) = secs(&v["exit_delay_left_ms"]) { "Leave now: armed in " span.count data-ms=(v["exit_delay_left_ms"]) { (s) } " s" }
                            @if let Some(s) = secs(&v["entry_delay_left_ms"]) { "Disarm now: the alarm sounds in " span.count data-ms=(v["entry_delay_left_ms"]) { (s) } " s" }
                        }
                        @if v["siren"]["on"] == true { p.error role="alert" { "The siren is sounding." } }
                        @if let Some(b) = v["bypassed"].as_array().filter(|b| !b.is_empty()) {
                            p.warning data-testid="alarm-bypassed" {
                                "Bypassed until disarmed (open when armed): "
                                (b.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
                            }
                        }
                        div.actions {
                            form.inline method="post" action="/alarm/arm" {
                                (csrf_field(csrf))
                                input type="hidden" name="mode" value="home";
                                button type="submit" disabled[!can_arm] { "Arm home" }
                            }
                            form.inline method="post" action="/alarm/arm" {
                                (csrf_field(csrf))
                                input type="hidden" name="mode" value="away";
                                button type="submit" disabled[!can_arm] { "Arm away" }
                            }
                            form.inline method="post" action="/alarm/disarm" {
                                (csrf_field(csrf))
                                button.danger type="submit" disabled[state == "disarmed"] { "Disarm" }
                            }
                        }
                    }
                    section.card data-testid="alarm-broker" data-part="broker" {
                        h2 { "MQTT broker" }
                        @let m = &v["mqtt"];
                        @if m["enabled"] != true {
                            p.muted { "No broker is configured ([mqtt] url): sensors and sirens are not reachable; arming and disarming here still work." }
                        } @else if m["connected"] == true {
                            p { span.dot.live {} " Connected" }
                        } @else {
                            p.error role="alert" data-testid="broker-away" {
                                "Broker away: sensors and sirens cannot be reached."
                                @if let Some(e) = m["last_error"].as_str() { " Last error: " (e) }
                            }
                        }
                    }
                    section.card data-part="sensors" {
                        h2 { "Sensors" }
                        @let sensors = v["sensors"].as_array().cloned().unwrap_or_default();
                        @if sensors.is_empty() {
                            p.muted { "No sensors. Add one with " code { "porchlight sensor add NAME --kind contact --topic zigbee2mqtt/NAME" } "." }
                        } @else {
                            p.muted { "By default doors and windows set the alarm off when armed home or away, motion sensors only when armed away. Change one with " code { "porchlight sensor set NAME --modes home,away" } "." }
                            table.sensors data-testid="alarm-sensors" {
                                thead { tr { th { "Name" } th { "Kind" } th { "State" } th { "Sets the alarm off" } th { "Battery" } th { "Link" } th { "Last seen" } } }
                                tbody {
                                    @for s in &sensors {
                                        tr {
                                            td { (s["name"].as_str().unwrap_or("")) @if s["bypassed"] == true { " (bypassed)" } }
                                            td { (s["kind"].as_str().unwrap_or("")) }
                                            td { (s["state"].as_str().unwrap_or("—")) @if s["available"] == false { " · offline" } }
                                            td data-testid={ "sensor-modes-" (s["name"].as_str().unwrap_or("")) } {
                                                @let ms: Vec<&str> = s["modes"].as_array().map(|a| a.iter().filter_map(|m| m.as_str()).collect()).unwrap_or_default();
                                                @if ms.is_empty() { "never" } @else { "armed " (ms.join(" or ")) }
                                                @if s["modes_chosen"] == true { span.muted { " (chosen)" } }
                                            }
                                            td { @if let Some(b) = s["battery"].as_f64() { (b) " %" } @else { "—" } }
                                            td { @if let Some(l) = s["linkquality"].as_i64() { (l) } @else { "—" } }
                                            td { (s["last_seen"].as_str().unwrap_or("never")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    section.card data-testid="alarm-cameras" data-part="cameras" {
                        h2 { "Cameras in this mode" }
                        p.muted { "Privacy mode pauses recording, live view, detection and notifications for a camera (for example indoor cameras while people are home)." }
                        @if cams.is_empty() { p.muted { "No cameras." } }
                        ul {
                            @for (name, p) in &cams {
                                li {
                                    strong { (name) } " — "
                                    @if p.privacy { "privacy mode: paused" }
                                    @else {
                                        (if p.record { "records" } else { "does not record" }) ", "
                                        (if p.detect { "detects" } else { "does not detect" }) ", "
                                        (if p.notify { "notifies" } else { "does not notify" })
                                        " (" (p.mode) ")"
                                    }
                                    " "
                                    form.inline method="post" action={ "/alarm/cameras/" (super::layout::q(name)) "/privacy" } {
                                        (csrf_field(csrf))
                                        input type="hidden" name="on" value=(if p.privacy { "0" } else { "1" });
                                        button.btn-small type="submit" { (if p.privacy { "Turn privacy off" } else { "Turn privacy on" }) }
                                    }
                                }
                            }
                        }
                    }
                    (modes_section(&modes, now_mode, owner, csrf))
                    script src="/static/js/alarm.js" defer {}
                }
            }
        },
    )
    .into_response())
}
