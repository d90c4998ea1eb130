//! The alarm over HTTP: `GET /api/v1/alarm` (state, mode, delays left,
//! bypassed sensors, siren, the MQTT link, every sensor with the armed
//! modes it counts in), `POST
//! /api/v1/alarm/arm {"mode":"home"|"away"}` and `POST
//! /api/v1/alarm/disarm`, plus the same two as plain form posts for the
//! `/alarm` page without JavaScript (`/alarm/arm`, `/alarm/disarm`).
//!
//! Modes drive cameras: `PUT /api/v1/cameras/{name}/privacy {"on":bool}`
//! (owners, and members for cameras granted to them; also a form post
//! from the alarm page) and `GET`/`PUT /api/v1/cameras/{name}/modes`
//! (per mode `disarmed`/`home`/`away`: record, detect, notify; owners
//! change them; the alarm page's per-camera form posts to
//! `/alarm/cameras/{name}/modes` and saves through the same
//! [`save_modes`]). Every change is audited (`camera.privacy`,
//! `camera.modes`). The recorder stops a camera whose policy says no
//! recording within one housekeeping tick; live view and stills refuse a
//! camera in privacy mode.
//!
//! Invariants: only signed-in owners and members may read or change the
//! alarm; state-changing calls pass the CSRF guard like every other; every
//! arm and disarm goes through the running alarm (`App::alarm`), which
//! audits it under the user's name (`alarm.arm`, `alarm.disarm`, …). A
//! process without the alarm answers 503 saying so, never a guess.

use axum::extract::Path;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use porchlight_alarm::machine::kind_can_count;
use porchlight_alarm::{AlarmClient as AlarmHandle, Command, Kind, Mode, Modes, Phase};
use porchlight_store::{Role, SessionRow};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, PageError, WebError};
use crate::session::{require_role, ApiUser, PageUser};
use crate::App;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/alarm", get(status))
        .route("/api/v1/alarm/arm", post(arm))
        .route("/api/v1/alarm/disarm", post(disarm))
        .route("/api/v1/cameras/{name}/privacy", put(privacy))
        .route("/api/v1/cameras/{name}/modes", get(modes).put(put_modes))
        .route("/alarm/cameras/{name}/privacy", post(privacy_form))
        .route(
            "/alarm/cameras/{name}/modes",
            post(crate::pages::alarm::modes_form),
        )
        .route("/alarm", get(crate::pages::alarm::page))
        .route("/alarm/arm", post(arm_form))
        .route("/alarm/disarm", post(disarm_form))
        .route(
            "/static/js/alarm.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    include_bytes!("../assets/js/alarm.js").as_slice(),
                )
            }),
        )
}

/// Who may see and work the alarm.
pub(crate) const ROLES: [Role; 2] = [Role::Owner, Role::Member];

/// An API error, or "the alarm does not run in this process" (503).
pub(crate) enum AlarmApiError {
    Web(WebError),
    Unavailable,
}

impl<E: Into<WebError>> From<E> for AlarmApiError {
    fn from(e: E) -> Self {
        AlarmApiError::Web(e.into())
    }
}

pub(crate) const UNAVAILABLE: &str =
    "the alarm does not run in this process (start the hub with `porchlight serve`)";

impl IntoResponse for AlarmApiError {
    fn into_response(self) -> Response {
        match self {
            AlarmApiError::Web(e) => ApiError(e).into_response(),
            AlarmApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": UNAVAILABLE })),
            )
                .into_response(),
        }
    }
}

fn handle(app: &App) -> Result<&AlarmHandle, AlarmApiError> {
    app.alarm.as_ref().ok_or(AlarmApiError::Unavailable)
}

