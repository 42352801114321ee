"""roboframes: fast LeRobot dataset loading with a Rust core and in-process FFmpeg decode."""

from __future__ import annotations

from . import errors
from ._native import __version__
from .dataset import Dataset
from .errors import Error, FrameTimestampError
from .sampling import GopShuffleSampler

__all__ = ["Dataset", "Error", "FrameTimestampError", "GopShuffleSampler", "errors", "__version__"]
