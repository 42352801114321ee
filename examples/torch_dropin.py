"""PyTorch drop-in: ``roboframes.torch.LeRobotDataset`` with ``delta_timestamps`` in a
``DataLoader``, exactly where LeRobot's ``LeRobotDataset`` would go.

Usage: python examples/torch_dropin.py [DATASET_ROOT] [--batch-size 8] [--num-workers 2]

DATASET_ROOT is the folder holding ``meta/``, ``data/`` and ``videos/``. Without it, a small
sample dataset is written with LeRobot's writer (``roboframes.synthetic``, needs ``lerobot``)
into a temporary directory.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

# from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
from roboframes.torch import LeRobotDataset, LeRobotDatasetMetadata


def windows(root: Path) -> dict[str, list[float]]:
    """ACT-like windows: each camera and the state at the previous and the current frame, the
    next 4 actions."""
    meta = LeRobotDatasetMetadata("local/dataset", root=root)
    fps = meta.fps
    dt = {key: [-1 / fps, 0.0] for key in meta.video_keys}
    if "observation.state" in meta.features:
        dt["observation.state"] = [-1 / fps, 0.0]
    if "action" in meta.features:
        dt["action"] = [i / fps for i in range(4)]
    return dt


def show(root: Path, batch_size: int, num_workers: int) -> None:
    delta_timestamps = windows(root)
    ds = LeRobotDataset("local/dataset", root=root, delta_timestamps=delta_timestamps)
    print(f"{root}: {len(ds)} frames, {ds.num_episodes} episodes; delta_timestamps {delta_timestamps}")
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=num_workers)
    for i, batch in enumerate(loader):
        if i == 2:
            break
        print(f"batch {i}:")
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                print(f"  {key:<34} {str(value.dtype):<14} {tuple(value.shape)}")
            else:
                print(f"  {key:<34} {type(value).__name__} of {len(value)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, nargs="?", default=None, help="a LeRobot v3.0 dataset root")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--num-workers", type=int, default=2)
    args = ap.parse_args()
    if args.root is not None:
        show(args.root, args.batch_size, args.num_workers)
        return

    from roboframes.synthetic import DatasetSpec, write_dataset

    with tempfile.TemporaryDirectory(prefix="roboframes-sample-") as tmp:
        print("no dataset root given: writing a small sample with LeRobot's writer ...")
        root = write_dataset(Path(tmp) / "sample", DatasetSpec(episode_lengths=(20, 12, 16)), repo_id="local/sample")
        show(root, args.batch_size, args.num_workers)


if __name__ == "__main__":
    main()
