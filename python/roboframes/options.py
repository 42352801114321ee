"""How a dataset is read: one definition of the options every surface shares.

:class:`ReaderOptions` holds the options of ``roboframes.Dataset`` (which ``roboframes.mlx``
and the torch drop-in read through), checks each once, and is what a dataset pickles to reopen
itself in another process. Adding an option means adding a field here and its keyword to
``roboframes.Dataset``; the other surfaces pass unknown keywords through to it. Checks here are
those of Python types (``TypeError`` for a string where numbers belong); checks of values the
core owns (the decoding thread bound, episodes that exist, windows against the fps) are the
core's, made once, at open.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _native, remote
from .errors import InvalidArgumentError

#: Element types of camera frames NumPy can hold (the core's frame types but bfloat16).
NUMPY_FRAME_DTYPES: tuple[str, ...] = tuple(d for d in _native.FRAME_DTYPES if d != "bfloat16")


def check_frame_dtype(frame_dtype: Any, output: str = "numpy") -> str:
    """``frame_dtype`` as a frame element type that ``output`` (``"numpy"``, ``"torch"`` or
    ``"mlx"``) can hold: the core's frame types (``_native.FRAME_DTYPES``), less ``bfloat16``
    for the NumPy arrays the NumPy and torch outputs are filled into; else
    ``InvalidArgumentError``. The one check of a frame type's name."""
    allowed = tuple(_native.FRAME_DTYPES) if output == "mlx" else NUMPY_FRAME_DTYPES
    if not isinstance(frame_dtype, str) or frame_dtype not in allowed:
        raise InvalidArgumentError(
            f"frame_dtype must be one of {list(allowed)} for {output} output, got {frame_dtype!r}"
        )
    return frame_dtype


#: What depth maps can be read as: LeRobot's units (float32 depth), or the stored codes.
DEPTH_OUTPUT_UNITS: tuple[str, ...] = ("mm", "m", "raw")


def check_depth_output_unit(unit: Any) -> str:
    """``unit`` as a depth output unit of :data:`DEPTH_OUTPUT_UNITS`, else
    ``InvalidArgumentError``."""
    if unit not in DEPTH_OUTPUT_UNITS:
        raise InvalidArgumentError(
            f"depth_output_unit must be 'mm' or 'm' (float32 depth, as LeRobot) or 'raw' (the stored "
            f"uint16 codes), got {unit!r}"
        )
    return str(unit)


def delta_timestamps_of(delta_timestamps: Any) -> dict[str, list[float]]:
    """``{key: [seconds, ...]}`` as str keys and float lists: ``TypeError`` for anything else (a
    string of offsets is not a list of them)."""
    if not isinstance(delta_timestamps, Mapping):
        raise TypeError(
            f"delta_timestamps must be a dict of key -> list of seconds, not {type(delta_timestamps).__name__}"
        )
    out: dict[str, list[float]] = {}
    for k, v in delta_timestamps.items():
        if isinstance(v, str | bytes) or not hasattr(v, "__iter__"):
            raise TypeError(f"delta_timestamps['{k}'] must be a list of seconds, not {type(v).__name__}")
        offsets = list(v)
        # numbers, NumPy scalars, 0-d tensors: anything with __float__ but a bool or a string
        bad = [d for d in offsets if isinstance(d, bool | str | bytes) or not hasattr(d, "__float__")]
        if bad:
            raise TypeError(f"delta_timestamps['{k}'] must hold numbers of seconds, got {bad[0]!r}")
        out[str(k)] = [float(d) for d in offsets]
    return out


