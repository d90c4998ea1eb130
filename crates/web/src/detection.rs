//! A camera's detection settings: `GET`/`PUT /api/v1/cameras/{name}/detection`
//! — analysis rate and stream, motion sensitivity and minimum area, polygon
//! zones and masks, which labels alert (per camera and per zone), parcel
//! tracking. The document is `porchlight_events::CameraDetection` (every
//! field optional, unknown fields refused); a running hub picks a change up
//! within seconds. Owners only; every change is audited.
//!
//! The owners' page for the same settings (`/cameras/{name}/detection`,
//! with the zone editor) is `pages::detection`; it reads and saves through
//! [`load`] and [`save`] here, so both paths validate alike.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use porchlight_store::Role;
use serde_json::{json, Value};

use crate::access::visible_camera;
use crate::error::{ApiError, WebError};
use crate::session::{require_role, ApiUser};
use crate::App;
use porchlight_events::CameraDetection;
use porchlight_store::Camera;

pub(crate) fn routes() -> Router<App> {
    Router::new().route("/api/v1/cameras/{name}/detection", get(read).put(write))
}

async fn read(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cam = visible_camera(&app, &u.session, &u.visitor, &name, "detection").await?;
    Ok(Json(json!(load(&app, &cam).await?)))
}

/// The camera's settings as the event path uses them (the defaults when
/// never set, or when the stored document no longer validates).
pub(crate) async fn load(app: &App, cam: &Camera) -> Result<CameraDetection, WebError> {
    let stored = app.vault.store().camera_detection(cam.id).await?;
    Ok(match stored {
        Some(v) => CameraDetection::from_json(&v).unwrap_or_default(),
        None => CameraDetection::default(),
    })
}

/// Validates `body` and, if it is good, stores and audits it; the error
/// (`BadRequest`) names what is wrong. Returns the document as stored.
/// The caller checks that `actor` is an owner.
pub(crate) async fn save(
    app: &App,
    actor: &porchlight_vault::Actor,
    cam: &Camera,
    body: &Value,
) -> Result<Value, WebError> {
    let settings =
        CameraDetection::from_json(body).map_err(|e| WebError::BadRequest(e.to_string()))?;
    let doc = json!(settings);
    app.vault
        .store()
        .set_camera_detection(cam.id, &doc, app.vault.now())
        .await?;
    app.vault
        .audit(
            actor,
            "camera.detection",
            &cam.name,
            json!({ "zones": settings.motion.zones.len(), "enabled": settings.enabled }),
        )
        .await?;
    Ok(doc)
}

async fn write(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    let cam = visible_camera(&app, &u.session, &u.visitor, &name, "detection").await?;
    let Json(body) = body.map_err(|e| {
        WebError::BadRequest(format!(
            "the settings are not valid JSON: {}",
            e.body_text()
        ))
    })?;
    Ok(Json(save(&app, &u.visitor.actor(), &cam, &body).await?))
}
