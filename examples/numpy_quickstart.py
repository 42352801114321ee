"""NumPy quickstart: open a LeRobot v3.0 dataset with ``roboframes.Dataset``, read one item and
one batch.

Usage: python examples/numpy_quickstart.py [DATASET_ROOT]

DATASET_ROOT is the folder holding ``meta/``, ``data/`` and ``videos/``. Without it, a small
sample dataset is written with LeRobot's writer (``roboframes.synthetic``, needs ``lerobot``)
into a temporary directory.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import roboframes


def describe(value: Any) -> str:
    """``dtype shape`` of an array, ``repr`` of anything else (``task`` is a string)."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype} {tuple(value.shape)}"
    return repr(value)


def show(root: Path) -> None:
    ds = roboframes.Dataset(root)
    print(f"{root}: {len(ds)} frames in {ds.num_episodes} episodes at {ds.fps} fps, cameras {ds.camera_keys}")

    item = ds[0]
    print("item 0:")
    for key, value in item.items():
        print(f"  {key:<28} {describe(value)}")

    indices = np.arange(0, len(ds), max(1, len(ds) // 8))[:8]
    batch = ds.get_batch(indices)  # one native call: every camera frame of the batch decoded in parallel
    print(f"get_batch({indices.tolist()}):")
    for key, value in batch.items():
        # arrays stacked along a leading batch dimension; strings (``task``) as a list
        shown = describe(value) if isinstance(value, np.ndarray) else f"{type(value).__name__} of {len(value)}"
        print(f"  {key:<28} {shown}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, nargs="?", default=None, help="a LeRobot v3.0 dataset root")
    args = ap.parse_args()
    if args.root is not None:
        show(args.root)
        return

    from roboframes.synthetic import DatasetSpec, write_dataset

    with tempfile.TemporaryDirectory(prefix="roboframes-sample-") as tmp:
        print("no dataset root given: writing a small sample with LeRobot's writer ...")
        root = write_dataset(Path(tmp) / "sample", DatasetSpec(episode_lengths=(20, 12, 16)), repo_id="local/sample")
        show(root)


if __name__ == "__main__":
    main()
