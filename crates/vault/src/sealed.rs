//! Per-file keys and independently sealed records, for files that must
//! survive a crash mid-write (the recorder's segment files).
//!
//! The standard age STREAM format ([`crate::stream`]) cuts the plaintext
//! into fixed 64 KiB chunks and flags the last one, so a file whose writer
//! was killed cannot be read at all without the key, and cannot be cut back
//! to its last good chunk without it either. The hub has no private key at
//! boot, yet must recover the segment that was being written when it died.
//! So segment files use this scheme instead:
//!
//! * Each file gets its own random 256-bit [`FileKey`], wrapped with age to
//!   the household members' X25519 recipients ([`FileKey::wrap_to`]). The
//!   wrapped key is an ordinary age file whose plaintext is the 32 key
//!   bytes, so `age -d -i member.txt key.age` unwraps it with the standard
//!   CLI. Wrapping needs only public keys: the hub records with nobody
//!   logged in.
//! * Each record (a GOP or part of one) is sealed on its own with ChaCha20-Poly1305
//!   under that key ([`seal`] / [`seal_in_place`]), with the record's
//!   sequence number as the nonce and the caller's associated data (the
//!   record's framing) authenticated with it. A record is either complete
//!   and authentic or it is not; nothing depends on what comes after it.
//!
//! # Nonces
//!
//! The 96-bit nonce is the record's sequence number, 32-bit little-endian,
//! followed by 8 zero bytes ([`nonce_for`]). That is safe because:
//!
//! * every file has its own key, drawn from the OS CSPRNG, so a
//!   (key, nonce) pair can only repeat within one file; and
//! * within a file the writer numbers records 0, 1, 2, … and never reuses a
//!   number — the key exists only in the writer's memory, so once the
//!   writer is gone (finished, crashed, or dropped) nobody can append to
//!   the file again. A writer that failed mid-record must not retry the
//!   same sequence number with different data; the segment writer stops
//!   accepting records after any write error for that reason.
//!
//! # Invariants
//!
//! * The file key is held in a [`Zeroizing`] buffer, is not `Clone`, and
//!   its `Debug` prints no key material. The cipher key made from it per
//!   call is zeroed when the call ends.
//! * [`open`] and [`open_in_place`] never return unauthenticated bytes; a
//!   failure is [`SealError::Tampered`], and the in-place buffer then holds
//!   no plaintext (ring zeroes it; a test checks it).
//! * Nothing here panics on any input.
//!
//! # Implementation
//!
//! The AEAD is ring's ChaCha20-Poly1305 (BoringSSL's assembly, which
//! encrypts and authenticates in one pass): about twice the speed of the
//! RustCrypto `chacha20poly1305` crate on the hub's x86-64 in a one-off
//! microbenchmark (2.5 against 1.3 GB/s for 256 KiB records; the
//! recording bench went from 0.173% to 0.146% CPU per stream with the
//! switch), and sealing was the largest single cost
//! of recording once the thread switches were gone (bench/RESULTS.md).
//! Both implement RFC 8439, byte for byte: a test seals with one and
//! opens with the other, so files written before the switch read the
//! same. ring does not wipe its keys, so each call builds its key in a
//! slot that is zeroed afterwards ([`FileKey`]'s `with_cipher`).

use std::fmt;
use std::io::Read;

use std::mem::MaybeUninit;

use porchlight_base::secret::random_bytes;
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};
use zeroize::{Zeroize, Zeroizing};

use crate::keys::MemberKey;

/// Length of a file key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the Poly1305 tag appended to every sealed record.
pub const TAG_LEN: usize = 16;
/// Length of the ChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 12;

/// Bytes an age file adds after its header to a 32-byte plaintext: the
/// 16-byte payload nonce, then one final STREAM chunk of 32 + 16 bytes.
const AGE_PAYLOAD_LEN: usize = 16 + KEY_LEN + TAG_LEN;

/// Why wrapping, unwrapping, sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// [`FileKey::wrap_to`] was given no recipients.
    #[error(
        "refusing to wrap a file key to an empty recipient list: nobody could ever open the file"
    )]
    NoRecipients,
    /// The member key is not one of the wrapped key's recipients.
    #[error("this key is not among the recipients of this file")]
    NotARecipient,
    /// The wrapped key is not a valid age file holding a 32-byte key.
    #[error("malformed wrapped file key: {0}")]
    Malformed(String),
    /// Authentication failed: wrong key, wrong sequence number, wrong
    /// associated data, or the sealed bytes were altered. These cannot be
    /// told apart.
    #[error("authentication failed: the sealed data was altered, or the key, sequence number or associated data is wrong")]
    Tampered,
    /// age refused to set up encryption.
    #[error("cannot wrap the file key: {0}")]
    Encrypt(String),
}

