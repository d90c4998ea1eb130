//! Behaviour of `porchlight_config::load` as the CLI sees it: files on disk,
//! an injected environment, and the error messages a user reads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use porchlight_config::{
    example_toml, load, AccountsConfig, AlarmConfig, Config, ConfigError, LogConfig, MqttConfig,
    RecorderConfig, Seconds, SecureCookies, WebConfig,
};

fn no_env(_: &str) -> Option<String> {
    None
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

/// Write `text` to `porchlight.toml` in a fresh temp dir.
fn write_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("porchlight.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn load_text(text: &str) -> (Result<Config, ConfigError>, PathBuf) {
    let (_dir, path) = write_file(text);
    let result = load(Some(&path), &no_env);
    (result, path)
}

#[test]
fn no_file_gives_defaults() {
    let config = load(None, &no_env).unwrap();
    assert_eq!(config, Config::default());
    // Pin the documented defaults, so changing one is a deliberate act.
    assert_eq!(config.data_dir, None);
    assert_eq!(
        config.web.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.web.public_url, None);
    assert!(!config.web.trust_forwarded_headers);
    assert_eq!(config.web.secure_cookies, SecureCookies::Auto);
    let a = &config.accounts;
    assert_eq!(a.session_idle_minutes, 720);
    assert_eq!(a.session_max_days, 30);
    assert_eq!(a.login_free_attempts, 5);
    assert_eq!(a.lockout_base_seconds, 30);
    assert_eq!(a.lockout_max_seconds, 3600);
    assert_eq!((a.argon2_m_kib, a.argon2_t, a.argon2_p), (19456, 2, 1));
    assert!(a.require_totp_for_owners);
    assert_eq!(config.log.level, "info");
}

#[test]
fn empty_file_gives_defaults() {
    let (result, _) = load_text("# nothing set\n");
    assert_eq!(result.unwrap(), Config::default());
}

fn non_default_config() -> Config {
    Config {
        data_dir: Some(PathBuf::from("/var/lib/porchlight")),
        web: WebConfig {
            listen: "[::]:8443".parse().unwrap(),
            https_listen: "[::]:9443".parse().unwrap(),
            public_url: Some("https://hub.example".to_string()),
            trust_forwarded_headers: true,
            secure_cookies: SecureCookies::Always,
            push_allow_loopback_http: true,
        },
        accounts: AccountsConfig {
            session_idle_minutes: 60,
            session_max_days: 7,
            login_free_attempts: 3,
            lockout_base_seconds: 10,
            lockout_max_seconds: 600,
            argon2_m_kib: 65536,
            argon2_t: 3,
            argon2_p: 4,
            require_totp_for_owners: false,
        },
        recorder: RecorderConfig {
            segment_seconds: 30,
            flush_interval_seconds: 2,
            min_free_mib: 4096,
        },
        mqtt: MqttConfig {
            url: Some("mqtts://broker.lan:8883".to_string()),
            username: Some("hub".to_string()),
            password_file: Some("/etc/porchlight/mqtt-password".into()),
            ca_file: Some("/etc/porchlight/ca.pem".into()),
            client_cert_file: Some("/etc/porchlight/client.pem".into()),
            client_key_file: Some("/etc/porchlight/client.key".into()),
            client_id: Some("porchlight-hub".to_string()),
            base_topic: "home/porchlight".to_string(),
            ..MqttConfig::default()
        },
        alarm: AlarmConfig {
            exit_delay_seconds: Seconds { millis: 45_000 },
            entry_delay_seconds: Seconds { millis: 2_500 },
            siren_seconds: Seconds::from_secs(300),
        },
        neighborhood: Default::default(),
        remote: porchlight_config::RemoteConfig {
            acme_directory: Some("https://acme.example/directory".into()),
            acme_ca_file: Some(PathBuf::from("/etc/porchlight/acme-ca.pem")),
        },
        log: LogConfig {
            level: "info,porchlight_web=debug".to_string(),
        },
    }
}

#[test]
fn full_file_round_trip() {
    let text = r#"
data_dir = "/var/lib/porchlight"

[web]
listen = "[::]:8443"
https_listen = "[::]:9443"
public_url = "https://hub.example"
trust_forwarded_headers = true
secure_cookies = "always"
push_allow_loopback_http = true

[accounts]
session_idle_minutes = 60
session_max_days = 7
login_free_attempts = 3
lockout_base_seconds = 10
lockout_max_seconds = 600
argon2_m_kib = 65536
argon2_t = 3
argon2_p = 4
require_totp_for_owners = false

[recorder]
segment_seconds = 30
flush_interval_seconds = 2
min_free_mib = 4096

[mqtt]
url = "mqtts://broker.lan:8883"
username = "hub"
password_file = "/etc/porchlight/mqtt-password"
ca_file = "/etc/porchlight/ca.pem"
client_cert_file = "/etc/porchlight/client.pem"
client_key_file = "/etc/porchlight/client.key"
client_id = "porchlight-hub"
base_topic = "home/porchlight"

[alarm]
exit_delay_seconds = 45
entry_delay_seconds = 2.5
siren_seconds = 300

[remote]
acme_directory = "https://acme.example/directory"
acme_ca_file = "/etc/porchlight/acme-ca.pem"

[log]
level = "info,porchlight_web=debug"
"#;
    let (result, _) = load_text(text);
    let expected = non_default_config();
    assert_eq!(result.unwrap(), expected);

    // And what we serialize, we read back identically.
    let serialized = toml::to_string(&expected).unwrap();
    let (again, _) = load_text(&serialized);
    assert_eq!(again.unwrap(), expected);
}

#[test]
fn unknown_key_error_names_path_line_and_key() {
    let text = "# comment\n[web]\nlisten = \"127.0.0.1:8080\"\nlistn = \"0.0.0.0:80\"\n";
    let (result, path) = load_text(text);
    let err = result.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    assert!(shown.contains("line 4,"), "{shown}");
    assert!(shown.contains("column 1:"), "{shown}");
    assert!(shown.contains("`listn` in [web]"), "{shown}");
    assert!(shown.contains("`public_url`"), "valid keys listed: {shown}");
    match err {
        ConfigError::Parse {
            line, column, key, ..
        } => {
            assert_eq!((line, column), (4, 1));
            assert_eq!(key.as_deref(), Some("web.listn"));
        }
        other => panic!("expected Parse, got {other:?}"),
    }
}

#[test]
fn unknown_section_and_top_level_key_are_errors() {
    let (result, _) = load_text("[web]\nlisten = \"127.0.0.1:1\"\n\n[wbe]\nlisten = \"x\"\n");
    let shown = result.unwrap_err().to_string();
    assert!(shown.contains("line 4,"), "{shown}");
    assert!(shown.contains("`wbe`"), "{shown}");
    assert!(
        shown.contains("`accounts`"),
        "valid sections listed: {shown}"
    );

    let (result, _) = load_text("datadir = \"/x\"\n");
    let err = result.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("line 1,"), "{shown}");
    assert!(shown.contains("`datadir` at the top level"), "{shown}");
    assert!(matches!(err, ConfigError::Parse { key: Some(k), .. } if k == "datadir"));
}

