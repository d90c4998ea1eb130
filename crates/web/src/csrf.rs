//! Cross-site request forgery protection for every state-changing request.
//!
//! Enforced here, in one middleware, rather than in each handler, so a new
//! form cannot forget it. A request with a method other than GET, HEAD or
//! OPTIONS passes only if:
//!
//! * it is authenticated by `Authorization: Bearer` (a browser never adds
//!   that header by itself, so there is nothing to forge), or
//! * its `Origin` header, when present, is this site's own, **and** it
//!   carries the expected token in the `X-CSRF-Token` header or the `csrf`
//!   field of a URL-encoded form. (Exception: a JSON request with no
//!   session at all — an API client signing in — passes on the Origin
//!   check alone: there is no ambient credential to abuse, and browsers
//!   cannot send cross-site JSON without a CORS preflight we never grant.) The expected token is the session's own
//!   (random, per session) for signed-in users, or before sign-in the value
//!   of the `pl_csrf` cookie (double-submit).
//!
//! Cookies are also `SameSite=Strict`; this guard does not rely on that.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{PageError, WebError};
use crate::session::{cookie, Visitor, CSRF_COOKIE};
use crate::App;

/// Header for scripts.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Largest form body read to find the token.
const FORM_LIMIT: usize = 256 * 1024;

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn refuse(why: &str) -> Response {
    tracing::info!("refused a state-changing request: {why}");
    let mut r = PageError(WebError::Forbidden(
        "This request was refused because it did not come from a Porchlight page (missing or stale security token). Go back, reload the page and try again."
            .into(),
    ))
    .into_response();
    *r.status_mut() = StatusCode::FORBIDDEN;
    r
}

fn origin_ok(req: &Request) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true; // Non-browser clients and some same-origin navigations send none.
    };
    let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let bare = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    bare.eq_ignore_ascii_case(host)
}

/// Middleware; see the module docs.
pub async fn guard(State(_app): State<App>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let Some(visitor) = req.extensions().get::<Visitor>().cloned() else {
        return refuse("no visitor");
    };
    if visitor.via_bearer && visitor.session.is_some() {
        return next.run(req).await;
    }
    if !origin_ok(&req) {
        return refuse("cross-origin request");
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if visitor.session.is_none() && is_json {
        // No session, so no ambient authority to abuse; and a browser
        // cannot send cross-site JSON without a CORS preflight, which this
        // server never grants. This is how API clients sign in.
        return next.run(req).await;
    }
    let expected = match &visitor.session {
        Some(s) => Some(s.csrf_token.clone()),
        None => cookie(req.headers(), CSRF_COOKIE),
    };
    let Some(expected) = expected.filter(|e| !e.is_empty()) else {
        return refuse("no token to compare with");
    };
    if let Some(h) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return if same(h, &expected) {
            next.run(req).await
        } else {
            refuse("wrong header token")
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return refuse("no token header on a non-form request");
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, FORM_LIMIT).await {
        Ok(b) => b,
        Err(_) => return refuse("form too large"),
    };
    let token = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    match token {
        Some(t) if same(&t, &expected) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        _ => refuse("wrong or missing form token"),
    }
}
