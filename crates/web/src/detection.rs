//! A camera's detection settings: `GET`/`PUT /api/v1/cameras/{name}/detection`
//! — analysis rate and stream, motion sensitivity and minimum area, polygon
//! zones and masks, which labels alert (per camera and per zone), parcel
//! tracking. The document is `porchlight_events::CameraDetection` (every
//! field optional, unknown fields refused); a running hub picks a change up
//! within seconds. Owners only; every change is audited.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use porchlight_store::Role;
use serde_json::{json, Value};

use crate::access::visible_camera;
use crate::error::{ApiError, WebError};
use crate::session::{require_role, ApiUser};
use crate::App;

pub(crate) fn routes() -> Router<App> {
    Router::new().route("/api/v1/cameras/{name}/detection", get(read).put(write))
}

async fn read(State(app): State<App>, u: ApiUser, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let cam = visible_camera(&app, &u.session, &u.visitor, &name, "detection").await?;
    let stored = app.vault.store().camera_detection(cam.id).await?;
    let settings = match stored {
        Some(v) => porchlight_events::CameraDetection::from_json(&v).unwrap_or_default(),
        None => porchlight_events::CameraDetection::default(),
    };
    Ok(Json(json!(settings)))
}

async fn write(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    let cam = visible_camera(&app, &u.session, &u.visitor, &name, "detection").await?;
    let Json(body) = body.map_err(|e| WebError::BadRequest(format!("the settings are not valid JSON: {}", e.body_text())))?;
    let settings = porchlight_events::CameraDetection::from_json(&body).map_err(|e| WebError::BadRequest(e.to_string()))?;
    let doc = json!(settings);
    app.vault.store().set_camera_detection(cam.id, &doc, app.vault.now()).await?;
    app.vault
        .audit(
            &u.visitor.actor(),
            "camera.detection",
            &cam.name,
            json!({ "zones": settings.motion.zones.len(), "enabled": settings.enabled }),
        )
        .await?;
    Ok(Json(doc))
}
