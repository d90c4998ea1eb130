//! Sending one Web Push, the same way for the hub (`porchlight-notify`) and
//! the neighborhood server: the endpoint checked again at every send
//! ([`check_url`](crate::check_url); a host name is checked by the client's
//! resolver on the addresses it then connects to), the payload encrypted
//! for the browser (RFC 8291, `aes128gcm`), a VAPID JWT (RFC 8292) whose
//! audience keeps a non-default port, and a TTL and urgency.
//!
//! What differs between the two servers stays with them: where the VAPID
//! key is kept (a file on the hub, a settings row in the neighborhood's
//! database), which subscriptions a notice goes to, and what a failure
//! does to a subscription.

use std::time::Duration;

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use web_push_native::jwt_simple::prelude::{
    Claims, Duration as JwtDuration, ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair,
};
use web_push_native::{p256, Auth, WebPushBuilder};

use crate::{check_url, refusal_in, LocalPush};

/// How long a signed VAPID JWT is valid (RFC 8292 allows at most 24 h).
const JWT_VALIDITY_HOURS: u64 = 12;

/// A server's VAPID key pair.
pub struct Vapid {
    key: ES256KeyPair,
    public_b64: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("public", &self.public_b64)
            .finish_non_exhaustive()
    }
}

impl Vapid {
    /// The key in a PKCS#8 PEM; the error says why not.
    pub fn from_pem(pem: &str) -> Result<Vapid, String> {
        let key = ES256KeyPair::from_pem(pem).map_err(|e| e.to_string())?;
        let public_b64 =
            URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed());
        Ok(Vapid { key, public_b64 })
    }

    /// A new key, as PKCS#8 PEM.
    pub fn generate_pem() -> Result<String, String> {
        ES256KeyPair::generate().to_pem().map_err(|e| e.to_string())
    }

    /// The public key as browsers take it (`applicationServerKey`): the
    /// uncompressed SEC1 point, base64url without padding.
    pub fn public_b64(&self) -> &str {
        &self.public_b64
    }

    /// The `Authorization` header value for a push to `origin`
    /// (`scheme://host[:port]`), naming `subject` (mailto: or https:).
    ///
    /// Signed here rather than by `web-push-native`'s `with_vapid`, which
    /// builds the audience from scheme and host only and so drops a
    /// non-default port; RFC 8292 wants the push resource's origin.
    pub fn authorization(&self, origin: &str, subject: &str) -> Result<String, String> {
        let claims = Claims::create(JwtDuration::from_hours(JWT_VALIDITY_HOURS))
            .with_audience(origin)
            .with_subject(subject);
        let token = self.key.sign(claims).map_err(|e| e.to_string())?;
        Ok(format!("vapid t={token}, k={}", self.public_b64))
    }
}

/// Base64url with or without padding, as browsers send keys.
pub fn decode_b64url(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    URL_SAFE_NO_PAD
        .decode(s)
        .or_else(|_| URL_SAFE.decode(s))
        .ok()
}

/// `scheme://host[:port]` of an endpoint (the VAPID audience); the port
/// only when it is not the scheme's default.
pub fn origin_of(uri: &http::Uri) -> Option<String> {
    let scheme = uri.scheme_str()?;
    let auth = uri.authority()?;
    if auth.host().is_empty() {
        return None;
    }
    Some(match auth.port_u16() {
        Some(p) if !((scheme == "https" && p == 443) || (scheme == "http" && p == 80)) => {
            format!("{scheme}://{}:{p}", auth.host())
        }
        _ => format!("{scheme}://{}", auth.host()),
    })
}

/// `s` cut to `max` characters, with an ellipsis when cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A browser's subscription as stored.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub endpoint: &'a str,
    /// The browser's P-256 public key, base64url.
    pub p256dh: &'a str,
    /// The 16-byte auth secret, base64url.
    pub auth: &'a str,
}

