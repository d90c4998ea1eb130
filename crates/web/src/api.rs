//! The JSON API (`/api/v1/…`). Sign in with `POST /api/v1/sessions` and
//! send the returned token as `Authorization: Bearer`; browser pages use
//! the same endpoints with their session cookie and the `X-CSRF-Token`
//! header.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use porchlight_store::{Role, SessionStage};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, WebError};
use crate::session::{require_role, ApiUser, Visitor};
use crate::App;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/sessions", post(create_session))
        .route("/api/v1/sessions/current", delete(end_session))
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/sessions", get(my_sessions))
        .route("/api/v1/me/sessions/{id}", delete(revoke_session))
        .route("/api/v1/audit", get(audit))
}

#[derive(Deserialize)]
struct SignInBody {
    username: String,
    password: String,
    totp: Option<String>,
}

/// Signs in with username, password and (when the account has it) a TOTP
/// or recovery code, all in one request. A wrong code ends the half-made
/// session, but counts against the account's and the address's code
/// throttles, which only a complete sign-in clears: 10 wrong codes lock the
/// account's code step (429 naming the time it opens again).
async fn create_session(
    State(app): State<App>,
    v: Visitor,
    Json(b): Json<SignInBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let signed = app
        .vault
        .sign_in(b.username.trim(), &b.password, &v.client, &v.user_agent)
        .await?;
    let mut session = signed.session;
    if session.stage == SessionStage::Totp {
        let Some(code) = b.totp.as_deref() else {
            app.vault.sign_out(&session).await?;
            return Err(ApiError(WebError::Auth(
                porchlight_vault::AuthError::BadSecondFactor,
            )));
        };
        match app
            .vault
            .second_factor(&session, &signed.token, code, &v.client)
            .await
        {
            Ok(s) => session = s,
            Err(e) => {
                app.vault.sign_out(&session).await?;
                return Err(e.into());
            }
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": signed.token.as_str(),
            "stage": session.stage,
            "username": session.username,
            "role": session.role,
            "expires_at": session.expires_at.to_string(),
        })),
    ))
}

async fn end_session(State(app): State<App>, v: Visitor) -> Result<StatusCode, ApiError> {
    let s = v.session.ok_or(WebError::NotSignedIn)?;
    app.vault.sign_out(&s).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(State(app): State<App>, u: ApiUser) -> Result<Json<Value>, ApiError> {
    let user = app
        .vault
        .store()
        .user_by_id(u.session.user_id)
        .await?
        .ok_or(WebError::NotSignedIn)?;
    Ok(Json(json!({
        "username": user.username,
        "role": user.role,
        "totp": user.totp_enabled,
        "household_key": user.keys.as_ref().map(|k| json!({
            "recipient": k.recipient,
            "unlocked": app.vault.unlocked_key(&u.session).is_some(),
        })),
        "session": { "id": u.session.id, "csrf_token": u.session.csrf_token },
    })))
}

async fn my_sessions(State(app): State<App>, u: ApiUser) -> Result<Json<Value>, ApiError> {
    let list = app.vault.sessions_of(u.session.user_id).await?;
    Ok(Json(json!(list
        .iter()
        .map(|s| json!({
            "id": s.id,
            "current": s.id == u.session.id,
            "client_addr": s.client_addr,
            "user_agent": s.user_agent,
            "created_at": s.created_at.to_string(),
            "last_seen_at": s.last_seen_at.to_string(),
        }))
        .collect::<Vec<_>>())))
}

async fn revoke_session(
    State(app): State<App>,
    u: ApiUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    app.vault
        .revoke_session(u.session.user_id, id, &u.visitor.actor())
        .await
        .map_err(|e| match e {
            porchlight_vault::AuthError::Invalid(_) => WebError::NotFound,
            e => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct AuditQ {
    before: Option<i64>,
    limit: Option<i64>,
}

async fn audit(
    State(app): State<App>,
    u: ApiUser,
    Query(q): Query<AuditQ>,
) -> Result<Json<Value>, ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let entries = app.vault.store().audit_entries(q.before, limit).await?;
    Ok(Json(json!({ "entries": entries })))
}