#[test]
fn unknown_key_in_dotted_form_is_named() {
    let (result, _) = load_text("log.level = \"debug\"\naccounts.argon_t = 3\n");
    let err = result.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("line 2,"), "{shown}");
    assert!(shown.contains("`argon_t` in [accounts]"), "{shown}");
    assert!(matches!(err, ConfigError::Parse { key: Some(k), .. } if k == "accounts.argon_t"));
}

#[test]
fn unknown_key_in_inline_table_is_named() {
    let (result, _) = load_text("\nweb = { listen = \"127.0.0.1:1\", listn = 1 }\n");
    let err = result.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("line 2,"), "{shown}");
    assert!(shown.contains("`listn` in [web]"), "{shown}");
    assert!(matches!(err, ConfigError::Parse { key: Some(k), .. } if k == "web.listn"));
}

#[test]
fn wrong_type_error_names_line_and_key() {
    let (result, path) = load_text("[web]\n\nlisten = 8080\n");
    let err = result.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    assert!(shown.contains("line 3,"), "{shown}");
    assert!(shown.contains("`web.listen`"), "{shown}");
    match err {
        ConfigError::Parse { line, key, .. } => {
            assert_eq!(line, 3);
            assert_eq!(key.as_deref(), Some("web.listen"));
        }
        other => panic!("expected Parse, got {other:?}"),
    }

    let (result, _) = load_text("[accounts]\nargon2_t = \"two\"\n");
    let shown = result.unwrap_err().to_string();
    assert!(shown.contains("line 2,"), "{shown}");
    assert!(shown.contains("`accounts.argon2_t`"), "{shown}");

    let (result, _) = load_text("[web]\nsecure_cookies = \"sometimes\"\n");
    let shown = result.unwrap_err().to_string();
    assert!(shown.contains("line 2,"), "{shown}");
    assert!(shown.contains("`web.secure_cookies`"), "{shown}");
    assert!(shown.contains("always"), "variants listed: {shown}");
}

