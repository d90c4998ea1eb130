//! Porchlight's configuration: one optional TOML file, sensible defaults for
//! every setting, and `PORCHLIGHT_…` environment overrides.
//!
//! # What this crate is for
//!
//! It turns "maybe a file, plus the environment" into one validated
//! [`Config`] value that the `porchlight` binary hands to the roles it starts.
//! A fresh install needs no file at all: [`load`] with no path returns the
//! defaults (listen on `127.0.0.1:8080`, strong Argon2id parameters, TOTP
//! required for owners, and so on).
//!
//! Layers, lowest to highest precedence:
//!
//! 1. built-in defaults ([`Config::default`]);
//! 2. the TOML file, if a path is given (a path that does not exist is an
//!    error, never silently ignored);
//! 3. environment variables `PORCHLIGHT_<SECTION>_<KEY>`, e.g.
//!    `PORCHLIGHT_WEB_LISTEN=0.0.0.0:8080` or
//!    `PORCHLIGHT_ACCOUNTS_LOGIN_FREE_ATTEMPTS=3`; top-level keys have no
//!    section (`PORCHLIGHT_DATA_DIR`);
//! 4. command-line flags, which the CLI applies to the returned `Config`.
//!
//! The result is validated after all layers are applied. Every failure names
//! where it came from: the file path with line and column and the key
//! ([`ConfigError::Parse`]), the environment variable ([`ConfigError::Env`]),
//! or the dotted key whose value is unacceptable ([`ConfigError::Invalid`]).
//! Unknown keys are errors, so a typo such as `listn` cannot silently leave
//! a setting at its default.
//!
//! # What this crate is not for
//!
//! It holds no runtime state and no secrets: no passwords, keys or tokens
//! belong in this file (those live in the store and the vault). It does not
//! describe cameras, zones or users either; those are data, edited in the web
//! interface and kept in the database. It performs no I/O beyond reading the
//! one file, and does not create `data_dir`.
//!
//! # Example
//!
//! ```
//! use porchlight_config::{load, SecureCookies};
//!
//! // No file; the environment sets one value.
//! let env = |name: &str| match name {
//!     "PORCHLIGHT_WEB_LISTEN" => Some("0.0.0.0:9000".to_string()),
//!     _ => None,
//! };
//! let config = load(None, &env).unwrap();
//! assert_eq!(config.web.listen.port(), 9000);
//! assert_eq!(config.web.secure_cookies, SecureCookies::Auto);
//! assert_eq!(config.accounts.login_free_attempts, 5);
//!
//! // The commented example file parses back to the defaults.
//! let example: porchlight_config::Config =
//!     toml::from_str(&porchlight_config::example_toml()).unwrap();
//! assert_eq!(example, porchlight_config::Config::default());
//! ```

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole configuration. Every field has a default; see [`example_toml`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where recordings, databases and keys live. `None`: the CLI chooses
    /// its platform default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `[web]`: the HTTP server.
    pub web: WebConfig,
    /// `[accounts]`: sessions, login rate limiting, password hashing.
    pub accounts: AccountsConfig,
    /// `[recorder]`: how video is written and kept.
    pub recorder: RecorderConfig,
    /// `[mqtt]`: the broker for sensors, sirens, doorbells and Home Assistant.
    pub mqtt: MqttConfig,
    /// `[alarm]`: the alarm's delays.
    pub alarm: AlarmConfig,
    /// `[neighborhood]`: the neighborhood server run in the same process.
    pub neighborhood: NeighborhoodConfig,
    /// `[remote]`: remote access turned on from the settings page.
    pub remote: RemoteConfig,
    /// `[log]`: logging.
    pub log: LogConfig,
}

/// `[remote]`: what remote access uses when an owner turns it on from the
/// settings page (`porchlight remote enable` takes the same as options).
/// Unset: Let's Encrypt, trusted through the usual web roots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteConfig {
    /// The ACME CA's directory URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme_directory: Option<String>,
    /// A PEM root to trust for the ACME CA's own HTTPS (a test CA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme_ca_file: Option<PathBuf>,
}

