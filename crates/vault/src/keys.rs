//! Household member identities, and how they are kept at rest.
//!
//! Every hub user owns one age X25519 identity ([`MemberKey`]). Recordings,
//! snapshots and thumbnails are encrypted to the *public* half (the
//! `age1...` recipient), so the hub can record with nobody logged in. The
//! *private* half is only ever stored wrapped: encrypted under a key derived
//! with Argon2id from the member's password, and a second copy under a
//! one-time recovery code (see `design/keys.md`).
//!
//! # Invariants
//!
//! * The identity's secret never leaves this module in clear except as an
//!   [`age::x25519::Identity`] in memory, or as its raw 32 bytes in a
//!   [`Zeroizing`] buffer for looking for leaked copies of it
//!   ([`MemberKey::secret_scalar`], `porchlight check --verify-as`);
//!   nothing here writes it anywhere.
//!   [`MemberKey`] has no `Clone`, and its `Debug` prints only the public
//!   recipient. The secret scalar is zeroized on drop (age's `Identity` wraps
//!   an `x25519_dalek::StaticSecret`, built with its `zeroize` feature).
//! * Intermediate secrets (the Argon2id-derived key-encryption key, the
//!   decrypted Bech32 secret string, the normalised recovery code) live in
//!   [`Zeroizing`] buffers.
//! * A wrapped blob is self-describing and versioned. Every header byte
//!   (magic, version, kind, Argon2id parameters, salt, nonce) is bound into
//!   the XChaCha20-Poly1305 associated data, so none of them can be changed
//!   without the unwrap failing.
//! * Unwrapping never panics, whatever bytes it is given; it returns a
//!   [`KeyError`]. Argon2id parameters read from a blob are bounded
//!   ([`KdfParams::validate`]) so a forged blob cannot make the hub allocate
//!   unbounded memory.
//!
//! # Blob format, version 1 (148 bytes)
//!
//! | offset | len | field                                              |
//! |-------:|----:|----------------------------------------------------|
//! | 0      | 4   | magic `b"PLWK"`                                    |
//! | 4      | 1   | version, `1`                                       |
//! | 5      | 1   | kind: `1` = password, `2` = recovery code          |
//! | 6      | 4   | Argon2id `m_cost` (KiB), u32 little-endian         |
//! | 10     | 4   | Argon2id `t_cost`, u32 LE                          |
//! | 14     | 4   | Argon2id `p_cost`, u32 LE                          |
//! | 18     | 16  | salt                                               |
//! | 34     | 24  | XChaCha20-Poly1305 nonce                           |
//! | 58     | 90  | ciphertext (74-byte `AGE-SECRET-KEY-1...`) + tag   |
//!
//! Bytes 0..58 are the AEAD associated data.

use std::fmt;
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use porchlight_base::secret::{human_code, normalize_human_code, random_bytes};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// First four bytes of every wrapped key blob.
pub const MAGIC: &[u8; 4] = b"PLWK";
/// The blob format version this code writes (and the only one it reads).
pub const FORMAT_VERSION: u8 = 1;

const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEK_LEN: usize = 32;
/// Length of an age X25519 secret key in its Bech32 form
/// (`AGE-SECRET-KEY-1` + 52 data characters + 6 checksum characters).
const SECRET_STRING_LEN: usize = 74;
const HEADER_LEN: usize = 4 + 1 + 1 + 4 + 4 + 4 + SALT_LEN + NONCE_LEN;
/// Total length of a version-1 wrapped key blob.
pub const WRAPPED_LEN: usize = HEADER_LEN + SECRET_STRING_LEN + TAG_LEN;

/// Argon2id cost parameters used to derive the key that wraps a member key.
///
/// The values are recorded in each blob, so they can be raised later
/// without breaking existing blobs (re-wrap at next login to upgrade).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub m_cost_kib: u32,
    /// Number of passes over memory.
    pub t_cost: u32,
    /// Degree of parallelism (lanes).
    pub p_cost: u32,
}

