//! Cameras and recorded video over HTTP: the camera list and management
//! (`/api/v1/cameras`), recorded ranges, and playback of any time range as
//! an MP4 built on the fly (with HTTP Range, for `<video>` seeking and for
//! downloads), decrypted with the signed-in member's unlocked key.
//!
//! Every playback is audited once per sign-in (not once per Range request:
//! a browser fetches a video in many ranges); a refused one is audited too.
//!
//! A planned playback holds the member's unlocked key, so it is cached for
//! the Range requests that follow only *with that key*, in the vault's
//! keyring ([`porchlight_vault::Vault::session_cache_put`]): found only by
//! the same sign-in (token hash) of the same user, and dropped the moment
//! the session ends. Another session — whatever its id — plans, and is
//! audited, on its own.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use porchlight_recorder::export::Export;
use porchlight_store::{Camera, NewCamera, Role};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, WebError};
use crate::session::{require_role, ApiUser};
use crate::App;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/cameras", get(list).post(add))
        .route("/api/v1/cameras/{name}", delete(remove))
        .route("/api/v1/cameras/{name}/recordings", get(recordings))
        .route("/api/v1/cameras/{name}/view.mp4", get(view_mp4))
}

type SharedExport = tokio::sync::Mutex<Export>;

/// How long a planned playback is kept for further Range requests.
const PLAYBACK_TTL: Duration = Duration::from_secs(300);

fn recordings_dir(app: &App) -> std::path::PathBuf {
    app.vault
        .store()
        .data_dir()
        .join(porchlight_recorder::RECORDINGS_DIR)
}

/// The camera, if this user may see it; refusals are audited.
async fn visible_camera(app: &App, u: &ApiUser, name: &str) -> Result<Camera, WebError> {
    let store = app.vault.store();
    let cam = store
        .camera_by_name(name)
        .await?
        .ok_or(WebError::NotFound)?;
    if !store.may_see_camera(u.session.user_id, cam.id).await? {
        app.vault
            .audit(&u.visitor.actor(), "camera.denied", &cam.name, json!({}))
            .await?;
        return Err(WebError::Forbidden(format!(
            "you have no access to camera `{}`",
            cam.name
        )));
    }
    Ok(cam)
}

pub(crate) async fn camera_json(app: &App, c: &Camera) -> Result<Value, WebError> {
    let store = app.vault.store();
    let (bytes, segments) = store.camera_usage(c.id).await?;
    let status = store.camera_status(c.id).await?;
    let fresh = status
        .as_ref()
        .is_some_and(|s| (app.vault.now() - s.updated_at).get_seconds() < 20);
    Ok(json!({
        "name": c.name,
        "enabled": c.enabled,
        "connected": fresh && status.as_ref().is_some_and(|s| s.connected),
        "fps": status.as_ref().filter(|_| fresh).map(|s| s.fps),
        "bitrate_bps": status.as_ref().filter(|_| fresh).map(|s| s.bitrate_bps),
        "last_error": status.as_ref().and_then(|s| s.last_error.clone()),
        "recorded_bytes": bytes,
        "segments": segments,
    }))
}

async fn list(State(app): State<App>, u: ApiUser) -> Result<Json<Value>, ApiError> {
    let store = app.vault.store();
    let mut out = Vec::new();
    for c in store.cameras().await? {
        if store.may_see_camera(u.session.user_id, c.id).await? {
            let mut v = camera_json(&app, &c).await?;
            if u.session.role == Role::Owner {
                v["url"] = json!(c.main_url);
                v["sub_url"] = json!(c.sub_url);
                v["username"] = json!(c.username);
            }
            out.push(v);
        }
    }
    Ok(Json(json!(out)))
}

#[derive(Deserialize)]
pub(crate) struct AddBody {
    pub name: String,
    pub url: String,
    pub sub_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub retain_days: Option<u32>,
    pub retain_gib: Option<f64>,
}

async fn add(
    State(app): State<App>,
    u: ApiUser,
    Json(b): Json<AddBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    let cam = add_camera(&app, &u.visitor.actor(), b).await?;
    Ok((StatusCode::CREATED, Json(camera_json(&app, &cam).await?)))
}

