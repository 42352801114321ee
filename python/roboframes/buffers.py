"""Output arrays of batches: reused once their caller lets go of them, and string entries
shaped per item. Shared by the NumPy reader and the loader."""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np

from ._native import OutputSpec


class BufferPool:
    """Output arrays of earlier batches, reused once nothing outside refers to them.

    Writing into fresh memory costs a page fault per 4 KiB page (as much as decoding, for
    large frames); reusing a batch's arrays after the caller has dropped them avoids it. An
    array is reused only when this list holds the one reference left (a view, a
    ``torch.from_numpy`` tensor, a container or an exported buffer all keep theirs), so a
    reused array is never visible to anyone. The reference count of an unreferenced array is
    measured once (interpreters differ in the references a local variable takes), and reuse
    is off where counts cannot be trusted (free-threaded builds). At most ``limit`` arrays
    are kept.
    """

    def __init__(self, limit: int) -> None:
        self.arrays: list[np.ndarray] = []
        self.limit = limit
        self.lock = threading.Lock()
        gil = getattr(sys, "_is_gil_enabled", lambda: True)()
        self.arrays.append(np.empty(1))
        self.unreferenced = self._refs(0) if gil else -1  # -1: never reuse
        self.arrays.clear()

    def _refs(self, i: int) -> int:
        # the same call (no array held by the caller) when calibrating and when checking
        a = self.arrays[i]
        return sys.getrefcount(a)

    def _fits(self, i: int, shape: tuple[int, ...], dtype: np.dtype) -> bool:
        a = self.arrays[i]
        return a.shape == shape and a.dtype == dtype and a.flags.writeable and a.flags.c_contiguous

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        with self.lock:
            for i in range(len(self.arrays)):
                if self._refs(i) <= self.unreferenced and self._fits(i, shape, dtype):
                    return self.arrays.pop(i)
        return np.empty(shape, dtype=dtype)

    def keep(self, arrays: list[np.ndarray | None]) -> None:
        with self.lock:
            self.arrays.extend(a for a in arrays if a is not None)
            del self.arrays[: max(0, len(self.arrays) - self.limit)]


def per_item(spec: OutputSpec, strings: list[Any], b: int) -> list[Any]:
    """The ``b * T`` strings the core returns for a string feature windowed over ``T`` steps
    as ``b`` lists of ``T``; other entries that are not arrays (strings, language values) as
    they are (one per item)."""
    t = spec.window
    if spec.kind != "string" or t is None:
        return strings
    return [strings[i * t : (i + 1) * t] for i in range(b)]
