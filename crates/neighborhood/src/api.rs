//! The JSON API under `/api/v1`, and [`router`] which adds the pages.
//!
//! Invariants:
//!
//! * Every API route is registered through [`api_routes`]'s table, which
//!   also lists it, so the authorization-matrix test can check that it
//!   covers every route the router serves.
//! * Authentication is `Authorization: Bearer <token>` from
//!   `POST /api/v1/sessions`; handlers receive a [`Viewer`] or answer 401.
//!   All role checks live in the service methods, not here.
//! * Errors are JSON `{"error": "…"}` (plus `reasons`/`guidance` for a
//!   post returned for revision, `reminder` for a kindness reminder) with
//!   the status from [`Error`]; 429 carries `Retry-After`.
//! * There is no route for direct messages, for listing users, or for
//!   anything about footage, cameras or hubs.
//! * Web Push: `GET /api/v1/push/key` (the VAPID public key),
//!   `POST`/`DELETE /api/v1/push/subscriptions` (the caller's own browser
//!   subscriptions); what is pushed is chosen with
//!   `PUT /api/v1/me/subscriptions` (categories) and the home area.

use axum::body::Bytes;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, Multipart, Path, Query, Request, State,
};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::accounts::{RegistrationMode, Role, Viewer};
use crate::moderation::{ContentAction, UserAction};
use crate::posts::{NewPost, PostEdit};
use crate::{Error, Neighborhood};

/// Largest photo upload accepted (before re-encoding).
pub const MAX_PHOTO_UPLOAD: usize = 12 * 1024 * 1024;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let msg = self.to_string();
        let (status, body) = match &self {
            Error::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, json!({ "error": msg })),
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, json!({ "error": msg })),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, json!({ "error": msg })),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, json!({ "error": msg })),
            Error::Conflict(_) => (StatusCode::CONFLICT, json!({ "error": msg })),
            Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, json!({ "error": msg })),
            Error::Revise { reasons, guidance } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "error": msg, "reasons": reasons, "guidance": guidance }),
            ),
            Error::Kindness { reminder } => (
                StatusCode::CONFLICT,
                json!({ "error": msg, "reminder": reminder,
                        "hint": "revise the comment, or send it again with \"confirm\": true" }),
            ),
            Error::Db(e) => {
                tracing::error!(error = %e, "neighborhood database error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": "internal error" }),
                )
            }
        };
        let mut resp = (status, Json(body)).into_response();
        if let Error::RateLimited { retry_after_s, .. } = self {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_s),
            );
        }
        resp
    }
}

/// JSON body whose rejection is our JSON error (422 naming the problem).
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;
    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(Error::Invalid(format!(
                "bad request body: {}",
                e.body_text()
            ))),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

impl FromRequestParts<Neighborhood> for Viewer {
    type Rejection = Error;
    async fn from_request_parts(parts: &mut Parts, n: &Neighborhood) -> Result<Self, Error> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            Error::Unauthorized("sign in first: send Authorization: Bearer <token>".into())
        })?;
        n.viewer_for_token(token).await
    }
}

type R = Result<Response, Error>;

fn ok(v: Value) -> R {
    Ok(Json(v).into_response())
}

