//! Sign-in and sign-out pages. Before sign-in there is no session, so the
//! form is protected by double submit: a random `nb_csrf` cookie (HttpOnly,
//! SameSite=Strict) that the form must echo.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::{
    bare, clear_cookie, cookie, is_https, origin_ok, same, see_other, session_cookie, Form,
    PageError, CSRF_COOKIE, SESSION_COOKIE,
};
use crate::{Error, Neighborhood};

fn form(csrf: &str, username: &str, error: Option<&str>) -> Markup {
    bare(
        "Sign in",
        html! {
            h1 { "Sign in to your neighborhood" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/signin" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Username" input name="username" autocomplete="username" required value=(username); }
                label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                label { "Authenticator code (if you set one up)"
                    input name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*"; }
                button type="submit" { "Sign in" }
            }
            p.muted { "This neighborhood server never receives your precise location, and agencies here cannot ask you for footage." }
        },
    )
}

fn csrf_cookie_value(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, CSRF_COOKIE) {
        Some(v)
            if v.len() >= 16
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            (v, None)
        }
        _ => {
            let v = porchlight_base::secret::url_token(18);
            let set = HeaderValue::from_str(&format!(
                "{CSRF_COOKIE}={v}; Path=/; HttpOnly; SameSite=Strict"
            ))
            .ok();
            (v, set)
        }
    }
}

fn with_cookie(mut r: Response, set: Option<HeaderValue>) -> Response {
    if let Some(v) = set {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `GET /signin`.
pub async fn signin_page(headers: HeaderMap) -> Response {
    let (csrf, set) = csrf_cookie_value(&headers);
    with_cookie(form(&csrf, "", None).into_response(), set)
}

/// `POST /signin`: double-submit check, then [`Neighborhood::login`].
pub async fn signin(State(n): State<Neighborhood>, req: Request) -> Response {
    let headers = req.headers().clone();
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), 16 * 1024).await else {
        return PageError::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.")
            .into_response();
    };
    let fields: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let expected = cookie(&headers, CSRF_COOKIE);
    if !origin_ok(&headers) || !expected.as_deref().is_some_and(|e| same(e, get("csrf"))) {
        return PageError::csrf().into_response();
    }
    let (csrf, set) = csrf_cookie_value(&headers);
    let username = get("username").trim();
    let totp = Some(get("totp").trim()).filter(|t| !t.is_empty());
    match n.login(username, get("password"), totp).await {
        Ok(token) => {
            let mut r = see_other("/feed");
            r.headers_mut().append(
                header::SET_COOKIE,
                session_cookie(&token, is_https(&headers)),
            );
            r
        }
        Err(Error::Db(e)) => PageError::from(Error::Db(e)).into_response(),
        Err(e) => {
            let status = match &e {
                Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                Error::Forbidden(_) => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            let msg = super::capitalise(&e.to_string());
            with_cookie(
                (status, form(&csrf, username, Some(&msg))).into_response(),
                set,
            )
        }
    }
}

/// `POST /signout`: ends the session and clears the cookie.
pub async fn signout(State(n): State<Neighborhood>, f: Form) -> Response {
    if let Err(e) = n.logout(&f.s.token).await {
        return PageError::from(e).into_response();
    }
    let mut r = see_other("/signin");
    r.headers_mut()
        .append(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
    r
}
