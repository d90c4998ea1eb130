#!/usr/bin/env bash
# Live view latency on the hub: from a frame's arrival (the recorder got it
# from the camera) to its WebSocket send to a viewer, for the two demo
# cameras with one viewer each. The hub measures it per viewer and logs
# p50/p95/max when the viewer leaves; this script drives the viewers and
# prints those lines. Target (issue 4): <= 50 ms.
#
#   bench/live_latency.sh [SECONDS]        (default 30)
#
# Needs: cargo, python3 with pip (installs `websockets` into bench/.cache).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
cache=bench/.cache
mkdir -p "$cache"
if [ ! -x "$cache/venv/bin/python" ]; then
  python3 -m venv "$cache/venv"
  "$cache/venv/bin/pip" install -q websockets==13.1
fi
cargo build --release -q -p porchlight
bin=target/release/porchlight
work=$(mktemp -d)
trap 'kill $hub 2>/dev/null || true; rm -rf "$work"' EXIT
export PORCHLIGHT_ACCOUNTS_ARGON2_M_KIB=64 PORCHLIGHT_ACCOUNTS_ARGON2_T=1 RUST_LOG=info
"$bin" --data-dir "$work/d" demo --listen 127.0.0.1:0 --rtsp-listen 127.0.0.1:0 >"$work/out" 2>"$work/log" &
hub=$!
for _ in $(seq 100); do grep -q "running at" "$work/out" 2>/dev/null && break; sleep 0.2; done
url=$(grep -o 'http://[^ ]*' "$work/out" | head -1 | sed 's#/$##')
echo "a long bench passphrase" | "$bin" --data-dir "$work/d" user add bench --role member --password-stdin >/dev/null
for cam in front-door driveway; do "$bin" --data-dir "$work/d" camera grant "$cam" bench >/dev/null; done
sleep 5   # let both demo cameras connect
"$cache/venv/bin/python" - "$url" "$secs" <<'PY'
import asyncio, json, sys, urllib.request
import websockets
url, secs = sys.argv[1], float(sys.argv[2])
req = urllib.request.Request(url + "/api/v1/sessions", method="POST",
    data=json.dumps({"username": "bench", "password": "a long bench passphrase"}).encode(),
    headers={"Content-Type": "application/json"})
token = json.load(urllib.request.urlopen(req))["token"]
async def view(cam):
    ws_url = url.replace("http://", "ws://") + f"/api/v1/cameras/{cam}/live"
    n = 0
    async with websockets.connect(ws_url, extra_headers={"Authorization": f"Bearer {token}"}, max_size=None) as ws:
        end = asyncio.get_event_loop().time() + secs
        while asyncio.get_event_loop().time() < end:
            try:
                await asyncio.wait_for(ws.recv(), timeout=1)
                n += 1
            except asyncio.TimeoutError:
                pass
    print(f"{cam}: {n} messages received in {secs:.0f} s")
async def main():
    await asyncio.gather(view("front-door"), view("driveway"))
asyncio.run(main())
PY
sleep 1
echo "Hub's measurement (frame arrival -> WebSocket send), per viewer:"
grep "live viewer left" "$work/log" | sed 's/.*INFO [^ ]* //'
