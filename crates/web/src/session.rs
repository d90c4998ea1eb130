//! Who is asking: resolves the session cookie or bearer token once per
//! request, and the extractors handlers use to demand a signed-in user.

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use porchlight_config::SecureCookies;
use porchlight_store::{Role, SessionRow, SessionStage};

use crate::error::{ApiError, PageError, WebError};
use crate::App;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "pl_session";
/// Name of the pre-sign-in CSRF cookie.
pub const CSRF_COOKIE: &str = "pl_csrf";

/// What the hub knows about the requester. Inserted by [`resolve`].
#[derive(Debug, Clone)]
pub struct Visitor {
    pub session: Option<SessionRow>,
    /// SHA-256 of the session's token (with `session`): what a long-lived
    /// stream keeps to re-check the session ([`porchlight_vault::Vault::authenticate_hash`]).
    pub token_hash: Option<[u8; 32]>,
    /// Authenticated by `Authorization: Bearer` rather than a cookie.
    pub via_bearer: bool,
    /// The client's address (the proxy's view when trusted).
    pub client: String,
    /// Cookies should carry `Secure`.
    pub secure: bool,
    pub user_agent: String,
}

impl Visitor {
    pub fn actor(&self) -> porchlight_vault::Actor {
        porchlight_vault::Actor {
            name: self
                .session
                .as_ref()
                .map(|s| s.username.clone())
                .unwrap_or_else(|| "anonymous".into()),
            client: self.client.clone(),
        }
    }
}

/// The value of cookie `name`, if sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn client_addr(app: &App, req: &Request) -> String {
    if app.config.web.trust_forwarded_headers {
        if let Some(xff) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            // The proxy appends the address it saw last.
            if let Some(last) = xff
                .rsplit(',')
                .next()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                return last.to_owned();
            }
        }
    }
    req.extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn is_secure(app: &App, req: &Request) -> bool {
    // Served over the hub's own TLS (porchlight-remote): always Secure.
    if req
        .extensions()
        .get::<porchlight_remote::OverTls>()
        .is_some()
    {
        return true;
    }
    match app.config.web.secure_cookies {
        SecureCookies::Always => true,
        SecureCookies::Never => false,
        SecureCookies::Auto => {
            app.config
                .web
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
                || (app.config.web.trust_forwarded_headers
                    && req
                        .headers()
                        .get("x-forwarded-proto")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|p| p.eq_ignore_ascii_case("https")))
        }
    }
}

/// The session token the request presents (bearer first, else the
/// cookie), and whether it came as a bearer token. The hub keeps only its
/// hash; the second-factor step needs the token itself.
pub fn presented_token(headers: &HeaderMap) -> (Option<String>, bool) {
    match bearer(headers) {
        Some(t) => (Some(t), true),
        None => (cookie(headers, SESSION_COOKIE), false),
    }
}

/// Middleware: resolves the requester into a [`Visitor`] extension.
pub async fn resolve(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let (token, via_bearer) = presented_token(req.headers());
    let (session, token_hash) = match token {
        None => (None, None),
        Some(t) => match app.vault.authenticate(&t).await {
            Ok(Some(a)) => (
                Some(a.session),
                Some(porchlight_vault::accounts::token_hash(&t)),
            ),
            Ok(None) => (None, None),
            Err(e) => return PageError(e.into()).into_response(),
        },
    };
    let visitor = Visitor {
        session,
        token_hash,
        via_bearer,
        client: client_addr(&app, &req),
        secure: is_secure(&app, &req),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    };
    req.extensions_mut().insert(visitor);
    next.run(req).await
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = PageError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Visitor>()
            .cloned()
            .ok_or_else(|| PageError(WebError::Internal("session middleware missing".into())))
    }
}

/// A fully signed-in user, for pages: anyone else is sent where they need
/// to go next (sign in, enter the code, set up two-factor).
pub struct PageUser {
    pub session: SessionRow,
    pub visitor: Visitor,
}

pub enum PageRedirect {
    To(&'static str),
    Error(PageError),
}

impl IntoResponse for PageRedirect {
    fn into_response(self) -> Response {
        match self {
            PageRedirect::To(p) => Redirect::to(p).into_response(),
            PageRedirect::Error(e) => e.into_response(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageUser {
    type Rejection = PageRedirect;
    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, Self::Rejection> {
        let visitor = Visitor::from_request_parts(parts, s)
            .await
            .map_err(PageRedirect::Error)?;
        match &visitor.session {
            None => Err(PageRedirect::To("/signin")),
            Some(sess) => match sess.stage {
                SessionStage::Totp => Err(PageRedirect::To("/signin/code")),
                SessionStage::Enroll => Err(PageRedirect::To("/account/two-factor")),
                SessionStage::Full => Ok(PageUser {
                    session: sess.clone(),
                    visitor,
                }),
            },
        }
    }
}

/// A fully signed-in user, for the JSON API: anyone else gets 401.
pub struct ApiUser {
    pub session: SessionRow,
    pub visitor: Visitor,
}

impl<S: Send + Sync> FromRequestParts<S> for ApiUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, Self::Rejection> {
        let visitor = Visitor::from_request_parts(parts, s)
            .await
            .map_err(|e| ApiError(e.0))?;
        match &visitor.session {
            Some(sess) if sess.stage == SessionStage::Full => Ok(ApiUser {
                session: sess.clone(),
                visitor,
            }),
            Some(sess) if sess.stage == SessionStage::Enroll => Err(ApiError(WebError::Forbidden(
                "set up two-factor sign-in first (owners must)".into(),
            ))),
            _ => Err(ApiError(WebError::NotSignedIn)),
        }
    }
}

/// Refuses everyone but the given roles — the one place pages and API
/// check roles.
pub fn require_role(session: &SessionRow, roles: &[Role]) -> Result<(), WebError> {
    if roles.contains(&session.role) {
        Ok(())
    } else {
        Err(WebError::Forbidden(format!(
            "a {} account cannot do this",
            session.role
        )))
    }
}

/// A `Set-Cookie` value for the session token.
pub fn session_cookie(token: &str, secure: bool, max_age_secs: u64) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// A `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie(secure: bool) -> String {
    session_cookie("", secure, 0)
}
