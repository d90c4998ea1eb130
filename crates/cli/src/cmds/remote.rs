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

use porchlight_remote::runtime::{self, RemoteStatus};

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
            "Remote access is off; {n} is forgotten. A running `porchlight serve` stops serving HTTPS within seconds."
        ),
        None => println!("Remote access was not on."),
    }
    Ok(())
}

async fn enable(args: EnableArgs, ctx: &Context) -> anyhow::Result<()> {
    porchlight_remote::certs::install_default_provider();
    let mut acme = porchlight_remote::AcmeOptions::default();
    if let Some(d) = args.acme_directory {
        acme.directory = d;
    }
    acme.ca_file = args.acme_ca_file;
    let req = porchlight_remote::enrol::EnrolRequest {
        relay: args.relay,
        token: args.token,
        acme,
        public_tls: args.public_tls,
    };
    let done = porchlight_remote::enrol::enrol(&ctx.data_dir, req).await?;
    let (name, info) = (done.name, done.certificate);
    println!(
        "Enrolled with the relay at {}: this hub is {name}",
        done.relay
    );
    println!(
        "Certificate for {name} and *.{name}, valid until {}; key SHA-256 {}",
        info.not_after.strftime("%Y-%m-%d %H:%M UTC"),
        info.spki_sha256
    );
    println!(
        "Remote access is on: https://{name}/ from anywhere, https://lan.{name}:{}/ at home. A running `porchlight serve` starts serving it within seconds.",
        ctx.config.web.https_listen.port()
    );
    Ok(())
}
