//! Argon2id password hashing (PHC strings), off the async executor.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::keys::KdfParams;

/// Shortest password accepted. Long passphrases beat complex short ones;
/// 10 characters is the floor, not the advice.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted: bounds the work an unauthenticated request can cause.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a new password against the policy; the message is for people.
pub fn check_policy(password: &str, username: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password must be at least {MIN_PASSWORD_CHARS} characters long"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password must be at most {MAX_PASSWORD_BYTES} bytes long"
        ));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err("the password must not be the username".into());
    }
    Ok(())
}

fn hasher(p: &KdfParams) -> Argon2<'static> {
    let params =
        Params::new(p.m_cost_kib, p.t_cost, p.p_cost, None).expect("validated Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=…`).
pub fn hash(password: &str, params: &KdfParams) -> String {
    let salt = SaltString::generate(&mut OsRng);
    hasher(params)
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2id over a bounded password cannot fail")
        .to_string()
}

/// True when `password` matches `phc`. A malformed stored hash is a
/// mismatch, never a panic. Parameters come from the PHC string, so hashes
/// made with older settings keep working.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified against when the username is
/// unknown, so a wrong name costs the same time as a wrong password.
pub fn decoy_hash(params: &KdfParams) -> String {
    hash(&porchlight_base::secret::url_token(16), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let p = KdfParams::insecure_for_tests();
        let h = hash("correct horse battery", &p);
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("x", "not a phc string"));
    }

    #[test]
    fn policy() {
        assert!(check_policy("short", "u").is_err());
        assert!(check_policy("alice-alice", "alice-alice").is_err());
        assert!(check_policy("a fine long passphrase", "alice").is_ok());
    }
}
