//! First-run owner set-up, sign-in, the second-factor step, sign-out.

use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use porchlight_store::SessionStage;
use porchlight_vault::accounts::SignedIn;
use serde::Deserialize;

use super::layout::{bare, csrf_field};
use crate::error::{PageError, WebError};
use crate::session::{
    clear_session_cookie, cookie, presented_token, session_cookie, Visitor, CSRF_COOKIE,
};
use crate::App;

/// The pre-sign-in CSRF token: the visitor's `pl_csrf` cookie, or a new one
/// with the `Set-Cookie` to send.
fn presession_csrf(headers: &HeaderMap, secure: bool) -> (String, Option<String>) {
    match cookie(headers, CSRF_COOKIE).filter(|c| c.len() >= 20) {
        Some(c) => (c, None),
        None => {
            let t = porchlight_base::secret::url_token(24);
            let set = format!(
                "{CSRF_COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict{}",
                if secure { "; Secure" } else { "" }
            );
            (t, Some(set))
        }
    }
}

fn with_cookie(status: StatusCode, set: Option<String>, body: Markup) -> Response {
    let mut r = (status, body).into_response();
    if let Some(c) = set {
        r.headers_mut()
            .append(header::SET_COOKIE, c.parse().expect("cookie header"));
    }
    r
}

fn signed_in_response(app: &App, v: &Visitor, s: &SignedIn, to: &str) -> Response {
    let max_age = app.vault.policy().session_max.as_secs();
    let mut r = Redirect::to(to).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session_cookie(&s.token, v.secure, max_age)
            .parse()
            .expect("cookie header"),
    );
    r
}

fn next_step(stage: SessionStage) -> &'static str {
    match stage {
        SessionStage::Totp => "/signin/code",
        SessionStage::Enroll => "/account/two-factor",
        SessionStage::Full => "/",
    }
}

// ---- first run --------------------------------------------------------

fn setup_page(csrf: &str, error: Option<&str>, username: &str) -> Markup {
    bare(
        "Welcome",
        html! {
            h1 { "Welcome to Porchlight" }
            p { "This hub has no owner yet. Create the owner account: it sees every camera, adds household members and reads the audit log." }
            p.muted { "Your video stays on this hub, encrypted to keys that only your household holds. Your password unlocks your key, so choose a long one you will remember." }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/setup" {
                (csrf_field(csrf))
                label { "Username" input name="username" value=(username) autocomplete="username" required autofocus; }
                label { "Password (at least 10 characters)" input type="password" name="password" autocomplete="new-password" minlength="10" required; }
                label { "Password again" input type="password" name="confirm" autocomplete="new-password" minlength="10" required; }
                button type="submit" { "Create owner" }
            }
        },
    )
}

pub(super) async fn setup_form(
    State(app): State<App>,
    v: Visitor,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if app.vault.store().count_users().await? > 0 {
        return Ok(Redirect::to("/signin").into_response());
    }
    let (csrf, set) = presession_csrf(&headers, v.secure);
    Ok(with_cookie(
        StatusCode::OK,
        set,
        setup_page(&csrf, None, ""),
    ))
}

#[derive(Deserialize)]
pub(super) struct SetupForm {
    username: String,
    password: String,
    confirm: String,
}

pub(super) async fn setup(
    State(app): State<App>,
    v: Visitor,
    headers: HeaderMap,
    Form(f): Form<SetupForm>,
) -> Result<Response, PageError> {
    let (csrf, _) = presession_csrf(&headers, v.secure);
    let again = |msg: &str| {
        with_cookie(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            setup_page(&csrf, Some(msg), &f.username),
        )
    };
    if f.password != f.confirm {
        return Ok(again("The two passwords differ."));
    }
    let created = match app
        .vault
        .create_first_owner(f.username.trim(), &f.password, &v.client)
        .await
    {
        Ok(c) => c,
        Err(porchlight_vault::AuthError::Invalid(m)) => return Ok(again(&m)),
        Err(e) => return Err(e.into()),
    };
    let signed = app
        .vault
        .sign_in(
            &created.user.username,
            &f.password,
            &v.client,
            &v.user_agent,
        )
        .await?;
    let code = created
        .recovery_code
        .as_deref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    let body = bare(
        "Your recovery code",
        html! {
            h1 { "Write down your recovery code" }
            p { "If you ever forget your password, this code is the only way back to your recordings. Porchlight shows it only now and cannot show it again." }
            p.secret data-testid="recovery-code" { (code) }
            p.muted { "Keep it on paper, somewhere safe at home. To use it: " code { "porchlight keys recover " (created.user.username) } }
            p { a.button href=(next_step(signed.session.stage)) { "I have written it down — continue" } }
        },
    );
    let max_age = app.vault.policy().session_max.as_secs();
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session_cookie(&signed.token, v.secure, max_age)
            .parse()
            .expect("cookie header"),
    );
    Ok(r)
}

