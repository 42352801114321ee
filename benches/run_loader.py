"""One loader, in a process of its own: open the dataset, iterate shuffled batches, measure.

Loaders:
  lerobot     LeRobot 0.4.4's LeRobotDataset (torchcodec) in a torch DataLoader
  roboframes  roboframes.torch.LeRobotDataset (the drop-in) in a torch DataLoader
  native      roboframes' native batch path: roboframes.Dataset.get_batch (uint8 frames)
  gop         the drop-in in a DataLoader with roboframes.GopShuffleSampler (opt-in order)
  gop-native  the native batch path with roboframes.GopShuffleSampler

Prints one JSON object: open time, time to first batch, samples/s and camera frames/s over
``--seconds`` after ``--warmup`` batches, the peak RSS summed over this process and its
DataLoader workers (each process's high-water mark: pages shared between processes count in
each), and the peak of their summed PSS sampled every 0.5 s (shared pages divided).

Usage: python benches/run_loader.py --config b --windows act --loader roboframes --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from configs import CONFIGS


def _sum_over_processes(file: str, field: str) -> int:
    """``field`` (in kB) of ``/proc/PID/<file>``, summed over this process and every
    descendant, in bytes."""
    me = psutil.Process()
    total = 0
    for p in [me, *me.children(recursive=True)]:
        try:
            with open(f"/proc/{p.pid}/{file}") as f:
                for line in f:
                    if line.startswith(field):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


def peak_rss_sum() -> int:
    """Peak resident set size (VmHWM) of this process plus every descendant, in bytes."""
    return _sum_over_processes("status", "VmHWM:")


def pss_sum() -> int:
    """Proportional set size of this process plus every descendant, in bytes (shared pages
    are divided between the processes sharing them, unlike RSS)."""
    return _sum_over_processes("smaps_rollup", "Pss:")


class PssSampler:
    """Samples pss_sum() every ``period`` seconds in a thread; ``peak`` is the largest."""

    def __init__(self, period: float = 0.5) -> None:
        import threading

        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period,), daemon=True)
        self._thread.start()

    def _run(self, period: float) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, pss_sum())
            self._stop.wait(period)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, pss_sum())
        return self.peak


def batches(args: argparse.Namespace, cfg: Any, root: Path, dt: dict | None) -> tuple[Any, Iterator[int], float]:
    """(dataset, iterator over batch sizes, open seconds)."""
    import torch

    t = time.perf_counter()
    if args.loader == "lerobot":
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        ds = LeRobotDataset(cfg.repo_id, root=root, delta_timestamps=dt)
    elif args.loader in ("roboframes", "gop"):
        import roboframes.torch as rt

        ds = rt.LeRobotDataset(cfg.repo_id, root=root, delta_timestamps=dt)
    else:
        import roboframes

        ds = roboframes.Dataset(root, delta_timestamps=dt)
    open_s = time.perf_counter() - t

    if args.loader in ("native", "gop-native"):

        gop = None
        if args.loader == "gop-native":
            import roboframes

            # built once, like the DataLoader's; each pass over it is the next epoch's order
            gop = roboframes.GopShuffleSampler(ds, cfg.batch_size, seed=args.seed)

        def native() -> Iterator[int]:
            rng = np.random.default_rng(args.seed)
            while True:
                if gop is not None:
                    order = gop
                else:
                    perm = rng.permutation(len(ds))
                    order = [perm[s : s + cfg.batch_size] for s in range(0, len(perm), cfg.batch_size)]
                for idx in order:
                    b = ds.get_batch(idx)
                    yield len(b["index"])

        return ds, native(), open_s

    g = torch.Generator().manual_seed(args.seed)
    common: dict[str, Any] = dict(
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        prefetch_factor=2 if args.workers else None,
    )
    if args.loader == "gop":
        import roboframes

        sampler = roboframes.GopShuffleSampler(ds, cfg.batch_size, num_workers=args.workers, seed=args.seed)
        dl = torch.utils.data.DataLoader(ds, batch_sampler=sampler, **common)
    else:
        dl = torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, generator=g, **common)

    def loop() -> Iterator[int]:
        while True:
            for b in dl:
                yield len(b["index"])

    return ds, loop(), open_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=sorted(CONFIGS), required=True)
    ap.add_argument("--windows", choices=["plain", "act"], required=True)
    ap.add_argument("--loader", choices=["lerobot", "roboframes", "native", "gop", "gop-native"], required=True)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=int, default=3, help="batches after the first one, not measured")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=Path("data/bench"))
    args = ap.parse_args()
    cfg = CONFIGS[args.config]
    root = cfg.root(args.data)
    dt = cfg.windows(args.windows)

    ds, it, open_s = batches(args, cfg, root, dt)
    pss = PssSampler()
    t = time.perf_counter()
    next(it)
    first_batch_s = time.perf_counter() - t
    for _ in range(args.warmup):
        next(it)
    samples, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        samples += next(it)
    elapsed = time.perf_counter() - t0
    rss = peak_rss_sum()
    peak_pss = pss.stop()
    rate = samples / elapsed
    print(
        json.dumps(
            {
                "config": args.config,
                "windows": args.windows,
                "loader": args.loader,
                "workers": args.workers,
                "batch_size": cfg.batch_size,
                "open_s": open_s,
                "first_batch_s": first_batch_s,
                "samples_per_s": rate,
                "frames_per_s": rate * cfg.frames_per_sample(args.windows),
                "samples": samples,
                "seconds": elapsed,
                "peak_rss_bytes": rss,
                "peak_pss_bytes": peak_pss,
                "pid": os.getpid(),
            }
        ),
        flush=True,
    )
    os._exit(0)  # skip tearing down workers and decoders: measured already


if __name__ == "__main__":
    main()
