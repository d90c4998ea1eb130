//! `porchlight alarm status|arm|disarm|set-pin`. These work whether or not
//! a hub runs on the folder: arm and disarm queue a request in the store,
//! which a running hub performs within a second (and a hub started later
//! performs on start). Arming is done by the hub because only it knows
//! which doors are open right now.

use std::time::Duration;

use anyhow::{anyhow, bail};
use porchlight_alarm::Machine;
use porchlight_vault::Actor;

use crate::context::Context;
use crate::secrets;

/// A hub whose heartbeat is older than this is taken for stopped.
const HUB_STALE: Duration = Duration::from_secs(6);

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The alarm's state, the hub's MQTT link, and the sensors.
    Status(StatusArgs),
    /// Arm: `home` (doors and windows count) or `away` (motion too).
    Arm(ArmArgs),
    /// Disarm (stops the sirens).
    Disarm(WaitArgs),
    /// Set the keypad PIN (read from the first line of standard input).
    SetPin,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// Do not wait for a running hub to carry the request out.
    #[arg(long = "no-wait")]
    pub no_wait: bool,
}

#[derive(Debug, clap::Args)]
pub struct ArmArgs {
    /// home or away.
    pub mode: String,
    /// Seconds to leave before the alarm is armed [default: 30, or
    /// PORCHLIGHT_ALARM_EXIT_DELAY_SECONDS on the hub].
    #[arg(long = "exit-delay", value_name = "SECONDS")]
    pub exit_delay: Option<f64>,
    /// Seconds to disarm after a door opens [default: 30].
    #[arg(long = "entry-delay", value_name = "SECONDS")]
    pub entry_delay: Option<f64>,
    /// Seconds the siren sounds once triggered [default: 180].
    #[arg(long = "siren", value_name = "SECONDS")]
    pub siren: Option<f64>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

pub async fn run(cmd: Command, ctx: Context) -> anyhow::Result<()> {
    match cmd {
        Command::Status(a) => status(a, &ctx).await,
        Command::Arm(a) => arm(a, &ctx).await,
        Command::Disarm(w) => request("disarm", serde_json::json!({}), w, &ctx).await,
        Command::SetPin => set_pin(&ctx).await,
    }
}

fn ms(secs: Option<f64>, what: &str) -> anyhow::Result<Option<u64>> {
    match secs {
        None => Ok(None),
        Some(s) if (0.0..=86_400.0).contains(&s) => Ok(Some((s * 1000.0) as u64)),
        Some(_) => bail!("--{what} must be between 0 and 86400 seconds"),
    }
}

async fn arm(a: ArmArgs, ctx: &Context) -> anyhow::Result<()> {
    let action = match a.mode.as_str() {
        "home" => "arm_home",
        "away" => "arm_away",
        m => bail!("unknown mode `{m}`: use home or away"),
    };
    let mut opts = serde_json::Map::new();
    for (k, v) in [
        ("exit_ms", ms(a.exit_delay, "exit-delay")?),
        ("entry_ms", ms(a.entry_delay, "entry-delay")?),
        ("siren_ms", ms(a.siren, "siren")?),
    ] {
        if let Some(v) = v {
            opts.insert(k.into(), v.into());
        }
    }
    request(action, serde_json::Value::Object(opts), a.wait, ctx).await
}

async fn hub_running(store: &porchlight_store::Store) -> anyhow::Result<bool> {
    let link = store.alarm_link().await?;
    let age = jiff::Timestamp::now().duration_since(link.updated);
    Ok(age.as_millis() >= 0 && age.as_millis() < HUB_STALE.as_millis() as i128)
}

async fn request(
    action: &str,
    options: serde_json::Value,
    wait: WaitArgs,
    ctx: &Context,
) -> anyhow::Result<()> {
    let vault = ctx.open_existing_vault().await?;
    let store = vault.store();
    let id = store
        .push_alarm_request(action, "cli", &options, vault.now())
        .await?;
    vault
        .audit(
            &Actor::cli(),
            "alarm.request",
            action,
            serde_json::json!({"request": id, "options": options}),
        )
        .await?;
    if wait.no_wait || !hub_running(store).await? {
        println!("Requested `{action}`. No hub is running on this folder: it is carried out when the hub starts.");
        return Ok(());
    }
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if let Some(o) = store.alarm_request(id).await?.and_then(|r| r.outcome) {
            let state = o["state"].as_str().unwrap_or("?");
            if o["ok"] != true {
                bail!(
                    "the hub refused: {} (state: {state})",
                    o["error"].as_str().unwrap_or("unknown reason")
                );
            }
            println!("Alarm {state}.");
            if let Some(b) = o["bypassed"].as_array().filter(|b| !b.is_empty()) {
                let names: Vec<&str> = b.iter().filter_map(|v| v.as_str()).collect();
                println!(
                    "Warning: {} open — bypassed until the alarm is disarmed.",
                    names.join(", ")
                );
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "Requested `{action}`; the hub has not confirmed yet (see `porchlight alarm status`)."
    );
    Ok(())
}

async fn status(a: StatusArgs, ctx: &Context) -> anyhow::Result<()> {
    let store = ctx.open_existing_store().await?;
    let row = store.alarm_state().await?;
    let machine: Option<Machine> = serde_json::from_value(row.snapshot.clone()).ok();
    let link = store.alarm_link().await?;
    let running = hub_running(&store).await?;
    let pending = store.pending_alarm_requests().await?;
    let pin_set = store.alarm_pin_hash().await?.is_some();
    let sensors = store.sensors().await?;
    let open: Vec<&str> = sensors
        .iter()
        .filter(|s| s.active == Some(true))
        .map(|s| s.name.as_str())
        .collect();
    if a.json {
        let v = serde_json::json!({
            "state": row.state,
            "since": machine.as_ref().map(|m| m.since.to_string()),
            "deadline": machine.as_ref().and_then(|m| m.deadline).map(|t| t.to_string()),
            "siren_until": machine.as_ref().and_then(|m| m.siren_until).map(|t| t.to_string()),
            "bypassed": machine.as_ref().map(|m| m.bypassed.clone()).unwrap_or_default(),
            "cause": machine.as_ref().and_then(|m| m.cause.clone()),
            "delays": machine.as_ref().map(|m| m.delays),
            "hub_running": running,
            "broker": {
                "connected": running && link.connected,
                "last_error": link.last_error,
                "updated": link.updated.to_string(),
            },
            "pending_requests": pending.iter().map(|r| r.action.clone()).collect::<Vec<_>>(),
            "pin_set": pin_set,
            "open_sensors": open,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("Alarm: {}", row.state);
    if let Some(m) = &machine {
        if let Some(d) = m.deadline {
            println!("  until {d}");
        }
        if !m.bypassed.is_empty() {
            println!("  bypassed: {}", m.bypassed.join(", "));
        }
        if let Some(c) = &m.cause {
            println!("  set off by: {c}");
        }
    }
    if !running {
        println!("Hub: not running on this folder");
    } else if link.connected {
        println!("MQTT broker: connected");
    } else {
        println!(
            "MQTT broker: NOT connected ({})",
            link.last_error
                .as_deref()
                .unwrap_or("MQTT off: set PORCHLIGHT_MQTT_URL")
        );
    }
    if !pending.is_empty() {
        println!(
            "Waiting for the hub: {}",
            pending
                .iter()
                .map(|r| r.action.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !open.is_empty() {
        println!("Open now: {}", open.join(", "));
    }
    if !pin_set {
        println!("No keypad PIN (set one with: porchlight alarm set-pin)");
    }
    Ok(())
}

async fn set_pin(ctx: &Context) -> anyhow::Result<()> {
    let pin = secrets::stdin_lines(&["PIN"])?.remove(0);
    if pin.len() < 4 || pin.len() > 32 || !pin.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("a PIN is 4 to 32 digits or letters");
    }
    let vault = ctx.open_existing_vault().await?;
    let kdf = vault.policy().kdf.clone();
    let phc = tokio::task::spawn_blocking(move || porchlight_vault::password::hash(&pin, &kdf))
        .await
        .map_err(|e| anyhow!("hashing the PIN failed: {e}"))?;
    vault.store().set_alarm_pin_hash(Some(&phc)).await?;
    vault
        .audit(
            &Actor::cli(),
            "alarm.pin_set",
            "alarm",
            serde_json::json!({}),
        )
        .await?;
    println!("Keypad PIN set.");
    Ok(())
}
