"""One loader, in a process of its own: open the dataset, iterate shuffled batches, measure.

Loaders:
  lerobot     LeRobot's LeRobotDataset (the installed one: 0.4.4, or 0.6.x; torchcodec) in a
              torch DataLoader
  roboframes  roboframes.torch.LeRobotDataset (the drop-in) in a torch DataLoader
  native      roboframes' native batch path: roboframes.Dataset.get_batch (uint8 frames)
  mlx         roboframes.mlx.Dataset.get_batch, evaluated: the MLX primitive (uint8 frames), in
              the native path's order
  gop         the drop-in in a DataLoader with roboframes.GopShuffleSampler (opt-in order)
  gop-native  the native batch path with roboframes.GopShuffleSampler

Prints one JSON object: open time, time to first batch, samples/s and camera frames/s over
``--seconds`` after ``--warmup`` batches, and the memory of this process and its DataLoader
workers sampled every 0.5 s: the peak RSS summed over the processes (each process's
high-water mark, VmHWM: pages shared between processes count in each), and the peak of their
summed PSS (psutil's ``memory_full_info().pss``: shared pages divided).

With ``--uint8`` the drop-in and LeRobot give uint8 video frames (LeRobot 0.6's
``return_uint8=True``, which its training sets; the 0.4 drop-in's ``frame_dtype=torch.uint8``;
LeRobot 0.4.4 has no such option and is measured as it is).

Usage: python benches/run_loader.py --config b --windows act --loader roboframes --workers 2 [--uint8]
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


def _processes() -> list[psutil.Process]:
    me = psutil.Process()
    return [me, *me.children(recursive=True)]


def _rss_high_water_mark(p: psutil.Process) -> int:
    """The kernel's exact peak RSS of a process (``VmHWM``), in bytes: psutil reports the
    current RSS only, which sampling would undercount between samples."""
    with open(f"/proc/{p.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no VmHWM in /proc/{p.pid}/status")


class MemorySampler:
    """Samples the memory of this process and every descendant (the DataLoader workers) with
    psutil every ``period`` seconds in a thread.

    ``peak_rss``: each process's RSS high-water mark (VmHWM, read at its last sample), summed
    (pages shared between processes count in each). ``peak_pss``: the largest sampled sum of PSS
    (``memory_full_info().pss``: shared pages divided between the processes sharing them).
    """

    def __init__(self, period: float = 0.5) -> None:
        import threading

        self.peak_pss = 0
        self._rss: dict[int, int] = {}
        self._stop = threading.Event()
        self._sample()
        self._thread = threading.Thread(target=self._run, args=(period,), daemon=True)
        self._thread.start()

    @property
    def peak_rss(self) -> int:
        return sum(self._rss.values())

    def _sample(self) -> None:
        pss = 0
        for p in _processes():
            try:
                m = p.memory_full_info()
                hwm = _rss_high_water_mark(p)
            except (psutil.Error, OSError):  # exited meanwhile, or not ours to read
                continue
            self._rss[p.pid] = max(self._rss.get(p.pid, 0), hwm)
            pss += m.pss
        self.peak_pss = max(self.peak_pss, pss)

    def _run(self, period: float) -> None:
        while not self._stop.wait(period):
            self._sample()

    def stop(self) -> tuple[int, int]:
        """Stops sampling after a last sample; returns (peak RSS, peak PSS) in bytes."""
        self._stop.set()
        self._thread.join()
        self._sample()
        return self.peak_rss, self.peak_pss


def batches(args: argparse.Namespace, cfg: Any, root: Path, dt: dict | None) -> tuple[Any, Iterator[int], float]:
    """(dataset, iterator over batch sizes, open seconds)."""
    import torch

    t = time.perf_counter()
    from roboframes.torch.lines import lerobot_line

    uint8: dict[str, Any] = {}
    if args.uint8:
        uint8 = {"return_uint8": True} if lerobot_line() == "0.6" else {}
    if args.loader == "lerobot":
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        ds = LeRobotDataset(cfg.repo_id, root=root, delta_timestamps=dt, **uint8)
    elif args.loader in ("roboframes", "gop"):
        import roboframes.torch as rt

        if args.uint8 and not uint8:
            uint8 = {"frame_dtype": torch.uint8}
        ds = rt.LeRobotDataset(cfg.repo_id, root=root, delta_timestamps=dt, **uint8)
    elif args.loader == "mlx":
        import roboframes.mlx as rm

        ds = rm.Dataset(root, delta_timestamps=dt)
    else:
        import roboframes

        ds = roboframes.Dataset(root, delta_timestamps=dt)
    open_s = time.perf_counter() - t

    if args.loader == "mlx":
        import mlx.core as mx

        import roboframes.mlx as rm

        def mlx_batches() -> Iterator[int]:
            # the native path's order; each batch is one lazy primitive, evaluated (decoded) here
            rng = np.random.default_rng(args.seed)
            while True:
                perm = rng.permutation(len(ds))
                for s in range(0, len(perm), cfg.batch_size):
                    b = ds.get_batch(perm[s : s + cfg.batch_size])
                    rm.eval(*[v for v in b.values() if isinstance(v, mx.array)])
                    yield len(b["task"])

        return ds, mlx_batches(), open_s

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


def _lerobot_version() -> str | None:
    from roboframes.torch.lines import installed_lerobot

    return installed_lerobot()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=sorted(CONFIGS), required=True)
    ap.add_argument("--windows", choices=["plain", "act"], required=True)
    ap.add_argument("--loader", choices=["lerobot", "roboframes", "native", "mlx", "gop", "gop-native"], required=True)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=int, default=3, help="batches after the first one, not measured")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=Path("data/bench"))
    ap.add_argument("--uint8", action="store_true", help="uint8 video frames from LeRobot and the drop-in")
    args = ap.parse_args()
    cfg = CONFIGS[args.config]
    root = cfg.root(args.data)
    dt = cfg.windows(args.windows)

    ds, it, open_s = batches(args, cfg, root, dt)
    mem = MemorySampler()
    t = time.perf_counter()
    next(it)
    first_batch_s = time.perf_counter() - t
    for _ in range(args.warmup):
        next(it)
    samples, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        samples += next(it)
    elapsed = time.perf_counter() - t0
    rss, peak_pss = mem.stop()
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
                "uint8": bool(args.uint8),
                "lerobot": _lerobot_version(),
            }
        ),
        flush=True,
    )
    os._exit(0)  # skip tearing down workers and decoders: measured already


if __name__ == "__main__":
    main()
