//! Server-rendered pages. Each submodule is one area of the app; all of
//! them render through [`layout`].

mod account;
pub(crate) mod alarm;
mod audit;
mod auth;
mod cameras;
mod detection;
mod events;
mod home;
pub(crate) mod layout;
mod rtsp;
pub(crate) mod settings;
mod timeline;

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
        .route("/account/rtsp-tokens", post(rtsp::create))
        .route("/account/rtsp-tokens/{id}/revoke", post(rtsp::revoke))
        .route("/audit", get(audit::audit))
        .route("/live", get(cameras::live_grid))
        .route("/events", get(events::events))
        .route("/cameras/{name}", get(cameras::camera))
        .route("/cameras/{name}/timeline", get(cameras::timeline_fragment))
        .route("/cameras/{name}/download", get(cameras::download))
        .route(
            "/cameras/{name}/detection",
            get(detection::page).post(detection::post),
        )
        .route("/settings", get(settings::index))
        .route("/settings/remote", post(crate::remote::enable))
        .route("/settings/backup", post(crate::backup::add))
        .route(
            "/settings/backup/{name}/remove",
            post(crate::backup::remove),
        )
        .route(
            "/settings/cameras",
            get(settings::cameras).post(settings::cameras_post),
        )
        .route("/settings/cameras/{name}", get(settings::camera))
        .route(
            "/settings/cameras/{name}/enabled",
            post(settings::camera_enabled),
        )
        .route("/settings/cameras/{name}/test", post(settings::camera_test))
        .route("/settings/cameras/{name}/edit", post(settings::camera_edit))
        .route(
            "/settings/cameras/{name}/remove",
            post(settings::camera_remove),
        )
        .route(
            "/settings/users",
            get(settings::users).post(settings::users_post),
        )
        .route(
            "/settings/users/{name}/disabled",
            post(settings::user_disabled),
        )
        .route("/settings/users/{name}/grants", post(settings::user_grants))
}
