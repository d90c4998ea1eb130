//! One error type for handlers, rendered as a page or as JSON.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use porchlight_vault::AuthError;

/// What went wrong while handling a request. `Display` is safe to show.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("sign in first")]
    NotSignedIn,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    NotFoundBecause(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("something went wrong on the hub; the details are in its log")]
    Internal(String),
}

impl From<porchlight_store::StoreError> for WebError {
    fn from(e: porchlight_store::StoreError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl WebError {
    /// A 404 that says why.
    pub fn with_message(self, m: String) -> WebError {
        match self {
            WebError::NotFound => WebError::NotFoundBecause(m),
            other => other,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Auth(AuthError::Locked { .. }) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Auth(
                AuthError::BadCredentials | AuthError::BadSecondFactor | AuthError::SignInExpired,
            ) => StatusCode::UNAUTHORIZED,
            WebError::Auth(AuthError::Disabled) => StatusCode::FORBIDDEN,
            WebError::Auth(
                AuthError::Invalid(_)
                | AuthError::BadRecoveryCode
                | AuthError::NoSuchUser(_)
                | AuthError::SecondFactorRequired,
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            WebError::Auth(
                AuthError::Store(_) | AuthError::BrokenKey { .. } | AuthError::NoKey(_),
            ) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::NotSignedIn => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound | WebError::NotFoundBecause(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn log(&self) {
        match self {
            WebError::Internal(m) => tracing::error!("request failed: {m}"),
            WebError::Auth(e @ (AuthError::Store(_) | AuthError::BrokenKey { .. })) => {
                tracing::error!("request failed: {e}")
            }
            _ => {}
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            WebError::Auth(AuthError::Locked { retry_after, .. }) => Some(retry_after.as_secs()),
            _ => None,
        }
    }
}

/// A [`WebError`] answered as JSON: `{"error": "…"}`, and for a lockout
/// also `"locked_until"` (RFC 3339) beside the `Retry-After` header.
pub struct ApiError(pub WebError);

impl<E: Into<WebError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.log();
        let mut body = serde_json::json!({ "error": self.0.to_string() });
        if let WebError::Auth(AuthError::Locked { until, .. }) = &self.0 {
            body["locked_until"] = serde_json::json!(until.to_string());
        }
        let mut r = (self.0.status(), axum::Json(body)).into_response();
        if let Some(s) = self.0.retry_after() {
            r.headers_mut().insert("retry-after", s.into());
        }
        r
    }
}

/// A [`WebError`] answered as a page.
pub struct PageError(pub WebError);

impl<E: Into<WebError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.log();
        if matches!(self.0, WebError::NotSignedIn) {
            return axum::response::Redirect::to("/signin").into_response();
        }
        let status = self.0.status();
        let body = crate::pages::layout::bare(
            status.canonical_reason().unwrap_or("Error"),
            maud::html! {
                h1 { (status.canonical_reason().unwrap_or("Error")) }
                p.error { (self.0.to_string()) }
                p { a href="/" { "Back to Porchlight" } }
            },
        );
        let mut r = (status, body).into_response();
        if let Some(s) = self.0.retry_after() {
            r.headers_mut().insert("retry-after", s.into());
        }
        r
    }
}
