"""HDF5 sources: items/s of roboframes against h5py on the same files, side by side in one run.

Two datasets are written with h5py into ``--data`` (once):

- ``aloha``: ALOHA-like episode files (``--aloha-episodes`` x ``--aloha-frames`` frames, two
  ``--aloha-hw`` uint8 cameras chunked a frame at a time as ACT's recorder writes them,
  uncompressed, qpos/qvel/action float64);
- ``robomimic``: one robomimic/LIBERO-like file (``--demos`` demos of ``--demo-frames`` frames,
  two 84x84 cameras gzip-compressed per frame, low-dimensional obs, actions, rewards, dones).

Per dataset, two reads of every key an item has:

- **random**: ``--items`` shuffled items, in batches of ``--batch``; roboframes'
  ``Dataset.get_batch`` against a map-style reader over h5py (files kept open, one row of every
  dataset per item: what a PyTorch ``Dataset`` over h5py does);
- **pass**: every item in order; roboframes' ``Dataset.loader`` (sequential batches, decoded
  ahead) against the same map-style h5py reader item by item, and against h5py reading each
  episode's datasets whole (the fastest h5py reads: whole arrays, no items or batches).

Each measurement is the median of ``--repeats`` consecutive runs. Prints one
JSON object (items/s and the ratios). No test asserts on time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import roboframes


def write_aloha(folder: Path, episodes: int, frames: int, hw: tuple[int, int]) -> Path:
    if folder.exists():
        return folder
    tmp = folder.with_suffix(".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = hw
    for e in range(episodes):
        with h5py.File(tmp / f"episode_{e}.hdf5", "w") as f:
            f.attrs["sim"] = True
            obs = f.create_group("observations")
            obs.create_dataset("qpos", data=rng.normal(size=(frames, 14)))
            obs.create_dataset("qvel", data=rng.normal(size=(frames, 14)))
            images = obs.create_group("images")
            for cam in ("cam_high", "cam_left_wrist"):
                d = images.create_dataset(cam, (frames, h, w, 3), dtype=np.uint8, chunks=(1, h, w, 3))
                base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
                for t in range(frames):
                    d[t] = np.roll(base, t, axis=1)
            f.create_dataset("action", data=rng.normal(size=(frames, 14)))
    tmp.rename(folder)
    return folder


def write_robomimic(path: Path, demos: int, frames: int) -> Path:
    if path.exists():
        return path
    rng = np.random.default_rng(1)
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "env_kwargs": {"control_freq": 20}})
        for k in range(demos):
            g = data.create_group(f"demo_{k}")
            g.attrs["num_samples"] = frames
            g.create_dataset("actions", data=rng.normal(size=(frames, 7)))
            g.create_dataset("rewards", data=rng.normal(size=(frames,)))
            g.create_dataset("dones", data=np.zeros(frames, dtype=np.int64))
            obs = g.create_group("obs")
            for cam in ("agentview_image", "robot0_eye_in_hand_image"):
                base = rng.integers(0, 255, (84, 84, 3), dtype=np.uint8)
                imgs = np.stack([np.roll(base, t, axis=0) for t in range(frames)])
                obs.create_dataset(cam, data=imgs, chunks=(1, 84, 84, 3), compression="gzip", compression_opts=4)
            for key, dim in (("robot0_eef_pos", 3), ("robot0_eef_quat", 4), ("robot0_gripper_qpos", 2)):
                obs.create_dataset(key, data=rng.normal(size=(frames, dim)))
    tmp.rename(path)
    return path


class H5pyReader:
    """A map-style reader over h5py, as users write one: files kept open, an item is one row of
    every dataset of its episode (the keys roboframes reads)."""

    def __init__(self, ds: roboframes.Dataset) -> None:
        src = ds.info["source"]
        self.files = [h5py.File(p, "r") for p in src["files"]]
        self.layout = src["layout"]
        self.keys = [
            k for k in ds.features if k not in ("timestamp", "frame_index", "episode_index", "index", "task_index")
        ]
        self.episodes: list[tuple[h5py.Group, int]] = []
        for f in self.files:
            if self.layout == "aloha":
                self.episodes.append((f["/"], f["action"].shape[0]))
            else:
                names = sorted(f["data"], key=lambda n: int(n.split("_")[1]))
                self.episodes.extend((f[f"data/{n}"], f[f"data/{n}/actions"].shape[0]) for n in names)
        self.starts = np.cumsum([0] + [n for _, n in self.episodes])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        e = int(np.searchsorted(self.starts, i, side="right") - 1)
        g, _ = self.episodes[e]
        r = i - int(self.starts[e])
        return {k: g[k][r] for k in self.keys}

    def episode(self, e: int) -> dict[str, np.ndarray]:
        g, _ = self.episodes[e]
        return {k: g[k][()] for k in self.keys}


REPEATS = 3


def timed(fn: Any) -> float:
    """The median of ``REPEATS`` runs' seconds (this machine's timings are noisy)."""
    runs = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return float(np.median(runs))


def bench(root: Path, fps: float | None, items: int, batch: int, threads: int | None) -> dict[str, Any]:
    ds = roboframes.Dataset(root, fps=fps, decode_threads=threads)
    ref = H5pyReader(ds)
    assert len(ref) == len(ds)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds))[:items].tolist()
    # warm-up (page cache, first episode loads) on both, then the same items
    ds.get_batch(order[:batch])
    [ref[i] for i in order[:batch]]
    # the same values on both sides
    a, b = ds[order[0]], ref[order[0]]
    for k in ref.keys:
        np.testing.assert_array_equal(a[k], b[k] if b[k].dtype.kind != "f" else b[k].astype(np.float32))
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    rf_random = timed(lambda: [ds.get_batch(b) for b in batches])
    h5_random = timed(lambda: [[ref[i] for i in b] for b in batches])
    rf_pass = timed(lambda: list(ds.loader(batch_size=batch, shuffle=False, prefetch=2)))
    h5_pass = timed(lambda: [ref[i] for i in range(len(ref))])
    h5_whole = timed(lambda: [ref.episode(e) for e in range(len(ref.episodes))])
    n = len(ds)
    out = {
        "dataset": root.name,
        "items": n,
        "random_items": len(order),
        "batch": batch,
        "roboframes_random_items_s": len(order) / rf_random,
        "h5py_random_items_s": len(order) / h5_random,
        "roboframes_pass_items_s": n / rf_pass,
        "h5py_pass_items_s": n / h5_pass,
        "h5py_whole_episodes_items_s": n / h5_whole,
    }
    out["random_ratio"] = out["roboframes_random_items_s"] / out["h5py_random_items_s"]
    out["pass_ratio"] = out["roboframes_pass_items_s"] / out["h5py_pass_items_s"]
    out["whole_episodes_ratio"] = out["roboframes_pass_items_s"] / out["h5py_whole_episodes_items_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/bench-hdf5"))
    ap.add_argument("--aloha-episodes", type=int, default=4)
    ap.add_argument("--aloha-frames", type=int, default=200)
    ap.add_argument("--aloha-hw", type=int, nargs=2, default=(480, 640))
    ap.add_argument("--demos", type=int, default=50)
    ap.add_argument("--demo-frames", type=int, default=100)
    ap.add_argument("--items", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--decode-threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is reported")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    global REPEATS
    REPEATS = args.repeats
    args.data.mkdir(parents=True, exist_ok=True)
    aloha = write_aloha(args.data / "aloha", args.aloha_episodes, args.aloha_frames, tuple(args.aloha_hw))
    robomimic = write_robomimic(args.data / "robomimic.hdf5", args.demos, args.demo_frames)
    results = [
        bench(aloha, 50.0, args.items, args.batch, args.decode_threads),
        bench(robomimic, None, args.items, args.batch, args.decode_threads),
    ]
    text = json.dumps({"results": results}, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
