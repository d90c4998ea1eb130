//! `porchlight sensor add|list|remove`: MQTT devices (Zigbee2MQTT topics)
//! the alarm listens to or drives. A running hub picks changes up within a
//! second (it subscribes to new topics and updates Home Assistant
//! discovery).

use std::io::Write;

use anyhow::{anyhow, bail};
use porchlight_alarm::Kind;
use porchlight_store::NewSensor;
use porchlight_vault::Actor;

use crate::context::Context;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add a device: a door/window contact, motion sensor, doorbell
    /// button, siren or keypad.
    Add(AddArgs),
    /// List devices with their last reported state, battery and link.
    List(ListArgs),
    /// Remove a device.
    Remove(NameArg),
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// A short name: letters, digits, `-`, `_`.
    pub name: String,
    /// contact, motion, doorbell, siren or keypad.
    #[arg(long)]
    pub kind: String,
    /// The device's MQTT topic, e.g. zigbee2mqtt/front_door.
    #[arg(long)]
    pub topic: String,
    /// The camera this device belongs to (a doorbell's events go on its
    /// timeline).
    #[arg(long)]
    pub camera: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct NameArg {
    pub name: String,
}

pub async fn run(cmd: Command, ctx: Context) -> anyhow::Result<()> {
    match cmd {
        Command::Add(a) => add(a, &ctx).await,
        Command::List(a) => list(a, &ctx).await,
        Command::Remove(a) => remove(&a.name, &ctx).await,
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("a sensor name is 1 to 64 letters, digits, `-` or `_`");
    }
    Ok(())
}

fn check_topic(topic: &str) -> anyhow::Result<()> {
    if topic.is_empty()
        || topic.len() > 512
        || topic.contains(['+', '#', '\0'])
        || topic.starts_with('/')
        || topic.ends_with('/')
    {
        bail!("`{topic}` is not a usable MQTT topic (no wildcards, no leading or trailing `/`)");
    }
    Ok(())
}

async fn add(a: AddArgs, ctx: &Context) -> anyhow::Result<()> {
    check_name(&a.name)?;
    check_topic(&a.topic)?;
    let kind = Kind::parse(&a.kind).ok_or_else(|| {
        anyhow!(
            "unknown kind `{}`: use contact, motion, doorbell, siren or keypad",
            a.kind
        )
    })?;
    let vault = ctx.open_vault().await?;
    let store = vault.store();
    let camera_id = match &a.camera {
        Some(c) => Some(
            store
                .camera_by_name(c)
                .await?
                .ok_or_else(|| anyhow!("no camera named `{c}`"))?
                .id,
        ),
        None => None,
    };
    let s = store
        .add_sensor(
            &NewSensor {
                name: a.name.clone(),
                kind: kind.as_str().into(),
                topic: a.topic.clone(),
                camera_id,
            },
            vault.now(),
        )
        .await?;
    vault
        .audit(
            &Actor::cli(),
            "sensor.add",
            &s.name,
            serde_json::json!({"kind": s.kind, "topic": s.topic, "camera": a.camera}),
        )
        .await?;
    println!(
        "Added {} `{}` on {}. A running hub listens to it within a second.",
        s.kind, s.name, s.topic
    );
    Ok(())
}

async fn list(a: ListArgs, ctx: &Context) -> anyhow::Result<()> {
    let store = ctx.open_existing_store().await?;
    let sensors = store.sensors().await?;
    let cams = store.cameras().await?;
    let cam_name = |id: Option<i64>| {
        id.and_then(|id| cams.iter().find(|c| c.id == id))
            .map(|c| c.name.clone())
    };
    if a.json {
        let v: Vec<serde_json::Value> = sensors
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["camera"] = serde_json::json!(cam_name(s.camera_id));
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if sensors.is_empty() {
        writeln!(
            out,
            "No sensors. Add one with: porchlight sensor add NAME --kind contact --topic zigbee2mqtt/NAME"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<16} {:<9} {:<32} {:<8} {:>7} {:>5}  LAST SEEN",
        "NAME", "KIND", "TOPIC", "STATE", "BATTERY", "LINK"
    )?;
    for s in &sensors {
        let state = match (s.kind.as_str(), s.active, s.available) {
            (_, _, Some(false)) => "offline",
            ("contact", Some(true), _) => "open",
            ("contact", Some(false), _) => "closed",
            ("motion", Some(true), _) => "motion",
            ("motion", Some(false), _) => "clear",
            _ => "-",
        };
        writeln!(
            out,
            "{:<16} {:<9} {:<32} {:<8} {:>7} {:>5}  {}",
            s.name,
            s.kind,
            s.topic,
            state,
            s.battery.map_or("-".into(), |b| format!("{b:.0}%")),
            s.linkquality.map_or("-".into(), |l| l.to_string()),
            s.last_seen.map_or("never".into(), |t| t.to_string()),
        )?;
    }
    Ok(())
}

async fn remove(name: &str, ctx: &Context) -> anyhow::Result<()> {
    let vault = ctx.open_existing_vault().await?;
    vault.store().remove_sensor(name).await?;
    vault
        .audit(&Actor::cli(), "sensor.remove", name, serde_json::json!({}))
        .await?;
    println!("Removed sensor `{name}`.");
    Ok(())
}