#[test]
fn negative_or_huge_integer_is_a_parse_error() {
    let (result, _) = load_text("[accounts]\nlogin_free_attempts = -1\n");
    let shown = result.unwrap_err().to_string();
    assert!(shown.contains("line 2,"), "{shown}");
    assert!(shown.contains("`accounts.login_free_attempts`"), "{shown}");

    let (result, _) = load_text("[accounts]\n\nargon2_m_kib = 99999999999\n");
    let shown = result.unwrap_err().to_string();
    assert!(shown.contains("line 3,"), "{shown}");
}

#[test]
fn syntax_error_reports_line() {
    let text = "[web]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"https://hub.example\n\n[log]\nlevel = \"info\"\n";
    let (result, path) = load_text(text);
    let err = result.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    assert!(shown.contains("line 3,"), "{shown}");
    assert!(!shown.contains('\n'), "one line: {shown}");
    assert!(matches!(err, ConfigError::Parse { line: 3, .. }));
}

#[test]
fn missing_explicit_file_names_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = load(Some(&path), &no_env).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    match err {
        ConfigError::Read { path: p, source } => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Read, got {other:?}"),
    }
}

#[test]
fn non_utf8_file_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, b"[web]\nlisten = \"\xff\"\n").unwrap();
    let err = load(Some(&path), &no_env).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn env_overrides_nested_int_bool_and_string() {
    let (_dir, path) = write_file("[accounts]\nlogin_free_attempts = 7\n[log]\nlevel = \"warn\"\n");
    let env = env_of(&[
        ("PORCHLIGHT_ACCOUNTS_LOGIN_FREE_ATTEMPTS", "3"),
        ("PORCHLIGHT_ACCOUNTS_REQUIRE_TOTP_FOR_OWNERS", "false"),
        ("PORCHLIGHT_WEB_TRUST_FORWARDED_HEADERS", "1"),
        ("PORCHLIGHT_WEB_LISTEN", "0.0.0.0:9090"),
        ("PORCHLIGHT_WEB_SECURE_COOKIES", "never"),
        ("PORCHLIGHT_LOG_LEVEL", "debug"),
        ("PORCHLIGHT_DATA_DIR", "/var/lib/porchlight"),
    ]);
    let config = load(Some(&path), &env).unwrap();
    // env wins over the file...
    assert_eq!(config.accounts.login_free_attempts, 3);
    assert_eq!(config.log.level, "debug");
    // ...and over defaults.
    assert!(!config.accounts.require_totp_for_owners);
    assert!(config.web.trust_forwarded_headers);
    assert_eq!(
        config.web.listen,
        "0.0.0.0:9090".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.web.secure_cookies, SecureCookies::Never);
    assert_eq!(
        config.data_dir.as_deref(),
        Some(Path::new("/var/lib/porchlight"))
    );
    // Untouched settings keep their values.
    assert_eq!(config.accounts.session_max_days, 30);
}

