//! "My area": choosing the home area without ever sending a precise
//! location.
//!
//! How the location stays coarse (the server has no geocoder and makes no
//! third-party requests, so a typed address cannot work offline):
//!
//! 1. **Use my location** (`/nb-assets/area.js`): the browser asks
//!    `navigator.geolocation` for a low-accuracy position, **rounds it to
//!    one decimal degree** (≈ 11 km) and asks `GET /area/candidates?lat=&lng=`
//!    for the resolution-8 cells around that rounded point (their centres
//!    are public grid geometry). The browser then picks, *locally*, the
//!    candidate whose centre is nearest to the precise position and opens
//!    `/area?cell=<that cell>`. The precise position never leaves the page;
//!    the server learns only a one-decimal point and then the coarse cell
//!    the user saves anyway. The server rounds again, so a client that sends
//!    more decimals gains nothing and nothing precise is logged or kept.
//! 2. **Click the drawing**: every hexagon in the drawing is a plain link
//!    to `/area?cell=…` (works without JavaScript); the chosen cell is shown
//!    marked with a Save button.
//! 3. **Without JavaScript or location**: type a rough point with one
//!    decimal (a GET form, rounded on the server) to draw the cells there,
//!    then click one.
//!
//! Saving (`POST /area`) goes through [`Neighborhood::set_area`], which
//! accepts only resolution 8 or coarser.
//!
//! **Notifications** live here too, because they are about this area: a
//! plain form of categories (`POST /area/notifications`, agency alerts on
//! by default) and, with `/nb-assets/push.js`, a button that subscribes
//! this browser to Web Push (`POST /push/subscribe`,
//! `POST /push/unsubscribe`: CSRF-checked form posts). Agencies may set one too (the area
//! they serve): it fills in their new-post form and gives them a read-only
//! feed of public posts — nothing about any household.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use maud::html;
use serde::Deserialize;
use serde_json::json;

use super::{
    category_label, csrf_field, page_with, see_other, svg, Form, Nav, PageError, PageResult,
    Session,
};
use crate::area::{self, SvgOptions};
use crate::posts::{AGENCY_CATEGORIES, RESIDENT_CATEGORIES};
use crate::push::{BrowserKeys, BrowserSubscription};
use crate::Neighborhood;

#[derive(Deserialize, Default)]
pub struct AreaQuery {
    cell: Option<String>,
    lat: Option<String>,
    lng: Option<String>,
    first: Option<String>,
}

fn bad(msg: impl Into<String>) -> PageError {
    PageError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, msg)
}

fn coarse(lat: &str, lng: &str) -> Result<(f64, f64), PageError> {
    let parse = |s: &str, what: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|_| bad(format!("The {what} {s:?} is not a number of degrees.")))
    };
    area::coarse_point(parse(lat, "latitude")?, parse(lng, "longitude")?)
        .map_err(|e| bad(e.to_string()))
}