/// `[neighborhood]`: the neighborhood server (posts, agencies, moderation),
/// run by `serve` and `demo` in the same process on a listener of its own —
/// its own origin, so its cookies and the hub's never mix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NeighborhoodConfig {
    /// Run it (default true).
    pub enabled: bool,
    /// Where it listens (default 127.0.0.1:8081).
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`; unset: `neighborhood.db` in the
    /// data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Default for NeighborhoodConfig {
    fn default() -> Self {
        NeighborhoodConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            database_url: None,
        }
    }
}

/// `[web]`: the HTTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Address and port to listen on. Default `127.0.0.1:8080` (this machine
    /// only); use `0.0.0.0:8080` or `[::]:8080` to serve the network.
    pub listen: SocketAddr,
    /// The URL people use to reach the hub, e.g. `https://hub.example`.
    /// With [`SecureCookies::Auto`], an `https://` URL makes cookies `Secure`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Honour `X-Forwarded-For` / `X-Forwarded-Proto`. Default `false`: turn
    /// it on only behind a reverse proxy you run, otherwise any client can
    /// forge its address and defeat login rate limiting.
    pub trust_forwarded_headers: bool,
    /// Whether session cookies carry the `Secure` attribute.
    pub secure_cookies: SecureCookies,
    /// Where the hub serves HTTPS once it has a certificate of its own
    /// (remote access, `porchlight remote enable`). Default `0.0.0.0:8443`:
    /// the LAN name `lan.<hub-id>.<domain>` must reach it from phones at
    /// home. Unused while remote access is off.
    pub https_listen: SocketAddr,
    /// Accept Web Push subscriptions whose endpoint is plain `http://` to a
    /// loopback IP literal (`127.0.0.0/8`, `[::1]`). Default `false`: real
    /// push services are HTTPS. For a push service run on the hub's own
    /// machine (the browser tests stand one in); never any other host.
    pub push_allow_loopback_http: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            https_listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8443)),
            public_url: None,
            trust_forwarded_headers: false,
            secure_cookies: SecureCookies::Auto,
            push_allow_loopback_http: false,
        }
    }
}

/// `web.secure_cookies`: `"auto"`, `"always"` or `"never"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecureCookies {
    /// `Secure` when the hub is reached over HTTPS: `web.public_url` starts
    /// with `https://`, or (only with `trust_forwarded_headers`) the proxy
    /// says `X-Forwarded-Proto: https`.
    #[default]
    Auto,
    /// Always `Secure` (browsers then refuse the cookie over plain HTTP,
    /// except on `localhost`).
    Always,
    /// Never `Secure`. For plain-HTTP use on a trusted LAN only.
    Never,
}

/// `[accounts]`: sessions, login rate limiting and password hashing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// A session ends after this many minutes without a request. Default
    /// 720 (12 hours).
    pub session_idle_minutes: u32,
    /// A session ends this many days after login, however active. Default 30.
    pub session_max_days: u32,
    /// Failed logins allowed (per account and per client address) before
    /// lockout delays start. Default 5.
    pub login_free_attempts: u32,
    /// First lockout delay, in seconds; it doubles with each further
    /// failure. Default 30.
    pub lockout_base_seconds: u32,
    /// Upper bound of the lockout delay, in seconds. Default 3600.
    pub lockout_max_seconds: u32,
    /// Argon2id memory cost in KiB. Default 19456 (19 MiB, the OWASP
    /// recommendation with t = 2, p = 1).
    pub argon2_m_kib: u32,
    /// Argon2id iterations. Default 2.
    pub argon2_t: u32,
    /// Argon2id parallelism. Default 1.
    pub argon2_p: u32,
    /// Owners (who can change keys, members and sharing) must enrol a second
    /// factor. Default `true`.
    pub require_totp_for_owners: bool,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            session_idle_minutes: 720,
            session_max_days: 30,
            login_free_attempts: 5,
            lockout_base_seconds: 30,
            lockout_max_seconds: 3600,
            argon2_m_kib: 19456,
            argon2_t: 2,
            argon2_p: 1,
            require_totp_for_owners: true,
        }
    }
}

/// `[recorder]`: how video is written and kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecorderConfig {
    /// Target length of one segment file in seconds (a segment ends at the
    /// first key frame after it). Default 60.
    pub segment_seconds: u32,
    /// Longest time written video may sit in the page cache before an
    /// fsync: the most a power cut can lose. Default 10.
    pub flush_interval_seconds: u32,
    /// Keep at least this many MiB free on the data folder's disk; the
    /// oldest recordings go first. Default 1024.
    pub min_free_mib: u32,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            segment_seconds: 60,
            flush_interval_seconds: 10,
            min_free_mib: 1024,
        }
    }
}

/// `[mqtt]`: the MQTT broker (Zigbee2MQTT sensors, sirens, Home Assistant).
///
/// The password never lives in this file: give `password_file` (a file
/// holding only the password) or the environment variable
/// `PORCHLIGHT_MQTT_PASSWORD`, which wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `mqtt://HOST[:PORT]` (default port 1883) or `mqtts://HOST[:PORT]`
    /// (TLS, default port 8883). Unset: no MQTT (the alarm still works from
    /// the web and the CLI, but no sensor or siren is reachable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// User name for the broker; unset: connect anonymously.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A file holding the broker password (trailing newline ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Only from the environment (`PORCHLIGHT_MQTT_PASSWORD`), never from
    /// the file; wins over `password_file`.
    #[serde(skip)]
    pub password: Option<Secret>,
    /// PEM file of the CA that signed the broker's certificate (a private
    /// CA); unset: the system's trusted roots. Only with `mqtts://`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM file of this hub's client certificate (and any intermediates),
    /// for brokers that require one (mutual TLS, Mosquitto's
    /// `require_certificate true`). Only with `mqtts://`, and only with
    /// `client_key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key (PKCS#8, SEC1 or
    /// PKCS#1, unencrypted); keep it readable by the hub only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<PathBuf>,
    /// MQTT client id; unset: `porchlight-<process id>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Root of the hub's own topics. Default `porchlight`.
    pub base_topic: String,
    /// Home Assistant's discovery prefix. Default `homeassistant`.
    pub discovery_prefix: String,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: None,
            username: None,
            password_file: None,
            password: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            client_id: None,
            base_topic: "porchlight".to_string(),
            discovery_prefix: "homeassistant".to_string(),
        }
    }
}

