//! `porchlight check`: is this data folder sound, and does it keep the
//! privacy promises that can be checked from the files alone?
//!
//! One line per check, `ok   <what>` or `FAIL <what>: <first problem>`;
//! every check runs even after a failure, then the command fails naming
//! the first problem. Opening the store applies pending migrations (as any
//! start would), but a folder that does not exist is reported, never
//! created.
//!
//! The private-key scan reads every file under the folder, subfolders
//! included (recordings, snapshots, the database, its WAL, the anchor),
//! for age's secret-key text in any case. A raw 32-byte X25519 secret
//! looks like any other 32 bytes, so it can only be looked for by someone
//! who holds it: with `--verify-as USER` the scan also looks for that
//! member's key as raw bytes and as hex.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use porchlight_store::{MigrationStatus, Store};
use porchlight_vault::keys::{inspect, MemberKey, WrapKind};
use zeroize::Zeroizing;

use crate::context::{open_store, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also check every recording's authenticity (its AEAD tags) with this
    /// household member's key; needs their password.
    #[arg(long = "verify-as")]
    pub verify_as: Option<String>,
    /// Read that member's password from the first line of standard input.
    #[arg(long = "password-stdin", requires = "verify_as")]
    pub password_stdin: bool,
}

/// The outcome of one check.
type Outcome = Result<String, String>;

/// Prints the lines and remembers the first failure.
struct Report {
    out: std::io::StdoutLock<'static>,
    ran: usize,
    failed: usize,
    first: Option<String>,
}

impl Report {
    fn line(&mut self, what: &str, outcome: Outcome) -> anyhow::Result<()> {
        self.ran += 1;
        match outcome {
            Ok(detail) if detail.is_empty() => writeln!(self.out, "ok   {what}")?,
            Ok(detail) => writeln!(self.out, "ok   {what} ({detail})")?,
            Err(problem) => {
                writeln!(self.out, "FAIL {what}: {problem}")?;
                self.failed += 1;
                self.first.get_or_insert(format!("{what}: {problem}"));
            }
        }
        self.out.flush()?;
        Ok(())
    }

    /// A failure whose message is the whole line (no separate "what").
    fn fail_line(&mut self, line: String) -> anyhow::Result<()> {
        self.ran += 1;
        self.failed += 1;
        writeln!(self.out, "FAIL {line}")?;
        self.out.flush()?;
        self.first.get_or_insert(line);
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self.first {
            None => Ok(()),
            Some(first) => Err(anyhow!(
                "{} of {} checks failed; the first problem: {first}",
                self.failed,
                self.ran
            )),
        }
    }
}

pub async fn run(args: Args, ctx: Context) -> anyhow::Result<()> {
    let dir = ctx.data_dir.as_path();
    let mut report = Report {
        out: std::io::stdout().lock(),
        ran: 0,
        failed: 0,
        first: None,
    };
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.fail_line(format!("data folder {} does not exist", dir.display()))?;
            return report.finish();
        }
        Err(e) => {
            report.fail_line(format!("data folder {}: {e}", dir.display()))?;
            return report.finish();
        }
        Ok(m) if !m.is_dir() => {
            report.fail_line(format!("data folder {} is not a folder", dir.display()))?;
            return report.finish();
        }
        Ok(_) => report.line(&format!("data folder {}", dir.display()), Ok(String::new()))?,
    }
    let store = match open_store(dir).await {
        Ok(store) => store,
        Err(e) => {
            report.line("database", Err(crate::one_line(&e)))?;
            return report.finish();
        }
    };
    report.line("schema migrations", migrations(&store).await)?;
    report.line("SQLite integrity", integrity(&store).await)?;
    report.line("audit chain", audit_chain(&store).await)?;
    report.line("household keys", household_keys(&store).await)?;
    // The member's key, when given: the scan looks for it too.
    let member = match &args.verify_as {
        None => None,
        Some(user) => Some((user.as_str(), unlock(&ctx, user, args.password_stdin).await)),
    };
    let scan_for = match &member {
        Some((user, Ok(key))) => Some((*user, key.as_ref())),
        _ => None,
    };
    report.line("no private key in clear", plaintext_scan(dir, scan_for))?;
    report.line("recordings", recordings(&store, dir).await)?;
    if let Some((user, key)) = member {
        let outcome = match key {
            Ok(key) => match authenticity(&store, dir, user, &key).await {
                Ok(o) => o,
                Err(e) => Err(crate::one_line(&e)),
            },
            Err(e) => Err(crate::one_line(&e)),
        };
        report.line(&format!("recording authenticity (as {user})"), outcome)?;
    }
    store.close().await;
    report.finish()
}

