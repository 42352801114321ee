"""roboframes for PyTorch.

- ``torch.ops.roboframes.decode_frames`` / ``gather`` / ``get_batch``: native operators (Rust,
  registered through torch's stable C ABI when this package is imported), with exact fake
  kernels, usable under ``torch.compile(fullgraph=True)``. Eager wrappers with typed errors:
  :func:`decode_frames`, :func:`gather`, :func:`get_batch`.
- :class:`LeRobotDataset` / :class:`LeRobotDatasetMetadata`: drop-ins for LeRobot 0.4.4's.
- :func:`patch_lerobot`: makes LeRobot's own training code use them.
"""

from __future__ import annotations

from ._ops import FRAME_DTYPES, decode_frames, gather, get_batch, handle_of
from .dataset import LeRobotDataset
from .metadata import EpisodeTable, LeRobotDatasetMetadata
from .patch import LeRobotPatch, patch_lerobot
from .sampler import EpisodeAwareSampler

__all__ = [
    "FRAME_DTYPES",
    "EpisodeAwareSampler",
    "EpisodeTable",
    "LeRobotDataset",
    "LeRobotDatasetMetadata",
    "LeRobotPatch",
    "decode_frames",
    "gather",
    "get_batch",
    "handle_of",
    "patch_lerobot",
]