// ---- sign-in ------------------------------------------------------------

fn signin_page(csrf: &str, error: Option<&str>, username: &str) -> Markup {
    bare(
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/signin" {
                (csrf_field(csrf))
                label { "Username" input name="username" value=(username) autocomplete="username" required autofocus; }
                label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub(super) async fn signin_form(
    State(app): State<App>,
    v: Visitor,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if app.vault.store().count_users().await? == 0 {
        return Ok(Redirect::to("/setup").into_response());
    }
    if let Some(s) = &v.session {
        return Ok(Redirect::to(next_step(s.stage)).into_response());
    }
    let (csrf, set) = presession_csrf(&headers, v.secure);
    Ok(with_cookie(
        StatusCode::OK,
        set,
        signin_page(&csrf, None, ""),
    ))
}

#[derive(Deserialize)]
pub(super) struct SigninForm {
    username: String,
    password: String,
}

pub(super) async fn signin(
    State(app): State<App>,
    v: Visitor,
    headers: HeaderMap,
    Form(f): Form<SigninForm>,
) -> Result<Response, PageError> {
    match app
        .vault
        .sign_in(f.username.trim(), &f.password, &v.client, &v.user_agent)
        .await
    {
        Ok(s) => Ok(signed_in_response(&app, &v, &s, next_step(s.session.stage))),
        Err(e) => {
            let err = WebError::from(e);
            if err.status().is_server_error() {
                return Err(err.into());
            }
            // Re-render with the same pre-session token the guard accepted.
            let (csrf, set) = presession_csrf(&headers, v.secure);
            let mut r = with_cookie(
                err.status(),
                set,
                signin_page(&csrf, Some(&err.to_string()), &f.username),
            );
            if let WebError::Auth(porchlight_vault::AuthError::Locked { retry_after, .. }) = &err {
                r.headers_mut()
                    .insert("retry-after", retry_after.as_secs().into());
            }
            Ok(r)
        }
    }
}

fn code_page(csrf: &str, error: Option<&str>) -> Markup {
    bare(
        "Two-factor code",
        html! {
            h1 { "Enter your code" }
            p { "Open your authenticator app and enter the 6-digit code for Porchlight. Lost your phone? Enter one of your recovery codes instead." }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/signin/code" {
                (csrf_field(csrf))
                label { "Code" input name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus; }
                button type="submit" { "Continue" }
            }
            form method="post" action="/signout" {
                (csrf_field(csrf))
                button.link type="submit" { "Cancel" }
            }
        },
    )
}

pub(super) async fn code_form(v: Visitor) -> Response {
    match &v.session {
        Some(s) if s.stage == SessionStage::Totp => code_page(&s.csrf_token, None).into_response(),
        Some(s) => Redirect::to(next_step(s.stage)).into_response(),
        None => Redirect::to("/signin").into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    code: String,
}

pub(super) async fn code(
    State(app): State<App>,
    v: Visitor,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Result<Response, PageError> {
    let Some(s) = v.session.as_ref().filter(|s| s.stage == SessionStage::Totp) else {
        return Ok(Redirect::to("/signin").into_response());
    };
    let token = presented_token(&headers).0.unwrap_or_default();
    match app.vault.second_factor(s, &token, &f.code, &v.client).await {
        Ok(s) => Ok(Redirect::to(next_step(s.stage)).into_response()),
        Err(e) => {
            let err = WebError::from(e);
            if err.status().is_server_error() {
                return Err(err.into());
            }
            if matches!(
                err,
                WebError::Auth(porchlight_vault::AuthError::SignInExpired)
            ) {
                return Ok(Redirect::to("/signin").into_response());
            }
            let mut r = (
                err.status(),
                code_page(&s.csrf_token, Some(&err.to_string())),
            )
                .into_response();
            if let WebError::Auth(porchlight_vault::AuthError::Locked { retry_after, .. }) = &err {
                r.headers_mut()
                    .insert("retry-after", retry_after.as_secs().into());
            }
            Ok(r)
        }
    }
}

pub(super) async fn signout(State(app): State<App>, v: Visitor) -> Result<Response, PageError> {
    if let Some(s) = &v.session {
        app.vault.sign_out(s).await?;
    }
    let mut r = Redirect::to("/signin").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        clear_session_cookie(v.secure)
            .parse()
            .expect("cookie header"),
    );
    Ok(r)
}
