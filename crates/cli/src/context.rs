//! What every subcommand starts from: the global options, the loaded
//! configuration, the chosen data folder, logging, and the store and vault
//! built from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use porchlight_config::Config;
use porchlight_store::Store;
use porchlight_vault::keys::KdfParams;
use porchlight_vault::{Policy, Vault};

/// Options every subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Globals {
    /// The data folder: database, keys, recordings. Wins over
    /// PORCHLIGHT_DATA_DIR and `data_dir` in the config file.
    /// [default: ./porchlight-data; for `demo`: ./porchlight-demo; for
    /// `relay`: ./porchlight-relay]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// A TOML config file (see design/config.md). Without one, the
    /// built-in defaults and PORCHLIGHT_… environment variables apply.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "PORCHLIGHT_CONFIG",
        hide_env_values = true
    )]
    pub config: Option<PathBuf>,
}

/// Which data folder a subcommand works on when `--data-dir` is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirRule {
    /// A household's folder: `data_dir` from the environment or the config
    /// file, else `./porchlight-data`.
    Household,
    /// The demo's own folder, `./porchlight-demo`. The configured `data_dir`
    /// names the real household's folder and is deliberately ignored: the
    /// demo creates accounts whose passwords are printed for anyone to read.
    Demo,
    /// A relay's own folder, `./porchlight-relay`: a relay serves other
    /// households, so the configured (household) `data_dir` is ignored.
    Relay,
}

/// Default household data folder, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "porchlight-data";
/// Default demo data folder, relative to the working directory.
pub const DEFAULT_DEMO_DIR: &str = "porchlight-demo";
/// Default relay data folder, relative to the working directory.
pub const DEFAULT_RELAY_DIR: &str = "porchlight-relay";

/// The loaded configuration and the data folder chosen from it.
#[derive(Debug)]
pub struct Context {
    pub config: Config,
    pub data_dir: PathBuf,
    /// A `data_dir` from the config or the environment that the demo set
    /// aside (see [`DataDirRule::Demo`]).
    pub ignored_data_dir: Option<PathBuf>,
}

impl Context {
    /// Loads the config file (flag or PORCHLIGHT_CONFIG) and the
    /// environment, then applies the command-line flags on top.
    pub fn load(globals: &Globals, rule: DataDirRule) -> anyhow::Result<Context> {
        // The error's Display already names the file, line, key or variable
        // (and includes its cause), so it is passed on as one message.
        let mut config = porchlight_config::load_from_process_env(globals.config.as_deref())
            .map_err(|e| anyhow!("{e}"))?;
        let mut ignored_data_dir = None;
        let data_dir = match (&globals.data_dir, rule) {
            (Some(dir), _) => dir.clone(),
            (None, DataDirRule::Household) => config
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            (None, DataDirRule::Demo) => {
                ignored_data_dir = config.data_dir.clone();
                PathBuf::from(DEFAULT_DEMO_DIR)
            }
            (None, DataDirRule::Relay) => {
                ignored_data_dir = config.data_dir.clone();
                PathBuf::from(DEFAULT_RELAY_DIR)
            }
        };
        if data_dir.as_os_str().is_empty() {
            return Err(anyhow!("--data-dir must not be empty"));
        }
        config.data_dir = Some(data_dir.clone());
        Ok(Context {
            config,
            data_dir,
            ignored_data_dir,
        })
    }

    /// Logs to stderr, filtered by `log.level` from the config; a non-empty
    /// RUST_LOG wins.
    pub fn init_logging(&self) -> anyhow::Result<()> {
        use tracing_subscriber::EnvFilter;
        let filter = match std::env::var("RUST_LOG") {
            Ok(s) if !s.trim().is_empty() => {
                EnvFilter::try_new(&s).map_err(|e| anyhow!("environment variable RUST_LOG: {e}"))?
            }
            _ => EnvFilter::try_new(&self.config.log.level)
                .map_err(|e| anyhow!("invalid setting `log.level`: {e}"))?,
        };
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
            .map_err(|e| anyhow!("cannot start logging: {e}"))
    }

    /// The vault's policy from `[accounts]`.
    pub fn policy(&self) -> anyhow::Result<Policy> {
        let a = &self.config.accounts;
        let kdf = KdfParams {
            m_cost_kib: a.argon2_m_kib,
            t_cost: a.argon2_t,
            p_cost: a.argon2_p,
        };
        // The config crate checks Argon2's own limits; the vault also bounds
        // what it will read back from a stored key, and wrapping with
        // parameters it would refuse to read must not even start.
        kdf.validate()
            .map_err(|e| anyhow!("invalid settings `accounts.argon2_*`: {e}"))?;
        Ok(Policy {
            session_idle: Duration::from_secs(u64::from(a.session_idle_minutes) * 60),
            session_max: Duration::from_secs(u64::from(a.session_max_days) * 86_400),
            free_attempts: a.login_free_attempts,
            lockout_base: Duration::from_secs(u64::from(a.lockout_base_seconds)),
            lockout_max: Duration::from_secs(u64::from(a.lockout_max_seconds)),
            kdf,
            require_totp_for_owners: a.require_totp_for_owners,
            ..Policy::default()
        })
    }

    /// Opens (creating if needed) the store in the data folder.
    pub async fn open_store(&self) -> anyhow::Result<Store> {
        open_store(&self.data_dir).await
    }

    /// Like [`Self::open_store`], but for commands that only make sense on
    /// an existing folder: a mistyped `--data-dir` is reported instead of
    /// becoming a new, empty household.
    pub async fn open_existing_store(&self) -> anyhow::Result<Store> {
        self.require_existing()?;
        self.open_store().await
    }

    /// The store and the vault over it, with the system clock. Creates the
    /// data folder if needed.
    pub async fn open_vault(&self) -> anyhow::Result<Arc<Vault>> {
        let policy = self.policy()?;
        let store = self.open_store().await?;
        Ok(Arc::new(Vault::new(
            store,
            porchlight_base::clock::system(),
            policy,
        )))
    }

    /// [`Self::open_vault`] on an existing folder only.
    pub async fn open_existing_vault(&self) -> anyhow::Result<Arc<Vault>> {
        let policy = self.policy()?;
        let store = self.open_existing_store().await?;
        Ok(Arc::new(Vault::new(
            store,
            porchlight_base::clock::system(),
            policy,
        )))
    }
}

impl Context {
    fn require_existing(&self) -> anyhow::Result<()> {
        if !self.data_dir.exists() {
            return Err(anyhow!(
                "the data folder {} does not exist (give the right one with --data-dir; \
                 `porchlight serve` or `porchlight user add` start a new one)",
                self.data_dir.display()
            ));
        }
        Ok(())
    }
}

/// Opens the store in `dir`, naming the folder on failure.
pub async fn open_store(dir: &Path) -> anyhow::Result<Store> {
    Store::open(dir)
        .await
        .with_context(|| format!("cannot open the data folder {}", dir.display()))
}
