//! Random tokens and human-typable codes from the OS CSPRNG.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;

/// `n` random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

/// An opaque URL-safe token carrying `bytes` bytes of entropy.
pub fn url_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Crockford-style alphabet without look-alikes (no I, L, O, U), so a code
/// read off paper is typed back right.
const HUMAN: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A code for people to write down: `groups` groups of 4 characters from a
/// 32-symbol alphabet (5 bits each), joined by dashes.
/// `human_code(6)` carries 120 bits.
pub fn human_code(groups: usize) -> String {
    let mut out = String::with_capacity(groups * 5);
    for g in 0..groups {
        if g > 0 {
            out.push('-');
        }
        for _ in 0..4 {
            out.push(HUMAN[(OsRng.next_u32() % 32) as usize] as char);
        }
    }
    out
}

/// Normalises a typed human code: upper-case, dashes and spaces removed,
/// look-alike letters mapped to the digits they stand for.
pub fn normalize_human_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_codes_round_trip_through_normalisation() {
        let code = human_code(6);
        assert_eq!(code.len(), 6 * 4 + 5);
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(normalize_human_code(&typed), code.replace('-', ""));
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(url_token(32), url_token(32));
        assert_eq!(url_token(32).len(), 43);
    }
}
