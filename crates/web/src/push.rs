//! Web Push endpoints: the hub's VAPID public key, the caller's browser
//! subscriptions, their notification rules, and a test push.
//!
//! Every endpoint is for household accounts (owners and members) and acts
//! on the caller's own subscriptions and rules only. A subscription's push
//! endpoint is judged by `porchlight_notify` (public push services only,
//! issue 14 item 12): a refused one is 400 with the reason; an endpoint
//! already subscribed by another account is 409 and stays theirs. State-changing calls
//! pass the CSRF guard like every other request. When the hub runs without
//! a [`porchlight_notify::Notifier`] (`App::notifier` is `None`), the push
//! endpoints answer 503 with a JSON error; rules can still be read and
//! saved.
//!
//! Rules travel as JSON with camera *names* (as everywhere in the API) and
//! `HH:MM` quiet hours; the store keeps camera ids and minutes. A camera the
//! caller may not see is refused exactly like one that does not exist.
//!
//! Also here, so owners and members share them: the Notifications section
//! of the settings page ([`notifications_section`]), the same section as
//! a page of its own for members (`GET /settings/notifications`), its
//! no-JavaScript form post (`POST /settings/notifications`), and
//! `push.js`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use porchlight_notify::rules::{format_hhmm, parse_hhmm, validate};
use porchlight_notify::{BrowserSubscription, Notifier, SubscribeError};
use porchlight_store::{NotificationRules, QuietHours, Role, SessionRow};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::access::visible_cameras;
use crate::error::{ApiError, PageError, WebError};
use crate::pages::layout::{csrf_field, page_in, Tab};
use crate::session::{require_role, ApiUser, PageUser};
use crate::App;
use maud::{html, Markup};

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/push/key", get(key))
        .route(
            "/api/v1/push/subscriptions",
            post(subscribe).delete(unsubscribe),
        )
        .route("/api/v1/push/test", post(test))
        .route("/api/v1/notifications/rules", get(get_rules).put(put_rules))
        .route("/settings/notifications", get(rules_page).post(rules_form))
        .route(
            "/static/js/push.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=3600"),
                    ],
                    include_bytes!("../assets/js/push.js").as_slice(),
                )
            }),
        )
}

/// An API error, "push is not set up on this hub" (503), or "that
/// endpoint is another account's" (409).
pub(crate) enum PushError {
    Web(WebError),
    Unavailable,
    Taken(String),
}

impl<E: Into<WebError>> From<E> for PushError {
    fn from(e: E) -> Self {
        PushError::Web(e.into())
    }
}

impl IntoResponse for PushError {
    fn into_response(self) -> Response {
        match self {
            PushError::Web(e) => ApiError(e).into_response(),
            PushError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "Web Push is not set up on this hub" })),
            )
                .into_response(),
            PushError::Taken(m) => {
                (StatusCode::CONFLICT, Json(json!({ "error": m }))).into_response()
            }
        }
    }
}

fn household(s: &SessionRow) -> Result<(), WebError> {
    require_role(s, &[Role::Owner, Role::Member])
}

fn notifier(app: &App) -> Result<&Notifier, PushError> {
    app.notifier.as_ref().ok_or(PushError::Unavailable)
}

async fn key(State(app): State<App>, u: ApiUser) -> Result<Json<Value>, PushError> {
    household(&u.session)?;
    let n = notifier(&app)?;
    Ok(Json(json!({ "public_key": n.public_key_b64() })))
}

async fn subscribe(
    State(app): State<App>,
    u: ApiUser,
    Json(sub): Json<BrowserSubscription>,
) -> Result<(StatusCode, Json<Value>), PushError> {
    household(&u.session)?;
    let n = notifier(&app)?;
    let row = n
        .subscribe(u.session.user_id, &sub, &u.visitor.user_agent)
        .await
        .map_err(|e| match e {
            SubscribeError::Invalid(m) => PushError::Web(WebError::BadRequest(m)),
            e @ SubscribeError::Taken => PushError::Taken(e.to_string()),
            SubscribeError::Store(e) => e.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": row.id, "created": row.created.to_string() })),
    ))
}

#[derive(Deserialize)]
struct EndpointBody {
    endpoint: String,
}

async fn unsubscribe(
    State(app): State<App>,
    u: ApiUser,
    Json(b): Json<EndpointBody>,
) -> Result<StatusCode, PushError> {
    household(&u.session)?;
    if app
        .vault
        .store()
        .delete_push_subscription(u.session.user_id, &b.endpoint)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(WebError::NotFoundBecause("you have no subscription with that endpoint".into()).into())
    }
}

async fn test(State(app): State<App>, u: ApiUser) -> Result<Json<Value>, PushError> {
    household(&u.session)?;
    let n = notifier(&app)?;
    let deliveries = n.send_test(u.session.user_id).await;
    let delivered = deliveries
        .iter()
        .filter(|d| matches!(d.outcome, porchlight_notify::Outcome::Delivered { .. }))
        .count();
    Ok(Json(json!({
        "sent": deliveries.len(),
        "delivered": delivered,
        "deliveries": deliveries,
    })))
}

