#!/usr/bin/env bash
# Where Porchlight's recording CPU goes: N simulated 1080p25 4 Mbit/s
# cameras, a release hub on a fresh folder, then `strace -c` (syscall
# counts) and `perf record` (hot symbols) on the hub, plus context switches.
#
#   bench/profile_porchlight.sh [N=16] [SECONDS=20]
#
# Run bench/recording.sh once first (it makes the clips and the release
# build). Needs strace and perf. Output goes to stdout; the work folder is
# removed at the end. Cameras are added with `--no-detect` (the recorder
# alone). PROFILE_CALLERS=SYMBOL adds who calls SYMBOL (DWARF call graphs).
# PORCHLIGHT_RECORDER_READ_BATCH_MS=0 in the environment turns
# read batching off, for a before/after comparison.
set -euo pipefail
n="${1:-16}"
secs="${2:-20}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
shared="${PORCHLIGHT_SHARED:-$root/../shared}/tools"
bin="$root/target/release/porchlight"
[ -x "$bin" ] && [ -s "$here/.cache/main10m.mp4" ] || { echo "run bench/recording.sh first" >&2; exit 2; }
work="$(mktemp -d)"
port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export PORCHLIGHT_ACCOUNTS_ARGON2_M_KIB=8192 PORCHLIGHT_ACCOUNTS_ARGON2_T=1 RUST_LOG=warn
sim="" hub=""
cleanup() { [ -n "$hub" ] && kill "$hub" 2>/dev/null; [ -n "$sim" ] && kill "$sim" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
/usr/bin/python3 "$shared/rtsp_sim.py" "$port" "$n" "$here/.cache/main10m.mp4" "$here/.cache/sub.mp4" >"$work/sim.log" 2>&1 &
sim=$!
sleep 2
echo "a long household passphrase" | "$bin" --data-dir "$work/data" user add owner --role owner --password-stdin >/dev/null
for i in $(seq 0 $((n - 1))); do
    "$bin" --data-dir "$work/data" camera add "cam$i" --url "rtsp://127.0.0.1:$port/cam$i" --no-detect >/dev/null
done
"$bin" --data-dir "$work/data" serve --listen 127.0.0.1:0 --rtsp-listen 127.0.0.1:0 >"$work/hub.out" 2>"$work/hub.log" &
hub=$!
echo "N=$n: warming up 25 s"
sleep 25
ctx() { cat /proc/"$hub"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
c0="$(ctx)"; t0="$(awk '{print $14 + $15}' /proc/"$hub"/stat)"
sleep 10
c1="$(ctx)"; t1="$(awk '{print $14 + $15}' /proc/"$hub"/stat)"
echo "CPU $(awk "BEGIN {print ($t1 - $t0) / 10}")% of one core over 10 s," \
     "context switches $(( (c1 - c0) / 10 ))/s, $(grep VmRSS /proc/"$hub"/status)"
echo "--- perf stat over $secs s (counts are less noisy than CPU % on a busy machine)"
perf stat -e task-clock,context-switches,cpu-migrations,page-faults -p "$hub" -- sleep "$secs" 2>&1 \
    | grep -E "task-clock|context-switches|cpu-migrations|page-faults" || true
echo "--- syscalls over $secs s (strace -c -f)"
timeout "$secs" strace -c -f -p "$hub" -o "$work/strace.txt" 2>/dev/null || true
head -14 "$work/strace.txt"
echo "--- hot symbols over $secs s (perf)"
perf record -F 1999 -g -p "$hub" -o "$work/perf.data" -- sleep "$secs" >/dev/null 2>&1
perf report -i "$work/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -6
perf report -i "$work/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep '%' | head -30
# PROFILE_CALLERS=SYMBOL: also who calls that symbol (DWARF call graphs).
if [ -n "${PROFILE_CALLERS:-}" ]; then
    echo "--- callers of $PROFILE_CALLERS over $secs s (perf, DWARF call graphs)"
    perf record -F 999 --call-graph dwarf,16384 -p "$hub" -o "$work/callers.data" -- sleep "$secs" >/dev/null 2>&1
    perf report -i "$work/callers.data" --no-children --stdio -S "$PROFILE_CALLERS" -G 2>/dev/null \
        | grep -v '^$' | grep -v '^#' | head -80
fi
