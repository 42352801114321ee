"""Exceptions raised by roboframes.

Every exception derives from :class:`Error` and carries the ``path``, ``episode`` and ``key``
it concerns (each ``None`` when unknown). Where LeRobot raises a ``ValueError`` (bad
``delta_timestamps``, frames outside tolerance) ours is a ``ValueError`` subclass too.
"""

from __future__ import annotations

import re
from typing import Any


class Error(Exception):
    """Base class of every roboframes error.

    Args:
        message: What went wrong, naming the file, episode and key where known.
        path: The file concerned, if any.
        episode: The episode index concerned, if any.
        key: The feature key concerned, if any.
    """

    def __init__(
        self, message: str = "", path: str | None = None, episode: int | None = None, key: str | None = None
    ) -> None:
        # one argument only: OSError subclasses would read several as (errno, strerror, ...)
        super().__init__(message)
        self.path = path
        self.episode = episode
        self.key = key


class DatasetNotFoundError(Error, FileNotFoundError):
    """The dataset root, or a file its metadata references, does not exist."""


class FileReadError(Error, OSError):
    """A file exists but could not be read."""


class RemoteError(FileReadError):
    """A remote store could not serve a file: retries spent on timeouts, dropped connections or
    429/5xx answers, a server that ignores ``Range`` requests, or an object that changed while
    it was being read (open the dataset again to read the new version)."""


class MetadataError(Error, ValueError):
    """Metadata is malformed, lacks a column, or disagrees with the data files."""


class ParquetError(Error):
    """A parquet file is corrupt, truncated or has an unexpected schema."""


class VideoDecodeError(Error):
    """A video file is corrupt or truncated, or could not be decoded."""


class UnsupportedCodecError(VideoDecodeError):
    """The video stream's codec cannot be decoded by this FFmpeg."""


class ImageDecodeError(Error):
    """An embedded image (PNG/JPEG bytes in the parquet) could not be decoded."""


class SourceFormatError(Error):
    """A file of another format than LeRobot's (an HDF5 file of ALOHA or robomimic/LIBERO
    episodes) is unreadable, has a layout roboframes does not recognise, or holds values it
    cannot convert; the message names the file, the group and the key."""


class FrameTimestampError(Error, ValueError):
    """No video frame lies within ``tolerance_s`` of a requested time (LeRobot's rule)."""


class DeltaTimestampsError(Error, ValueError):
    """``delta_timestamps`` are not multiples of ``1/fps`` within tolerance, or name unknown keys."""


class IndexOutOfRangeError(Error, IndexError):
    """An item index outside ``[-len, len)``."""


class InvalidArgumentError(Error, ValueError):
    """An argument is invalid (unknown episode, negative tolerance, ...)."""


class DeviceUnavailableError(Error, RuntimeError):
    """``device=`` names a device this machine's PyTorch cannot use (``"cuda"`` without a GPU
    or with a CPU-only PyTorch, an index past the last GPU). ``device="auto"`` never raises it."""


class InternalError(Error, RuntimeError):
    """A fault inside roboframes, caused neither by the data nor by the arguments (a broken
    invariant, a poisoned lock, a caught panic); the message names the operation. Please
    report it."""


__all__ = [
    "Error",
    "DatasetNotFoundError",
    "FileReadError",
    "RemoteError",
    "MetadataError",
    "ParquetError",
    "VideoDecodeError",
    "UnsupportedCodecError",
    "ImageDecodeError",
    "SourceFormatError",
    "FrameTimestampError",
    "DeltaTimestampsError",
    "IndexOutOfRangeError",
    "InvalidArgumentError",
    "DeviceUnavailableError",
    "InternalError",
]


class ValidationError(Error, ValueError):
    """``ValidationReport.raise_if_errors()``: the dataset has errors; ``report`` holds them all."""

    report: Any = None


class MetadataWarning(UserWarning):
    """Metadata that is stale but not wrong enough to refuse (a summary field of ``info.json``,
    such as ``total_frames``, that the episode table supersedes): the dataset opens, reads by
    the episode table, and ``roboframes validate`` reports it."""


#: ``[ClassName#id] message`` (the id is absent from the MLX extension's own argument checks).
_CROSSED = re.compile(r"^\s*\[(\w+)(?:#\d+)?\] (.*)$", re.DOTALL)


def from_native(e: BaseException) -> BaseException:
    """The ``roboframes.errors`` exception behind an error that crossed a native boundary as
    text (a torch operator's or an MLX evaluation's ``RuntimeError``, whose message starts with
    ``[ClassName#id]``): the core's own, with its ``path``, ``episode`` and ``key``, while it is
    kept; else the class named, with the message; else ``e`` itself."""
    from . import _native  # (the native module imports this one)

    text = str(e)
    typed = _native.typed_error(text)
    if isinstance(typed, Error):
        return typed
    m = _CROSSED.match(text)
    cls = globals().get(m.group(1)) if m else None
    if m is None or not (isinstance(cls, type) and issubclass(cls, Error)):
        return e
    return cls(m.group(2))