impl KdfParams {
    /// Largest memory cost accepted, in KiB (1 GiB). Bounds what a forged
    /// blob can make the hub allocate.
    pub const MAX_M_COST_KIB: u32 = 1024 * 1024;
    /// Largest number of passes accepted.
    pub const MAX_T_COST: u32 = 64;
    /// Largest parallelism accepted.
    pub const MAX_P_COST: u32 = 16;

    /// Tiny parameters (8 KiB, one pass) that make tests fast.
    ///
    /// **Never use outside tests**: a password wrapped with these can be
    /// brute-forced at millions of guesses per second.
    pub fn insecure_for_tests() -> Self {
        KdfParams {
            m_cost_kib: 8,
            t_cost: 1,
            p_cost: 1,
        }
    }

    /// Checks the parameters are accepted by Argon2id and within this
    /// module's bounds ([`Self::MAX_M_COST_KIB`], [`Self::MAX_T_COST`],
    /// [`Self::MAX_P_COST`]).
    pub fn validate(&self) -> Result<(), KeyError> {
        if self.m_cost_kib > Self::MAX_M_COST_KIB
            || self.t_cost > Self::MAX_T_COST
            || self.p_cost > Self::MAX_P_COST
        {
            return Err(KeyError::BadParams(format!(
                "{self} exceeds the limits (m <= {} KiB, t <= {}, p <= {})",
                Self::MAX_M_COST_KIB,
                Self::MAX_T_COST,
                Self::MAX_P_COST
            )));
        }
        self.argon2_params().map(|_| ())
    }

    fn argon2_params(&self) -> Result<Params, KeyError> {
        Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEK_LEN))
            .map_err(|e| KeyError::BadParams(format!("{self}: {e}")))
    }
}

impl Default for KdfParams {
    /// OWASP's recommended Argon2id configuration: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        KdfParams {
            m_cost_kib: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl fmt::Display for KdfParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Argon2id m={} KiB, t={}, p={}",
            self.m_cost_kib, self.t_cost, self.p_cost
        )
    }
}

/// What secret a blob is wrapped with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WrapKind {
    /// The member's login password.
    Password,
    /// The one-time recovery code shown at setup.
    RecoveryCode,
}

impl WrapKind {
    fn to_byte(self) -> u8 {
        match self {
            WrapKind::Password => 1,
            WrapKind::RecoveryCode => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(WrapKind::Password),
            2 => Some(WrapKind::RecoveryCode),
            _ => None,
        }
    }
}

impl fmt::Display for WrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WrapKind::Password => "password",
            WrapKind::RecoveryCode => "recovery code",
        })
    }
}

/// Public facts about a wrapped blob, read without any secret
/// (for `porchlight check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedInfo {
    /// Blob format version.
    pub version: u8,
    /// Whether a password or a recovery code unwraps it.
    pub kind: WrapKind,
    /// The Argon2id parameters it was wrapped with.
    pub params: KdfParams,
}

/// Why a key could not be unwrapped (or wrapped).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The secret is wrong, or the blob's authenticated bytes were altered;
    /// the two cannot be told apart.
    #[error("the password or recovery code does not unlock this key")]
    WrongSecret,
    /// The blob is not a wrapped key this code understands, or is the wrong
    /// kind for the call; the message says what is wrong.
    #[error("malformed wrapped key: {0}")]
    Malformed(String),
    /// Argon2id parameters are out of range.
    #[error("unusable key-derivation parameters: {0}")]
    BadParams(String),
}

/// A household member's age X25519 identity, unwrapped in memory.
///
/// The secret scalar is zeroized when this is dropped. Hold it for the
/// length of a session only (share with `Arc` if needed; it is
/// deliberately not `Clone`).
pub struct MemberKey {
    identity: age::x25519::Identity,
}

impl MemberKey {
    /// Generates a fresh identity from the OS CSPRNG.
    pub fn generate() -> MemberKey {
        MemberKey {
            identity: age::x25519::Identity::generate(),
        }
    }

