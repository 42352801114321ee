"""``python -m roboframes.torch.train [lerobot-train arguments]``: LeRobot 0.4.4's training
script (``lerobot-train``), unchanged, with its datasets read through roboframes
(:func:`roboframes.torch.patch_lerobot`)."""

from __future__ import annotations

from .patch import patch_lerobot


def main() -> None:
    """Patches LeRobot, then runs ``lerobot.scripts.lerobot_train.main`` on ``sys.argv``."""
    patch_lerobot()
    from lerobot.datasets import factory

    print(f"[roboframes] LeRobot's make_dataset builds {factory.LeRobotDataset.__module__}.{factory.LeRobotDataset.__qualname__}", flush=True)
    from lerobot.scripts.lerobot_train import main as lerobot_train_main

    lerobot_train_main()


if __name__ == "__main__":
    main()
