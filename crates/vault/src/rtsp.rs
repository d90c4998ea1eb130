//! RTSP credentials: per-device tokens for the hub's restream, and the
//! checks the restream makes with them (design/accounts.md, "RTSP
//! viewers").
//!
//! RTSP clients (VLC, ffmpeg, Home Assistant) can only send a user name
//! and a password, and cannot do a second factor. So the account password
//! is never accepted over RTSP: a signed-in user (or the CLI on the hub's
//! machine) creates a token per device, optionally limited to some of
//! their cameras. The device presents `username:token` (RTSP Basic).
//!
//! Invariants:
//! * A secret is 32 random bytes (base64url), shown once; only its SHA-256
//!   is stored, so the database cannot be replayed as a credential.
//! * A token never widens its user's rights: each check is the user's own
//!   rule (owners every camera, members their grants, nobody while
//!   disabled) intersected with the token's scope, read from the store at
//!   the time of the check.
//! * Failed attempts go through the vault's throttles: the client
//!   address's (shared with web sign-in) and a per-user RTSP counter
//!   (`rtsp:NAME`, so a device left with a revoked token cannot lock its
//!   user out of the web app, and a web lockout does not cut the
//!   household's camera feeds). While either is locked the secret is not
//!   checked at all.
//! * Every sign-in, failure, refusal, creation and revocation is audited
//!   before the call returns.

use porchlight_base::secret;
use porchlight_store::{RtspTokenRow, ThrottleScope};
use zeroize::Zeroizing;

use crate::accounts::{token_hash, Actor, AuthError, Vault};

/// Tokens one user may hold at once (bounds the table; a household has a
/// handful of devices).
pub const MAX_TOKENS_PER_USER: usize = 50;

/// A token just created, with its secret (shown once, never stored).
pub struct CreatedRtspToken {
    pub token: RtspTokenRow,
    pub secret: Zeroizing<String>,
}

/// Someone who presented a valid RTSP token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspViewer {
    pub token_id: i64,
    pub user_id: i64,
    pub username: String,
    /// The token's device label.
    pub label: String,
}

/// The per-user RTSP throttle's key (user names cannot contain `:`, so it
/// never meets a web account's key).
fn throttle_key(username: &str) -> String {
    format!("rtsp:{username}")
}

/// Device labels: 1–64 characters, no control characters.
fn check_label(label: &str) -> Result<&str, AuthError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control) {
        return Err(AuthError::Invalid(format!(
            "`{label}` is not a usable device name: use 1 to 64 characters, e.g. \"living-room TV\""
        )));
    }
    Ok(label)
}

impl Vault {
    /// Creates an RTSP token for `username` (an owner or member, not
    /// disabled), limited to `cameras` when any are named — each must be a
    /// camera the user may see now.
    pub async fn create_rtsp_token(
        &self,
        username: &str,
        label: &str,
        cameras: &[String],
        actor: &Actor,
    ) -> Result<CreatedRtspToken, AuthError> {
        let user = self.user(username).await?;
        if !user.role.is_hub_role() {
            return Err(AuthError::Invalid(format!(
                "`{}` is a {} account: only owners and members watch cameras",
                user.username, user.role
            )));
        }
        if user.disabled {
            return Err(AuthError::Disabled);
        }
        let label = check_label(label)?;
        let store = self.store();
        if store.rtsp_tokens_of(user.id).await?.len() >= MAX_TOKENS_PER_USER {
            return Err(AuthError::Invalid(format!(
                "`{}` already has {MAX_TOKENS_PER_USER} RTSP tokens; revoke one first",
                user.username
            )));
        }
        let mut ids = Vec::new();
        for name in cameras {
            let cam = store.camera_by_name(name).await?;
            match cam {
                Some(c) if store.may_see_camera(user.id, c.id).await? => ids.push(c.id),
                _ => {
                    return Err(AuthError::Invalid(format!(
                        "`{}` may not see a camera named `{name}`",
                        user.username
                    )))
                }
            }
        }
        let secret = Zeroizing::new(secret::url_token(32));
        let id = store
            .create_rtsp_token(
                user.id,
                label,
                &token_hash(&secret),
                (!cameras.is_empty()).then_some(ids.as_slice()),
                self.now(),
            )
            .await?;
        let token = store
            .rtsp_token_by_id(id)
            .await?
            .ok_or_else(|| AuthError::Invalid("the new RTSP token vanished".into()))?;
        self.audit(
            actor,
            "rtsp.token_create",
            &user.username,
            serde_json::json!({ "token": id, "device": label, "cameras": token.cameras }),
        )
        .await?;
        Ok(CreatedRtspToken { token, secret })
    }