/// A secret string: compared and cloned, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A duration in seconds, decimals allowed (`0.5`), kept as whole
/// milliseconds so the configuration stays comparable with `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds {
    pub millis: u64,
}

impl Seconds {
    pub const fn from_secs(s: u64) -> Seconds {
        Seconds { millis: s * 1000 }
    }
}

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.millis.is_multiple_of(1000) {
            write!(f, "{}", self.millis / 1000)
        } else {
            write!(f, "{}", self.millis as f64 / 1000.0)
        }
    }
}

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.millis.is_multiple_of(1000) {
            s.serialize_u64(self.millis / 1000)
        } else {
            s.serialize_f64(self.millis as f64 / 1000.0)
        }
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Seconds, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of seconds from 0 to 86400 (decimals allowed)")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Seconds, E> {
                if !(0.0..=86_400.0).contains(&v) {
                    return Err(E::custom(format!(
                        "{v} is not a number of seconds from 0 to 86400"
                    )));
                }
                Ok(Seconds {
                    millis: (v * 1000.0).round() as u64,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `[alarm]`: the alarm's default delays (an arm request may name others).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmConfig {
    /// Time to leave after arming before sensors count. Default 30.
    pub exit_delay_seconds: Seconds,
    /// Time to disarm after a counted sensor trips. Default 30.
    pub entry_delay_seconds: Seconds,
    /// How long the sirens sound after a trigger. Default 180.
    pub siren_seconds: Seconds,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        AlarmConfig {
            exit_delay_seconds: Seconds::from_secs(30),
            entry_delay_seconds: Seconds::from_secs(30),
            siren_seconds: Seconds::from_secs(180),
        }
    }
}

/// `[log]`: logging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter: a level (`error`, `warn`, `info`, `debug`,
    /// `trace`) or directives such as `info,porchlight_web=debug`.
    /// Default `info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given explicitly could not be read (missing, unreadable, not
    /// UTF-8).
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the expected settings.
    /// `line` and `column` count from 1; `message` is the full explanation
    /// and names the key when it is known; `key` is that dotted key
    /// (e.g. `web.listen`) for programs, when it could be worked out.
    #[error("config file {}, line {line}, column {column}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        key: Option<String>,
        message: String,
    },
    /// A `PORCHLIGHT_…` environment variable holds an unusable value.
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    /// A setting parsed but its value is not acceptable. `key` is dotted,
    /// e.g. `web.public_url`.
    #[error("invalid setting `{key}`: {message}")]
    Invalid { key: String, message: String },
}

/// Load the configuration: defaults, then the file at `path` (if any), then
/// `PORCHLIGHT_…` overrides looked up through `env`, then validation.
///
/// `env` is a lookup function so tests need not touch the process
/// environment; [`load_from_process_env`] passes the real one.
pub fn load(
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let config = match path {
        None => Config::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            parse_file(path, &text)?
        }
    };
    let config = apply_env(config, env)?;
    validate(&config)?;
    Ok(config)
}

/// [`load`] with the process environment. A variable whose value is not
/// valid Unicode is passed on lossily converted, so it fails loudly rather
/// than being ignored.
pub fn load_from_process_env(path: Option<&Path>) -> Result<Config, ConfigError> {
    load(path, &|name| {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    })
}

