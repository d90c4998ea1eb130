//! Camera management beyond add and remove (those are in `media`): one
//! camera's details, editing its address and credentials, the privacy
//! pause (switching recording off and on), and "test connection" before a
//! camera is saved. Owners only; every
//! change is audited.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use porchlight_store::{Camera, Role};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::access::visible_camera;
use crate::error::{ApiError, WebError};
use crate::session::{require_role, ApiUser};
use crate::App;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        // A camera may be called `test`: the literal path wins over
        // `{name}` in the router, so it answers that camera's methods too.
        .route(
            "/api/v1/cameras/test",
            post(test_connection)
                .get(one_named_test)
                .patch(update_named_test)
                .delete(remove_named_test),
        )
        .route("/api/v1/cameras/{name}", get(one).patch(update))
}

const TEST: &str = "test";

async fn one_named_test(s: State<App>, u: ApiUser) -> Result<Json<Value>, ApiError> {
    one(s, u, Path(TEST.to_owned())).await
}

async fn update_named_test(
    s: State<App>,
    u: ApiUser,
    b: Json<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    update(s, u, Path(TEST.to_owned()), b).await
}

async fn remove_named_test(s: State<App>, u: ApiUser) -> Result<StatusCode, ApiError> {
    crate::media::remove(s, u, Path(TEST.to_owned())).await
}

async fn one(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cam = visible_camera(&app, &u.session, &u.visitor, &name, "details").await?;
    let mut v = crate::media::camera_json(&app, &cam).await?;
    if u.session.role == Role::Owner {
        owner_fields(&mut v, &cam);
    }
    Ok(Json(v))
}

/// Settings only owners read (never the camera's password).
pub(crate) fn owner_fields(v: &mut Value, c: &Camera) {
    v["url"] = json!(c.main_url);
    v["sub_url"] = json!(c.sub_url);
    v["username"] = json!(c.username);
    v["retain_days"] = json!(c.retain_max_age_secs.map(|s| s / 86400));
    v["retain_gib"] = json!(c.retain_max_bytes.map(|b| b as f64 / (1u64 << 30) as f64));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    /// `false` pauses recording and live view (privacy mode).
    enabled: Option<bool>,
    /// A new RTSP address of the main stream.
    url: Option<String>,
    /// The camera's user name (`""` for none).
    username: Option<String>,
    /// The camera's password (`""` for none; absent: keep).
    password: Option<String>,
    // Not editable in place yet (the store has no way to change them).
    sub_url: Option<Value>,
    retain_days: Option<Value>,
    retain_gib: Option<Value>,
}

async fn update(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
    Json(b): Json<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    let mut cam = app
        .vault
        .store()
        .camera_by_name(&name)
        .await?
        .ok_or(WebError::NotFound)?;
    if b.sub_url.is_some() || b.retain_days.is_some() || b.retain_gib.is_some() {
        return Err(WebError::BadRequest(
            "the sub-stream and retention cannot be changed in place yet: remove the camera and add it again".into(),
        )
        .into());
    }
    if b.url.is_some() || b.username.is_some() || b.password.is_some() {
        cam = edit_source(
            &app,
            &u.visitor.actor(),
            &cam,
            b.url,
            b.username,
            b.password,
        )
        .await?;
    }
    if let Some(on) = b.enabled {
        set_enabled(&app, &u.visitor.actor(), &cam, on).await?;
        cam.enabled = on;
    }
    let mut v = crate::media::camera_json(&app, &cam).await?;
    owner_fields(&mut v, &cam);
    Ok(Json(v))
}

/// Points `cam` at a new address and/or credentials, audited
/// (`camera.edit`; the password is never written to the log). `None`
/// keeps a value; an empty user name or password removes it. A running hub
/// reconnects within a few seconds.
pub(crate) async fn edit_source(
    app: &App,
    actor: &porchlight_vault::Actor,
    cam: &Camera,
    url: Option<String>,
    username: Option<String>,
    password: Option<String>,
) -> Result<Camera, WebError> {
    let url = url
        .map(|u| u.trim().to_owned())
        .unwrap_or_else(|| cam.main_url.clone());
    porchlight_recorder::cameras::validate(&cam.name, &url).map_err(WebError::BadRequest)?;
    let username = match username {
        None => cam.username.clone(),
        Some(u) if u.trim().is_empty() => None,
        Some(u) => Some(u.trim().to_owned()),
    };
    let new_password = password.is_some();
    let password = match password {
        None => cam.password.clone(),
        Some(p) if p.is_empty() => None,
        Some(p) => Some(p),
    };
    app.vault
        .store()
        .update_camera_source(cam.id, &url, username.as_deref(), password.as_deref())
        .await?;
    app.vault
        .audit(
            actor,
            "camera.edit",
            &cam.name,
            json!({
                "url": url,
                "username_changed": username != cam.username,
                "password_changed": new_password && password != cam.password,
            }),
        )
        .await?;
    Ok(Camera {
        main_url: url,
        username,
        password,
        ..cam.clone()
    })
}

/// Switches recording of `cam` on or off, audited (`camera.enable` /
/// `camera.disable`); a running hub follows within a few seconds.
pub(crate) async fn set_enabled(
    app: &App,
    actor: &porchlight_vault::Actor,
    cam: &Camera,
    on: bool,
) -> Result<(), WebError> {
    if cam.enabled == on {
        return Ok(());
    }
    app.vault.store().set_camera_enabled(cam.id, on).await?;
    app.vault
        .audit(
            actor,
            if on {
                "camera.enable"
            } else {
                "camera.disable"
            },
            &cam.name,
            json!({}),
        )
        .await?;
    Ok(())
}

#[derive(Deserialize)]
pub(crate) struct TestBody {
    /// Test this saved camera (its URL and credentials, unless given here).
    pub camera: Option<String>,
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// What a test connection found: `Ok` with a description, or the reason.
pub(crate) async fn probe(
    app: &App,
    actor: &porchlight_vault::Actor,
    b: TestBody,
) -> Result<Result<Value, String>, WebError> {
    let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let saved = match nonempty(b.camera) {
        Some(name) => Some(
            app.vault
                .store()
                .camera_by_name(&name)
                .await?
                .ok_or(WebError::NotFound)?,
        ),
        None => None,
    };
    let url = nonempty(b.url)
        .or_else(|| saved.as_ref().map(|c| c.main_url.clone()))
        .ok_or_else(|| WebError::BadRequest("give the camera's RTSP URL".into()))?;
    let url = url.trim().to_owned();
    let username = nonempty(b.username).or_else(|| saved.as_ref().and_then(|c| c.username.clone()));
    let password = nonempty(b.password).or_else(|| saved.as_ref().and_then(|c| c.password.clone()));
    // The same URL rules as adding a camera (any valid name will do).
    if let Err(e) = porchlight_recorder::cameras::validate("test", &url) {
        return Ok(Err(e));
    }
    app.vault
        .audit(actor, "camera.test", &url, json!({}))
        .await?;
    Ok(
        porchlight_recorder::ingest::probe(&url, username.as_deref(), password.as_deref())
            .await
            .map(|info| json!(info)),
    )
}

/// `POST /api/v1/cameras/test`: answers 200 either way; `ok` says whether
/// the camera answered, `error` why not.
async fn test_connection(
    State(app): State<App>,
    u: ApiUser,
    Json(b): Json<TestBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    Ok(match probe(&app, &u.visitor.actor(), b).await? {
        Ok(info) => (StatusCode::OK, Json(json!({ "ok": true, "camera": info }))),
        Err(e) => (StatusCode::OK, Json(json!({ "ok": false, "error": e }))),
    })
}
