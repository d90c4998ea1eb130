//! Streaming encryption of recordings, snapshots and exports to household
//! members' keys, in the standard age v1 format.
//!
//! The recorder writes through [`encrypt_to`] so no plaintext ever reaches
//! disk; playback and exports read through [`open`] (seekable, for HTTP
//! Range requests) or [`open_sequential`]. Because the files are plain age
//! files encrypted to X25519 recipients, a member can decrypt an export with
//! the standard `age` CLI and their identity.
//!
//! # Invariants
//!
//! * Encryption needs at least one recipient; an empty list is refused
//!   rather than producing a file nobody can open.
//! * An [`EncryptingWriter`] must be [`finish`](EncryptingWriter::finish)ed.
//!   Dropping it without `finish` leaves a truncated file whose last chunk is
//!   missing; readers reject it (with an error, never silently short data).
//! * Readers never return unauthenticated plaintext: age authenticates each
//!   64 KiB chunk (ChaCha20-Poly1305) before any byte of it is returned, so a
//!   flipped or truncated ciphertext surfaces as an `io::Error`
//!   (`InvalidData` / `UnexpectedEof`) from `read`/`seek`.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::keys::MemberKey;

/// Why a stream could not be set up.
///
/// Errors *during* reading or writing come through the `std::io` traits as
/// `io::Error`.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// [`encrypt_to`] was given no recipients.
    #[error("refusing to encrypt to an empty recipient list: nobody could ever open the file")]
    NoRecipients,
    /// The key opening the file is not one of its recipients.
    #[error("this key is not among the recipients of this file")]
    NotARecipient,
    /// The input is not a valid age v1 file, or its header was altered.
    #[error("not a readable age file: {0}")]
    Malformed(String),
    /// age refused the recipient set or another encryption setup problem.
    #[error("cannot set up encryption: {0}")]
    Encrypt(String),
    /// Reading or writing the underlying file failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl From<age::DecryptError> for StreamError {
    fn from(e: age::DecryptError) -> Self {
        use age::DecryptError as D;
        match e {
            D::NoMatchingKeys => StreamError::NotARecipient,
            D::Io(io) => {
                if io.kind() == io::ErrorKind::UnexpectedEof {
                    StreamError::Malformed("file ends inside the age header".into())
                } else {
                    StreamError::Io(io)
                }
            }
            D::InvalidMac => {
                StreamError::Malformed("header MAC is invalid: the header was altered".into())
            }
            D::UnknownFormat => {
                StreamError::Malformed("unknown format (not age v1, or a newer version)".into())
            }
            other => StreamError::Malformed(other.to_string()),
        }
    }
}

/// Encrypts everything written to it to a set of recipients, in the age v1
/// format, into the inner writer.
///
/// Call [`finish`](Self::finish) when done. Dropping it without `finish`
/// leaves a truncated, unauthenticated-at-the-end stream that will fail to
/// decrypt.
pub struct EncryptingWriter<W: Write> {
    inner: age::stream::StreamWriter<W>,
}