/// Quiet hours in the API: `HH:MM` in the hub's local time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuietDto {
    pub start: String,
    pub end: String,
}

fn yes() -> bool {
    true
}

/// Notification rules as the API shows them. Absent or `null` lists mean
/// "all".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesDto {
    #[serde(default)]
    pub cameras: Option<Vec<String>>,
    #[serde(default)]
    pub kinds: Option<Vec<String>>,
    #[serde(default)]
    pub quiet_hours: Option<QuietDto>,
    #[serde(default = "yes")]
    pub alarm_always: bool,
    #[serde(default)]
    pub alarm_modes: Option<Vec<String>>,
}

/// The caller's rules, with camera names (cameras since deleted or no
/// longer visible are left out).
pub(crate) async fn rules_of(app: &App, s: &SessionRow) -> Result<RulesDto, WebError> {
    let r = app.vault.store().notification_rules(s.user_id).await?;
    let cameras = match &r.cameras {
        None => None,
        Some(ids) => {
            let visible = visible_cameras(app, s).await?;
            Some(
                visible
                    .into_iter()
                    .filter(|c| ids.contains(&c.id))
                    .map(|c| c.name)
                    .collect(),
            )
        }
    };
    Ok(RulesDto {
        cameras,
        kinds: r.kinds,
        quiet_hours: r.quiet_hours.map(|q| QuietDto {
            start: format_hhmm(q.start_min),
            end: format_hhmm(q.end_min),
        }),
        alarm_always: r.alarm_always,
        alarm_modes: r.alarm_modes,
    })
}

/// Checks and stores the caller's rules; errors say what is wrong.
pub(crate) async fn save_rules(app: &App, s: &SessionRow, d: RulesDto) -> Result<(), WebError> {
    let cameras = match d.cameras {
        None => None,
        Some(names) => {
            let visible = visible_cameras(app, s).await?;
            let mut ids = Vec::new();
            for n in names {
                let c = visible.iter().find(|c| c.name == n.trim()).ok_or_else(|| {
                    WebError::BadRequest(format!("there is no camera `{n}` you may see"))
                })?;
                if !ids.contains(&c.id) {
                    ids.push(c.id);
                }
            }
            Some(ids)
        }
    };
    let quiet_hours = match d.quiet_hours {
        None => None,
        Some(q) => Some(QuietHours {
            start_min: parse_hhmm(&q.start)
                .map_err(|e| WebError::BadRequest(format!("quiet hours start: {e}")))?,
            end_min: parse_hhmm(&q.end)
                .map_err(|e| WebError::BadRequest(format!("quiet hours end: {e}")))?,
        }),
    };
    let norm = |l: Option<Vec<String>>| {
        l.map(|v| {
            let mut out: Vec<String> = Vec::new();
            for x in v {
                let x = x.trim().to_ascii_lowercase();
                if !out.contains(&x) {
                    out.push(x);
                }
            }
            out
        })
    };
    let rules = NotificationRules {
        cameras,
        kinds: norm(d.kinds),
        quiet_hours,
        alarm_always: d.alarm_always,
        alarm_modes: norm(d.alarm_modes),
    };
    validate(&rules).map_err(WebError::BadRequest)?;
    app.vault
        .store()
        .put_notification_rules(s.user_id, &rules, app.vault.now())
        .await?;
    Ok(())
}

async fn get_rules(State(app): State<App>, u: ApiUser) -> Result<Json<RulesDto>, ApiError> {
    household(&u.session)?;
    Ok(Json(rules_of(&app, &u.session).await?))
}

async fn put_rules(
    State(app): State<App>,
    u: ApiUser,
    Json(d): Json<RulesDto>,
) -> Result<Json<RulesDto>, ApiError> {
    household(&u.session)?;
    save_rules(&app, &u.session, d).await?;
    Ok(Json(rules_of(&app, &u.session).await?))
}

