//! Camera management beyond add and remove (those are in `media`): one
//! camera's details, editing it (address, sub-stream, credentials,
//! retention), the privacy pause (switching recording off and on), and
//! "test connection" before a camera is saved or changed. Owners only;
//! every change is audited, and a change with any wrong field saves
//! nothing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use porchlight_store::{Camera, Role};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::access::visible_camera;
use crate::error::{ApiError, PageError, WebError};
use crate::session::{require_role, ApiUser, PageUser};
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
        // The edit form on the camera's page (`pages::cameras`).
        .route("/cameras/{name}/edit", post(edit_form))
}

/// The edit form on a camera's page, posted without JavaScript: applies
/// the change like `PATCH` (a blank password keeps the saved one) and
/// sends the browser back to the camera's page, which says what happened.
async fn edit_form(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    require_role(&u.session, &[Role::Owner]).map_err(PageError)?;
    let cam = app
        .vault
        .store()
        .camera_by_name(&name)
        .await?
        .ok_or_else(|| WebError::NotFoundBecause(format!("there is no camera `{name}`")))?;
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
    };
    let number = |k: &str| -> Result<Option<Option<f64>>, WebError> {
        match get(k) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(Some(None)),
            Some(v) => v
                .parse::<f64>()
                .map(|x| Some(Some(x)))
                .map_err(|_| WebError::BadRequest(format!("{k}: `{v}` is not a number"))),
        }
    };
    let back = |q: String| {
        Redirect::to(&format!(
            "/cameras/{}?{q}#edit",
            crate::pages::layout::q(&cam.name)
        ))
    };
    let body = (|| -> Result<UpdateBody, WebError> {
        Ok(UpdateBody {
            url: get("url").filter(|v| !v.is_empty()),
            sub_url: get("sub_url"),
            username: get("username"),
            password: if get("clear_password").as_deref() == Some("1") {
                Some(String::new())
            } else {
                get("password").filter(|v| !v.is_empty())
            },
            retain_days: number("retain_days")?,
            retain_gib: number("retain_gib")?,
            test: get("test").as_deref() == Some("1"),
            enabled: None,
        })
    })();
    let result = match body {
        Ok(b) => update_camera(&app, &u.visitor.actor(), &cam, b)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(back("edited=1".into()).into_response()),
        Err(e) if e.status().is_client_error() => Ok(back(format!(
            "edit_error={}",
            crate::pages::layout::q(&e.to_string())
        ))
        .into_response()),
        Err(e) => Err(e.into()),
    }
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

/// A change to a camera: every field is optional (absent: keep).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateBody {
    /// `false` pauses recording and live view (privacy mode).
    pub enabled: Option<bool>,
    /// A new RTSP address of the main stream.
    pub url: Option<String>,
    /// The sub-stream's RTSP address (`""` for none).
    pub sub_url: Option<String>,
    /// The camera's user name (`""` for none).
    pub username: Option<String>,
    /// The camera's password (`""` for none; absent: keep).
    pub password: Option<String>,
    /// Keep recordings at most this many days (`0` or `null`: no limit).
    #[serde(default, deserialize_with = "some_or_null")]
    pub retain_days: Option<Option<f64>>,
    /// Keep at most this many GiB (`0` or `null`: no limit).
    #[serde(default, deserialize_with = "some_or_null")]
    pub retain_gib: Option<Option<f64>>,
    /// Try the new address and credentials first and refuse the change,
    /// saying why, when the camera does not answer.
    #[serde(default)]
    pub test: bool,
}

/// Tells "absent" (outer `None`) from `null` (`Some(None)`).
fn some_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Ok(Some(Option::<f64>::deserialize(d)?))
}

async fn update(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
    Json(b): Json<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    let cam = app
        .vault
        .store()
        .camera_by_name(&name)
        .await?
        .ok_or(WebError::NotFound)?;
    let cam = update_camera(&app, &u.visitor.actor(), &cam, b).await?;
    let mut v = crate::media::camera_json(&app, &cam).await?;
    owner_fields(&mut v, &cam);
    Ok(Json(v))
}

