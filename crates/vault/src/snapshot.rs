//! Event snapshots and their thumbnails, encrypted at rest: the one format
//! the detection pipeline writes and the web app reads.
//!
//! A snapshot is a JPEG encrypted as a plain age v1 file (the same
//! [`crate::stream`] format as recordings) to the X25519 recipients of its
//! camera — the owners and the members granted that camera. Any of them can
//! open it with the standard tool: `age -d -i key.txt <event>.jpg.age`.
//!
//! Files live under the hub's data folder at
//! `snapshots/<camera_id>/<event_id>.jpg.age` (full picture) and
//! `snapshots/<camera_id>/<event_id>.thumb.jpg.age` (thumbnail). The
//! `events.snapshot` column stores the full picture's relative path; the
//! thumbnail's path is derived from it with [`thumb_of`].
//!
//! # Invariants
//!
//! * No plaintext byte ever reaches the disk: [`write`] encrypts in memory
//!   into a temporary file in the destination folder, fsyncs it, renames it
//!   over the final name and fsyncs the folder. A crash leaves either the
//!   old file, the new file, or a stray `*.tmp` of ciphertext — never a
//!   partial file under the final name.
//! * Relative paths are checked: only `snapshots/<digits>/<digits>.jpg.age`
//!   or `.thumb.jpg.age`; a path from the database that points anywhere else
//!   (`..`, absolute, another folder) is refused before touching the disk.
//! * [`read`] refuses files larger than [`MAX_FILE_BYTES`] and plaintexts
//!   larger than [`MAX_JPEG_BYTES`], returns only authenticated bytes
//!   (truncation or tampering is an error), and checks that what it
//!   decrypted is a JPEG.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::keys::MemberKey;
use crate::stream::{self, StreamError};

/// Folder under the data dir holding every snapshot.
pub const DIR: &str = "snapshots";

/// Largest JPEG accepted by [`write`] and returned by [`read`] (16 MiB: a
/// 4K frame at the highest quality is well under that).
pub const MAX_JPEG_BYTES: usize = 16 << 20;

/// Largest file [`read`] will open: the JPEG limit plus age's overhead (a
/// header per recipient and 16 bytes per 64 KiB chunk), rounded up.
pub const MAX_FILE_BYTES: u64 = MAX_JPEG_BYTES as u64 + (1 << 20);

/// Which picture of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The full-size picture (event detail page).
    Full,
    /// The small picture for lists.
    Thumb,
}

