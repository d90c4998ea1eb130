//! `porchlight sensor add|set|list|remove`: MQTT devices (Zigbee2MQTT
//! topics) the alarm listens to or drives, and which armed modes each
//! contact or motion sensor sets the alarm off in (`--modes`; by default
//! home → contacts, away → contacts and motion). A running hub picks
//! changes up within a second (it subscribes to new topics and updates
//! Home Assistant discovery).

use std::io::Write;

use anyhow::{anyhow, bail};
use porchlight_alarm::{machine::kind_can_count, Kind, Modes};
use porchlight_store::NewSensor;
use porchlight_vault::Actor;

use crate::context::Context;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add a device: a door/window contact, motion sensor, doorbell
    /// button, siren or keypad.
    Add(AddArgs),
    /// Change a device: which armed modes it sets the alarm off in.
    Set(SetArgs),
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
    /// Contact and motion sensors: the armed modes in which this one sets
    /// the alarm off: home, away, home,away or none. Default: home and
    /// away for a contact, away for a motion sensor.
    #[arg(long)]
    pub modes: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    pub name: String,
    /// home, away, home,away, none, or `default` (the kind's default).
    #[arg(long)]
    pub modes: String,
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
        Command::Set(a) => set(a, &ctx).await,
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

/// `--modes` for a sensor of `kind`: None means the kind's default.
fn parse_modes(kind: Kind, modes: &str) -> anyhow::Result<Option<Modes>> {
    if modes.trim().eq_ignore_ascii_case("default") {
        return Ok(None);
    }
    if !kind_can_count(kind) {
        bail!(
            "--modes: a {} never sets the alarm off; only contact and motion sensors take --modes",
            kind.as_str()
        );
    }
    Modes::parse(modes)
        .map(Some)
        .map_err(|e| anyhow!("--modes: {e}"))
}

/// The modes a sensor counts in, and whether they were chosen for it.
fn modes_of(s: &porchlight_store::Sensor) -> (Modes, bool) {
    match Kind::parse(&s.kind) {
        Some(k) => (
            Modes::effective(k, s.modes.as_deref()),
            s.modes.is_some() && kind_can_count(k),
        ),
        None => (Modes::NONE, false),
    }
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
    let modes = match &a.modes {
        Some(m) => parse_modes(kind, m)?,
        None => None,
    };
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
                modes: modes.map(|m| m.as_str().to_owned()),
            },
            vault.now(),
        )
        .await?;
    vault
        .audit(
            &Actor::cli(),
            "sensor.add",
            &s.name,
            serde_json::json!({"kind": s.kind, "topic": s.topic, "camera": a.camera, "modes": s.modes}),
        )
        .await?;
    let counts = match modes_of(&s).0 {
        m if m == Modes::NONE => String::new(),
        m => format!(
            " It sets the alarm off when armed {}.",
            m.list().join(" or ")
        ),
    };
    println!(
        "Added {} `{}` on {}.{counts} A running hub listens to it within a second.",
        s.kind, s.name, s.topic
    );
    Ok(())
}

async fn set(a: SetArgs, ctx: &Context) -> anyhow::Result<()> {
    let vault = ctx.open_existing_vault().await?;
    let store = vault.store();
    let s = store
        .sensor_by_name(&a.name)
        .await?
        .ok_or_else(|| anyhow!("no sensor named `{}` (see porchlight sensor list)", a.name))?;
    let kind = Kind::parse(&s.kind)
        .ok_or_else(|| anyhow!("sensor `{}` has an unknown kind `{}`", s.name, s.kind))?;
    let modes = parse_modes(kind, &a.modes)?;
    let before = s.modes.clone();
    let s = store
        .set_sensor_modes(&s.name, modes.map(|m| m.as_str()))
        .await?;
    vault
        .audit(
            &Actor::cli(),
            "sensor.modes",
            &s.name,
            serde_json::json!({"from": before, "to": s.modes}),
        )
        .await?;
    let (m, chosen) = modes_of(&s);
    println!(
        "Sensor `{}` now sets the alarm off when armed: {}{}. A running hub uses this within a second.",
        s.name,
        if m == Modes::NONE { "never".to_owned() } else { m.list().join(", ") },
        if chosen { "" } else { " (the default for its kind)" }
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
                // `modes`: where it counts now; `modes_chosen`: whether
                // that was set for this sensor (false: its kind's default).
                let (m, chosen) = modes_of(s);
                v["modes"] = serde_json::json!(m.list());
                v["modes_chosen"] = serde_json::json!(chosen);
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
        "{:<16} {:<9} {:<32} {:<8} {:<10} {:>7} {:>5}  LAST SEEN",
        "NAME", "KIND", "TOPIC", "STATE", "COUNTS IN", "BATTERY", "LINK"
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
        let counts = match modes_of(s) {
            (m, _) if m == Modes::NONE && s.modes.is_none() => "-".to_owned(),
            (m, true) => format!("{m}*"),
            (m, false) => m.to_string(),
        };
        writeln!(
            out,
            "{:<16} {:<9} {:<32} {:<8} {:<10} {:>7} {:>5}  {}",
            s.name,
            s.kind,
            s.topic,
            state,
            counts,
            s.battery.map_or("-".into(), |b| format!("{b:.0}%")),
            s.linkquality.map_or("-".into(), |l| l.to_string()),
            s.last_seen.map_or("never".into(), |t| t.to_string()),
        )?;
    }
    if sensors.iter().any(|s| modes_of(s).1) {
        writeln!(out, "* chosen for that sensor (porchlight sensor set NAME --modes …); others use their kind's default")?;
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
