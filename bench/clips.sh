#!/usr/bin/env bash
# Makes the benchmark clips once into the folder given (bench/.cache),
# exactly as ../shared/tools/README.md makes them: 1080p25 at 4 Mbit/s and
# 360p25 at 512 kbit/s, a fixed 2 s GOP, no B-frames; the 10-minute main
# clip has no loop seams. Used by bench/recording.sh and bench/backup.sh.
#
#   bench/clips.sh DIR
set -euo pipefail
cache="$1"
mkdir -p "$cache"
if [ ! -s "$cache/main10m.mp4" ] || [ ! -s "$cache/sub.mp4" ]; then
    echo "generating clips in $cache (once)"
    (
        cd "$cache"
        ffmpeg -v error -y -f lavfi -i testsrc2=size=1920x1080:rate=25 -t 60 -c:v libx264 -preset veryfast \
            -b:v 4M -maxrate 4M -bufsize 8M -g 50 -keyint_min 50 -sc_threshold 0 -bf 0 \
            -pix_fmt yuv420p -profile:v main main.mp4
        ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=25 -t 60 -c:v libx264 -preset veryfast \
            -b:v 512k -maxrate 512k -bufsize 1M -g 50 -keyint_min 50 -sc_threshold 0 -bf 0 \
            -pix_fmt yuv420p -profile:v main sub.mp4
        ffmpeg -v error -y -stream_loop 9 -i main.mp4 -c copy main10m.mp4
    )
fi