    /// Wraps an existing age identity (e.g. one imported by the owner).
    pub fn from_identity(identity: age::x25519::Identity) -> MemberKey {
        MemberKey { identity }
    }

    /// The public recipient that recordings are encrypted to.
    pub fn recipient(&self) -> age::x25519::Recipient {
        self.identity.to_public()
    }

    /// The public recipient in its `age1...` text form.
    pub fn recipient_string(&self) -> String {
        self.recipient().to_string()
    }

    /// The secret identity, for decryption. Do not serialise it.
    pub fn identity(&self) -> &age::x25519::Identity {
        &self.identity
    }

    /// The raw 32-byte X25519 secret, in a buffer zeroized on drop: only
    /// to look for copies of it where none may be (a data-folder scan),
    /// since a leak need not be in the `AGE-SECRET-KEY-1…` text form.
    /// Never store or send it.
    pub fn secret_scalar(&self) -> Zeroizing<[u8; 32]> {
        use age::secrecy::ExposeSecret;
        let text = self.identity.to_string();
        bech32_payload(text.expose_secret())
            .expect("age writes its own identities as valid Bech32 of 32 bytes")
    }
}

/// The 32 data bytes of an age identity's Bech32 text
/// (`AGE-SECRET-KEY-1` + 52 data characters + 6 checksum characters).
/// Hand-written rather than through the `bech32` crate so that no
/// intermediate copy escapes zeroizing; the checksum is not verified (the
/// text comes from age itself, and a wrong checksum cannot yield another
/// key's bytes). `None` for anything else.
fn bech32_payload(text: &str) -> Option<Zeroizing<[u8; 32]>> {
    const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let (_, rest) = text.rsplit_once('1')?;
    let data = rest.as_bytes().get(..rest.len().checked_sub(6)?)?;
    if data.len() != 52 {
        return None;
    }
    let mut out = Zeroizing::new([0u8; 32]);
    let (mut acc, mut bits, mut n) = (Zeroizing::new(0u32), 0u32, 0usize);
    for &c in data {
        let v = CHARSET.iter().position(|&x| x == c.to_ascii_lowercase())? as u32;
        *acc = (*acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (*acc >> bits) as u8;
            n += 1;
            *acc &= (1 << bits) - 1;
        }
    }
    // 52 × 5 = 260 bits: 32 bytes and 4 zero padding bits.
    (n == 32 && *acc == 0).then_some(out)
}

impl fmt::Debug for MemberKey {
    /// Prints only the public recipient, never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberKey")
            .field("recipient", &self.recipient_string())
            .finish_non_exhaustive()
    }
}

/// A fresh recovery code for a member: 6 groups of 4 characters from a
/// 32-symbol alphabet, 120 bits. Show it once; store only the blob from
/// [`wrap_with_recovery_code`].
pub fn new_recovery_code() -> Zeroizing<String> {
    Zeroizing::new(human_code(6))
}

/// Wraps `key` under `password` with Argon2id `params`.
///
/// # Panics
///
/// If `params` fails [`KdfParams::validate`]; check configured parameters
/// at startup. [`KdfParams::default`] always passes.
pub fn wrap_with_password(key: &MemberKey, password: &str, params: &KdfParams) -> Vec<u8> {
    wrap(key, WrapKind::Password, password.as_bytes(), params)
}

/// Unwraps a blob made by [`wrap_with_password`].
///
/// A recovery-code blob is refused with [`KeyError::Malformed`].
pub fn unwrap_with_password(blob: &[u8], password: &str) -> Result<MemberKey, KeyError> {
    unwrap(blob, WrapKind::Password, password.as_bytes())
}

/// Wraps `key` under a recovery code. The code is normalised first
/// (case, dashes, spaces and look-alike letters do not matter).
///
/// # Panics
///
/// If `params` fails [`KdfParams::validate`].
pub fn wrap_with_recovery_code(key: &MemberKey, code: &str, params: &KdfParams) -> Vec<u8> {
    let code = Zeroizing::new(normalize_human_code(code));
    wrap(key, WrapKind::RecoveryCode, code.as_bytes(), params)
}