/// Checks and adds a camera, audited (`camera.add`); the caller has checked
/// that the requester is an owner. Shared by the API and the settings page.
pub(crate) async fn add_camera(
    app: &App,
    actor: &porchlight_vault::Actor,
    b: AddBody,
) -> Result<Camera, WebError> {
    porchlight_recorder::cameras::validate(&b.name, &b.url).map_err(WebError::BadRequest)?;
    if let Some(sub) = &b.sub_url {
        porchlight_recorder::cameras::validate(&b.name, sub)
            .map_err(|e| WebError::BadRequest(format!("sub_url: {e}")))?;
    }
    let cam = app
        .vault
        .store()
        .create_camera(
            &NewCamera {
                name: b.name,
                main_url: b.url,
                sub_url: b.sub_url,
                username: b.username,
                password: b.password,
                retain_max_age_secs: b.retain_days.map(|d| i64::from(d) * 86400),
                retain_max_bytes: b.retain_gib.map(|g| (g * (1u64 << 30) as f64) as i64),
            },
            app.vault.now(),
        )
        .await
        .map_err(|e| match e {
            porchlight_store::StoreError::Conflict(m) => {
                WebError::BadRequest(format!("{m}: choose another name"))
            }
            e => e.into(),
        })?;
    app.vault
        .audit(
            actor,
            "camera.add",
            &cam.name,
            json!({ "url": cam.main_url }),
        )
        .await?;
    Ok(cam)
}

pub(crate) async fn remove(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    remove_camera(&app, &u.visitor.actor(), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a camera and its recordings, audited (`camera.remove`); the
/// caller has checked that the requester is an owner.
pub(crate) async fn remove_camera(
    app: &App,
    actor: &porchlight_vault::Actor,
    name: &str,
) -> Result<(), WebError> {
    let store = app.vault.store();
    let cam = store
        .camera_by_name(name)
        .await?
        .ok_or(WebError::NotFound)?;
    let n = porchlight_recorder::cameras::remove(store, &recordings_dir(app), &cam)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    app.vault
        .audit(
            actor,
            "camera.remove",
            &cam.name,
            json!({ "segments_deleted": n }),
        )
        .await?;
    Ok(())
}

#[derive(Deserialize)]
struct RangeQ {
    from: Option<String>,
    to: Option<String>,
    /// `download=1`: answer as an attachment (a saved file) rather than
    /// inline, and audit it as an export.
    download: Option<String>,
}

fn parse_range(
    app: &App,
    q: &RangeQ,
    default_from: &str,
) -> Result<(jiff::Timestamp, jiff::Timestamp), WebError> {
    let now = app.vault.now();
    let p = |s: &str, what: &str| {
        porchlight_base::clock::parse_instant(s, now)
            .map_err(|e| WebError::BadRequest(format!("{what}: {e}")))
    };
    let from = p(q.from.as_deref().unwrap_or(default_from), "from")?;
    let to = p(q.to.as_deref().unwrap_or("now"), "to")?;
    if from >= to {
        return Err(WebError::BadRequest(format!(
            "from ({from}) must be before to ({to})"
        )));
    }
    Ok((from, to))
}

/// Recorded spans of a camera in a range, merged into continuous runs.
async fn recordings(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
    Query(q): Query<RangeQ>,
) -> Result<Json<Value>, ApiError> {
    let cam = visible_camera(&app, &u, &name).await?;
    let (from, to) = parse_range(&app, &q, "-1d")?;
    let rows = app
        .vault
        .store()
        .recordings_between(cam.id, "main", from, to)
        .await?;
    let mut spans: Vec<(jiff::Timestamp, jiff::Timestamp)> = Vec::new();
    for r in rows {
        let end = if r.open { app.vault.now() } else { r.end() };
        match spans.last_mut() {
            // Adjacent segments (within a second) form one span.
            Some(last) if (r.start - last.1).get_seconds().abs() <= 1 => last.1 = last.1.max(end),
            _ => spans.push((r.start, end)),
        }
    }
    Ok(Json(json!({
        "camera": cam.name,
        "spans": spans.iter().map(|(s, e)| json!({ "start": s.to_string(), "end": e.to_string() })).collect::<Vec<_>>(),
    })))
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → `[start, end)`; `None` when absent
/// or not a single range (then the whole file is sent).
fn byte_range(headers: &HeaderMap, len: u64) -> Option<Result<(u64, u64), ()>> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = v.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    // A malformed range (RFC 9110 §14.1.1) makes the header void: `None`,
    // the whole file. A well-formed one that misses the file: `Err`, 416.
    let (s, e) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n = n.parse::<u64>().ok()?;
            (len.saturating_sub(n), len)
        }
        (a, "") => (a.parse::<u64>().ok()?, len),
        (a, b) => {
            let (a, b) = (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?);
            if a > b {
                return None;
            }
            (a, b.saturating_add(1).min(len))
        }
    };
    Some(if s < e && s < len {
        Ok((s, e))
    } else {
        Err(())
    })
}

/// Most bytes answered for one Range request; browsers ask again for more.
const MAX_RANGE: u64 = 4 << 20;

