//! Server-rendered pages of the neighborhood: sign-in, feed, post, new
//! post, my area, notices and the moderation queue.
//!
//! The pages call the same service methods as the JSON API (all role checks
//! live there), so a page can never allow what the API refuses.
//!
//! Invariants:
//!
//! * **Session**: the bearer token from [`Neighborhood::login`] travels in
//!   the `nb_session` cookie — `HttpOnly`, `SameSite=Strict`, `Path=/`, and
//!   `Secure` when the sign-in came over HTTPS ([`is_https`]).
//! * **CSRF**: every POST carries a `csrf` form field. Signed in, it must
//!   equal [`csrf_for`] the session token (a keyed hash of the secret token:
//!   per session, unguessable without the cookie). Before sign-in it must
//!   equal the `nb_csrf` cookie (double submit). A request whose `Origin`
//!   is another site is refused as well. Checked in one place, the
//!   [`Form`] extractor (and [`check_csrf`] for the one multipart form).
//! * **Headers**: every page response carries a Content-Security-Policy
//!   without `unsafe-inline` (no inline script or style anywhere; the only
//!   scripts are `/nb-assets/area.js`, `/nb-assets/push.js` and `/sw.js`),
//!   `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and `nosniff`.
//! * **No third-party requests**: the stylesheet and scripts are served
//!   from this crate's `assets/`; maps are inline SVG drawings of H3 cells.
//! * **Web Push** (on "My area"): `/sw.js` shows notifications and caches
//!   nothing; `/nb-assets/push.js` subscribes the browser with this
//!   server's key and posts the subscription to `/push/subscribe` as a
//!   form with the CSRF token; the categories are a plain form.
//! * **Coarse location**: see [`area`] — the browser never sends more than
//!   a point rounded to one decimal degree, and picks its resolution-8 cell
//!   locally.

mod area;
mod auth;
mod feed;
mod moderation;
mod post;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use sha2::{Digest, Sha256};

use crate::accounts::{Role, Viewer};
use crate::{Error, Neighborhood};

/// Cookie holding the session's bearer token.
pub const SESSION_COOKIE: &str = "nb_session";
/// Cookie holding the pre-sign-in CSRF value (double submit).
pub const CSRF_COOKIE: &str = "nb_csrf";
/// The Content-Security-Policy of every page.
pub const CSP: &str = "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Body limit of the new-post form: four photos at the API's upload limit.
const NEW_POST_BODY_LIMIT: usize = 4 * crate::api::MAX_PHOTO_UPLOAD + 64 * 1024;

const STYLE: &str = include_str!("../../assets/neighborhood.css");
const AREA_JS: &str = include_str!("../../assets/area.js");
const PUSH_JS: &str = include_str!("../../assets/push.js");
const SERVICE_WORKER: &str = include_str!("../../assets/sw.js");

/// Every page route as `(method, path)`, for the authorization matrix
/// (kept in step with [`routes`] by a test).
pub const PAGE_ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/signin"),
    ("POST", "/signin"),
    ("POST", "/signout"),
    ("GET", "/feed"),
    ("GET", "/posts/new"),
    ("POST", "/posts/new"),
    ("GET", "/posts/{id}"),
    ("POST", "/posts/{id}/comments"),
    ("POST", "/posts/{id}/reactions"),
    ("POST", "/posts/{id}/reports"),
    ("POST", "/posts/{id}/delete"),
    ("GET", "/photos/{id}"),
    ("GET", "/area"),
    ("POST", "/area"),
    ("GET", "/area/candidates"),
    ("POST", "/area/notifications"),
    ("POST", "/push/subscribe"),
    ("POST", "/push/unsubscribe"),
    ("GET", "/notices"),
    ("POST", "/notices/{id}/appeal"),
    ("GET", "/moderation"),
    ("POST", "/moderation/{kind}/{id}/{action}"),
    ("GET", "/nb-assets/neighborhood.css"),
    ("GET", "/nb-assets/area.js"),
    ("GET", "/nb-assets/push.js"),
    ("GET", "/sw.js"),
];

