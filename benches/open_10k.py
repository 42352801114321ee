"""Open time of a 10,000-episode dataset.

Builds the metadata of a 10,000-episode dataset from a real LeRobot-written one (its episode
rows, with every stats column, repeated with shifted indices; data and video files are not
needed to open) and times `roboframes.Dataset(root)` and LeRobot's `LeRobotDatasetMetadata`.

Usage: python benches/open_10k.py SOURCE_ROOT [--episodes 10000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import roboframes


def build(src: Path, dst: Path, n: int) -> None:
    (dst / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    shutil.copy(src / "meta" / "tasks.parquet", dst / "meta" / "tasks.parquet")
    shutil.copy(src / "meta" / "stats.json", dst / "meta" / "stats.json")
    eps = pa.concat_tables([pq.read_table(p) for p in sorted((src / "meta" / "episodes").rglob("*.parquet"))])
    rows = eps.to_pylist()
    out = []
    start = 0
    for i in range(n):
        r = dict(rows[i % len(rows)])
        length = r["length"]
        r.update(episode_index=i, dataset_from_index=start, dataset_to_index=start + length)
        start += length
        out.append(r)
    pq.write_table(pa.Table.from_pylist(out, schema=eps.schema), dst / "meta/episodes/chunk-000/file-000.parquet")
    info = json.loads((src / "meta" / "info.json").read_text())
    info.update(total_episodes=n, total_frames=start)
    (dst / "meta" / "info.json").write_text(json.dumps(info, indent=4))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source", type=Path)
    ap.add_argument("--episodes", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "big"
        build(args.source, root, args.episodes)
        times = []
        for _ in range(5):
            t = time.perf_counter()
            ds = roboframes.Dataset(root)
            times.append(time.perf_counter() - t)
        print(
            f"roboframes.Dataset: {ds.num_episodes} episodes, {ds.num_frames} frames, "
            f"open median {statistics.median(times) * 1000:.1f} ms (min {min(times) * 1000:.1f} ms)"
        )
        try:
            from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

            times = []
            for _ in range(3):
                t = time.perf_counter()
                LeRobotDatasetMetadata("bench/big", root=root)
                times.append(time.perf_counter() - t)
            print(f"lerobot LeRobotDatasetMetadata: open median {statistics.median(times) * 1000:.1f} ms")
        except ImportError:
            pass


if __name__ == "__main__":
    main()
