//! The enrolment token: what `porchlight relay invite` prints and
//! `porchlight remote enable --token` reads.
//!
//! Text form (one shell word, no quoting needed):
//!
//! ```text
//! plr1_<fingerprint>_<secret>_<domain>[_<relay control address>]
//! ```
//!
//! * `fingerprint` — 52 lowercase base32 characters: SHA-256 of the relay
//!   control certificate's SubjectPublicKeyInfo. The hub pins it; no CA is
//!   involved, so whoever hands the token over vouches for the relay.
//! * `secret` — 26 lowercase base32 characters (128 random bits). The relay
//!   keeps only its SHA-256, with an expiry; the first hub key that
//!   presents it is enrolled and the secret is spent.
//! * `domain` — the relay's DNS domain; the hub will be `<hub-id>.<domain>`.
//! * `relay control address` — optional `host:port` hint for the control
//!   port (the operator may leave it out and tell the household instead).
//!
//! Invariants: [`EnrolmentToken::to_string`] and [`str::parse`] round-trip;
//! parsing names the first malformed part and never echoes the secret.

use std::fmt;
use std::str::FromStr;

use crate::names::normalize_domain;

/// Text that starts every token (format version 1).
pub const TOKEN_PREFIX: &str = "plr1";
/// Length of the secret in bytes.
pub const SECRET_LEN: usize = 16;

/// A parsed enrolment token.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrolmentToken {
    /// SHA-256 of the relay control certificate's SPKI.
    pub relay_fingerprint: [u8; 32],
    /// The single-use secret.
    pub secret: [u8; SECRET_LEN],
    /// The relay's domain, lowercase, no trailing dot.
    pub domain: String,
    /// `host:port` of the relay's control port, if the operator put it in.
    pub relay_addr: Option<String>,
}

/// Why a token did not parse. Each names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a Porchlight relay enrolment token: it should start with `{TOKEN_PREFIX}_` (copy the whole line `porchlight relay invite` printed)")]
    Prefix,
    #[error("the enrolment token is incomplete: it has {0} of at least 4 `_`-separated parts (prefix, fingerprint, secret, domain)")]
    Parts(usize),
    #[error("the enrolment token has {0} `_`-separated parts; at most 5 are allowed")]
    TooManyParts(usize),
    #[error(
        "the relay fingerprint in the enrolment token is not 52 base32 characters (a-z, 2-7): {0}"
    )]
    Fingerprint(String),
    #[error("the secret in the enrolment token is not 26 base32 characters (a-z, 2-7)")]
    Secret,
    #[error("the domain in the enrolment token is invalid: {0}")]
    Domain(String),
    #[error("the relay address in the enrolment token is not host:port: `{0}`")]
    RelayAddr(String),
}

impl EnrolmentToken {
    /// The relay fingerprint as it is written in tokens and logs.
    pub fn fingerprint_text(&self) -> String {
        fingerprint_text(&self.relay_fingerprint)
    }
}

/// A 32-byte fingerprint as 52 lowercase base32 characters.
pub fn fingerprint_text(fp: &[u8; 32]) -> String {
    data_encoding::BASE32_NOPAD.encode(fp).to_ascii_lowercase()
}

/// Parses [`fingerprint_text`] back.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], TokenError> {
    let bad = |why: &str| TokenError::Fingerprint(why.to_owned());
    if s.len() != 52 {
        return Err(bad(&format!("it has {} characters", s.len())));
    }
    let bytes = data_encoding::BASE32_NOPAD
        .decode(s.to_ascii_uppercase().as_bytes())
        .map_err(|_| bad("it has characters outside a-z, 2-7"))?;
    bytes.try_into().map_err(|_| bad("wrong length"))
}