def episode_list(episodes: Any) -> list[int]:
    """``episodes`` (a sequence of episode indices) as ints: ``TypeError`` for a string, floats or
    booleans (``"12"`` is not episodes 1 and 2)."""
    if isinstance(episodes, str | bytes) or not hasattr(episodes, "__iter__"):
        raise TypeError(f"episodes must be a sequence of episode indices, not {type(episodes).__name__}")
    out: list[int] = []
    for e in episodes:
        if isinstance(e, bool) or not isinstance(e, int | np.integer):
            raise TypeError(f"episode indices must be integers, not {type(e).__name__} ({e!r})")
        if not -(2**63) <= int(e) < 2**63:
            raise InvalidArgumentError(f"episode {e} is not in the dataset (beyond 64 bits)")
        out.append(int(e))
    return out


def thread_count(n: Any) -> int:
    """``n`` as a count of decoding threads the core can take (an int >= 1; the core bounds it
    from above, with its own message)."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= int(n) < 2**63:
        raise InvalidArgumentError(f"decode_threads must be a positive int, got {n!r}")
    return int(n)


#: The formats ``format=`` names (``None`` detects the format from the path).
SOURCE_FORMATS: tuple[str, ...] = ("lerobot", "hdf5", "rlds", "mcap")


def episode_spans_of(spans: Any) -> list[tuple[str, float, float]]:
    """MCAP episode spans, ``{file name: [(start_s, end_s), ...]}`` (or a list of
    ``(file name, start_s, end_s)``), as the core takes them: ``(name, start, end)`` in order."""
    items: list[tuple[Any, Any, Any]] = []
    if isinstance(spans, Mapping):
        for name, ranges in spans.items():
            if isinstance(ranges, str | bytes) or not isinstance(ranges, Sequence):
                raise TypeError(f"episode_spans[{name!r}] must be a list of (start_s, end_s) pairs")
            for r in ranges:
                if isinstance(r, str | bytes) or not isinstance(r, Sequence) or len(r) != 2:
                    raise TypeError(f"episode_spans[{name!r}] must be a list of (start_s, end_s) pairs, got {r!r}")
                items.append((name, r[0], r[1]))
    elif isinstance(spans, Sequence) and not isinstance(spans, str | bytes):
        for r in spans:
            if isinstance(r, str | bytes) or not isinstance(r, Sequence) or len(r) != 3:
                raise TypeError(f"episode_spans entries must be (file name, start_s, end_s), got {r!r}")
            items.append((r[0], r[1], r[2]))
    else:
        raise TypeError("episode_spans must map file names to lists of (start_s, end_s) pairs")
    out = []
    for name, a, b in items:
        if not isinstance(name, str):
            raise TypeError(f"episode_spans file names must be strings, got {name!r}")
        for v in (a, b):
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
                raise TypeError(f"episode_spans times must be numbers of seconds, got {v!r}")
        if not (0 <= float(a) < float(b)) or not np.isfinite(float(b)):
            raise InvalidArgumentError(
                f"episode_spans: ({a}, {b}) of {name!r} is not [start, end) with 0 <= start < end"
            )
        out.append((name, float(a), float(b)))
    return out


@dataclasses.dataclass(frozen=True)
class ReaderOptions:
    """Every option of how ``roboframes.Dataset`` reads a dataset (see its documentation for
    each), checked once when made. Frozen: :meth:`replace` makes a changed copy."""

    episodes: list[int] | None = None
    delta_timestamps: dict[str, list[float]] | None = None
    tolerance_s: float = 1e-4
    decode_threads: int | None = None
    frame_dtype: str = "uint8"
    channels_last: bool = True
    strict_decode: bool = False
    storage_options: dict[str, str] | None = None
    cache_dir: str | None = None
    block_cache_bytes: int | None = None
    depth_output_unit: str = "mm"
    format: str | None = None
    fps: float | None = None
    task: str | None = None
    key_map: str | dict[str, str] | None = None
    split: str | None = None
    topics: list[str] | None = None
    reference_topic: str | None = None
    align_tolerance_s: float | None = None
    episode_spans: list[tuple[str, float, float]] | None = None

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)  # (frozen: set once, here)

        put("depth_output_unit", check_depth_output_unit(self.depth_output_unit))
        check_frame_dtype(self.frame_dtype)
        if self.decode_threads is not None:
            put("decode_threads", thread_count(self.decode_threads))
        b = self.block_cache_bytes
        if b is not None and (isinstance(b, bool) or not isinstance(b, int | np.integer) or b < 0):
            raise InvalidArgumentError(f"block_cache_bytes must be an int >= 0, got {b!r}")
        if b is not None:
            put("block_cache_bytes", int(b))
        pairs = remote.storage_pairs(self.storage_options)  # (checks the type)
        put("storage_options", None if pairs is None else dict(pairs))
        if self.cache_dir is not None:
            if not isinstance(self.cache_dir, str | os.PathLike):
                raise TypeError(f"cache_dir must be a path, not {type(self.cache_dir).__name__}")
            put("cache_dir", os.fspath(self.cache_dir))
        if self.episodes is not None:
            put("episodes", episode_list(self.episodes))
        if self.delta_timestamps is not None:
            put("delta_timestamps", delta_timestamps_of(self.delta_timestamps))
        t = self.tolerance_s
        if isinstance(t, bool) or not isinstance(t, int | float | np.integer | np.floating):
            raise TypeError(f"tolerance_s must be a number of seconds, not {type(t).__name__}")
        put("tolerance_s", float(t))
        if not isinstance(self.strict_decode, bool | np.bool_):
            raise TypeError(f"strict_decode must be True or False, not {type(self.strict_decode).__name__}")
        put("strict_decode", bool(self.strict_decode))
        put("channels_last", bool(self.channels_last))
        if self.format is not None and self.format not in SOURCE_FORMATS:
            raise InvalidArgumentError(f"format must be one of {SOURCE_FORMATS} or None (detect), got {self.format!r}")
        f = self.fps
        if f is not None:
            if isinstance(f, bool) or not isinstance(f, int | float | np.integer | np.floating) or not f > 0:
                raise InvalidArgumentError(f"fps must be a positive number, got {f!r}")
            put("fps", float(f))
        if self.split is not None and not isinstance(self.split, str):
            raise TypeError(f"split must be a string, not {type(self.split).__name__}")
        if self.task is not None and not isinstance(self.task, str):
            raise TypeError(f"task must be a string, not {type(self.task).__name__}")
        if self.topics is not None:
            if isinstance(self.topics, str) or not all(isinstance(t, str) for t in self.topics):
                raise TypeError("topics must be a list of topic names (str)")
            put("topics", list(self.topics))
        if self.reference_topic is not None and not isinstance(self.reference_topic, str):
            raise TypeError(f"reference_topic must be a string, not {type(self.reference_topic).__name__}")
        a = self.align_tolerance_s
        if a is not None:
            if isinstance(a, bool) or not isinstance(a, int | float | np.integer | np.floating) or not a >= 0:
                raise InvalidArgumentError(f"align_tolerance_s must be a number of seconds >= 0, got {a!r}")
            put("align_tolerance_s", float(a))
        if self.episode_spans is not None:
            put("episode_spans", episode_spans_of(self.episode_spans))
        k = self.key_map
        if isinstance(k, Mapping):
            if not all(isinstance(a, str) and isinstance(b, str) for a, b in k.items()):
                raise TypeError("key_map must map source key names (str) to item names (str)")
            put("key_map", dict(k))
        elif k is not None and k != "lerobot":
            raise InvalidArgumentError(
                f"key_map must be 'lerobot', a dict of source key -> item name, or None, got {k!r}"
            )

    def replace(self, **changes: Any) -> ReaderOptions:
        """A copy with ``changes`` (checked like the original); ``TypeError`` naming an unknown
        option."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - fields
        if unknown:
            raise TypeError(f"unknown options {sorted(unknown)}; options: {sorted(fields)}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The options as ``roboframes.Dataset``'s keyword arguments."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
