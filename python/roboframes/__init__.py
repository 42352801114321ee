"""roboframes: fast LeRobot dataset loading with a Rust core and in-process FFmpeg decode."""

from __future__ import annotations

from . import errors
from ._native import __version__
from .dataset import Dataset
from .errors import Error, FrameTimestampError

__all__ = ["Dataset", "Error", "FrameTimestampError", "errors", "__version__"]