/// A segment file's own random ChaCha20-Poly1305 key.
///
/// Not `Clone`; zeroized on drop; `Debug` shows no key material.
pub struct FileKey(Zeroizing<[u8; KEY_LEN]>);

impl FileKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> FileKey {
        FileKey(Zeroizing::new(random_bytes::<KEY_LEN>()))
    }

    /// Wraps the key to `recipients` as a standard age v1 file (binary, not
    /// armored) whose plaintext is the 32 key bytes.
    ///
    /// Refuses an empty recipient list with [`SealError::NoRecipients`].
    pub fn wrap_to(&self, recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>, SealError> {
        if recipients.is_empty() {
            return Err(SealError::NoRecipients);
        }
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| match e {
                    age::EncryptError::MissingRecipients => SealError::NoRecipients,
                    other => SealError::Encrypt(other.to_string()),
                })?;
        let mut out = Vec::with_capacity(128 + 100 * recipients.len());
        let mut w = encryptor
            .wrap_output(&mut out)
            .map_err(|e| SealError::Encrypt(e.to_string()))?;
        std::io::Write::write_all(&mut w, &self.0[..])
            .map_err(|e| SealError::Encrypt(e.to_string()))?;
        w.finish().map_err(|e| SealError::Encrypt(e.to_string()))?;
        Ok(out)
    }

    /// Unwraps a key made by [`wrap_to`](Self::wrap_to) with a member's
    /// identity.
    ///
    /// [`SealError::NotARecipient`] when `key` is not a recipient,
    /// [`SealError::Malformed`] when the blob is not an age file holding
    /// exactly 32 bytes (or its header or payload was altered).
    pub fn unwrap(blob: &[u8], key: &MemberKey) -> Result<FileKey, SealError> {
        let decryptor = age::Decryptor::new_buffered(blob).map_err(decrypt_error)?;
        let mut reader = decryptor
            .decrypt(std::iter::once(key.identity() as &dyn age::Identity))
            .map_err(decrypt_error)?;
        // Read at most one byte more than a key, so an oversized payload is
        // noticed without reading all of it.
        let mut plain = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
        (&mut reader)
            .take(KEY_LEN as u64 + 1)
            .read_to_end(&mut plain)
            .map_err(|e| SealError::Malformed(format!("payload does not decrypt: {e}")))?;
        if plain.len() != KEY_LEN {
            return Err(SealError::Malformed(format!(
                "payload is {}{} bytes, a file key is {KEY_LEN}",
                plain.len().min(KEY_LEN),
                if plain.len() > KEY_LEN { "+" } else { "" }
            )));
        }
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        k.copy_from_slice(&plain);
        Ok(FileKey(k))
    }

    /// Runs `f` with this key as ring's ChaCha20-Poly1305 key, then wipes
    /// that copy (see "Implementation" in the module docs).
    fn with_cipher<R>(&self, f: impl FnOnce(&LessSafeKey) -> R) -> R {
        let mut slot = MaybeUninit::<LessSafeKey>::uninit();
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &self.0[..])
            .expect("a 32-byte key is a ChaCha20-Poly1305 key");
        let cipher: &LessSafeKey = slot.write(LessSafeKey::new(unbound));
        let out = f(cipher);
        // Never dropped (it owns no heap memory, and not running its drop
        // is safe), but its bytes are zeroed: any bytes are a valid
        // `MaybeUninit`.
        // SAFETY: `slot` is a live local of exactly this many bytes, and
        // `[MaybeUninit<u8>]` places no requirement on its contents.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                slot.as_mut_ptr().cast::<MaybeUninit<u8>>(),
                std::mem::size_of::<LessSafeKey>(),
            )
        };
        bytes.zeroize();
        out
    }
}

impl fmt::Debug for FileKey {
    /// Prints no key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileKey").finish_non_exhaustive()
    }
}