/// `GET /area`.
pub async fn page(
    State(n): State<Neighborhood>,
    s: Session,
    Query(aq): Query<AreaQuery>,
) -> PageResult {
    let subscribed = n.subscriptions(s.v.id).await?;
    let devices = n.push_subscription_count(s.v.id).await?;
    let candidate = match aq.cell.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(area::parse_home_cell(c).map_err(|e| bad(e.to_string()))?),
        None => None,
    };
    let point = match (aq.lat.as_deref(), aq.lng.as_deref()) {
        (Some(la), Some(ln)) if !la.is_empty() && !ln.is_empty() => Some(coarse(la, ln)?),
        _ => None,
    };
    // What to draw: around the candidate, the typed rough point, or home.
    let (cells, mark, caption) = if let Some(c) = candidate {
        let (la, ln) = area::cell_centre(c);
        (
            area::cells_near(la, ln, 2.0).map_err(|e| bad(e.to_string()))?,
            Some(c),
            "The area you picked (dot). Click another hexagon to move it.",
        )
    } else if let Some((la, ln)) = point {
        (
            area::cells_near(la, ln, 6.0).map_err(|e| bad(e.to_string()))?,
            None,
            "Cells around the point you gave. Click the hexagon you live in or near.",
        )
    } else if let Some(home) = s.v.home_cell {
        let (la, ln) = area::cell_centre(home);
        (
            area::cells_near(la, ln, 2.0).map_err(|e| bad(e.to_string()))?,
            None,
            "Your area (outlined). Click another hexagon to move it.",
        )
    } else {
        (Vec::new(), None, "")
    };
    let label = "Hexagon picker: each hexagon is an area you can choose";
    let drawing = (!cells.is_empty()).then(|| {
        area::draw_cells(
            &cells,
            SvgOptions {
                home: s.v.home_cell,
                mark,
                link_prefix: Some("/area?cell="),
                label,
            },
        )
    });
    let radius = s.v.radius_km;
    let body = html! {
        h1 { "My area" }
        @if aq.first.is_some() && s.v.home_cell.is_none() {
            p.notice { "Choose your area first: the feed shows posts around it." }
        }
        p { "Your area is a hexagon about 1 km across. The server only ever knows this hexagon — never your address or precise location — and other people never see it: they see distances in words." }
        @if let Some(home) = s.v.home_cell {
            p { "Current area: " code { (home) } " · feed radius " (radius) " km" }
        } @else {
            p.muted { "You have not chosen an area yet." }
        }
        @if let Some(c) = candidate {
            form.card method="post" action="/area" {
                (csrf_field(&s.csrf))
                input type="hidden" name="cell" value=(c);
                p { "Use the marked hexagon " code { (c) } " as my area." }
                label { "Show posts within"
                    select name="radius_km" {
                        @for r in super::feed::RADII {
                            option value=(r) selected[(r - radius).abs() < 1e-9] { (r) " km" }
                        }
                    }
                }
                button type="submit" { "Save my area" }
            }
        }
        @if let Some(d) = drawing {
            figure.area-drawing.picker {
                (svg(d))
                figcaption.muted { (caption) }
            }
        }
        section.locate {
            h2 { "Find my hexagon" }
            p { button #use-location.secondary type="button" hidden { "Use my location" } }
            p #locate-status.muted role="status" {}
            p.muted.small { "Your browser rounds your location to about 10 km before asking for nearby hexagons and chooses yours itself; the precise location is never sent." }
            form method="get" action="/area" {
                p { "Or enter a rough point (one decimal is enough):" }
                label { "Latitude" input name="lat" inputmode="decimal" placeholder="47.6" required; }
                label { "Longitude" input name="lng" inputmode="decimal" placeholder="-122.3" required; }
                button.secondary type="submit" { "Show hexagons there" }
            }
        }
    };
    let notifications = html! {
        section.notifications #notifications {
            h2 { "Notifications for this area" }
            p { "Get a notification when someone posts one of these within your feed radius. Agency alerts are on unless you turn them off." }
            form.card method="post" action="/area/notifications" {
                (csrf_field(&s.csrf))
                fieldset {
                    legend { "From neighbours" }
                    @for c in RESIDENT_CATEGORIES {
                        label.check { input type="checkbox" name="category" value=(c) checked[subscribed.iter().any(|x| x == c)]; " " (category_label(c)) }
                    }
                }
                fieldset {
                    legend { "From verified agencies" }
                    @for c in AGENCY_CATEGORIES {
                        label.check { input type="checkbox" name="category" value=(c) checked[subscribed.iter().any(|x| x == c)]; " " (category_label(c)) }
                    }
                }
                button type="submit" { "Save notification choices" }
            }
            div #push-device data-key=(n.push_public_key()) data-csrf=(s.csrf) hidden {
                p {
                    button #push-enable type="button" { "Turn on notifications on this device" }
                    button #push-disable.secondary type="button" hidden { "Turn off on this device" }
                }
                p #push-status.muted role="status" {}
            }
            p.muted.small {
                "Devices receiving notifications: " (devices) ". "
                "A notification says only the post's title, its category and who posted it — never where. "
                "It passes through your browser maker's push service, encrypted."
            }
        }
    };
    let body = html! { (body) (notifications) };
    Ok(page_with(
        "My area",
        &s,
        Nav::Area,
        &["/nb-assets/area.js", "/nb-assets/push.js"],
        body,
    )
    .into_response())
}

/// `POST /area`.
pub async fn save(State(n): State<Neighborhood>, f: Form) -> PageResult {
    f.s.v.require_not_suspended()?;
    let radius = match f.get("radius_km").filter(|r| !r.is_empty()) {
        Some(r) => Some(
            r.parse::<f64>()
                .map_err(|_| bad(format!("The radius {r:?} is not a number of kilometres.")))?,
        ),
        None => None,
    };
    n.set_area(f.s.v.id, f.text("cell"), radius).await?;
    Ok(see_other("/feed"))
}

/// `GET /area/candidates?lat=&lng=`: the resolution-8 cells around a point
/// rounded (again, here) to one decimal, with their centres, for the
/// browser to choose from locally.
pub async fn candidates(_s: Session, Query(aq): Query<AreaQuery>) -> PageResult {
    let (lat, lng) = coarse(
        aq.lat.as_deref().unwrap_or(""),
        aq.lng.as_deref().unwrap_or(""),
    )?;
    // The rounding box reaches ~7.9 km from its centre at the equator.
    let cells = area::cells_near(lat, lng, 8.5).map_err(|e| bad(e.to_string()))?;
    let list: Vec<_> = cells
        .iter()
        .map(|c| {
            let (la, ln) = area::cell_centre(*c);
            json!([c.to_string(), la, ln])
        })
        .collect();
    Ok(Json(json!({ "point": [lat, lng], "cells": list })).into_response())
}

/// `POST /area/notifications`: the checked categories replace the
/// user's notification choices.
pub async fn save_notifications(State(n): State<Neighborhood>, f: Form) -> PageResult {
    f.s.v.require_not_suspended()?;
    let chosen: Vec<String> = f
        .fields
        .iter()
        .filter(|(k, _)| k == "category")
        .map(|(_, v)| v.clone())
        .collect();
    n.set_subscriptions(f.s.v.id, &chosen).await?;
    Ok(see_other("/area#notifications"))
}

/// `POST /push/subscribe` (from `push.js`): this browser's subscription,
/// as form fields `endpoint`, `p256dh`, `auth`.
pub async fn push_subscribe(
    State(n): State<Neighborhood>,
    headers: axum::http::HeaderMap,
    f: Form,
) -> PageResult {
    f.s.v.require_not_suspended()?;
    let sub = BrowserSubscription {
        endpoint: f.text("endpoint").to_string(),
        expiration_time: None,
        keys: BrowserKeys {
            p256dh: f.text("p256dh").to_string(),
            auth: f.text("auth").to_string(),
        },
    };
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    n.subscribe_push(f.s.v.id, &sub, ua).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /push/unsubscribe` (from `push.js`): field `endpoint`.
pub async fn push_unsubscribe(State(n): State<Neighborhood>, f: Form) -> PageResult {
    n.unsubscribe_push(f.s.v.id, f.text("endpoint")).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