/// A commented example file listing every setting with its default value.
/// Parsing it yields [`Config::default`].
pub fn example_toml() -> String {
    let d = Config::default();
    let w = &d.web;
    let a = &d.accounts;
    let cookies = match w.secure_cookies {
        SecureCookies::Auto => "auto",
        SecureCookies::Always => "always",
        SecureCookies::Never => "never",
    };
    let mut s = String::new();
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        s,
        r#"# Porchlight configuration. Every setting is optional; the values shown
# are the defaults. Any setting can also be given in the environment as
# PORCHLIGHT_<SECTION>_<KEY>, e.g. PORCHLIGHT_WEB_LISTEN=0.0.0.0:8080,
# which wins over this file. Command-line flags win over both.
# Unknown keys are errors.

# Where recordings, databases and keys live (default: chosen by the CLI).
# data_dir = "/var/lib/porchlight"

[web]
# Address and port to listen on. 127.0.0.1 serves this machine only;
# use "0.0.0.0:8080" or "[::]:8080" to serve your network.
listen = "{listen}"

# Where the hub serves HTTPS once remote access gives it a certificate
# (`porchlight remote enable`); plain HTTP from other machines is then
# redirected there. Unused while remote access is off.
https_listen = "{https_listen}"

# The URL people use to reach the hub. With secure_cookies = "auto",
# an https:// URL makes session cookies Secure.
# public_url = "https://hub.example"

# Honour X-Forwarded-For / X-Forwarded-Proto. Turn on only behind a
# reverse proxy you run: otherwise clients can forge their address.
trust_forwarded_headers = {trust}

# Secure attribute on session cookies: "auto", "always" or "never".
secure_cookies = "{cookies}"

# Accept Web Push endpoints on http://127.0.0.1 or http://[::1] (a push
# service on this machine, for tests). Never any other http:// host.
push_allow_loopback_http = false

[accounts]
# A session ends after this many minutes without activity (720 = 12 hours).
session_idle_minutes = {idle}
# ...and this many days after login, however active.
session_max_days = {max_days}

# Failed logins allowed before lockout delays start.
login_free_attempts = {free}
# First lockout delay in seconds; doubles with each further failure...
lockout_base_seconds = {base}
# ...up to this many seconds.
lockout_max_seconds = {lmax}

# Argon2id password hashing: memory in KiB, iterations, parallelism.
# argon2_m_kib must be at least 8 * argon2_p.
argon2_m_kib = {m}
argon2_t = {t}
argon2_p = {p}

# Owners must enrol a second factor (TOTP or passkey).
require_totp_for_owners = {totp}

[recorder]
# Target length of a segment file, in seconds.
segment_seconds = {seg}
# Longest time written video waits for an fsync: what a power cut can lose.
flush_interval_seconds = {flush}
# Keep at least this many MiB free on the data folder's disk.
min_free_mib = {free_mib}

[mqtt]
# The broker for Zigbee2MQTT sensors, sirens, doorbells and Home Assistant:
# mqtt://HOST[:PORT] (port 1883) or mqtts://HOST[:PORT] (TLS, port 8883).
# url = "mqtt://127.0.0.1:1883"
# username = "porchlight"
# A file holding only the password (or set PORCHLIGHT_MQTT_PASSWORD).
# Never put the password itself in this file.
# password_file = "/etc/porchlight/mqtt-password"
# PEM certificate of a private CA that signed the broker's certificate.
# ca_file = "/etc/porchlight/mqtt-ca.pem"
# A client certificate and its key, for brokers that require one (PEM).
# client_cert_file = "/etc/porchlight/mqtt-client.pem"
# client_key_file = "/etc/porchlight/mqtt-client.key"
# client_id = "porchlight"
# Root of the hub's topics, and Home Assistant's discovery prefix.
base_topic = "{base_topic}"
discovery_prefix = "{discovery_prefix}"

[alarm]
# Seconds to leave after arming, to disarm after a door opens, and how
# long sirens sound (decimals allowed).
exit_delay_seconds = {exit}
entry_delay_seconds = {entry}
siren_seconds = {siren}

[neighborhood]
# The neighborhood server, in the same process on its own address.
enabled = true
listen = "{nb_listen}"
# sqlite://PATH?mode=rwc or postgres://USER@HOST/DB; unset: neighborhood.db
# in the data directory.
# database_url = "postgres://porchlight@127.0.0.1/neighborhood"

[remote]
# The ACME CA that gives the hub its certificate when an owner turns remote
# access on from the settings page; unset: Let's Encrypt.
# acme_directory = "https://acme-v02.api.letsencrypt.org/directory"
# A PEM root to trust for that CA's own HTTPS (only for a test CA).
# acme_ca_file = "/etc/porchlight/test-ca.pem"

[log]
# "error", "warn", "info", "debug", "trace", or tracing directives such as
# "info,porchlight_web=debug".
level = "{level}"
"#,
        listen = w.listen,
        https_listen = w.https_listen,
        seg = d.recorder.segment_seconds,
        flush = d.recorder.flush_interval_seconds,
        free_mib = d.recorder.min_free_mib,
        trust = w.trust_forwarded_headers,
        idle = a.session_idle_minutes,
        max_days = a.session_max_days,
        free = a.login_free_attempts,
        base = a.lockout_base_seconds,
        lmax = a.lockout_max_seconds,
        m = a.argon2_m_kib,
        t = a.argon2_t,
        p = a.argon2_p,
        totp = a.require_totp_for_owners,
        level = d.log.level,
        base_topic = d.mqtt.base_topic,
        discovery_prefix = d.mqtt.discovery_prefix,
        exit = d.alarm.exit_delay_seconds,
        entry = d.alarm.entry_delay_seconds,
        siren = d.alarm.siren_seconds,
        nb_listen = d.neighborhood.listen,
    );
    s
}

// ---------------------------------------------------------------------------
// File parsing and error positions
// ---------------------------------------------------------------------------

fn parse_file(path: &Path, text: &str) -> Result<Config, ConfigError> {
    toml::from_str::<Config>(text).map_err(|err| {
        let offset = err.span().map(|s| s.start).unwrap_or(text.len());
        let offset = floor_char_boundary(text, offset);
        let (line, column) = line_column(text, offset);
        let raw = clean_message(err.message());
        let (key, message) = describe(text, offset, &raw);
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            key,
            message,
        }
    })
}

