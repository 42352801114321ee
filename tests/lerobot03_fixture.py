"""Runs in the LeRobot 0.3.3 environment (``.venv-lerobot03``, made by ``scripts/test.sh``), never
imports roboframes: it writes LeRobot v2.1 datasets with LeRobot 0.3.3's own writer and dumps
the items of LeRobot 0.3.3's ``LeRobotDataset`` on them, the reference of roboframes' v2.1
reader (``tests/test_lerobot_v21.py``).

    python lerobot03_fixture.py write ROOT [--lengths 6,1,2,9] [--chunks-size N] [--no-videos] [--scale K]
    python lerobot03_fixture.py items ROOT OUT.pkl [--delta JSON] [--episodes 0,1] [--indices 0,3]
    python lerobot03_fixture.py time ROOT --indices 5,2,... [--delta JSON]   (benches/v21_read.py)

``items`` writes a pickle ``{"len": n, "items": {index: {key: ndarray | str}}}`` (tensors as
NumPy arrays).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

CAMERAS = (("observation.images.top", 64, 96), ("observation.images.wrist", 72, 88))
IMAGE = ("observation.images.still", 24, 40)
TASKS = ("pick the cube", "place the cube", "stack the blocks")


def cameras(scale: int) -> tuple[tuple[str, int, int], ...]:
    return tuple((name, h * scale, w * scale) for name, h, w in CAMERAS)


def features(videos: bool, scale: int = 1) -> dict[str, dict[str, Any]]:
    feats: dict[str, dict[str, Any]] = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": [f"j{i}" for i in range(6)]},
        "action": {"dtype": "float32", "shape": (4,), "names": [f"a{i}" for i in range(4)]},
        "observation.effort": {"dtype": "float64", "shape": (3,), "names": None},
        "observation.counts": {"dtype": "int64", "shape": (2,), "names": None},
        "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
        "next.done": {"dtype": "bool", "shape": (1,), "names": None},
    }
    if videos:
        for name, h, w in cameras(scale):
            feats[name] = {"dtype": "video", "shape": (h, w, 3), "names": ["height", "width", "channels"]}
    name, h, w = IMAGE
    feats[name] = {"dtype": "image", "shape": (h, w, 3), "names": ["height", "width", "channels"]}
    return feats


@functools.cache
def _synthetic() -> Any:
    """roboframes' ``synthetic`` module loaded from its file, without the roboframes package
    (not installed here; the module needs only NumPy at import): its frames are the fixtures'."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "python" / "roboframes" / "synthetic.py"
    spec = importlib.util.spec_from_file_location("roboframes_synthetic", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up there)
    spec.loader.exec_module(module)
    return module


def frame_image(h: int, w: int, t: int, seed: int) -> np.ndarray:
    """A smooth image with a moving square (roboframes.synthetic's): a wrong frame is obvious."""
    frame: np.ndarray = _synthetic()._frame(h, w, t, seed)
    return frame


def write(root: Path, lengths: list[int], chunks_size: int | None, videos: bool, scale: int = 1) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    feats = features(videos, scale)
    ds = LeRobotDataset.create(
        repo_id="roboframes/v21-fixture",
        fps=10,
        features=feats,
        root=root,
        robot_type="fixture_bot",
        use_videos=videos,
        image_writer_threads=0,
    )
    if chunks_size is not None:
        ds.meta.info["chunks_size"] = chunks_size
    rng = np.random.default_rng(0)
    g = 0
    for ep, n in enumerate(lengths):
        for t in range(n):
            frame: dict[str, Any] = {
                "observation.state": rng.standard_normal(6).astype(np.float32),
                "action": rng.standard_normal(4).astype(np.float32),
                "observation.effort": rng.standard_normal(3),
                "observation.counts": np.array([g, ep], dtype=np.int64),
                "next.reward": np.array([t / n], dtype=np.float32),
                "next.done": np.array([t == n - 1]),
            }
            if videos:
                for ci, (name, h, w) in enumerate(cameras(scale)):
                    frame[name] = frame_image(h, w, g, ci + 1)
            name, h, w = IMAGE
            frame[name] = frame_image(h, w, g, 9)
            # an episode of several tasks: its frames switch task half-way
            task = TASKS[ep % 2] if (ep % 3 != 2 or t < n // 2) else TASKS[2]
            ds.add_frame(frame, task=task)
            g += 1
        ds.save_episode()


def to_plain(v: Any) -> Any:
    import torch

    if isinstance(v, torch.Tensor):
        return v.numpy()
    return v


def items(
    root: Path, out: Path, delta: dict[str, list[float]] | None, episodes: list[int] | None, indices: list[int] | None
) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset("roboframes/v21-fixture", root=root, delta_timestamps=delta, episodes=episodes)
    chosen = range(len(ds)) if indices is None else indices
    dump = {
        "len": len(ds),
        "items": {i: {k: to_plain(v) for k, v in ds[i].items()} for i in chosen},
        "stats": {k: {s: np.asarray(a) for s, a in v.items()} for k, v in ds.meta.stats.items()},
        "num_episodes": ds.num_episodes,
    }
    with open(out, "wb") as f:
        pickle.dump(dump, f)


def time_items(root: Path, delta: dict[str, list[float]] | None, indices: list[int]) -> None:
    """Prints ``{"items_per_s", "items", "seconds"}``: LeRobot 0.3.3's ``ds[i]`` over
    ``indices`` in order, after a warm-up of its first 3."""
    import time

    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset("roboframes/v21-fixture", root=root, delta_timestamps=delta)
    for i in indices[:3]:
        ds[i]
    t = time.perf_counter()
    for i in indices:
        ds[i]
    s = time.perf_counter() - t
    print(json.dumps({"items_per_s": len(indices) / s, "items": len(indices), "seconds": s}))


def main() -> int:
    os.environ.setdefault("SVT_LOG", "1")
    logging.getLogger().setLevel(logging.WARNING)
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("root", type=Path)
    w.add_argument("--lengths", default="6,1,2,9")
    w.add_argument("--chunks-size", type=int, default=None)
    w.add_argument("--no-videos", action="store_true")
    w.add_argument("--scale", type=int, default=1)
    tm = sub.add_parser("time")
    tm.add_argument("root", type=Path)
    tm.add_argument("--indices", required=True)
    tm.add_argument("--delta", default=None)
    it = sub.add_parser("items")
    it.add_argument("root", type=Path)
    it.add_argument("out", type=Path)
    it.add_argument("--delta", default=None)
    it.add_argument("--episodes", default=None)
    it.add_argument("--indices", default=None)
    a = p.parse_args()
    if a.cmd == "write":
        write(a.root, [int(x) for x in a.lengths.split(",")], a.chunks_size, not a.no_videos, a.scale)
    elif a.cmd == "time":
        time_items(a.root, None if a.delta is None else json.loads(a.delta), [int(x) for x in a.indices.split(",")])
    else:
        ints = lambda s: None if s is None else [int(x) for x in s.split(",")]  # noqa: E731
        items(a.root, a.out, None if a.delta is None else json.loads(a.delta), ints(a.episodes), ints(a.indices))
    return 0


if __name__ == "__main__":
    sys.exit(main())
