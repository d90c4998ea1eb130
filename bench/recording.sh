#!/usr/bin/env bash
# Recording benchmark: CPU and memory per camera stream while recording
# 1080p25 H.264 at 4 Mbit/s over RTSP/TCP from loopback, for Porchlight,
# `ffmpeg -c copy -f segment` (one process per camera) and, when given,
# Moonfire NVR. See bench/RESULTS.md for the results and how to read them.
#
#   bench/recording.sh [--moonfire PATH] [--n "1 4 16 64"] [--seconds 60]
#                      [--warmup 20] [--runs 3] [--tools "porchlight ffmpeg"]
#                      [--no-build]
#
# Porchlight's cameras are added with `--no-detect`: the bench measures the
# recorder (ingest, encryption, writing), not the detection pipeline. The
# tool `porchlight` runs the hub with read batching at 200 ms (the
# default), `porchlight-nobatch` with it off and `porchlight-arenas` with
# glibc malloc's default arena limit instead of the hub's 2, side by side.
#
# Needs: cargo, ffmpeg, Debian's /usr/bin/python3 with GStreamer's RTSP
# server bindings (see ../shared/tools/README.md). Clips are generated once
# into bench/.cache/ (gitignored). Porchlight is measured as a release build
# (built here: a few minutes the first time). Each run gets a fresh data
# folder and a fresh simulator, so every stream starts at the clip's start.
#
# The table goes into bench/RESULTS.md between the `recording.sh` markers
# (the analysis around it is written by hand); raw numbers go to
# bench/results/recording-<date>.tsv.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
shared="${PORCHLIGHT_SHARED:-$root/../shared}/tools"
cache="$here/.cache"

moonfire=""
ns="1 4 16 64"
seconds=60
warmup=20
runs=3
tools="porchlight ffmpeg"
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --moonfire) moonfire="$2"; shift 2 ;;
        --n) ns="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --tools) tools="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$moonfire" ]; then
    [ -x "$moonfire" ] || { echo "--moonfire $moonfire is not an executable" >&2; exit 2; }
    tools="$tools moonfire"
fi
command -v ffmpeg >/dev/null || { echo "ffmpeg is required" >&2; exit 2; }
[ -f "$shared/rtsp_sim.py" ] || { echo "no $shared/rtsp_sim.py (set PORCHLIGHT_SHARED)" >&2; exit 2; }
/usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer" \
    || { echo "/usr/bin/python3 lacks GStreamer's RTSP server bindings (see $shared/README.md)" >&2; exit 2; }

"$here/clips.sh" "$cache"

if [ "$build" = 1 ]; then
    echo "building Porchlight (release)"
    (cd "$root" && cargo build --release -p porchlight)
fi

exec /usr/bin/python3 "$here/recording_bench.py" \
    --porchlight "$root/target/release/porchlight" \
    --moonfire "$moonfire" \
    --shared "$shared" --cache "$cache" \
    --results "$here/RESULTS.md" --raw-dir "$here/results" \
    --n "$ns" --seconds "$seconds" --warmup "$warmup" --runs "$runs" \
    --tools "$tools"
