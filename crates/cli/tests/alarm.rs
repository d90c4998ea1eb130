//! End to end: `porchlight sensor …` and `porchlight alarm …` on a folder
//! while `porchlight serve` runs with PORCHLIGHT_MQTT_URL set, against the
//! machine's real Mosquitto (127.0.0.1:1883), with `mosquitto_pub` and
//! `mosquitto_sub` playing the Zigbee2MQTT devices.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_porchlight");

fn porchlight(dir: &Path, prefix: &str) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PORCHLIGHT_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("PORCHLIGHT_ACCOUNTS_ARGON2_M_KIB", "8")
        .env("PORCHLIGHT_ACCOUNTS_ARGON2_T", "1")
        .env("PORCHLIGHT_MQTT_URL", "mqtt://127.0.0.1:1883")
        .env("PORCHLIGHT_MQTT_BASE_TOPIC", format!("{prefix}/porchlight"))
        .env(
            "PORCHLIGHT_MQTT_DISCOVERY_PREFIX",
            format!("{prefix}/homeassistant"),
        )
        .arg("--data-dir")
        .arg(dir);
    cmd
}

fn run(dir: &Path, prefix: &str, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = porchlight(dir, prefix)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn ok(dir: &Path, prefix: &str, args: &[&str]) -> String {
    let (success, text) = run(dir, prefix, args, "");
    assert!(success, "porchlight {args:?} failed:\n{text}");
    text
}

/// `porchlight serve`, stopped with SIGTERM (or killed) when dropped.
struct Serve(Child);

impl Serve {
    fn start(dir: &Path, prefix: &str) -> Serve {
        let mut child = porchlight(dir, prefix)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--rtsp-listen",
                "127.0.0.1:0",
            ])
            .env("PORCHLIGHT_ALARM_ENTRY_DELAY_SECONDS", "0.5")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(first.starts_with("Porchlight is running"), "{first}");
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Serve(child)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("serve did not stop on SIGTERM");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `mosquitto_sub` for one message on `topic`.
fn sub_one(topic: &str) -> Child {
    let child = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-t", topic, "-C", "1", "-W", "10"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    // Let it subscribe before anything is published.
    std::thread::sleep(Duration::from_millis(300));
    child
}

fn pub_one(topic: &str, payload: &str) {
    let st = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-q", "1", "-t", topic, "-m", payload])
        .status()
        .expect("mosquitto_pub");
    assert!(st.success());
}

fn status(dir: &Path, prefix: &str) -> serde_json::Value {
    serde_json::from_str(&ok(dir, prefix, &["alarm", "status", "--json"])).unwrap()
}

fn wait_status(
    dir: &Path,
    prefix: &str,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let s = status(dir, prefix);
        if f(&s) {
            return s;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{s:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cli_arms_a_running_hub_which_triggers_the_siren_and_disarms() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let prefix = format!(
        "pltest-cli-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let dev = |n: &str| format!("{prefix}/zigbee2mqtt/{n}");
    ok(
        &dir,
        &prefix,
        &[
            "sensor",
            "add",
            "door",
            "--kind",
            "contact",
            "--topic",
            &dev("door"),
        ],
    );
    ok(
        &dir,
        &prefix,
        &[
            "sensor",
            "add",
            "siren",
            "--kind",
            "siren",
            "--topic",
            &dev("siren"),
        ],
    );
    let (added, text) = run(
        &dir,
        &prefix,
        &["sensor", "add", "x", "--kind", "laser", "--topic", "t"],
        "",
    );
    assert!(!added && text.contains("unknown kind"), "{text}");
    let list: serde_json::Value =
        serde_json::from_str(&ok(&dir, &prefix, &["sensor", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list:#}");
    let (pin_ok, text) = run(&dir, &prefix, &["alarm", "set-pin"], "12\n");
    assert!(!pin_ok && text.contains("4 to 32"), "{text}");
    let (pin_ok, text) = run(&dir, &prefix, &["alarm", "set-pin"], "2468\n");
    assert!(pin_ok, "{text}");

    let t0 = Instant::now();
    let hub = Serve::start(&dir, &prefix);
    let s = wait_status(&dir, &prefix, |s| s["broker"]["connected"] == true);
    println!("hub connected to the broker {:?} after start", t0.elapsed());
    assert_eq!(s["state"], "disarmed");
    assert_eq!(s["hub_running"], true);
    assert_eq!(s["pin_set"], true);

    let out = ok(
        &dir,
        &prefix,
        &["alarm", "arm", "away", "--exit-delay", "0", "--siren", "5"],
    );
    assert!(out.contains("Alarm armed_away"), "{out}");
    assert_eq!(status(&dir, &prefix)["state"], "armed_away");

    let siren = sub_one(&format!("{}/set", dev("siren")));
    let opened = Instant::now();
    pub_one(&dev("door"), r#"{"contact": false}"#);
    let got = siren.wait_with_output().unwrap();
    let msg = String::from_utf8_lossy(&got.stdout).to_string();
    println!(
        "door opened → siren /set seen by mosquitto_sub after {:?} (entry delay 0.5 s)",
        opened.elapsed()
    );
    let v: serde_json::Value =
        serde_json::from_str(msg.trim()).unwrap_or_else(|e| panic!("{msg}: {e}"));
    assert_eq!(v["warning"]["mode"], "burglar");
    assert_eq!(v["warning"]["duration"], 5);
    wait_status(&dir, &prefix, |s| s["state"] == "triggered");

    let out = ok(&dir, &prefix, &["alarm", "disarm"]);
    assert!(out.contains("Alarm disarmed"), "{out}");
    let text = ok(&dir, &prefix, &["alarm", "status"]);
    assert!(
        text.contains("Alarm: disarmed") && text.contains("Open now: door"),
        "{text}"
    );

    // With the hub stopped the request waits in the store, and a hub
    // started later performs it; the state survives the restart.
    hub.stop();
    let out = ok(
        &dir,
        &prefix,
        &["alarm", "arm", "home", "--exit-delay", "0"],
    );
    assert!(out.contains("No hub is running"), "{out}");
    assert_eq!(status(&dir, &prefix)["state"], "disarmed");
    let hub = Serve::start(&dir, &prefix);
    let s = wait_status(&dir, &prefix, |s| s["state"] == "armed_home");
    assert_eq!(s["bypassed"], serde_json::json!(["door"]), "{s:#}");
    hub.stop();
    let hub = Serve::start(&dir, &prefix);
    wait_status(&dir, &prefix, |s| s["hub_running"] == true);
    assert_eq!(status(&dir, &prefix)["state"], "armed_home");
    hub.stop();
    ok(&dir, &prefix, &["sensor", "remove", "siren"]);
    let (removed_twice, _) = run(&dir, &prefix, &["sensor", "remove", "siren"], "");
    assert!(!removed_twice);
    let _ = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "--remove-retained", "-W", "1", "-t"])
        .arg(format!("{prefix}/#"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    // Everything above is in the audit chain, which is intact.
    let check = ok(&dir, &prefix, &["check"]);
    assert!(!check.contains("FAIL"), "{check}");
}

#[test]
fn camera_privacy_on_and_off_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let prefix = "pltest-privacy";
    let (made, text) = run(
        &dir,
        prefix,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "owner",
            "--password-stdin",
        ],
        "correct horse battery staple\n",
    );
    assert!(made, "{text}");
    ok(
        &dir,
        prefix,
        &["camera", "add", "hall", "--url", "rtsp://127.0.0.1:9/hall"],
    );
    let out = ok(&dir, prefix, &["camera", "privacy", "hall", "on"]);
    assert!(out.contains("privacy mode"), "{out}");
    let out = ok(&dir, prefix, &["camera", "privacy", "hall", "off"]);
    assert!(out.contains("out of privacy mode"), "{out}");
    let (done, text) = run(&dir, prefix, &["camera", "privacy", "hall", "maybe"], "");
    assert!(!done && text.contains("maybe"), "{text}");
    let (done, text) = run(&dir, prefix, &["camera", "privacy", "attic", "on"], "");
    assert!(!done && text.contains("no camera named `attic`"), "{text}");
}
