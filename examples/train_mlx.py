"""Train a small MLX policy on a LeRobot dataset read through ``roboframes.mlx``.

The policy (an ``mlx.nn`` CNN over one camera frame plus an MLP over the robot state) predicts
the next ``chunk`` actions, ACT-style, and is trained with ``mlx.optimizers.Adam`` on MSE. Batches
come from ``roboframes.mlx.Dataset(...).shuffle(seed).batch(n).prefetch(...)``: each batch is one
lazy MLX primitive that decodes every frame of the batch in roboframes' Rust core when MLX
evaluates it, with the next batches decoded in the background.

Usage: python examples/train_mlx.py [DATASET_ROOT] [--steps 200] [--batch-size 16]
Without DATASET_ROOT it writes a small sample dataset with LeRobot's writer (needs ``lerobot``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim

import roboframes.mlx as rm


class Policy(nn.Module):
    """A camera frame (uint8 HWC) and the state in, ``chunk`` actions out."""

    def __init__(self, state_dim: int, action_dim: int, chunk: int) -> None:
        super().__init__()
        self.chunk, self.action_dim = chunk, action_dim
        self.conv1 = nn.Conv2d(3, 16, kernel_size=5, stride=2, padding=2)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(32, 32, kernel_size=3, stride=2, padding=1)
        self.state_in = nn.Linear(state_dim, 64)
        self.head = nn.Sequential(nn.Linear(32 + 64, 128), nn.ReLU(), nn.Linear(128, chunk * action_dim))

    def __call__(self, frame: mx.array, state: mx.array) -> mx.array:
        x = frame.astype(mx.float32) / 255.0  # (B, H, W, C): MLX convolutions are channels-last
        for conv in (self.conv1, self.conv2, self.conv3):
            x = nn.relu(conv(x))
        x = x.mean(axis=(1, 2))  # global average pool
        h = mx.concatenate([x, nn.relu(self.state_in(state))], axis=-1)
        return self.head(h).reshape(-1, self.chunk, self.action_dim)


def train(
    root: str | Path,
    steps: int = 200,
    batch_size: int = 16,
    chunk: int = 4,
    camera: str | None = None,
    seed: int = 0,
    lr: float = 1e-3,
) -> dict[str, Any]:
    """Trains the policy on ``root`` for ``steps`` steps; returns the loss curve and rates."""
    probe = rm.Dataset(root)
    fps = probe.reader.fps
    camera = camera or probe.reader.video_keys[0]
    ds = rm.Dataset(root, delta_timestamps={"action": [i / fps for i in range(chunk)]})
    state_dim = ds.reader.features["observation.state"]["shape"][0]
    action_dim = ds.reader.features["action"]["shape"][0]
    mx.random.seed(seed)
    model = Policy(state_dim, action_dim, chunk)
    optimizer = optim.Adam(learning_rate=lr)

    def loss_fn(model: Policy, frame: mx.array, state: mx.array, action: mx.array, pad: mx.array) -> mx.array:
        err = (model(frame, state) - action) ** 2  # (B, chunk, action_dim)
        keep = (~pad).astype(mx.float32)[..., None]  # padded steps past the episode's end do not count
        return (err * keep).sum() / mx.maximum(keep.sum() * action_dim, 1.0)

    step_fn = nn.value_and_grad(model, loss_fn)
    losses: list[float] = []
    stream = ds.shuffle(seed).batch(batch_size, drop_last=True).prefetch(2, 1)
    t0 = time.perf_counter()
    samples = 0
    while len(losses) < steps:
        for batch in stream:
            loss, grads = step_fn(
                model, batch[camera], batch["observation.state"], batch["action"], batch["action_is_pad"]
            )
            optimizer.update(model, grads)
            rm.eval(model.parameters(), optimizer.state, loss)
            losses.append(loss.item())
            samples += batch_size
            if len(losses) == steps:
                break
        stream.reset()
    elapsed = time.perf_counter() - t0
    k = max(1, min(10, steps // 4))
    return {
        "steps": len(losses),
        "loss_first": sum(losses[:k]) / k,
        "loss_last": sum(losses[-k:]) / k,
        "losses": losses,
        "samples_per_s": samples / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", help="a LeRobot v3.0 dataset folder")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            from roboframes.synthetic import DatasetSpec, write_dataset

            root = write_dataset(Path(tmp) / "sample", DatasetSpec(episode_lengths=(30, 25, 40, 35)))
            print(f"[mlx] wrote a sample dataset with LeRobot's writer to {root}")
        r = train(root, steps=args.steps, batch_size=args.batch_size)
    print(f"[mlx] {r['steps']} steps: loss {r['loss_first']:.3f} -> {r['loss_last']:.3f}")
    print(f"[mlx] {r['samples_per_s']:.0f} samples/s trained (decode, model and optimizer together)")


if __name__ == "__main__":
    main()
