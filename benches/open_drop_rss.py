"""RSS over open/use/drop cycles and runtime rebuilds: a leak shows as steady growth.

Each cycle opens ``roboframes.Dataset(root)``, reads a batch of 64 items and the keyframe
index, and drops it; then one dataset rebuilds its decode runtime (``set_decode_threads``)
and reads the keyframe index again. Prints RSS (MB) every 50 steps; it should level off after
warm-up. (Before the packet fix, each cycle on configuration (a) grew RSS by about 31 MB.)

Usage: python benches/open_drop_rss.py data/bench/pusht_like [--cycles 200] [--rebuilds 100]
"""

from __future__ import annotations

import argparse
import gc

import numpy as np
import psutil

import roboframes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--rebuilds", type=int, default=100)
    args = ap.parse_args()
    proc = psutil.Process()

    def rss() -> float:
        return proc.memory_info().rss / 2**20

    for i in range(args.cycles + 1):
        ds = roboframes.Dataset(args.root)
        ds.get_batch(np.arange(min(len(ds), 64)))
        ds.keyframe_items()
        del ds
        gc.collect()
        if i % 50 == 0:
            print(f"open/use/drop {i:5d}: RSS {rss():8.1f} MB", flush=True)
    ds = roboframes.Dataset(args.root)
    for i in range(args.rebuilds + 1):
        ds.set_decode_threads(1 + i % 2)
        ds.keyframe_items()
        if i % 50 == 0:
            print(f"runtime rebuild {i:5d}: RSS {rss():8.1f} MB", flush=True)


if __name__ == "__main__":
    main()