impl FromStr for EnrolmentToken {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let parts: Vec<&str> = s.split('_').collect();
        if parts[0] != TOKEN_PREFIX {
            return Err(TokenError::Prefix);
        }
        if parts.len() < 4 {
            return Err(TokenError::Parts(parts.len()));
        }
        if parts.len() > 5 {
            return Err(TokenError::TooManyParts(parts.len()));
        }
        let relay_fingerprint = parse_fingerprint(parts[1])?;
        let secret: [u8; SECRET_LEN] = (parts[2].len() == 26)
            .then(|| {
                data_encoding::BASE32_NOPAD
                    .decode(parts[2].to_ascii_uppercase().as_bytes())
                    .ok()
            })
            .flatten()
            .and_then(|b| b.try_into().ok())
            .ok_or(TokenError::Secret)?;
        let domain = normalize_domain(parts[3]).map_err(TokenError::Domain)?;
        let relay_addr = match parts.get(4) {
            None => None,
            Some(a) => {
                let ok = a
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
                if !ok {
                    return Err(TokenError::RelayAddr((*a).to_owned()));
                }
                Some((*a).to_owned())
            }
        };
        Ok(EnrolmentToken {
            relay_fingerprint,
            secret,
            domain,
            relay_addr,
        })
    }
}

impl fmt::Display for EnrolmentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TOKEN_PREFIX}_{}_{}_{}",
            self.fingerprint_text(),
            data_encoding::BASE32_NOPAD
                .encode(&self.secret)
                .to_ascii_lowercase(),
            self.domain
        )?;
        if let Some(a) = &self.relay_addr {
            write!(f, "_{a}")?;
        }
        Ok(())
    }
}

/// Debug leaves the secret out: tokens end up in logs by accident.
impl fmt::Debug for EnrolmentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrolmentToken")
            .field("relay_fingerprint", &self.fingerprint_text())
            .field("secret", &"…")
            .field("domain", &self.domain)
            .field("relay_addr", &self.relay_addr)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EnrolmentToken {
        EnrolmentToken {
            relay_fingerprint: [3; 32],
            secret: [9; SECRET_LEN],
            domain: "relay.test".into(),
            relay_addr: Some("127.0.0.1:7443".into()),
        }
    }

    #[test]
    fn round_trip() {
        let t = sample();
        let s = t.to_string();
        assert_eq!(s.parse::<EnrolmentToken>().unwrap(), t);
        let t2 = EnrolmentToken {
            relay_addr: None,
            ..sample()
        };
        assert_eq!(t2.to_string().parse::<EnrolmentToken>().unwrap(), t2);
        assert!(!format!("{t:?}").contains(&data_encoding::BASE32_NOPAD.encode(&t.secret)));
    }

    #[test]
    fn each_bad_part_is_named() {
        let good = sample().to_string();
        let parts: Vec<String> = good.split('_').map(str::to_owned).collect();
        let with = |i: usize, v: &str| {
            let mut p = parts.clone();
            p[i] = v.into();
            p.join("_").parse::<EnrolmentToken>().unwrap_err()
        };
        assert_eq!(with(0, "xyz"), TokenError::Prefix);
        assert!(matches!(with(1, "abc"), TokenError::Fingerprint(_)));
        assert!(matches!(
            with(1, &"1".repeat(52)),
            TokenError::Fingerprint(_)
        ));
        assert_eq!(with(2, "short"), TokenError::Secret);
        assert!(matches!(with(3, "nodots"), TokenError::Domain(_)));
        assert!(matches!(
            with(4, "host-without-port"),
            TokenError::RelayAddr(_)
        ));
        assert_eq!(
            "plr1_a_b".parse::<EnrolmentToken>().unwrap_err(),
            TokenError::Parts(3)
        );
        assert!(matches!(
            format!("{good}_x").parse::<EnrolmentToken>().unwrap_err(),
            TokenError::TooManyParts(6)
        ));
        assert_eq!(
            "".parse::<EnrolmentToken>().unwrap_err(),
            TokenError::Prefix
        );
    }
}