/// The pages' routes.
pub fn routes() -> Router<Neighborhood> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/feed") }))
        .route("/signin", get(auth::signin_page).post(auth::signin))
        .route("/signout", post(auth::signout))
        .route("/feed", get(feed::feed))
        .route(
            "/posts/new",
            get(post::new_post_page)
                .post(post::create)
                .layer(DefaultBodyLimit::max(NEW_POST_BODY_LIMIT)),
        )
        .route("/posts/{id}", get(post::show))
        .route("/posts/{id}/comments", post(post::comment))
        .route("/posts/{id}/reactions", post(post::react))
        .route("/posts/{id}/reports", post(post::report))
        .route("/posts/{id}/delete", post(post::delete))
        .route("/photos/{id}", get(post::photo))
        .route("/area", get(area::page).post(area::save))
        .route("/area/candidates", get(area::candidates))
        .route("/area/notifications", post(area::save_notifications))
        .route("/push/subscribe", post(area::push_subscribe))
        .route("/push/unsubscribe", post(area::push_unsubscribe))
        .route("/notices", get(moderation::notices))
        .route("/notices/{id}/appeal", post(moderation::appeal))
        .route("/moderation", get(moderation::queue))
        .route("/moderation/{kind}/{id}/{action}", post(moderation::act))
        .route(
            "/nb-assets/neighborhood.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/nb-assets/area.js",
            get(|| async { asset("text/javascript; charset=utf-8", AREA_JS) }),
        )
        .route(
            "/nb-assets/push.js",
            get(|| async { asset("text/javascript; charset=utf-8", PUSH_JS) }),
        )
        // The service worker must sit at the root to get the root scope; it
        // is not cached long so a new version reaches browsers soon.
        .route(
            "/sw.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    SERVICE_WORKER,
                )
                    .into_response()
            }),
        )
        .layer(axum::middleware::map_response(security_headers))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

// ---------------------------------------------------------------------------
// Sessions and CSRF.
// ---------------------------------------------------------------------------

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
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session: a hash of the secret session token under
/// a fixed label, so it is per session and cannot be computed without the
/// `HttpOnly` cookie.
pub fn csrf_for(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"porchlight-neighborhood-csrf\0");
    h.update(session_token.as_bytes());
    hex::encode(&h.finalize()[..16])
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn origin_ok(headers: &HeaderMap) -> bool {
    // The browser's own word, where it gives it (all current browsers do).
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    // Pages are served with `Referrer-Policy: no-referrer`, under which
    // browsers send `Origin: null` on same-origin form posts: that says
    // nothing either way, so the CSRF token (always checked) decides.
    if origin == "null" {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let bare = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    bare.eq_ignore_ascii_case(host)
}

/// A signed-in page visitor.
pub struct Session {
    pub v: Viewer,
    pub token: String,
    pub csrf: String,
}

impl FromRequestParts<Neighborhood> for Session {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, n: &Neighborhood) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(Redirect::to("/signin").into_response());
        };
        match n.viewer_for_token(&token).await {
            Ok(v) => Ok(Session {
                csrf: csrf_for(&token),
                v,
                token,
            }),
            Err(Error::Db(e)) => Err(PageError::from(Error::Db(e)).into_response()),
            Err(_) => {
                let mut r = Redirect::to("/signin").into_response();
                r.headers_mut()
                    .insert(header::SET_COOKIE, clear_cookie(SESSION_COOKIE));
                Err(r)
            }
        }
    }
}

/// Whether the request reached us over HTTPS, as far as the browser tells:
/// its `Origin` is `https://…` (browsers send it on form POSTs) or a proxy
/// says `X-Forwarded-Proto: https`. A client can only use this to make its
/// own cookie stricter.
pub fn is_https(headers: &HeaderMap) -> bool {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    h("origin").starts_with("https://") || h("x-forwarded-proto").eq_ignore_ascii_case("https")
}

/// `Set-Cookie` for the session (`Secure` when served over HTTPS).
pub fn session_cookie(token: &str, secure: bool) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        crate::accounts::SESSION_MS / 1000,
        if secure { "; Secure" } else { "" }
    ))
    .unwrap_or_else(|_| clear_cookie(SESSION_COOKIE))
}

/// `Set-Cookie` that deletes cookie `name`.
pub fn clear_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0"))
}

/// Refuses a POST whose `csrf` field does not match the session's token.
pub fn check_csrf(s: &Session, headers: &HeaderMap, given: Option<&str>) -> Result<(), PageError> {
    if !origin_ok(headers) || !given.is_some_and(|g| same(g, &s.csrf)) {
        return Err(PageError::csrf());
    }
    Ok(())
}

/// URL-encoded form fields of a signed-in POST whose CSRF token was checked.
pub struct Form {
    pub s: Session,
    pub fields: Vec<(String, String)>,
}

impl Form {
    /// The first value of field `name`, trimmed of nothing.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// Field `name`, or "" when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }
}

/// Largest form body read.
const FORM_LIMIT: usize = 64 * 1024;

impl FromRequest<Neighborhood> for Form {
    type Rejection = Response;
    async fn from_request(req: Request, n: &Neighborhood) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let s = Session::from_request_parts(&mut parts, n).await?;
        let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
            PageError::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.").into_response()
        })?;
        let fields: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        let given = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str());
        check_csrf(&s, &parts.headers, given).map_err(IntoResponse::into_response)?;
        Ok(Form { s, fields })
    }
}

// ---------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------

