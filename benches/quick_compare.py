"""Side-by-side item throughput on one dataset: LeRobot 0.4.4 vs roboframes, same process,
same shuffled indices, same windows (single items, then roboframes batches).

Usage: python benches/quick_compare.py ROOT [--n 400] [--windows act|none]
The full benchmark harness (DataLoader workers, RSS, decode ceiling) is a separate issue.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import roboframes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--windows", choices=["act", "none"], default="act")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    probe = roboframes.Dataset(args.root)
    fps = probe.fps
    dt = None
    if args.windows == "act":
        dt = {k: [-1 / fps, 0.0] for k in probe.video_keys}
        dt["observation.state"] = [-1 / fps, 0.0]
        dt["action"] = [i / fps for i in range(16)]
    idx = np.random.default_rng(0).permutation(len(probe))[: args.n].tolist()

    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    lr = LeRobotDataset("bench/x", root=args.root, delta_timestamps=dt)
    lr[idx[0]]  # warm-up (loads the HF dataset, opens decoders)
    t = time.perf_counter()
    for i in idx:
        lr[i]
    lr_rate = len(idx) / (time.perf_counter() - t)

    rf = roboframes.Dataset(args.root, delta_timestamps=dt)
    rf[idx[0]]
    t = time.perf_counter()
    for i in idx:
        rf[i]
    rf_rate = len(idx) / (time.perf_counter() - t)

    t = time.perf_counter()
    for s in range(0, len(idx), args.batch_size):
        rf.get_batch(idx[s : s + args.batch_size])
    rfb_rate = len(idx) / (time.perf_counter() - t)
    print(f"dataset {args.root} ({len(probe)} frames, cameras {probe.video_keys}), windows={args.windows}, {len(idx)} shuffled items")
    print(f"  lerobot 0.4.4 ds[i]          : {lr_rate:8.1f} items/s")
    print(f"  roboframes ds[i]             : {rf_rate:8.1f} items/s  ({rf_rate / lr_rate:.1f}x)")
    print(f"  roboframes get_batch({args.batch_size:>3})     : {rfb_rate:8.1f} items/s  ({rfb_rate / lr_rate:.1f}x)")


if __name__ == "__main__":
    main()
