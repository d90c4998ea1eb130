//! Changing a password from the web app is throttled like a sign-in (per
//! account and per address) and, with two-factor sign-in, needs a current
//! code (issue 14, item 6).

#[allow(dead_code)]
mod support;

use std::time::Duration;

use axum::http::{header, Request, StatusCode};
use porchlight_store::Role;
use porchlight_vault::{totp, Actor, AuthError};
use serde_json::json;
use support::*;

const NEW: &str = "a brand new long password";

async fn change(h: &Hub, token: &str, current: &str, code: Option<&str>) -> Resp {
    let mut f = vec![("current", current), ("new", NEW)];
    if let Some(c) = code {
        f.push(("code", c));
    }
    h.form("/account/password", token, &f).await
}

async fn signs_in_with(h: &Hub, name: &str, password: &str) -> bool {
    h.vault
        .sign_in(name, password, "10.1.1.1", "t")
        .await
        .is_ok()
}

#[tokio::test]
async fn wrong_current_passwords_lock_the_account() {
    let h = hub().await;
    let token = h.user("nora", Role::Member).await;
    for i in 1..=5 {
        let r = change(&h, &token, "not my password", None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "#{i}: {}", r.body);
    }
    // Locked now: even the right password changes nothing.
    let r = change(&h, &token, PW, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body.contains("locked until"), "{}", r.body);
    // One throttle: signing in is locked for the account too.
    assert!(matches!(
        h.vault.sign_in("nora", PW, "10.1.1.1", "t").await,
        Err(AuthError::Locked { .. })
    ));
    h.clock.advance(Duration::from_secs(31));
    assert_eq!(
        change(&h, &token, PW, None).await.status,
        StatusCode::SEE_OTHER
    );
    assert!(signs_in_with(&h, "nora", NEW).await);
}

#[tokio::test]
async fn wrong_current_passwords_count_per_address_across_accounts() {
    let h = hub().await;
    let mut tokens = Vec::new();
    for i in 0..5 {
        tokens.push(h.user(&format!("u{i}"), Role::Member).await);
    }
    // In-process requests all come from one (unknown) address: 4 accounts
    // × 5 wrong passwords = the address's 20.
    for t in &tokens[..4] {
        for _ in 0..5 {
            let r = change(&h, t, "not my password", None).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        }
    }
    let r = change(&h, &tokens[4], PW, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body.contains("from this network address"), "{}", r.body);
    assert!(!signs_in_with(&h, "u4", NEW).await);
}

#[tokio::test]
async fn two_factor_accounts_need_a_current_code() {
    let h = hub().await;
    h.vault
        .create_user("olga", Role::Member, PW, &Actor::cli())
        .await
        .unwrap();
    let s = h.vault.sign_in("olga", PW, "10.9.9.9", "t").await.unwrap();
    let e = h.vault.begin_totp(&s.session).await.unwrap();
    let secret = data_encoding::BASE32_NOPAD
        .decode(e.secret_base32.as_bytes())
        .unwrap();
    let now = |h: &Hub| totp::step_at(h.vault.now().as_second());
    h.vault
        .confirm_totp(&s.session, &totp::code_for_step(&secret, now(&h), 6))
        .await
        .unwrap();
    h.clock.advance(Duration::from_secs(30));
    let token = s.token.to_string();
    // The form asks for it.
    let page = h.get("/account", &token).await;
    assert!(page.body.contains("name=\"code\""), "{}", page.body);

    // Without a code: refused, nothing changed.
    let r = change(&h, &token, PW, None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("authenticator"), "{}", r.body);
    // A wrong code: refused, and it counts — ten lock the code step.
    let near: Vec<String> = (now(&h) - 1..=now(&h) + 1)
        .map(|st| totp::code_for_step(&secret, st, 6))
        .collect();
    let wrong = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap();
    for i in 1..=10 {
        let r = change(&h, &token, PW, Some(&wrong)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "#{i}: {}", r.body);
    }
    let right = totp::code_for_step(&secret, now(&h), 6);
    let r = change(&h, &token, PW, Some(&right)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body.contains("too many wrong codes"), "{}", r.body);
    assert!(!signs_in_with(&h, "olga", NEW).await);
    // Once the lock ends, password and code together change it.
    h.clock.advance(Duration::from_secs(3600));
    let right = totp::code_for_step(&secret, now(&h), 6);
    let r = change(&h, &token, PW, Some(&right)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(signs_in_with(&h, "olga", NEW).await);
    // The code was spent: it cannot sign anyone in again.
    let r = h
        .send(json_request(
            Request::post("/api/v1/sessions").header(header::HOST, HOST),
            Some(json!({ "username": "olga", "password": NEW, "totp": right })),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}
