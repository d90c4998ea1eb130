//! `porchlight relay serve|invite|hubs|revoke`: run a relay for other
//! people's hubs, and administer who may use it.
//!
//! A relay's folder is its own (default `./porchlight-relay`, or
//! `--data-dir`): it holds the relay's control key, the hashes of unused
//! invites and the public keys of enrolled hubs — never a household's
//! data, so a household's configured `data_dir` is deliberately ignored.
//! `invite`, `hubs` and `revoke` work beside a running `serve` on the same
//! folder; `serve` reads the folder at each enrolment.

use std::net::{IpAddr, SocketAddr};

use anyhow::{anyhow, bail, Context as _};
use porchlight_relay::limits::Limits;
use porchlight_relay::server::{invite, Relay, RelayConfig};
use porchlight_relay::store::RelayStore;

use crate::cmds::serve::Signals;
use crate::context::Context;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the relay: browsers' TLS port (SNI passthrough), the hubs'
    /// control port, and the authoritative DNS server for the domain.
    Serve(ServeArgs),
    /// Print a single-use enrolment token for one hub.
    Invite(InviteArgs),
    /// List the enrolled hubs.
    Hubs,
    /// Refuse a hub: its running tunnel ends within a second, later
    /// connections are refused, its names stop resolving.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The relay's DNS domain; hubs become <hub-id>.<domain>. Delegate it
    /// to this machine (NS record at the parent) so the world asks us.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: String,
    /// Where browsers connect (TLS, never decrypted here).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:443")]
    pub tls_listen: SocketAddr,
    /// Where hubs connect.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:7443")]
    pub control_listen: SocketAddr,
    /// Where the DNS server listens, UDP and TCP.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:53")]
    pub dns_listen: SocketAddr,
    /// The public address hub names resolve to [default: the IP of
    /// --tls-listen, if it is not 0.0.0.0 or ::].
    #[arg(long, value_name = "IP")]
    pub public_ip: Option<IpAddr>,
    /// Browser connections open at once per hub; more are refused.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_per_hub)]
    pub max_connections_per_hub: usize,
    /// Bandwidth per hub in Mbit/s, both directions together (0: no cap).
    #[arg(long, value_name = "MBIT", default_value_t = 100)]
    pub max_mbit_per_hub: u64,
}

#[derive(Debug, clap::Args)]
pub struct InviteArgs {
    /// How long the token stays valid: a number with s, m, h or d.
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub expires: String,
    /// The control address to put in the token [default: --public-ip and
    /// the control port of the last `relay serve` on this folder].
    #[arg(long, value_name = "HOST:PORT")]
    pub relay_addr: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The hub-id (26 characters, as `relay hubs` lists it).
    pub hub_id: String,
}

pub async fn run(cmd: Command, ctx: Context) -> anyhow::Result<()> {
    match cmd {
        Command::Serve(a) => serve(a, &ctx).await,
        Command::Invite(a) => invite_cmd(a, &ctx),
        Command::Hubs => hubs(&ctx),
        Command::Revoke(a) => revoke(a, &ctx),
    }
}

async fn serve(a: ServeArgs, ctx: &Context) -> anyhow::Result<()> {
    let public_ip = match a.public_ip {
        Some(ip) => ip,
        None if !a.tls_listen.ip().is_unspecified() => a.tls_listen.ip(),
        None => bail!(
            "give --public-ip: the address hub names should resolve to (the TLS port listens on {}, which names no single address)",
            a.tls_listen.ip()
        ),
    };
    let cfg = RelayConfig {
        domain: a.domain,
        data_dir: ctx.data_dir.clone(),
        tls_listen: a.tls_listen,
        control_listen: a.control_listen,
        dns_listen: Some(a.dns_listen),
        public_ip,
        limits: Limits {
            max_connections_per_hub: a.max_connections_per_hub,
            bytes_per_second_per_hub: a.max_mbit_per_hub.saturating_mul(1_000_000 / 8),
        },
    };
    if cfg.limits.max_connections_per_hub == 0 {
        bail!("--max-connections-per-hub must be at least 1");
    }
    let mut signals = Signals::catch()?;
    let relay = Relay::bind(cfg).await.context("cannot start the relay")?;
    println!(
        "relay for {} running: browsers {}, hubs {}, DNS {}; key fingerprint {}",
        relay.domain(),
        relay.tls_addr(),
        relay.control_addr(),
        relay
            .dns_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "off".into()),
        porchlight_relay::token::fingerprint_text(&relay.fingerprint()),
    );
    tokio::select! {
        r = relay.run() => r.context("the relay stopped"),
        s = signals.next() => {
            eprintln!("{s}: relay stopped");
            Ok(())
        }
    }
}

/// `30s`, `15m`, `24h`, `7d`.
fn parse_duration(s: &str) -> anyhow::Result<jiff::SignedDuration> {
    let s = s.trim();
    let bad = || anyhow!("--expires `{s}` is not a duration such as 30m, 24h or 7d");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60).ok_or_else(bad)?,
        "h" => n.checked_mul(3600).ok_or_else(bad)?,
        "d" => n.checked_mul(86_400).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if secs <= 0 || secs > 366 * 86_400 {
        bail!("--expires must be between 1s and 366d");
    }
    Ok(jiff::SignedDuration::from_secs(secs))
}

fn invite_cmd(a: InviteArgs, ctx: &Context) -> anyhow::Result<()> {
    let valid = parse_duration(&a.expires)?;
    let (token, expires) = invite(&ctx.data_dir, valid, a.relay_addr)
        .with_context(|| format!("cannot make an invite in {}", ctx.data_dir.display()))?;
    // The token alone on stdout (for scripts); the explanation on stderr.
    println!("{token}");
    eprintln!(
        "single-use enrolment token for {} (relay key {}), valid until {}.\n\
         On the hub: porchlight remote enable --relay {} --token <the line above>",
        token.domain,
        token.fingerprint_text(),
        expires.round(jiff::Unit::Second).unwrap_or(expires),
        token.relay_addr.as_deref().unwrap_or("HOST:PORT"),
    );
    Ok(())
}

fn hubs(ctx: &Context) -> anyhow::Result<()> {
    let store = RelayStore::open(&ctx.data_dir)?;
    let list = store.hubs()?;
    if list.is_empty() {
        println!("no hubs enrolled");
    }
    for h in list {
        let state = match h.revoked {
            Some(t) => format!("revoked {}", t.round(jiff::Unit::Second).unwrap_or(t)),
            None => "active".to_owned(),
        };
        println!(
            "{}  enrolled {}  {state}",
            h.hub_id,
            h.enrolled.round(jiff::Unit::Second).unwrap_or(h.enrolled)
        );
    }
    Ok(())
}

fn revoke(a: RevokeArgs, ctx: &Context) -> anyhow::Result<()> {
    let store = RelayStore::open(&ctx.data_dir)?;
    let rec = store.revoke_hub(a.hub_id.trim())?;
    println!(
        "hub {} revoked: refused from its next connection; its names no longer resolve",
        rec.hub_id
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h").unwrap().as_secs(), 86_400);
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 7 * 86_400);
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("10y").is_err());
        assert!(parse_duration("-5m").is_err());
    }
}
