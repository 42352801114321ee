"""The main job: write a sample LeRobot dataset with LeRobot's writer (once), then read it
through roboframes in shuffled batches with ACT-like windows and print the throughput.

Usage: python examples/main_job.py [--root data/sample] [--episodes 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import roboframes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", type=Path, default=Path("data/sample"))
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--frames-per-episode", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0, help="how long to iterate")
    args = ap.parse_args()

    if not (args.root / "meta" / "info.json").exists():
        from lerobot_fixtures import FixtureSpec, write_dataset

        print(f"[main] writing a sample dataset with LeRobot's writer to {args.root} ...", flush=True)
        t = time.perf_counter()
        spec = FixtureSpec(
            vcodec="libsvtav1",
            fps=30,
            episode_lengths=tuple([args.frames_per_episode] * args.episodes),
            cameras=(("observation.images.top", 96, 128), ("observation.images.wrist", 96, 96)),
            image_key=None,
        )
        write_dataset(args.root, spec, repo_id="roboframes/sample")
        print(f"[main] wrote {args.episodes} episodes in {time.perf_counter() - t:.1f}s", flush=True)

    t = time.perf_counter()
    fps = roboframes.Dataset(args.root).fps
    windows = {
        "observation.images.top": [-1 / fps, 0.0],
        "observation.images.wrist": [-1 / fps, 0.0],
        "observation.state": [-1 / fps, 0.0],
        "action": [i / fps for i in range(16)],
    }
    ds = roboframes.Dataset(args.root, delta_timestamps=windows)
    open_s = time.perf_counter() - t
    print(f"[main] {ds}  (opened in {open_s * 1000:.1f} ms)")

    rng = np.random.default_rng(0)
    frames_per_sample = sum(len(v) for k, v in windows.items() if k in ds.video_keys)
    samples = 0
    first = None
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:  # epochs over a shuffled order
        perm = rng.permutation(len(ds))
        for start in range(0, len(ds), args.batch_size):
            batch = ds.get_batch(perm[start : start + args.batch_size])
            if first is None:
                first = time.perf_counter() - t0
                shapes = {k: getattr(v, "shape", f"list[{len(v)}]") for k, v in batch.items()}
                print(f"[main] first batch after {first * 1000:.0f} ms: {shapes}")
            samples += len(batch["index"])
            if time.perf_counter() - t0 >= args.seconds:
                break
    dt = time.perf_counter() - t0
    print(
        f"[main] {samples} samples in {dt:.1f}s: {samples / dt:.1f} samples/s, "
        f"{samples * frames_per_sample / dt:.1f} camera frames/s (batch {args.batch_size}, shuffled, ACT windows)"
    )


if __name__ == "__main__":
    main()
