#!/usr/bin/python3
"""Driver of bench/recording.sh (Python standard library only).

For each N and each tool, for each run: start a fresh rtsp_sim.py serving N
cameras (/cam0../cam{N-1}, the 10-minute 1080p25 4 Mbit/s clip), start the
recorder on a fresh folder, wait until every stream records, warm up, then
measure over a fixed window:

* CPU: utime+stime of the recorder's processes from /proc/PID/stat (all
  threads, including ones that exit), delta over the window; 100% = one
  core. For ffmpeg the sum over its N processes.
* RSS: VmRSS from /proc/PID/status at the end of the window (sum), per
  stream two ways: the whole RSS divided by N, and the growth over the
  tool's idle RSS divided by N ("marginal": what one more camera costs).
  Porchlight's idle RSS is read from the running hub before any camera is
  added (cameras are then added with the CLI while it runs, as a user
  would); ffmpeg's is 0 (a process per camera); Moonfire's is not
  measured.
* What was written: growth of the output folder over the window, as
  Mbit/s per stream (≈ 4 when every stream is recorded in full), and how
  many streams' outputs grew.
* Context: the simulator's own CPU, and how busy the whole machine was
  (from /proc/stat), since other work on a shared machine adds noise.

Results: a raw TSV per invocation, and the table between the markers in
RESULTS.md (medians over the runs).
"""

import argparse
import datetime
import json
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

CLK_TCK = os.sysconf("SC_CLK_TCK")
BEGIN = "<!-- recording.sh:begin (generated; edit around it, not inside) -->"
END = "<!-- recording.sh:end -->"


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout):
    t0 = time.monotonic()
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"nothing listens on {port} after {timeout} s")
            time.sleep(0.1)