/// The whole status, as `GET /api/v1/alarm` answers it and the page shows.
pub(crate) async fn status_json(app: &App, alarm: &AlarmHandle) -> Result<Value, WebError> {
    let m = alarm.machine();
    let now = jiff::Timestamp::now();
    let left_ms =
        |t: Option<jiff::Timestamp>| t.map(|t| t.duration_since(now).as_millis().max(0) as u64);
    let (exit_left, entry_left) = match m.phase {
        Phase::Arming => (left_ms(m.deadline), None),
        Phase::Pending => (None, left_ms(m.deadline)),
        _ => (None, None),
    };
    let siren_left = if m.phase == Phase::Triggered {
        left_ms(m.siren_until).filter(|ms| *ms > 0)
    } else {
        None
    };
    let link = alarm.link();
    let sensors = app.vault.store().sensors().await?;
    let sensors: Vec<Value> = sensors
        .iter()
        .map(|s| {
            let kind = Kind::parse(&s.kind);
            let counts = kind.map_or(Modes::NONE, |k| Modes::effective(k, s.modes.as_deref()));
            let chosen = s.modes.is_some() && kind.is_some_and(kind_can_count);
            let state = match (s.kind.as_str(), s.active) {
                ("contact", Some(true)) => Some("open"),
                ("contact", Some(false)) => Some("closed"),
                ("motion", Some(true)) => Some("motion"),
                ("motion", Some(false)) => Some("clear"),
                _ => None,
            };
            json!({
                "name": s.name,
                "kind": s.kind,
                "topic": s.topic,
                "state": state,
                "active": s.active,
                "battery": s.battery,
                "linkquality": s.linkquality,
                "available": s.available,
                "last_seen": s.last_seen.map(|t| t.to_string()),
                "bypassed": m.bypassed.contains(&s.name),
                // The armed modes it sets the alarm off in, and whether
                // that was chosen for it (`porchlight sensor set --modes`)
                // rather than its kind's default.
                "modes": counts.list(),
                "modes_chosen": chosen,
            })
        })
        .collect();
    Ok(json!({
        "state": m.state_name(),
        "mode": m.mode.map(|x| x.as_str()),
        "since": m.since.to_string(),
        "exit_delay_left_ms": exit_left,
        "entry_delay_left_ms": entry_left,
        "deadline": m.deadline.map(|t| t.to_string()),
        "cause": m.cause,
        "bypassed": m.bypassed,
        "siren": { "on": siren_left.is_some(), "left_ms": siren_left },
        "delays": {
            "exit_ms": m.delays.exit_ms,
            "entry_ms": m.delays.entry_ms,
            "siren_ms": m.delays.siren_ms,
        },
        "mqtt": {
            "enabled": link.enabled,
            "connected": link.connected,
            "last_error": link.last_error,
            "connects": link.connects,
            "broker_away": link.enabled && !link.connected,
        },
        "sensors": sensors,
    }))
}