async fn view_mp4(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
    Query(q): Query<RangeQ>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cam = visible_camera(&app, &u, &name).await?;
    let (from, to) = parse_range(&app, &q, "-1m")?;
    let Some(key) = app.vault.unlocked_key(&u.session) else {
        return Err(WebError::Forbidden(
            "your household key is locked (the hub restarted since you signed in): sign in again to watch recordings".into(),
        )
        .into());
    };
    let download = matches!(q.download.as_deref(), Some("1" | "true" | "yes"));
    // Per sign-in by construction: the vault files it with this session's key.
    let cache_key = format!(
        "playback:{}:{}:{}{}",
        cam.id,
        from.as_microsecond(),
        to.as_microsecond(),
        if download { ":download" } else { "" }
    );
    let export = match app
        .vault
        .session_cache_get::<SharedExport>(&u.session, &cache_key)
    {
        Some(e) => e,
        None => {
            let e = porchlight_recorder::export::plan(
                app.vault.store(),
                &recordings_dir(&app),
                &cam,
                from,
                to,
                key,
            )
            .await
            .map_err(|e| match e {
                porchlight_recorder::RecorderError::Export(m) => WebError::NotFound.with_message(m),
                e => WebError::Internal(e.to_string()),
            })?;
            app.vault
                .audit(
                    &u.visitor.actor(),
                    if download {
                        "recording.export"
                    } else {
                        "recording.playback"
                    },
                    &cam.name,
                    json!({
                        "from": e.start.to_string(),
                        "to": e.end.to_string(),
                        "session": u.session.id,
                    }),
                )
                .await?;
            let e = Arc::new(tokio::sync::Mutex::new(e));
            app.vault
                .session_cache_put(&u.session, cache_key, e.clone(), PLAYBACK_TTL);
            e
        }
    };
    let (len, etag, ctype, real_start, real_end) = {
        let e = export.lock().await;
        (
            e.plan.len(),
            e.plan.etag(),
            e.plan.content_type(),
            e.start,
            e.end,
        )
    };
    let (status, start, end) = match byte_range(&headers, len) {
        None => (StatusCode::OK, 0, len),
        Some(Err(())) => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response())
        }
        Some(Ok((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e.min(s + MAX_RANGE)),
    };
    let filename = format!("{}-{}.mp4", cam.name, from.strftime("%Y%m%d-%H%M%S"));
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, ctype)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, "private, no-store")
        .header(header::CONTENT_LENGTH, end - start)
        .header(
            header::CONTENT_DISPOSITION,
            format!(
                "{}; filename=\"{filename}\"",
                if download { "attachment" } else { "inline" }
            ),
        )
        // What the video really covers (it starts on the key frame at or
        // before `from`): the timeline maps playback time to wall time.
        .header("x-porchlight-start", real_start.to_string())
        .header("x-porchlight-end", real_end.to_string());
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", end - 1),
        );
    }
    // Produce the bytes on a blocking thread (decryption, file reads) in
    // pieces, streamed as they are ready.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut e = export.blocking_lock();
        let mut pos = start;
        while pos < end {
            let n = (end - pos).min(1 << 20) as usize;
            let mut buf = vec![0u8; n];
            let Export { plan, source, .. } = &mut *e;
            let r = plan.read_at(pos, &mut buf, source).map(|got| {
                buf.truncate(got);
                buf
            });
            let stop = match &r {
                Ok(b) => b.is_empty(),
                Err(_) => true,
            };
            pos += r.as_ref().map(|b| b.len() as u64).unwrap_or(0);
            if tx.blocking_send(r).is_err() || stop {
                break;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(builder
        .body(Body::from_stream(stream))
        .map_err(|e| WebError::Internal(e.to_string()))?)
}

#[cfg(test)]
mod tests {
    use super::byte_range;
    use axum::http::{header, HeaderMap};

    fn r(v: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, v.parse().unwrap());
        byte_range(&h, len)
    }

    #[test]
    fn ranges() {
        assert_eq!(r("bytes=0-99", 1000), Some(Ok((0, 100))));
        assert_eq!(r("bytes=900-", 1000), Some(Ok((900, 1000))));
        assert_eq!(r("bytes=-100", 1000), Some(Ok((900, 1000))));
        assert_eq!(r("bytes=990-2000", 1000), Some(Ok((990, 1000))));
        assert_eq!(r("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(r("bytes=5-1", 1000), None);
        assert_eq!(r("bytes=0-1,5-6", 1000), None);
        assert_eq!(r("items=0-1", 1000), None);
        assert_eq!(byte_range(&HeaderMap::new(), 1000), None);
    }
}
