//! One file per subcommand. Each exposes its clap arguments and an async
//! `run` taking them and the loaded [`Context`].

use crate::context::{Context, DataDirRule};

pub mod alarm;
pub mod backup;
pub mod camera;
pub mod check;
pub mod demo;
pub mod detect;
pub mod events;
pub mod export;
pub mod keys;
pub mod relay;
pub mod remote;
pub mod sensor;
pub mod serve;
pub mod user;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the hub (and, in the same process, the neighborhood server)
    /// until Ctrl-C or SIGTERM.
    Serve(serve::Args),
    /// Run Porchlight on a separate demo folder with ready-made sign-ins.
    Demo(demo::Args),
    /// Add, list and change accounts.
    #[command(subcommand)]
    User(user::Command),
    /// Add, list and remove cameras; grant members access.
    #[command(subcommand)]
    Camera(camera::Command),
    /// Household keys: restore access with a key recovery code.
    #[command(subcommand)]
    Keys(keys::Command),
    /// Export a time range of a camera as an MP4 file.
    Export(export::Args),
    /// Add, list and remove alarm sensors, sirens, keypads and doorbells
    /// (MQTT, Zigbee2MQTT payloads).
    #[command(subcommand)]
    Sensor(sensor::Command),
    /// The alarm: status, arm home|away, disarm, set the keypad PIN.
    #[command(subcommand)]
    Alarm(alarm::Command),
    /// Check a data folder: schema, database integrity, audit chain,
    /// household keys, no private key in clear.
    Check(check::Args),
    /// Run the object detector on an image file and print what it finds.
    Detect(detect::Args),
    /// Events: detections, packages, doorbell presses, alarm transitions.
    #[command(subcommand)]
    Events(events::Command),
    /// Off-site copies of event footage: add, list, remove, status; and,
    /// with no hub at all, events and restore.
    #[command(subcommand)]
    Backup(backup::Command),
    /// Remote access through a relay: enable, status, disable.
    #[command(subcommand)]
    Remote(remote::Command),
    /// Run a relay for remote access (SNI passthrough, DNS for its domain)
    /// and invite hubs to it. Its folder: ./porchlight-relay.
    #[command(subcommand)]
    Relay(relay::Command),
}

impl Command {
    /// Which data folder the command uses when `--data-dir` is not given.
    pub fn data_dir_rule(&self) -> DataDirRule {
        match self {
            Command::Demo(_) => DataDirRule::Demo,
            Command::Relay(_) => DataDirRule::Relay,
            _ => DataDirRule::Household,
        }
    }
}

pub async fn run(command: Command, ctx: Context) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(args, ctx).await,
        Command::Demo(args) => demo::run(args, ctx).await,
        Command::User(cmd) => user::run(cmd, ctx).await,
        Command::Keys(cmd) => keys::run(cmd, ctx).await,
        Command::Camera(cmd) => camera::run(cmd, ctx).await,
        Command::Check(args) => check::run(args, ctx).await,
        Command::Export(args) => export::run(args, ctx).await,
        Command::Sensor(cmd) => sensor::run(cmd, ctx).await,
        Command::Alarm(cmd) => alarm::run(cmd, ctx).await,
        Command::Detect(args) => detect::run(args, ctx).await,
        Command::Events(cmd) => events::run(cmd, ctx).await,
        Command::Backup(cmd) => backup::run(cmd, ctx).await,
        Command::Remote(cmd) => remote::run(cmd, ctx).await,
        Command::Relay(cmd) => relay::run(cmd, ctx).await,
    }
}
