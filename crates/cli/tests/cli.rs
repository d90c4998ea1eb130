//! End-to-end tests of the `porchlight` binary: each runs the real program
//! on a temporary data folder, as an administrator would.
//!
//! Argon2id runs with tiny parameters (PORCHLIGHT_ACCOUNTS_ARGON2_M_KIB=8,
//! _T=1) because none of these tests is about hashing cost.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_porchlight");
const PASSWORD: &str = "correct horse battery";

/// A temporary data folder (created inside a temporary parent, so tests can
/// also name folders that do not exist yet).
struct Folder {
    tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Folder {
    fn new() -> Folder {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        Folder { tmp, dir }
    }

    fn db(&self) -> PathBuf {
        self.dir.join("porchlight.db")
    }
}

/// The binary with a clean environment: no PORCHLIGHT_… or RUST_LOG from
/// the developer's shell, fast hashing.
fn porchlight_bare() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PORCHLIGHT_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("PORCHLIGHT_ACCOUNTS_ARGON2_M_KIB", "8")
        .env("PORCHLIGHT_ACCOUNTS_ARGON2_T", "1");
    cmd
}

/// [`porchlight_bare`] on the given data folder.
fn porchlight(dir: &Path) -> Command {
    let mut cmd = porchlight_bare();
    cmd.arg("--data-dir").arg(dir);
    cmd
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `porchlight --data-dir DIR ARGS…` with `stdin` as standard input.
fn run(dir: &Path, args: &[&str], stdin: &str) -> Output {
    run_cmd(porchlight(dir).args(args), stdin)
}

fn run_cmd(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start porchlight");
    // A command may exit before reading its input (a usage error, say):
    // a closed pipe is then expected, not a failure.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.unwrap(),
    }
    let out = child.wait_with_output().unwrap();
    let o = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !o.stderr.contains("panicked"),
        "porchlight panicked:\n{o:?}"
    );
    o
}

fn ok(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let o = run(dir, args, stdin);
    assert_eq!(o.code, 0, "porchlight {args:?} failed:\n{o:?}");
    o
}

fn failed(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let o = run(dir, args, stdin);
    assert_ne!(o.code, 0, "porchlight {args:?} should have failed:\n{o:?}");
    o
}

fn add_user(dir: &Path, name: &str, role: &str) -> Output {
    ok(
        dir,
        &["user", "add", name, "--role", role, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    )
}

/// Is `s` a key recovery code: 6 groups of 4 from [0-9A-HJKMNP-TV-Z],
/// joined by dashes?
fn is_recovery_code(s: &str) -> bool {
    const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 6
        && groups
            .iter()
            .all(|g| g.len() == 4 && g.chars().all(|c| ALPHABET.contains(c)))
}

fn recovery_codes(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|w| is_recovery_code(w))
        .map(str::to_owned)
        .collect()
}

fn one_recovery_code(o: &Output) -> String {
    let codes = recovery_codes(&o.stdout);
    assert_eq!(codes.len(), 1, "expected one recovery code:\n{o:?}");
    codes[0].clone()
}

/// Runs SQL on the folder's database directly, as an intruder with the
/// sqlite3 shell would.
fn sql(db: &Path, statements: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{ConnectOptions as _, Connection as _};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .connect()
            .await
            .unwrap();
        sqlx::raw_sql(statements).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    });
}

/// A `serve` or `demo` child process, killed when dropped (also when the
/// test panics). Its stdout arrives line by line; its stderr is kept for
/// failure messages.
struct Hub {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
    url: String,
}