/// Largest char boundary `<= offset`, clamped to the text.
fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// 1-based line and column (in characters) of a byte offset that is a char
/// boundary of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// One line, no trailing punctuation noise.
fn clean_message(message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if parts.is_empty() {
        "invalid TOML".to_string()
    } else {
        parts.join("; ")
    }
}

/// Work out the dotted key at `offset` (best effort) and phrase the message
/// so that it names it.
fn describe(text: &str, offset: usize, raw: &str) -> (Option<String>, String) {
    let (table, line_key) = key_context(text, offset);
    let unknown = parse_unknown_field(raw);

    let key = match (&unknown, &line_key) {
        (Some((field, _)), Some((k, _))) if k.rsplit('.').next() == Some(field.as_str()) => {
            Some(k.clone())
        }
        // `web = { listn = 1 }`: the field sits inside the assigned value.
        (Some((field, _)), Some((k, Line::Assignment))) => Some(join_key(k, field)),
        (Some((field, _)), _) => Some(join_key(&table, field)),
        (None, Some((k, _))) => Some(k.clone()),
        (None, None) => None,
    };

    let message = match (&unknown, &key) {
        (Some((field, rest)), Some(key)) => {
            let section = match key.rsplit_once('.') {
                Some((parent, _)) => format!("in [{parent}]"),
                None => "at the top level".to_string(),
            };
            if rest.is_empty() {
                format!("unknown field `{field}` {section}")
            } else {
                format!("unknown field `{field}` {section}; {rest}")
            }
        }
        (None, Some(key)) => format!("`{key}`: {raw}"),
        _ => raw.to_string(),
    };
    (key, message)
}

/// `unknown field `x`, expected one of ...` → (`x`, `expected one of ...`).
fn parse_unknown_field(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    let field = rest[..end].to_string();
    let tail = rest[end + 1..]
        .trim_start_matches([',', ';', ' '])
        .to_string();
    Some((field, tail))
}

fn join_key(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

/// What kind of line a key was found on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Line {
    Header,
    Assignment,
}

/// The table in effect at `offset` and the dotted key of the nearest
/// `key = value` line at or above it (or the header itself, when the error
/// sits on a `[table]` line).
fn key_context(text: &str, offset: usize) -> (String, Option<(String, Line)>) {
    let before = &text[..offset];
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = text[offset..]
        .find('\n')
        .map(|i| offset + i)
        .unwrap_or(text.len());

    // Current table: the last header line before the error line.
    let mut table = String::new();
    for line in text[..line_start].lines() {
        if let Some(name) = header_name(line) {
            table = name;
        }
    }

    // The error line, or failing that the nearest line above that holds a
    // key (multi-line arrays and strings).
    let mut lines: Vec<&str> = text[..line_start].lines().collect();
    lines.push(&text[line_start..line_end]);
    for line in lines.iter().rev() {
        if let Some(name) = header_name(line) {
            return (table, Some((name, Line::Header)));
        }
        if let Some(k) = assignment_key(line) {
            let key = join_key(&table, &k);
            return (table, Some((key, Line::Assignment)));
        }
    }
    (table, None)
}

/// `[web]` → `web`, `[[a.b]]` → `a.b`.
fn header_name(line: &str) -> Option<String> {
    let t = line.trim();
    let inner = t.strip_prefix('[')?;
    let inner = inner.strip_prefix('[').unwrap_or(inner);
    let end = inner.find(']')?;
    let name = normalize_key(&inner[..end]);
    (!name.is_empty()).then_some(name)
}

/// `listen = "x"` → `listen`; `web.listen = 1` → `web.listen`.
fn assignment_key(line: &str) -> Option<String> {
    let t = line.trim();
    if t.starts_with('#') || t.starts_with('[') {
        return None;
    }
    let (k, _) = t.split_once('=')?;
    let k = normalize_key(k);
    let plausible = !k.is_empty()
        && k.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    plausible.then_some(k)
}

/// Strip quotes and the spaces around dots: ` "web" . listen ` → `web.listen`.
fn normalize_key(raw: &str) -> String {
    raw.split('.')
        .map(|part| part.trim().trim_matches(|c| c == '"' || c == '\''))
        .collect::<Vec<_>>()
        .join(".")
        .trim_matches('.')
        .to_string()
}

// ---------------------------------------------------------------------------
// Environment overrides
// ---------------------------------------------------------------------------

/// How an environment value is read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Taken as a string; the setting's own type checks it afterwards.
    Str,
    /// A whole number that fits in `u32`.
    U32,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// A number of seconds, decimals allowed.
    Secs,
}

struct EnvKey {
    /// Dotted key in the file, e.g. `web.listen`.
    key: &'static str,
    kind: Kind,
    /// Optional setting: an empty value unsets it.
    optional: bool,
    /// What a valid value looks like, for error messages.
    expect: &'static str,
}

const fn k(key: &'static str, kind: Kind, optional: bool, expect: &'static str) -> EnvKey {
    EnvKey {
        key,
        kind,
        optional,
        expect,
    }
}

