//! A camera's detection settings as a page, for owners:
//! `/cameras/{name}/detection`. On/off, the stream analysed, the analysis
//! rate, object recognition and its thresholds, parcels, which labels
//! alert, motion sensitivity and minimum area, pre- and post-roll, and the
//! camera's zones and masks.
//!
//! Zones are drawn with `assets/js/detection.js` over a current still of
//! the camera (`/api/v1/cameras/{name}/still.jpg`): add a zone or a mask,
//! tap to place corners, drag them, delete a corner or a zone, name it,
//! choose its kind and labels. The script saves through
//! `PUT /api/v1/cameras/{name}/detection` (CSRF header) and shows the
//! server's message when the settings are refused.
//!
//! Without JavaScript the same form posts here (`POST`, CSRF field) with
//! the zones as JSON text; both paths validate and store through
//! [`crate::detection::save`], so they accept and refuse exactly the
//! same documents. A refused post shows the page again (400) with the
//! reason and the zones text as submitted; nothing is saved.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use porchlight_events::CameraDetection;
use porchlight_store::{Camera, Role, SessionRow};
use serde::Deserialize;
use serde_json::{json, Value};

use super::layout::{csrf_field, page_in, Tab};
use crate::access::visible_camera;
use crate::error::{PageError, WebError};
use crate::session::{require_role, PageUser};
use crate::App;

/// The labels the detector reports, with how the page names them.
const LABELS: [(&str, &str); 4] = [
    ("person", "People"),
    ("vehicle", "Vehicles"),
    ("animal", "Animals"),
    ("parcel", "Parcels"),
];

#[derive(Debug, Default, Deserialize)]
pub(super) struct Flash {
    saved: Option<String>,
}

pub(super) async fn page(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    require_role(&u.session, &[Role::Owner])?;
    let cam = visible_camera(&app, &u.session, &u.visitor, &name, "detection").await?;
    let settings = crate::detection::load(&app, &cam).await?;
    let zones = zones_text(&settings);
    Ok(render(
        &u.session,
        &cam,
        &settings,
        &zones,
        flash.saved.is_some(),
        None,
    )
    .into_response())
}

pub(super) async fn post(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    require_role(&u.session, &[Role::Owner])?;
    let cam = visible_camera(&app, &u.session, &u.visitor, &name, "detection").await?;
    let current = crate::detection::load(&app, &cam).await?;
    let form: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let zones_submitted = form
        .iter()
        .find(|(k, _)| k == "zones")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let outcome = match from_form(&current, &form) {
        Ok(doc) => crate::detection::save(&app, &u.visitor.actor(), &cam, &doc).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to(&format!(
            "/cameras/{}/detection?saved=1",
            super::layout::q(&cam.name)
        ))
        .into_response()),
        Err(WebError::BadRequest(why)) => Ok((
            StatusCode::BAD_REQUEST,
            render(
                &u.session,
                &cam,
                &current,
                &zones_submitted,
                false,
                Some(&why),
            ),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

fn zones_text(s: &CameraDetection) -> String {
    serde_json::to_string_pretty(&s.motion.zones).unwrap_or_else(|_| "[]".into())
}

/// The settings document the form describes: the current settings with
/// every field the form carries replaced (fields it lacks, such as the
/// analysis width, are kept). Errors name the field.
fn from_form(current: &CameraDetection, form: &[(String, String)]) -> Result<Value, WebError> {
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
    };
    let on = |k: &str| get(k).is_some_and(|v| v == "on");
    let number = |k: &str, what: &str| -> Result<Option<f64>, WebError> {
        match get(k) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| WebError::BadRequest(format!("{what}: “{v}” is not a number"))),
        }
    };
    let mut doc = json!(current);
    doc["enabled"] = json!(on("enabled"));
    doc["objects"] = json!(on("objects"));
    doc["parcels"] = json!(on("parcels"));
    if let Some(s) = get("stream") {
        doc["stream"] = json!(s);
    }
    for (k, what) in [
        ("fps", "frames analysed per second"),
        ("threshold", "minimum score"),
        ("parcel_threshold", "minimum score for a parcel"),
    ] {
        if let Some(x) = number(k, what)? {
            doc[k] = json!(x);
        }
    }
    for (k, what) in [("preroll_s", "pre-roll"), ("postroll_s", "post-roll")] {
        if let Some(x) = number(k, what)? {
            if x.fract() != 0.0 || !(0.0..=3600.0).contains(&x) {
                return Err(WebError::BadRequest(format!(
                    "{what}: {x} is not a whole number of seconds"
                )));
            }
            doc[k] = json!(x as u32);
        }
    }
    if let Some(x) = number("sensitivity", "motion sensitivity")? {
        doc["motion"]["sensitivity"] = json!(x);
    }
    if let Some(x) = number("min_area_pct", "smallest motion")? {
        doc["motion"]["min_area"] = json!(x / 100.0);
    }
    doc["alert_labels"] = json!(form
        .iter()
        .filter(|(k, _)| k == "alert_label")
        .map(|(_, v)| v.trim())
        .collect::<Vec<_>>());
    if let Some(text) = get("zones") {
        let zones: Value = if text.is_empty() {
            json!([])
        } else {
            serde_json::from_str(&text).map_err(|e| {
                WebError::BadRequest(format!("zones: the text is not a JSON list of zones ({e})"))
            })?
        };
        doc["motion"]["zones"] = zones;
    }
    Ok(doc)
}

