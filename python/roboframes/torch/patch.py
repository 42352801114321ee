"""``patch_lerobot()``: one line that makes LeRobot's own training code read through roboframes."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from .dataset import LeRobotDataset04, LeRobotDataset06
from .lines import lerobot_line
from .metadata import LeRobotDatasetMetadata04, LeRobotDatasetMetadata06
from .sampler import EpisodeAwareSampler04, EpisodeAwareSampler06


def _targets(line: str, sampler: bool) -> list[tuple[str, str, Any]]:
    """The (module, attribute, replacement) triples ``patch_lerobot`` installs for a LeRobot
    line: the factory's dataset and metadata classes, and the sampler where the training script
    finds it."""
    if line == "0.6":
        out: list[tuple[str, str, Any]] = [
            ("lerobot.datasets.factory", "LeRobotDataset", LeRobotDataset06),
            ("lerobot.datasets.factory", "LeRobotDatasetMetadata", LeRobotDatasetMetadata06),
        ]
        if sampler:
            # lerobot-train imports it from the package (`from lerobot.datasets import ...`)
            out += [
                ("lerobot.datasets.sampler", "EpisodeAwareSampler", EpisodeAwareSampler06),
                ("lerobot.datasets", "EpisodeAwareSampler", EpisodeAwareSampler06),
                ("lerobot.scripts.lerobot_train", "EpisodeAwareSampler", EpisodeAwareSampler06),
            ]
        return out
    out = [
        ("lerobot.datasets.factory", "LeRobotDataset", LeRobotDataset04),
        ("lerobot.datasets.factory", "LeRobotDatasetMetadata", LeRobotDatasetMetadata04),
    ]
    if sampler:
        out += [
            ("lerobot.datasets.sampler", "EpisodeAwareSampler", EpisodeAwareSampler04),
            ("lerobot.scripts.lerobot_train", "EpisodeAwareSampler", EpisodeAwareSampler04),
        ]
    return out


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
    """Makes LeRobot's training code (``lerobot-train``, ``make_dataset`` /
    ``make_train_eval_datasets``) read datasets through roboframes: ``lerobot.datasets.factory``
    builds ``roboframes.torch``'s ``LeRobotDataset`` and ``LeRobotDatasetMetadata`` of the
    installed LeRobot's line (0.4.4: :class:`LeRobotDataset04`; 0.6.x: :class:`LeRobotDataset06`).

    With ``sampler=True`` LeRobot's ``EpisodeAwareSampler`` is replaced by the line's
    (0.4: :class:`EpisodeAwareSampler04`, which also gives valid indices for
    ``--dataset.episodes`` subsets; 0.6: :class:`EpisodeAwareSampler06`, LeRobot's order and
    state, resumable mid-epoch). LeRobot's recording
    (``lerobot.datasets.lerobot_dataset.LeRobotDataset``) is left alone. Call it before
    ``train()``; modules imported later see the replacements too.
    """
    import importlib

    saved: list[tuple[Any, str, Any]] = []
    for module_name, name, replacement in _targets(lerobot_line(), sampler):
        if module_name == "lerobot.scripts.lerobot_train" and module_name not in sys.modules:
            continue  # it imports the (patched) sampler module's attribute when loaded
        module = importlib.import_module(module_name)
        saved.append((module, name, getattr(module, name)))
        setattr(module, name, replacement)
    return LeRobotPatch(saved)