/// Unwraps a blob made by [`wrap_with_recovery_code`], normalising the typed
/// code the same way.
///
/// A password blob is refused with [`KeyError::Malformed`].
pub fn unwrap_with_recovery_code(blob: &[u8], code: &str) -> Result<MemberKey, KeyError> {
    let code = Zeroizing::new(normalize_human_code(code));
    unwrap(blob, WrapKind::RecoveryCode, code.as_bytes())
}

/// Reads a blob's header (version, kind, parameters) without any secret,
/// checking its structure.
pub fn inspect(blob: &[u8]) -> Result<WrappedInfo, KeyError> {
    parse_header(blob).map(|h| h.info)
}

struct Header<'a> {
    info: WrappedInfo,
    salt: &'a [u8],
    nonce: &'a [u8],
    aad: &'a [u8],
    ciphertext: &'a [u8],
}

fn parse_header(blob: &[u8]) -> Result<Header<'_>, KeyError> {
    if blob.len() < MAGIC.len() + 1 {
        return Err(KeyError::Malformed(format!(
            "too short ({} bytes) to be a wrapped key",
            blob.len()
        )));
    }
    if &blob[..4] != MAGIC {
        return Err(KeyError::Malformed(
            "bad magic: not a Porchlight wrapped key (expected \"PLWK\")".into(),
        ));
    }
    let version = blob[4];
    if version != FORMAT_VERSION {
        return Err(KeyError::Malformed(format!(
            "unsupported version {version} (this build reads version {FORMAT_VERSION})"
        )));
    }
    if blob.len() != WRAPPED_LEN {
        return Err(KeyError::Malformed(format!(
            "wrong length: {} bytes, a version-{FORMAT_VERSION} wrapped key is {WRAPPED_LEN} \
             (truncated or padded?)",
            blob.len()
        )));
    }
    let kind = WrapKind::from_byte(blob[5])
        .ok_or_else(|| KeyError::Malformed(format!("unknown kind byte {}", blob[5])))?;
    let u32_at = |i: usize| u32::from_le_bytes([blob[i], blob[i + 1], blob[i + 2], blob[i + 3]]);
    let params = KdfParams {
        m_cost_kib: u32_at(6),
        t_cost: u32_at(10),
        p_cost: u32_at(14),
    };
    params
        .validate()
        .map_err(|e| KeyError::Malformed(e.to_string()))?;
    Ok(Header {
        info: WrappedInfo {
            version,
            kind,
            params,
        },
        salt: &blob[18..18 + SALT_LEN],
        nonce: &blob[18 + SALT_LEN..HEADER_LEN],
        aad: &blob[..HEADER_LEN],
        ciphertext: &blob[HEADER_LEN..],
    })
}

fn derive_kek(
    secret: &[u8],
    salt: &[u8],
    params: &KdfParams,
) -> Result<Zeroizing<[u8; KEK_LEN]>, KeyError> {
    params.validate()?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.argon2_params()?);
    let mut kek = Zeroizing::new([0u8; KEK_LEN]);
    argon
        .hash_password_into(secret, salt, kek.as_mut())
        .map_err(|e| KeyError::BadParams(e.to_string()))?;
    Ok(kek)
}