fn render(
    s: &SessionRow,
    cam: &Camera,
    d: &CameraDetection,
    zones: &str,
    saved: bool,
    error: Option<&str>,
) -> Markup {
    let doc = serde_json::to_string(d).unwrap_or_else(|_| "{}".into());
    let alert = |l: &str| {
        d.alert_labels
            .iter()
            .any(|a| a == l || (l == "parcel" && a == "package"))
    };
    let min_area_pct = (f64::from(d.motion.min_area) * 10000.0).round() / 100.0;
    let round2 = |x: f32| (f64::from(x) * 100.0).round() / 100.0;
    page_in(
        Some(Tab::Live),
        &format!("Detection · {}", cam.name),
        s,
        html! {
            p.crumbs { a href={ "/cameras/" (cam.name) } { "← " (cam.name) } }
            h1 { "Detection" }
            @if saved { p.ok role="status" data-testid="detection-saved" { "Saved. The hub uses the new settings within a few seconds." } }
            @if let Some(e) = error { p.error role="alert" data-testid="detection-error" { "Not saved: " (e) } }
            form #detection-form method="post" action={ "/cameras/" (cam.name) "/detection" }
                data-camera=(cam.name) data-csrf=(s.csrf_token) data-doc=(doc) {
                (csrf_field(&s.csrf_token))
                section.card {
                    h2 { "What to look for" }
                    label.check { input type="checkbox" name="enabled" value="on" checked[d.enabled]; " Analyse this camera" }
                    label { "Stream to analyse"
                        select name="stream" {
                            option value="auto" selected[d.stream == "auto"] { "Automatic (the sub-stream when there is one)" }
                            option value="sub" selected[d.stream == "sub"] { "Sub-stream" }
                            option value="main" selected[d.stream == "main"] { "Main stream" }
                        }
                    }
                    label { "Pictures analysed per second"
                        input type="number" name="fps" min="0.5" max="30" step="0.5" inputmode="decimal" value=(d.fps);
                    }
                    label.check { input type="checkbox" name="objects" value="on" checked[d.objects]; " Recognise people, vehicles, animals and parcels" }
                    label { "Minimum score for people, vehicles and animals " span.muted { "(0.05–0.99; higher: fewer false alarms)" }
                        input type="number" name="threshold" min="0.05" max="0.99" step="0.01" inputmode="decimal" value=(round2(d.threshold));
                    }
                    label.check { input type="checkbox" name="parcels" value="on" checked[d.parcels]; " Track parcels (package delivered, package taken)" }
                    label { "Minimum score for a parcel"
                        input type="number" name="parcel_threshold" min="0.05" max="0.99" step="0.01" inputmode="decimal" value=(round2(d.parcel_threshold));
                    }
                    fieldset {
                        legend { "Alert (and notify) for" }
                        @for (l, text) in LABELS {
                            label.check { input type="checkbox" name="alert_label" value=(l) checked[alert(l)]; " " (text) }
                        }
                        p.muted { "Everything else is kept as a detection, without a notification. A zone can narrow this down." }
                    }
                }
                section.card {
                    h2 { "Motion" }
                    label { "Sensitivity " span.muted { "(0: only strong changes … 1: faint ones)" }
                        input type="number" name="sensitivity" min="0" max="1" step="0.05" inputmode="decimal" value=(round2(d.motion.sensitivity));
                    }
                    label { "Smallest motion, in % of the picture"
                        input type="number" name="min_area_pct" min="0" max="99" step="0.01" inputmode="decimal" value=(min_area_pct);
                    }
                    label { "Seconds kept before an event"
                        input type="number" name="preroll_s" min="0" max="60" step="1" inputmode="numeric" value=(d.preroll_s);
                    }
                    label { "Seconds of stillness that end an event"
                        input type="number" name="postroll_s" min="1" max="120" step="1" inputmode="numeric" value=(d.postroll_s);
                    }
                }
                section.card #zones data-testid="zones" {
                    h2 { "Zones and masks" }
                    p.muted {
                        "A " strong { "zone" } " is where motion counts (and which labels alert there); a "
                        strong { "mask" } " is a part of the picture that is ignored, such as a road or a tree in the wind. Without zones the whole picture counts."
                    }
                    div #zone-editor hidden {
                        div.zone-stage #zone-stage {
                            img #zone-still src={ "/api/v1/cameras/" (cam.name) "/still.jpg" } alt={ "The current picture of " (cam.name) };
                        }
                        p #zone-hint .muted aria-live="polite" { "Loading the current picture…" }
                        p.zone-tools {
                            button.secondary #zone-add type="button" { "+ Zone" }
                            " "
                            button.secondary #mask-add type="button" { "+ Mask" }
                            " "
                            button.danger #point-delete type="button" disabled { "Delete point" }
                            " "
                            button.secondary #zone-done type="button" hidden { "Done" }
                        }
                        div #zone-list {}
                    }
                    details #zones-text {
                        summary { "Zones as text" }
                        p.muted { "Corners are fractions of the picture's width and height, from 0 to 1, left to right and top to bottom. Example: "
                            code { r#"[{"name": "porch", "polygon": [[0.2, 0.5], [0.8, 0.5], [0.8, 1], [0.2, 1]], "labels": ["person", "parcel"]}, {"name": "road", "kind": "mask", "polygon": [[0, 0], [1, 0], [1, 0.2]]}]"# }
                        }
                        label { "Zones (JSON)"
                            textarea name="zones" rows="8" spellcheck="false" { (zones) }
                        }
                    }
                    noscript { p.muted { "Drawing zones needs JavaScript; without it, edit them as text above." } }
                }
                p.actions {
                    button #detection-save type="submit" { "Save detection settings" }
                }
                p #detection-status .test-result role="status" aria-live="polite" {}
            }
            script src="/static/js/detection.js" defer {}
        },
    )
}
