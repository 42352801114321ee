"""Exceptions raised by roboframes.

Every exception derives from :class:`Error` and carries the ``path``, ``episode`` and ``key``
it concerns (each ``None`` when unknown). Where LeRobot raises a ``ValueError`` (bad
``delta_timestamps``, frames outside tolerance) ours is a ``ValueError`` subclass too.
"""

from __future__ import annotations


class Error(Exception):
    """Base class of every roboframes error."""

    path: str | None = None
    episode: int | None = None
    key: str | None = None


class DatasetNotFoundError(Error, FileNotFoundError):
    """The dataset root, or a file its metadata references, does not exist."""


class FileReadError(Error, OSError):
    """A file exists but could not be read."""


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


class FrameTimestampError(Error, ValueError):
    """No video frame lies within ``tolerance_s`` of a requested time (LeRobot's rule)."""


class DeltaTimestampsError(Error, ValueError):
    """``delta_timestamps`` are not multiples of ``1/fps`` within tolerance, or name unknown keys."""


class IndexOutOfRangeError(Error, IndexError):
    """An item index outside ``[-len, len)``."""


class InvalidArgumentError(Error, ValueError):
    """An argument is invalid (unknown episode, negative tolerance, ...)."""


__all__ = [
    "Error",
    "DatasetNotFoundError",
    "FileReadError",
    "MetadataError",
    "ParquetError",
    "VideoDecodeError",
    "UnsupportedCodecError",
    "ImageDecodeError",
    "FrameTimestampError",
    "DeltaTimestampsError",
    "IndexOutOfRangeError",
    "InvalidArgumentError",
]
