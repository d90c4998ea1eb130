//! RTSP tokens on the account page, as a browser uses them: created with a
//! device label and an optional camera scope (CSRF-guarded), the secret
//! shown once, listed without it, revocable; and what the vault then
//! accepts from an RTSP client (`Vault::rtsp_sign_in`, what the restream
//! calls): the token, never the account password; throttled; audited.

#[allow(dead_code)]
mod support;

use axum::http::StatusCode;
use porchlight_store::Role;
use porchlight_vault::AuthError;
use support::{Hub, PW};

#[tokio::test]
async fn a_member_creates_lists_and_revokes_an_rtsp_token_on_the_account_page() {
    let hub = Hub::builder().browser_sessions().build().await;
    let owner = hub.browser("olive", Role::Owner).await;
    let mia = hub.browser("mia", Role::Member).await;
    let porch = hub.camera("porch").await;
    let yard = hub.camera("yard").await;
    let r = hub
        .call(
            &owner,
            "PUT",
            "/api/v1/cameras/porch/grants/mia",
            None,
            true,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);

    let page = hub.call(&mia, "GET", "/account", None, false).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("RTSP access"), "{}", page.body);
    assert!(page.body.contains("No RTSP tokens yet"));
    // Only the cameras mia may see are offered.
    assert!(page.body.contains(r#"value="porch""#));
    assert!(!page.body.contains(r#"value="yard""#));

    // Without the CSRF token: refused.
    let r = hub
        .form(&mia, "/account/rtsp-tokens", &[("label", "tablet")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // A camera she may not see: refused, and named.
    let r = hub
        .form(
            &mia,
            "/account/rtsp-tokens",
            &[("csrf", &mia.csrf), ("label", "tablet"), ("camera", "yard")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body.contains("may not see a camera named `yard`"),
        "{}",
        r.body
    );

    let r = hub
        .form(
            &mia,
            "/account/rtsp-tokens",
            &[
                ("csrf", &mia.csrf),
                ("label", "kitchen tablet"),
                ("camera", "porch"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let secret = r.testid("rtsp-secret");
    assert!(secret.len() >= 40, "{secret}");

    // Listed without the secret.
    let page = hub.call(&mia, "GET", "/account", None, false).await;
    assert!(page.body.contains("kitchen tablet"), "{}", page.body);
    assert!(!page.body.contains(&secret));
    let tokens = hub
        .vault
        .rtsp_tokens(hub.user_id("mia").await)
        .await
        .unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        tokens[0].cameras.as_deref(),
        Some(&["porch".to_owned()][..])
    );

    // What an RTSP client can do with it: the token signs in; the account
    // password does not; the scope holds.
    let v = hub
        .vault
        .rtsp_sign_in("mia", &secret, "127.0.0.1")
        .await
        .unwrap();
    assert!(hub
        .store
        .rtsp_token_may_see(v.token_id, porch)
        .await
        .unwrap());
    assert!(!hub
        .store
        .rtsp_token_may_see(v.token_id, yard)
        .await
        .unwrap());
    assert!(matches!(
        hub.vault.rtsp_sign_in("mia", PW, "127.0.0.1").await,
        Err(AuthError::BadCredentials)
    ));
    assert!(matches!(
        hub.vault.rtsp_sign_in("olive", &secret, "127.0.0.1").await,
        Err(AuthError::BadCredentials)
    ));
    assert!(hub.vault.rtsp_check(&v, Some(porch)).await.unwrap().is_ok());

    // Another user cannot revoke it.
    let id = tokens[0].id;
    let r = hub
        .form(
            &owner,
            &format!("/account/rtsp-tokens/{id}/revoke"),
            &[("csrf", &owner.csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // She can.
    let r = hub
        .form(
            &mia,
            &format!("/account/rtsp-tokens/{id}/revoke"),
            &[("csrf", &mia.csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(matches!(
        hub.vault.rtsp_sign_in("mia", &secret, "127.0.0.1").await,
        Err(AuthError::BadCredentials)
    ));
    assert!(hub.vault.rtsp_check(&v, None).await.unwrap().is_err());

    let actions: Vec<(String, String)> = hub
        .audit_log()
        .await
        .into_iter()
        .rev()
        .filter(|e| e.action.starts_with("rtsp."))
        .map(|e| (e.actor, e.action))
        .collect();
    let mia_did = |a: &str| ("mia".to_owned(), a.to_owned());
    assert_eq!(
        actions,
        [
            mia_did("rtsp.token_create"),
            mia_did("rtsp.sign_in"),
            mia_did("rtsp.sign_in_failed"),
            ("olive".to_owned(), "rtsp.sign_in_failed".to_owned()),
            mia_did("rtsp.token_revoke"),
            mia_did("rtsp.sign_in_failed"),
        ]
    );
}

#[tokio::test]
async fn failed_rtsp_sign_ins_are_throttled_without_locking_the_web_account() {
    let hub = Hub::builder().build().await;
    hub.user("mia", Role::Member).await;
    let created = hub
        .vault
        .create_rtsp_token("mia", "tv", &[], &porchlight_vault::Actor::cli())
        .await
        .unwrap();
    // Five wrong tokens lock mia's RTSP sign-in (the account allowance)…
    for _ in 0..5 {
        assert!(matches!(
            hub.vault.rtsp_sign_in("mia", "wrong", "10.0.0.7").await,
            Err(AuthError::BadCredentials)
        ));
    }
    // …so even the right token is not checked now, from any address.
    let e = hub
        .vault
        .rtsp_sign_in("mia", &created.secret, "10.0.0.8")
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::Locked { .. }), "{e}");
    // The web sign-in of the same account is not locked by it.
    hub.token("mia").await;
    // After the lockout, the token works again.
    hub.clock.advance(std::time::Duration::from_secs(31));
    hub.vault
        .rtsp_sign_in("mia", &created.secret, "10.0.0.8")
        .await
        .unwrap();
    // Per address: 20 failures (4× the account allowance) over many
    // names lock the address for RTSP and for web sign-in alike.
    for i in 0..20 {
        let _ = hub
            .vault
            .rtsp_sign_in(&format!("name{i}"), "guess", "10.0.0.9")
            .await;
    }
    let e = hub
        .vault
        .sign_in("mia", PW, "10.0.0.9", "test")
        .await
        .err()
        .expect("the address is locked");
    assert!(matches!(e, AuthError::Locked { .. }), "{e}");
}
