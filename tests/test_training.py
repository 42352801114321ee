"""A real client: LeRobot 0.4.4's own training loop (``lerobot.scripts.lerobot_train.train``:
policy factory, processors, optimizer, DataLoader with workers) trains a small ACT policy on a
dataset written by LeRobot's writer, reading it through roboframes; the loss goes down."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("lerobot.scripts.lerobot_train")

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_lerobot.py"


def load_example():
    spec = importlib.util.spec_from_file_location("train_lerobot", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lerobot_trains_act_through_roboframes(dataset_dir) -> None:
    example = load_example()
    r = example.train(dataset_dir("av1"), steps=40, batch_size=4, num_workers=2, repo_id="roboframes/av1")
    # LeRobot's make_dataset built our dataset, with ACT's action window
    assert r["dataset_class"] == "roboframes.torch.dataset.LeRobotDataset04"
    assert list(r["delta_timestamps"]) == ["action"] and len(r["delta_timestamps"]["action"]) == 16
    losses = r["losses"]
    assert len(losses) == 40 and all(x == x for x in losses)  # every step ran, no NaN
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, losses


def test_lerobot_train_cli_through_roboframes(dataset_dir, tmp_path: Path) -> None:
    """``python -m roboframes.torch.train`` is LeRobot's ``lerobot-train`` command line."""
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "roboframes.torch.train",
        "--dataset.repo_id=roboframes/av1",
        f"--dataset.root={dataset_dir('av1')}",
        "--policy.type=act",
        "--policy.device=cpu",
        "--policy.push_to_hub=false",
        "--policy.pretrained_backbone_weights=null",
        "--policy.chunk_size=4",
        "--policy.n_action_steps=4",
        "--steps=3",
        "--batch_size=2",
        "--num_workers=0",
        "--save_checkpoint=false",
        "--eval_freq=0",
        "--log_freq=1",
        f"--output_dir={tmp_path / 'run'}",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "make_dataset builds roboframes.torch.dataset.LeRobotDataset04" in out
    assert "step:3 " in out and "End of training" in out