impl<W: Write> EncryptingWriter<W> {
    /// Writes the final (authenticated-as-last) chunk and returns the inner
    /// writer. The inner writer is not flushed or synced; do that yourself
    /// (e.g. `File::sync_all`) if durability matters.
    pub fn finish(self) -> Result<W, StreamError> {
        Ok(self.inner.finish()?)
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    /// Flushes the inner writer. Plaintext of the current, incomplete 64 KiB
    /// chunk stays buffered until it is full or [`finish`](Self::finish).
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Starts an age file encrypted to `recipients` in `out`; the header is
/// written immediately.
///
/// Refuses an empty recipient list with [`StreamError::NoRecipients`].
pub fn encrypt_to<W: Write>(
    recipients: &[age::x25519::Recipient],
    out: W,
) -> Result<EncryptingWriter<W>, StreamError> {
    if recipients.is_empty() {
        return Err(StreamError::NoRecipients);
    }
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| match e {
                age::EncryptError::MissingRecipients => StreamError::NoRecipients,
                age::EncryptError::Io(io) => StreamError::Io(io),
                other => StreamError::Encrypt(other.to_string()),
            })?;
    let inner = encryptor.wrap_output(out)?;
    Ok(EncryptingWriter { inner })
}

/// Decrypted plaintext of an age file. Implements [`Read`], and [`Seek`]
/// when the inner reader does (positions are plaintext offsets).
///
/// Every byte returned has been authenticated; tampering or truncation
/// shows up as an `io::Error`.
pub struct DecryptingReader<R> {
    inner: age::stream::StreamReader<R>,
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<R: Read + Seek> Seek for DecryptingReader<R> {
    /// Seeks in plaintext offsets. `SeekFrom::End` authenticates the last
    /// chunk to learn the length, so a truncated file fails here too.
    /// Seeking past the end is allowed (reads then return 0 bytes).
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Opens a seekable age file with `key`.
///
/// The age header is read from the reader's current position, which is
/// taken as the start of the file. Returns [`StreamError::NotARecipient`]
/// if `key` cannot open it. Wrapping a `File` in a `BufReader` is fine and
/// speeds up header parsing.
pub fn open<R: Read + Seek>(key: &MemberKey, input: R) -> Result<DecryptingReader<R>, StreamError> {
    open_sequential(key, input)
}

/// Opens an age file from a non-seekable reader (a pipe, a socket) with
/// `key`. Returns [`StreamError::NotARecipient`] if `key` cannot open it.
pub fn open_sequential<R: Read>(
    key: &MemberKey,
    input: R,
) -> Result<DecryptingReader<R>, StreamError> {
    // `Decryptor::new` reads exactly the header bytes (no read-ahead), so
    // the stream reader's notion of where the payload starts stays right
    // for seeking.
    let decryptor = age::Decryptor::new(input)?;
    let inner = decryptor.decrypt(std::iter::once(key.identity() as &dyn age::Identity))?;
    Ok(DecryptingReader { inner })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const CHUNK: usize = 64 * 1024;

    /// Deterministic pseudo-random bytes (xorshift64*), incompressible and
    /// without repeating 32-byte windows.
    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            out.extend_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        out.truncate(len);
        out
    }

    fn encrypt(recipients: &[&MemberKey], plain: &[u8]) -> Vec<u8> {
        let rs: Vec<_> = recipients.iter().map(|k| k.recipient()).collect();
        let mut w = encrypt_to(&rs, Vec::new()).unwrap();
        // Write in odd-sized pieces to exercise chunk boundaries.
        for piece in plain.chunks(10_007) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn decrypt_all(key: &MemberKey, ct: &[u8]) -> io::Result<Vec<u8>> {
        let mut r = open(key, Cursor::new(ct)).map_err(io::Error::other)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trip_two_recipients_third_refused() {
        let (a, b, c) = (
            MemberKey::generate(),
            MemberKey::generate(),
            MemberKey::generate(),
        );
        let plain = pseudo_random(3 * 1024 * 1024 + 123, 1);
        let ct = encrypt(&[&a, &b], &plain);
        assert_eq!(decrypt_all(&a, &ct).unwrap(), plain);
        assert_eq!(decrypt_all(&b, &ct).unwrap(), plain);
        let err = open(&c, Cursor::new(&ct)).err().unwrap();
        assert!(matches!(err, StreamError::NotARecipient), "{err:?}");
        assert_eq!(
            err.to_string(),
            "this key is not among the recipients of this file"
        );
        // Sequential reader over a non-seekable source.
        let mut seq = open_sequential(&b, &ct[..]).unwrap();
        let mut out = Vec::new();
        seq.read_to_end(&mut out).unwrap();
        assert_eq!(out, plain);
    }

    #[test]
    fn empty_recipients_refused() {
        let err = encrypt_to(&[], Vec::new()).err().unwrap();
        assert!(matches!(err, StreamError::NoRecipients));
        assert!(err.to_string().contains("empty recipient list"));
    }

    #[test]
    fn empty_and_exact_chunk_plaintexts_round_trip() {
        let k = MemberKey::generate();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK] {
            let plain = pseudo_random(len, len as u64 + 7);
            let ct = encrypt(&[&k], &plain);
            assert_eq!(decrypt_all(&k, &ct).unwrap(), plain, "len {len}");
        }
    }

    #[test]
    fn seeking_matches_plaintext() {
        let k = MemberKey::generate();
        let len = 5 * CHUNK + 777;
        let plain = pseudo_random(len, 2);
        let ct = encrypt(&[&k], &plain);
        let mut r = open(&k, Cursor::new(&ct)).unwrap();

        let offsets = [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK + 5,
            len - 1,
            len,
            2,
            len - CHUNK,
        ];
        for &off in &offsets {
            assert_eq!(r.seek(SeekFrom::Start(off as u64)).unwrap(), off as u64);
            let mut buf = vec![0; 100_000];
            let n = read_up_to(&mut r, &mut buf);
            let expect = &plain[off..(off + 100_000).min(len)];
            assert_eq!(&buf[..n], expect, "offset {off}");
        }

        assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), len as u64);
        let mut buf = [0u8; 16];
        assert_eq!(r.read(&mut buf).unwrap(), 0);

        assert_eq!(r.seek(SeekFrom::End(-10)).unwrap(), (len - 10) as u64);
        let mut tail = Vec::new();
        r.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &plain[len - 10..]);

