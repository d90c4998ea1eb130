//! Static files embedded in the binary: no build step, nothing to install.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::App;

fn file(ctype: &'static str, body: &'static [u8]) -> impl IntoResponse + Clone {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}

pub(crate) fn routes() -> Router<App> {
    let css = file(
        "text/css; charset=utf-8",
        include_bytes!("../assets/app.css"),
    );
    let js = file(
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    );
    let live = file(
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/live.js"),
    );
    let timeline = file(
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/timeline.js"),
    );
    let settings = file(
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/settings.js"),
    );
    let detection = file(
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/js/detection.js"),
    );
    let offline = file(
        "text/html; charset=utf-8",
        include_bytes!("../assets/offline.html"),
    );
    let maskable = file(
        "image/png",
        include_bytes!("../assets/icon-maskable-512.png"),
    );
    let sw = file(
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/sw.js"),
    );
    let svg = file("image/svg+xml", include_bytes!("../assets/icon.svg"));
    let p192 = file("image/png", include_bytes!("../assets/icon-192.png"));
    let p512 = file("image/png", include_bytes!("../assets/icon-512.png"));
    let manifest = file(
        "application/manifest+json",
        include_bytes!("../assets/manifest.webmanifest"),
    );
    Router::new()
        .route("/static/app.css", get(move || async move { css.clone() }))
        .route("/static/app.js", get(move || async move { js.clone() }))
        .route("/static/live.js", get(move || async move { live.clone() }))
        .route(
            "/static/timeline.js",
            get(move || async move { timeline.clone() }),
        )
        .route(
            "/static/settings.js",
            get(move || async move { settings.clone() }),
        )
        .route(
            "/static/js/detection.js",
            get(move || async move { detection.clone() }),
        )
        .route(
            "/static/offline.html",
            get(move || async move { offline.clone() }),
        )
        .route(
            "/static/icon-maskable-512.png",
            get(move || async move { maskable.clone() }),
        )
        .route("/sw.js", get(move || async move { sw.clone() }))
        .route("/static/icon.svg", get(move || async move { svg.clone() }))
        .route(
            "/static/icon-192.png",
            get(move || async move { p192.clone() }),
        )
        .route(
            "/static/icon-512.png",
            get(move || async move { p512.clone() }),
        )
        .route(
            "/manifest.webmanifest",
            get(move || async move { manifest.clone() }),
        )
}
