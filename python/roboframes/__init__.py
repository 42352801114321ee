"""roboframes: fast LeRobot dataset loading with a Rust core and in-process FFmpeg decode."""

from __future__ import annotations

import re


def _load_native() -> None:
    """Imports the native extension; when a shared library it links (FFmpeg's) is missing,
    says which one and how to install it instead of the loader's bare message (the same for
    libhdf5, which HDF5 sources read through, and libturbojpeg, which decodes JPEG)."""
    try:
        from . import _native  # noqa: F401
    except ImportError as e:
        missing = re.search(
            r"\b(lib(?:avcodec|avformat|avutil|avfilter|avdevice|swscale|swresample|postproc)[\w.\-]*)", str(e)
        )
        other = re.search(r"\b((libhdf5|libturbojpeg)[\w.\-]*)", str(e))
        if missing is None and other is not None:
            package = {"libhdf5": ("libhdf5-dev", "hdf5"), "libturbojpeg": ("libturbojpeg0-dev", "jpeg-turbo")}
            apt, brew = package[other.group(2)]
            raise ImportError(
                f"roboframes needs the shared library {other.group(1)}, which could not be loaded ({e}): "
                f"install it, e.g. `apt-get install {apt}` (or its runtime package) on Debian/Ubuntu or "
                f"`brew install {brew}` on macOS, or rebuild roboframes against the version you have."
            ) from e
        if missing is None:
            raise
        raise ImportError(
            f"roboframes needs FFmpeg's shared libraries, and {missing.group(1)} could not be loaded ({e}). "
            "roboframes uses the system's FFmpeg, of the major version it was built against "
            f"({missing.group(1)}): install it, e.g. `apt-get install ffmpeg` on Debian/Ubuntu, "
            "`brew install ffmpeg` on macOS or `conda install ffmpeg`, or rebuild roboframes against "
            "the FFmpeg you have (`pip install ./python` with its development packages present)."
        ) from e


_load_native()

from . import errors, remote  # noqa: E402
from ._native import __version__  # noqa: E402
from .dataset import Dataset  # noqa: E402
from .errors import Error, FrameTimestampError  # noqa: E402
from .loader import Loader  # noqa: E402
from .sampler import GopShuffleSampler  # noqa: E402
from .tools import ValidationReport, compute_stats, validate  # noqa: E402

__all__ = [
    "Dataset",
    "Error",
    "FrameTimestampError",
    "GopShuffleSampler",
    "Loader",
    "ValidationReport",
    "compute_stats",
    "errors",
    "remote",
    "validate",
    "__version__",
]