fn wrap(key: &MemberKey, kind: WrapKind, secret: &[u8], params: &KdfParams) -> Vec<u8> {
    let salt: [u8; SALT_LEN] = random_bytes();
    let nonce: [u8; NONCE_LEN] = random_bytes();

    let mut blob = Vec::with_capacity(WRAPPED_LEN);
    blob.extend_from_slice(MAGIC);
    blob.push(FORMAT_VERSION);
    blob.push(kind.to_byte());
    blob.extend_from_slice(&params.m_cost_kib.to_le_bytes());
    blob.extend_from_slice(&params.t_cost.to_le_bytes());
    blob.extend_from_slice(&params.p_cost.to_le_bytes());
    blob.extend_from_slice(&salt);
    blob.extend_from_slice(&nonce);
    debug_assert_eq!(blob.len(), HEADER_LEN);

    let kek = match derive_kek(secret, &salt, params) {
        Ok(kek) => kek,
        Err(e) => panic!("wrap called with invalid parameters: {e}"),
    };
    let cipher = XChaCha20Poly1305::new(Key::from_slice(kek.as_ref()));
    let secret_string = key.identity.to_string();
    let plaintext = secret_string.expose_secret().as_bytes();
    debug_assert_eq!(plaintext.len(), SECRET_STRING_LEN);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &blob,
            },
        )
        .expect("XChaCha20-Poly1305 encryption of 74 bytes cannot fail");
    blob.extend_from_slice(&ciphertext);
    debug_assert_eq!(blob.len(), WRAPPED_LEN);
    blob
}