const UINT: &str = "a whole number from 0 to 4294967295";
const BOOL: &str = "true or false";
const SECS: &str = "a number of seconds from 0 to 86400, such as 30 or 0.5";
const TOPIC: &str = "an MQTT topic without wildcards, such as porchlight";

/// Every leaf key of [`Config`]. A unit test checks this list against the
/// serialized struct, so a new field cannot be forgotten here.
const ENV_KEYS: &[EnvKey] = &[
    k("data_dir", Kind::Str, true, "a directory path"),
    k(
        "web.listen",
        Kind::Str,
        false,
        "a socket address such as 0.0.0.0:8080 or [::]:8080",
    ),
    k(
        "web.https_listen",
        Kind::Str,
        false,
        "a socket address such as 0.0.0.0:8443 or [::]:8443",
    ),
    k(
        "web.public_url",
        Kind::Str,
        true,
        "a URL such as https://hub.example",
    ),
    k("web.trust_forwarded_headers", Kind::Bool, false, BOOL),
    k("web.push_allow_loopback_http", Kind::Bool, false, BOOL),
    k(
        "web.secure_cookies",
        Kind::Str,
        false,
        "one of auto, always, never",
    ),
    k("accounts.session_idle_minutes", Kind::U32, false, UINT),
    k("accounts.session_max_days", Kind::U32, false, UINT),
    k("accounts.login_free_attempts", Kind::U32, false, UINT),
    k("accounts.lockout_base_seconds", Kind::U32, false, UINT),
    k("accounts.lockout_max_seconds", Kind::U32, false, UINT),
    k("accounts.argon2_m_kib", Kind::U32, false, UINT),
    k("accounts.argon2_t", Kind::U32, false, UINT),
    k("accounts.argon2_p", Kind::U32, false, UINT),
    k("accounts.require_totp_for_owners", Kind::Bool, false, BOOL),
    k("recorder.segment_seconds", Kind::U32, false, UINT),
    k(
        "mqtt.url",
        Kind::Str,
        true,
        "a URL such as mqtt://127.0.0.1:1883",
    ),
    k("mqtt.username", Kind::Str, true, "a user name"),
    k("mqtt.password_file", Kind::Str, true, "a file path"),
    k("mqtt.ca_file", Kind::Str, true, "a PEM file path"),
    k("mqtt.client_cert_file", Kind::Str, true, "a PEM file path"),
    k("mqtt.client_key_file", Kind::Str, true, "a PEM file path"),
    k("mqtt.client_id", Kind::Str, true, "an MQTT client id"),
    k("mqtt.base_topic", Kind::Str, false, TOPIC),
    k("mqtt.discovery_prefix", Kind::Str, false, TOPIC),
    k("alarm.exit_delay_seconds", Kind::Secs, false, SECS),
    k("alarm.entry_delay_seconds", Kind::Secs, false, SECS),
    k("alarm.siren_seconds", Kind::Secs, false, SECS),
    k("neighborhood.enabled", Kind::Bool, false, BOOL),
    k(
        "neighborhood.listen",
        Kind::Str,
        false,
        "a socket address such as 127.0.0.1:8081",
    ),
    k(
        "neighborhood.database_url",
        Kind::Str,
        true,
        "a URL such as postgres://porchlight@127.0.0.1/neighborhood",
    ),
    k(
        "remote.acme_directory",
        Kind::Str,
        true,
        "a URL such as https://acme-v02.api.letsencrypt.org/directory",
    ),
    k("remote.acme_ca_file", Kind::Str, true, "a PEM file path"),
    k("recorder.flush_interval_seconds", Kind::U32, false, UINT),
    k("recorder.min_free_mib", Kind::U32, false, UINT),
    k(
        "log.level",
        Kind::Str,
        false,
        "a log level or tracing filter such as info",
    ),
];

/// The MQTT broker password; not a file setting (see [`MqttConfig`]).
pub const PASSWORD_ENV: &str = "PORCHLIGHT_MQTT_PASSWORD";

/// `web.listen` → `PORCHLIGHT_WEB_LISTEN`.
fn env_var_name(key: &str) -> String {
    format!("PORCHLIGHT_{}", key.replace('.', "_").to_ascii_uppercase())
}

fn apply_env(config: Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let mut config = config;
    for entry in ENV_KEYS {
        let var = env_var_name(entry.key);
        let Some(raw) = env(&var) else { continue };
        config = apply_one(config, entry, &var, &raw)?;
    }
    // The one setting that exists only in the environment (a secret).
    if let Some(p) = env(PASSWORD_ENV) {
        config.mqtt.password = (!p.is_empty()).then_some(Secret(p));
    }
    Ok(config)
}

