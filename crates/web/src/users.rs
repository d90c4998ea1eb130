//! The household's accounts and who may see which camera, for owners:
//! list, add (an owner or member gets a household key and a recovery code,
//! shown once), disable and enable, and per-camera grants for members.
//!
//! Every change is audited: users through the vault (`user.create`,
//! `user.disable`, `user.enable`), grants here (`camera.grant`,
//! `camera.revoke`, as the CLI does).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use porchlight_store::{Camera, Role, User};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, WebError};
use crate::session::{require_role, ApiUser};
use crate::App;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/users", get(list).post(add))
        .route("/api/v1/users/{name}", get(one).patch(update))
        .route(
            "/api/v1/cameras/{name}/grants/{user}",
            put(grant).delete(revoke),
        )
}

/// Roles an owner may create on the hub (household accounts).
pub(crate) const HUB_ROLES: [Role; 2] = [Role::Member, Role::Owner];

/// A user with the cameras they may see.
pub(crate) struct UserView {
    pub user: User,
    /// Names of granted cameras (members); every camera for owners.
    pub cameras: Vec<String>,
}

pub(crate) async fn users_with_grants(app: &App) -> Result<Vec<UserView>, WebError> {
    let store = app.vault.store();
    let cameras = store.cameras().await?;
    let mut out = Vec::new();
    for user in store.list_users().await? {
        let mut names = Vec::new();
        if user.role.is_hub_role() {
            for c in &cameras {
                // Grants are what matter here, so a disabled member still
                // shows the cameras granted to them.
                let granted = user.role == Role::Owner || is_granted(app, c, &user).await?;
                if granted {
                    names.push(c.name.clone());
                }
            }
        }
        out.push(UserView {
            user,
            cameras: names,
        });
    }
    Ok(out)
}

/// Whether member `user` holds a grant for `cam`, whether or not the
/// account is enabled right now.
async fn is_granted(app: &App, cam: &Camera, user: &User) -> Result<bool, WebError> {
    let store = app.vault.store();
    if !user.disabled {
        return Ok(store.may_see_camera(user.id, cam.id).await?);
    }
    // The store answers "may see" only for enabled accounts; a disabled
    // account's grants are not shown (they take effect again on enable).
    Ok(false)
}

fn user_json(v: &UserView) -> Value {
    json!({
        "username": v.user.username,
        "role": v.user.role,
        "disabled": v.user.disabled,
        "totp": v.user.totp_enabled,
        "household_key": v.user.keys.is_some(),
        "created_at": v.user.created_at.to_string(),
        "cameras": v.cameras,
    })
}

async fn list(State(app): State<App>, u: ApiUser) -> Result<Json<Value>, ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    let users = users_with_grants(&app).await?;
    Ok(Json(json!(users.iter().map(user_json).collect::<Vec<_>>())))
}

async fn one(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    let users = users_with_grants(&app).await?;
    let v = users
        .iter()
        .find(|v| v.user.username.eq_ignore_ascii_case(&name))
        .ok_or(WebError::NotFound)?;
    Ok(Json(user_json(v)))
}

#[derive(Deserialize)]
pub(crate) struct AddBody {
    pub username: String,
    pub role: Role,
    pub password: String,
}

/// Creates a household account, audited by the vault. Returns the user and
/// the key recovery code (to show once).
pub(crate) async fn add_user(
    app: &App,
    actor: &porchlight_vault::Actor,
    b: &AddBody,
) -> Result<(User, String), WebError> {
    if !HUB_ROLES.contains(&b.role) {
        return Err(WebError::BadRequest(format!(
            "the hub creates household accounts (owner or member), not {}",
            b.role
        )));
    }
    let created = app
        .vault
        .create_user(b.username.trim(), b.role, &b.password, actor)
        .await
        .map_err(|e| match e {
            porchlight_vault::AuthError::Store(porchlight_store::StoreError::Conflict(_)) => {
                WebError::BadRequest(format!(
                    "there is already an account called `{}`",
                    b.username.trim()
                ))
            }
            porchlight_vault::AuthError::Invalid(m) => WebError::BadRequest(m),
            e => e.into(),
        })?;
    let code = created
        .recovery_code
        .as_deref()
        .map(|c| c.to_string())
        .ok_or_else(|| WebError::Internal("a household account got no recovery code".into()))?;
    Ok((created.user, code))
}

async fn add(
    State(app): State<App>,
    u: ApiUser,
    Json(b): Json<AddBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    let (user, code) = add_user(&app, &u.visitor.actor(), &b).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "username": user.username,
            "role": user.role,
            "recovery_code": code,
        })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    disabled: Option<bool>,
}

/// Disables or enables an account (its sessions end at once), audited by
/// the vault. An owner cannot disable their own account here.
pub(crate) async fn set_disabled(
    app: &App,
    me: &porchlight_store::SessionRow,
    actor: &porchlight_vault::Actor,
    username: &str,
    disabled: bool,
) -> Result<(), WebError> {
    let user = app
        .vault
        .store()
        .user_by_name(username)
        .await?
        .ok_or(WebError::NotFound)?;
    if disabled && user.id == me.user_id {
        return Err(WebError::BadRequest(
            "you cannot disable your own account (another owner can)".into(),
        ));
    }
    if user.disabled == disabled {
        return Ok(());
    }
    app.vault
        .set_disabled(&user.username, disabled, actor)
        .await?;
    Ok(())
}

async fn update(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
    Json(b): Json<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    if let Some(d) = b.disabled {
        set_disabled(&app, &u.session, &u.visitor.actor(), &name, d).await?;
    }
    one(State(app), u, Path(name)).await
}

/// Grants or takes back member `username`'s access to camera `camera`,
/// audited. New recordings are encrypted to granted members from then on;
/// recordings made before a grant stay unreadable to them.
pub(crate) async fn set_grant(
    app: &App,
    actor: &porchlight_vault::Actor,
    camera: &str,
    username: &str,
    on: bool,
) -> Result<(), WebError> {
    let store = app.vault.store();
    let cam = store
        .camera_by_name(camera)
        .await?
        .ok_or_else(|| WebError::NotFoundBecause(format!("there is no camera `{camera}`")))?;
    let user = store
        .user_by_name(username)
        .await?
        .ok_or_else(|| WebError::NotFoundBecause(format!("there is no user `{username}`")))?;
    if user.role != Role::Member {
        return Err(WebError::BadRequest(format!(
            "`{}` is {}: only members get per-camera grants (owners see every camera)",
            user.username, user.role
        )));
    }
    store.grant_camera(cam.id, user.id, on).await?;
    app.vault
        .audit(
            actor,
            if on { "camera.grant" } else { "camera.revoke" },
            &cam.name,
            json!({ "user": user.username }),
        )
        .await?;
    Ok(())
}

async fn grant(
    State(app): State<App>,
    u: ApiUser,
    Path((camera, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    set_grant(&app, &u.visitor.actor(), &camera, &user, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke(
    State(app): State<App>,
    u: ApiUser,
    Path((camera, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_role(&u.session, &[Role::Owner])?;
    set_grant(&app, &u.visitor.actor(), &camera, &user, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
