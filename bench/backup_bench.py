#!/usr/bin/python3
"""Off-site backup benchmark (issue 17); run it through bench/backup.sh.

Four cameras record 1080p25 H.264 at 4 Mbit/s from rtsp_sim.py; the
destination is a real S3 server (Garage, one node on loopback) reached with
a write-only key, as design/backup.md recommends.

1. Latency: `--events` doorbell events through the API, round-robin over
   the cameras, `--spacing` seconds apart (so each camera's events are
   further apart than an event's 20 s window: every event starts cold).
   For each, the time from the event's start to the moment the hub logs
   that the stored copy of its camera's footage reaches past that start
   (`porchlight_backup::stored`, `through >= start`): the record holding
   the event's first frame is at the destination. p50, p99, max.
2. CPU: the hub's CPU time (utime+stime from /proc) over `--seconds`, with
   no destination and with a `continuous` one (everything uploaded), runs
   alternating; the difference per uploaded Mbit/s, and per 4 Mbit/s
   stream.
"""
import argparse
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone

PW = "a long household passphrase"
RW = ("GK0123456789abcdef01234567", "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0")
WO = ("GKfedcba9876543210fedcba98", "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90")
BUCKET = "porchlight-bench"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, secs=30):
    t0 = time.time()
    while time.time() - t0 < secs:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def ts(s):
    s = s.rstrip("Z")
    frac = ""
    if "." in s:
        s, frac = s.split(".")
    t = datetime.strptime(s, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return t + (float("0." + frac) if frac else 0.0)


class Garage:
    def __init__(self, binary, work):
        self.bin, self.dir = binary, os.path.join(work, "garage")
        os.makedirs(self.dir)
        self.port = free_port()
        rpc, admin = free_port(), free_port()
        self.cfg = os.path.join(self.dir, "garage.toml")
        with open(self.cfg, "w") as f:
            f.write(f'''metadata_dir = "{self.dir}/meta"
data_dir = "{self.dir}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "4f6a2c1e9b8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{self.port}"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:{admin}"
admin_token = "bench"
''')
        log = open(os.path.join(self.dir, "garage.log"), "w")
        self.proc = subprocess.Popen([self.bin, "-c", self.cfg, "server"], stdout=log, stderr=log,
                                     env={**os.environ, "RUST_LOG": "warn"})
        t0 = time.time()
        while subprocess.run([self.bin, "-c", self.cfg, "status"], capture_output=True).returncode != 0:
            if time.time() - t0 > 30:
                sys.exit("garage did not start")
            time.sleep(0.1)
        node = self.cli("node", "id", "-q").strip().split("@")[0]
        self.cli("layout", "assign", "-z", "dc1", "-c", "10G", node[:16])
        self.cli("layout", "apply", "--version", "1")
        self.cli("bucket", "create", BUCKET)
        self.cli("key", "import", "--yes", "-n", "rw", *RW)
        self.cli("key", "import", "--yes", "-n", "wo", *WO)
        self.cli("bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", RW[0])
        self.cli("bucket", "allow", "--write", BUCKET, "--key", WO[0])
        wait_port(self.port)

    def cli(self, *args):
        r = subprocess.run([self.bin, "-c", self.cfg, *args], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"garage {args}: {r.stdout}{r.stderr}")
        return r.stdout

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Hub:
    def __init__(self, porchlight, work, name, sim_port, n, backup=None):
        self.pl, self.dir = porchlight, os.path.join(work, name)
        self.log = os.path.join(work, name + ".log")
        self.env = {**os.environ, "RUST_LOG": "info,porchlight_backup::stored=debug"}
        self.run("user", "add", "alice", "--role", "owner", "--password-stdin", stdin=PW + "\n")
        self.run("user", "add", "bob", "--role", "member", "--password-stdin", stdin=PW + "\n")
        for i in range(n):
            self.run("camera", "add", f"cam{i}", "--url", f"rtsp://127.0.0.1:{sim_port}/cam{i}", "--no-detect")
            self.run("camera", "grant", f"cam{i}", "bob")
        if backup:
            self.run("backup", "add", *backup)
        self.proc = subprocess.Popen([self.pl, "--data-dir", self.dir, "serve", "--listen", "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=open(self.log, "w"), env=self.env, text=True)
        m = None
        for _ in range(10):
            line = self.proc.stdout.readline()
            m = re.search(r"running at (http://\S+)", line)
            if m or not line:
                break
        if not m:
            sys.exit(f"the hub did not start; see {self.log}")
        self.url = m.group(1).rstrip("/")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def run(self, *args, stdin=""):
        r = subprocess.run([self.pl, "--data-dir", self.dir, *args], input=stdin, capture_output=True,
                           text=True, env=self.env)
        if r.returncode != 0:
            sys.exit(f"porchlight {args}: {r.stdout}{r.stderr}")
        return r.stdout

    def ticks(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def uploaded(self):
        s = json.loads(self.run("backup", "status", "--json"))
        return sum(d["uploaded_bytes"] for d in s)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def post(url, path, body, token=None):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json",
                                          **({"authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def latency(a, g, work, sim_port):
    s3 = ["s3://%s/latency" % BUCKET, "--endpoint", f"http://127.0.0.1:{g.port}", "--region", "garage",
          "--access-key-id", WO[0], "--secret-access-key-file", os.path.join(work, "wo.secret")]
    hub = Hub(a.porchlight, work, "latency", sim_port, a.n, backup=s3)
    try:
        time.sleep(a.warmup)
        token = post(hub.url, "/api/v1/sessions", {"username": "bob", "password": PW})["token"]
        ids = []
        for i in range(a.events):
            ids.append(post(hub.url, "/api/v1/events", {"camera": f"cam{i % a.n}", "kind": "doorbell"}, token)["id"])
            time.sleep(a.spacing)
        time.sleep(15)
    finally:
        hub.stop()
    db = sqlite3.connect(os.path.join(hub.dir, "porchlight.db"))
    starts = {i: (c, s / 1e6) for i, c, s in db.execute("SELECT id, camera_id, start_us FROM events")}
    stored = []
    pat = re.compile(r"^(\S+)\s+DEBUG porchlight_backup::stored: backup: stored .*camera=(\d+).*through=(\S+)")
    for line in open(hub.log):
        m = pat.match(line)
        if m:
            stored.append((ts(m.group(1)), int(m.group(2)), ts(m.group(3))))
    lat = []
    for i in ids:
        cam, start = starts[i]
        hits = [t for (t, c, through) in stored if c == cam and through >= start and t >= start]
        if not hits:
            sys.exit(f"event {i}: its footage never reached the destination")
        lat.append(min(hits) - start)
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))]
    return {"events": len(lat), "p50_s": p(0.5), "p99_s": p(0.99), "max_s": lat[-1]}


def cpu(a, g, work, sim_port, run):
    out = {}
    for mode in ("none", "continuous"):
        backup = None
        if mode == "continuous":
            backup = ["s3://%s/cpu-%d" % (BUCKET, run), "--mode", "continuous", "--endpoint",
                      f"http://127.0.0.1:{g.port}", "--region", "garage", "--access-key-id", WO[0],
                      "--secret-access-key-file", os.path.join(work, "wo.secret")]
        hub = Hub(a.porchlight, work, f"cpu-{mode}-{run}", sim_port, a.n, backup=backup)
        try:
            time.sleep(a.warmup)
            t0, c0, b0 = time.time(), hub.ticks(), hub.uploaded()
            time.sleep(a.seconds)
            t1, c1, b1 = time.time(), hub.ticks(), hub.uploaded()
        finally:
            hub.stop()
        out[mode] = {"cpu_pct": 100.0 * (c1 - c0) / TICK / (t1 - t0), "mbit_s": (b1 - b0) * 8 / (t1 - t0) / 1e6}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--porchlight", required=True)
    ap.add_argument("--garage", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--raw-dir", required=True)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--events", type=int, default=50)
    ap.add_argument("--spacing", type=float, default=6.0)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="porchlight-backup-bench-")
    with open(os.path.join(work, "wo.secret"), "w") as f:
        f.write(WO[1])
    g = Garage(a.garage, work)
    sim_port = free_port()
    sim = subprocess.Popen(["/usr/bin/python3", os.path.join(a.shared, "rtsp_sim.py"), str(sim_port), str(a.n),
                            os.path.join(a.cache, "main10m.mp4"), os.path.join(a.cache, "sub.mp4")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(sim_port)
    try:
        lat = latency(a, g, work, sim_port)
        print(f"latency over {lat['events']} events: p50 {lat['p50_s']:.2f} s, p99 {lat['p99_s']:.2f} s, max {lat['max_s']:.2f} s",
              flush=True)
        runs = [cpu(a, g, work, sim_port, r) for r in range(a.runs)]
    finally:
        sim.terminate()
        g.stop()
    rows = []
    for r in runs:
        added = r["continuous"]["cpu_pct"] - r["none"]["cpu_pct"]
        mbit = r["continuous"]["mbit_s"]
        rows.append({**r, "added_pct": added, "pct_per_mbit": added / mbit if mbit else float("nan")})
        print(f"cpu: no backup {r['none']['cpu_pct']:.2f} %, continuous {r['continuous']['cpu_pct']:.2f} % "
              f"uploading {mbit:.1f} Mbit/s: +{added:.3f} % = {added / mbit:.4f} %/Mbit/s "
              f"= {4 * added / mbit:.4f} % per 4 Mbit/s stream", flush=True)
    os.makedirs(a.raw_dir, exist_ok=True)
    raw = os.path.join(a.raw_dir, time.strftime("backup-%Y%m%d-%H%M.json", time.gmtime()))
    with open(raw, "w") as f:
        json.dump({"latency": lat, "cpu": rows, "n": a.n, "events": a.events, "spacing": a.spacing,
                   "seconds": a.seconds}, f, indent=1)
    print(f"raw figures: {raw}")


if __name__ == "__main__":
    main()
