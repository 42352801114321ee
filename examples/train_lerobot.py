"""The main job: LeRobot 0.4.4's own training loop trains a small ACT policy, reading its dataset
through roboframes.

1. Writes a sample dataset with LeRobot's writer (once): 20 episodes x 50 frames at 30 fps, two
   AV1 cameras (96x128 and 96x96), LeRobot's default encoding.
2. ``roboframes.torch.patch_lerobot()``: LeRobot's ``make_dataset`` now builds
   ``roboframes.torch.LeRobotDataset``.
3. Runs ``lerobot.scripts.lerobot_train.train`` (policy factory, processors, optimizer,
   DataLoader with workers, the update loop: all LeRobot's code) for a few hundred steps.
4. Prints the training throughput, the share of time spent waiting for data, the loss curve,
   and the rate of the data pipeline alone (the same DataLoader without the model).

Usage: python examples/train_lerobot.py [--root data/sample] [--steps 200] [--batch-size 8]
       [--num-workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

import roboframes.torch as rt


def write_sample(root: Path, episodes: int, frames: int) -> None:
    from roboframes.synthetic import DatasetSpec, write_dataset

    print(f"[main] writing a sample dataset with LeRobot's writer to {root} ...", flush=True)
    t = time.perf_counter()
    spec = DatasetSpec(
        vcodec="libsvtav1",
        fps=30,
        episode_lengths=tuple([frames] * episodes),
        cameras=(("observation.images.top", 96, 128), ("observation.images.wrist", 96, 96)),
        image_key=None,
    )
    write_dataset(root, spec, repo_id="roboframes/sample")
    print(f"[main] wrote {episodes} episodes in {time.perf_counter() - t:.1f}s", flush=True)


def train(
    root: Path, steps: int, batch_size: int, num_workers: int, seed: int = 0, repo_id: str = "roboframes/sample"
) -> dict:
    """LeRobot's ``train()`` on ``root`` with roboframes patched in; returns measurements."""
    from lerobot.configs.default import DatasetConfig
    from lerobot.configs.train import TrainPipelineConfig
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.scripts import lerobot_train

    policy = ACTConfig(
        device="cpu",
        push_to_hub=False,
        pretrained_backbone_weights=None,  # no network here; train the backbone from scratch
        chunk_size=16,
        n_action_steps=16,
        dim_model=128,
        dim_feedforward=512,
        n_heads=4,
        n_encoder_layers=2,
        n_vae_encoder_layers=2,
        optimizer_lr=3e-4,
        optimizer_lr_backbone=3e-4,
    )
    out = Path(tempfile.mkdtemp(prefix="roboframes-train-")) / "run"
    cfg = TrainPipelineConfig(
        dataset=DatasetConfig(repo_id=repo_id, root=str(root)),
        policy=policy,
        output_dir=out,
        seed=seed,
        num_workers=num_workers,
        batch_size=batch_size,
        steps=steps,
        eval_freq=0,
        log_freq=max(1, steps // 5),
        save_checkpoint=False,
    )

    losses: list[float] = []
    step_times: list[float] = []
    waits: list[float] = []
    original_update = lerobot_train.update_policy

    def recording_update(train_metrics, *args, **kwargs):
        out_metrics, out_dict = original_update(train_metrics, *args, **kwargs)
        losses.append(float(out_metrics.loss.val))
        step_times.append(float(out_metrics.update_s.val) + float(out_metrics.dataloading_s.val))
        waits.append(float(out_metrics.dataloading_s.val))
        return out_metrics, out_dict

    made: list[object] = []
    original_make = lerobot_train.make_dataset

    def recording_make(c):
        ds = original_make(c)
        made.append(ds)
        return ds

    lerobot_train.update_policy = recording_update
    lerobot_train.make_dataset = recording_make
    try:
        with rt.patch_lerobot():
            t0 = time.perf_counter()
            lerobot_train.train(cfg)
            wall = time.perf_counter() - t0
    finally:
        lerobot_train.update_policy = original_update
        lerobot_train.make_dataset = original_make
    dataset = made[0]
    return {
        "dataset_class": f"{type(dataset).__module__}.{type(dataset).__qualname__}",
        "num_frames": dataset.num_frames,
        "delta_timestamps": dataset.delta_timestamps,
        "steps": len(losses),
        "losses": losses,
        "wall_s": wall,
        "train_s": sum(step_times),
        "data_wait_s": sum(waits),
        "batch_size": batch_size,
        "num_workers": num_workers,
    }


def loader_rate(root: Path, delta_timestamps: dict, batch_size: int, num_workers: int, seconds: float) -> dict:
    """The same dataset and DataLoader as the training run, iterated without the model."""
    ds = rt.LeRobotDataset("roboframes/sample", root=root, delta_timestamps=delta_timestamps)
    dl = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=True, num_workers=num_workers, prefetch_factor=2 if num_workers else None
    )
    frames_per_sample = sum(len(delta_timestamps.get(k, [0])) for k in ds.meta.video_keys)
    samples, t0, first = 0, time.perf_counter(), None
    while time.perf_counter() - t0 < seconds:
        for batch in dl:
            if first is None:
                first = time.perf_counter() - t0
                t0 = time.perf_counter()  # measure after the workers started
            samples += len(batch["index"])
            if time.perf_counter() - t0 >= seconds:
                break
    dt = time.perf_counter() - t0
    return {
        "samples_per_s": samples / dt,
        "camera_frames_per_s": samples * frames_per_sample / dt,
        "first_batch_s": first,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("data/sample"))
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--frames-per-episode", type=int, default=50)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--num-workers", type=int, default=2)
    ap.add_argument("--loader-seconds", type=float, default=8.0)
    ap.add_argument("--json", type=Path, default=None, help="also write the measurements here")
    args = ap.parse_args()

    if not (args.root / "meta" / "info.json").exists():
        write_sample(args.root, args.episodes, args.frames_per_episode)
    logging.getLogger().setLevel(logging.WARNING)

    print(f"[main] training ACT with LeRobot's train() for {args.steps} steps, data through roboframes", flush=True)
    r = train(args.root, args.steps, args.batch_size, args.num_workers)
    losses = r["losses"]
    k = max(1, len(losses) // 10)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    n = r["steps"] * r["batch_size"]
    print(f"[main] dataset: {r['dataset_class']} ({r['num_frames']} frames), windows {list(r['delta_timestamps'])}")
    print(
        f"[main] {r['steps']} steps of batch {r['batch_size']} in {r['train_s']:.1f}s: "
        f"{n / r['train_s']:.1f} samples/s trained; waiting for data {100 * r['data_wait_s'] / r['train_s']:.1f}% of the time"
    )
    print(f"[main] loss: first {k} steps {first:.3f} -> last {k} steps {last:.3f}")
    rate = loader_rate(args.root, r["delta_timestamps"], args.batch_size, args.num_workers, args.loader_seconds)
    print(
        f"[main] data pipeline alone (same DataLoader, {args.num_workers} workers): "
        f"{rate['samples_per_s']:.1f} samples/s, {rate['camera_frames_per_s']:.1f} camera frames/s"
    )
    if args.json:
        args.json.write_text(json.dumps({**r, "loader": rate}, indent=2))
    if not last < first:
        sys.exit("[main] the loss did not go down")


if __name__ == "__main__":
    main()