#[test]
fn env_empty_value_unsets_optional_setting() {
    let (_dir, path) = write_file("[web]\npublic_url = \"https://hub.example\"\n");
    let env = env_of(&[("PORCHLIGHT_WEB_PUBLIC_URL", "")]);
    let config = load(Some(&path), &env).unwrap();
    assert_eq!(config.web.public_url, None);
}

#[test]
fn unknown_porchlight_variables_are_ignored() {
    let env = env_of(&[
        ("PORCHLIGHT_CONFIG", "/etc/porchlight.toml"),
        ("PORCHLIGHT_WEB_LISTN", "garbage"),
        ("PORCHLIGHT_LISTEN", "garbage"),
    ]);
    assert_eq!(load(None, &env).unwrap(), Config::default());
}

fn env_error(pairs: &[(&str, &str)]) -> (String, String) {
    match load(None, &env_of(pairs)).unwrap_err() {
        err @ ConfigError::Env { .. } => {
            let shown = err.to_string();
            let ConfigError::Env { var, .. } = err else {
                unreachable!()
            };
            (var, shown)
        }
        other => panic!("expected Env, got {other:?}"),
    }
}

#[test]
fn bad_env_value_names_the_variable_and_expected_type() {
    let (var, shown) = env_error(&[("PORCHLIGHT_ACCOUNTS_ARGON2_T", "two")]);
    assert_eq!(var, "PORCHLIGHT_ACCOUNTS_ARGON2_T");
    assert!(shown.contains("PORCHLIGHT_ACCOUNTS_ARGON2_T"), "{shown}");
    assert!(shown.contains("whole number"), "{shown}");

    let (var, shown) = env_error(&[("PORCHLIGHT_ACCOUNTS_LOGIN_FREE_ATTEMPTS", "-1")]);
    assert_eq!(var, "PORCHLIGHT_ACCOUNTS_LOGIN_FREE_ATTEMPTS");
    assert!(shown.contains("whole number"), "{shown}");

    let (var, shown) = env_error(&[("PORCHLIGHT_WEB_TRUST_FORWARDED_HEADERS", "maybe")]);
    assert_eq!(var, "PORCHLIGHT_WEB_TRUST_FORWARDED_HEADERS");
    assert!(shown.contains("true or false"), "{shown}");

    let (var, shown) = env_error(&[("PORCHLIGHT_WEB_LISTEN", "8080")]);
    assert_eq!(var, "PORCHLIGHT_WEB_LISTEN");
    assert!(shown.contains("socket address"), "{shown}");

    let (var, shown) = env_error(&[("PORCHLIGHT_WEB_SECURE_COOKIES", "sometimes")]);
    assert_eq!(var, "PORCHLIGHT_WEB_SECURE_COOKIES");
    assert!(shown.contains("auto, always, never"), "{shown}");
}

#[test]
fn invalid_public_url_names_the_key() {
    let (result, _) = load_text("[web]\npublic_url = \"ftp://x\"\n");
    let err = result.unwrap_err();
    assert!(err.to_string().contains("web.public_url"), "{err}");
    assert!(
        matches!(&err, ConfigError::Invalid { key, .. } if key == "web.public_url"),
        "{err:?}"
    );

    for bad in ["hub.example", "https://", "http:// x", ""] {
        let env = env_of(&[("PORCHLIGHT_WEB_PUBLIC_URL", bad)]);
        let result = load(None, &env);
        if bad.is_empty() {
            // Empty from the environment means "unset", which is valid.
            assert!(result.is_ok());
            continue;
        }
        assert!(
            matches!(&result, Err(ConfigError::Invalid { key, .. }) if key == "web.public_url"),
            "{bad:?}: {result:?}"
        );
    }

    for good in [
        "https://hub.example",
        "http://192.168.1.5:8080/",
        "HTTPS://Hub.Example/x",
    ] {
        let env = env_of(&[("PORCHLIGHT_WEB_PUBLIC_URL", good)]);
        let config = load(None, &env).unwrap();
        assert_eq!(config.web.public_url.as_deref(), Some(good));
    }
}

