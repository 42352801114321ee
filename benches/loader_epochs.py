"""``Dataset.loader`` over whole epochs, in a process of its own: the decoded-frame cache and
the prefetch, measured per epoch.

Runs ``--epochs`` full epochs of ``ds.loader(batch_size, shuffle=..., prefetch=...,
frame_cache_bytes=...)`` and prints one JSON object: per epoch the samples/s and the cache's hits and
misses; the peak RSS of the process (VmHWM) and the bytes the cache held; the decoded size of
the dataset (every camera frame as uint8 RGB). ``--cache-fraction`` sizes the cache as a
fraction of that decoded size (0: no cache). ``--step-ms`` adds a simulated training step per
batch (a sleep, which releases the GIL as a GPU-bound step does), to show the prefetch
overlapping decode with the step.

Usage: python benches/loader_epochs.py --config a --windows plain --cache-fraction 1.0
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from configs import CONFIGS
from run_loader import MemorySampler


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=sorted(CONFIGS), required=True)
    ap.add_argument("--windows", choices=["plain", "act"], required=True)
    ap.add_argument("--cache-fraction", type=float, default=0.0)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--prefetch", type=int, default=2)
    ap.add_argument("--shuffle", default="true", choices=["true", "false", "gop"])
    ap.add_argument("--step-ms", type=float, default=0.0, help="simulated training step per batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=Path("data/bench"))
    args = ap.parse_args()
    import roboframes

    cfg = CONFIGS[args.config]
    ds = roboframes.Dataset(cfg.root(args.data), delta_timestamps=cfg.windows(args.windows))
    decoded = len(ds) * sum(int(np.prod(ds.frame_dims(k))) for k in ds.video_keys)
    cache = int(decoded * args.cache_fraction)
    shuffle: bool | str = {"true": True, "false": False}.get(args.shuffle, args.shuffle)
    mem = MemorySampler()
    loader = ds.loader(
        cfg.batch_size,
        shuffle=shuffle,
        seed=args.seed,
        prefetch=args.prefetch,
        frame_cache_bytes=cache or None,
    )
    epochs = []
    last = {"hits": 0, "misses": 0}
    for e in range(args.epochs):
        samples, t0 = 0, time.perf_counter()
        for batch in loader:
            samples += len(batch["index"])
            if args.step_ms:
                time.sleep(args.step_ms / 1000)
        dt = time.perf_counter() - t0
        stats = ds.frame_cache_stats() or {"hits": 0, "misses": 0, "bytes": 0}
        epochs.append(
            {
                "epoch": e,
                "samples_per_s": samples / dt,
                "seconds": dt,
                "cache_hits": stats["hits"] - last["hits"],
                "cache_misses": stats["misses"] - last["misses"],
            }
        )
        last = stats
    rss, pss = mem.stop()
    print(
        json.dumps(
            {
                "config": args.config,
                "windows": args.windows,
                "batch_size": cfg.batch_size,
                "shuffle": args.shuffle,
                "prefetch": args.prefetch,
                "step_ms": args.step_ms,
                "cache_fraction": args.cache_fraction,
                "cache_bytes": cache,
                "cache_held_bytes": (ds.frame_cache_stats() or {}).get("bytes", 0),
                "decoded_dataset_bytes": decoded,
                "epochs": epochs,
                "peak_rss_bytes": rss,
                "peak_pss_bytes": pss,
                "pid": os.getpid(),
            }
        ),
        flush=True,
    )
    os._exit(0)


if __name__ == "__main__":
    main()
