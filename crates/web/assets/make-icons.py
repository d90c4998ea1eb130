#!/usr/bin/env python3
"""Draws Porchlight's PNG app icons (the same picture as icon.svg) with
nothing but the standard library, so the PWA icons are reproducible:
    python3 make-icons.py   # writes icon-192.png, icon-512.png and
                            # icon-maskable-512.png (full bleed, the picture
                            # inside the maskable safe zone)
"""
import struct, zlib

def png(size, maskable=False):
    def px(x, y):
        u, v = (x + .5) / size * 64, (y + .5) / size * 64
        bg = (0x14, 0x20, 0x2e, 255)
        def inside_round_rect(u, v, r=14):
            cx = min(max(u, r), 64 - r); cy = min(max(v, r), 64 - r)
            return (u - cx) ** 2 + (v - cy) ** 2 <= r * r
        if maskable:
            # Shrink the picture into the central 70% (the safe zone).
            u, v = 32 + (u - 32) / 0.7, 32 + (v - 32) / 0.7
        elif not inside_round_rect(u, v):
            return (0, 0, 0, 0)
        if (u - 32) ** 2 + (v - 26) ** 2 <= 36:
            return (0xff, 0xe3, 0xa3, 255)
        if (u - 32) ** 2 + (v - 28) ** 2 <= 169:
            return (0xe8, 0xa3, 0x3d, 255)
        if 24 <= u <= 40 and 44 <= v <= 49:
            return (0xe8, 0xa3, 0x3d, 255)
        return bg
    raw = b"".join(b"\0" + b"".join(bytes(px(x, y)) for x in range(size)) for y in range(size))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))

for s in (192, 512):
    open(f"icon-{s}.png", "wb").write(png(s))
open("icon-maskable-512.png", "wb").write(png(512, maskable=True))
