//! The web layer end to end in-process: real router, real store in a
//! temporary folder, real vault; a tiny cookie-keeping client.

#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use porchlight_base::ManualClock;
use porchlight_config::Config;
use porchlight_store::Role;
use porchlight_vault::accounts::Vault;
use porchlight_vault::{totp, Actor};
use support::{form_request, json_request, Hub, Resp, HOST, PW};
use tower::ServiceExt;

struct Client {
    router: Router,
    cookies: HashMap<String, String>,
    clock: Arc<ManualClock>,
    vault: Arc<Vault>,
    _dir: tempfile::TempDir,
}

/// A client of a hub whose owners need two-factor sign-in (the default
/// policy's rule), under `config`.
async fn client_with(config: Config) -> Client {
    let hub = Hub::builder()
        .config(config)
        .owners_need_totp()
        .build()
        .await;
    Client {
        router: hub.router,
        cookies: HashMap::new(),
        clock: hub.clock,
        vault: hub.vault,
        _dir: hub.dir,
    }
}

async fn client() -> Client {
    client_with(Config::default()).await
}

impl Client {
    async fn send(&mut self, req: Request<Body>) -> Resp {
        let r = Resp::read(self.router.clone().oneshot(req).await.unwrap()).await;
        for c in r.set_cookies() {
            let (kv, _) = c.split_once(';').unwrap_or((&c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.into(), v.into());
            }
        }
        r
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A GET with the cookies and no `Host`.
    async fn get(&mut self, path: &str) -> Resp {
        let req = Request::get(path)
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let cookie = self.cookie_header();
        let req = form_request(path, fields, |b| {
            b.header(header::COOKIE, cookie).header(header::HOST, HOST)
        });
        self.send(req).await
    }

    fn code_now(&self, secret_b32: &str) -> String {
        let secret = data_encoding::BASE32_NOPAD
            .decode(secret_b32.as_bytes())
            .unwrap();
        totp::code_for_step(&secret, totp::step_at(self.vault.now().as_second()), 6)
    }

    /// Runs the browser's first-run flow; returns the TOTP secret.
    async fn first_run(&mut self) -> String {
        let r = self.get("/").await;
        assert_eq!(r.location(), "/setup");
        let r = self.get("/setup").await;
        assert_eq!(r.status, StatusCode::OK);
        let csrf = r.csrf();
        let r = self
            .post_form(
                "/setup",
                &[
                    ("csrf", &csrf),
                    ("username", "owner"),
                    ("password", PW),
                    ("confirm", PW),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let code = r.testid("recovery-code");
        assert_eq!(code.len(), 29, "{code}");
        // Owners are walked to two-factor set-up before anything else.
        assert_eq!(self.get("/").await.location(), "/account/two-factor");
        assert_eq!(self.get("/audit").await.location(), "/account/two-factor");
        let r = self.get("/account/two-factor").await;
        assert!(
            r.body.contains("data:image/svg+xml;base64,"),
            "QR code shown"
        );
        let secret = r.testid("totp-secret");
        let code = self.code_now(&secret);
        let r = self
            .post_form(
                "/account/two-factor",
                &[("csrf", &r.csrf()), ("code", &code)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("data-testid=\"recovery-codes\""));
        let r = self.get("/").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("Hello, owner"));
        self.clock.advance(Duration::from_secs(30));
        secret
    }
}

#[tokio::test]
async fn first_run_two_factor_sign_out_and_back_in() {
    let mut c = client().await;
    let secret = c.first_run().await;
    // Setup is closed once an owner exists.
    assert_eq!(c.get("/setup").await.location(), "/signin");
    // Sign out.
    let home = c.get("/account").await;
    let r = c.post_form("/signout", &[("csrf", &home.csrf())]).await;
    assert_eq!(r.location(), "/signin");
    assert_eq!(c.get("/").await.location(), "/signin");
    // Sign back in: password, then the code.
    let r = c.get("/signin").await;
    let r = c
        .post_form(
            "/signin",
            &[("csrf", &r.csrf()), ("username", "owner"), ("password", PW)],
        )
        .await;
    assert_eq!(r.location(), "/signin/code");
    assert_eq!(
        c.get("/").await.location(),
        "/signin/code",
        "no access before the code"
    );
    let r = c.get("/signin/code").await;
    let csrf = r.csrf();
    let bad = c
        .post_form("/signin/code", &[("csrf", &csrf), ("code", "000000")])
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let code = c.code_now(&secret);
    let r = c
        .post_form("/signin/code", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(r.location(), "/");
    let r = c.get("/").await;
    assert!(
        r.body.contains("unlocked for this session only"),
        "{}",
        r.body
    );
    // The audit page shows the story and an intact chain.
    let r = c.get("/audit").await;
    assert_eq!(r.status, StatusCode::OK);
    for action in [
        "user.create",
        "totp.enable",
        "auth.sign_out",
        "auth.second_factor_failed",
        "key.unwrap",
    ] {
        assert!(r.body.contains(action), "audit shows {action}");
    }
    assert!(r.body.contains("Chain intact"));
}

#[tokio::test]
async fn cookies_are_httponly_strict_and_secure_behind_tls() {
    let mut c = client().await;
    c.first_run().await;
    let mut config = Config::default();
    config.web.public_url = Some("https://hub.example".into());
    let mut tls = client_with(config).await;
    let r = tls.get("/setup").await;
    let csrf = r.csrf();
    let r = tls
        .post_form(
            "/setup",
            &[
                ("csrf", &csrf),
                ("username", "owner"),
                ("password", PW),
                ("confirm", PW),
            ],
        )
        .await;
    let session = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("pl_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Strict")
            && session.contains("Secure"),
        "{session}"
    );
    // Plain HTTP on localhost: no Secure flag (the browser would drop it).
    let r = c.get("/signin").await;
    let _ = r;
    let mut plain = client().await;
    let r = plain.get("/setup").await;
    let csrf = r.csrf();
    let r = plain
        .post_form(
            "/setup",
            &[
                ("csrf", &csrf),
                ("username", "owner"),
                ("password", PW),
                ("confirm", PW),
            ],
        )
        .await;
    let session = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("pl_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Strict")
            && !session.contains("Secure"),
        "{session}"
    );
}

#[tokio::test]
async fn csrf_missing_wrong_or_cross_origin_is_refused() {
    let mut c = client().await;
    c.first_run().await;
    let good = c.get("/account").await.csrf();
    // Missing token.
    let r = c.post_form("/signout", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Wrong token.
    let r = c.post_form("/signout", &[("csrf", "not-the-token")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Right token from another site.
    let body = format!("csrf={good}");
    let req = Request::post("/signout")
        .header(header::COOKIE, c.cookie_header())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "hub.local")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(c.send(req).await.status, StatusCode::FORBIDDEN);
    // JSON without the header.
    let req = Request::delete("/api/v1/sessions/current")
        .header(header::COOKIE, c.cookie_header())
        .body(Body::empty())
        .unwrap();
    assert_eq!(c.send(req).await.status, StatusCode::FORBIDDEN);
    // Still signed in after all that.
    assert_eq!(c.get("/").await.status, StatusCode::OK);
    // The right token works.
    let r = c.post_form("/signout", &[("csrf", &good)]).await;
    assert_eq!(r.location(), "/signin");
    // Before sign-in: the double-submit cookie must match.
    let mut fresh = client().await;
    fresh
        .vault
        .create_user("neighbor1", Role::Neighbor, PW, &Actor::cli())
        .await
        .unwrap();
    let r = fresh
        .post_form(
            "/signin",
            &[
                ("csrf", "forged"),
                ("username", "neighbor1"),
                ("password", PW),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let csrf = fresh.get("/signin").await.csrf();
    let r = fresh
        .post_form(
            "/signin",
            &[("csrf", &csrf), ("username", "neighbor1"), ("password", PW)],
        )
        .await;
    assert_eq!(r.location(), "/");
}

#[tokio::test]
async fn tampered_and_expired_cookies_are_rejected() {
    let mut c = client().await;
    c.first_run().await;
    let token = c.cookies["pl_session"].clone();
    let mut forged = token.clone();
    forged.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
    c.cookies.insert("pl_session".into(), forged);
    assert_eq!(c.get("/").await.location(), "/signin");
    assert_eq!(c.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
    c.cookies.insert("pl_session".into(), token);
    assert_eq!(c.get("/").await.status, StatusCode::OK);
    // Idle past the limit: the cookie is dead.
    c.clock.advance(Duration::from_secs(13 * 3600));
    assert_eq!(c.get("/").await.location(), "/signin");
}

#[tokio::test]
async fn sign_in_lockout_shows_a_clear_message() {
    let mut c = client().await;
    c.vault
        .create_user("member1", Role::Member, PW, &Actor::cli())
        .await
        .unwrap();
    let csrf = c.get("/signin").await.csrf();
    for _ in 0..5 {
        let r = c
            .post_form(
                "/signin",
                &[
                    ("csrf", &csrf),
                    ("username", "member1"),
                    ("password", "wrong password"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("wrong username or password"));
    }
    let r = c
        .post_form(
            "/signin",
            &[("csrf", &csrf), ("username", "member1"), ("password", PW)],
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("try again in 30 seconds"), "{}", r.body);
    assert_eq!(r.headers.get("retry-after").unwrap(), "30");
    c.clock.advance(Duration::from_secs(30));
    let r = c
        .post_form(
            "/signin",
            &[("csrf", &csrf), ("username", "member1"), ("password", PW)],
        )
        .await;
    assert_eq!(r.location(), "/");
}

async fn api(
    c: &mut Client,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Resp {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    c.send(json_request(b, body)).await
}

#[tokio::test]
async fn api_bearer_sessions_with_totp_and_revoke() {
    let mut c = client().await;
    let secret = c.first_run().await;
    let body = serde_json::json!({ "username": "owner", "password": PW });
    let r = api(&mut c, "POST", "/api/v1/sessions", None, Some(body)).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a code is required: {}",
        r.body
    );
    let body =
        serde_json::json!({ "username": "owner", "password": PW, "totp": c.code_now(&secret) });
    let r = api(&mut c, "POST", "/api/v1/sessions", None, Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let token = v["token"].as_str().unwrap().to_owned();
    let me = api(&mut c, "GET", "/api/v1/me", Some(&token), None).await;
    let me: serde_json::Value = serde_json::from_str(&me.body).unwrap();
    assert_eq!(me["role"], "owner");
    assert_eq!(me["household_key"]["unlocked"], true);
    let audit = api(&mut c, "GET", "/api/v1/audit?limit=5", Some(&token), None).await;
    assert_eq!(audit.status, StatusCode::OK);
    // The browser session revokes the API session: it stops at once.
    let list = api(&mut c, "GET", "/api/v1/me/sessions", Some(&token), None).await;
    let list: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    let api_id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let csrf = c.get("/account").await.csrf();
    let r = c
        .post_form(
            &format!("/account/sessions/{api_id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.location(), "/account");
    let me = api(&mut c, "GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn members_cannot_read_the_audit_log() {
    let mut c = client().await;
    c.vault
        .create_user("member1", Role::Member, PW, &Actor::cli())
        .await
        .unwrap();
    let r = api(
        &mut c,
        "POST",
        "/api/v1/sessions",
        None,
        Some(serde_json::json!({"username": "member1", "password": PW})),
    )
    .await;
    let token = serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        api(&mut c, "GET", "/api/v1/audit", Some(&token), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let csrf = c.get("/signin").await.csrf();
    c.post_form(
        "/signin",
        &[("csrf", &csrf), ("username", "member1"), ("password", PW)],
    )
    .await;
    assert_eq!(c.get("/audit").await.status, StatusCode::FORBIDDEN);
    assert_eq!(c.get("/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn pages_carry_a_strict_csp_and_no_inline_script() {
    let mut c = client().await;
    c.first_run().await;
    let tags = regex::Regex::new(r"<script[^>]*>").unwrap();
    let handler = regex::Regex::new(r"<[^>]*\son[a-z]+=").unwrap();
    for path in ["/", "/account", "/audit", "/signin"] {
        let r = c.get(path).await;
        let csp = r
            .headers
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(r.headers.get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
        for tag in tags.find_iter(&r.body) {
            assert!(
                tag.as_str().contains("src="),
                "{path} has an inline script: {}",
                tag.as_str()
            );
        }
        assert!(
            !handler.is_match(&r.body),
            "{path}: no inline event handlers"
        );
    }
    for path in [
        "/static/app.css",
        "/static/app.js",
        "/sw.js",
        "/manifest.webmanifest",
        "/static/icon-192.png",
    ] {
        assert_eq!(c.get(path).await.status, StatusCode::OK, "{path}");
    }
}
