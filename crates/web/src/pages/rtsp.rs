//! RTSP access on the account page: a signed-in owner or member creates a
//! token per device (VLC, Home Assistant…) with a label and, optionally,
//! the cameras it may show; the secret is shown once, on the page that
//! answers the creation; tokens are listed (never a secret) and revocable.
//! Every form is a POST, so the CSRF guard applies (`crate::csrf`). The
//! policy — who may, which cameras, hashing, audit — is the vault's
//! (`porchlight_vault::rtsp`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use porchlight_store::SessionRow;

use super::layout::{csrf_field, page, when};
use crate::error::{PageError, WebError};
use crate::session::PageUser;
use crate::App;

fn scope(cameras: Option<&[String]>) -> String {
    match cameras {
        None => "every camera you may see".into(),
        Some([]) => "none left (its cameras were removed)".into(),
        Some(c) => c.join(", "),
    }
}

/// The account page's "RTSP access" section (empty for accounts that see
/// no cameras).
pub(super) async fn section(app: &App, s: &SessionRow) -> Result<Markup, WebError> {
    if !s.role.is_hub_role() {
        return Ok(html! {});
    }
    let tokens = app.vault.rtsp_tokens(s.user_id).await?;
    let cameras = crate::access::visible_cameras(app, s).await?;
    Ok(html! {
        h2 #rtsp { "RTSP access (VLC, Home Assistant…)" }
        p.muted {
            "Media players and home automation watch cameras over RTSP with your user name and a token made for that device — never your password, which needs your second factor. "
            "A token is shown once; revoke it when the device is gone, and its streams stop within seconds."
        }
        @if tokens.is_empty() {
            p data-testid="rtsp-tokens-none" { "No RTSP tokens yet." }
        } @else {
            table.list data-testid="rtsp-tokens" {
                thead { tr { th { "Device" } th { "Cameras" } th { "Created" } th { "Last used" } th {} } }
                tbody {
                    @for t in &tokens {
                        tr {
                            td { (t.label) }
                            td { (scope(t.cameras.as_deref())) }
                            td { (when(t.created_at)) }
                            td { (t.last_used_at.map(when).unwrap_or_else(|| "never".into())) }
                            td {
                                form.inline method="post" action={ "/account/rtsp-tokens/" (t.id) "/revoke" } {
                                    (csrf_field(&s.csrf_token))
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action="/account/rtsp-tokens" {
            (csrf_field(&s.csrf_token))
            label { "Device" input name="label" maxlength="64" required placeholder="living-room TV"; }
            @if !cameras.is_empty() {
                fieldset {
                    legend { "Only these cameras (none ticked: every camera you may see)" }
                    @for c in &cameras {
                        label.check { input type="checkbox" name="camera" value=(c.name); (c.name) }
                    }
                }
            }
            button type="submit" { "Create RTSP token" }
        }
    })
}

/// `POST /account/rtsp-tokens`: creates a token and shows its secret once.
pub(super) async fn create(
    State(app): State<App>,
    u: PageUser,
    body: Bytes,
) -> Result<Response, PageError> {
    let mut label = String::new();
    let mut cameras = Vec::new();
    for (k, v) in form_urlencoded::parse(&body) {
        match &*k {
            "label" => label = v.into_owned(),
            "camera" => cameras.push(v.into_owned()),
            _ => {}
        }
    }
    let s = &u.session;
    let created = app
        .vault
        .create_rtsp_token(&s.username, &label, &cameras, &u.visitor.actor())
        .await
        .map_err(|e| match e {
            porchlight_vault::AuthError::Invalid(m) => WebError::BadRequest(m),
            e => e.into(),
        })?;
    let t = &created.token;
    Ok(page(
        "RTSP token",
        s,
        html! {
            h1 { "RTSP token for " (t.label) }
            p { "Cameras: " (scope(t.cameras.as_deref())) "." }
            p { "Give the device your user name and this token as the password. Copy it now: it is not shown again (the hub keeps only a hash)." }
            p.secret data-testid="rtsp-secret" { (created.secret.as_str()) }
            p.muted { "For example: " code { "rtsp://" (t.username) ":TOKEN@HUB:8554/CAMERA" } }
            p { a.button href="/account#rtsp" { "Done" } }
        },
    )
    .into_response())
}

/// `POST /account/rtsp-tokens/{id}/revoke`.
pub(super) async fn revoke(
    State(app): State<App>,
    u: PageUser,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    app.vault
        .revoke_rtsp_token(u.session.user_id, id, &u.visitor.actor())
        .await
        .map_err(|e| match e {
            porchlight_vault::AuthError::Invalid(m) => WebError::NotFoundBecause(m),
            e => e.into(),
        })?;
    Ok(Redirect::to("/account#rtsp").into_response())
}
