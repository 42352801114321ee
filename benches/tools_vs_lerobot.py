"""The dataset tools against the same work done with LeRobot 0.4.4's own code, on one dataset.

- ``validate``: ``roboframes.validate(root, "ends")`` (every check of the README, in the core)
  against LeRobot: open ``LeRobotDataset`` (metadata and the whole table), check
  ``frame_index``, timestamps on the ``1/fps`` grid and task indices with NumPy over its table,
  and decode the first and last frame of every episode in every camera with
  ``lerobot.datasets.video_utils.decode_video_frames`` (torchcodec).
- ``stats``: ``Dataset.stats(recompute=True)`` against LeRobot's ``get_feature_stats`` per episode
  on the table's arrays and on the frames LeRobot's ``sample_indices`` picks (decoded with
  ``decode_video_frames``), then ``aggregate_stats``: what its writer does, on a recorded dataset.

Prints one JSON object with the seconds of each (best of ``--repeats``).

Usage: python benches/tools_vs_lerobot.py --config a [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from configs import CONFIGS


def lerobot_validate_ends(repo_id: str, root: Path) -> int:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.datasets.video_utils import decode_video_frames

    ds = LeRobotDataset(repo_id, root=root)
    table = ds.hf_dataset.with_format("numpy")
    ep = np.asarray(table["episode_index"])
    fi = np.asarray(table["frame_index"])
    ts = np.asarray(table["timestamp"], dtype=np.float64)
    ti = np.asarray(table["task_index"])
    problems = 0
    for e in ds.meta.episodes:
        idx = np.flatnonzero(ep == e["episode_index"])
        problems += int((fi[idx] != np.arange(len(idx))).sum())
        problems += int((np.abs(np.diff(ts[idx]) - 1 / ds.fps) > 1e-4).sum())
    problems += int((~np.isin(ti, np.arange(len(ds.meta.tasks)))).sum())
    for e in ds.meta.episodes:
        for key in ds.meta.video_keys:
            path = root / ds.meta.get_video_file_path(e["episode_index"], key)
            start = e[f"videos/{key}/from_timestamp"]
            last = start + (e["length"] - 1) / ds.fps
            frames = decode_video_frames(path, [start, last], ds.tolerance_s, ds.video_backend)
            problems += int(len(frames) != 2)
    return problems


def lerobot_stats(repo_id: str, root: Path) -> dict[str, Any]:
    from lerobot.datasets.compute_stats import aggregate_stats, get_feature_stats, sample_indices
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.datasets.video_utils import decode_video_frames

    ds = LeRobotDataset(repo_id, root=root)
    table = ds.hf_dataset.with_format("numpy")
    ep = np.asarray(table["episode_index"])
    numeric = [k for k, f in ds.features.items() if f["dtype"] not in ("video", "image", "string")]
    columns = {k: np.asarray(table[k]) for k in numeric}
    per_episode = []
    for e in ds.meta.episodes:
        idx = np.flatnonzero(ep == e["episode_index"])
        st: dict[str, Any] = {}
        for k in numeric:
            data = columns[k][idx]
            st[k] = get_feature_stats(data, axis=0, keepdims=data.ndim == 1)
        for key in ds.meta.video_keys:
            path = root / ds.meta.get_video_file_path(e["episode_index"], key)
            start = e[f"videos/{key}/from_timestamp"]
            picks = sample_indices(int(e["length"]))
            frames = decode_video_frames(path, [start + i / ds.fps for i in picks], ds.tolerance_s, ds.video_backend)
            u8 = (frames.numpy() * 255).round().astype(np.uint8)
            s = get_feature_stats(u8, axis=(0, 2, 3), keepdims=True)
            st[key] = {n: v if n == "count" else np.squeeze(v / 255.0, axis=0) for n, v in s.items()}
        per_episode.append(st)
    return aggregate_stats(per_episode)


def best_of(repeats: int, fn: Any) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=sorted(CONFIGS), default="a")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--data", type=Path, default=Path("data/bench"))
    args = ap.parse_args()
    import roboframes

    cfg = CONFIGS[args.config]
    root = cfg.root(args.data)
    out: dict[str, Any] = {"config": args.config, "dataset": cfg.description}
    report = roboframes.validate(root, "ends", progress=False)
    out["roboframes_validate_ok"] = report.ok
    out["roboframes_validate_ends_s"] = best_of(args.repeats, lambda: roboframes.validate(root, "ends", progress=False))
    out["roboframes_validate_none_s"] = best_of(args.repeats, lambda: roboframes.validate(root, "none", progress=False))
    out["lerobot_validate_ends_s"] = best_of(args.repeats, lambda: lerobot_validate_ends(cfg.repo_id, root))
    ds = roboframes.Dataset(root)
    out["roboframes_stats_s"] = best_of(args.repeats, lambda: ds.compute_stats(progress=False))
    out["lerobot_stats_s"] = best_of(args.repeats, lambda: lerobot_stats(cfg.repo_id, root))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
