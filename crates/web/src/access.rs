//! Who may see which camera, in one place for pages and the API: owners see
//! every camera, members the cameras granted to them, everyone else none.
//! A refusal is audited (`camera.denied`, with what was asked for), so a
//! forged URL for someone else's camera leaves a trace the owner reads.

use porchlight_store::{Camera, SessionRow};
use serde_json::json;

use crate::error::WebError;
use crate::session::Visitor;
use crate::App;

/// The camera called `name`, if `session` may see it. `what` names the
/// kind of access for the audit entry of a refusal (`page`, `timeline`, …).
pub(crate) async fn visible_camera(
    app: &App,
    session: &SessionRow,
    visitor: &Visitor,
    name: &str,
    what: &str,
) -> Result<Camera, WebError> {
    let store = app.vault.store();
    let cam = store
        .camera_by_name(name)
        .await?
        .ok_or_else(|| WebError::NotFoundBecause(format!("there is no camera `{name}`")))?;
    if !store.may_see_camera(session.user_id, cam.id).await? {
        app.vault
            .audit(
                &visitor.actor(),
                "camera.denied",
                &cam.name,
                json!({ "what": what }),
            )
            .await?;
        return Err(WebError::Forbidden(format!(
            "you have no access to camera `{}`",
            cam.name
        )));
    }
    Ok(cam)
}

/// Every camera `session` may see, in the order they were added.
pub(crate) async fn visible_cameras(
    app: &App,
    session: &SessionRow,
) -> Result<Vec<Camera>, WebError> {
    let store = app.vault.store();
    let mut out = Vec::new();
    for c in store.cameras().await? {
        if store.may_see_camera(session.user_id, c.id).await? {
            out.push(c);
        }
    }
    Ok(out)
}

/// A camera's state as the hub last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CameraState {
    /// Connected and recording.
    Live,
    /// Switched off by the owner (privacy pause).
    Paused,
    /// The hub is trying but the camera does not answer.
    Offline,
    /// No hub has reported on this camera lately (not running here).
    Unknown,
}

impl CameraState {
    pub(crate) fn label(self) -> &'static str {
        match self {
            CameraState::Live => "live",
            CameraState::Paused => "paused",
            CameraState::Offline => "offline",
            CameraState::Unknown => "not recording",
        }
    }
    pub(crate) fn class(self) -> &'static str {
        match self {
            CameraState::Live => "on",
            CameraState::Paused => "paused",
            CameraState::Offline => "off",
            CameraState::Unknown => "off",
        }
    }
}

/// The state of `cam` and the camera's last connection error, if any.
pub(crate) async fn camera_state(
    app: &App,
    cam: &Camera,
) -> Result<(CameraState, Option<String>), WebError> {
    if !cam.enabled {
        return Ok((CameraState::Paused, None));
    }
    let status = app.vault.store().camera_status(cam.id).await?;
    Ok(match status {
        None => (CameraState::Unknown, None),
        Some(s) if (app.vault.now() - s.updated_at).get_seconds() >= 20 => {
            (CameraState::Unknown, None)
        }
        Some(s) if s.connected => (CameraState::Live, None),
        Some(s) => (CameraState::Offline, s.last_error),
    })
}

/// Recorded spans of `cam` in [from, to): adjacent segments (within a
/// second) merged into continuous runs, clipped to the range.
pub(crate) async fn recorded_spans(
    app: &App,
    cam: &Camera,
    from: jiff::Timestamp,
    to: jiff::Timestamp,
) -> Result<Vec<(jiff::Timestamp, jiff::Timestamp)>, WebError> {
    let now = app.vault.now();
    let rows = app
        .vault
        .store()
        .recordings_between(cam.id, "main", from, to)
        .await?;
    let mut spans: Vec<(jiff::Timestamp, jiff::Timestamp)> = Vec::new();
    for r in rows {
        let end = if r.open { now } else { r.end() };
        match spans.last_mut() {
            Some(last) if (r.start - last.1).get_seconds().abs() <= 1 => last.1 = last.1.max(end),
            _ => spans.push((r.start, end)),
        }
    }
    Ok(spans
        .into_iter()
        .map(|(s, e)| (s.max(from), e.min(to)))
        .filter(|(s, e)| s < e)
        .collect())
}
