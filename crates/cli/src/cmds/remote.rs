//! `porchlight remote …`: remote access through a relay (issue 15,
//! design/remote.md).
//!
//! * `enable --relay HOST:PORT --token T [--acme-directory URL]
//!   [--acme-ca-file PEM]` makes the hub's identity key (if there is none),
//!   stores the settings, connects to the relay once (spending the
//!   enrolment token) and obtains the hub's certificate by ACME DNS-01 —
//!   so every problem (wrong token, relay unreachable, CA refusing, DNS
//!   not answering, CA untrusted) shows here, named. `porchlight serve`
//!   then serves HTTPS and keeps the tunnel and the certificate.
//! * `status [--json]`: the name, the tunnel (as the running hub last
//!   wrote it), the certificate's expiry and key fingerprint, the last
//!   integrity check and any warning.
//! * `disable`: forgets the settings, identity, certificate and ACME
//!   account (a later `enable` gives the hub a new name).
//!
//! Invariants: `enable` writes the settings only after the token parsed;
//! a failure after that leaves remote access enabled but without a
//! certificate, and says so (the running hub keeps retrying).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use porchlight_remote::runtime::{self, RemoteStatus};
use porchlight_remote::{relay, Remote, RemoteSettings};

use crate::context::Context;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Turn remote access on: this hub gets the name <hub-id>.<relay
    /// domain>, a certificate for it, and a tunnel to the relay.
    Enable(EnableArgs),
    /// Show the hub's name, tunnel, certificate and last integrity check.
    Status(StatusArgs),
    /// Turn remote access off and forget the hub's name and certificate.
    Disable,
}

#[derive(Debug, clap::Args)]
pub struct EnableArgs {
    /// The relay's control port, `host:port` (default: the address in the
    /// token, if its operator put one there).
    #[arg(long, value_name = "HOST:PORT")]
    pub relay: Option<String>,
    /// The enrolment token from the relay's operator (`porchlight relay
    /// invite`).
    #[arg(long, value_name = "TOKEN")]
    pub token: String,
    /// The ACME CA's directory URL [default: Let's Encrypt].
    #[arg(long = "acme-directory", value_name = "URL")]
    pub acme_directory: Option<String>,
    /// A PEM root to trust for the ACME CA's own HTTPS (a test CA).
    #[arg(long = "acme-ca-file", value_name = "PEM")]
    pub acme_ca_file: Option<PathBuf>,
    /// Where the hub's public name is reached through the relay, for the
    /// integrity check [default: <hub-name>:443].
    #[arg(long = "public-tls", value_name = "HOST:PORT")]
    pub public_tls: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cmd: Command, ctx: Context) -> anyhow::Result<()> {
    match cmd {
        Command::Enable(args) => enable(args, &ctx).await,
        Command::Status(args) => status(args, &ctx),
        Command::Disable => disable(&ctx),
    }
}

fn status(args: StatusArgs, ctx: &Context) -> anyhow::Result<()> {
    let s = RemoteStatus::read(&ctx.data_dir)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &s)?;
        writeln!(out)?;
        return Ok(());
    }
    if !s.enabled {
        writeln!(
            out,
            "Remote access: off (turn it on with `porchlight remote enable`)"
        )?;
        return Ok(());
    }
    let name = s.name.clone().unwrap_or_default();
    writeln!(out, "Remote access: on")?;
    writeln!(out, "Name:        {name} (at home: lan.{name})")?;
    writeln!(out, "Relay:       {}", s.relay.clone().unwrap_or_default())?;
    let updated = s
        .report
        .updated
        .map(|t| format!(" (as of {})", t.strftime("%Y-%m-%d %H:%M:%S UTC")))
        .unwrap_or_default();
    match &s.report.tunnel {
        None => writeln!(
            out,
            "Tunnel:      not running (start `porchlight serve`){updated}"
        )?,
        Some(t) if t.connected => writeln!(out, "Tunnel:      connected{updated}")?,
        Some(t) => writeln!(
            out,
            "Tunnel:      not connected{}{updated}",
            t.last_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        )?,
    }
    match &s.certificate {
        None => writeln!(out, "Certificate: none yet")?,
        Some(c) => {
            writeln!(
                out,
                "Certificate: valid until {} (renewal from {})",
                c.not_after.strftime("%Y-%m-%d %H:%M:%S UTC"),
                c.renew_at().strftime("%Y-%m-%d %H:%M:%S UTC")
            )?;
            writeln!(out, "Key SHA-256: {}", c.spki_sha256)?;
        }
    }
    if let Some(e) = &s.report.certificate_error {
        writeln!(out, "Last certificate attempt failed: {e}")?;
    }
    match &s.report.integrity {
        None => writeln!(out, "Integrity:   not checked yet")?,
        Some(i) => writeln!(
            out,
            "Integrity:   {} at {}: {}",
            format!("{:?}", i.outcome).to_lowercase(),
            i.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            i.detail
        )?,
    }
    if let Some(w) = &s.warning {
        writeln!(out, "WARNING:     {w}")?;
    }
    Ok(())
}

