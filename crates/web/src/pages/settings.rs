//! Settings, for owners: cameras (add, test connection, change address
//! and credentials, pause, remove),
//! users (add, disable, per-camera grants for members), and links to the
//! owner's own account and the audit log.
//!
//! The index also holds the owner's **Notifications** section: turning Web
//! Push on for this device, sending a test (`assets/js/push.js`, which
//! needs JavaScript as push itself does), and their rules — a plain form
//! posted to `/settings/notifications`. The section is built in
//! `crate::push`, which also serves it as its own page at
//! `/settings/notifications` for members (who have no settings index).
//!
//! The index also shows **Remote access** (issue 15, design/remote.md):
//! the hub's name, the relay, the tunnel, the certificate's expiry and key
//! fingerprint, the last relay integrity check — and, when a check found
//! someone else's key on the hub's path, a warning. Read from the data
//! folder (`porchlight_remote::RemoteStatus`), the same facts as
//! `porchlight remote status`.
//!
//! And **Off-site backup** (issue 17, design/backup.md), built in
//! `crate::backup`: destinations, their queue and errors, add and stop.
//!
//! The forms post here and go through the same functions as the JSON API
//! (`media`, `camera_admin`, `users`), so both check and audit alike. With
//! JavaScript, "Test connection" calls the API in place
//! (`assets/settings.js`); without, the form posts and the page answers.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use porchlight_store::{Camera, Role, SessionRow};
use serde_json::Value;

use super::layout::{csrf_field, human_duration, page_in, time_el, Tab};
use crate::access::camera_state;
use crate::camera_admin::{self, TestBody};
use crate::error::{PageError, WebError};
use crate::session::{require_role, PageUser};
use crate::users::{self, UserView};
use crate::App;

/// The fields of a posted form (a field may repeat, e.g. checkboxes).
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(crate) fn parse(body: &Bytes) -> Fields {
        Fields(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    /// The first value of `k`, trimmed; `None` when absent or blank.
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
    fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn text(&self, k: &str) -> String {
        self.get(k).unwrap_or("").to_owned()
    }
}

fn owner(u: &PageUser) -> Result<(), PageError> {
    require_role(&u.session, &[Role::Owner]).map_err(PageError)
}

fn settings_page(title: &str, s: &SessionRow, body: Markup) -> Markup {
    page_in(Some(Tab::Settings), title, s, body)
}

fn crumbs(here: &str) -> Markup {
    html! { p.crumbs { a href="/settings" { "Settings" } " › " (here) } }
}

pub(super) async fn index(
    State(app): State<App>,
    u: PageUser,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    owner(&u)?;
    let store = app.vault.store();
    let saved = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|kv| kv == "saved=notifications"));
    // A refused "turn on remote access", said back next to its form.
    let remote_error = query.as_deref().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "remote_error")
            .map(|(_, v)| v.into_owned())
    });
    let backup_error = query.as_deref().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "backup_error")
            .map(|(_, v)| v.into_owned())
    });
    let notifications =
        crate::push::notifications_section(&app, &u.session, saved, "/settings").await?;
    let backup = crate::backup::section(&app, &u.session, backup_error.as_deref()).await?;
    let cams = store.cameras().await?.len();
    let users = store.list_users().await?.len();
    Ok(settings_page(
        "Settings",
        &u.session,
        html! {
            h1 { "Settings" }
            ul.menu {
                li { a href="/settings/cameras" { strong { "Cameras" } span.muted { (cams) " · add, test, pause, remove" } } }
                li { a href="/settings/users" { strong { "Users" } span.muted { (users) " · household members and what they may see" } } }
                li { a href="#notifications" { strong { "Notifications" } span.muted { "push to this device, what and when" } } }
                li { a href="#backup" { strong { "Off-site backup" } span.muted { "event footage elsewhere, while it happens" } } }
                li { a href="/audit" { strong { "Audit log" } span.muted { "who watched what, when" } } }
                li { a href="/account" { strong { "Your account" } span.muted { "password, two-factor sign-in, sessions" } } }
                li { a href="/api/openapi.json" { strong { "API" } span.muted { "the JSON API, described as OpenAPI" } } }
            }
            (notifications)
            (remote_section(&app, &u.session, remote_error.as_deref()))
            (backup)
        },
    )
    .into_response())
}