/// The settings page's rules form without JavaScript. Fields: `cameras`
/// (`all` or `some`) with repeated `camera`; `kinds` (`all` or `some`)
/// with repeated `kind`; `quiet` (`on`) with `quiet_start`/`quiet_end`;
/// `alarm_always` (`on`); repeated `mode`.
async fn rules_form(
    State(app): State<App>,
    u: PageUser,
    body: Bytes,
) -> Result<Response, PageError> {
    household(&u.session)?;
    let f: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| {
        f.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let all = |k: &str| -> Vec<String> {
        f.iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    };
    let modes = all("mode");
    let d = RulesDto {
        cameras: (get("cameras").as_deref() == Some("some")).then(|| all("camera")),
        kinds: (get("kinds").as_deref() == Some("some")).then(|| all("kind")),
        quiet_hours: (get("quiet").as_deref() == Some("on")).then(|| QuietDto {
            start: get("quiet_start").unwrap_or_default(),
            end: get("quiet_end").unwrap_or_default(),
        }),
        alarm_always: get("alarm_always").as_deref() == Some("on"),
        // Every mode ticked is "all", also for modes added later.
        alarm_modes: (modes.len() < porchlight_notify::rules::ALARM_MODES.len()).then_some(modes),
    };
    save_rules(&app, &u.session, d).await?;
    let back = match get("back").as_deref() {
        Some("/settings") if u.session.role == Role::Owner => "/settings",
        _ => "/settings/notifications",
    };
    Ok(Redirect::to(&format!("{back}?saved=notifications#notifications")).into_response())
}

/// The Notifications section as a page of its own (members have no
/// settings index; owners get here from it too).
async fn rules_page(
    State(app): State<App>,
    u: PageUser,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    household(&u.session)?;
    let saved = query.is_some_and(|q| q.split('&').any(|kv| kv == "saved=notifications"));
    let section = notifications_section(&app, &u.session, saved, "/settings/notifications").await?;
    let tab = if u.session.role == Role::Owner {
        Tab::Settings
    } else {
        Tab::Account
    };
    Ok(page_in(
        Some(tab),
        "Notifications",
        &u.session,
        html! { h1 { "Notifications" } (section) },
    )
    .into_response())
}

/// The Notifications section: this device (with JavaScript) and the
/// caller's rules (a form that works without). `back` is the page the form
/// returns to (`/settings` or `/settings/notifications`).
pub(crate) async fn notifications_section(
    app: &App,
    s: &SessionRow,
    saved: bool,
    back: &str,
) -> Result<Markup, WebError> {
    let rules = rules_of(app, s).await?;
    let cams = crate::access::visible_cameras(app, s).await?;
    let cam_on = |name: &str| {
        rules
            .cameras
            .as_ref()
            .is_none_or(|l| l.iter().any(|c| c == name))
    };
    let kind_on = |k: &str| {
        rules
            .kinds
            .as_ref()
            .is_none_or(|l| l.iter().any(|x| x == k))
    };
    let mode_on = |m: &str| {
        rules
            .alarm_modes
            .as_ref()
            .is_none_or(|l| l.iter().any(|x| x == m))
    };
    let (qs, qe) = rules
        .quiet_hours
        .as_ref()
        .map(|q| (q.start.clone(), q.end.clone()))
        .unwrap_or_else(|| ("22:00".into(), "07:00".into()));
    Ok(html! {
        section.card #notifications data-testid="notifications" {
            h2 { "Notifications" }
            @if saved { p.ok role="status" data-testid="rules-saved" { "Notification rules saved." } }
            @if app.notifier.is_some() {
                div #push-device data-csrf=(s.csrf_token) hidden {
                    p #push-status .test-result role="status" { "Checking this device…" }
                    p {
                        button #push-enable type="button" { "Enable on this device" }
                        " "
                        button.secondary #push-disable type="button" hidden { "Turn off on this device" }
                        " "
                        button.secondary #push-test type="button" hidden { "Send a test" }
                    }
                }
                noscript { p.muted { "Turning notifications on for a device needs JavaScript; the rules below work without." } }
                script src="/static/js/push.js" defer {}
            } @else {
                p.muted { "This hub does not send push notifications (Web Push is not set up)." }
            }
            p.muted {
                "A notification says what happened and where — never a picture or video: it travels through your browser maker's push service. Open it to see the event on the hub."
            }
            form method="post" action="/settings/notifications" {
                (csrf_field(&s.csrf_token))
                input type="hidden" name="back" value=(back);
                fieldset {
                    legend { "Cameras" }
                    label { input type="radio" name="cameras" value="all" checked[rules.cameras.is_none()]; " Every camera I may see" }
                    label { input type="radio" name="cameras" value="some" checked[rules.cameras.is_some()]; " Only these:" }
                    @for c in &cams {
                        label { input type="checkbox" name="camera" value=(c.name) checked[rules.cameras.is_some() && cam_on(&c.name)]; " " (c.name) }
                    }
                }
                fieldset {
                    legend { "What" }
                    label { input type="radio" name="kinds" value="all" checked[rules.kinds.is_none()]; " Everything" }
                    label { input type="radio" name="kinds" value="some" checked[rules.kinds.is_some()]; " Only:" }
                    @for (k, label) in crate::events::KINDS {
                        label { input type="checkbox" name="kind" value=(k) checked[rules.kinds.is_some() && kind_on(k)]; " " (label) }
                    }
                }
                fieldset {
                    legend { "Quiet hours" }
                    label { input type="checkbox" name="quiet" value="on" checked[rules.quiet_hours.is_some()]; " No notifications between" }
                    label { "From " input type="time" name="quiet_start" value=(qs); }
                    label { "until " input type="time" name="quiet_end" value=(qe); }
                    p.muted { "In the hub's local time." }
                }
                fieldset {
                    legend { "Alarm" }
                    label { input type="checkbox" name="alarm_always" value="on" checked[rules.alarm_always]; " Alarm events always (even in quiet hours)" }
                    p.muted { "Notify while the alarm is:" }
                    @for (m, label) in [("disarmed", "Disarmed"), ("home", "Armed home"), ("away", "Armed away")] {
                        label { input type="checkbox" name="mode" value=(m) checked[mode_on(m)]; " " (label) }
                    }
                }
                button type="submit" { "Save notification rules" }
            }
        }
    })
}
