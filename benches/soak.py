"""Soak: RSS, file descriptors and threads over many shuffled epochs of one configuration.

Each epoch reads the whole dataset through ``Dataset.loader`` (shuffled, prefetching, batch
size of the configuration), ACT-like windows or plain items. After each epoch it records the
process's RSS, open file descriptors and threads. A leak shows as growth after the first epochs
(which fill the decoder pool, the frame indexes and the allocator's arenas).

Usage::

    python benches/soak.py data/bench/pusht_like --config a --epochs 10 --windows act \
        [--out benches/results/<date>-soak/soak.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import psutil

import roboframes
from configs import CONFIGS  # benches/ is sys.path[0]: run as a script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--config", default="a", choices=sorted(CONFIGS))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--windows", default="act", choices=["plain", "act"])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.epochs < 1:
        ap.error("--epochs must be at least 1")
    cfg = CONFIGS[args.config]
    proc = psutil.Process()
    ds = roboframes.Dataset(args.root, delta_timestamps=cfg.windows(args.windows))
    loader = ds.loader(batch_size=cfg.batch_size, shuffle=True, seed=0, prefetch=2)
    rows = []
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)
        t0 = time.perf_counter()
        items = 0
        for batch in loader:
            items += len(batch["index"])
        took = time.perf_counter() - t0
        row = {
            "epoch": epoch,
            "items": items,
            "samples_per_s": round(items / took),
            "rss_mb": round(proc.memory_info().rss / 2**20, 1),
            "fds": len(os.listdir("/proc/self/fd")),
            "threads": proc.num_threads(),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    # growth after warm-up (the first two epochs fill pools, indexes and arenas)
    base = rows[min(1, len(rows) - 1)]
    last = rows[-1]
    summary = {
        "config": args.config,
        "windows": args.windows,
        "epochs": args.epochs,
        "rss_mb_after_epoch_2": base["rss_mb"],
        "rss_mb_last": last["rss_mb"],
        "rss_growth_mb": round(last["rss_mb"] - base["rss_mb"], 1),
        "fds": [r["fds"] for r in rows],
        "threads": [r["threads"] for r in rows],
    }
    print(json.dumps(summary), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as f:
            for r in rows:
                f.write(json.dumps({"config": args.config, "windows": args.windows, **r}) + "\n")
            f.write(json.dumps({"summary": summary}) + "\n")


if __name__ == "__main__":
    main()