def cpu_ticks(pid):
    """utime + stime of a process (all its threads, living and dead)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid, field="VmRSS"):
    """A process's resident memory in KiB: VmRSS (all of it), or RssAnon
    (its private memory: heap and stacks, not the file-backed pages of its
    code, which are shared page cache)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def machine_ticks():
    """(busy, total) jiffies of all CPUs."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def tree_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass
    return total


def stop(proc, grace=15):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def drain(stream, sink):
    def run():
        for line in stream:
            sink.write(line)
            sink.flush()

    threading.Thread(target=run, daemon=True).start()


class Sim:
    def __init__(self, args, n, work):
        self.port = free_port()
        self.log = open(os.path.join(work, "sim.log"), "w")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(args.shared, "rtsp_sim.py"), str(self.port), str(n),
             os.path.join(args.cache, "main10m.mp4"), os.path.join(args.cache, "sub.mp4")],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if "serving" not in line:
            raise RuntimeError(f"rtsp_sim.py said {line!r}")
        drain(self.proc.stdout, self.log)
        wait_port(self.port, 10)

    def url(self, i):
        return f"rtsp://127.0.0.1:{self.port}/cam{i}"

    def close(self):
        stop(self.proc, 5)
        self.log.close()


class Porchlight:
    """Release build, fresh folder, an owner (so recordings are encrypted to
    a household key: encryption is always on), N cameras added with
    `--no-detect` (the recorder alone: no detection pipeline), `serve`.
    Default recorder settings (read batching: see the subclasses)."""

    PW = "a long household passphrase for the bench"
    EXTRA_ENV = {}

    def __init__(self, args, n, sim, work):
        self.bin, self.n, self.work = args.porchlight, n, work
        self.data = os.path.join(work, "data")
        self.env = dict(os.environ, RUST_LOG="warn",
                        # Only sign-in cost; recording does not depend on it.
                        PORCHLIGHT_ACCOUNTS_ARGON2_M_KIB="8192", PORCHLIGHT_ACCOUNTS_ARGON2_T="1",
                        **self.EXTRA_ENV)
        self.cli(["user", "add", "owner", "--role", "owner", "--password-stdin"], self.PW + "\n")
        self.log = open(os.path.join(work, "porchlight.log"), "w")
        self.proc = subprocess.Popen(
            [self.bin, "--data-dir", self.data, "serve", "--listen", "127.0.0.1:0",
             "--rtsp-listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self.log, env=self.env, text=True)
        line = self.proc.stdout.readline()
        if "running at" not in line:
            raise RuntimeError(f"porchlight serve said {line!r}; see {self.log.name}")
        drain(self.proc.stdout, self.log)
        # The idle hub (no camera yet), settled: its RSS, and its CPU over
        # 10 s (timers and housekeeping that every stream's share carries).
        time.sleep(3)
        c0, t0 = cpu_ticks(self.proc.pid), time.monotonic()
        time.sleep(10)
        self.idle_cpu = (cpu_ticks(self.proc.pid) - c0) / CLK_TCK / (time.monotonic() - t0) * 100
        self.idle_rss_kib = rss_kib(self.proc.pid)
        for i in range(n):
            self.cli(["camera", "add", f"cam{i}", "--url", sim.url(i), "--no-detect"])

    def cli(self, argv, stdin=""):
        subprocess.run([self.bin, "--data-dir", self.data, *argv], input=stdin, text=True,
                       env=self.env, check=True, stdout=subprocess.DEVNULL)

    def cameras(self):
        out = subprocess.run([self.bin, "--data-dir", self.data, "camera", "list", "--json"],
                             env=self.env, check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def pids(self):
        return [self.proc.pid]

    def ready(self):
        return sum(1 for c in self.cameras() if c["connected"]) == self.n

    def outputs(self):
        return [os.path.join(self.data, "recordings", str(i + 1)) for i in range(self.n)]

    def close(self):
        stop(self.proc)
        self.log.close()


class Ffmpeg:
    """One `ffmpeg -c copy -f segment` process per camera, 60 s MP4 segments."""

    idle_rss_kib = 0

    def __init__(self, args, n, sim, work):
        self.n, self.dirs, self.procs = n, [], []
        self.log = open(os.path.join(work, "ffmpeg.log"), "w")
        for i in range(n):
            d = os.path.join(work, f"cam{i}")
            os.makedirs(d)
            self.dirs.append(d)
            self.procs.append(subprocess.Popen(
                ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp",
                 "-i", sim.url(i), "-c", "copy", "-f", "segment", "-segment_time", "60",
                 "-reset_timestamps", "1", os.path.join(d, "%05d.mp4")],
                stdout=subprocess.DEVNULL, stderr=self.log))

    def pids(self):
        return [p.pid for p in self.procs]

    def ready(self):
        return all(p.poll() is None for p in self.procs) and all(tree_bytes(d) > 0 for d in self.dirs)

    def outputs(self):
        return self.dirs

    def close(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            stop(p, 10)
        self.log.close()


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Moonfire:
    """Moonfire NVR 0.7.x (schema v7), configured without its text UI: `init`
    makes the database; the sample file directory, cameras and streams are
    inserted as its config tool would; the directory's `meta` file (a
    length-prefixed DirMeta protobuf padded to 512 bytes) names the database
    and the directory; `run --config` with a TOML file starts it."""

    def __init__(self, args, n, sim, work):
        self.bin, self.n = args.moonfire, n
        db_dir = os.path.join(work, "db")
        self.sample = os.path.join(work, "sample")
        os.makedirs(self.sample)
        self.log = open(os.path.join(work, "moonfire.log"), "w")
        subprocess.run([self.bin, "init", "--db-dir", db_dir], check=True, stdout=self.log, stderr=self.log)
        con = sqlite3.connect(os.path.join(db_dir, "db"))
        db_uuid = con.execute("SELECT uuid FROM meta").fetchone()[0]
        dir_uuid = uuid.uuid4().bytes
        con.execute("INSERT INTO sample_file_dir (id, uuid, config) VALUES (1, ?, ?)",
                    (dir_uuid, json.dumps({"path": self.sample})))
        for i in range(n):
            con.execute("INSERT INTO camera (id, uuid, short_name, config) VALUES (?, ?, ?, '{}')",
                        (i + 1, uuid.uuid4().bytes, f"cam{i}"))
            stream = {"mode": "record", "url": sim.url(i), "rtspTransport": "tcp",
                      "retainBytes": 1 << 30, "flushIfSec": 60}
            con.execute(
                "INSERT INTO stream (id, camera_id, sample_file_dir_id, type, config, cum_recordings,"
                " cum_media_duration_90k, cum_runs) VALUES (?, ?, 1, 'main', ?, 0, 0, 0)",
                (i + 1, i + 1, json.dumps(stream)))
        con.commit()
        con.close()
        pb = b"\x0a" + varint(len(db_uuid)) + db_uuid + b"\x12" + varint(len(dir_uuid)) + dir_uuid
        meta = varint(len(pb)) + pb
        with open(os.path.join(self.sample, "meta"), "wb") as f:
            f.write(meta + b"\0" * (512 - len(meta)))
        conf = os.path.join(work, "moonfire.toml")
        with open(conf, "w") as f:
            f.write(f'dbDir = "{db_dir}"\n\n[[binds]]\nipv4 = "127.0.0.1:{free_port()}"\n'
                    "allowUnauthenticatedPermissions = { viewVideo = true }\n")
        self.proc = subprocess.Popen([self.bin, "run", "--config", conf],
                                     stdout=self.log, stderr=self.log)

    def pids(self):
        return [self.proc.pid]

    def ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"moonfire-nvr exited; see {self.log.name}")
        return tree_bytes(self.sample) > 512 * 2

    def outputs(self):
        return [self.sample]

    def close(self):
        stop(self.proc)
        self.log.close()


class PorchlightNoBatch(Porchlight):
    """The same with read batching off (a wake-up per frame), for
    comparison."""

    EXTRA_ENV = {"PORCHLIGHT_RECORDER_READ_BATCH_MS": "0"}


class PorchlightBatch(Porchlight):
    """Read batching at 200 ms, the default (crates/recorder/src/readbatch.rs),
    set explicitly so the row means the same whatever the environment."""

    EXTRA_ENV = {"PORCHLIGHT_RECORDER_READ_BATCH_MS": "200"}


class PorchlightManyArenas(Porchlight):
    """The default settings but glibc malloc's own arena limit (8 per core,
    `MALLOC_ARENA_MAX=16` here) instead of the 2 the hub sets at start, to
    show what per-thread arenas cost in RSS."""

    EXTRA_ENV = {"PORCHLIGHT_RECORDER_READ_BATCH_MS": "200", "MALLOC_ARENA_MAX": str(8 * (os.cpu_count() or 1))}


TOOLS = {"porchlight": PorchlightBatch, "porchlight-arenas": PorchlightManyArenas, "porchlight-nobatch": PorchlightNoBatch,
         "ffmpeg": Ffmpeg, "moonfire": Moonfire}


def make_tool(tool):
    """`porchlight` or `porchlight+VAR=VALUE+VAR2=VALUE2`: a Porchlight tool
    with extra environment for the hub (an experiment row, e.g.
    `porchlight+TOKIO_WORKER_THREADS=1`)."""
    name, *pairs = tool.split("+")
    base = TOOLS[name]
    if not pairs:
        return base
    if not issubclass(base, Porchlight):
        raise SystemExit(f"{tool}: extra environment is for porchlight tools only")
    extra = dict(base.EXTRA_ENV)
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise SystemExit(f"{tool}: `{p}` is not VAR=VALUE")
        extra[k] = v
    return type(name, (base,), {"EXTRA_ENV": extra})


def one_run(args, tool, n):
    with tempfile.TemporaryDirectory(prefix=f"bench-{tool.split('+')[0]}-{n}-") as work:
        sim = Sim(args, n, work)
        rec = None
        try:
            rec = make_tool(tool)(args, n, sim, work)
            t0 = time.monotonic()
            while not rec.ready():
                if time.monotonic() - t0 > 90:
                    raise RuntimeError(f"{tool}: not every stream records after 90 s (logs in {work})")
                time.sleep(1)
            time.sleep(args.warmup)
            pids = rec.pids()
            outs = rec.outputs()
            c0 = sum(cpu_ticks(p) for p in pids)
            s0 = cpu_ticks(sim.proc.pid)
            m0 = machine_ticks()
            b0 = [tree_bytes(d) for d in outs]
            w0 = time.monotonic()
            time.sleep(args.seconds)
            c1 = sum(cpu_ticks(p) for p in pids)
            s1 = cpu_ticks(sim.proc.pid)
            m1 = machine_ticks()
            b1 = [tree_bytes(d) for d in outs]
            window = time.monotonic() - w0
            rss = sum(rss_kib(p) for p in pids)
            anon = sum(rss_kib(p, "RssAnon") for p in pids)
            cpu = (c1 - c0) / CLK_TCK / window * 100
            sim_cpu = (s1 - s0) / CLK_TCK / window * 100
            ncpu = os.cpu_count()
            # Everything else running on the machine, in % of all cores.
            other = ((m1[0] - m0[0]) - (c1 - c0) - (s1 - s0)) / (m1[1] - m0[1]) * 100
            written = sum(b1) - sum(b0)
            grew = sum(1 for a, b in zip(b0, b1) if b > a)
            if tool == "moonfire":
                grew = n if written > 0 else 0  # one shared directory
            idle = getattr(rec, "idle_rss_kib", None)
            marginal = (rss - idle) / 1024 / n if idle is not None else float("nan")
            return {
                "n": n, "tool": tool, "cpu_total": cpu, "cpu_per_stream": cpu / n,
                "rss_mib": rss / 1024, "rss_per_stream": rss / 1024 / n,
                "anon_per_stream": anon / 1024 / n,
                "idle_rss_mib": idle / 1024 if idle is not None else float("nan"),
                "idle_cpu": getattr(rec, "idle_cpu", float("nan")),
                "rss_marginal_per_stream": marginal,
                "mbit_per_stream": written * 8 / window / 1e6 / n, "streams_recording": grew,
                "sim_cpu": sim_cpu, "other_busy_pct": other, "ncpu": ncpu, "window_s": window,
            }
        finally:
            if rec is not None:
                rec.close()
            sim.close()


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} × {model}, Linux {platform.release()}"


def table(rows, args, started):
    lines = [
        BEGIN,
        f"Run of {started:%Y-%m-%d %H:%M} UTC on {machine()}; load average at start "
        f"{open('/proc/loadavg').read().split()[0]}. Each run: fresh folder and simulator, "
        f"{args.warmup} s warm-up, {args.seconds} s measured; median of {args.runs} "
        f"run{'s' if args.runs != 1 else ''} (CPU range in brackets). 100% = one core.",
        "",
        "| N | tool | CPU % per stream | RSS MiB per stream | anonymous RSS MiB per stream | RSS MiB per stream above idle | idle RSS MiB "
        "| idle CPU % | CPU % total | RSS MiB total | written Mbit/s per stream | streams recording | simulator CPU % | other load on the machine (% of all cores) |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    keys = []
    for r in rows:
        if (r["n"], r["tool"]) not in keys:
            keys.append((r["n"], r["tool"]))
    for n, tool in keys:
        rs = [r for r in rows if r["n"] == n and r["tool"] == tool]
        if not rs:
            continue

        def med(k):
            return statistics.median(r[k] for r in rs)

        cpus = [r["cpu_per_stream"] for r in rs]
        rng = f" [{min(cpus):.3f}–{max(cpus):.3f}]" if len(rs) > 1 else ""
        lines.append(
            f"| {n} | {tool} | {med('cpu_per_stream'):.3f}{rng} | {med('rss_per_stream'):.2f} "
            f"| {fmt(med('anon_per_stream'))} "
            f"| {fmt(med('rss_marginal_per_stream'))} | {fmt(med('idle_rss_mib'), 1)} "
            f"| {fmt(med('idle_cpu'), 2)} | {med('cpu_total'):.2f} | {med('rss_mib'):.1f} | {med('mbit_per_stream'):.2f} "
            f"| {min(r['streams_recording'] for r in rs)}/{n} | {med('sim_cpu'):.1f} "
            f"| {med('other_busy_pct'):.0f} |")
    lines.append(END)
    return "\n".join(lines)


def fmt(v, digits=2):
    return "—" if v != v else f"{v:.{digits}f}"  # NaN: not measured


def write_results(path, block):
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n## Recording (bench/recording.sh)\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--porchlight", required=True)
    ap.add_argument("--moonfire", default="")
    ap.add_argument("--shared", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--raw-dir", required=True)
    ap.add_argument("--n", default="1 4 16 64")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tools", default="porchlight ffmpeg")
    args = ap.parse_args()
    for t in args.tools.split():
        if t.split("+")[0] not in TOOLS:
            raise SystemExit(f"unknown tool {t.split('+')[0]!r} (known: {', '.join(TOOLS)})")
        make_tool(t)
    started = datetime.datetime.now(datetime.timezone.utc)
    os.makedirs(args.raw_dir, exist_ok=True)
    raw = os.path.join(args.raw_dir, f"recording-{started:%Y%m%d-%H%M}.tsv")
    rows = []
    cols = ["n", "tool", "cpu_per_stream", "rss_per_stream", "anon_per_stream", "rss_marginal_per_stream", "idle_rss_mib",
            "idle_cpu", "cpu_total", "rss_mib",
            "mbit_per_stream", "streams_recording", "sim_cpu", "other_busy_pct", "window_s"]
    with open(raw, "w") as out:
        out.write("run\t" + "\t".join(cols) + "\n")
        for n in [int(x) for x in args.n.split()]:
            for tool in args.tools.split():
                for run in range(args.runs):
                    log(f"N={n} {tool} run {run + 1}/{args.runs}")
                    try:
                        r = one_run(args, tool, n)
                    except Exception as e:  # noqa: BLE001 - report and go on
                        log(f"  failed: {e}")
                        out.write(f"{run}\t{n}\t{tool}\tFAILED: {e}\n")
                        out.flush()
                        continue
                    rows.append(r)
                    log("  " + ", ".join(f"{k} {r[k]:.3f}" if isinstance(r[k], float) else f"{k} {r[k]}"
                                         for k in cols[2:]))
                    out.write(f"{run}\t" + "\t".join(
                        f"{r[k]:.4f}" if isinstance(r[k], float) else str(r[k]) for k in cols) + "\n")
                    out.flush()
                    write_results(args.results, table(rows, args, started))
    block = table(rows, args, started)
    write_results(args.results, block)
    print(block)
    print(f"raw: {raw}")


if __name__ == "__main__":
    main()
