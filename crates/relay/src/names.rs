//! Names under a relay's domain: how a hub's key becomes its hub-id, and
//! how a name (an SNI or a DNS question) maps back to a hub.
//!
//! Invariants:
//! * A hub-id is always exactly [`HUB_ID_LEN`] characters of lowercase
//!   RFC 4648 base32 (`a-z`, `2-7`): the first 130 bits of SHA-256 of the
//!   hub's 32-byte Ed25519 public key. It is a valid DNS label, and the
//!   relay never accepts a hub-id that is not derived from the key that
//!   authenticated the tunnel.
//! * Names are compared in lowercase without a trailing dot; anything that
//!   is not a syntactically valid host name is "not ours".

use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha256};

/// Length of a hub-id in characters (130 bits of base32).
pub const HUB_ID_LEN: usize = 26;

/// The hub-id of a hub's long-term public key: 26 lowercase base32
/// characters of SHA-256(public key bytes). Stable for the key's life;
/// a new key is a new name.
pub fn hub_id(public_key: &VerifyingKey) -> String {
    let digest = Sha256::digest(public_key.as_bytes());
    let mut s = data_encoding::BASE32_NOPAD.encode(&digest);
    s.truncate(HUB_ID_LEN);
    s.make_ascii_lowercase();
    s
}

/// Whether `s` has the shape of a hub-id (length and alphabet).
pub fn is_hub_id(s: &str) -> bool {
    s.len() == HUB_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// Checks that `domain` is a usable relay domain (a host name with at
/// least two labels) and returns it lowercased without a trailing dot.
pub fn normalize_domain(domain: &str) -> Result<String, String> {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() {
        return Err("the domain is empty".into());
    }
    if d.len() > 200 {
        return Err(format!(
            "the domain `{domain}` is longer than 200 characters"
        ));
    }
    if !d.contains('.') {
        return Err(format!(
            "the domain `{domain}` has a single label; give a full name such as relay.example.net"
        ));
    }
    for label in d.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "the domain `{domain}` has an invalid label `{label}` (letters, digits and inner hyphens only)"
            ));
        }
    }
    Ok(d)
}

/// What a name under the relay's domain stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// The domain itself.
    Apex,
    /// `<hub-id>.<domain>` or `<anything>.<hub-id>.<domain>` other than the
    /// two special names below: served through the relay.
    Hub(String),
    /// `lan.<hub-id>.<domain>`: the hub's reported LAN address.
    Lan(String),
    /// `_acme-challenge.<hub-id>.<domain>`: the hub's DNS-01 TXT records.
    AcmeChallenge(String),
    /// A name under the domain that is none of the above (e.g. a label
    /// that is not a hub-id).
    Unknown,
}

/// Classifies `name` (any case, optional trailing dot) relative to
/// `domain` (normalized). `None` when the name is not under the domain.
pub fn classify(name: &str, domain: &str) -> Option<Name> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    if n == domain {
        return Some(Name::Apex);
    }
    let prefix = n.strip_suffix(domain)?.strip_suffix('.')?;
    let mut labels = prefix.rsplit('.');
    let id = labels.next()?;
    if !is_hub_id(id) {
        return Some(Name::Unknown);
    }
    let rest: Vec<&str> = labels.collect();
    Some(match rest.as_slice() {
        [] => Name::Hub(id.to_owned()),
        ["lan"] => Name::Lan(id.to_owned()),
        ["_acme-challenge"] => Name::AcmeChallenge(id.to_owned()),
        // A browser may use any name the hub's wildcard certificate covers
        // (`*.<hub-id>.<domain>`, one label deep).
        [one] if !one.is_empty() && !one.starts_with('_') => Name::Hub(id.to_owned()),
        _ => Name::Unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_id_shape() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let id = hub_id(&key.verifying_key());
        assert_eq!(id.len(), HUB_ID_LEN);
        assert!(is_hub_id(&id), "{id}");
    }

    #[test]
    fn classify_names() {
        let d = "relay.test";
        let id = "abcdefghijklmnopqrstuvwxyz";
        assert_eq!(classify("relay.test.", d), Some(Name::Apex));
        assert_eq!(
            classify(&format!("{id}.relay.test"), d),
            Some(Name::Hub(id.into()))
        );
        assert_eq!(
            classify(&format!("www.{id}.RELAY.test"), d),
            Some(Name::Hub(id.into()))
        );
        assert_eq!(
            classify(&format!("lan.{id}.relay.test"), d),
            Some(Name::Lan(id.into()))
        );
        assert_eq!(
            classify(&format!("_acme-challenge.{id}.relay.test"), d),
            Some(Name::AcmeChallenge(id.into()))
        );
        assert_eq!(
            classify(&format!("a.b.{id}.relay.test"), d),
            Some(Name::Unknown)
        );
        assert_eq!(classify("nothub.relay.test", d), Some(Name::Unknown));
        assert_eq!(classify("example.com", d), None);
        assert_eq!(classify("xrelay.test", d), None);
    }

    #[test]
    fn domains() {
        assert_eq!(normalize_domain("Relay.Test.").unwrap(), "relay.test");
        assert!(normalize_domain("localhost").is_err());
        assert!(normalize_domain("a..b").is_err());
        assert!(normalize_domain("-a.b").is_err());
    }
}
