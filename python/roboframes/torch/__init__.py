"""roboframes for PyTorch.

- ``torch.ops.roboframes.decode_frames`` / ``gather`` / ``get_batch``: native operators (Rust,
  registered through torch's stable C ABI when this package is imported), with exact fake
  kernels, usable under ``torch.compile(fullgraph=True)``. Eager wrappers with typed errors:
  :func:`decode_frames`, :func:`gather`, :func:`get_batch`.
- :class:`LeRobotDataset` / :class:`LeRobotDatasetMetadata` / :class:`EpisodeAwareSampler`:
  drop-ins for the installed LeRobot's (its line: 0.4.4 or 0.6.x, see :mod:`.lines`); both
  lines' classes are here by name (``LeRobotDataset04``, ``LeRobotDataset06``, ...).
- :func:`patch_lerobot`: makes LeRobot's own training code use them.
"""

from __future__ import annotations

from ._ops import FRAME_DTYPES, decode_frames, gather, get_batch, handle_of
from .dataset import DatasetReader06, LeRobotDataset04, LeRobotDataset06
from .lines import lerobot_line
from .metadata import (
    DatasetInfo,
    EpisodeTable,
    LeRobotDatasetMetadata04,
    LeRobotDatasetMetadata06,
)
from .patch import LeRobotPatch, patch_lerobot
from .sampler import EpisodeAwareSampler04, EpisodeAwareSampler06

#: The LeRobot API the names below follow: ``"0.4"`` or ``"0.6"`` (:func:`lerobot_line`).
LEROBOT_LINE = lerobot_line()

LeRobotDataset: type[LeRobotDataset04] | type[LeRobotDataset06]
LeRobotDatasetMetadata: type[LeRobotDatasetMetadata04] | type[LeRobotDatasetMetadata06]
EpisodeAwareSampler: type[EpisodeAwareSampler04] | type[EpisodeAwareSampler06]
if LEROBOT_LINE == "0.6":
    LeRobotDataset, LeRobotDatasetMetadata, EpisodeAwareSampler = (
        LeRobotDataset06,
        LeRobotDatasetMetadata06,
        EpisodeAwareSampler06,
    )
else:
    LeRobotDataset, LeRobotDatasetMetadata, EpisodeAwareSampler = (
        LeRobotDataset04,
        LeRobotDatasetMetadata04,
        EpisodeAwareSampler04,
    )

__all__ = [
    "FRAME_DTYPES",
    "LEROBOT_LINE",
    "DatasetInfo",
    "DatasetReader06",
    "EpisodeAwareSampler",
    "EpisodeAwareSampler04",
    "EpisodeAwareSampler06",
    "EpisodeTable",
    "LeRobotDataset",
    "LeRobotDataset04",
    "LeRobotDataset06",
    "LeRobotDatasetMetadata",
    "LeRobotDatasetMetadata04",
    "LeRobotDatasetMetadata06",
    "LeRobotPatch",
    "decode_frames",
    "gather",
    "get_batch",
    "handle_of",
    "lerobot_line",
    "patch_lerobot",
]
