#!/usr/bin/env bash
# Off-site backup benchmark (issue 17): with 4 cameras recording 1080p25
# H.264 at 4 Mbit/s, (1) the time from an event's start to the moment the
# record holding its first frame is stored at the destination, p50/p99 over
# 50 events; (2) the CPU the backup adds per uploaded Mbit/s (a continuous
# destination against none, alternating runs). The destination is Garage
# (a real S3 server on loopback) with a write-only key. The issue names no
# peer to run beside it; see bench/RESULTS.md for how to read the figures.
#
#   bench/backup.sh [--events 50] [--spacing 6] [--seconds 60] [--runs 2] [--no-build]
#
# Needs: cargo, garage (scripts/install-test-deps), ffmpeg, Debian's
# /usr/bin/python3 with GStreamer's RTSP server bindings. Clips are made
# once into bench/.cache/ (as bench/recording.sh makes them). Raw figures
# go to bench/results/backup-<date>.json. Run it on an idle machine.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
shared="${PORCHLIGHT_SHARED:-$root/../shared}/tools"
cache="$here/.cache"
build=1
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=0; shift ;;
        --events|--spacing|--seconds|--runs|--warmup) args+=("$1" "$2"); shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
garage="$(command -v garage || echo "${CARGO_HOME:-$HOME/.cargo}/bin/garage")"
[ -x "$garage" ] || { echo "garage is needed: scripts/install-test-deps" >&2; exit 2; }
command -v ffmpeg >/dev/null || { echo "ffmpeg is required" >&2; exit 2; }
"$here/clips.sh" "$cache"
if [ "$build" = 1 ]; then
    echo "building Porchlight (release)"
    (cd "$root" && cargo build --release -p porchlight)
fi
exec /usr/bin/python3 "$here/backup_bench.py" --porchlight "$root/target/release/porchlight" \
    --garage "$garage" --shared "$shared" --cache "$cache" --raw-dir "$here/results" "${args[@]}"
