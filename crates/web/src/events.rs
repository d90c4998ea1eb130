//! Events ("motion at the front door 14:02", "doorbell pressed"): the one
//! source the events page, the home page and the timeline's markers read.
//!
//! Events come from the store's `events` table (written by detection, the
//! alarm and the API); nothing here invents events. Their details (kind,
//! labels, zones, score, the alarm's transitions) are sealed to the
//! members who may see them (`porchlight_vault::details`): they are opened
//! with the reader's unlocked key, and one the key cannot open is shown as
//! a bare entry ("sealed to other members", `sealed` in the JSON) instead
//! of failing the page. Filtering by kind happens after opening, bounded.
//!
//! An event may carry a snapshot and a thumbnail: JPEGs encrypted at rest
//! to the camera's recipients ([`porchlight_vault::snapshot`]). They are
//! served decrypted with the requester's unlocked household key, only to
//! someone who may see the camera (a refusal is a 403 and a `camera.denied`
//! audit entry), and never cached (`private, no-store`). A locked key is a
//! 423 telling the reader to sign in again. Opening a full snapshot is
//! audited per view (`event.snapshot`); thumbnails in lists are not audited
//! one by one (design/audit.md says why). The event detail page
//! (`/events/{id}`) is here too: `pages/mod.rs` holds the other pages'
//! routes, and this keeps the event's access rules and page in one place.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use porchlight_store::{Camera, SessionRow, StoredEvent};
use porchlight_vault::details::{self, Unreadable};
use porchlight_vault::snapshot;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::access::{visible_camera, visible_cameras};
use crate::error::{ApiError, PageError, WebError};
use crate::session::{ApiUser, PageUser, Visitor};
use crate::App;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/events", get(list))
        .route("/api/v1/events/{id}", get(one))
        .route("/api/v1/events/{id}/snapshot.jpg", get(snapshot_full))
        .route("/api/v1/events/{id}/thumb.jpg", get(snapshot_thumb))
        .route("/events/{id}", get(detail_page))
}

/// Kinds of events, for filters. Detection will produce these.
pub(crate) const KINDS: [(&str, &str); 9] = [
    ("motion", "Motion"),
    ("person", "Person"),
    ("vehicle", "Vehicle"),
    ("animal", "Animal"),
    ("package_delivered", "Package delivered"),
    ("package_taken", "Package taken"),
    ("package", "Package"),
    ("doorbell", "Doorbell"),
    ("alarm", "Alarm"),
];

/// The word shown for an event whose details the reader cannot open.
const SEALED_LABEL: &str = "Sealed to other members";

/// Whether this process runs the event path (detection, triggers).
pub(crate) fn detection_available(app: &App) -> bool {
    app.events.is_some()
}

/// Seconds of video shown before an event's start when the event does not
/// say (`detail.preroll_s`, written by detection).
const DEFAULT_PREROLL_S: i64 = 5;

/// One event on one camera.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Event {
    pub id: i64,
    pub camera: String,
    pub kind: String,
    #[serde(serialize_with = "ser_ts")]
    pub start: jiff::Timestamp,
    /// The end, or "now" while the event goes on.
    #[serde(serialize_with = "ser_ts")]
    pub end: jiff::Timestamp,
    pub ongoing: bool,
    /// `alert` or `detection`.
    pub review: String,
    pub source: String,
    pub score: Option<f64>,
    /// Zone names.
    pub zones: Vec<String>,
    /// What was seen (`person`, `car` …), from `detail.labels`.
    pub labels: Vec<String>,
    /// Seconds of video worth showing before `start`.
    pub preroll_s: i64,
    /// Whether a snapshot (and thumbnail) can be fetched.
    pub snapshot: bool,
    /// Why the details cannot be shown to this reader ("sealed to other
    /// members", …); None when they are. When set, `kind` is `sealed` and
    /// the details are empty.
    pub sealed: Option<String>,
}