impl Hub {
    fn start(dir: &Path, args: &[&str]) -> Hub {
        let mut child = porchlight(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start porchlight");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut hub = Hub {
            child,
            lines,
            stdout: Vec::new(),
            stderr,
            url: String::new(),
        };
        let first = hub.next_line();
        let url = first
            .strip_prefix("Porchlight is running at ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}\n{}", hub.diagnostics()));
        assert!(
            url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
            "{url}"
        );
        assert!(
            !url.ends_with(":0/"),
            "the bound port must be printed: {url}"
        );
        hub.url = url.to_owned();
        hub
    }

    /// The next stdout line; panics after 60 s or if the process ends.
    fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                self.stdout.push(line.clone());
                line
            }
            Err(e) => panic!("no more output ({e}):\n{}", self.diagnostics()),
        }
    }

    /// Reads stdout until a line contains `needle`.
    fn wait_for(&mut self, needle: &str) {
        while !self.next_line().contains(needle) {}
    }

    fn diagnostics(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// Sends SIGTERM and waits for the exit code.
    #[cfg(unix)]
    fn terminate(&mut self) -> i32 {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "did not stop within 15 s of SIGTERM\n{}",
            self.diagnostics()
        );
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------

#[test]
fn check_passes_on_a_fresh_folder() {
    let f = Folder::new();
    std::fs::create_dir(&f.dir).unwrap();
    let o = ok(&f.dir, &["check"], "");
    assert!(!o.stdout.contains("FAIL"), "{o:?}");
    for what in [
        "schema migrations",
        "SQLite integrity",
        "audit chain (0 entries)",
        "household keys",
        "no private key in clear",
    ] {
        assert!(
            o.stdout
                .lines()
                .any(|l| l.starts_with("ok   ") && l.contains(what)),
            "no ok line for {what}:\n{o:?}"
        );
    }
}

#[test]
fn check_fails_on_a_missing_folder_without_creating_it() {
    let f = Folder::new();
    let o = failed(&f.dir, &["check"], "");
    assert!(o.stdout.contains("FAIL data folder"), "{o:?}");
    assert!(o.stdout.contains("does not exist"), "{o:?}");
    assert!(o.stderr.starts_with("error: "), "{o:?}");
    assert!(!f.dir.exists(), "check created the data folder");
}

#[test]
fn check_passes_after_account_changes() {
    let f = Folder::new();
    add_user(&f.dir, "alice", "owner");
    add_user(&f.dir, "bob", "member");
    add_user(&f.dir, "nina", "neighbor");
    ok(&f.dir, &["user", "disable", "nina"], "");
    let o = ok(&f.dir, &["check"], "");
    assert!(o.stdout.contains("audit chain (4 entries)"), "{o:?}");
    assert!(o.stdout.contains("2 of 3 users hold one"), "{o:?}");
}

#[test]
fn check_finds_a_private_key_in_clear() {
    let f = Folder::new();
    add_user(&f.dir, "alice", "owner");
    ok(&f.dir, &["check"], "");
    // Plant what a careless implementation would leave behind.
    sql(
        &f.db(),
        "CREATE TABLE leak (v TEXT); INSERT INTO leak VALUES ('age-secret-key-1qqqqqqqqqqqqqqqq');",
    );
    let o = failed(&f.dir, &["check"], "");
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with("FAIL no private key in clear")),
        "{o:?}"
    );
}

/// The scan reads every file in every subfolder, not only the database.
#[test]
fn check_finds_a_private_key_text_in_a_subfolder() {
    let f = Folder::new();
    add_user(&f.dir, "alice", "owner");
    ok(&f.dir, &["check"], "");
    let deep = f.dir.join("recordings").join("3");
    std::fs::create_dir_all(&deep).unwrap();
    let mut data = vec![0u8; 300_000];
    data.extend_from_slice(b"Age-Secret-Key-1QQQQQQQQQQ");
    std::fs::write(deep.join("notes.bin"), &data).unwrap();
    let o = failed(&f.dir, &["check"], "");
    let line = o
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL no private key in clear"))
        .unwrap_or_else(|| panic!("{o:?}"));
    assert!(line.contains("recordings/3/notes.bin"), "{line}");
}

