//! Server-rendered pages. Each submodule is one area of the app; all of
//! them render through [`layout`].

mod account;
mod audit;
mod auth;
mod cameras;
mod home;
pub(crate) mod layout;

use axum::routing::{get, post};
use axum::Router;

use crate::App;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/", get(home::home))
        .route("/setup", get(auth::setup_form).post(auth::setup))
        .route("/signin", get(auth::signin_form).post(auth::signin))
        .route("/signin/code", get(auth::code_form).post(auth::code))
        .route("/signout", post(auth::signout))
        .route("/account", get(account::account))
        .route(
            "/account/two-factor",
            get(account::two_factor_form).post(account::two_factor),
        )
        .route("/account/password", post(account::password))
        .route("/account/sessions/{id}/revoke", post(account::revoke))
        .route("/audit", get(audit::audit))
        .route("/cameras/{name}", get(cameras::camera))
}
