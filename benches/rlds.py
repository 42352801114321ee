"""RLDS: items/s of roboframes against tf.data (tfds) on the same TFDS folder, one run.

Writes an RLDS dataset with tfds's own builder into ``--data`` once (``tests/rlds_writer.py``:
``--episodes`` episodes of ``--steps`` steps, two ``--hw`` JPEG cameras, state, action, ...),
then measures, each reader in a process of its own:

- **pass**: every step of every episode, images decoded: roboframes' ``Dataset.loader``
  (sequential batches of ``--batch``, decoded ahead) against tfds's ``as_dataset`` iterated with
  ``tf.data`` (episodes in file order, steps flattened, batched; what RLDS loaders do), with
  ``AUTOTUNE`` parallelism;
- **random**: ``--items`` random items in batches of ``--batch``: roboframes' ``get_batch``.
  tf.data has no random access to TFRecord shards (its loaders shuffle through a buffer), so
  only roboframes' number is given, next to its pass.

Each measurement is the median of ``--repeats`` runs. roboframes' open time is given too: it
reads every record once (the index of where each image lies). Prints one JSON object; no test asserts
on time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def child_tf(folder: str, batch: int, repeats: int) -> dict[str, Any]:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(folder)

    def run() -> int:
        ds = builder.as_dataset(split="train", shuffle_files=False)
        steps = ds.flat_map(lambda ep: ep["steps"]).batch(batch).prefetch(tf.data.AUTOTUNE)
        n = 0
        for b in steps:
            n += int(b["action"].shape[0])
        return n

    run()  # warm-up
    times, n = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        n = run()
        times.append(time.perf_counter() - t)
    return {"items": n, "pass_items_s": n / statistics.median(times)}


def child_roboframes(folder: str, fps: float, batch: int, items: int, repeats: int) -> dict[str, Any]:
    import numpy as np

    import roboframes

    t = time.perf_counter()
    ds = roboframes.Dataset(folder, fps=fps)
    open_s = time.perf_counter() - t
    order = np.random.default_rng(0).permutation(len(ds))[:items].tolist()
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]

    def one_pass() -> None:
        for _ in ds.loader(batch_size=batch, shuffle=False, prefetch=2):
            pass

    def random() -> None:
        for b in batches:
            ds.get_batch(b)

    one_pass()
    random()
    out: dict[str, Any] = {"items": len(ds), "open_s": open_s}
    for name, fn, n in (("pass_items_s", one_pass, len(ds)), ("random_items_s", random, len(order))):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        out[name] = n / statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/bench-rlds"))
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--hw", type=int, nargs=2, default=(128, 128))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--items", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", choices=["tf", "roboframes"], default=None)
    ap.add_argument("--folder", default=None)
    args = ap.parse_args()
    if args.child == "tf":
        print(json.dumps(child_tf(args.folder, args.batch, args.repeats)))
        return
    if args.child == "roboframes":
        print(json.dumps(child_roboframes(args.folder, 10.0, args.batch, args.items, args.repeats)))
        return
    marker = args.data / "folder.txt"
    if not marker.exists():
        spec = {"episodes": [args.steps] * args.episodes, "image_hw": list(args.hw), "shards": 4}
        r = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "rlds_writer.py"), str(args.data), json.dumps(spec)],
            capture_output=True,
            text=True,
            check=True,
        )
        marker.write_text(r.stdout.strip().splitlines()[-1])
    folder = marker.read_text().strip()
    results: dict[str, Any] = {"folder": folder, "batch": args.batch}
    for child in ("roboframes", "tf"):
        r = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                child,
                "--folder",
                folder,
                "--batch",
                str(args.batch),
                "--items",
                str(args.items),
                "--repeats",
                str(args.repeats),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[child] = json.loads(r.stdout.strip().splitlines()[-1])
    results["pass_ratio"] = results["roboframes"]["pass_items_s"] / results["tf"]["pass_items_s"]
    text = json.dumps(results, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