/// One push: what the sender decides.
#[derive(Debug, Clone, Copy)]
pub struct Push<'a> {
    /// The endpoint, parsed (None: it does not parse).
    pub uri: Option<&'a http::Uri>,
    /// Its origin ([`origin_of`]).
    pub origin: &'a str,
    /// The VAPID subject.
    pub contact: &'a str,
    pub local: LocalPush,
    pub ttl: Duration,
    /// `very-low`, `low`, `normal` or `high`.
    pub urgency: &'static str,
}

/// Encrypts, signs and sends one push through `client` (built by
/// [`client`](crate::client), whose resolver refuses private addresses);
/// the HTTP status, or why there is none.
pub async fn send(
    client: &reqwest::Client,
    vapid: &Vapid,
    to: Target<'_>,
    push: Push<'_>,
    payload: Vec<u8>,
) -> Result<u16, String> {
    let uri = push.uri.ok_or("the stored endpoint is not a URL")?.clone();
    // Checked again here: a subscription stored while loopback http:// was
    // allowed is not used once it no longer is.
    let url = reqwest::Url::parse(to.endpoint).map_err(|_| "the stored endpoint is not a URL")?;
    check_url(&url, push.local).map_err(|why| format!("the stored {why}"))?;
    let p256dh = decode_b64url(to.p256dh).ok_or("the stored p256dh key is not base64url")?;
    let ua_public = p256::PublicKey::from_sec1_bytes(&p256dh)
        .map_err(|_| "the stored p256dh key is not a P-256 key")?;
    let auth = decode_b64url(to.auth).ok_or("the stored auth secret is not base64url")?;
    if auth.len() != 16 {
        return Err("the stored auth secret is not 16 bytes".into());
    }
    let mut req = WebPushBuilder::new(uri, ua_public, Auth::clone_from_slice(&auth))
        .with_valid_duration(push.ttl)
        .build(payload)
        .map_err(|e| format!("cannot encrypt the payload: {e}"))?;
    let authz = vapid
        .authorization(push.origin, push.contact)
        .map_err(|e| format!("cannot sign the VAPID token: {e}"))?;
    let h = req.headers_mut();
    h.insert(
        http::header::AUTHORIZATION,
        authz
            .parse()
            .map_err(|_| "the VAPID header is not a header value")?,
    );
    h.insert("urgency", http::HeaderValue::from_static(push.urgency));
    let req = reqwest::Request::try_from(req).map_err(|e| format!("bad push request: {e}"))?;
    let resp = client
        .execute(req)
        .await
        .map_err(|e| match refusal_in(&e) {
            Some(why) => format!("refused: the stored {why}"),
            None => format!("cannot reach the push service: {}", e.without_url()),
        })?;
    Ok(resp.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_keep_non_default_ports() {
        let o = |s: &str| origin_of(&s.parse().unwrap());
        assert_eq!(
            o("https://push.example.net/x").as_deref(),
            Some("https://push.example.net")
        );
        assert_eq!(
            o("https://push.example.net:443/x").as_deref(),
            Some("https://push.example.net")
        );
        assert_eq!(
            o("https://push.example.net:8443/x").as_deref(),
            Some("https://push.example.net:8443")
        );
        assert_eq!(
            o("http://127.0.0.1:9000/x").as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }

    #[test]
    fn a_key_round_trips_and_signs_for_its_audience() {
        let pem = Vapid::generate_pem().unwrap();
        let v = Vapid::from_pem(&pem).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(v.public_b64()).unwrap().len(), 65);
        let h = v
            .authorization("https://push.example.net:8443", "mailto:a@example.net")
            .unwrap();
        assert!(h.starts_with("vapid t=") && h.ends_with(&format!(", k={}", v.public_b64())));
        assert!(Vapid::from_pem("not a key").is_err());
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(decode_b64url("AQID"), Some(vec![1, 2, 3]));
    }
}