fn disable(ctx: &Context) -> anyhow::Result<()> {
    let was = RemoteStatus::read(&ctx.data_dir)?;
    runtime::disable(&ctx.data_dir)?;
    match was.name {
        Some(n) => println!(
            "Remote access is off; {n} is forgotten. Restart `porchlight serve` to stop serving HTTPS."
        ),
        None => println!("Remote access was not on."),
    }
    Ok(())
}

/// Waits for the tunnel's first connection; the first failure (a refused
/// token, a wrong relay key, nothing listening) ends the wait with the
/// tunnel's own error — an interactive command should not sit in backoff.
async fn first_connection(tunnel: &porchlight_relay::client::Tunnel) -> anyhow::Result<()> {
    let mut rx = tunnel.watch_status();
    let waited = tokio::time::timeout(
        CONNECT_WAIT,
        rx.wait_for(|s| s.connected || (s.failures > 0 && s.last_error.is_some())),
    )
    .await;
    match waited {
        Ok(Ok(s)) if s.connected => Ok(()),
        Ok(Ok(s)) => Err(anyhow::anyhow!(s.last_error.clone().unwrap_or_default())),
        Ok(Err(_)) => Err(anyhow::anyhow!("the tunnel stopped")),
        Err(_) => Err(anyhow::anyhow!(
            "no answer from the relay within {} s",
            CONNECT_WAIT.as_secs()
        )),
    }
}

/// How long `enable` waits for the relay to accept the tunnel.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

async fn enable(args: EnableArgs, ctx: &Context) -> anyhow::Result<()> {
    porchlight_remote::certs::install_default_provider();
    let token: porchlight_relay::EnrolmentToken = args.token.trim().parse()?;
    let relay = match (&args.relay, &token.relay_addr) {
        (Some(r), _) => r.clone(),
        (None, Some(r)) => r.clone(),
        (None, None) => anyhow::bail!(
            "the enrolment token names no relay address: give it with --relay HOST:PORT (ask the relay's operator)"
        ),
    };
    if let Some(ca) = &args.acme_ca_file {
        std::fs::metadata(ca).with_context(|| format!("--acme-ca-file {}", ca.display()))?;
    }
    if RemoteSettings::load(&ctx.data_dir)?.is_some() {
        anyhow::bail!(
            "remote access is already on for this hub (`porchlight remote status`); run `porchlight remote disable` first to enrol again"
        );
    }
    std::fs::create_dir_all(&ctx.data_dir)
        .with_context(|| format!("cannot create {}", ctx.data_dir.display()))?;
    let id = porchlight_remote::HubIdentity::load_or_create(&ctx.data_dir)?;
    let mut acme = porchlight_remote::AcmeOptions::default();
    if let Some(d) = args.acme_directory {
        acme.directory = d;
    }
    acme.ca_file = args
        .acme_ca_file
        .map(|p| std::path::absolute(&p).unwrap_or(p));
    let settings = RemoteSettings {
        relay: relay.clone(),
        relay_fingerprint: token.fingerprint_text(),
        domain: token.domain.clone(),
        enrolment_token: Some(args.token.trim().to_owned()),
        acme,
        public_tls: args.public_tls,
    };
    let name = settings.hub_name(id.hub_id());
    settings.save(&ctx.data_dir)?;
    let remote = Remote::load(&ctx.data_dir)?.context("the settings just written")?;

    // Enrol: one tunnel, authenticated by the hub's key and (the first
    // time) the token. A refusal undoes the settings: nothing is enabled.
    let (tunnel, _incoming) = relay::start(&remote, None)?;
    if let Err(e) = first_connection(&tunnel).await {
        let _ = porchlight_remote::settings::remove(&ctx.data_dir);
        return Err(e).with_context(|| {
            format!("cannot enrol with the relay at {relay}; remote access stays off")
        });
    }
    remote.forget_token()?;
    println!("Enrolled with the relay at {relay}: this hub is {name}");

    let txt = relay::RelayTxt {
        tunnel: tunnel.clone(),
        name: remote.acme_txt_name(),
    };
    let info = remote.obtain_certificate(&txt).await.with_context(|| {
        format!("remote access is on, but the certificate for {name} could not be obtained (`porchlight serve` keeps trying)")
    })?;
    println!(
        "Certificate for {name} and *.{name}, valid until {}; key SHA-256 {}",
        info.not_after.strftime("%Y-%m-%d %H:%M UTC"),
        info.spki_sha256
    );
    println!(
        "Remote access is on: https://{name}/ from anywhere, https://lan.{name}:{}/ at home. Restart `porchlight serve` if it is running.",
        ctx.config.web.https_listen.port()
    );
    Ok(())
}
