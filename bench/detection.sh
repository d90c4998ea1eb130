#!/usr/bin/env bash
# Detection cost per camera (issue 5): H.264 decoding of a 640x360 15 fps
# sub-stream, the 320-column luma plane, motion analysis per analysed frame,
# and one object-detector inference on a 300x300 crop. Runs the criterion
# bench `crates/detect/benches/motion.rs` (release profile) and prints a
# Markdown table from criterion's estimates, with the derived figures:
#
#   cameras per core (decode)     = 1 / (15 fps × decode time per frame)
#   cameras per core (all motion) = 1 / (15 × decode + 5 × (luma + motion))
#
#   bench/detection.sh            (about 2 minutes after the build)
#   bench/detection.sh --dev      (the dev profile: every crate at opt-level 2
#                                  as the workspace sets it; reuses test builds)
#   bench/detection.sh --ffmpeg   (also decodes the same clip with libavcodec:
#                                  a build with --features ffmpeg; may follow --dev)
#
# Targets: ≥ 50 cameras per core for decoding, ≤ 0.5 ms per analysed frame
# for motion, ≤ 50 ms per inference. Needs: cargo, python3. The machine's
# other load is printed with the table; the figures are single-threaded.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
features=()
for arg in "$@"; do
  case "$arg" in
    --dev) profile=dev ;;
    --ffmpeg) features=(--features ffmpeg) ;;
    *) echo "usage: bench/detection.sh [--dev] [--ffmpeg]" >&2; exit 2 ;;
  esac
done
cargo bench -q --profile "$profile" -p porchlight-detect "${features[@]}" --bench motion -- --noplot >&2
python3 - "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$profile" "${features[*]:-}" <<'PY'
import json, os, sys, datetime
root = "target/criterion"
def est(path):
    p = os.path.join(root, path, "new", "estimates.json")
    if not os.path.exists(p):
        return None
    e = json.load(open(p))
    return e["mean"]["point_estimate"] / 1e6, e["mean"]["confidence_interval"]
rows = [
    ("decode one 640x360 H.264 frame (OpenH264)", "decode_640x360"),
    ("decode one 640x360 H.264 frame (libavcodec, --ffmpeg)", "decode_640x360_ffmpeg"),
    ("luma plane 640x360 → 320x180 (box filter)", "luma_scaled_320"),
    ("motion analysis of one 320x180 frame", "motion_analyse_320x180"),
    ("object inference, 300x300 crop (one call)", "object/object_inference_300x300"),
]
got = {}
cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip(); break
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
print(f"Run of {now} on {sys.argv[1]} × {cpu}; load average at end {sys.argv[2]}. Profile {sys.argv[3]}, one thread; criterion mean [95% CI].\n")
print("| what | time per call | |")
print("|---|--:|---|")
if "ffmpeg" not in sys.argv[4]:
    # Not measured in this run: an earlier run's figure would be stale.
    rows = [r for r in rows if not r[1].endswith("_ffmpeg")]
for name, key in rows:
    r = est(key)
    if r is None:
        print(f"| {name} | not measured | |"); continue
    ms, ci = r
    got[key] = ms
    print(f"| {name} | {ms:.3f} ms | [{ci['lower_bound']/1e6:.3f}–{ci['upper_bound']/1e6:.3f}] |")
print()
d = got.get("decode_640x360")
m = got.get("motion_analyse_320x180")
l = got.get("luma_scaled_320")
if d:
    print(f"* cameras per core, decoding every frame at 15 fps: **{1000/(15*d):.0f}** (target ≥ 50)")
f = got.get("decode_640x360_ffmpeg") if "ffmpeg" in sys.argv[4] else None
if f:
    print(f"* the same with libavcodec (--features ffmpeg): **{1000/(15*f):.0f}** cameras per core")
if d and m and l:
    per_s = 15*d + 5*(l + m)
    print(f"* cameras per core, decode 15 fps + motion at 5 fps: **{1000/per_s:.0f}** ({per_s:.1f} ms of CPU per camera-second)")
if m:
    print(f"* motion per analysed frame: **{m:.3f} ms** (target ≤ 0.5 ms)")
o = got.get("object/object_inference_300x300")
if o:
    print(f"* object inference per call: **{o:.1f} ms** (target ≤ 50 ms)")
PY
