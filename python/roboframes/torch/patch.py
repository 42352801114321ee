"""``patch_lerobot()``: one line that makes LeRobot's own training code read through roboframes."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from .dataset import LeRobotDataset
from .metadata import LeRobotDatasetMetadata
from .sampler import EpisodeAwareSampler

# (module, attribute, replacement) pairs installed by patch_lerobot
_TARGETS: list[tuple[str, str, Any]] = [
    ("lerobot.datasets.factory", "LeRobotDataset", LeRobotDataset),
    ("lerobot.datasets.factory", "LeRobotDatasetMetadata", LeRobotDatasetMetadata),
]
_SAMPLER_TARGETS: list[tuple[str, str, Any]] = [
    ("lerobot.datasets.sampler", "EpisodeAwareSampler", EpisodeAwareSampler),
    ("lerobot.scripts.lerobot_train", "EpisodeAwareSampler", EpisodeAwareSampler),
]


class LeRobotPatch:
    """The replacements made by :func:`patch_lerobot`; ``undo()`` (or leaving the ``with``
    block) restores LeRobot's originals."""

    def __init__(self, saved: list[tuple[Any, str, Any]]) -> None:
        self._saved = saved

    def undo(self) -> None:
        """Restores every replaced attribute, also in modules that imported a replacement
        after the patch (``lerobot.scripts.lerobot_train`` binds the sampler on import)."""
        for module, name, original in reversed(self._saved):
            for other in list(sys.modules.values()):
                if other is not module and getattr(other, "__name__", "").startswith("lerobot."):
                    if getattr(other, name, None) is getattr(module, name):
                        setattr(other, name, original)
            setattr(module, name, original)
        self._saved = []

    def __enter__(self) -> LeRobotPatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.undo()


def patch_lerobot(sampler: bool = True) -> LeRobotPatch:
    """Makes LeRobot 0.4.4's training code (``lerobot-train``, ``make_dataset``) read datasets
    through roboframes: ``lerobot.datasets.factory`` builds :class:`LeRobotDataset` and
    :class:`LeRobotDatasetMetadata` from ``roboframes.torch``.

    With ``sampler=True`` LeRobot's ``EpisodeAwareSampler`` (used for policies that drop the
    last frames of episodes, e.g. diffusion) is replaced by :class:`EpisodeAwareSampler`, which
    also gives valid indices for ``--dataset.episodes`` subsets. LeRobot's recording
    (``lerobot.datasets.lerobot_dataset.LeRobotDataset``) is left alone. Call it before
    ``train()``; modules imported later see the replacements too.
    """
    import importlib

    saved: list[tuple[Any, str, Any]] = []
    targets = _TARGETS + (_SAMPLER_TARGETS if sampler else [])
    for module_name, name, replacement in targets:
        if module_name == "lerobot.scripts.lerobot_train" and module_name not in sys.modules:
            continue  # it imports the (patched) sampler module's attribute when loaded
        module = importlib.import_module(module_name)
        saved.append((module, name, getattr(module, name)))
        setattr(module, name, replacement)
    return LeRobotPatch(saved)