fn decrypt_error(e: age::DecryptError) -> SealError {
    use age::DecryptError as D;
    match e {
        D::NoMatchingKeys => SealError::NotARecipient,
        D::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            SealError::Malformed("ends inside the age header".into())
        }
        D::InvalidMac => {
            SealError::Malformed("age header MAC is invalid: the header was altered".into())
        }
        D::UnknownFormat => {
            SealError::Malformed("unknown format (not age v1, or a newer version)".into())
        }
        other => SealError::Malformed(other.to_string()),
    }
}

/// Checks, without any key, that `blob` is structurally a wrapped file key:
/// a parseable age v1 header followed by exactly the bytes a 32-byte
/// plaintext takes (16-byte nonce + 48-byte final chunk). For
/// `porchlight check` and the segment scanner. Whether it is authentic can
/// only be learnt by [`FileKey::unwrap`].
pub fn check_wrapped(blob: &[u8]) -> Result<(), SealError> {
    let mut rest = blob;
    let decryptor = age::Decryptor::new_buffered(&mut rest).map_err(decrypt_error)?;
    if decryptor.is_scrypt() {
        return Err(SealError::Malformed(
            "wrapped with a passphrase, not to X25519 recipients".into(),
        ));
    }
    drop(decryptor);
    // `new_buffered` consumed the header and the 16-byte payload nonce.
    if rest.len() != AGE_PAYLOAD_LEN - 16 {
        return Err(SealError::Malformed(format!(
            "age payload is {} bytes after the header, a wrapped file key has {}",
            rest.len() + 16,
            AGE_PAYLOAD_LEN
        )));
    }
    Ok(())
}

/// The nonce of record `seq`: `seq` as u32 little-endian, then 8 zero
/// bytes. Unique per file because records are numbered 0, 1, 2, … and every
/// file has its own key (see the module docs).
pub fn nonce_for(seq: u32) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..4].copy_from_slice(&seq.to_le_bytes());
    n
}

/// Seals `plaintext` as record `seq`, authenticating `aad` with it.
/// Returns ciphertext followed by the 16-byte tag.
pub fn seal(key: &FileKey, seq: u32, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
    buf.extend_from_slice(plaintext);
    seal_in_place(key, seq, aad, &mut buf);
    buf
}

/// Seals `buf` in place as record `seq` and appends the 16-byte tag.
///
/// Reserve [`TAG_LEN`] bytes of spare capacity beforehand to avoid the
/// `Vec` reallocating (copying) a large payload for the tag; or use
/// [`seal_in_place_detached`] and write the tag separately.
pub fn seal_in_place(key: &FileKey, seq: u32, aad: &[u8], buf: &mut Vec<u8>) {
    let tag = seal_in_place_detached(key, seq, aad, buf);
    buf.extend_from_slice(&tag);
}

/// Seals `buf` in place as record `seq` and returns the tag, which the
/// caller stores right after the ciphertext. The zero-copy form the
/// segment writer uses.
pub fn seal_in_place_detached(
    key: &FileKey,
    seq: u32,
    aad: &[u8],
    buf: &mut [u8],
) -> [u8; TAG_LEN] {
    let tag: Tag = key.with_cipher(|c| {
        c.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce_for(seq)),
            Aad::from(aad),
            buf,
        )
        // Only fails for a plaintext over ChaCha20's 256 GiB per-nonce
        // limit, which no slice in memory reaches.
        .expect("ChaCha20-Poly1305 plaintext under 256 GiB")
    });
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Opens record `seq` sealed by [`seal`]: `ciphertext` is the sealed bytes
/// followed by the tag. [`SealError::Tampered`] when authentication fails
/// (or the input is shorter than a tag).
pub fn open(key: &FileKey, seq: u32, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut buf = ciphertext.to_vec();
    open_in_place(key, seq, aad, &mut buf)?;
    Ok(buf)
}

/// Opens `buf` (sealed bytes followed by the tag) in place; on success the
/// tag is removed and `buf` holds the plaintext. On failure
/// [`SealError::Tampered`] is returned and `buf` holds no plaintext (its
/// contents are otherwise unspecified).
pub fn open_in_place(
    key: &FileKey,
    seq: u32,
    aad: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(), SealError> {
    let Some(body_len) = buf.len().checked_sub(TAG_LEN) else {
        return Err(SealError::Tampered);
    };
    let (body, tag) = buf.split_at_mut(body_len);
    let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| SealError::Tampered)?;
    open_in_place_detached(key, seq, aad, body, &tag)?;
    buf.truncate(body_len);
    Ok(())
}

