//! Events ("motion at the front door 14:02", "doorbell pressed"): the one
//! source the events page, the home page and the timeline's markers read.
//!
//! Events come from the store's `events` table. Detection is not part of
//! the hub yet (its own issue), so on a hub without it the table stays
//! empty and every view says so: nothing here invents events.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use porchlight_store::{Camera, SessionRow};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::access::{visible_camera, visible_cameras};
use crate::error::{ApiError, WebError};
use crate::session::ApiUser;
use crate::App;

pub(crate) fn routes() -> Router<App> {
    Router::new().route("/api/v1/events", get(list))
}

/// Kinds of events, for filters. Detection will produce these.
pub(crate) const KINDS: [(&str, &str); 6] = [
    ("motion", "Motion"),
    ("person", "Person"),
    ("vehicle", "Vehicle"),
    ("animal", "Animal"),
    ("package", "Package"),
    ("doorbell", "Doorbell"),
];

/// Whether anything produces events on this hub yet.
pub(crate) const DETECTION_AVAILABLE: bool = false;

/// One event on one camera.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Event {
    pub id: i64,
    pub camera: String,
    pub kind: String,
    #[serde(serialize_with = "ser_ts")]
    pub start: jiff::Timestamp,
    #[serde(serialize_with = "ser_ts")]
    pub end: jiff::Timestamp,
}

fn ser_ts<S: serde::Serializer>(t: &jiff::Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

/// Events of `cameras` (already checked as visible) in [from, to), newest
/// first, optionally of one kind.
pub(crate) async fn events_between(
    app: &App,
    cameras: &[Camera],
    kind: Option<&str>,
    from: jiff::Timestamp,
    to: jiff::Timestamp,
) -> Result<Vec<Event>, WebError> {
    let rows = app
        .vault
        .store()
        .events(&porchlight_store::EventFilter {
            cameras: Some(cameras.iter().map(|c| c.id).collect()),
            kind: kind.map(str::to_owned),
            from: Some(from),
            to: Some(to),
            limit: 500,
        })
        .await?;
    let now = app.vault.now();
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let cam = cameras.iter().find(|c| Some(c.id) == r.camera_id)?;
            Some(Event {
                id: r.id,
                camera: cam.name.clone(),
                kind: r.kind,
                start: r.start,
                end: r.end.unwrap_or(now),
            })
        })
        .collect())
}

#[derive(Deserialize)]
pub(crate) struct EventsQ {
    pub camera: Option<String>,
    pub kind: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The cameras, kind and range an events query asks for, checked.
pub(crate) async fn resolve_query(
    app: &App,
    session: &SessionRow,
    visitor: &crate::session::Visitor,
    q: &EventsQ,
) -> Result<
    (
        Vec<Camera>,
        Option<String>,
        jiff::Timestamp,
        jiff::Timestamp,
    ),
    WebError,
> {
    let cameras = match q.camera.as_deref().filter(|c| !c.is_empty()) {
        Some(name) => vec![visible_camera(app, session, visitor, name, "events").await?],
        None => visible_cameras(app, session).await?,
    };
    let kind = q.kind.clone().filter(|k| !k.is_empty());
    if let Some(k) = &kind {
        if !KINDS.iter().any(|(id, _)| id == k) {
            return Err(WebError::BadRequest(format!(
                "unknown event kind `{k}`; expected one of: {}",
                KINDS.map(|(id, _)| id).join(", ")
            )));
        }
    }
    let now = app.vault.now();
    let p = |s: Option<&str>, default: &str, what: &str| {
        porchlight_base::clock::parse_instant(s.filter(|s| !s.is_empty()).unwrap_or(default), now)
            .map_err(|e| WebError::BadRequest(format!("{what}: {e}")))
    };
    let from = p(q.from.as_deref(), "-7d", "from")?;
    let to = p(q.to.as_deref(), "now", "to")?;
    if from >= to {
        return Err(WebError::BadRequest(format!(
            "from ({from}) must be before to ({to})"
        )));
    }
    Ok((cameras, kind, from, to))
}

async fn list(
    State(app): State<App>,
    u: ApiUser,
    Query(q): Query<EventsQ>,
) -> Result<Json<Value>, ApiError> {
    let (cameras, kind, from, to) = resolve_query(&app, &u.session, &u.visitor, &q).await?;
    let events = events_between(&app, &cameras, kind.as_deref(), from, to).await?;
    Ok(Json(json!({
        "detection": if DETECTION_AVAILABLE { "on" } else { "not set up" },
        "from": from.to_string(),
        "to": to.to_string(),
        "events": events,
    })))
}