async fn migrations(store: &Store) -> Outcome {
    match store.migration_status().await {
        Ok(MigrationStatus::Current { version }) => Ok(format!("version {version}")),
        Ok(other) => Err(other.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

async fn integrity(store: &Store) -> Outcome {
    match store.integrity_problem().await {
        Ok(None) => Ok(String::new()),
        Ok(Some(problem)) => Err(problem),
        Err(e) => Err(e.to_string()),
    }
}

async fn audit_chain(store: &Store) -> Outcome {
    match store.verify_audit_chain().await {
        Ok((count, None)) => Ok(format!(
            "{count} {}",
            if count == 1 { "entry" } else { "entries" }
        )),
        Ok((_, Some(problem))) => Err(problem.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Owners and members hold a well-formed household key (both wrapped
/// copies readable, each of the right kind); neighborhood accounts hold
/// none.
async fn household_keys(store: &Store) -> Outcome {
    let users = store.list_users().await.map_err(|e| e.to_string())?;
    let mut holders = 0;
    for u in &users {
        let name = &u.username;
        match (&u.keys, u.role.is_hub_role()) {
            (None, false) => {}
            (None, true) => return Err(format!("`{name}` ({}) has no household key", u.role)),
            (Some(_), false) => {
                return Err(format!(
                "`{name}` ({}) holds a household key, which neighborhood accounts must not have",
                u.role
            ))
            }
            (Some(keys), true) => {
                if !keys.recipient.starts_with("age1") {
                    return Err(format!(
                        "the public key of `{name}` is not an age recipient"
                    ));
                }
                for (blob, want) in [
                    (&keys.by_password, WrapKind::Password),
                    (&keys.by_recovery, WrapKind::RecoveryCode),
                ] {
                    match inspect(blob) {
                        Ok(info) if info.kind == want => {}
                        Ok(info) => {
                            return Err(format!(
                                "the {want}-wrapped key of `{name}` is wrapped by a {} instead",
                                info.kind
                            ))
                        }
                        Err(e) => return Err(format!("the {want}-wrapped key of `{name}`: {e}")),
                    }
                }
                holders += 1;
            }
        }
    }
    Ok(format!(
        "{holders} of {} {} hold{} one",
        users.len(),
        if users.len() == 1 { "user" } else { "users" },
        if users.len() == 1 { "s" } else { "" }
    ))
}

/// No file anywhere under the folder (the database, its WAL and shared
/// memory, the audit anchor, recordings, snapshots, anything else)
/// contains a private age key in clear: the `AGE-SECRET-KEY-1` text in any
/// case, and, given a member's key, that key's raw 32 bytes or their hex.
/// Symbolic links are not followed (nothing outside the folder is read).
fn plaintext_scan(dir: &Path, member: Option<(&str, &MemberKey)>) -> Outcome {
    let needles = Needles::new(member.map(|(_, k)| k));
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        match entry {
            Ok(e) if e.file_type().is_file() => files.push(e.into_path()),
            Ok(_) => {}
            // Gone since its folder was listed (the WAL, a segment that
            // retention deleted): nothing to scan.
            Err(e)
                if e.io_error()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) => {}
            Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
        }
    }
    files.sort();
    let mut scanned = 0;
    for path in files {
        match needles.find_in(&path) {
            Ok(None) => scanned += 1,
            Ok(Some(what)) => {
                return Err(format!(
                    "{} contains {what}",
                    path.strip_prefix(dir).unwrap_or(&path).display()
                ))
            }
            // The WAL and shared-memory files come and go as connections
            // close, segments as retention runs; a file gone between
            // listing and reading is no problem.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
    }
    let mut detail = format!(
        "{scanned} {} scanned",
        if scanned == 1 { "file" } else { "files" }
    );
    if let Some((user, _)) = member {
        detail.push_str(&format!(", also for {user}'s key as raw bytes and hex"));
    }
    Ok(detail)
}

/// What the private-key scan looks for. The member's forms are kept in
/// zeroized buffers; the finders only borrow them.
struct Needles {
    /// Raw 32-byte secret, matched exactly.
    raw: Option<Zeroizing<[u8; 32]>>,
    /// Lower-case hex of it, matched ignoring case.
    hex: Option<Zeroizing<Vec<u8>>>,
}

/// age's secret-key text, lower case (matched ignoring case).
const SECRET_KEY_PREFIX_LOWER: &[u8] = b"age-secret-key-1";

impl Needles {
    fn new(member: Option<&MemberKey>) -> Needles {
        let raw = member.map(|k| k.secret_scalar());
        let hex = raw.as_ref().map(|r| {
            let mut h = Zeroizing::new(vec![0u8; 64]);
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            for (i, b) in r.iter().enumerate() {
                h[2 * i] = DIGITS[usize::from(b >> 4)];
                h[2 * i + 1] = DIGITS[usize::from(b & 15)];
            }
            h
        });
        Needles { raw, hex }
    }

    /// Streams the file (a large one costs no memory); names the first
    /// form found.
    fn find_in(&self, path: &Path) -> std::io::Result<Option<&'static str>> {
        use memchr::memmem::Finder;
        const CHUNK: usize = 256 * 1024;
        let prefix = Finder::new(SECRET_KEY_PREFIX_LOWER);
        let raw = self.raw.as_ref().map(|r| Finder::new(&r[..]));
        let hex = self.hex.as_ref().map(|h| Finder::new(&h[..]));
        // Longest needle less one byte is kept between reads, so a match
        // across two reads is seen.
        let overlap = if self.hex.is_some() {
            63
        } else {
            SECRET_KEY_PREFIX_LOWER.len() - 1
        };
        let mut file = std::fs::File::open(path)?;
        let mut buf = Zeroizing::new(vec![0u8; CHUNK + overlap]);
        let mut lower = Zeroizing::new(Vec::with_capacity(CHUNK + overlap));
        let mut kept = 0;
        loop {
            let n = match file.read(&mut buf[kept..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(None);
            }
            let end = kept + n;
            lower.clear();
            lower.extend(buf[..end].iter().map(u8::to_ascii_lowercase));
            if prefix.find(&lower).is_some() {
                return Ok(Some("a private age key in clear (`AGE-SECRET-KEY-1…`)"));
            }
            if raw.as_ref().is_some_and(|f| f.find(&buf[..end]).is_some()) {
                return Ok(Some("the member's private key as raw bytes"));
            }
            if hex.as_ref().is_some_and(|f| f.find(&lower).is_some()) {
                return Ok(Some("the member's private key in hex"));
            }
            kept = overlap.min(end);
            buf.copy_within(end - kept..end, 0);
        }
    }
}

/// Rows ⇄ files: every closed recording's file exists with the recorded
/// size and file digest (SHA-256 or BLAKE3, by the file's version), its
/// records parse (no key needed) and agree with the stored frame
/// index; no segment file lacks a row.
async fn recordings(store: &Store, dir: &Path) -> Outcome {
    use porchlight_media::{index, segment};
    let rec_dir = dir.join(porchlight_recorder::RECORDINGS_DIR);
    // A hub may be recording while we check. Files are listed *before* rows
    // are read: a row always exists before its file (design/storage.md), so
    // every file listed has its row in what we read next — unless retention
    // deleted it in between, which the re-checks below allow for.
    let files = segment_files(&rec_dir);
    let rows = store.all_recordings().await.map_err(|e| e.to_string())?;
    let garbage = store.garbage().await.map_err(|e| e.to_string())?;
    let (mut closed, mut open, mut bytes) = (0usize, 0usize, 0u64);
    for r in &rows {
        let path = rec_dir.join(&r.file_name);
        let what = format!("recording #{} ({})", r.id, r.file_name);
        if r.open {
            // Being written by a running hub (its file may be a moment
            // away), or cut by a crash: the next start recovers it.
            open += 1;
            continue;
        }
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            // Deleted by retention since we read the rows?
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && store
                        .recording(r.id)
                        .await
                        .map_err(|e| e.to_string())?
                        .is_none() =>
            {
                continue
            }
            Err(e) => return Err(format!("{what}: cannot read its file: {e}")),
        };
        if data.len() as i64 != r.file_bytes {
            return Err(format!(
                "{what}: the file has {} bytes, the index says {}",
                data.len(),
                r.file_bytes
            ));
        }
        // The row's digest column (named `sha256` for history) holds the
        // digest the file's version calls for: SHA-256 for version 1,
        // BLAKE3 for version 2.
        let (kind, sum) = segment::file_digest(&data).map_err(|e| format!("{what}: {e}"))?;
        if r.sha256.as_deref() != Some(&sum[..]) {
            return Err(format!(
                "{what}: the file's {} digest differs from the one recorded (altered or corrupted)",
                kind.name()
            ));
        }
        let scan =
            segment::scan(std::io::Cursor::new(&data)).map_err(|e| format!("{what}: {e}"))?;
        if let Some(p) = scan.problem {
            return Err(format!("{what}: {p}"));
        }
        let frames = index::decode(r.frame_index.as_deref().unwrap_or_default())
            .map_err(|e| format!("{what}: bad frame index: {e}"))?;
        if frames != scan.frames || frames.len() as i64 != r.frames {
            return Err(format!(
                "{what}: the stored frame index does not match the file's records"
            ));
        }
        closed += 1;
        bytes += data.len() as u64;
    }
    // Files nobody knows about.
    let known: std::collections::HashSet<&str> = rows
        .iter()
        .map(|r| r.file_name.as_str())
        .chain(garbage.iter().map(String::as_str))
        .collect();
    for name in files {
        // Gone since the listing (retention) is fine; still there with no
        // row is not.
        if !known.contains(name.as_str()) && rec_dir.join(&name).exists() {
            return Err(format!("segment file {name} has no row in the index"));
        }
    }
    let mut detail = format!("{closed} segments, {:.1} MB verified", bytes as f64 / 1e6);
    if open > 0 {
        detail.push_str(&format!("; {open} being written or awaiting recovery"));
    }
    if !garbage.is_empty() {
        detail.push_str(&format!("; {} awaiting deletion", garbage.len()));
    }
    Ok(detail)
}

/// `CAMERA/NAME.seg` of every segment file under `recordings/`.
fn segment_files(rec_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(cams) = std::fs::read_dir(rec_dir) else {
        return out;
    };
    for cam in cams.flatten() {
        let Ok(files) = std::fs::read_dir(cam.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = format!(
                "{}/{}",
                cam.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            );
            if name.ends_with(".seg") {
                out.push(name);
            }
        }
    }
    out
}

/// `user`'s household key, unlocked with their password (audited as a
/// key use).
async fn unlock(
    ctx: &Context,
    user: &str,
    stdin: bool,
) -> anyhow::Result<std::sync::Arc<MemberKey>> {
    let password = if stdin {
        crate::secrets::stdin_lines(&["password"])?.remove(0)
    } else {
        crate::secrets::prompt(&format!("Password of {user}: "), "--password-stdin")?
    };
    let vault = ctx.open_existing_vault().await?;
    let actor = porchlight_vault::Actor {
        name: user.into(),
        client: "cli".into(),
    };
    Ok(vault.unlock_key(user, &password, &actor).await?)
}

/// Every recording encrypted to `user` decrypts and authenticates.
async fn authenticity(
    store: &Store,
    dir: &Path,
    user: &str,
    key: &MemberKey,
) -> anyhow::Result<Outcome> {
    let rec_dir = dir.join(porchlight_recorder::RECORDINGS_DIR);
    let rows = store.all_recordings().await?;
    let (mut ok, mut skipped) = (0usize, 0usize);
    for r in rows.iter().filter(|r| !r.open) {
        let file = std::fs::File::open(rec_dir.join(&r.file_name))?;
        let mut reader = match porchlight_media::segment::SegmentReader::open(file, key) {
            Ok(rd) => rd,
            Err(porchlight_media::segment::SegmentError::NotARecipient) => {
                skipped += 1;
                continue;
            }
            Err(e) => return Ok(Err(format!("recording #{}: {e}", r.id))),
        };
        if let Err(e) = reader.verify_all() {
            return Ok(Err(format!("recording #{} ({}): {e}", r.id, r.file_name)));
        }
        ok += 1;
    }
    Ok(Ok(format!(
        "{ok} segments authentic; {skipped} not encrypted to {user}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_prefix_in_any_case_and_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let none = Needles::new(None);
        let mut data = vec![b'x'; 256 * 1024 - 5];
        data.extend_from_slice(b"age-secret-key-1QQQ");
        std::fs::write(&path, &data).unwrap();
        assert!(none.find_in(&path).unwrap().is_some());
        std::fs::write(&path, b"AGE-SECRET-KEY-").unwrap();
        assert!(none.find_in(&path).unwrap().is_none());
        std::fs::write(&path, b"").unwrap();
        assert!(none.find_in(&path).unwrap().is_none());
    }

    #[test]
    fn finds_a_members_raw_and_hex_key_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let key = MemberKey::generate();
        let needles = Needles::new(Some(&key));
        let raw = key.secret_scalar();
        // Straddling the first read's end.
        let mut data = vec![0u8; 256 * 1024 - 10];
        data.extend_from_slice(&raw[..]);
        data.extend_from_slice(&[0u8; 100]);
        std::fs::write(&path, &data).unwrap();
        assert_eq!(
            needles.find_in(&path).unwrap(),
            Some("the member's private key as raw bytes")
        );
        let mut data = vec![b'.'; 256 * 1024 - 30];
        let upper: String = raw.iter().map(|b| format!("{b:02X}")).collect();
        data.extend_from_slice(upper.as_bytes());
        std::fs::write(&path, &data).unwrap();
        assert_eq!(
            needles.find_in(&path).unwrap(),
            Some("the member's private key in hex")
        );
        // Another key's bytes are not this member's.
        std::fs::write(&path, &MemberKey::generate().secret_scalar()[..]).unwrap();
        assert_eq!(needles.find_in(&path).unwrap(), None);
    }
}
