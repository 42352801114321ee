"""The MLX primitive against the native batch path, interleaved in one process.

Separate-process runs (harness.py) on a small shared machine differ by as much as the two
paths do; here both paths read the same batches alternately, several rounds, so drifting
machine speed hits both alike. Each round draws ``--batches`` random batches and times the
native path (``roboframes.Dataset.get_batch``) and then the MLX path
(``roboframes.mlx.Dataset.get_batch`` + ``roboframes.mlx.eval``) on them.

Usage: python benches/mlx_vs_native.py --config a --windows act [--rounds 6] [--batches 40]
Prints one JSON object: per-round samples/s of both paths and their medians.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import mlx.core as mx
import numpy as np

import roboframes
import roboframes.mlx as rm
from configs import CONFIGS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=sorted(CONFIGS), required=True)
    ap.add_argument("--windows", choices=["plain", "act"], required=True)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--data", type=Path, default=Path("data/bench"))
    args = ap.parse_args()
    cfg = CONFIGS[args.config]
    root = cfg.root(args.data)
    dt = cfg.windows(args.windows)
    native = roboframes.Dataset(root, delta_timestamps=dt)
    mlx_ds = rm.Dataset(root, delta_timestamps=dt)
    rng = np.random.default_rng(0)

    def native_pass(batches: list[np.ndarray]) -> None:
        for idx in batches:
            native.get_batch(idx)

    def mlx_pass(batches: list[np.ndarray]) -> None:
        for idx in batches:
            b = mlx_ds.get_batch(idx)
            rm.eval(*[v for v in b.values() if isinstance(v, mx.array)])

    rates: dict[str, list[float]] = {"native": [], "mlx": []}
    warm = [rng.permutation(len(native))[: cfg.batch_size] for _ in range(3)]
    native_pass(warm)
    mlx_pass(warm)
    for _ in range(args.rounds):
        batches = [rng.permutation(len(native))[: cfg.batch_size] for _ in range(args.batches)]
        for name, run in (("native", native_pass), ("mlx", mlx_pass)):
            t = time.perf_counter()
            run(batches)
            rates[name].append(len(batches) * cfg.batch_size / (time.perf_counter() - t))
    medians = {k: float(np.median(v)) for k, v in rates.items()}
    print(
        json.dumps(
            {
                "config": args.config,
                "windows": args.windows,
                "batch_size": cfg.batch_size,
                "rounds": rates,
                "median": medians,
                "mlx_over_native": medians["mlx"] / medians["native"],
            }
        )
    )


if __name__ == "__main__":
    main()