/// Why a snapshot could not be written or read. `Display` names the file
/// and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a snapshot path: `{0}` (expected snapshots/<camera>/<event>.jpg.age)")]
    BadPath(String),
    #[error("snapshot `{path}` does not exist")]
    Missing { path: String },
    #[error("snapshot `{path}` is {size} bytes, over the {limit}-byte limit")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("refusing to write snapshot `{path}`: {why}")]
    NotJpeg { path: String, why: &'static str },
    #[error("refusing to encrypt snapshot `{path}` to nobody: the camera has no recipients")]
    NoRecipients { path: String },
    #[error("your key is not among the recipients of snapshot `{path}`")]
    NotARecipient { path: String },
    #[error("snapshot `{path}` is damaged or truncated: {why}")]
    Damaged { path: String, why: String },
    #[error("snapshot `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// The relative path (under the data dir) of an event's picture.
pub fn relative_path(camera_id: i64, event_id: i64, kind: Kind) -> PathBuf {
    let name = match kind {
        Kind::Full => format!("{event_id}.jpg.age"),
        Kind::Thumb => format!("{event_id}.thumb.jpg.age"),
    };
    Path::new(DIR).join(camera_id.to_string()).join(name)
}

/// The thumbnail's relative path for a full snapshot's relative path (as
/// stored in `events.snapshot`).
pub fn thumb_of(full: &Path) -> Result<PathBuf, SnapshotError> {
    let (camera, event, kind) = parse(full)?;
    if kind != Kind::Full {
        return Err(SnapshotError::BadPath(full.display().to_string()));
    }
    Ok(relative_path(camera, event, Kind::Thumb))
}

/// Splits a relative snapshot path into (camera id, event id, kind),
/// refusing anything that is not exactly one of ours.
fn parse(rel: &Path) -> Result<(i64, i64, Kind), SnapshotError> {
    let bad = || SnapshotError::BadPath(rel.display().to_string());
    let parts: Vec<&str> = rel
        .components()
        .map(|c| match c {
            std::path::Component::Normal(s) => s.to_str().ok_or_else(bad),
            _ => Err(bad()),
        })
        .collect::<Result<_, _>>()?;
    let [dir, camera, file] = parts.as_slice() else {
        return Err(bad());
    };
    let digits = |s: &str| -> Result<i64, SnapshotError> {
        if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    if *dir != DIR {
        return Err(bad());
    }
    let camera = digits(camera)?;
    let (event, kind) = if let Some(e) = file.strip_suffix(".thumb.jpg.age") {
        (e, Kind::Thumb)
    } else if let Some(e) = file.strip_suffix(".jpg.age") {
        (e, Kind::Full)
    } else {
        return Err(bad());
    };
    Ok((camera, digits(event)?, kind))
}

/// Encrypts `jpeg` to `recipients` and stores it at `data_dir/rel`
/// atomically (temp file, fsync, rename, fsync folder). Creates the
/// camera's folder if needed. Refuses a non-JPEG, an oversized picture, an
/// empty recipient list and a path that is not a snapshot path.
pub fn write(
    data_dir: &Path,
    rel: &Path,
    jpeg: &[u8],
    recipients: &[age::x25519::Recipient],
) -> Result<(), SnapshotError> {
    parse(rel)?;
    let shown = rel.display().to_string();
    if !jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(SnapshotError::NotJpeg {
            path: shown,
            why: "the data does not start with a JPEG marker (FF D8 FF)",
        });
    }
    if jpeg.len() > MAX_JPEG_BYTES {
        return Err(SnapshotError::TooLarge {
            path: shown,
            size: jpeg.len() as u64,
            limit: MAX_JPEG_BYTES as u64,
        });
    }
    if recipients.is_empty() {
        return Err(SnapshotError::NoRecipients { path: shown });
    }
    let io_err = |source| SnapshotError::Io {
        path: shown.clone(),
        source,
    };
    let path = data_dir.join(rel);
    let dir = path.parent().expect("a snapshot path has a folder");
    fs::create_dir_all(dir).map_err(io_err)?;
    let tmp = path.with_extension(format!("age.{}.tmp", std::process::id()));
    let result = (|| -> Result<(), SnapshotError> {
        let file = File::create(&tmp).map_err(io_err)?;
        let mut w =
            stream::encrypt_to(recipients, io::BufWriter::new(file)).map_err(|e| match e {
                StreamError::NoRecipients => SnapshotError::NoRecipients {
                    path: shown.clone(),
                },
                StreamError::Io(e) => io_err(e),
                other => io_err(io::Error::other(other.to_string())),
            })?;
        w.write_all(jpeg).map_err(io_err)?;
        let buf = w
            .finish()
            .map_err(|e| io_err(io::Error::other(e.to_string())))?;
        let file = buf.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.sync_all().map_err(io_err)?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io_err)?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_err)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads and decrypts the snapshot at `data_dir/rel` with `key`. The result
/// is an authenticated JPEG of at most [`MAX_JPEG_BYTES`].
pub fn read(data_dir: &Path, rel: &Path, key: &MemberKey) -> Result<Vec<u8>, SnapshotError> {
    parse(rel)?;
    let shown = rel.display().to_string();
    let path = data_dir.join(rel);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(SnapshotError::Missing { path: shown })
        }
        Err(e) => {
            return Err(SnapshotError::Io {
                path: shown,
                source: e,
            })
        }
    };
    let size = file
        .metadata()
        .map_err(|e| SnapshotError::Io {
            path: shown.clone(),
            source: e,
        })?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(SnapshotError::TooLarge {
            path: shown,
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    let damaged = |why: String| SnapshotError::Damaged {
        path: shown.clone(),
        why,
    };
    let reader = stream::open_sequential(key, io::BufReader::new(file)).map_err(|e| match e {
        StreamError::NotARecipient => SnapshotError::NotARecipient {
            path: shown.clone(),
        },
        StreamError::Io(e) => SnapshotError::Io {
            path: shown.clone(),
            source: e,
        },
        other => damaged(other.to_string()),
    })?;
    let mut out = Vec::new();
    reader
        .take(MAX_JPEG_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| damaged(e.to_string()))?;
    if out.len() > MAX_JPEG_BYTES {
        return Err(SnapshotError::TooLarge {
            path: shown,
            size: out.len() as u64,
            limit: MAX_JPEG_BYTES as u64,
        });
    }
    if !out.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(damaged("the decrypted data is not a JPEG".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small but real JPEG-shaped payload (markers plus filler); the
    /// module only checks the leading marker.
    fn jpeg(len: usize) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
        let mut s: u32 = 12345;
        while v.len() < len - 2 {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            v.push((s >> 16) as u8);
        }
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    #[test]
    fn paths() {
        assert_eq!(
            relative_path(3, 41, Kind::Full),
            Path::new("snapshots/3/41.jpg.age")
        );
        assert_eq!(
            relative_path(3, 41, Kind::Thumb),
            Path::new("snapshots/3/41.thumb.jpg.age")
        );
        assert_eq!(
            thumb_of(Path::new("snapshots/3/41.jpg.age")).unwrap(),
            Path::new("snapshots/3/41.thumb.jpg.age")
        );
        for bad in [
            "snapshots/3/41.thumb.jpg.age/../x",
            "../snapshots/3/41.jpg.age",
            "/snapshots/3/41.jpg.age",
            "snapshots/../41.jpg.age",
            "recordings/3/41.jpg.age",
            "snapshots/3/41.jpg",
            "snapshots/x/41.jpg.age",
            "snapshots/3/-1.jpg.age",
            "snapshots/3/.jpg.age",
        ] {
            let err = read(
                Path::new("/nonexistent"),
                Path::new(bad),
                &MemberKey::generate(),
            )
            .unwrap_err();
            assert!(matches!(err, SnapshotError::BadPath(_)), "{bad}: {err:?}");
        }
        assert!(thumb_of(Path::new("snapshots/3/41.thumb.jpg.age")).is_err());
    }

    #[test]
    fn round_trip_to_two_recipients_and_wrong_key_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            MemberKey::generate(),
            MemberKey::generate(),
            MemberKey::generate(),
        );
        let pic = jpeg(200_000);
        let rel = relative_path(1, 7, Kind::Full);
        write(dir.path(), &rel, &pic, &[a.recipient(), b.recipient()]).unwrap();
        assert_eq!(read(dir.path(), &rel, &a).unwrap(), pic);
        assert_eq!(read(dir.path(), &rel, &b).unwrap(), pic);
        let err = read(dir.path(), &rel, &c).unwrap_err();
        assert!(
            matches!(err, SnapshotError::NotARecipient { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("snapshots/1/7.jpg.age"), "{err}");

        // On disk: a standard age file, no JPEG magic anywhere at the start,
        // no stray temp file.
        let raw = fs::read(dir.path().join(&rel)).unwrap();
        assert!(raw.starts_with(b"age-encryption.org/v1\n"));
        assert!(!raw.windows(4).any(|w| w == [0xFF, 0xD8, 0xFF, 0xE0]));
        let names: Vec<_> = fs::read_dir(dir.path().join("snapshots/1"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["7.jpg.age"]);

        // Overwriting replaces atomically.
        let pic2 = jpeg(1000);
        write(dir.path(), &rel, &pic2, &[a.recipient()]).unwrap();
        assert_eq!(read(dir.path(), &rel, &a).unwrap(), pic2);
        assert!(matches!(
            read(dir.path(), &rel, &b).unwrap_err(),
            SnapshotError::NotARecipient { .. }
        ));
    }

    #[test]
    fn truncated_or_flipped_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let k = MemberKey::generate();
        let rel = relative_path(2, 9, Kind::Thumb);
        let pic = jpeg(150_000);
        write(dir.path(), &rel, &pic, &[k.recipient()]).unwrap();
        let path = dir.path().join(&rel);
        let raw = fs::read(&path).unwrap();
        for cut in [raw.len() - 1, raw.len() - 20_000, 100, 10] {
            fs::write(&path, &raw[..cut]).unwrap();
            let err = read(dir.path(), &rel, &k).unwrap_err();
            assert!(
                matches!(err, SnapshotError::Damaged { .. }),
                "cut at {cut}: {err:?}"
            );
        }
        let mut flipped = raw.clone();
        let i = flipped.len() - 1000;
        flipped[i] ^= 1;
        fs::write(&path, &flipped).unwrap();
        assert!(matches!(
            read(dir.path(), &rel, &k).unwrap_err(),
            SnapshotError::Damaged { .. }
        ));
        fs::remove_file(&path).unwrap();
        assert!(matches!(
            read(dir.path(), &rel, &k).unwrap_err(),
            SnapshotError::Missing { .. }
        ));
    }

    #[test]
    fn bad_input_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let k = MemberKey::generate();
        let rel = relative_path(1, 1, Kind::Full);
        let err = write(dir.path(), &rel, b"PNG not jpeg", &[k.recipient()]).unwrap_err();
        assert!(matches!(err, SnapshotError::NotJpeg { .. }), "{err:?}");
        let err = write(dir.path(), &rel, &jpeg(100), &[]).unwrap_err();
        assert!(matches!(err, SnapshotError::NoRecipients { .. }), "{err:?}");
        let err = write(
            dir.path(),
            Path::new("snapshots/1/../../etc.jpg.age"),
            &jpeg(100),
            &[k.recipient()],
        )
        .unwrap_err();
        assert!(matches!(err, SnapshotError::BadPath(_)), "{err:?}");
        let huge = {
            let mut v = jpeg(100);
            v.resize(MAX_JPEG_BYTES + 1, 0);
            v
        };
        let err = write(dir.path(), &rel, &huge, &[k.recipient()]).unwrap_err();
        assert!(matches!(err, SnapshotError::TooLarge { .. }), "{err:?}");
        assert!(!dir.path().join(&rel).exists());
    }

    #[test]
    fn oversized_file_refused_before_decrypting() {
        let dir = tempfile::tempdir().unwrap();
        let rel = relative_path(1, 2, Kind::Full);
        let path = dir.path().join(&rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let f = File::create(&path).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        let err = read(dir.path(), &rel, &MemberKey::generate()).unwrap_err();
        assert!(matches!(err, SnapshotError::TooLarge { .. }), "{err:?}");
    }
}