/// Set one key from one variable: through the TOML value tree, so the
/// setting's own serde type does the checking, and the error names `var`.
fn apply_one(config: Config, entry: &EnvKey, var: &str, raw: &str) -> Result<Config, ConfigError> {
    let env_err = |detail: String| ConfigError::Env {
        var: var.to_string(),
        message: detail,
    };
    let trimmed = raw.trim();
    let value = if entry.optional && trimmed.is_empty() {
        None
    } else {
        Some(match entry.kind {
            Kind::Str => toml::Value::String(raw.to_string()),
            Kind::U32 => match trimmed.parse::<u32>() {
                Ok(n) => toml::Value::Integer(i64::from(n)),
                Err(_) => return Err(env_err(format!("expected {}, got {raw:?}", entry.expect))),
            },
            Kind::Bool => match trimmed.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
                "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
                _ => return Err(env_err(format!("expected {}, got {raw:?}", entry.expect))),
            },
            Kind::Secs => match trimmed.parse::<f64>() {
                Ok(n) if n.is_finite() => toml::Value::Float(n),
                _ => return Err(env_err(format!("expected {}, got {raw:?}", entry.expect))),
            },
        })
    };

    let mut tree = toml::Table::try_from(&config).map_err(|e| {
        env_err(format!(
            "cannot apply override: {}",
            clean_message(e.to_string().as_str())
        ))
    })?;
    let (section, leaf) = match entry.key.split_once('.') {
        Some((section, leaf)) => (Some(section), leaf),
        None => (None, entry.key),
    };
    let table = match section {
        None => &mut tree,
        Some(section) => match tree
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        {
            toml::Value::Table(t) => t,
            _ => return Err(env_err("cannot apply override".to_string())),
        },
    };
    match value {
        Some(v) => {
            table.insert(leaf.to_string(), v);
        }
        None => {
            table.remove(leaf);
        }
    }
    toml::Value::Table(tree).try_into::<Config>().map_err(|e| {
        env_err(format!(
            "expected {}, got {raw:?} ({})",
            entry.expect,
            clean_message(e.message())
        ))
    })
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

fn validate(c: &Config) -> Result<(), ConfigError> {
    if let Some(dir) = &c.data_dir {
        if dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
    }

    if let Some(url) = &c.web.public_url {
        validate_public_url(url)?;
    }

    let m = &c.mqtt;
    if let Some(u) = &m.url {
        if !(u.starts_with("mqtt://") || u.starts_with("mqtts://")) {
            return Err(invalid(
                "mqtt.url",
                format!("{u:?} must start with mqtt:// or mqtts:// (TLS)"),
            ));
        }
        for (key, v) in [
            ("mqtt.ca_file", &m.ca_file),
            ("mqtt.client_cert_file", &m.client_cert_file),
            ("mqtt.client_key_file", &m.client_key_file),
        ] {
            if v.is_some() && !u.starts_with("mqtts://") {
                return Err(invalid(
                    key,
                    "is only used with an mqtts:// url (TLS); use mqtts:// or remove it",
                ));
            }
        }
    }
    match (&m.client_cert_file, &m.client_key_file) {
        (Some(_), None) => {
            return Err(invalid(
                "mqtt.client_key_file",
                "mqtt.client_cert_file is set but not its key: set mqtt.client_key_file too",
            ))
        }
        (None, Some(_)) => return Err(invalid(
            "mqtt.client_cert_file",
            "mqtt.client_key_file is set but not its certificate: set mqtt.client_cert_file too",
        )),
        _ => {}
    }
    for (key, v) in [
        ("mqtt.password_file", &m.password_file),
        ("mqtt.ca_file", &m.ca_file),
        ("mqtt.client_cert_file", &m.client_cert_file),
        ("mqtt.client_key_file", &m.client_key_file),
    ] {
        if v.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(invalid(key, "must not be empty"));
        }
    }
    if (m.password.is_some() || m.password_file.is_some()) && m.username.is_none() {
        return Err(invalid(
            "mqtt.username",
            "a broker password is set but no username: set mqtt.username too",
        ));
    }
    if m.client_id.as_ref().is_some_and(|c| c.trim().is_empty()) {
        return Err(invalid("mqtt.client_id", "must not be empty"));
    }
    for (key, t) in [
        ("mqtt.base_topic", &m.base_topic),
        ("mqtt.discovery_prefix", &m.discovery_prefix),
    ] {
        let t = t.trim_end_matches('/');
        if t.is_empty() || t.contains(['+', '#']) {
            return Err(invalid(
                key,
                "must be an MQTT topic without wildcards (+ #)",
            ));
        }
    }

    let r = &c.recorder;
    if !(5..=3600).contains(&r.segment_seconds) {
        return Err(invalid(
            "recorder.segment_seconds",
            "must be between 5 and 3600",
        ));
    }
    if r.flush_interval_seconds == 0 {
        return Err(invalid(
            "recorder.flush_interval_seconds",
            "must be at least 1",
        ));
    }

    let a = &c.accounts;
    if a.session_idle_minutes == 0 {
        return Err(invalid(
            "accounts.session_idle_minutes",
            "must be at least 1",
        ));
    }
    if a.session_max_days == 0 {
        return Err(invalid("accounts.session_max_days", "must be at least 1"));
    }
    if u64::from(a.session_idle_minutes) > u64::from(a.session_max_days) * 24 * 60 {
        return Err(invalid(
            "accounts.session_idle_minutes",
            format!(
                "{} minutes is longer than accounts.session_max_days ({} days)",
                a.session_idle_minutes, a.session_max_days
            ),
        ));
    }
    if a.lockout_base_seconds == 0 {
        return Err(invalid(
            "accounts.lockout_base_seconds",
            "must be at least 1",
        ));
    }
    if a.lockout_max_seconds < a.lockout_base_seconds {
        return Err(invalid(
            "accounts.lockout_max_seconds",
            format!(
                "{} is less than accounts.lockout_base_seconds ({})",
                a.lockout_max_seconds, a.lockout_base_seconds
            ),
        ));
    }
    // Argon2 limits (RFC 9106): 1 <= p < 2^24, t >= 1, m >= 8 * p KiB.
    if a.argon2_p == 0 || a.argon2_p > 0x00FF_FFFF {
        return Err(invalid(
            "accounts.argon2_p",
            "must be between 1 and 16777215",
        ));
    }
    if a.argon2_t == 0 {
        return Err(invalid("accounts.argon2_t", "must be at least 1"));
    }
    if u64::from(a.argon2_m_kib) < 8 * u64::from(a.argon2_p) {
        return Err(invalid(
            "accounts.argon2_m_kib",
            format!(
                "{} KiB is less than 8 * accounts.argon2_p ({} KiB)",
                a.argon2_m_kib,
                8 * u64::from(a.argon2_p)
            ),
        ));
    }

    if c.log.level.trim().is_empty() {
        return Err(invalid("log.level", "must not be empty (try \"info\")"));
    }
    Ok(())
}