/// Opens `buf` in place given its tag separately. On failure
/// [`SealError::Tampered`] is returned and `buf` holds no plaintext (its
/// contents are otherwise unspecified).
pub fn open_in_place_detached(
    key: &FileKey,
    seq: u32,
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), SealError> {
    let tag = Tag::from(*tag);
    let res = key.with_cipher(|c| {
        c.open_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce_for(seq)),
            Aad::from(aad),
            tag,
            buf,
            0..,
        )
        .map(|_| ())
    });
    res.map_err(|_| SealError::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn seal_open_round_trip() {
        let k = FileKey::generate();
        for len in [0, 1, 15, 16, 17, 1000, 70_000] {
            let plain = sample(len);
            let ct = seal(&k, 5, b"header", &plain);
            assert_eq!(ct.len(), len + TAG_LEN);
            assert_eq!(open(&k, 5, b"header", &ct).unwrap(), plain, "len {len}");
        }
    }

    #[test]
    fn in_place_matches_seal_and_round_trips() {
        let k = FileKey::generate();
        let plain = sample(4096);
        let mut buf = Vec::with_capacity(plain.len() + TAG_LEN);
        buf.extend_from_slice(&plain);
        let ptr = buf.as_ptr();
        seal_in_place(&k, 9, b"aad", &mut buf);
        assert_eq!(buf.as_ptr(), ptr, "reserved capacity: no reallocation");
        assert_eq!(buf, seal(&k, 9, b"aad", &plain));
        open_in_place(&k, 9, b"aad", &mut buf).unwrap();
        assert_eq!(buf, plain);

        let mut body = plain.clone();
        let tag = seal_in_place_detached(&k, 1, b"", &mut body);
        assert_ne!(body, plain);
        open_in_place_detached(&k, 1, b"", &mut body, &tag).unwrap();
        assert_eq!(body, plain);
    }

    #[test]
    fn wrong_seq_aad_or_key_fails() {
        let k = FileKey::generate();
        let other = FileKey::generate();
        let plain = sample(300);
        let ct = seal(&k, 3, b"aad", &plain);
        assert!(matches!(open(&k, 4, b"aad", &ct), Err(SealError::Tampered)));
        assert!(matches!(open(&k, 3, b"aae", &ct), Err(SealError::Tampered)));
        assert!(matches!(open(&k, 3, b"", &ct), Err(SealError::Tampered)));
        assert!(matches!(
            open(&other, 3, b"aad", &ct),
            Err(SealError::Tampered)
        ));
        assert!(matches!(
            open(&k, 3, b"aad", &ct[..TAG_LEN - 1]),
            Err(SealError::Tampered)
        ));
        // Same plaintext under different sequence numbers: different bytes.
        assert_ne!(seal(&k, 0, b"", &plain), seal(&k, 1, b"", &plain));
    }

    #[test]
    fn any_flipped_byte_fails_and_leaves_no_plaintext() {
        let k = FileKey::generate();
        let plain = sample(40);
        let ct = seal(&k, 0, b"a", &plain);
        for i in 0..ct.len() {
            let mut t = ct.clone();
            t[i] ^= 0x01;
            let err = open_in_place(&k, 0, b"a", &mut t).unwrap_err();
            assert!(matches!(err, SealError::Tampered), "byte {i}");
            // No run of 8 plaintext bytes is left in the buffer.
            for w in plain.windows(8) {
                assert!(!t.windows(8).any(|x| x == w), "plaintext left (byte {i})");
            }
        }
        let mut short = ct[..ct.len() - 1].to_vec();
        assert!(open_in_place(&k, 0, b"a", &mut short).is_err());
    }

    /// The on-disk format must not depend on the implementation: ring's
    /// records are RustCrypto's, byte for byte, both ways.
    #[test]
    fn records_are_the_rustcrypto_aead_byte_for_byte() {
        use chacha20poly1305::aead::{AeadInPlace, KeyInit};
        let k = FileKey::generate();
        let rc =
            chacha20poly1305::ChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&k.0[..]));
        for (seq, len) in [
            (0u32, 0usize),
            (1, 1),
            (7, 63),
            (8, 64),
            (9, 65),
            (1 << 20, 300_001),
        ] {
            let plain = sample(len);
            let aad = format!("record {seq}");
            let nonce = nonce_for(seq);
            let mut theirs = plain.clone();
            let tag = rc
                .encrypt_in_place_detached((&nonce).into(), aad.as_bytes(), &mut theirs)
                .unwrap();
            theirs.extend_from_slice(&tag);
            let ours = seal(&k, seq, aad.as_bytes(), &plain);
            assert_eq!(ours, theirs, "seq {seq}, {len} bytes");
            // And RustCrypto opens ours.
            let (body, tag) = ours.split_at(len);
            let mut opened = body.to_vec();
            rc.decrypt_in_place_detached((&nonce).into(), aad.as_bytes(), &mut opened, tag.into())
                .unwrap();
            assert_eq!(opened, plain);
        }
    }

    #[test]
    fn wrapped_key_opens_for_recipients_only() {
        let (a, b, c) = (
            MemberKey::generate(),
            MemberKey::generate(),
            MemberKey::generate(),
        );
        let k = FileKey::generate();
        let blob = k.wrap_to(&[a.recipient(), b.recipient()]).unwrap();
        check_wrapped(&blob).unwrap();
        let ct = seal(&k, 0, b"", b"hello");
        for m in [&a, &b] {
            let k2 = FileKey::unwrap(&blob, m).unwrap();
            assert_eq!(*k2.0, *k.0);
            assert_eq!(open(&k2, 0, b"", &ct).unwrap(), b"hello");
        }
        let err = FileKey::unwrap(&blob, &c).unwrap_err();
        assert!(matches!(err, SealError::NotARecipient), "{err:?}");
    }

    #[test]
    fn wrapped_key_is_a_standard_age_file() {
        let m = MemberKey::generate();
        let k = FileKey::generate();
        let blob = k.wrap_to(&[m.recipient()]).unwrap();
        assert!(blob.starts_with(b"age-encryption.org/v1\n-> X25519 "));
        // age's own one-shot decryption gives back the 32 key bytes.
        let plain = age::decrypt(m.identity(), &blob).unwrap();
        assert_eq!(plain, &k.0[..]);
        // The key bytes do not appear in the blob.
        assert!(!blob.windows(KEY_LEN).any(|w| w == &k.0[..]));
    }

    #[test]
    fn malformed_wrapped_keys_are_refused() {
        let m = MemberKey::generate();
        let blob = FileKey::generate().wrap_to(&[m.recipient()]).unwrap();
        // Not age at all; truncated; a byte too many; header altered.
        let mut altered = blob.clone();
        let line2 = altered.iter().position(|&b| b == b'\n').unwrap() + 20;
        altered[line2] ^= 0x01;
        let mut long = blob.clone();
        long.push(0);
        for (name, bad) in [
            ("garbage", b"hello world\n".to_vec()),
            ("empty", Vec::new()),
            ("truncated header", blob[..40].to_vec()),
            ("truncated payload", blob[..blob.len() - 1].to_vec()),
            ("trailing byte", long),
        ] {
            let err = FileKey::unwrap(&bad, &m).unwrap_err();
            assert!(matches!(err, SealError::Malformed(_)), "{name}: {err:?}");
            assert!(check_wrapped(&bad).is_err(), "{name}");
        }
        // An altered header is refused by unwrap (the MAC or the stanza
        // no longer matches); structurally it may still parse.
        assert!(FileKey::unwrap(&altered, &m).is_err());
        // An age file holding something other than 32 bytes.
        let other = age::encrypt(&m.recipient(), b"not a key").unwrap();
        let err = FileKey::unwrap(&other, &m).unwrap_err();
        assert!(err.to_string().contains("a file key is 32"), "{err}");
        assert!(check_wrapped(&other).is_err());
    }

    #[test]
    fn empty_recipients_refused() {
        let err = FileKey::generate().wrap_to(&[]).unwrap_err();
        assert!(matches!(err, SealError::NoRecipients));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let k = FileKey::generate();
        let s = format!("{k:?}");
        assert_eq!(s, "FileKey { .. }");
    }

    /// The standard `age` CLI unwraps the file key.
    #[test]
    fn age_cli_unwraps_file_key() {
        if !porchlight_base::tools::external("age") {
            return;
        }
        use age::secrecy::ExposeSecret;
        let m = MemberKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let id = dir.path().join("id.txt");
        std::fs::write(&id, m.identity().to_string().expose_secret()).unwrap();
        let k = FileKey::generate();
        let wrapped = dir.path().join("key.age");
        std::fs::write(&wrapped, k.wrap_to(&[m.recipient()]).unwrap()).unwrap();
        let out = std::process::Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&id)
            .arg(&wrapped)
            .output()
            .expect("run age");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, &k.0[..]);
    }
}