        r.seek(SeekFrom::Start(CHUNK as u64 - 3)).unwrap();
        let mut six = [0u8; 6];
        r.read_exact(&mut six).unwrap();
        assert_eq!(&six, &plain[CHUNK - 3..CHUNK + 3]);
        // Now at CHUNK + 3: go back across the chunk boundary, then forward.
        assert_eq!(r.seek(SeekFrom::Current(-10)).unwrap(), (CHUNK - 7) as u64);
        r.read_exact(&mut six).unwrap();
        assert_eq!(&six, &plain[CHUNK - 7..CHUNK - 1]);
        let pos = r.seek(SeekFrom::Current(2 * CHUNK as i64)).unwrap();
        assert_eq!(pos, (3 * CHUNK - 1) as u64);
        r.read_exact(&mut six).unwrap();
        assert_eq!(&six, &plain[3 * CHUNK - 1..3 * CHUNK + 5]);
        assert!(r.seek(SeekFrom::Current(-(len as i64))).is_err());
    }

    fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..]).unwrap() {
                0 => break,
                k => n += k,
            }
        }
        n
    }

    #[test]
    fn ciphertext_hides_plaintext_and_is_standard_age() {
        let k = MemberKey::generate();
        let plain = pseudo_random(4 * CHUNK, 3);
        let ct = encrypt(&[&k], &plain);
        assert!(ct.starts_with(b"age-encryption.org/v1\n-> X25519 "));
        let ct_windows: std::collections::HashSet<&[u8]> = ct.windows(32).collect();
        let found = plain.windows(32).any(|w| ct_windows.contains(w));
        assert!(
            !found,
            "a 32-byte plaintext window appears in the ciphertext"
        );
        // A plaintext made of one repeated byte does not show through either.
        let zeros = vec![0u8; 2 * CHUNK];
        let ct = encrypt(&[&k], &zeros);
        assert!(!ct.windows(32).any(|w| w == &zeros[..32]));
    }

    #[test]
    fn flipped_ciphertext_byte_fails() {
        let k = MemberKey::generate();
        let plain = pseudo_random(3 * CHUNK, 4);
        let ct = encrypt(&[&k], &plain);
        // Flip bytes in the payload (first chunk, a middle chunk, last byte).
        for pos in [
            ct.len() - 3 * (CHUNK + 16),
            ct.len() - CHUNK - 100,
            ct.len() - 1,
        ] {
            let mut t = ct.clone();
            t[pos] ^= 0x40;
            let err = decrypt_all(&k, &t).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "pos {pos}");
        }
        // Flipping a header byte is caught when opening.
        let mut t = ct.clone();
        let body_line = t.iter().position(|&b| b == b'\n').unwrap() + 20;
        t[body_line] ^= 0x01;
        assert!(open(&k, Cursor::new(&t)).is_err());
        // Not an age file at all.
        let err = open(&k, Cursor::new(b"hello, world\n".to_vec()))
            .err()
            .unwrap();
        assert!(matches!(err, StreamError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn truncated_file_fails() {
        let k = MemberKey::generate();
        let plain = pseudo_random(2 * CHUNK + 50, 5);
        let ct = encrypt(&[&k], &plain);
        for cut in [
            ct.len() - 1,
            ct.len() - 17,
            ct.len() - 66,
            ct.len() - (50 + 16),
            ct.len() - CHUNK,
            60,
            10,
            0,
        ] {
            let t = &ct[..cut];
            let res = decrypt_all(&k, t);
            assert!(res.is_err(), "cut at {cut} decrypted");
            // Seeking to the end must also notice.
            if let Ok(mut r) = open(&k, Cursor::new(t)) {
                assert!(r.seek(SeekFrom::End(0)).is_err(), "cut at {cut}");
            }
        }
        // Forgetting `finish` leaves an unreadable file too.
        let mut unfinished = Vec::new();
        let mut w = encrypt_to(&[k.recipient()], &mut unfinished).unwrap();
        w.write_all(&plain).unwrap();
        w.flush().unwrap();
        drop(w);
        assert!(decrypt_all(&k, &unfinished).is_err());
    }

    #[test]
    fn file_backed_round_trip_with_seek() {
        let k = MemberKey::generate();
        let plain = pseudo_random(CHUNK * 2 + 9, 6);
        let mut f = tempfile::tempfile().unwrap();
        let mut w = encrypt_to(&[k.recipient()], &mut f).unwrap();
        w.write_all(&plain).unwrap();
        w.finish().unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        let mut r = open(&k, io::BufReader::new(f)).unwrap();
        r.seek(SeekFrom::Start(CHUNK as u64 + 1)).unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, &plain[CHUNK + 1..]);
    }

    /// Checks interoperability with the reference `age` CLI both ways.
    /// Needs `age` on PATH (scripts/install-test-deps); CI requires it.
    #[test]
    fn interop_with_age_cli() {
        if !porchlight_base::tools::external("age") {
            return;
        }
        use age::secrecy::ExposeSecret;
        use std::process::Command;

        let k = MemberKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let id_path = dir.path().join("id.txt");
        std::fs::write(&id_path, k.identity().to_string().expose_secret()).unwrap();

        // Ours -> age CLI.
        let plain = pseudo_random(CHUNK * 3 + 11, 8);
        let ct_path = dir.path().join("clip.age");
        std::fs::write(&ct_path, encrypt(&[&k], &plain)).unwrap();
        let out = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&id_path)
            .arg(&ct_path)
            .output()
            .expect("run age");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, plain);

        // age CLI -> ours.
        let pt_path = dir.path().join("plain.bin");
        std::fs::write(&pt_path, &plain).unwrap();
        let ct2_path = dir.path().join("cli.age");
        let status = Command::new("age")
            .arg("-r")
            .arg(k.recipient_string())
            .arg("-o")
            .arg(&ct2_path)
            .arg(&pt_path)
            .status()
            .expect("run age");
        assert!(status.success());
        let ct2 = std::fs::read(&ct2_path).unwrap();
        assert_eq!(decrypt_all(&k, &ct2).unwrap(), plain);
    }
}