fn invalid_key(text: &str) -> String {
    let (result, _) = load_text(text);
    match result {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected Invalid for {text:?}, got {other:?}"),
    }
}

#[test]
fn invalid_values_name_their_key() {
    assert_eq!(
        invalid_key("[accounts]\nargon2_m_kib = 31\nargon2_p = 4\n"),
        "accounts.argon2_m_kib"
    );
    assert_eq!(
        invalid_key("[accounts]\nargon2_p = 0\n"),
        "accounts.argon2_p"
    );
    assert_eq!(
        invalid_key("[accounts]\nargon2_t = 0\n"),
        "accounts.argon2_t"
    );
    assert_eq!(
        invalid_key("[accounts]\nsession_idle_minutes = 0\n"),
        "accounts.session_idle_minutes"
    );
    assert_eq!(
        invalid_key("[accounts]\nsession_max_days = 0\n"),
        "accounts.session_max_days"
    );
    assert_eq!(
        invalid_key("[accounts]\nsession_max_days = 1\nsession_idle_minutes = 1441\n"),
        "accounts.session_idle_minutes"
    );
    assert_eq!(
        invalid_key("[accounts]\nlockout_base_seconds = 0\n"),
        "accounts.lockout_base_seconds"
    );
    assert_eq!(
        invalid_key("[accounts]\nlockout_base_seconds = 60\nlockout_max_seconds = 59\n"),
        "accounts.lockout_max_seconds"
    );
    assert_eq!(invalid_key("[log]\nlevel = \" \"\n"), "log.level");
    assert_eq!(invalid_key("data_dir = \"\"\n"), "data_dir");

    // The boundary itself is fine.
    let (result, _) = load_text("[accounts]\nargon2_m_kib = 32\nargon2_p = 4\n");
    assert_eq!(result.unwrap().accounts.argon2_m_kib, 32);
}

#[test]
fn env_overrides_are_validated_too() {
    let env = env_of(&[("PORCHLIGHT_ACCOUNTS_SESSION_IDLE_MINUTES", "0")]);
    let err = load(None, &env).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Invalid { key, .. } if key == "accounts.session_idle_minutes"),
        "{err:?}"
    );
}

#[test]
fn example_toml_parses_to_defaults() {
    let text = example_toml();
    let (result, _) = load_text(&text);
    assert_eq!(result.unwrap(), Config::default());
    // Every setting is documented in it, optional ones commented out.
    for key in [
        "data_dir =",
        "listen =",
        "public_url =",
        "trust_forwarded_headers =",
        "secure_cookies =",
        "session_idle_minutes =",
        "session_max_days =",
        "login_free_attempts =",
        "lockout_base_seconds =",
        "lockout_max_seconds =",
        "argon2_m_kib =",
        "argon2_t =",
        "argon2_p =",
        "require_totp_for_owners =",
        "level =",
    ] {
        assert!(text.contains(key), "example lacks {key}");
    }
    // Uncommenting the optional examples still gives a valid file.
    let uncommented = text
        .replace("# data_dir =", "data_dir =")
        .replace("# public_url =", "public_url =");
    let (result, _) = load_text(&uncommented);
    let config = result.unwrap();
    assert!(config.data_dir.is_some());
    assert!(config.web.public_url.is_some());
}

/// Tiny deterministic generator (xorshift64*), so the test needs no deps and
/// a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