/// A raw 32-byte key looks like any other bytes: `check` finds a member's
/// raw key (and its hex) when it holds that key (`--verify-as`).
#[test]
fn check_finds_a_members_raw_key_with_verify_as() {
    let f = Folder::new();
    add_user(&f.dir, "alice", "owner");
    add_user(&f.dir, "bob", "member");
    let o = ok(
        &f.dir,
        &["check", "--verify-as", "bob", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(o.stdout.contains("also for bob's key"), "{o:?}");
    // Bob's household key, unwrapped as the hub would.
    let blob = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = porchlight_store::Store::open(&f.dir).await.unwrap();
            let u = store.user_by_name("bob").await.unwrap().unwrap();
            let blob = u.keys.unwrap().by_password;
            store.close().await;
            blob
        })
    };
    let key = porchlight_vault::keys::unwrap_with_password(&blob, PASSWORD).unwrap();
    let deep = f.dir.join("snapshots").join("1");
    std::fs::create_dir_all(&deep).unwrap();
    let mut data = vec![7u8; 70_000];
    data.extend_from_slice(&key.secret_scalar()[..]);
    data.extend_from_slice(&[7u8; 70_000]);
    std::fs::write(deep.join("9.jpg.age"), &data).unwrap();
    let o = failed(
        &f.dir,
        &["check", "--verify-as", "bob", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    let line = o
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL no private key in clear"))
        .unwrap_or_else(|| panic!("{o:?}"));
    assert!(
        line.contains("snapshots/1/9.jpg.age") && line.contains("raw bytes"),
        "{line}"
    );
    // In hex, upper case, elsewhere.
    std::fs::remove_file(deep.join("9.jpg.age")).unwrap();
    let hex: String = key
        .secret_scalar()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    std::fs::write(f.dir.join("export-notes.txt"), hex).unwrap();
    let o = failed(
        &f.dir,
        &["check", "--verify-as", "bob", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        o.stdout
            .contains("export-notes.txt contains the member's private key in hex"),
        "{o:?}"
    );
}

#[test]
fn check_finds_a_neighborhood_account_holding_a_key() {
    let f = Folder::new();
    add_user(&f.dir, "bob", "member");
    ok(&f.dir, &["check"], "");
    sql(
        &f.db(),
        "UPDATE users SET role = 'neighbor' WHERE username = 'bob';",
    );
    let o = failed(&f.dir, &["check"], "");
    let line = o
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL household keys"))
        .unwrap_or_else(|| panic!("{o:?}"));
    assert!(line.contains("`bob`"), "{line}");
}

// ---------------------------------------------------------------------------
// Audit tampering
// ---------------------------------------------------------------------------

/// Five audit entries: three users created, one disabled and enabled.
fn folder_with_history() -> Folder {
    let f = Folder::new();
    add_user(&f.dir, "alice", "owner");
    add_user(&f.dir, "bob", "member");
    add_user(&f.dir, "nina", "neighbor");
    ok(&f.dir, &["user", "disable", "nina"], "");
    ok(&f.dir, &["user", "enable", "nina"], "");
    let o = ok(&f.dir, &["check"], "");
    assert!(o.stdout.contains("audit chain (5 entries)"), "{o:?}");
    f
}

fn tamper(f: &Folder, statements: &str) -> Output {
    sql(
        &f.db(),
        &format!(
            "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; {statements}"
        ),
    );
    let o = failed(&f.dir, &["check"], "");
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with("FAIL audit chain: ")),
        "{o:?}"
    );
    assert!(o.stderr.contains("audit chain"), "{o:?}");
    o
}

#[test]
fn check_names_an_edited_audit_entry() {
    let f = folder_with_history();
    let o = tamper(
        &f,
        "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3;",
    );
    assert!(o.all().contains("entry #3 was altered"), "{o:?}");
}

#[test]
fn check_names_a_deleted_audit_entry() {
    let f = folder_with_history();
    let o = tamper(&f, "DELETE FROM audit_log WHERE seq = 3;");
    assert!(o.all().contains("entry #3 is missing"), "{o:?}");
}

#[test]
fn check_names_swapped_audit_entries() {
    let f = folder_with_history();
    let o = tamper(
        &f,
        "UPDATE audit_log SET seq = -2 WHERE seq = 2;
         UPDATE audit_log SET seq = 2 WHERE seq = 3;
         UPDATE audit_log SET seq = 3 WHERE seq = -2;",
    );
    assert!(o.all().contains("entry #2"), "{o:?}");
}

