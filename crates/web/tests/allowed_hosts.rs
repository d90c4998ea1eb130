//! DNS rebinding: the hub answers only to its own names. A request whose
//! `Host` is anything else — an attacker's domain re-pointed at the hub —
//! gets 421 and reaches nothing, first-run set-up included (issue 14,
//! item 10).

#[allow(dead_code)]
mod support;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use porchlight_config::Config;
use porchlight_store::Role;
use support::*;

fn get(path: &str, host: &str) -> Request<Body> {
    Request::get(path)
        .header(header::HOST, host)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_foreign_host_gets_421_before_setup_or_anything_else() {
    let h = hub().await;
    // A fresh hub: the set-up page would create its owner.
    let r = h.send(get("/setup", "evil.example")).await;
    assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST, "{}", r.body);
    assert!(
        r.body.contains("does not answer to that name"),
        "{}",
        r.body
    );
    assert!(r.body.contains("web.public_url"), "says how to add a name");
    // The set-up form posted through the rebound name, token and all.
    let csrf = "a-pre-session-token-of-enough-length";
    let r = h
        .send(form_request(
            "/setup",
            &[
                ("csrf", csrf),
                ("username", "mallory"),
                ("password", PW),
                ("confirm", PW),
            ],
            |b| {
                b.header(header::HOST, "evil.example:8080")
                    .header(header::ORIGIN, "http://evil.example:8080")
                    .header(header::COOKIE, format!("pl_csrf={csrf}"))
            },
        ))
        .await;
    assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST, "{}", r.body);
    assert_eq!(h.store.count_users().await.unwrap(), 0, "no owner was made");
    // The hub's own names work.
    for host in [HOST, "localhost:8080", "127.0.0.1:8080", "[::1]:8080"] {
        let r = h.send(get("/setup", host)).await;
        assert_eq!(r.status, StatusCode::OK, "{host}: {}", r.body);
    }
}

#[tokio::test]
async fn signed_in_requests_through_a_foreign_name_are_refused_too() {
    let h = hub().await;
    let token = h.user("owner", Role::Owner).await;
    for path in ["/api/v1/me", "/healthz", "/", "/api/v1/audit"] {
        let r = h
            .send(
                Request::get(path)
                    .header(header::HOST, "evil.example")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST, "{path}");
    }
    assert_eq!(h.get("/api/v1/me", &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_public_url_names_the_hub() {
    let mut config = Config::default();
    config.web.public_url = Some("https://cams.example.org".into());
    let h = Hub::builder().config(config).build().await;
    assert_eq!(
        h.send(get("/setup", "cams.example.org")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.send(get("/setup", "example.org")).await.status,
        StatusCode::MISDIRECTED_REQUEST
    );
}
