"""Reading a LeRobot v2.1 dataset: roboframes against LeRobot 0.3.3 (the last line that reads
v2.1), side by side in one run, on a dataset LeRobot 0.3.3's writer makes.

    .venv/bin/python benches/v21_read.py [--episodes 20] [--frames 60] [--scale 4] [--items 300]

LeRobot 0.3.3 runs in ``.venv-lerobot03`` (``scripts/test.sh`` makes it), through
``tests/lerobot03_fixture.py time``; roboframes here. Both read the same shuffled item indices
one at a time (``ds[i]``, ACT-like windows: two frames of one camera, a chunk of actions);
roboframes also reads them in batches of 32 (``get_batch``). Prints one JSON object (items/s and
the ratios) and writes it to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "tests" / "lerobot03_fixture.py"
DELTA = {"observation.images.top": [-0.1, 0.0], "action": [i / 10 for i in range(10)]}


def lerobot03(*args: str) -> str:
    python = os.environ.get("ROBOFRAMES_LEROBOT03_PYTHON", str(HERE.parent / ".venv-lerobot03" / "bin" / "python"))
    r = subprocess.run(
        [python, str(FIXTURE), *args], capture_output=True, text=True, env={**os.environ, "SVT_LOG": "1"}
    )
    if r.returncode != 0:
        sys.exit(f"LeRobot 0.3.3 failed: {r.stderr[-3000:]}")
    return r.stdout


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--scale", type=int, default=4, help="camera sizes: 64x96 and 72x88 times this")
    p.add_argument("--items", type=int, default=300)
    p.add_argument("--data", type=Path, default=Path("data/bench-v21"))
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()

    import roboframes
    from roboframes.torch import LeRobotDataset

    root = a.data / f"e{a.episodes}-f{a.frames}-s{a.scale}"
    if not (root / "meta" / "info.json").is_file():
        lengths = ",".join([str(a.frames)] * a.episodes)
        lerobot03("write", str(root), "--lengths", lengths, "--scale", str(a.scale))
    n = a.episodes * a.frames
    indices = np.random.default_rng(0).permutation(n)[: a.items].tolist()
    theirs = json.loads(
        lerobot03("time", str(root), "--indices", ",".join(map(str, indices)), "--delta", json.dumps(DELTA))
        .strip()
        .splitlines()[-1]
    )

    ds = LeRobotDataset("roboframes/v21-bench", root=root, delta_timestamps=DELTA)
    for i in indices[:3]:
        ds[i]
    t = time.perf_counter()
    for i in indices:
        ds[i]
    drop_in = len(indices) / (time.perf_counter() - t)
    rd = roboframes.Dataset(root, delta_timestamps=DELTA)
    rd.get_batch(indices[:32])
    t = time.perf_counter()
    for s in range(0, len(indices), 32):
        rd.get_batch(indices[s : s + 32])
    batched = len(indices) / (time.perf_counter() - t)
    result = {
        "dataset": {
            "episodes": a.episodes,
            "frames": a.frames,
            "cameras": [[64 * a.scale, 96 * a.scale], [72 * a.scale, 88 * a.scale]],
            "codec": "av1",
        },
        "items": len(indices),
        "items_per_s": {
            "lerobot_0.3.3": theirs["items_per_s"],
            "roboframes_drop_in": drop_in,
            "roboframes_get_batch_32": batched,
        },
        "ratio_vs_lerobot": {
            "drop_in": drop_in / theirs["items_per_s"],
            "get_batch_32": batched / theirs["items_per_s"],
        },
        "cpus": os.cpu_count(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if a.out is not None:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "results.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
