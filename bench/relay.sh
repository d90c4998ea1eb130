#!/usr/bin/env bash
# The relay's cost (issue 15): N viewers (default 1, 8, 32) each pull a
# 4 Mbit/s stream over TLS from a hub, through
#
#   relay    — porchlight's relay (SNI read, PROXY v2, yamux tunnel to the
#              hub; crates/relay/examples/relay_bench.rs runs the same
#              library code as `porchlight relay serve`, built alone);
#   haproxy  — HAProxy in TCP mode routing by `req.ssl_sni` to the hub's
#              direct port with `send-proxy-v2` (nbthread 1);
#   direct   — straight to the hub's direct port (the latency baseline).
#
# While the viewers pull, one probe connection sends a 32-byte echo every
# 20 ms inside TLS; its round-trip p50/p99 minus the direct path's is the
# latency the middle box adds. CPU is utime+stime of the middle process
# from /proc over the viewers' window (100% = one core), RSS its VmRSS at
# the end. The hub (TLS, pacing) and the viewers are the same processes for
# every path and are not counted.
#
#   bench/relay.sh                 # N = 1 8 32, 10 s each (~2 min after the build)
#   N_LIST="8" SECS=5 bench/relay.sh
#
# Loopback only. Needs: cargo, haproxy, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
N_LIST=${N_LIST:-"1 8 32"}
SECS=${SECS:-10}
KBPS=4000
command -v haproxy >/dev/null || { echo "haproxy is not installed (apt-get install haproxy)" >&2; exit 1; }
cargo build -q --release -p porchlight-relay --example relay_bench >&2
BIN=${CARGO_TARGET_DIR:-target}/release/examples/relay_bench

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TLS=$(free_port); CTL=$(free_port); DIRECT=$(free_port); HAP=$(free_port)

"$BIN" relay "$tmp/relay" relay.test "127.0.0.1:$TLS" "127.0.0.1:$CTL" 2>"$tmp/relay.log" &
RELAY_PID=$!; pids+=("$RELAY_PID")
for _ in $(seq 100); do [ -f "$tmp/relay/relay.json" ] && break; sleep 0.1; done
TOKEN=$("$BIN" invite "$tmp/relay")
"$BIN" hub "$TOKEN" "127.0.0.1:$CTL" "127.0.0.1:$DIRECT" "$tmp/hub.pem" >"$tmp/hub.out" 2>"$tmp/hub.log" &
pids+=("$!")
for _ in $(seq 100); do [ -s "$tmp/hub.out" ] && break; sleep 0.1; done
NAME=$(head -1 "$tmp/hub.out")
[ -n "$NAME" ] || { echo "the bench hub did not come up:" >&2; cat "$tmp/hub.log" >&2; exit 1; }

cat >"$tmp/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend tls
  bind 127.0.0.1:$HAP
  tcp-request inspect-delay 5s
  tcp-request content accept if { req.ssl_hello_type 1 }
  use_backend hub if { req.ssl_sni -i $NAME }
backend hub
  server hub 127.0.0.1:$DIRECT send-proxy-v2
EOF
haproxy -db -f "$tmp/haproxy.cfg" 2>"$tmp/haproxy.log" &
HAP_PID=$!; pids+=("$HAP_PID")
sleep 0.5

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

rows="$tmp/rows"
: >"$rows"
for n in $N_LIST; do
  for path in direct relay haproxy; do
    case $path in
      direct) addr=127.0.0.1:$DIRECT; pid= ;;
      relay) addr=127.0.0.1:$TLS; pid=$RELAY_PID ;;
      haproxy) addr=127.0.0.1:$HAP; pid=$HAP_PID ;;
    esac
    t0=$(date +%s.%N); c0=${pid:+$(ticks "$pid")}
    out=$("$BIN" viewers "$addr" "$NAME" "$tmp/hub.pem" "$n" "$SECS" "$KBPS")
    t1=$(date +%s.%N); c1=${pid:+$(ticks "$pid")}
    rss=${pid:+$(rss_kib "$pid")}
    echo "$n $path ${c0:-0} ${c1:-0} $t0 $t1 ${rss:-0} $out" >>"$rows"
  done
done

python3 - "$rows" "$(getconf CLK_TCK)" "$SECS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys, datetime
rows, hz, secs, cores, load = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
data = {}
for line in open(rows):
    n, path, c0, c1, t0, t1, rss, js = line.split(" ", 7)
    r = json.loads(js)
    cpu = (int(c1) - int(c0)) / hz / (float(t1) - float(t0)) * 100
    data[(int(n), path)] = dict(r, cpu=cpu, rss=int(rss) / 1024)
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
print(f"Run of {now}, {cores} cores, load average at the end {load}; {secs} s per row, 4 Mbit/s per viewer, one echo probe every 20 ms. 100% = one core.\n")
print("| N | path | viewers served | Mbit/s forwarded | CPU % | CPU % per Mbit/s | RSS MiB | RTT p50 µs | RTT p99 µs | added p50 µs | added p99 µs |")
print("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
for (n, path), d in sorted(data.items(), key=lambda k: (k[0][0], ["direct", "relay", "haproxy"].index(k[0][1]))):
    base = data.get((n, "direct"))
    mbit = d["mbit_per_s"] + 0.0
    if path == "direct":
        cpu = per = rss = add50 = add99 = "—"
    else:
        cpu = f"{d['cpu']:.1f}"
        per = f"{d['cpu'] / mbit:.3f}" if mbit else "—"
        rss = f"{d['rss']:.1f}"
        add50 = f"{d['rtt_p50_us'] - base['rtt_p50_us']:.0f}" if base else "—"
        add99 = f"{d['rtt_p99_us'] - base['rtt_p99_us']:.0f}" if base else "—"
    print(f"| {n} | {path} | {d['viewers_ok']}/{n} | {mbit:.1f} | {cpu} | {per} | {rss} | {d['rtt_p50_us']:.0f} | {d['rtt_p99_us']:.0f} | {add50} | {add99} |")
PY
