"""Batches delivered to a device: ``Dataset.loader(output="torch", device=...)`` against the
usual path (CPU batches, then ``.to(device)`` per tensor in the training loop), side by side in
one process, on a dataset it writes with LeRobot's writer (``roboframes.synthetic``).

Each way runs for ``--seconds`` after one warm-up batch; samples/s counts batches whose tensors
are on the device and complete (the device is synchronised before the clock stops). With
``--step-ms`` each batch is followed by a simulated training step on the device (a GPU sleep
kernel), so the prefetch and the non-blocking copies can overlap it. Prints a table and one JSON
object (written to ``--out`` too).

    python benches/device_loader.py --device cuda               # on a GPU machine
    python benches/device_loader.py --device cpu --seconds 1    # the same code path on a CPU box
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

import roboframes
from roboframes.synthetic import DatasetSpec, write_dataset

#: The datasets: the hidden-like configurations the NVIDIA issue names.
SPECS: dict[str, DatasetSpec] = {
    "h264_3cam_240x320": DatasetSpec(
        vcodec="h264",
        episode_lengths=(60,) * 4,
        cameras=(
            ("observation.images.a", 240, 320),
            ("observation.images.b", 240, 320),
            ("observation.images.c", 240, 320),
        ),
        image_key=None,
        textured=True,
    ),
    "av1_96x96": DatasetSpec(
        vcodec="libsvtav1",
        episode_lengths=(100,) * 4,
        cameras=(("observation.image", 96, 96),),
        image_key=None,
        textured=True,
    ),
    "av1_480x640": DatasetSpec(
        vcodec="libsvtav1",
        episode_lengths=(40,) * 3,
        cameras=(("observation.images.top", 480, 640),),
        image_key=None,
        textured=True,
    ),
}


def step(device: torch.device, ms: float) -> None:
    """A simulated training step on ``device`` (queued: the host goes on)."""
    if ms <= 0:
        return
    if device.type == "cuda":
        torch.cuda._sleep(int(ms * 1e-3 * 1.4e9))  # (about ms at a 1.4 GHz clock)
    else:
        time.sleep(ms / 1000)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(batches: Any, device: torch.device, move: bool, seconds: float, step_ms: float, batch_size: int) -> float:
    """Samples/s of ``batches`` on ``device`` (``move``: the loop copies each tensor there)."""
    it = iter(batches)

    def one() -> None:
        b = next(it)
        if move:
            b = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in b.items()}
        step(device, step_ms)

    one()  # warm-up
    sync(device)
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        one()
        n += 1
    sync(device)
    return n * batch_size / (time.perf_counter() - start)


def endless(loader: Any) -> Any:
    while True:
        yield from loader


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--configs", nargs="+", default=list(SPECS), choices=list(SPECS))
    ap.add_argument("--frame-dtype", default="float32", choices=["uint8", "float32"])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--step-ms", type=float, default=0.0)
    ap.add_argument("--data", type=Path, default=Path("data/bench-device"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    results: dict[str, Any] = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "frame_dtype": args.frame_dtype,
        "batch_size": args.batch_size,
        "step_ms": args.step_ms,
        "configs": {},
    }
    for name in args.configs:
        root = args.data / name
        if not (root / "meta" / "info.json").exists():
            write_dataset(root, SPECS[name], repo_id=f"roboframes-bench/{name}")
        ds = roboframes.Dataset(root)
        opts: dict[str, Any] = dict(shuffle=True, seed=0, output="torch", frame_dtype=args.frame_dtype, prefetch=2)
        row = {
            "cpu batches, then .to(device)": measure(
                endless(ds.loader(args.batch_size, **opts)), device, True, args.seconds, args.step_ms, args.batch_size
            ),
            "loader device=": measure(
                endless(ds.loader(args.batch_size, device=device, **opts)),
                device,
                False,
                args.seconds,
                args.step_ms,
                args.batch_size,
            ),
        }
        results["configs"][name] = row
        print(f"{name:<20} " + "  ".join(f"{k}: {v:,.0f} samples/s" for k, v in row.items()), flush=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "device_loader.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
