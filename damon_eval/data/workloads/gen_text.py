#!/usr/bin/env python3
"""Write deterministic pseudo-English text: a compressor's input, made in the guest.

Usage: gen_text.py OUT MEBIBYTES
Words come from a seeded vocabulary with a Zipf-like frequency, in lines and
paragraphs, so compressors find both short and long-range repetition.
"""

import random
import sys

LETTERS = "etaoinshrdlcumwfgypbvkjxqz"


def main() -> int:
    out, mebibytes = sys.argv[1], int(sys.argv[2])
    rng = random.Random(20200525)
    vocabulary = [
        "".join(rng.choices(LETTERS, weights=range(26, 0, -1), k=rng.randint(1, 12)))
        for _ in range(20000)
    ]
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
    target = mebibytes << 20
    written = 0
    with open(out, "w") as f:
        while written < target:
            words = rng.choices(vocabulary, weights=weights, k=20000)
            lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
            chunk = "\n".join(lines) + "\n\n"
            f.write(chunk)
            written += len(chunk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