fn created(v: Value) -> R {
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

fn no_content() -> R {
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- sessions and accounts ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
    totp: Option<String>,
}

async fn login(State(n): State<Neighborhood>, Body(b): Body<LoginBody>) -> R {
    let token = n.login(&b.username, &b.password, b.totp.as_deref()).await?;
    created(json!({ "token": token }))
}

async fn logout(State(n): State<Neighborhood>, _v: Viewer, headers: HeaderMap) -> R {
    if let Some(t) = bearer(&headers) {
        n.logout(t).await?;
    }
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    username: String,
    password: String,
    display_name: String,
    invite: Option<String>,
}

async fn register(State(n): State<Neighborhood>, Body(b): Body<RegisterBody>) -> R {
    let (id, status) = n
        .register(
            &b.username,
            &b.password,
            &b.display_name,
            b.invite.as_deref(),
        )
        .await?;
    created(json!({ "id": id, "status": status }))
}

async fn me(State(n): State<Neighborhood>, v: Viewer) -> R {
    let mut o = serde_json::to_value(&v).unwrap_or_default();
    o["cell"] = v.home_cell.map(|c| c.to_string()).into();
    o["subscriptions"] = n.subscriptions(v.id).await?.into();
    if let Some(c) = v.home_cell {
        o["area_svg"] = crate::area::cells_svg(c, v.radius_km, None).into();
    }
    ok(o)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AreaBody {
    cell: String,
    radius_km: Option<f64>,
}

async fn put_area(State(n): State<Neighborhood>, v: Viewer, Body(b): Body<AreaBody>) -> R {
    v.require_not_suspended()?;
    let cell = n.set_area(v.id, &b.cell, b.radius_km).await?;
    let v = n.viewer(v.id).await?;
    ok(json!({ "cell": cell.to_string(), "radius_km": v.radius_km }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubsBody {
    categories: Vec<String>,
}

async fn get_subs(State(n): State<Neighborhood>, v: Viewer) -> R {
    ok(json!({ "categories": n.subscriptions(v.id).await? }))
}

async fn put_subs(State(n): State<Neighborhood>, v: Viewer, Body(b): Body<SubsBody>) -> R {
    v.require_not_suspended()?;
    n.set_subscriptions(v.id, &b.categories).await?;
    ok(json!({ "categories": n.subscriptions(v.id).await? }))
}

async fn totp_begin(State(n): State<Neighborhood>, v: Viewer) -> R {
    v.require_not_suspended()?;
    let (secret, uri) = n.begin_totp(v.id).await?;
    created(json!({ "secret": secret, "otpauth_uri": uri }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: String,
}

async fn totp_confirm(State(n): State<Neighborhood>, v: Viewer, Body(b): Body<CodeBody>) -> R {
    v.require_not_suspended()?;
    n.confirm_totp(v.id, &b.code).await?;
    no_content()
}

async fn notices(State(n): State<Neighborhood>, v: Viewer) -> R {
    ok(n.notices(&v).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppealBody {
    text: String,
}

async fn appeal(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path(id): Path<i64>,
    Body(b): Body<AppealBody>,
) -> R {
    let id = n.appeal(&v, id, &b.text).await?;
    created(json!({ "id": id, "status": "open" }))
}

// ---- Web Push ----

async fn push_key(State(n): State<Neighborhood>, _v: Viewer) -> R {
    ok(json!({ "public_key": n.push_public_key() }))
}

async fn push_subscribe(
    State(n): State<Neighborhood>,
    v: Viewer,
    headers: HeaderMap,
    Body(b): Body<crate::push::BrowserSubscription>,
) -> R {
    v.require_not_suspended()?;
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let id = n.subscribe_push(v.id, &b, ua).await?;
    created(json!({ "id": id, "categories": n.subscriptions(v.id).await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointBody {
    endpoint: String,
}

async fn push_unsubscribe(
    State(n): State<Neighborhood>,
    v: Viewer,
    Body(b): Body<EndpointBody>,
) -> R {
    n.unsubscribe_push(v.id, &b.endpoint).await?;
    no_content()
}

// ---- posts ----

async fn create_post(State(n): State<Neighborhood>, v: Viewer, Body(b): Body<NewPost>) -> R {
    created(n.create_post(&v, &b).await?)
}

async fn get_post(State(n): State<Neighborhood>, v: Viewer, Path(id): Path<i64>) -> R {
    ok(n.post(&v, id).await?)
}

async fn patch_post(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path(id): Path<i64>,
    Body(b): Body<PostEdit>,
) -> R {
    ok(n.edit_post(&v, id, &b).await?)
}

async fn delete_post(State(n): State<Neighborhood>, v: Viewer, Path(id): Path<i64>) -> R {
    n.delete_post(&v, id).await?;
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    radius_km: Option<f64>,
    category: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

async fn feed(
    State(n): State<Neighborhood>,
    v: Viewer,
    q: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> R {
    let Query(q) = q.map_err(|e| Error::Invalid(format!("bad feed query: {}", e.body_text())))?;
    ok(
        n.feed(&v, q.radius_km, q.category.as_deref(), q.before, q.limit)
            .await?,
    )
}

/// Accepts the photo as a raw image body or as the first file of a
/// `multipart/form-data` form.
async fn upload_photo(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path(id): Path<i64>,
    req: Request,
) -> R {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("multipart/form-data"));
    let bytes: Bytes = if is_multipart {
        let mut mp = Multipart::from_request(req, &n)
            .await
            .map_err(|e| Error::Invalid(format!("bad multipart upload: {}", e.body_text())))?;
        let mut found = None;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| Error::Invalid(format!("bad multipart upload: {}", e.body_text())))?
        {
            if field.file_name().is_some() || field.name() == Some("photo") {
                found = Some(field.bytes().await.map_err(|e| {
                    Error::Invalid(format!("bad multipart upload: {}", e.body_text()))
                })?);
                break;
            }
        }
        found.ok_or_else(|| {
            Error::Invalid("the form has no file field (name it \"photo\")".into())
        })?
    } else {
        Bytes::from_request(req, &n)
            .await
            .map_err(|e| Error::Invalid(format!("bad upload: {}", e.body_text())))?
    };
    if bytes.is_empty() {
        return Err(Error::Invalid("the upload is empty".into()));
    }
    let pid = n.add_photo(&v, id, &bytes).await?;
    created(json!({ "id": pid, "url": format!("/api/v1/photos/{pid}") }))
}

async fn get_photo(State(n): State<Neighborhood>, v: Viewer, Path(id): Path<i64>) -> R {
    let jpeg = n.photo(&v, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        jpeg,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    body: String,
    #[serde(default)]
    confirm: bool,
}

async fn add_comment(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path(id): Path<i64>,
    Body(b): Body<CommentBody>,
) -> R {
    created(n.add_comment(&v, id, &b.body, b.confirm).await?)
}

async fn delete_comment(State(n): State<Neighborhood>, v: Viewer, Path(id): Path<i64>) -> R {
    n.delete_comment(&v, id).await?;
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReactionBody {
    kind: String,
}

async fn react(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path(id): Path<i64>,
    Body(b): Body<ReactionBody>,
) -> R {
    n.react(&v, id, &b.kind, true).await?;
    no_content()
}

async fn unreact(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path((id, kind)): Path<(i64, String)>,
) -> R {
    n.react(&v, id, &kind, false).await?;
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    reason: String,
    #[serde(default)]
    note: String,
}

async fn report_post(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path(id): Path<i64>,
    Body(b): Body<ReportBody>,
) -> R {
    let id = n.report(&v, "post", id, &b.reason, &b.note).await?;
    created(json!({ "id": id }))
}

async fn report_comment(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path(id): Path<i64>,
    Body(b): Body<ReportBody>,
) -> R {
    let id = n.report(&v, "comment", id, &b.reason, &b.note).await?;
    created(json!({ "id": id }))
}

// ---- moderation ----

async fn queue(State(n): State<Neighborhood>, v: Viewer) -> R {
    ok(n.queue(&v).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
    hours: Option<i64>,
}

async fn moderate_post(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path((id, action)): Path<(i64, String)>,
    Body(b): Body<ReasonBody>,
) -> R {
    v.require_moderator()?;
    n.moderate_content(&v, "post", id, ContentAction::parse(&action)?, &b.reason)
        .await?;
    no_content()
}

async fn moderate_comment(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path((id, action)): Path<(i64, String)>,
    Body(b): Body<ReasonBody>,
) -> R {
    v.require_moderator()?;
    n.moderate_content(&v, "comment", id, ContentAction::parse(&action)?, &b.reason)
        .await?;
    no_content()
}

async fn moderate_user(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path((id, action)): Path<(i64, String)>,
    Body(b): Body<ReasonBody>,
) -> R {
    v.require_moderator()?;
    n.moderate_user(&v, id, UserAction::parse(&action)?, &b.reason, b.hours)
        .await?;
    no_content()
}

async fn dismiss_report(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path(id): Path<i64>,
    Body(b): Body<ReasonBody>,
) -> R {
    n.dismiss_report(&v, id, &b.reason).await?;
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: String,
    #[serde(default)]
    reason: String,
}

async fn decide_appeal(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path(id): Path<i64>,
    Body(b): Body<DecisionBody>,
) -> R {
    v.require_moderator()?;
    let grant = match b.decision.as_str() {
        "grant" => true,
        "deny" => false,
        o => {
            return Err(Error::Invalid(format!(
                "unknown decision {o:?}: expected grant or deny"
            )))
        }
    };
    n.decide_appeal(&v, id, grant, &b.reason).await?;
    no_content()
}

async fn decide_registration(
    State(n): State<Neighborhood>,
    v: Viewer,
    Path(id): Path<i64>,
    Body(b): Body<DecisionBody>,
) -> R {
    v.require_moderator()?;
    let approve = match b.decision.as_str() {
        "approve" => true,
        "reject" => false,
        o => {
            return Err(Error::Invalid(format!(
                "unknown decision {o:?}: expected approve or reject"
            )))
        }
    };
    n.decide_registration(v.id, id, approve).await?;
    no_content()
}

// ---- admin ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    username: String,
    password: String,
    display_name: String,
    role: String,
    agency_name: Option<String>,
}

async fn admin_create_user(
    State(n): State<Neighborhood>,
    v: Viewer,
    Body(b): Body<NewUserBody>,
) -> R {
    v.require_admin()?;
    let role = Role::parse(&b.role)?;
    let id = n
        .admin_create_user(
            Some(v.id),
            &b.username,
            &b.password,
            &b.display_name,
            role,
            b.agency_name.as_deref(),
        )
        .await?;
    created(json!({ "id": id }))
}

async fn admin_verify_agency(State(n): State<Neighborhood>, v: Viewer, Path(id): Path<i64>) -> R {
    v.require_admin()?;
    n.verify_agency(Some(v.id), id).await?;
    no_content()
}

async fn admin_invite(State(n): State<Neighborhood>, v: Viewer) -> R {
    v.require_admin()?;
    created(json!({ "code": n.create_invite(Some(v.id)).await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: String,
}

async fn admin_registration(
    State(n): State<Neighborhood>,
    v: Viewer,
    Body(b): Body<ModeBody>,
) -> R {
    v.require_admin()?;
    let mode = match b.mode.as_str() {
        "invite" => RegistrationMode::Invite,
        "open" => RegistrationMode::Open,
        o => {
            return Err(Error::Invalid(format!(
                "unknown registration mode {o:?}: expected invite or open"
            )))
        }
    };
    n.set_registration_mode(Some(v.id), mode).await?;
    ok(json!({ "mode": mode }))
}

async fn admin_audit(State(n): State<Neighborhood>, v: Viewer) -> R {
    v.require_admin()?;
    ok(json!({ "entries": n.audit_log(200).await? }))
}

/// The API router and the list of `(method, path)` it serves, built from
/// one table so the two cannot disagree.
pub struct ApiTable {
    pub router: Router<Neighborhood>,
    pub routes: Vec<(&'static str, &'static str)>,
}

impl ApiTable {
    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        mr: MethodRouter<Neighborhood>,
    ) -> Self {
        self.router = self.router.route(path, mr);
        self.routes.push((method, path));
        self
    }
}

/// Every API route, registered once.
pub fn api_routes() -> ApiTable {
    ApiTable {
        router: Router::new(),
        routes: Vec::new(),
    }
    .add("POST", "/api/v1/sessions", post(login))
    .add("DELETE", "/api/v1/sessions", delete(logout))
    .add("POST", "/api/v1/registrations", post(register))
    .add("GET", "/api/v1/me", get(me))
    .add("PUT", "/api/v1/me/area", put(put_area))
    .add("GET", "/api/v1/me/subscriptions", get(get_subs))
    .add("PUT", "/api/v1/me/subscriptions", put(put_subs))
    .add("POST", "/api/v1/me/totp", post(totp_begin))
    .add("POST", "/api/v1/me/totp/confirm", post(totp_confirm))
    .add("GET", "/api/v1/push/key", get(push_key))
    .add("POST", "/api/v1/push/subscriptions", post(push_subscribe))
    .add(
        "DELETE",
        "/api/v1/push/subscriptions",
        delete(push_unsubscribe),
    )
    .add("GET", "/api/v1/me/notices", get(notices))
    .add("POST", "/api/v1/me/notices/{id}/appeals", post(appeal))
    .add("GET", "/api/v1/feed", get(feed))
    .add("POST", "/api/v1/posts", post(create_post))
    .add("GET", "/api/v1/posts/{id}", get(get_post))
    .add("PATCH", "/api/v1/posts/{id}", patch(patch_post))
    .add("DELETE", "/api/v1/posts/{id}", delete(delete_post))
    .add(
        "POST",
        "/api/v1/posts/{id}/photos",
        post(upload_photo).layer(DefaultBodyLimit::max(MAX_PHOTO_UPLOAD)),
    )
    .add("GET", "/api/v1/photos/{id}", get(get_photo))
    .add("POST", "/api/v1/posts/{id}/comments", post(add_comment))
    .add("DELETE", "/api/v1/comments/{id}", delete(delete_comment))
    .add("POST", "/api/v1/posts/{id}/reactions", post(react))
    .add(
        "DELETE",
        "/api/v1/posts/{id}/reactions/{kind}",
        delete(unreact),
    )
    .add("POST", "/api/v1/posts/{id}/reports", post(report_post))
    .add(
        "POST",
        "/api/v1/comments/{id}/reports",
        post(report_comment),
    )
    .add("GET", "/api/v1/moderation/queue", get(queue))
    .add(
        "POST",
        "/api/v1/moderation/posts/{id}/{action}",
        post(moderate_post),
    )
    .add(
        "POST",
        "/api/v1/moderation/comments/{id}/{action}",
        post(moderate_comment),
    )
    .add(
        "POST",
        "/api/v1/moderation/users/{id}/{action}",
        post(moderate_user),
    )
    .add(
        "POST",
        "/api/v1/moderation/reports/{id}/dismiss",
        post(dismiss_report),
    )
    .add(
        "POST",
        "/api/v1/moderation/appeals/{id}",
        post(decide_appeal),
    )
    .add(
        "POST",
        "/api/v1/moderation/registrations/{id}",
        post(decide_registration),
    )
    .add("POST", "/api/v1/admin/users", post(admin_create_user))
    .add(
        "POST",
        "/api/v1/admin/users/{id}/verify-agency",
        post(admin_verify_agency),
    )
    .add("POST", "/api/v1/admin/invites", post(admin_invite))
    .add("PUT", "/api/v1/admin/registration", put(admin_registration))
    .add("GET", "/api/v1/admin/audit", get(admin_audit))
}

/// The neighborhood's whole HTTP surface: the JSON API and the pages.
pub fn router(n: Neighborhood) -> Router {
    api_routes()
        .router
        .merge(crate::pages::routes())
        .with_state(n)
}
