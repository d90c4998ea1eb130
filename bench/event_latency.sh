#!/usr/bin/env bash
# Event-to-MQTT latency (issue 5): from the capture of the first frame that
# shows motion to the moment an MQTT subscriber has
# `porchlight/<camera>/motion` ON, over many motion onsets, through the
# real path — synthetic 640x360 15 fps H.264 cameras served by the hub's
# RTSP server, received by the recorder (retina), analysed by the event
# path (default settings, the vendored object detector), published with
# QoS 1 to the machine's Mosquitto (127.0.0.1:1883) and received by a
# separate client. Also splits the time into stages (hub arrival, decode,
# motion, detector + snapshot, publish, broker) and runs a peer on camera
# 0: ffmpeg receiving the same RTSP stream and printing each decoded
# frame's mean luma over the figure's patch (transport + decode floor).
#
# Runs the example `crates/events/examples/event_latency.rs` (release
# profile) and prints Markdown tables. Target: motion ON ≤ 500 ms.
#
#   bench/event_latency.sh                      # 4 cameras, 100 onsets, one every 8 s per camera (~3.5 min)
#   bench/event_latency.sh --trials 200 --cameras 4
#   bench/event_latency.sh --no-objects         # motion only: no detector before the publish
#   bench/event_latency.sh --dev                # the dev profile (reuses test builds)
#   bench/event_latency.sh --tsv /tmp/lat.tsv   # also every onset's figures
#
# Needs: cargo, Mosquitto on 127.0.0.1:1883, ffmpeg (or --no-peer). The
# machine's load average is printed with the table: every figure is wall
# clock and swings with other load on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=(--release)
args=()
for a in "$@"; do
  if [ "$a" = "--dev" ]; then profile=(); else args+=("$a"); fi
done
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  echo "event_latency.sh: no MQTT broker at 127.0.0.1:1883 (start Mosquitto)" >&2
  exit 1
fi
cargo build -q "${profile[@]}" -p porchlight-events --example event_latency >&2
cargo run -q "${profile[@]}" -p porchlight-events --example event_latency -- "${args[@]}"
