#!/usr/bin/env python3
"""Write a synthetic YUV4MPEG2 (y4m) video: a panning texture, deterministic.

Usage: gen_y4m.py OUT WIDTH HEIGHT FRAMES
The texture is seeded random bytes smoothed per row, so an encoder's motion
search finds the pan; nothing is downloaded.  Used to prepare debian/x264.
"""

import random
import sys


def main() -> int:
    out, width, height, frames = sys.argv[1], *map(int, sys.argv[2:5])
    rng = random.Random(20200525)
    luma_size = width * height
    chroma_size = (width // 2) * (height // 2)
    # a texture larger than one frame; frames are windows into it that move
    texture = bytearray(rng.randbytes(luma_size * 2 + width * 4))
    for i in range(1, len(texture)):  # smooth: an encoder sees structure, not white noise
        texture[i] = (texture[i] + 3 * texture[i - 1]) >> 2
    chroma = rng.randbytes(chroma_size * 2 + width)
    with open(out, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\n".encode())
        for n in range(frames):
            pan = (n * (2 * width + 3)) % (luma_size + width * 2)
            f.write(b"FRAME\n")
            f.write(texture[pan : pan + luma_size])
            c = (n * 5) % width
            f.write(chroma[c : c + chroma_size])
            f.write(chroma[c + chroma_size // 2 : c + chroma_size // 2 + chroma_size])
    return 0


if __name__ == "__main__":
    sys.exit(main())