#[test]
fn mangled_files_and_env_never_panic() {
    let base = toml::to_string(&non_default_config()).unwrap() + &example_toml();
    let first_copy = toml::to_string(&non_default_config()).unwrap().len();
    let base = base.into_bytes();
    let noise: &[&[u8]] = &[
        b"[",
        b"]",
        b"=",
        b"\"",
        b"'",
        b"\n",
        b"#",
        b".",
        b"{",
        b"}",
        b",",
        b"\\",
        b"-1",
        b"99999999999999999999",
        b"[[web]]",
        b"\xff",
        "é".as_bytes(),
        b"\"\"\"",
        b"true",
        b"0",
        b"listn",
        b"\r",
        b"\t",
        b" ",
    ];
    let env_values = [
        "",
        "0",
        "-1",
        "x",
        "true",
        "[::]:1",
        "é",
        "4294967296",
        "https://",
    ];

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.toml");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut parse, mut other) = (0, 0, 0);

    for round in 0..200 {
        let mut bytes = base.clone();
        match round % 4 {
            // Truncate anywhere, even inside a UTF-8 sequence.
            // Every other time at a line's end within the first (valid)
            // copy, which leaves a valid file: the Ok path is exercised too.
            0 => {
                let mut at = rng.below(bytes.len() + 1);
                if round % 8 == 0 {
                    at %= first_copy + 1;
                    while at > 0 && bytes[at - 1] != b'\n' {
                        at -= 1;
                    }
                }
                bytes.truncate(at)
            }
            // Splice in a few noise tokens.
            1 => {
                for _ in 0..=rng.below(3) {
                    let at = rng.below(bytes.len() + 1);
                    let token = noise[rng.below(noise.len())];
                    bytes.splice(at..at, token.iter().copied());
                }
            }
            // Delete a random range.
            2 => {
                let a = rng.below(bytes.len() + 1);
                let b = (a + rng.below(40)).min(bytes.len());
                bytes.drain(a..b);
            }
            // Overwrite single bytes.
            _ => {
                for _ in 0..=rng.below(5) {
                    if !bytes.is_empty() {
                        let at = rng.below(bytes.len());
                        bytes[at] = noise[rng.below(noise.len())][0];
                    }
                }
            }
        }
        std::fs::write(&path, &bytes).unwrap();

        let var = match rng.below(4) {
            0 => "PORCHLIGHT_WEB_LISTEN",
            1 => "PORCHLIGHT_ACCOUNTS_ARGON2_P",
            2 => "PORCHLIGHT_WEB_PUBLIC_URL",
            _ => "PORCHLIGHT_NOTHING",
        };
        let value = env_values[rng.below(env_values.len())];
        let env = env_of(&[(var, value)]);

        let line_count = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        match load(Some(&path), &env) {
            Ok(_) => ok += 1,
            Err(ConfigError::Parse {
                line,
                column,
                message,
                ..
            }) => {
                parse += 1;
                assert!(
                    line >= 1 && line <= line_count,
                    "round {round}: line {line}"
                );
                assert!(column >= 1, "round {round}");
                assert!(!message.is_empty(), "round {round}");
            }
            Err(e) => {
                other += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    // The generator really exercised both paths.
    assert!(ok > 0 && parse > 0, "ok {ok}, parse {parse}, other {other}");
}

#[test]
fn alarm_delays_from_the_environment_allow_decimals() {
    let env = env_of(&[
        ("PORCHLIGHT_ALARM_ENTRY_DELAY_SECONDS", "0.5"),
        ("PORCHLIGHT_ALARM_EXIT_DELAY_SECONDS", "0"),
    ]);
    let c = load(None, &env).unwrap();
    assert_eq!(c.alarm.entry_delay_seconds.millis, 500);
    assert_eq!(c.alarm.exit_delay_seconds.millis, 0);
    assert_eq!(c.alarm.siren_seconds.millis, 180_000);
    let (var, shown) = env_error(&[("PORCHLIGHT_ALARM_SIREN_SECONDS", "soon")]);
    assert_eq!(var, "PORCHLIGHT_ALARM_SIREN_SECONDS");
    assert!(shown.contains("seconds"), "{shown}");
    let (_, shown) = env_error(&[("PORCHLIGHT_ALARM_SIREN_SECONDS", "-3")]);
    assert!(shown.contains("0 to 86400"), "{shown}");
}

#[test]
fn mqtt_password_comes_only_from_the_environment() {
    let env = env_of(&[
        ("PORCHLIGHT_MQTT_URL", "mqtts://broker.lan"),
        ("PORCHLIGHT_MQTT_USERNAME", "hub"),
        ("PORCHLIGHT_MQTT_PASSWORD", "s3cret"),
    ]);
    let c = load(None, &env).unwrap();
    assert_eq!(
        c.mqtt.password.as_ref().map(|p| p.0.as_str()),
        Some("s3cret")
    );
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "Debug hides the password"
    );
    assert!(!toml::to_string(&c).unwrap().contains("s3cret"));
    // In the file it is an unknown key.
    let (result, _) = load_text("[mqtt]\nusername = \"hub\"\npassword = \"s3cret\"\n");
    let shown = result.unwrap_err().to_string();
    assert!(shown.contains("`password`"), "{shown}");
    // A password without a user name is a mistake, said so.
    let err = load(None, &env_of(&[("PORCHLIGHT_MQTT_PASSWORD", "x")])).unwrap_err();
    assert!(err.to_string().contains("mqtt.username"), "{err}");
}

#[test]
fn mqtt_url_scheme_and_ca_file_are_checked() {
    let err = load(None, &env_of(&[("PORCHLIGHT_MQTT_URL", "tcp://broker")])).unwrap_err();
    assert!(err.to_string().contains("mqtts://"), "{err}");
    let err = load(
        None,
        &env_of(&[
            ("PORCHLIGHT_MQTT_URL", "mqtt://broker"),
            ("PORCHLIGHT_MQTT_CA_FILE", "/ca.pem"),
        ]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("mqtt.ca_file"), "{err}");
    let err = load(None, &env_of(&[("PORCHLIGHT_MQTT_BASE_TOPIC", "a/#")])).unwrap_err();
    assert!(err.to_string().contains("mqtt.base_topic"), "{err}");
}

#[test]
fn mqtt_client_certificate_needs_its_key_and_tls() {
    let tls = ("PORCHLIGHT_MQTT_URL", "mqtts://broker");
    let cert = (
        "PORCHLIGHT_MQTT_CLIENT_CERT_FILE",
        "/etc/porchlight/client.pem",
    );
    let key = (
        "PORCHLIGHT_MQTT_CLIENT_KEY_FILE",
        "/etc/porchlight/client.key",
    );
    let c = load(None, &env_of(&[tls, cert, key])).unwrap();
    assert_eq!(
        c.mqtt.client_cert_file.as_deref(),
        Some(std::path::Path::new("/etc/porchlight/client.pem"))
    );
    assert_eq!(
        c.mqtt.client_key_file.as_deref(),
        Some(std::path::Path::new("/etc/porchlight/client.key"))
    );
    // One without the other names the missing one.
    let err = load(None, &env_of(&[tls, cert])).unwrap_err().to_string();
    assert!(err.contains("mqtt.client_key_file"), "{err}");
    let err = load(None, &env_of(&[tls, key])).unwrap_err().to_string();
    assert!(err.contains("mqtt.client_cert_file"), "{err}");
    // Plain mqtt:// has no TLS to present a certificate in.
    let err = load(
        None,
        &env_of(&[("PORCHLIGHT_MQTT_URL", "mqtt://broker"), cert, key]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("mqtt.client_cert_file") && err.contains("mqtts://"),
        "{err}"
    );
    // An empty value unsets it (the key then stands alone: refused).
    let err = load(
        None,
        &env_of(&[tls, ("PORCHLIGHT_MQTT_CLIENT_CERT_FILE", ""), key]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("mqtt.client_cert_file"), "{err}");
}