async fn status(State(app): State<App>, u: ApiUser) -> Result<Json<Value>, AlarmApiError> {
    require_role(&u.session, &ROLES)?;
    let alarm = handle(&app)?;
    Ok(Json(status_json(&app, alarm).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArmBody {
    /// `home` or `away`.
    mode: String,
}

fn parse_mode(s: &str) -> Result<Mode, WebError> {
    Mode::parse(s.trim())
        .ok_or_else(|| WebError::BadRequest(format!("mode must be `home` or `away`, not `{s}`")))
}

/// Runs `cmd` for `session`; a refusal (e.g. arming while armed) is a 409
/// answered with the outcome, which names the reason.
async fn run(alarm: &AlarmHandle, session: &SessionRow, cmd: Command) -> (StatusCode, Json<Value>) {
    let out = alarm.command(cmd, &session.username).await;
    let code = if out.ok {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    let mut v = serde_json::to_value(&out).unwrap_or_default();
    if !out.bypassed.is_empty() {
        v["warning"] = json!(format!(
            "armed with {} open: bypassed until the alarm is disarmed",
            out.bypassed.join(", ")
        ));
    }
    (code, Json(v))
}

async fn arm(
    State(app): State<App>,
    u: ApiUser,
    Json(b): Json<ArmBody>,
) -> Result<(StatusCode, Json<Value>), AlarmApiError> {
    require_role(&u.session, &ROLES)?;
    let mode = parse_mode(&b.mode)?;
    let alarm = handle(&app)?;
    Ok(run(alarm, &u.session, Command::Arm { mode, delays: None }).await)
}

async fn disarm(
    State(app): State<App>,
    u: ApiUser,
) -> Result<(StatusCode, Json<Value>), AlarmApiError> {
    require_role(&u.session, &ROLES)?;
    let alarm = handle(&app)?;
    Ok(run(alarm, &u.session, Command::Disarm).await)
}

/// `/alarm?msg=…` or `?error=…`.
pub(crate) fn back(key: &str, text: &str) -> Response {
    Redirect::to(&format!("/alarm?{key}={}", crate::pages::layout::q(text))).into_response()
}

async fn form_run(app: &App, u: &PageUser, cmd: Command) -> Result<Response, PageError> {
    require_role(&u.session, &ROLES).map_err(PageError)?;
    let Some(alarm) = app.alarm.as_ref() else {
        return Ok(back("error", UNAVAILABLE));
    };
    let (_, Json(v)) = run(alarm, &u.session, cmd).await;
    Ok(match v["error"].as_str() {
        Some(e) => back("error", e),
        None => match v["warning"].as_str() {
            Some(w) => back("msg", w),
            None => back(
                "msg",
                &format!("The alarm is now {}", v["state"].as_str().unwrap_or("?")),
            ),
        },
    })
}

async fn arm_form(
    State(app): State<App>,
    u: PageUser,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let mode = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "mode")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mode = match parse_mode(&mode) {
        Ok(m) => m,
        Err(e) => return Ok(back("error", &e.to_string())),
    };
    form_run(&app, &u, Command::Arm { mode, delays: None }).await
}

async fn disarm_form(State(app): State<App>, u: PageUser) -> Result<Response, PageError> {
    form_run(&app, &u, Command::Disarm).await
}

/// What live view and stills answer for a camera in privacy mode.
pub(crate) fn privacy_message(camera: &str) -> String {
    format!("`{camera}` is in privacy mode: no live view, pictures or recording until it is switched off")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrivacyBody {
    on: bool,
}

async fn set_privacy(
    app: &App,
    session: &SessionRow,
    visitor: &crate::session::Visitor,
    name: &str,
    on: bool,
) -> Result<Value, WebError> {
    require_role(session, &ROLES)?;
    let cam = crate::access::visible_camera(app, session, visitor, name, "privacy").await?;
    let store = app.vault.store();
    store
        .set_camera_privacy(cam.id, on, jiff::Timestamp::now())
        .await?;
    app.vault
        .audit(
            &visitor.actor(),
            "camera.privacy",
            &cam.name,
            json!({ "on": on }),
        )
        .await?;
    let p = store.camera_policy(cam.id).await?;
    Ok(json!({ "camera": cam.name, "privacy": p.privacy, "policy": p }))
}

async fn privacy(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
    Json(b): Json<PrivacyBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        set_privacy(&app, &u.session, &u.visitor, &name, b.on).await?,
    ))
}

async fn privacy_form(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let on = form_urlencoded::parse(&body).any(|(k, v)| k == "on" && v == "1");
    match set_privacy(&app, &u.session, &u.visitor, &name, on).await {
        Ok(_) => Ok(back(
            "msg",
            &format!(
                "Privacy mode for {name} is {}",
                if on { "on" } else { "off" }
            ),
        )),
        Err(e) if e.status().is_client_error() => Ok(back("error", &e.to_string())),
        Err(e) => Err(e.into()),
    }
}

async fn modes_json(app: &App, cam: &porchlight_store::Camera) -> Result<Value, WebError> {
    let store = app.vault.store();
    let modes: serde_json::Map<String, Value> = store
        .camera_modes(cam.id)
        .await?
        .into_iter()
        .map(|(m, f)| (m.to_owned(), json!(f)))
        .collect();
    Ok(json!({
        "camera": cam.name,
        "modes": modes,
        "privacy": store.camera_privacy(cam.id).await?,
        "policy": store.camera_policy(cam.id).await?,
    }))
}

async fn modes(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_role(&u.session, &ROLES)?;
    let cam = crate::access::visible_camera(&app, &u.session, &u.visitor, &name, "modes").await?;
    Ok(Json(modes_json(&app, &cam).await?))
}

/// Per mode, what one camera does: `{"home": {"record": …}, …}`.
pub(crate) type ModesBody =
    std::collections::BTreeMap<String, porchlight_store::camera_modes::ModeFlags>;

/// Saves camera `name`'s flags for the modes in `b` (each replaced whole,
/// the others kept) and audits it as `camera.modes`; owners only. The one
/// path for the API (`PUT /api/v1/cameras/{name}/modes`) and the alarm
/// page's form. Answers what `GET …/modes` would.
pub(crate) async fn save_modes(
    app: &App,
    session: &SessionRow,
    visitor: &crate::session::Visitor,
    name: &str,
    b: &ModesBody,
) -> Result<Value, WebError> {
    require_role(session, &[Role::Owner])?;
    let store = app.vault.store();
    let cam = store
        .camera_by_name(name)
        .await?
        .ok_or_else(|| WebError::NotFoundBecause(format!("there is no camera `{name}`")))?;
    // Check every mode name before saving any.
    for m in b.keys() {
        if !porchlight_store::camera_modes::MODES.contains(&m.as_str()) {
            return Err(WebError::BadRequest(format!(
                "unknown mode `{m}`: the modes are disarmed, home and away"
            )));
        }
    }
    for (m, f) in b {
        store.set_camera_mode(cam.id, m, *f).await?;
    }
    app.vault
        .audit(&visitor.actor(), "camera.modes", &cam.name, json!(b))
        .await?;
    modes_json(app, &cam).await
}

/// `{"home": {"record": false, "detect": true, "notify": false}, …}`:
/// the modes given are replaced whole; the others are kept.
async fn put_modes(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
    Json(b): Json<ModesBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        save_modes(&app, &u.session, &u.visitor, &name, &b).await?,
    ))
}