/// Largest retention limits accepted (ten years, 1 PiB): beyond them the
/// number is a typo.
const MAX_RETAIN_DAYS: f64 = 3650.0;
const MAX_RETAIN_GIB: f64 = (1u64 << 20) as f64;

/// A retention limit from a form or JSON: `None` is "no limit".
fn retention_limit(
    v: Option<f64>,
    what: &str,
    max: f64,
    unit: f64,
) -> Result<Option<i64>, WebError> {
    match v {
        None => Ok(None),
        Some(0.0) => Ok(None),
        Some(x) if x.is_finite() && x > 0.0 && x <= max => Ok(Some((x * unit).round() as i64)),
        Some(x) => Err(WebError::BadRequest(format!(
            "{what} must be between 0 (no limit) and {max}, not {x}"
        ))),
    }
}

/// Applies a change to `cam`: checks every field first (the same rules as
/// adding a camera), optionally tests the connection, then saves, each part
/// audited (`camera.edit`, `camera.retention`, `camera.enable` /
/// `camera.disable`). Nothing is saved when any field is wrong. The caller
/// has checked that the requester is an owner.
pub(crate) async fn update_camera(
    app: &App,
    actor: &porchlight_vault::Actor,
    cam: &Camera,
    b: UpdateBody,
) -> Result<Camera, WebError> {
    // Check everything before changing anything.
    if let Some(url) = &b.url {
        porchlight_recorder::cameras::validate(&cam.name, url.trim())
            .map_err(WebError::BadRequest)?;
    }
    let sub_url = match &b.sub_url {
        None => cam.sub_url.clone(),
        Some(s) if s.trim().is_empty() => None,
        Some(s) => {
            porchlight_recorder::cameras::validate(&cam.name, s.trim())
                .map_err(|e| WebError::BadRequest(format!("sub_url: {e}")))?;
            Some(s.trim().to_owned())
        }
    };
    let age = match b.retain_days {
        None => cam.retain_max_age_secs,
        Some(d) => retention_limit(d, "retain_days", MAX_RETAIN_DAYS, 86400.0)?,
    };
    let bytes = match b.retain_gib {
        None => cam.retain_max_bytes,
        Some(g) => retention_limit(g, "retain_gib", MAX_RETAIN_GIB, (1u64 << 30) as f64)?,
    };
    // Only real changes are saved and audited (a form posts every field).
    let source_changes = b.url.as_deref().is_some_and(|u| u.trim() != cam.main_url)
        || b.username.as_deref().is_some_and(|u| {
            let u = u.trim();
            cam.username.as_deref() != (!u.is_empty()).then_some(u)
        })
        || b.password.is_some();
    if b.test {
        let r = probe(
            app,
            actor,
            TestBody {
                camera: Some(cam.name.clone()),
                url: b.url.clone(),
                username: b.username.clone(),
                password: b.password.clone(),
            },
        )
        .await?;
        if let Err(e) = r {
            return Err(WebError::BadRequest(format!(
                "not saved: the camera does not answer at that address: {e}"
            )));
        }
    }
    let mut cam = cam.clone();
    if source_changes {
        cam = edit_source(app, actor, &cam, b.url, b.username, b.password).await?;
    }
    if (sub_url.clone(), age, bytes)
        != (
            cam.sub_url.clone(),
            cam.retain_max_age_secs,
            cam.retain_max_bytes,
        )
    {
        let r = porchlight_store::events::CameraRetention {
            sub_url: sub_url.clone(),
            retain_max_age_secs: age,
            retain_max_bytes: bytes,
        };
        app.vault
            .store()
            .update_camera_retention(cam.id, &r)
            .await?;
        app.vault
            .audit(
                actor,
                "camera.retention",
                &cam.name,
                json!({ "sub_url": sub_url, "retain_max_age_secs": age, "retain_max_bytes": bytes }),
            )
            .await?;
        cam.sub_url = sub_url;
        cam.retain_max_age_secs = age;
        cam.retain_max_bytes = bytes;
    }
    if let Some(on) = b.enabled {
        set_enabled(app, actor, &cam, on).await?;
        cam.enabled = on;
    }
    Ok(cam)
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