#[test]
fn check_names_removed_newest_audit_entries() {
    let f = folder_with_history();
    let o = tamper(&f, "DELETE FROM audit_log WHERE seq >= 4;");
    assert!(o.all().contains("entries #4..#5 were removed"), "{o:?}");
}

#[test]
fn check_names_removed_newest_audit_entries_with_their_anchor() {
    let f = folder_with_history();
    // The intruder deletes the newest entries and the anchor that would
    // have named them.
    std::fs::remove_file(f.dir.join("audit.head")).unwrap();
    let o = tamper(&f, "DELETE FROM audit_log WHERE seq >= 4;");
    assert!(
        o.all().contains("audit.head is missing") && o.all().contains("ends at entry #3"),
        "{o:?}"
    );
}

// ---------------------------------------------------------------------------
// user add / list / disable
// ---------------------------------------------------------------------------

#[test]
fn user_add_prints_a_recovery_code_for_household_roles_only() {
    let f = Folder::new();
    for role in ["owner", "member"] {
        let o = add_user(&f.dir, &format!("a-{role}"), role);
        assert!(
            o.stdout.contains(&format!("Created {role} `a-{role}`.")),
            "{o:?}"
        );
        one_recovery_code(&o);
        assert!(o.stdout.contains("cannot show it again"), "{o:?}");
        assert!(o.stdout.contains("forget your password"), "{o:?}");
    }
    for role in ["neighbor", "agency", "moderator", "admin"] {
        let o = add_user(&f.dir, &format!("a-{role}"), role);
        assert!(recovery_codes(&o.all()).is_empty(), "{o:?}");
        assert!(!o.stdout.contains("recovery code"), "{o:?}");
    }
}