fn validate_public_url(url: &str) -> Result<(), ConfigError> {
    const KEY: &str = "web.public_url";
    let lower = url.to_ascii_lowercase();
    let rest = if let Some(rest) = lower.strip_prefix("https://") {
        rest
    } else if let Some(rest) = lower.strip_prefix("http://") {
        rest
    } else {
        return Err(invalid(
            KEY,
            format!("{url:?} must start with http:// or https://"),
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return Err(invalid(KEY, format!("{url:?} has no host name")));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            KEY,
            format!("{url:?} contains spaces or control characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn leaf_keys(prefix: &str, table: &toml::Table, out: &mut BTreeSet<String>) {
        for (k, v) in table {
            let key = join_key(prefix, k);
            match v {
                toml::Value::Table(t) => leaf_keys(&key, t, out),
                _ => {
                    out.insert(key);
                }
            }
        }
    }

    #[test]
    fn env_key_table_covers_every_field() {
        let full = Config {
            data_dir: Some("/x".into()),
            web: WebConfig {
                public_url: Some("https://x".into()),
                ..WebConfig::default()
            },
            mqtt: MqttConfig {
                url: Some("mqtt://x".into()),
                username: Some("u".into()),
                password_file: Some("/p".into()),
                ca_file: Some("/ca".into()),
                client_cert_file: Some("/cert".into()),
                client_key_file: Some("/key".into()),
                client_id: Some("c".into()),
                ..MqttConfig::default()
            },
            neighborhood: NeighborhoodConfig {
                database_url: Some("postgres://x".into()),
                ..NeighborhoodConfig::default()
            },
            remote: RemoteConfig {
                acme_directory: Some("https://x".into()),
                acme_ca_file: Some("/ca".into()),
            },
            ..Config::default()
        };
        let tree = toml::Table::try_from(&full).unwrap();
        let mut from_struct = BTreeSet::new();
        leaf_keys("", &tree, &mut from_struct);
        let from_table: BTreeSet<String> = ENV_KEYS.iter().map(|e| e.key.to_string()).collect();
        assert_eq!(from_struct, from_table);
    }

    #[test]
    fn env_var_names_follow_the_rule() {
        assert_eq!(env_var_name("web.listen"), "PORCHLIGHT_WEB_LISTEN");
        assert_eq!(env_var_name("data_dir"), "PORCHLIGHT_DATA_DIR");
        assert_eq!(
            env_var_name("accounts.login_free_attempts"),
            "PORCHLIGHT_ACCOUNTS_LOGIN_FREE_ATTEMPTS"
        );
    }

    #[test]
    fn line_column_counts_characters_from_one() {
        let text = "a = 1\né = \"x\" y\n";
        let off = text.find('y').unwrap();
        assert_eq!(line_column(text, off), (2, 9));
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, text.len()), (3, 1));
    }

    #[test]
    fn key_context_finds_table_and_key() {
        let text = "data_dir = \"/d\"\n[web]\n# c\nlisten = 8080\n";
        let off = text.find("8080").unwrap();
        assert_eq!(
            key_context(text, off),
            (
                "web".to_string(),
                Some(("web.listen".to_string(), Line::Assignment))
            )
        );
        let off = text.find("/d").unwrap();
        assert_eq!(
            key_context(text, off),
            (
                String::new(),
                Some(("data_dir".to_string(), Line::Assignment))
            )
        );
        let off = text.find("web]").unwrap();
        assert_eq!(
            key_context(text, off),
            (String::new(), Some(("web".to_string(), Line::Header)))
        );
    }
}
