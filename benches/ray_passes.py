"""Whole-dataset passes on Ray against the local run and against LeRobot 0.4.4's own code, side by
side in one process, on a dataset of many short episodes it writes with LeRobot's writer.

- ``stats``: ``ds.stats(recompute=True)`` locally (one process, the core's threads) and with
  ``engine="ray"`` (Ray tasks over runs of episodes that share files; the statistics must be
  equal bit for bit, which is checked), and LeRobot's ``get_feature_stats`` / ``aggregate_stats``
  on the frames its ``sample_indices`` picks (``tools_vs_lerobot.lerobot_stats``).
- ``validate``: ``tools.validate(root, "ends")`` locally and with ``engine="ray"`` (the reports
  must be equal, which is checked), and LeRobot's table checks plus decoding the first and last
  frame of every episode (``tools_vs_lerobot.lerobot_validate_ends``).

Ray runs locally with ``--ray-cpus`` CPUs (started and stopped here, on 127.0.0.1, without the
dashboard). Prints one JSON object (seconds, best of ``--repeats``) and writes it to ``--out``.

Usage: python benches/ray_passes.py [--episodes 1000] [--ray-cpus 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from tools_vs_lerobot import best_of, lerobot_stats, lerobot_validate_ends


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=20, help="frames per episode")
    ap.add_argument("--ray-cpus", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-lerobot", action="store_true", help="skip LeRobot's code")
    ap.add_argument("--data", type=Path, default=Path("data/bench-ray"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    import roboframes
    from roboframes import tools
    from roboframes.synthetic import DatasetSpec, write_dataset

    root = args.data / f"e{args.episodes}_f{args.frames}"
    repo_id = f"roboframes-bench/ray-{args.episodes}"
    if not (root / "meta" / "info.json").exists():
        t = time.perf_counter()
        write_dataset(
            root,
            DatasetSpec(
                vcodec="libsvtav1",
                episode_lengths=(args.frames,) * args.episodes,
                cameras=(("observation.image", 96, 96),),
                image_key=None,
                textured=True,
            ),
            repo_id=repo_id,
        )
        print(f"wrote {root} in {time.perf_counter() - t:.0f} s", flush=True)
    ds = roboframes.Dataset(root)
    ray.init(num_cpus=args.ray_cpus, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        # warm-up: the workers start and import roboframes once
        ds.stats(recompute=True, progress=False, engine="ray")
        local = ds.stats(recompute=True, progress=False)
        distributed = ds.stats(recompute=True, progress=False, engine="ray")
        same_stats = all(np.array_equal(local[k][n], distributed[k][n]) for k in local for n in local[k])
        same_report = (
            tools.validate(root, "ends", progress=False).to_dict()
            == tools.validate(root, "ends", progress=False, engine="ray").to_dict()
        )
        results: dict[str, Any] = {
            "dataset": {"episodes": ds.num_episodes, "frames": ds.num_frames, "camera": "96x96 AV1"},
            "ray_cpus": args.ray_cpus,
            "machine_cpus": os.cpu_count(),
            "stats_equal_bit_for_bit": same_stats,
            "validate_reports_equal": same_report,
            "seconds": {
                "stats local": best_of(args.repeats, lambda: ds.stats(recompute=True, progress=False)),
                "stats ray": best_of(args.repeats, lambda: ds.stats(recompute=True, progress=False, engine="ray")),
                "validate local": best_of(args.repeats, lambda: tools.validate(root, "ends", progress=False)),
                "validate ray": best_of(
                    args.repeats, lambda: tools.validate(root, "ends", progress=False, engine="ray")
                ),
            },
        }
    finally:
        ray.shutdown()
    if not args.no_lerobot:
        results["seconds"]["stats lerobot"] = best_of(args.repeats, lambda: lerobot_stats(repo_id, root))
        results["seconds"]["validate lerobot"] = best_of(args.repeats, lambda: lerobot_validate_ends(repo_id, root))
    text = json.dumps(results, indent=2)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