/// The Remote access section of the settings index (owners only: the
/// index is).
fn remote_section(app: &App, s: &SessionRow, error: Option<&str>) -> Markup {
    let status = porchlight_remote::RemoteStatus::read(app.vault.store().data_dir());
    html! {
        section #remote {
            h2 { "Remote access" }
            @match status {
                Err(e) => p.error role="alert" { "Cannot read the remote access settings: " (format!("{e:#}")) },
                Ok(st) if !st.enabled => (crate::remote::enable_form(app, &csrf_field(&s.csrf_token), error)),
                Ok(s) => {
                    @if let Some(w) = &s.warning {
                        p.error #remote-warning role="alert" { strong { "Warning: " } (w) }
                    }
                    dl {
                        dt { "Name" } dd { code #remote-name { (s.name.clone().unwrap_or_default()) } }
                        dt { "At home" } dd { code { (s.lan_name.clone().unwrap_or_default()) } }
                        dt { "Relay" } dd { code { (s.relay.clone().unwrap_or_default()) } }
                        dt { "Tunnel" } dd #remote-tunnel {
                            @match &s.report.tunnel {
                                None => "not running",
                                Some(t) if t.connected => "connected",
                                Some(t) => { "not connected" @if let Some(e) = &t.last_error { " — " (e) } },
                            }
                        }
                        dt { "Certificate" } dd #remote-cert {
                            @match &s.certificate {
                                None => "none yet",
                                Some(c) => { "valid until " (time_el(c.not_after, "datetime")) br; "key SHA-256 " code { (c.spki_sha256) } },
                            }
                            @if let Some(e) = &s.report.certificate_error { br; span.error { "Last attempt failed: " (e) } }
                        }
                        dt { "Integrity check" } dd #remote-integrity {
                            @match &s.report.integrity {
                                None => "not run yet",
                                Some(i) => { (time_el(i.at, "datetime")) ": " (format!("{:?}", i.outcome).to_lowercase()) " — " (i.detail) },
                            }
                        }
                    }
                },
            }
        }
    }
}

// ---- cameras -------------------------------------------------------------

/// What the add-camera form holds (never the password, which is not sent
/// back into the page).
#[derive(Default)]
struct CameraForm {
    name: String,
    url: String,
    sub_url: String,
    username: String,
    retain_days: String,
    retain_gib: String,
}

impl CameraForm {
    fn from(f: &Fields) -> CameraForm {
        CameraForm {
            name: f.text("name"),
            url: f.text("url"),
            sub_url: f.text("sub_url"),
            username: f.text("username"),
            retain_days: f.text("retain_days"),
            retain_gib: f.text("retain_gib"),
        }
    }
}

