//! Events from outside detection: `POST /api/v1/events` records a doorbell
//! press, a button, an automation's "something happened" as an event, with
//! a snapshot of that moment when the camera has a recent picture.
//!
//! Same rules as everywhere: a member may only name a camera granted to
//! them (a refusal is audited), camera-less events are for owners, every
//! trigger is audited. The snapshot is encrypted like any other.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use porchlight_store::Role;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::access::visible_camera;
use crate::error::{ApiError, WebError};
use crate::session::{require_role, ApiUser};
use crate::App;

pub(crate) fn routes() -> Router<App> {
    Router::new().route("/api/v1/events", post(trigger))
}

/// The body of `POST /api/v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TriggerBody {
    /// The camera it concerns, if any (its snapshot is attached).
    camera: Option<String>,
    /// `doorbell`, `button`, `gate_opened`, … (lower-case, digits, `_`, `-`).
    kind: String,
    /// Make it an alert (notified) rather than a detection. Default true.
    #[serde(default = "yes")]
    alert: bool,
    /// Free-form JSON kept with the event (at most 4 KiB).
    #[serde(default)]
    detail: Value,
}

fn yes() -> bool {
    true
}

async fn trigger(
    State(app): State<App>,
    u: ApiUser,
    body: Result<Json<TriggerBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|e| {
        WebError::BadRequest(format!(
            "the event is not valid JSON of the expected shape: {}",
            e.body_text()
        ))
    })?;
    let Some(events) = app.events.clone() else {
        return Err(WebError::BadRequest(
            "this hub does not record events (it is not running the recorder)".into(),
        )
        .into());
    };
    if body.detail.to_string().len() > 4096 {
        return Err(WebError::BadRequest("`detail` is larger than 4 KiB".into()).into());
    }
    let camera = match &body.camera {
        Some(name) => Some(
            visible_camera(&app, &u.session, &u.visitor, name, "event.trigger")
                .await?
                .name,
        ),
        None => {
            require_role(&u.session, &[Role::Owner])?;
            None
        }
    };
    let detail = if body.detail.is_null() {
        json!({})
    } else {
        body.detail.clone()
    };
    let id = events
        .trigger(porchlight_events::Trigger {
            camera: camera.clone(),
            kind: body.kind.clone(),
            source: "api".into(),
            alert: body.alert,
            detail,
        })
        .await
        .map_err(|e| match e {
            porchlight_events::EventsError::Invalid(m) => WebError::BadRequest(m),
            porchlight_events::EventsError::NoCamera(c) => {
                WebError::NotFoundBecause(format!("there is no camera `{c}`"))
            }
            e => WebError::Internal(e.to_string()),
        })?;
    app.vault
        .audit(
            &u.visitor.actor(),
            "event.trigger",
            camera.as_deref().unwrap_or(""),
            // No kind: it is sealed with the event's details
            // (design/keys.md); the id leads there.
            json!({ "event": id }),
        )
        .await?;
    let row = app.vault.store().event(id).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "snapshot": row.and_then(|r| r.snapshot).is_some() })),
    ))
}