/// An error shown as a page.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        PageError {
            status,
            message: message.into(),
        }
    }
    fn csrf() -> Self {
        PageError::new(
            StatusCode::FORBIDDEN,
            "This request was refused because it did not come from a page of this neighborhood \
             (missing or stale security token). Go back, reload the page and try again.",
        )
    }
}

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::Invalid(_) | Error::Revise { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) | Error::Kindness { .. } => StatusCode::CONFLICT,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Db(err) => {
                tracing::error!(error = %err, "neighborhood database error (page)");
                return PageError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on the server. Please try again.",
                );
            }
        };
        let message = match &e {
            Error::Revise { reasons, guidance } => format!("{} {guidance}", reasons.join(" ")),
            Error::Kindness { reminder } => reminder.clone(),
            other => capitalise(&other.to_string()),
        };
        PageError::new(status, message)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = bare(
            "Something is not right",
            html! {
                h1 { "Something is not right" }
                p.error role="alert" { (self.message) }
                p { a href="/feed" { "Back to the feed" } }
            },
        );
        (self.status, body).into_response()
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

pub type PageResult = Result<Response, PageError>;

// ---------------------------------------------------------------------------
// Layout.
// ---------------------------------------------------------------------------

fn head(title: &str, scripts: &[&str]) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · Neighborhood" }
        link rel="stylesheet" href="/nb-assets/neighborhood.css";
        @for src in scripts { script src=(src) defer {} }
    }
}

/// A page without navigation (sign-in, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title, &[])) }
            body {
                header.top { a.brand href="/feed" { span.logo {} "Neighborhood" } }
                main.narrow { (body) }
            }
        }
    }
}

/// Which navigation item is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Feed,
    NewPost,
    Area,
    Notices,
    Moderation,
    None,
}

/// A page for a signed-in user.
pub fn page(title: &str, s: &Session, nav: Nav, body: Markup) -> Markup {
    page_with(title, s, nav, &[], body)
}

/// [`page`] that loads `scripts` (paths under `/nb-assets/`).
pub fn page_with(title: &str, s: &Session, nav: Nav, scripts: &[&str], body: Markup) -> Markup {
    let item = |n: Nav, href: &str, label: &str| {
        html! { a href=(href) aria-current=[(nav == n).then_some("page")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title, scripts)) }
            body {
                header.top {
                    a.brand href="/feed" { span.logo {} "Neighborhood" }
                    nav aria-label="Main" {
                        (item(Nav::Feed, "/feed", "Feed"))
                        (item(Nav::NewPost, "/posts/new", "New post"))
                        (item(Nav::Area, "/area", if s.v.role == Role::Agency { "Service area" } else { "My area" }))
                        (item(Nav::Notices, "/notices", "Notices"))
                        @if s.v.role.moderates() { (item(Nav::Moderation, "/moderation", "Moderation")) }
                    }
                    span.who { (author_line(&s.v.display_name, agency_of(&s.v), None)) }
                    form.inline method="post" action="/signout" {
                        (csrf_field(&s.csrf))
                        button.link type="submit" { "Sign out" }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn agency_of(v: &Viewer) -> Option<&str> {
    (v.role == Role::Agency && v.agency_verified)
        .then(|| v.agency_name.as_deref().unwrap_or("Agency"))
}

/// The hidden CSRF field.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// An author's name with the verified-agency badge (and agency name) or a
/// moderator badge.
pub fn author_line(name: &str, agency: Option<&str>, badge: Option<&str>) -> Markup {
    html! {
        span.author {
            (name)
            @if let Some(a) = agency {
                " " span.badge.agency title="Verified public agency" { "✔ Verified agency · " (a) }
            } @else if let Some(b) = badge {
                " " span.badge { (b) }
            }
        }
    }
}

/// Author markup from a post/comment JSON `author` object.
pub fn author_json(a: &serde_json::Value) -> Markup {
    let name = a["display_name"].as_str().unwrap_or("someone");
    let badge = a["badge"].as_str();
    if badge == Some("verified agency") {
        author_line(
            name,
            Some(a["agency_name"].as_str().unwrap_or("Agency")),
            None,
        )
    } else {
        author_line(name, None, badge)
    }
}

/// Human label of a category.
pub fn category_label(c: &str) -> &'static str {
    match c {
        "crime_safety" => "Crime & safety",
        "suspicious" => "Suspicious activity",
        "lost_found_pet" => "Lost & found pet",
        "wildlife" => "Wildlife",
        "mutual_aid" => "Mutual aid",
        "community_event" => "Community event",
        "neighborly_moment" => "Neighborly moment",
        "alert" => "Alert",
        "safety_tip" => "Safety tip",
        "information" => "Information",
        "event" => "Event",
        _ => "Post",
    }
}

/// Inline SVG produced by [`crate::area`] (already escaped there).
pub fn svg(s: String) -> Markup {
    PreEscaped(s)
}

/// A redirect after a successful POST.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Percent-encodes a query value.
pub fn q(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[cfg(test)]
mod tests;