/// The outcome of a test connection, for the page.
fn test_result(r: &Result<Value, String>) -> Markup {
    match r {
        Ok(info) => {
            let size = match (info["width"].as_u64(), info["height"].as_u64()) {
                (Some(w), Some(h)) => format!(", {w}×{h}"),
                _ => String::new(),
            };
            let streams: Vec<&str> = info["streams"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
                .unwrap_or_default();
            html! {
                p.test-result.ok role="status" data-testid="test-result" {
                    "The camera answered: " (streams.join(", ")) (size) "."
                }
            }
        }
        Err(e) => html! {
            p.test-result.error role="alert" data-testid="test-result" {
                "Connection failed: " (e)
            }
        },
    }
}

fn camera_fields(f: &CameraForm) -> Markup {
    html! {
        label { "Name (used in links: letters, digits, - and _)"
            input name="name" value=(f.name) required pattern="[A-Za-z0-9_\\-]{1,48}" autocomplete="off" placeholder="front-door";
        }
        label { "RTSP address of the main stream"
            input name="url" value=(f.url) required inputmode="url" autocomplete="off" placeholder="rtsp://192.168.1.20:554/stream1";
        }
        label { "Sub-stream address (optional, low resolution)"
            input name="sub_url" value=(f.sub_url) inputmode="url" autocomplete="off" placeholder="rtsp://192.168.1.20:554/stream2";
        }
        div.row {
            label { "Camera user name"
                input name="username" value=(f.username) autocomplete="off";
            }
            label { "Camera password"
                input type="password" name="password" autocomplete="new-password";
            }
        }
        div.row {
            label { "Keep for days (empty: until space runs out)"
                input type="number" name="retain_days" min="1" value=(f.retain_days) inputmode="numeric";
            }
            label { "At most GiB (empty: no limit)"
                input type="number" name="retain_gib" min="0.1" step="0.1" value=(f.retain_gib) inputmode="decimal";
            }
        }
    }
}

async fn cameras_page(
    app: &App,
    s: &SessionRow,
    form: &CameraForm,
    error: Option<String>,
    test: Option<Result<Value, String>>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let mut rows = Vec::new();
    for c in app.vault.store().cameras().await? {
        let (state, err) = camera_state(app, &c).await?;
        let (bytes, _) = app.vault.store().camera_usage(c.id).await?;
        rows.push((c, state, err, bytes));
    }
    let body = html! {
        (crumbs("Cameras"))
        h1 { "Cameras" }
        @if rows.is_empty() {
            p.muted { "No cameras yet: add one below." }
        } @else {
            ul.menu {
                @for (c, state, err, bytes) in &rows {
                    li { a href={ "/settings/cameras/" (c.name) } {
                        strong { span class={ "dot " (state.class()) } {} " " (c.name) }
                        span.muted { (state.label()) " · " (human_bytes(*bytes)) " recorded"
                            @if let Some(e) = err { " · " (e) } }
                    } }
                }
            }
        }
        section.card #add {
            h2 { "Add a camera" }
            p.muted { "Porchlight records H.264 or H.265 over RTSP. The camera's manual or app names its RTSP address; give the user name and password separately, not in the address." }
            @if let Some(e) = &error { p.error role="alert" data-testid="form-error" { (e) } }
            form method="post" action="/settings/cameras" data-camera-form {
                (csrf_field(&s.csrf_token))
                (camera_fields(form))
                div.test-slot data-test-output {
                    @if let Some(t) = &test { (test_result(t)) }
                }
                div.actions {
                    button.secondary type="submit" name="action" value="test" data-test-button { "Test connection" }
                    button type="submit" name="action" value="add" { "Add camera" }
                }
            }
        }
        script src="/static/settings.js" defer {}
    };
    Ok((status, settings_page("Cameras", s, body)).into_response())
}

fn human_bytes(b: i64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

pub(super) async fn cameras(State(app): State<App>, u: PageUser) -> Result<Response, PageError> {
    owner(&u)?;
    cameras_page(
        &app,
        &u.session,
        &CameraForm::default(),
        None,
        None,
        StatusCode::OK,
    )
    .await
}

fn parse_opt<T: std::str::FromStr>(f: &Fields, k: &str, what: &str) -> Result<Option<T>, String> {
    f.get(k)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| format!("{what}: `{v}` is not a number"))
        })
        .transpose()
}

