//! The signed-in user's own account: two-factor set-up, password, the
//! list of their sessions with revoke, and their RTSP tokens (`rtsp.rs`).

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use maud::{html, Markup};
use porchlight_store::{SessionRow, SessionStage};
use serde::Deserialize;

use super::layout::{bare, csrf_field, page, when};
use crate::error::{PageError, WebError};
use crate::session::{PageUser, Visitor};
use crate::App;

/// The QR code of an `otpauth://` URI as an SVG data URI (an `<img>`, so the
/// CSP needs no inline anything).
fn qr_data_uri(uri: &str) -> Result<String, WebError> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| WebError::Internal(format!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

/// Enrol and Full sessions may set up two-factor sign-in.
fn enrolling_session(v: &Visitor) -> Option<&SessionRow> {
    v.session
        .as_ref()
        .filter(|s| matches!(s.stage, SessionStage::Enroll | SessionStage::Full))
}

fn frame(s: &SessionRow, title: &str, body: Markup) -> Markup {
    if s.stage == SessionStage::Full {
        page(title, s, body)
    } else {
        bare(title, body)
    }
}

pub(super) async fn two_factor_form(
    State(app): State<App>,
    v: Visitor,
) -> Result<Response, PageError> {
    let Some(s) = enrolling_session(&v) else {
        return Ok(Redirect::to("/signin").into_response());
    };
    let user = app
        .vault
        .store()
        .user_by_id(s.user_id)
        .await?
        .ok_or(WebError::NotSignedIn)?;
    if user.totp_enabled {
        let left = app.vault.store().recovery_codes_left(user.id).await?;
        return Ok(frame(
            s,
            "Two-factor sign-in",
            html! {
                h1 { "Two-factor sign-in is on" }
                p { "You have " (left) " unused recovery codes." }
                p { a href="/account" { "Back to your account" } }
            },
        )
        .into_response());
    }
    let e = app.vault.begin_totp(s).await?;
    let qr = qr_data_uri(&e.otpauth_uri)?;
    Ok(frame(
        s,
        "Set up two-factor sign-in",
        html! {
            h1 { "Set up two-factor sign-in" }
            @if s.stage == SessionStage::Enroll {
                p.notice { "Owners must turn on two-factor sign-in before using the hub: a stolen password alone must never open your home's cameras." }
            }
            ol.steps {
                li { "Open an authenticator app on your phone (any app that supports TOTP codes)." }
                li { "Scan this code, or type the key below." }
            }
            img.qr src=(qr) alt="QR code for your authenticator app" width="220" height="220";
            p.muted { "Or type this key into the app:" }
            p.secret data-testid="totp-secret" { (e.secret_base32) }
            form method="post" action="/account/two-factor" {
                (csrf_field(&s.csrf_token))
                label { "Then enter the 6-digit code the app shows" input name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus; }
                button type="submit" { "Turn on" }
            }
        },
    )
    .into_response())
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    code: String,
}

pub(super) async fn two_factor(
    State(app): State<App>,
    v: Visitor,
    Form(f): Form<CodeForm>,
) -> Result<Response, PageError> {
    let Some(s) = enrolling_session(&v) else {
        return Ok(Redirect::to("/signin").into_response());
    };
    match app.vault.confirm_totp(s, &f.code).await {
        Ok(codes) => {
            let s = app
                .vault
                .store()
                .session_by_id(s.id)
                .await?
                .ok_or(WebError::NotSignedIn)?;
            Ok(page(
                "Recovery codes",
                &s,
                html! {
                    h1 { "Two-factor sign-in is on" }
                    p { "If you lose your phone, each of these codes signs you in once in place of a code from the app. Print them or write them down now: they are not shown again." }
                    ul.codes data-testid="recovery-codes" { @for c in &codes { li { code { (c) } } } }
                    p { a.button href="/" { "Done" } }
                },
            )
            .into_response())
        }
        Err(e) => {
            let err = WebError::from(e);
            if err.status().is_server_error() {
                return Err(err.into());
            }
            Ok((
                err.status(),
                frame(
                    s,
                    "Set up two-factor sign-in",
                    html! {
                        h1 { "That code did not work" }
                        p.error role="alert" { (err.to_string()) }
                        p { "Check that your phone's clock is right, then " a href="/account/two-factor" { "start again" } "." }
                    },
                ),
            )
                .into_response())
        }
    }
}

pub(super) async fn account(State(app): State<App>, u: PageUser) -> Result<Response, PageError> {
    let s = &u.session;
    let user = app
        .vault
        .store()
        .user_by_id(s.user_id)
        .await?
        .ok_or(WebError::NotSignedIn)?;
    let sessions = app.vault.sessions_of(s.user_id).await?;
    let key = app.vault.unlocked_key(s).is_some();
    let rtsp = super::rtsp::section(&app, s).await?;
    Ok(page(
        "Account",
        s,
        html! {
            h1 { "Your account" }
            dl.facts {
                dt { "Username" } dd { (user.username) }
                dt { "Role" } dd { (user.role) }
                dt { "Two-factor sign-in" } dd {
                    @if user.totp_enabled { "On" } @else { "Off — " a href="/account/two-factor" { "turn it on" } }
                }
                @if user.keys.is_some() {
                    dt { "Household key" } dd {
                        @if key { "Unlocked for this session" } @else { "Locked (sign in again to unlock)" }
                    }
                }
            }
            h2 { "Where you are signed in" }
            table.list {
                thead { tr { th { "Device" } th { "Address" } th { "Signed in" } th { "Last active" } th {} } }
                tbody {
                    @for x in &sessions {
                        tr {
                            td { (if x.user_agent.is_empty() { "unknown" } else { &x.user_agent }) }
                            td { (x.client_addr) }
                            td { (when(x.created_at)) }
                            td { (when(x.last_seen_at)) }
                            td {
                                @if x.id == s.id { "this device" } @else {
                                    form.inline method="post" action={ "/account/sessions/" (x.id) "/revoke" } {
                                        (csrf_field(&s.csrf_token))
                                        button.danger type="submit" { "Sign out" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (rtsp)
            h2 { "Change password" }
            p.muted { "Your household key is re-wrapped with the new password; your recordings stay readable. Every session ends, this one too: sign in again with the new password." }
            form method="post" action="/account/password" {
                (csrf_field(&s.csrf_token))
                label { "Current password" input type="password" name="current" autocomplete="current-password" required; }
                label { "New password" input type="password" name="new" autocomplete="new-password" minlength="10" required; }
                @if user.totp_enabled {
                    label { "Code from your authenticator app (or a recovery code)" input name="code" inputmode="numeric" autocomplete="one-time-code" required; }
                }
                button type="submit" { "Change password" }
            }
        },
    )
    .into_response())
}

pub(super) async fn revoke(
    State(app): State<App>,
    u: PageUser,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    app.vault
        .revoke_session(u.session.user_id, id, &u.visitor.actor())
        .await?;
    Ok(Redirect::to("/account").into_response())
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    current: String,
    new: String,
    /// A current TOTP or recovery code: required when the account has
    /// two-factor sign-in.
    code: Option<String>,
}

/// Throttled like a sign-in (account and address), and with two-factor
/// sign-in only with a current code: see `Vault::change_own_password`.
pub(super) async fn password(
    State(app): State<App>,
    u: PageUser,
    Form(f): Form<PasswordForm>,
) -> Result<Response, PageError> {
    use porchlight_vault::AuthError;
    app.vault
        .change_own_password(
            &u.session,
            &f.current,
            &f.new,
            f.code.as_deref(),
            &u.visitor.client,
        )
        .await
        .map_err(|e| match e {
            AuthError::BadCredentials => WebError::BadRequest(
                "the current password is not right; nothing was changed".into(),
            ),
            AuthError::BadSecondFactor => WebError::BadRequest(format!(
                "{}; nothing was changed",
                AuthError::BadSecondFactor
            )),
            e => e.into(),
        })?;
    // Every session of the user ended, this one included: sign in afresh.
    Ok((StatusCode::SEE_OTHER, [("location", "/signin")]).into_response())
}
