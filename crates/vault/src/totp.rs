//! Time-based one-time passwords (RFC 6238, HMAC-SHA1, 6 digits, 30 s).
//!
//! Written here rather than taken from a crate because sign-in needs to
//! know *which* time step a code matched: the step is recorded atomically
//! in the store and any code for that step or an earlier one is refused
//! afterwards, so a code seen over someone's shoulder cannot be replayed
//! even within its 30 s window. The arithmetic is RFC 4226's and is checked
//! against the RFC's own test vectors below.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Length of a step in seconds.
pub const STEP_SECONDS: i64 = 30;
/// Steps either side of "now" accepted, for phones whose clocks drift.
pub const SKEW_STEPS: i64 = 1;
/// Bytes of a new secret (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;

/// The step containing Unix time `unix_seconds`.
pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The code for `step`, as `digits` decimal digits.
pub fn code_for_step(secret: &[u8], step: i64, digits: u32) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&(step as u64).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    format!(
        "{:0width$}",
        bin % 10u32.pow(digits),
        width = digits as usize
    )
}

/// The step within ±[`SKEW_STEPS`] of `unix_seconds` whose code equals
/// `typed` (spaces ignored), if any. Compares in constant time per step.
pub fn matching_step(secret: &[u8], typed: &str, unix_seconds: i64) -> Option<i64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != 6 || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(unix_seconds);
    let mut found = None;
    for step in now - SKEW_STEPS..=now + SKEW_STEPS {
        let code = code_for_step(secret, step, 6);
        let same = code
            .bytes()
            .zip(typed.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if same && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Base32 (RFC 4648, no padding), the form authenticator apps take.
pub fn secret_to_base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI an authenticator app scans from a QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={}",
        enc(issuer),
        enc(account),
        secret_to_base32(secret),
        enc(issuer),
        STEP_SECONDS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA1 column (8 digits).
        for (t, code) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(code_for_step(RFC_SECRET, step_at(t), 8), code, "t={t}");
        }
    }

    #[test]
    fn accepts_adjacent_steps_only() {
        let now = 1_700_000_000;
        let s = step_at(now);
        for (d, ok) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = code_for_step(RFC_SECRET, s + d, 6);
            assert_eq!(
                matching_step(RFC_SECRET, &code, now).is_some(),
                ok,
                "offset {d}"
            );
        }
        assert_eq!(matching_step(RFC_SECRET, "12345", now), None);
        assert_eq!(matching_step(RFC_SECRET, "abcdef", now), None);
        let spaced = code_for_step(RFC_SECRET, s, 6);
        let spaced = format!("{} {}", &spaced[..3], &spaced[3..]);
        assert_eq!(matching_step(RFC_SECRET, &spaced, now), Some(s));
    }

    #[test]
    fn uri_carries_base32_secret() {
        let uri = otpauth_uri("Porchlight", "alice smith", RFC_SECRET);
        assert!(
            uri.starts_with(
                "otpauth://totp/Porchlight:alice%20smith?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&"
            ),
            "{uri}"
        );
    }
}
