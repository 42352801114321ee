"""A resumable DistributedDataParallel training run fed by ``roboframes.Dataset.loader``.

    torchrun --nproc_per_node 2 examples/train_ddp_resumable.py data/sample --checkpoint ckpt/run1

Every rank reads its own shard of each epoch (the loader takes rank and world size from
``torch.distributed``); batches are decoded ahead on the core's threads while the step runs.
Every ``--checkpoint-every`` steps rank 0 writes the model, the optimiser and the loader's
position (``loader.state_dict()``, a few numbers) to ``--checkpoint`` atomically. Start the
same command again after a crash or pre-emption (even a SIGKILL) and it continues from the
last checkpoint with exactly the batches the interrupted run would have read next, on every
rank. The policy is a small MLP from the state to a chunk of future actions (ACT-style action
windows, LeRobot's ``delta_timestamps``); it uses the GPU with NCCL when there is one, else the
CPU with gloo.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import roboframes


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="LeRobot v3.0 dataset root")
    ap.add_argument("--checkpoint", type=Path, required=True, help="checkpoint directory (resumed from when present)")
    ap.add_argument("--steps", type=int, default=200, help="total optimiser steps")
    ap.add_argument("--checkpoint-every", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=16, help="per rank")
    ap.add_argument("--chunk", type=int, default=4, help="future actions predicted per sample")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--record", type=Path, default=None, help="write each rank's batches and weights here (tests)")
    return ap.parse_args()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Writes ``state`` so that a crash mid-write never leaves a torn checkpoint."""
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / "state.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path / "state.pt")


def main() -> None:
    args = parse_args()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu")
    torch.manual_seed(args.seed)

    probe = roboframes.Dataset(args.root)
    fps = probe.fps
    ds = roboframes.Dataset(args.root, delta_timestamps={"action": [i / fps for i in range(args.chunk)]})
    # rank and world size come from torch.distributed; a new permutation every epoch; batches
    # arrive on this rank's device (copied from pinned buffers on a GPU)
    loader = ds.loader(args.batch_size, shuffle=True, seed=args.seed, output="torch", device=device, prefetch=2)
    state_dim = ds.features["observation.state"]["shape"][0]
    action_dim = ds.features["action"]["shape"][0]
    model = torch.nn.Sequential(
        torch.nn.Linear(state_dim, 64), torch.nn.ReLU(), torch.nn.Linear(64, args.chunk * action_dim)
    ).to(device)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)

    step = 0
    ckpt = args.checkpoint / "state.pt"
    if ckpt.exists():
        saved = torch.load(ckpt, map_location=device)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        loader.load_state_dict(json.loads(saved["loader"]))  # every rank is at the same position
        step = saved["step"]
        if rank == 0:
            print(f"resumed at step {step} (epoch {loader.epoch}, batch {loader.position} of {len(loader)})")

    record: list[dict[str, Any]] = []
    while step < args.steps:
        for batch in loader:
            state = batch["observation.state"]
            target = batch["action"]  # (B, chunk, action_dim)
            pred = ddp(state).view(-1, args.chunk, action_dim)
            loss = torch.nn.functional.mse_loss(pred, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if args.record is not None:
                record.append({"step": step, "epoch": loader.epoch, "index": batch["index"].tolist()})
            if step % args.checkpoint_every == 0 and rank == 0:
                save_checkpoint(
                    args.checkpoint,
                    {
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "step": step,
                        "loader": json.dumps(loader.state_dict()),
                    },
                )
            if rank == 0 and step % 10 == 0:
                print(f"step {step}: loss {loss.item():.4f}", flush=True)
            if step == args.steps:
                break
    if args.record is not None:
        weights = [p.detach().double().sum().item() for p in model.parameters()]
        out = {"record": record, "world": loader.world_size, "batches": len(loader), "weights": weights}
        args.record.with_name(f"{args.record.name}.rank{rank}.json").write_text(json.dumps(out))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