fn ser_ts<S: serde::Serializer>(t: &jiff::Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Event {
    pub(crate) fn from_row(
        r: porchlight_store::EventRow,
        camera: &Camera,
        now: jiff::Timestamp,
    ) -> Event {
        Event {
            id: r.id,
            camera: camera.name.clone(),
            zones: strings(Some(&r.zones)),
            labels: strings(r.detail.get("labels")),
            preroll_s: r
                .detail
                .get("preroll_s")
                .and_then(Value::as_i64)
                .unwrap_or(DEFAULT_PREROLL_S)
                .clamp(0, 300),
            kind: r.kind,
            start: r.start,
            end: r.end.unwrap_or(now).max(r.start),
            ongoing: r.end.is_none(),
            review: r.review,
            source: r.source,
            score: r.score,
            snapshot: r.snapshot.is_some(),
            sealed: None,
        }
    }

    /// An event whose details this reader cannot open: its index only.
    pub(crate) fn unreadable(
        r: &StoredEvent,
        why: &Unreadable,
        camera: &Camera,
        now: jiff::Timestamp,
    ) -> Event {
        Event {
            id: r.id,
            camera: camera.name.clone(),
            kind: "sealed".into(),
            start: r.start,
            end: r.end.unwrap_or(now).max(r.start),
            ongoing: r.end.is_none(),
            review: "detection".into(),
            source: r.source.clone(),
            score: None,
            zones: Vec::new(),
            labels: Vec::new(),
            preroll_s: DEFAULT_PREROLL_S,
            snapshot: r.snapshot.is_some(),
            sealed: Some(why.to_string()),
        }
    }

    /// `r` opened with `key`, or its index and why not.
    pub(crate) fn open(
        r: StoredEvent,
        key: Option<&porchlight_vault::keys::MemberKey>,
        camera: &Camera,
        now: jiff::Timestamp,
    ) -> Event {
        match details::open_event(&r, key) {
            Ok(row) => Event::from_row(row, camera, now),
            Err(why) => Event::unreadable(&r, &why, camera, now),
        }
    }

    /// Where playing this event starts: its start minus the pre-roll.
    pub(crate) fn play_from(&self) -> jiff::Timestamp {
        self.start - jiff::SignedDuration::from_secs(self.preroll_s)
    }
}

/// Events of `cameras` (already checked as visible) in [from, to), newest
/// first, opened with `session`'s unlocked key; optionally of one kind
/// (matched after opening: events this reader cannot open are left out of
/// a kind filter).
pub(crate) async fn events_between(
    app: &App,
    session: &SessionRow,
    cameras: &[Camera],
    kind: Option<&str>,
    from: jiff::Timestamp,
    to: jiff::Timestamp,
) -> Result<Vec<Event>, WebError> {
    let key = app.vault.unlocked_key(session);
    let listing = details::events(
        app.vault.store(),
        &porchlight_store::EventFilter {
            cameras: Some(cameras.iter().map(|c| c.id).collect()),
            from: Some(from),
            to: Some(to),
            limit: 500,
            ..Default::default()
        },
        kind,
        key.as_deref(),
    )
    .await?;
    let now = app.vault.now();
    Ok(listing
        .events
        .into_iter()
        .filter_map(|r| match r {
            Ok(row) => {
                let cam = cameras.iter().find(|c| Some(c.id) == row.camera_id)?;
                Some(Event::from_row(row, cam, now))
            }
            Err((stored, why)) => {
                let cam = cameras.iter().find(|c| Some(c.id) == stored.camera_id)?;
                Some(Event::unreadable(&stored, &why, cam, now))
            }
        })
        .collect())
}

#[derive(Deserialize)]
pub(crate) struct EventsQ {
    pub camera: Option<String>,
    pub kind: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The cameras, kind and range an events query asks for, checked.
pub(crate) async fn resolve_query(
    app: &App,
    session: &SessionRow,
    visitor: &crate::session::Visitor,
    q: &EventsQ,
) -> Result<
    (
        Vec<Camera>,
        Option<String>,
        jiff::Timestamp,
        jiff::Timestamp,
    ),
    WebError,
> {
    let cameras = match q.camera.as_deref().filter(|c| !c.is_empty()) {
        Some(name) => vec![visible_camera(app, session, visitor, name, "events").await?],
        None => visible_cameras(app, session).await?,
    };
    let kind = q.kind.clone().filter(|k| !k.is_empty());
    if let Some(k) = &kind {
        if !KINDS.iter().any(|(id, _)| id == k) {
            return Err(WebError::BadRequest(format!(
                "unknown event kind `{k}`; expected one of: {}",
                KINDS.map(|(id, _)| id).join(", ")
            )));
        }
    }
    let now = app.vault.now();
    let p = |s: Option<&str>, default: &str, what: &str| {
        porchlight_base::clock::parse_instant(s.filter(|s| !s.is_empty()).unwrap_or(default), now)
            .map_err(|e| WebError::BadRequest(format!("{what}: {e}")))
    };
    let from = p(q.from.as_deref(), "-7d", "from")?;
    let to = p(q.to.as_deref(), "now", "to")?;
    if from >= to {
        return Err(WebError::BadRequest(format!(
            "from ({from}) must be before to ({to})"
        )));
    }
    Ok((cameras, kind, from, to))
}

async fn list(
    State(app): State<App>,
    u: ApiUser,
    Query(q): Query<EventsQ>,
) -> Result<Json<Value>, ApiError> {
    let (cameras, kind, from, to) = resolve_query(&app, &u.session, &u.visitor, &q).await?;
    let events = events_between(&app, &u.session, &cameras, kind.as_deref(), from, to).await?;
    Ok(Json(json!({
        "detection": if detection_available(&app) { "on" } else { "not set up" },
        "from": from.to_string(),
        "to": to.to_string(),
        "events": events,
    })))
}

/// The event `id` with its camera, if `session` may see that camera (a
/// refusal is audited as `camera.denied` with `what`). Events not tied to a
/// camera are not served here.
pub(crate) async fn visible_event(
    app: &App,
    session: &SessionRow,
    visitor: &Visitor,
    id: &str,
    what: &str,
) -> Result<(StoredEvent, Camera), WebError> {
    let id: i64 = id
        .parse()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| WebError::BadRequest(format!("`{id}` is not an event number")))?;
    let store = app.vault.store();
    let missing = || WebError::NotFoundBecause(format!("there is no event {id}"));
    let row = store.event(id).await?.ok_or_else(missing)?;
    let camera_id = row.camera_id.ok_or_else(missing)?;
    let cam = store.camera_by_id(camera_id).await?.ok_or_else(missing)?;
    let cam = visible_camera(app, session, visitor, &cam.name, what).await?;
    Ok((row, cam))
}

async fn one(
    State(app): State<App>,
    u: ApiUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (row, cam) = visible_event(&app, &u.session, &u.visitor, &id, "event").await?;
    let key = app.vault.unlocked_key(&u.session);
    Ok(Json(json!(Event::open(
        row,
        key.as_deref(),
        &cam,
        app.vault.now()
    ))))
}

async fn snapshot_full(
    State(app): State<App>,
    u: ApiUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    serve_snapshot(&app, &u, &id, snapshot::Kind::Full).await
}

async fn snapshot_thumb(
    State(app): State<App>,
    u: ApiUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    serve_snapshot(&app, &u, &id, snapshot::Kind::Thumb).await
}

/// The message of a 423 answer: the key that opens pictures is not in
/// memory for this session.
pub(crate) const KEY_LOCKED: &str = "your household key is locked (the hub restarted since you signed in): sign out and sign in again to see snapshots";

async fn serve_snapshot(
    app: &App,
    u: &ApiUser,
    id: &str,
    kind: snapshot::Kind,
) -> Result<Response, ApiError> {
    let what = match kind {
        snapshot::Kind::Full => "snapshot",
        snapshot::Kind::Thumb => "thumbnail",
    };
    let (row, cam) = visible_event(app, &u.session, &u.visitor, id, what).await?;
    let event_id = row.id;
    let Some(full) = row.snapshot else {
        return Err(WebError::NotFoundBecause(format!("event {event_id} has no snapshot")).into());
    };
    let Some(key) = app.vault.unlocked_key(&u.session) else {
        return Ok((
            StatusCode::LOCKED,
            [(header::CACHE_CONTROL, "private, no-store")],
            Json(json!({ "error": KEY_LOCKED })),
        )
            .into_response());
    };
    let data_dir = app.vault.store().data_dir().to_path_buf();
    let jpeg = tokio::task::spawn_blocking(move || {
        let full = std::path::PathBuf::from(full);
        match kind {
            snapshot::Kind::Full => snapshot::read(&data_dir, &full, &key),
            // An event stored without a thumbnail shows its full picture.
            snapshot::Kind::Thumb => {
                match snapshot::read(&data_dir, &snapshot::thumb_of(&full)?, &key) {
                    Err(snapshot::SnapshotError::Missing { .. }) => {
                        snapshot::read(&data_dir, &full, &key)
                    }
                    other => other,
                }
            }
        }
    })
    .await
    .map_err(|e| WebError::Internal(format!("reading a snapshot: {e}")))?
    .map_err(|e| match e {
        snapshot::SnapshotError::Missing { .. } => WebError::NotFoundBecause(format!(
            "the snapshot of event {event_id} is no longer on the hub"
        )),
        snapshot::SnapshotError::NotARecipient { .. } => WebError::Forbidden(format!(
            "the snapshot of event {event_id} is not encrypted to your key (it was taken before you were granted `{}`)",
            cam.name
        )),
        e => WebError::Internal(e.to_string()),
    })?;
    if kind == snapshot::Kind::Full {
        app.vault
            .audit(
                &u.visitor.actor(),
                "event.snapshot",
                &cam.name,
                json!({ "event": event_id }),
            )
            .await?;
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "image/jpeg")
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::from(jpeg))
        .map_err(|e| WebError::Internal(e.to_string()).into())
}

