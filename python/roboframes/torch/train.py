"""``python -m roboframes.torch.train [lerobot-train arguments]``: LeRobot 0.4.4's training
script (``lerobot-train``), unchanged, with its datasets read through roboframes
(:func:`roboframes.torch.patch_lerobot`)."""

from __future__ import annotations

import logging

from .patch import patch_lerobot

logger = logging.getLogger(__name__)


def main() -> None:
    """Patches LeRobot, then runs ``lerobot.scripts.lerobot_train.main`` on ``sys.argv``."""
    patch_lerobot()
    from lerobot.datasets import factory
    from lerobot.utils.utils import init_logging

    # LeRobot's console logging, which lerobot-train sets up itself later (again, idempotently)
    init_logging()
    cls = factory.LeRobotDataset
    logger.info("LeRobot's make_dataset builds %s.%s", cls.__module__, cls.__qualname__)
    from lerobot.scripts.lerobot_train import main as lerobot_train_main

    lerobot_train_main()


if __name__ == "__main__":
    main()