fn unwrap(blob: &[u8], expected: WrapKind, secret: &[u8]) -> Result<MemberKey, KeyError> {
    let header = parse_header(blob)?;
    if header.info.kind != expected {
        return Err(KeyError::Malformed(format!(
            "this key is wrapped by a {}, not a {expected}",
            header.info.kind
        )));
    }
    let kek = derive_kek(secret, header.salt, &header.info.params)?;
    let cipher = XChaCha20Poly1305::new(Key::from_slice(kek.as_ref()));
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(header.nonce),
                Payload {
                    msg: header.ciphertext,
                    aad: header.aad,
                },
            )
            .map_err(|_| KeyError::WrongSecret)?,
    );
    let text = std::str::from_utf8(&plaintext)
        .map_err(|_| KeyError::Malformed("decrypted key is not text".into()))?;
    let identity = age::x25519::Identity::from_str(text)
        .map_err(|e| KeyError::Malformed(format!("decrypted key is not an age identity: {e}")))?;
    Ok(MemberKey { identity })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> KdfParams {
        KdfParams::insecure_for_tests()
    }

    /// Decodes the 32 raw secret bytes from an `AGE-SECRET-KEY-1...` string
    /// (Bech32 data part, checksum dropped), so tests can look for them.
    fn raw_secret(key: &MemberKey) -> Vec<u8> {
        const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
        let s = key.identity.to_string();
        let s = s.expose_secret().to_ascii_lowercase();
        let data = &s["age-secret-key-1".len()..s.len() - 6];
        let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
        for c in data.bytes() {
            let v = CHARSET.iter().position(|&x| x == c).unwrap() as u32;
            acc = (acc << 5) | v;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        assert_eq!(out.len(), 32);
        out
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn secret_scalar_is_the_identitys_raw_bytes() {
        use bech32::ToBase32 as _;
        for bytes in [[0u8; 32], [0xff; 32], *b"0123456789abcdef0123456789ABCDEF"] {
            // Encoded by the bech32 crate as age writes identities.
            let text = bech32::encode(
                "age-secret-key-",
                bytes.to_base32(),
                bech32::Variant::Bech32,
            )
            .unwrap()
            .to_uppercase();
            let key = MemberKey::from_identity(text.parse().unwrap());
            assert_eq!(*key.secret_scalar(), bytes);
        }
        let key = MemberKey::generate();
        assert_eq!(key.secret_scalar().to_vec(), raw_secret(&key));
        assert!(bech32_payload("age1qqqq").is_none());
        assert!(bech32_payload("AGE-SECRET-KEY-1").is_none());
        assert!(
            bech32_payload(&format!("AGE-SECRET-KEY-1{}", "b".repeat(58))).is_none(),
            "b is not in the charset"
        );
    }

    #[test]
    fn password_round_trip() {
        let key = MemberKey::generate();
        let blob = wrap_with_password(&key, "correct horse battery staple", &fast());
        assert_eq!(blob.len(), WRAPPED_LEN);
        let back = unwrap_with_password(&blob, "correct horse battery staple").unwrap();
        assert_eq!(back.recipient_string(), key.recipient_string());
        assert!(key.recipient_string().starts_with("age1"));
    }

    #[test]
    fn password_round_trip_with_default_params() {
        let key = MemberKey::generate();
        let params = KdfParams::default();
        let start = std::time::Instant::now();
        let blob = wrap_with_password(&key, "pässwörd ☂", &params);
        let elapsed = start.elapsed();
        eprintln!("argon2id {params}: wrap took {elapsed:?}");
        let info = inspect(&blob).unwrap();
        assert_eq!(info.params, params);
        assert_eq!(info.kind, WrapKind::Password);
        let back = unwrap_with_password(&blob, "pässwörd ☂").unwrap();
        assert_eq!(back.recipient_string(), key.recipient_string());
        assert!(matches!(
            unwrap_with_password(&blob, "password"),
            Err(KeyError::WrongSecret)
        ));
    }

    #[test]
    fn wrong_password_is_wrong_secret() {
        let key = MemberKey::generate();
        let blob = wrap_with_password(&key, "hunter22", &fast());
        let err = unwrap_with_password(&blob, "hunter23").unwrap_err();
        assert!(matches!(err, KeyError::WrongSecret), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the password or recovery code does not unlock this key"
        );
        assert!(matches!(
            unwrap_with_password(&blob, ""),
            Err(KeyError::WrongSecret)
        ));
    }

    #[test]
    fn recovery_code_round_trip_typed_differently() {
        let key = MemberKey::generate();
        let code = new_recovery_code();
        assert_eq!(code.len(), 6 * 4 + 5);
        let blob = wrap_with_recovery_code(&key, &code, &fast());
        let typed = format!("  {}  ", code.to_lowercase().replace('-', " "));
        let back = unwrap_with_recovery_code(&blob, &typed).unwrap();
        assert_eq!(back.recipient_string(), key.recipient_string());
        // Look-alikes: a `0` typed as `o`, a `1` typed as `l`.
        let lookalike = code.replace('0', "o").replace('1', "l");
        assert!(unwrap_with_recovery_code(&blob, &lookalike).is_ok());
        assert!(matches!(
            unwrap_with_recovery_code(&blob, &new_recovery_code()),
            Err(KeyError::WrongSecret)
        ));
        assert_eq!(inspect(&blob).unwrap().kind, WrapKind::RecoveryCode);
    }

    #[test]
    fn kind_mismatch_is_refused_clearly() {
        let key = MemberKey::generate();
        let code = new_recovery_code();
        let pw_blob = wrap_with_password(&key, &code, &fast());
        let err = unwrap_with_recovery_code(&pw_blob, &code).unwrap_err();
        assert!(matches!(err, KeyError::Malformed(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains("wrapped by a password, not a recovery code"),
            "{err}"
        );
        let rc_blob = wrap_with_recovery_code(&key, &code, &fast());
        let err = unwrap_with_password(&rc_blob, &code).unwrap_err();
        assert!(
            err.to_string()
                .contains("wrapped by a recovery code, not a password"),
            "{err}"
        );
    }

    #[test]
    fn swapping_kind_byte_does_not_unlock() {
        // Rewriting the kind byte gets past the kind check but the header is
        // authenticated, so the AEAD refuses it.
        let key = MemberKey::generate();
        let mut blob = wrap_with_password(&key, "pw", &fast());
        blob[5] = WrapKind::RecoveryCode.to_byte();
        assert!(matches!(
            unwrap_with_recovery_code(&blob, "pw"),
            Err(KeyError::WrongSecret)
        ));
    }

    #[test]
    fn tampered_bytes_give_errors_not_panics() {
        let key = MemberKey::generate();
        let blob = wrap_with_password(&key, "pw", &fast());
        for i in 0..blob.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut t = blob.clone();
                t[i] ^= flip;
                let res = unwrap_with_password(&t, "pw");
                assert!(res.is_err(), "byte {i} ^ {flip:#x} still unwrapped");
            }
        }
        // Specific header fields give specific messages.
        let mut t = blob.clone();
        t[0] = b'X';
        assert!(inspect(&t).unwrap_err().to_string().contains("bad magic"));
        let mut t = blob.clone();
        t[4] = 2;
        assert!(inspect(&t)
            .unwrap_err()
            .to_string()
            .contains("unsupported version 2"));
        let mut t = blob.clone();
        t[5] = 9;
        assert!(inspect(&t)
            .unwrap_err()
            .to_string()
            .contains("unknown kind"));
        // A forged enormous memory cost is refused before any allocation.
        let mut t = blob.clone();
        t[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            unwrap_with_password(&t, "pw"),
            Err(KeyError::Malformed(_))
        ));
        // A changed (still valid) cost parameter is caught by the AEAD.
        let mut t = blob.clone();
        t[10] = 2;
        assert!(matches!(
            unwrap_with_password(&t, "pw"),
            Err(KeyError::WrongSecret)
        ));
    }

    #[test]
    fn truncated_and_padded_blobs_give_errors() {
        let key = MemberKey::generate();
        let blob = wrap_with_password(&key, "pw", &fast());
        for len in 0..blob.len() {
            let err = unwrap_with_password(&blob[..len], "pw").unwrap_err();
            assert!(matches!(err, KeyError::Malformed(_)), "len {len}: {err:?}");
            assert!(inspect(&blob[..len]).is_err());
            assert!(unwrap_with_recovery_code(&blob[..len], "pw").is_err());
        }
        let mut long = blob.clone();
        long.push(0);
        assert!(matches!(
            unwrap_with_password(&long, "pw"),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            unwrap_with_password(b"", "pw"),
            Err(KeyError::Malformed(m)) if m.contains("too short")
        ));
    }

    #[test]
    fn blob_does_not_contain_the_secret() {
        let key = MemberKey::generate();
        let raw = raw_secret(&key);
        let secret_string = key.identity.to_string();
        for blob in [
            wrap_with_password(&key, "pw", &fast()),
            wrap_with_recovery_code(&key, &new_recovery_code(), &fast()),
        ] {
            assert!(!contains(&blob, b"AGE-SECRET-KEY-1"));
            assert!(!contains(&blob, secret_string.expose_secret().as_bytes()));
            assert!(!contains(&blob, &raw));
            // Not even an 8-byte run of the raw secret.
            for w in raw.windows(8) {
                assert!(!contains(&blob, w));
            }
        }
    }

    #[test]
    fn rewrap_with_new_password_keeps_the_key() {
        let key = MemberKey::generate();
        let old_blob = wrap_with_password(&key, "old password", &fast());
        let unlocked = unwrap_with_password(&old_blob, "old password").unwrap();
        let new_blob = wrap_with_password(&unlocked, "new password", &fast());
        assert!(matches!(
            unwrap_with_password(&new_blob, "old password"),
            Err(KeyError::WrongSecret)
        ));
        let again = unwrap_with_password(&new_blob, "new password").unwrap();
        assert_eq!(again.recipient_string(), key.recipient_string());
        // Fresh salt and nonce each time: same key and password, different blob.
        assert_ne!(
            wrap_with_password(&key, "pw", &fast()),
            wrap_with_password(&key, "pw", &fast())
        );
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let key = MemberKey::generate();
        let dbg = format!("{key:?}");
        assert!(dbg.contains(&key.recipient_string()));
        assert!(!dbg.to_uppercase().contains("AGE-SECRET-KEY"));
    }

    #[test]
    fn params_are_validated() {
        assert!(KdfParams::default().validate().is_ok());
        assert!(KdfParams::insecure_for_tests().validate().is_ok());
        let bad = KdfParams {
            m_cost_kib: 0,
            t_cost: 1,
            p_cost: 1,
        };
        assert!(matches!(bad.validate(), Err(KeyError::BadParams(_))));
        let huge = KdfParams {
            m_cost_kib: KdfParams::MAX_M_COST_KIB + 1,
            ..KdfParams::default()
        };
        assert!(huge.validate().is_err());
    }
}