pub(super) async fn cameras_post(
    State(app): State<App>,
    u: PageUser,
    body: Bytes,
) -> Result<Response, PageError> {
    owner(&u)?;
    let f = Fields::parse(&body);
    let form = CameraForm::from(&f);
    let actor = u.visitor.actor();
    if f.get("action") == Some("test") {
        let r = camera_admin::probe(
            &app,
            &actor,
            TestBody {
                camera: None,
                url: f.get("url").map(str::to_owned),
                username: f.get("username").map(str::to_owned),
                password: f.get("password").map(str::to_owned),
            },
        )
        .await;
        return match r {
            Ok(t) => cameras_page(&app, &u.session, &form, None, Some(t), StatusCode::OK).await,
            Err(e) if e.status().is_client_error() => {
                cameras_page(
                    &app,
                    &u.session,
                    &form,
                    Some(e.to_string()),
                    None,
                    StatusCode::BAD_REQUEST,
                )
                .await
            }
            Err(e) => Err(e.into()),
        };
    }
    let parsed = (|| -> Result<crate::media::AddBody, String> {
        Ok(crate::media::AddBody {
            name: form.name.clone(),
            url: form.url.clone(),
            sub_url: f.get("sub_url").map(str::to_owned),
            username: f.get("username").map(str::to_owned),
            password: f.get("password").map(str::to_owned),
            retain_days: parse_opt(&f, "retain_days", "days to keep")?,
            retain_gib: parse_opt(&f, "retain_gib", "GiB")?,
        })
    })();
    let result = match parsed {
        Ok(b) => crate::media::add_camera(&app, &actor, b).await,
        Err(e) => Err(WebError::BadRequest(e)),
    };
    match result {
        Ok(cam) => {
            Ok(Redirect::to(&format!("/settings/cameras/{}?added=1", cam.name)).into_response())
        }
        Err(e) if e.status().is_client_error() => {
            let mut msg = e.to_string();
            if f.get("password").is_some() {
                msg.push_str(" (enter the camera's password again)");
            }
            cameras_page(
                &app,
                &u.session,
                &form,
                Some(msg),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn camera_by_name(app: &App, name: &str) -> Result<Camera, WebError> {
    app.vault
        .store()
        .camera_by_name(name)
        .await?
        .ok_or_else(|| WebError::NotFoundBecause(format!("there is no camera `{name}`")))
}

async fn camera_page(
    app: &App,
    s: &SessionRow,
    cam: &Camera,
    note: Option<Markup>,
    test: Option<Result<Value, String>>,
) -> Result<Response, PageError> {
    camera_page_with(app, s, cam, note, test, None).await
}

async fn camera_page_with(
    app: &App,
    s: &SessionRow,
    cam: &Camera,
    note: Option<Markup>,
    test: Option<Result<Value, String>>,
    edit_error: Option<String>,
) -> Result<Response, PageError> {
    let (state, err) = camera_state(app, cam).await?;
    let (bytes, segments) = app.vault.store().camera_usage(cam.id).await?;
    let granted: Vec<String> = users::users_with_grants(app)
        .await?
        .into_iter()
        .filter(|v| v.user.role == Role::Member && v.cameras.contains(&cam.name))
        .map(|v| v.user.username)
        .collect();
    let body = html! {
        p.crumbs { a href="/settings" { "Settings" } " › " a href="/settings/cameras" { "Cameras" } " › " (cam.name) }
        div.title-row {
            h1 { (cam.name) }
            span class={ "chip " (state.class()) } { span.dot {} (state.label()) }
        }
        @if let Some(n) = note { (n) }
        @if let Some(e) = err { p.error { "Last error: " (e) } }
        dl.facts {
            dt { "Address" } dd { code { (cam.main_url) } }
            dt { "Sub-stream" } dd { @if let Some(s) = &cam.sub_url { code { (s) } } @else { "none" } }
            dt { "Camera user" } dd { (cam.username.as_deref().unwrap_or("none")) @if cam.password.is_some() { " (password saved)" } }
            dt { "Keep" } dd {
                @match (cam.retain_max_age_secs, cam.retain_max_bytes) {
                    (None, None) => "until the disk needs the space",
                    (a, b) => {
                        @if let Some(a) = a { (human_duration(a)) }
                        @if a.is_some() && b.is_some() { ", " }
                        @if let Some(b) = b { "at most " (human_bytes(b)) }
                    },
                }
            }
            dt { "Recorded" } dd { (human_bytes(bytes)) " in " (segments) " segments" }
            dt { "Added" } dd { (time_el(cam.created_at, "datetime")) }
            dt { "Members who see it" } dd {
                @if granted.is_empty() { "none (owners see every camera)" } @else { (granted.join(", ")) }
                " · " a href="/settings/users" { "change" }
            }
        }
        div.actions {
            a.button href={ "/cameras/" (cam.name) } { "Watch" }
            form.inline method="post" action={ "/settings/cameras/" (cam.name) "/enabled" } {
                (csrf_field(&s.csrf_token))
                @if cam.enabled {
                    input type="hidden" name="enabled" value="0";
                    button.secondary type="submit" { "Pause (privacy mode)" }
                } @else {
                    input type="hidden" name="enabled" value="1";
                    button type="submit" { "Resume recording" }
                }
            }
            form.inline method="post" action={ "/settings/cameras/" (cam.name) "/test" } data-camera-test=(cam.name) data-output="quick-test" {
                (csrf_field(&s.csrf_token))
                button.secondary type="submit" data-test-button { "Test connection" }
            }
        }
        div.test-slot #quick-test data-test-output { @if let Some(t) = &test { (test_result(t)) } }
        details.card #edit open[edit_error.is_some()] {
            summary { "Change address or credentials" }
            @if let Some(e) = &edit_error { p.error role="alert" data-testid="form-error" { (e) } }
            form method="post" action={ "/settings/cameras/" (cam.name) "/edit" } data-camera-test=(cam.name) {
                (csrf_field(&s.csrf_token))
                label { "RTSP address of the main stream"
                    input name="url" value=(cam.main_url) required inputmode="url" autocomplete="off";
                }
                div.row {
                    label { "Camera user name"
                        input name="username" value=(cam.username.as_deref().unwrap_or("")) autocomplete="off";
                    }
                    label { "Camera password"
                        input type="password" name="password" autocomplete="new-password"
                            placeholder=(if cam.password.is_some() { "unchanged" } else { "none" });
                    }
                }
                @if cam.password.is_some() {
                    label.check { input type="checkbox" name="clear_password" value="1"; "Remove the saved password" }
                }
                div.test-slot data-test-output {}
                div.actions {
                    button.secondary type="submit" name="action" value="test" data-test-button { "Test connection" }
                    button type="submit" name="action" value="save" { "Save" }
                }
            }
            p.muted { "The sub-stream and how long recordings are kept cannot be changed in place yet: remove the camera and add it again for that." }
        }
        details.card.danger-zone {
            summary { "Remove this camera" }
            p { "Removing " strong { (cam.name) } " deletes all of its recordings. This cannot be undone." }
            form method="post" action={ "/settings/cameras/" (cam.name) "/remove" } {
                (csrf_field(&s.csrf_token))
                label { "Type the camera's name to confirm" input name="confirm" autocomplete="off" required; }
                button.danger-solid type="submit" { "Remove camera and recordings" }
            }
        }
        script src="/static/settings.js" defer {}
    };
    Ok(settings_page(&cam.name, s, body).into_response())
}

#[derive(serde::Deserialize)]
pub(super) struct AddedQ {
    added: Option<String>,
}

pub(super) async fn camera(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    axum::extract::Query(q): axum::extract::Query<AddedQ>,
) -> Result<Response, PageError> {
    owner(&u)?;
    let cam = camera_by_name(&app, &name).await?;
    let note = q.added.map(|_| {
        html! { p.ok role="status" { "Added. The hub starts recording it within a few seconds." } }
    });
    camera_page(&app, &u.session, &cam, note, None).await
}

pub(super) async fn camera_enabled(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    owner(&u)?;
    let f = Fields::parse(&body);
    let cam = camera_by_name(&app, &name).await?;
    let on = f.get("enabled") == Some("1");
    camera_admin::set_enabled(&app, &u.visitor.actor(), &cam, on).await?;
    Ok(Redirect::to(&format!("/settings/cameras/{}", cam.name)).into_response())
}

pub(super) async fn camera_test(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    owner(&u)?;
    let cam = camera_by_name(&app, &name).await?;
    let r = camera_admin::probe(
        &app,
        &u.visitor.actor(),
        TestBody {
            camera: Some(cam.name.clone()),
            url: None,
            username: None,
            password: None,
        },
    )
    .await?;
    camera_page(&app, &u.session, &cam, None, Some(r)).await
}

pub(super) async fn camera_edit(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    owner(&u)?;
    let f = Fields::parse(&body);
    let cam = camera_by_name(&app, &name).await?;
    let actor = u.visitor.actor();
    // A blank password keeps the saved one (it is never sent to the page).
    let password = if f.get("clear_password") == Some("1") {
        Some(String::new())
    } else {
        f.get("password").map(str::to_owned)
    };
    if f.get("action") == Some("test") {
        let r = camera_admin::probe(
            &app,
            &actor,
            TestBody {
                camera: Some(cam.name.clone()),
                url: f.get("url").map(str::to_owned),
                username: f.get("username").map(str::to_owned),
                password,
            },
        )
        .await?;
        return camera_page(&app, &u.session, &cam, None, Some(r)).await;
    }
    match camera_admin::edit_source(
        &app,
        &actor,
        &cam,
        Some(f.text("url")),
        Some(f.text("username")),
        password,
    )
    .await
    {
        Ok(cam) => {
            let note = html! { p.ok role="status" { "Saved. The hub reconnects to the camera within a few seconds." } };
            camera_page(&app, &u.session, &cam, Some(note), None).await
        }
        Err(e) if e.status().is_client_error() => {
            let mut r =
                camera_page_with(&app, &u.session, &cam, None, None, Some(e.to_string())).await?;
            *r.status_mut() = StatusCode::BAD_REQUEST;
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn camera_remove(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    owner(&u)?;
    let f = Fields::parse(&body);
    let cam = camera_by_name(&app, &name).await?;
    if f.get("confirm") != Some(cam.name.as_str()) {
        let note = html! { p.error role="alert" { "Nothing was removed: type " code { (cam.name) } " exactly to confirm." } };
        let mut r = camera_page(&app, &u.session, &cam, Some(note), None).await?;
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(r);
    }
    crate::media::remove_camera(&app, &u.visitor.actor(), &cam.name).await?;
    Ok(Redirect::to("/settings/cameras").into_response())
}

// ---- users ---------------------------------------------------------------

async fn users_page(
    app: &App,
    s: &SessionRow,
    error: Option<String>,
    form: (&str, &str),
    status: StatusCode,
) -> Result<Response, PageError> {
    let list: Vec<UserView> = users::users_with_grants(app).await?;
    let cameras = app.vault.store().cameras().await?;
    let body = html! {
        (crumbs("Users"))
        h1 { "Users" }
        p.muted { "Owners see every camera, add cameras and users, and read the audit log; they must use two-factor sign-in. Members see the cameras you tick for them. Access granted today opens recordings made from now on." }
        ul.users {
            @for v in list.iter().filter(|v| v.user.role.is_hub_role()) {
                li.card data-user=(v.user.username) {
                    div.card-head {
                        h2 {
                            (v.user.username)
                            @if v.user.id == s.user_id { span.muted { " (you)" } }
                        }
                        span class={ "chip " (if v.user.disabled { "off" } else { "on" }) } {
                            (v.user.role) @if v.user.disabled { " · disabled" }
                        }
                    }
                    p.muted {
                        "Two-factor sign-in " (if v.user.totp_enabled { "on" } else { "off" })
                        " · added " (time_el(v.user.created_at, "datetime"))
                    }
                    @if v.user.role == Role::Member && !v.user.disabled {
                        form.grants method="post" action={ "/settings/users/" (v.user.username) "/grants" } {
                            (csrf_field(&s.csrf_token))
                            fieldset {
                                legend { "Cameras " (v.user.username) " may see" }
                                @if cameras.is_empty() { p.muted { "No cameras yet." } }
                                @for c in &cameras {
                                    label.check {
                                        input type="checkbox" name="camera" value=(c.name) checked[v.cameras.contains(&c.name)];
                                        (c.name)
                                    }
                                }
                            }
                            button.secondary type="submit" { "Save cameras" }
                        }
                    }
                    @if v.user.id != s.user_id {
                        form.inline method="post" action={ "/settings/users/" (v.user.username) "/disabled" } {
                            (csrf_field(&s.csrf_token))
                            @if v.user.disabled {
                                input type="hidden" name="disabled" value="0";
                                button.secondary type="submit" { "Enable" }
                            } @else {
                                input type="hidden" name="disabled" value="1";
                                button.danger type="submit" { "Disable (signs them out everywhere)" }
                            }
                        }
                    }
                }
            }
        }
        section.card #add {
            h2 { "Add a household member" }
            @if let Some(e) = &error { p.error role="alert" data-testid="form-error" { (e) } }
            form method="post" action="/settings/users" {
                (csrf_field(&s.csrf_token))
                label { "Username" input name="username" value=(form.0) required autocomplete="off" autocapitalize="none"; }
                label { "Role"
                    select name="role" {
                        option value="member" selected[form.1 != "owner"] { "Member (sees the cameras you tick)" }
                        option value="owner" selected[form.1 == "owner"] { "Owner (sees and manages all)" }
                    }
                }
                label { "First password (at least 10 characters; they can change it)"
                    input type="password" name="password" minlength="10" required autocomplete="new-password";
                }
                button type="submit" { "Add user" }
            }
        }
    };
    Ok((status, settings_page("Users", s, body)).into_response())
}

pub(super) async fn users(State(app): State<App>, u: PageUser) -> Result<Response, PageError> {
    owner(&u)?;
    users_page(&app, &u.session, None, ("", "member"), StatusCode::OK).await
}

pub(super) async fn users_post(
    State(app): State<App>,
    u: PageUser,
    body: Bytes,
) -> Result<Response, PageError> {
    owner(&u)?;
    let f = Fields::parse(&body);
    let username = f.text("username");
    let role_s = f.text("role");
    let role = match role_s.as_str() {
        "owner" => Role::Owner,
        _ => Role::Member,
    };
    let b = users::AddBody {
        username: username.clone(),
        role,
        password: f
            .0
            .iter()
            .find(|(k, _)| k == "password")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
    };
    match users::add_user(&app, &u.visitor.actor(), &b).await {
        Ok((user, code)) => Ok(settings_page(
            "User added",
            &u.session,
            html! {
                (crumbs("Users"))
                h1 { "Added " (user.username) }
                p { "Give " strong { (user.username) } " their password and this key recovery code, privately. The code is the only way back to their recordings if they forget their password. It is shown only now." }
                p.secret data-testid="recovery-code" { (code) }
                @if user.role == Role::Owner {
                    p.notice { "Owners set up two-factor sign-in the first time they sign in." }
                } @else {
                    p.notice { "Members see no camera until you tick cameras for them on the users page." }
                }
                p { a.button href="/settings/users" { "Done — back to users" } }
            },
        )
        .into_response()),
        Err(e) if e.status().is_client_error() => {
            users_page(
                &app,
                &u.session,
                Some(e.to_string()),
                (&username, &role_s),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn user_disabled(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    owner(&u)?;
    let f = Fields::parse(&body);
    let disabled = f.get("disabled") == Some("1");
    users::set_disabled(&app, &u.session, &u.visitor.actor(), &name, disabled).await?;
    Ok(Redirect::to("/settings/users").into_response())
}

pub(super) async fn user_grants(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    owner(&u)?;
    let f = Fields::parse(&body);
    let wanted = f.all("camera");
    let views = users::users_with_grants(&app).await?;
    let v = views
        .iter()
        .find(|v| v.user.username == name)
        .ok_or_else(|| WebError::NotFoundBecause(format!("there is no user `{name}`")))?;
    let actor = u.visitor.actor();
    for c in app.vault.store().cameras().await? {
        let has = v.cameras.contains(&c.name);
        let want = wanted.contains(&c.name.as_str());
        if has != want {
            users::set_grant(&app, &actor, &c.name, &v.user.username, want).await?;
        }
    }
    Ok(Redirect::to("/settings/users").into_response())
}