    /// `user_id`'s RTSP tokens, newest first (never a secret).
    pub async fn rtsp_tokens(&self, user_id: i64) -> Result<Vec<RtspTokenRow>, AuthError> {
        Ok(self.store().rtsp_tokens_of(user_id).await?)
    }

    /// Revokes `user_id`'s token `id` (refuses other users' tokens). A
    /// restream session using it is closed at its next check (every
    /// couple of seconds).
    pub async fn revoke_rtsp_token(
        &self,
        user_id: i64,
        id: i64,
        actor: &Actor,
    ) -> Result<RtspTokenRow, AuthError> {
        let store = self.store();
        let token = match store.rtsp_token_by_id(id).await? {
            Some(t) if t.user_id == user_id => t,
            _ => return Err(AuthError::Invalid(format!("no RTSP token #{id} of yours"))),
        };
        store.delete_rtsp_token(user_id, id).await?;
        self.audit(
            actor,
            "rtsp.token_revoke",
            &token.username,
            serde_json::json!({ "token": id, "device": token.label }),
        )
        .await?;
        Ok(token)
    }

    /// Checks an RTSP client's `username` and token (`secret`), with the
    /// throttles and audit entries described in the module docs.
    pub async fn rtsp_sign_in(
        &self,
        username: &str,
        secret: &str,
        client: &str,
    ) -> Result<RtspViewer, AuthError> {
        let now = self.now();
        let actor = Actor {
            name: username.to_owned(),
            client: client.to_owned(),
        };
        let key = throttle_key(username);
        if let Err(e) = async {
            self.locked(ThrottleScope::Address, client, now).await?;
            self.locked(ThrottleScope::Account, &key, now).await
        }
        .await
        {
            self.audit(
                &actor,
                "rtsp.sign_in_refused",
                username,
                serde_json::json!({ "reason": e.to_string() }),
            )
            .await?;
            return Err(e);
        }
        let found = if secret.is_empty() || secret.len() > 128 {
            None
        } else {
            self.store().rtsp_token_by_hash(&token_hash(secret)).await?
        };
        let token = match found {
            Some(t) if t.username.eq_ignore_ascii_case(username) => t,
            _ => {
                self.record_failure(ThrottleScope::Account, &key, now)
                    .await?;
                self.record_failure(ThrottleScope::Address, client, now)
                    .await?;
                self.audit(
                    &actor,
                    "rtsp.sign_in_failed",
                    username,
                    serde_json::json!({}),
                )
                .await?;
                return Err(AuthError::BadCredentials);
            }
        };
        if token.user_disabled {
            self.audit(
                &actor,
                "rtsp.sign_in_refused",
                username,
                serde_json::json!({ "reason": "disabled", "token": token.id }),
            )
            .await?;
            return Err(AuthError::Disabled);
        }
        self.store()
            .throttle_clear(ThrottleScope::Account, &key)
            .await?;
        self.store().touch_rtsp_token(token.id, now).await?;
        let actor = Actor {
            name: token.username.clone(),
            client: client.to_owned(),
        };
        self.audit(
            &actor,
            "rtsp.sign_in",
            &token.username,
            serde_json::json!({ "token": token.id, "device": token.label }),
        )
        .await?;
        Ok(RtspViewer {
            token_id: token.id,
            user_id: token.user_id,
            username: token.username,
            label: token.label,
        })
    }

    /// Is `viewer`'s token still good — and, with a camera, may it still
    /// show that camera? `Ok(Err(reason))` when not: the token was revoked,
    /// the user disabled, the grant or the token's scope no longer covers
    /// the camera. What the restream asks at each request and every couple
    /// of seconds while a client is connected.
    pub async fn rtsp_check(
        &self,
        viewer: &RtspViewer,
        camera_id: Option<i64>,
    ) -> Result<Result<(), String>, AuthError> {
        let store = self.store();
        let Some(token) = store.rtsp_token_by_id(viewer.token_id).await? else {
            return Ok(Err("the RTSP token was revoked".into()));
        };
        if token.user_id != viewer.user_id {
            return Ok(Err("the RTSP token was revoked".into()));
        }
        if token.user_disabled {
            return Ok(Err(format!("the account `{}` is disabled", token.username)));
        }
        if let Some(cam) = camera_id {
            if !store.rtsp_token_may_see(token.id, cam).await? {
                return Ok(Err(format!(
                    "`{}` may no longer watch this camera with this token",
                    token.username
                )));
            }
        }
        Ok(Ok(()))
    }
}