#[test]
fn user_add_refuses_a_duplicate_name() {
    let f = Folder::new();
    add_user(&f.dir, "alice", "owner");
    for name in ["alice", "Alice"] {
        let o = failed(
            &f.dir,
            &["user", "add", name, "--role", "member", "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
        assert_eq!(o.code, 1, "{o:?}");
        assert!(o.stderr.starts_with("error: "), "{o:?}");
        assert!(o.stderr.contains("already exists"), "{o:?}");
        assert_eq!(o.stderr.trim_end().lines().count(), 1, "{o:?}");
    }
}

#[test]
fn user_add_with_a_bad_role_lists_the_roles() {
    let f = Folder::new();
    let o = failed(
        &f.dir,
        &["user", "add", "x", "--role", "boss", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(o.code, 2, "a usage error: {o:?}");
    for role in [
        "owner",
        "member",
        "neighbor",
        "agency",
        "moderator",
        "admin",
    ] {
        assert!(o.stderr.contains(role), "{role} not listed:\n{o:?}");
    }
}

#[test]
fn user_add_refuses_a_short_password() {
    let f = Folder::new();
    let o = failed(
        &f.dir,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "owner",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(o.stderr.contains("at least 10 characters"), "{o:?}");
    assert!(recovery_codes(&o.all()).is_empty(), "{o:?}");
    let list = ok(&f.dir, &["user", "list", "--json"], "");
    assert_eq!(list.stdout.trim(), "[]");
}

#[test]
fn user_add_without_a_terminal_or_stdin_flag_explains() {
    let f = Folder::new();
    let mut cmd = porchlight(&f.dir);
    cmd.args(["user", "add", "alice", "--role", "owner"]);
    #[cfg(unix)]
    {
        // No controlling terminal to prompt on.
        use std::os::unix::process::CommandExt as _;
        unsafe {
            cmd.pre_exec(|| {
                extern "C" {
                    fn setsid() -> i32;
                }
                setsid();
                Ok(())
            });
        }
    }
    let o = run_cmd(&mut cmd, "");
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("--password-stdin"), "{o:?}");
}

#[test]
fn user_list_json_shows_roles_and_no_secrets() {
    let f = Folder::new();
    add_user(&f.dir, "alice", "owner");
    add_user(&f.dir, "bob", "member");
    add_user(&f.dir, "nina", "neighbor");
    ok(&f.dir, &["user", "disable", "nina"], "");
    let o = ok(&f.dir, &["user", "list", "--json"], "");
    let all = o.all().to_lowercase();
    assert!(!all.contains("argon2"), "{o:?}");
    assert!(!all.contains("age-secret"), "{o:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&o.stdout).unwrap();
    let got: Vec<(String, String, bool, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["username"].as_str().unwrap().to_owned(),
                r["role"].as_str().unwrap().to_owned(),
                r["has_key"].as_bool().unwrap(),
                r["disabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("alice".into(), "owner".into(), true, false),
            ("bob".into(), "member".into(), true, false),
            ("nina".into(), "neighbor".into(), false, true),
        ]
    );
    for r in &rows {
        assert_eq!(r["totp"], serde_json::json!(false));
        let at = r["created_at"].as_str().unwrap();
        assert!(at.parse::<jiff::Timestamp>().is_ok(), "not RFC 3339: {at}");
    }

    // The table shows the same, without secrets either.
    let t = ok(&f.dir, &["user", "list"], "");
    assert!(!t.all().to_lowercase().contains("argon2"), "{t:?}");
    let nina = t.stdout.lines().find(|l| l.starts_with("nina")).unwrap();
    assert!(nina.contains("neighbor") && nina.contains("yes"), "{nina}");
}

#[test]
fn unknown_user_is_a_one_line_error() {
    let f = Folder::new();
    add_user(&f.dir, "alice", "owner");
    for args in [
        &["user", "disable", "ghost"][..],
        &["user", "passwd", "ghost", "--password-stdin"][..],
        &["keys", "recover", "ghost"][..],
    ] {
        let o = failed(&f.dir, args, "a\nb\n");
        assert_eq!(o.code, 1, "{o:?}");
        assert_eq!(o.stderr.trim_end(), "error: no user named `ghost`", "{o:?}");
    }
}

#[test]
fn commands_on_a_missing_folder_do_not_create_it() {
    let f = Folder::new();
    for args in [
        &["user", "list"][..],
        &["user", "disable", "alice"][..],
        &["user", "passwd", "alice", "--password-stdin"][..],
        &["keys", "recover", "alice"][..],
    ] {
        let o = failed(&f.dir, args, "a\nb\n");
        assert!(o.stderr.contains("does not exist"), "{o:?}");
        assert!(!f.dir.exists(), "{args:?} created the data folder");
    }
    // Adding a user is how a household may start: it creates the folder.
    add_user(&f.dir, "alice", "owner");
    assert!(f.db().exists());
}

#[test]
fn unusable_data_folder_is_a_one_line_error() {
    let f = Folder::new();
    std::fs::write(&f.dir, "not a folder").unwrap();
    let o = failed(&f.dir, &["user", "list"], "");
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.starts_with("error: cannot open the data folder"),
        "{o:?}"
    );
    assert_eq!(o.stderr.trim_end().lines().count(), 1, "{o:?}");
    let o = failed(&f.dir, &["check"], "");
    assert!(o.stdout.contains("is not a folder"), "{o:?}");
}

// ---------------------------------------------------------------------------
// Passwords and key recovery
// ---------------------------------------------------------------------------

#[test]
fn user_passwd_needs_the_right_current_password() {
    let f = Folder::new();
    add_user(&f.dir, "alice", "owner");
    let passwd = ["user", "passwd", "alice", "--password-stdin"];

    let o = failed(&f.dir, &passwd, "not the password\nbrand new password\n");
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("wrong"), "{o:?}");
    assert!(o.stderr.contains("porchlight keys recover alice"), "{o:?}");
    assert!(o.stderr.contains("--reset"), "{o:?}");

    let o = ok(
        &f.dir,
        &passwd,
        &format!("{PASSWORD}\nbrand new password\n"),
    );
    assert!(
        o.stdout.contains("Changed the password of `alice`"),
        "{o:?}"
    );
    assert!(recovery_codes(&o.stdout).is_empty(), "{o:?}");

    // The old password no longer works; the new one does.
    failed(
        &f.dir,
        &passwd,
        &format!("{PASSWORD}\nanother new password\n"),
    );
    ok(
        &f.dir,
        &passwd,
        "brand new password\nanother new password\n",
    );
}

#[test]
fn user_passwd_reset_warns_and_prints_a_new_code() {
    let f = Folder::new();
    let first = one_recovery_code(&add_user(&f.dir, "bob", "member"));
    let o = ok(
        &f.dir,
        &["user", "passwd", "bob", "--reset", "--password-stdin"],
        "reset password 123\n",
    );
    assert!(o.all().contains("NEW household key"), "{o:?}");
    assert!(o.all().contains("can no longer be opened"), "{o:?}");
    let new = one_recovery_code(&o);
    assert_ne!(new, first);
    // The reset password is the password now.
    ok(
        &f.dir,
        &["user", "passwd", "bob", "--password-stdin"],
        "reset password 123\nyet another password\n",
    );
    // A neighborhood account has no key: no warning, no code.
    add_user(&f.dir, "nina", "neighbor");
    let o = ok(
        &f.dir,
        &["user", "passwd", "nina", "--reset", "--password-stdin"],
        "reset password 123\n",
    );
    assert!(!o.all().contains("household key"), "{o:?}");
    assert!(recovery_codes(&o.all()).is_empty(), "{o:?}");
}

#[test]
fn keys_recover_replaces_the_code_and_sets_the_password() {
    let f = Folder::new();
    let old = one_recovery_code(&add_user(&f.dir, "alice", "owner"));

    let wrong = failed(
        &f.dir,
        &["keys", "recover", "alice"],
        "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF\nrecovered password\n",
    );
    assert!(wrong.stderr.contains("recovery code"), "{wrong:?}");

    // Lower case and spaces are fine: the code is normalised.
    let typed = old.to_lowercase().replace('-', " ");
    let o = ok(
        &f.dir,
        &["keys", "recover", "alice"],
        &format!("{typed}\nrecovered password\n"),
    );
    assert!(o.stdout.contains("Access restored"), "{o:?}");
    let new = one_recovery_code(&o);
    assert_ne!(new, old);

    // The old code stops working.
    let o = failed(
        &f.dir,
        &["keys", "recover", "alice"],
        &format!("{old}\nsome other password\n"),
    );
    assert!(o.stderr.contains("recovery code"), "{o:?}");

    // The new password works (as the current password).
    ok(
        &f.dir,
        &["user", "passwd", "alice", "--password-stdin"],
        "recovered password\nand again a new one\n",
    );
    // And so does the new code.
    ok(
        &f.dir,
        &["keys", "recover", "alice"],
        &format!("{new}\nthird password here\n"),
    );
    ok(&f.dir, &["check"], "");
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

#[test]
fn malformed_config_is_reported_with_file_line_and_key() {
    let f = Folder::new();
    let config = f.tmp.path().join("porchlight.toml");
    std::fs::write(&config, "[web]\nlistn = \"x\"\n").unwrap();
    let path = config.to_str().unwrap();
    let check = |o: Output| {
        assert_eq!(o.code, 1, "{o:?}");
        assert!(o.stderr.starts_with("error: "), "{o:?}");
        assert!(o.stderr.contains(path), "{o:?}");
        assert!(o.stderr.contains("line 2"), "{o:?}");
        assert!(o.stderr.contains("listn"), "{o:?}");
    };
    check(run(&f.dir, &["--config", path, "check"], ""));
    check(run(&f.dir, &["user", "list", "--config", path], ""));
    check(run_cmd(
        porchlight(&f.dir)
            .env("PORCHLIGHT_CONFIG", path)
            .args(["user", "list"]),
        "",
    ));
    assert!(!f.dir.exists(), "nothing may happen with a bad config");
}

#[test]
fn data_dir_flag_beats_environment_beats_config_file() {
    let f = Folder::new();
    let from_file = f.tmp.path().join("from-file");
    let from_env = f.tmp.path().join("from-env");
    let config = f.tmp.path().join("porchlight.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", from_file.to_str().unwrap()),
    )
    .unwrap();
    // `user add` creates the folder it is pointed at: see where it went.
    let list = |cmd: &mut Command| {
        let o = run_cmd(
            cmd.args([
                "user",
                "add",
                "nina",
                "--role",
                "neighbor",
                "--password-stdin",
            ]),
            &format!("{PASSWORD}\n"),
        );
        assert_eq!(o.code, 0, "{o:?}");
    };
    let bare = || {
        let mut cmd = porchlight_bare();
        cmd.arg("--config").arg(&config);
        cmd
    };
    list(&mut bare());
    assert!(from_file.join("porchlight.db").exists());
    list(bare().env("PORCHLIGHT_DATA_DIR", &from_env));
    assert!(from_env.join("porchlight.db").exists());
    list(
        bare()
            .env("PORCHLIGHT_DATA_DIR", &from_env)
            .arg("--data-dir")
            .arg(&f.dir),
    );
    assert!(f.db().exists());
}

// ---------------------------------------------------------------------------
// serve and demo
// ---------------------------------------------------------------------------

#[test]
fn hub_serves_while_the_cli_adds_users() {
    let f = Folder::new();
    let mut hub = Hub::start(&f.dir, &["serve", "--listen", "127.0.0.1:0"]);
    let mut line = hub.next_line();
    if line.starts_with("RTSP restream at") {
        line = hub.next_line();
    }
    assert_eq!(line, "No owner yet: open that address to create one.");
    // The administrative CLI works on the folder the hub has open.
    let o = add_user(&f.dir, "alice", "owner");
    one_recovery_code(&o);
    add_user(&f.dir, "nina", "neighbor");
    ok(&f.dir, &["user", "disable", "nina"], "");
    let list = ok(&f.dir, &["user", "list", "--json"], "");
    assert!(list.stdout.contains("\"alice\""), "{list:?}");

    let resp = ureq::get(&format!("{}healthz", hub.url))
        .timeout(Duration::from_secs(10))
        .call()
        .unwrap_or_else(|e| panic!("GET /healthz: {e}\n{}", hub.diagnostics()));
    assert_eq!(resp.status(), 200);

    // A member signs in to the running hub; the CLI disables them; their
    // very next request is refused — no restart, no cache.
    add_user(&f.dir, "mia", "member");
    let signed: serde_json::Value = ureq::post(&format!("{}api/v1/sessions", hub.url))
        .send_json(serde_json::json!({ "username": "mia", "password": PASSWORD }))
        .unwrap()
        .into_json()
        .unwrap();
    let bearer = format!("Bearer {}", signed["token"].as_str().unwrap());
    let me = ureq::get(&format!("{}api/v1/me", hub.url))
        .set("Authorization", &bearer)
        .call()
        .unwrap();
    let me: serde_json::Value = me.into_json().unwrap();
    assert_eq!(me["household_key"]["unlocked"], true);
    ok(&f.dir, &["user", "disable", "mia"], "");
    let after = ureq::get(&format!("{}api/v1/me", hub.url))
        .set("Authorization", &bearer)
        .call();
    assert!(
        matches!(after, Err(ureq::Error::Status(401, _))),
        "{after:?}"
    );
    ok(&f.dir, &["check"], "");
}

#[test]
fn serve_with_an_owner_does_not_ask_for_one() {
    let f = Folder::new();
    add_user(&f.dir, "alice", "owner");
    let mut hub = Hub::start(&f.dir, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(hub.next_line().starts_with("RTSP restream at"));
    // Nothing more is printed; the hub answers.
    std::thread::sleep(Duration::from_millis(300));
    assert!(hub.lines.try_recv().is_err(), "{}", hub.diagnostics());
    let resp = ureq::get(&format!("{}healthz", hub.url))
        .timeout(Duration::from_secs(10))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[cfg(unix)]
#[test]
fn serve_stops_cleanly_on_sigterm() {
    let f = Folder::new();
    let mut hub = Hub::start(&f.dir, &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(hub.terminate(), 0, "{}", hub.diagnostics());
    ok(&f.dir, &["check"], "");
}

#[test]
fn serve_reports_an_address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let f = Folder::new();
    let o = failed(&f.dir, &["serve", "--listen", &addr], "");
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains(&format!("cannot listen on {addr}")),
        "{o:?}"
    );
    assert!(!o.stdout.contains("running"), "{o:?}");
}

#[test]
fn demo_prints_sign_ins_and_runs_twice() {
    let f = Folder::new();
    for _ in 0..2 {
        let mut hub = Hub::start(&f.dir, &["demo", "--listen", "127.0.0.1:0"]);
        hub.wait_for("two-factor");
        let out = hub.stdout.join("\n");
        for (name, password) in [
            ("demo-owner", "porchlight-demo"),
            ("demo-member", "porchlight-member"),
            ("demo-neighbor", "porchlight-neighbor"),
        ] {
            let line = out
                .lines()
                .find(|l| l.contains(&format!(" {name} ")))
                .unwrap_or_else(|| panic!("no sign-in for {name}:\n{out}"));
            assert!(line.contains(password), "{line}");
        }
        assert!(!out.to_lowercase().contains("camera"), "{out}");
        drop(hub);
    }
    let o = ok(&f.dir, &["user", "list", "--json"], "");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&o.stdout).unwrap();
    let roles: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["username"].as_str().unwrap(), r["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [
            ("demo-owner", "owner"),
            ("demo-member", "member"),
            ("demo-neighbor", "neighbor")
        ]
    );
    ok(&f.dir, &["check"], "");
}

#[test]
fn demo_refuses_a_household_folder() {
    let f = Folder::new();
    add_user(&f.dir, "alice", "owner");
    let o = failed(&f.dir, &["demo", "--listen", "127.0.0.1:0"], "");
    assert!(o.stderr.contains("household"), "{o:?}");
    let list = ok(&f.dir, &["user", "list", "--json"], "");
    assert!(!list.stdout.contains("demo-owner"), "{list:?}");
}

#[test]
fn camera_detection_switches_off_at_add_and_back_on() {
    let f = Folder::new();
    add_user(&f.dir, "alice", "owner");
    let url = "rtsp://127.0.0.1:9/x";
    let o = ok(
        &f.dir,
        &["camera", "add", "porch", "--url", url, "--no-detect"],
        "",
    );
    assert!(o.stdout.contains("detection off"), "{o:?}");
    ok(&f.dir, &["camera", "add", "yard", "--url", url], "");
    let detection = |name: &str| -> bool {
        let o = ok(&f.dir, &["camera", "list", "--json"], "");
        let rows: Vec<serde_json::Value> = serde_json::from_str(&o.stdout).unwrap();
        let row = rows.iter().find(|r| r["name"] == name).unwrap();
        row["detection"].as_bool().unwrap()
    };
    assert!(!detection("porch"));
    assert!(detection("yard"), "detection is on by default");
    ok(&f.dir, &["camera", "detection", "porch", "on"], "");
    assert!(detection("porch"));
    ok(&f.dir, &["camera", "detection", "yard", "off"], "");
    assert!(!detection("yard"));
    let o = failed(&f.dir, &["camera", "detection", "attic", "off"], "");
    assert!(o.stderr.contains("no camera named `attic`"), "{o:?}");
    let o = failed(&f.dir, &["camera", "detection", "porch", "maybe"], "");
    assert!(o.stderr.contains("maybe"), "{o:?}");
    // Each change is audited like the API's.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let audited: i64 = rt.block_on(async {
        use sqlx::{ConnectOptions as _, Connection as _};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(f.db())
            .connect()
            .await
            .unwrap();
        let n =
            sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'camera.detection'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        conn.close().await.unwrap();
        n
    });
    assert_eq!(audited, 3, "each of the three detection changes is audited");
}