/// The event detail page: the snapshot, what, where and when, the video
/// around it (from the pre-roll on) and a download.
async fn detail_page(
    State(app): State<App>,
    u: PageUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (row, cam) = visible_event(&app, &u.session, &u.visitor, &id, "event page").await?;
    let key = app.vault.unlocked_key(&u.session);
    let e = Event::open(row, key.as_deref(), &cam, app.vault.now());
    Ok(detail_markup(&u.session, &e, key.is_some()).into_response())
}

fn detail_markup(s: &SessionRow, e: &Event, key: bool) -> maud::Markup {
    use crate::pages::layout::{human_duration, page_in, q, time_el, Tab};
    let from = e.play_from();
    let to = e.end.max(e.start + jiff::SignedDuration::from_secs(10))
        + jiff::SignedDuration::from_secs(5);
    let view = format!(
        "/api/v1/cameras/{}/view.mp4?from={}&to={}",
        q(&e.camera),
        q(&from.to_string()),
        q(&to.to_string())
    );
    // The camera page showing the hour around the event.
    let timeline = format!(
        "/cameras/{}?zoom=hour&end={}",
        q(&e.camera),
        q(&(e.end + jiff::SignedDuration::from_mins(10)).to_string())
    );
    let title = format!("{} · {}", kind_label(&e.kind), e.camera);
    page_in(
        Some(Tab::Events),
        &title,
        s,
        maud::html! {
            p.crumbs { a href="/events" { "Events" } " › " (e.camera) }
            div.title-row {
                h1 { (kind_label(&e.kind)) " at " (e.camera) }
                @if e.review == "alert" { span.chip.on { "alert" } }
            }
            @if let Some(why) = &e.sealed {
                p.notice data-testid="event-sealed" { "What happened is not shown: " (why) "." }
            }
            @if !key {
                p.notice data-testid="key-locked" { "Your household key is locked (the hub restarted since you signed in). Sign out and in again to see the snapshot and the video." }
            }
            @if e.snapshot {
                div.snapshot {
                    // `.still`: as wide as the page, 16:9 (the stylesheet's
                    // rule for camera pictures).
                    img.still data-testid="event-snapshot" src={ "/api/v1/events/" (e.id) "/snapshot.jpg" }
                        alt={ "Snapshot of " (e.kind) " at " (e.camera) };
                    p.muted { "Opening the snapshot is written to the audit log." }
                }
            } @else {
                p.muted.empty-state { "No snapshot was kept for this event." }
            }
            dl.facts {
                dt { "Camera" } dd { a href={ "/cameras/" (e.camera) } { (e.camera) } }
                dt { "What" } dd { (kind_label(&e.kind))
                    @if let Some(sc) = e.score { " (" (format!("{:.0}", sc * 100.0)) "% sure)" } }
                @if !e.labels.is_empty() { dt { "Seen" } dd { (e.labels.join(", ")) } }
                @if !e.zones.is_empty() { dt { "Zones" } dd { (e.zones.join(", ")) } }
                dt { "Started" } dd { (time_el(e.start, "full")) }
                dt { "Ended" } dd {
                    @if e.ongoing { "still going on" } @else {
                        (time_el(e.end, "full")) " (" (human_duration((e.end - e.start).get_seconds())) ")"
                    }
                }
                dt { "Source" } dd { (e.source) }
            }
            section.card {
                h2 { "Video" }
                div.playback {
                    video.event-clip data-testid="event-clip" controls playsinline preload="none" src=(view) {}
                }
                p.actions {
                    a.button href=(view) data-testid="play-from-here" { "Play from here" }
                    " "
                    a.button href={ (view) "&download=1" } download { "Download clip" }
                    " "
                    a.btn-small href=(timeline) { "Open the timeline" }
                }
                p.muted { "From " (human_duration(e.preroll_s)) " before the event to a few seconds after it. Watching and downloading are written to the audit log." }
            }
        },
    )
}

/// A person's word for an event kind.
pub(crate) fn kind_label(kind: &str) -> String {
    if kind == "sealed" {
        return SEALED_LABEL.to_owned();
    }
    KINDS
        .iter()
        .find(|(id, _)| *id == kind)
        .map(|(_, l)| (*l).to_owned())
        .unwrap_or_else(|| {
            let mut c = kind.replace('_', " ");
            if let Some(f) = c.get(..1) {
                let up = f.to_uppercase();
                c.replace_range(..1, &up);
            }
            c
        })
}
