"""Type stub of ``roboframes._native``, the pyo3 extension over the Rust core (checked against
the built module by ``mypy.stubtest`` in the test command)."""

from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from typing import Any, final

import numpy as np

__all__ = [
    "NativeDataset",
    "OutputSpec",
    "PendingBatch",
    "validate",
    "compute_stats",
    "episode_stats",
    "aggregate_stats",
    "open_root",
    "is_url",
    "root_options",
    "episode_files",
    "read_bytes",
    "file_exists",
    "remote_stats",
    "clear_remote_memory_cache",
    "Prefetcher",
    "register_torch_ops",
    "typed_error",
    "error_classes",
    "handle_frame_dims",
    "handle_frame_layout",
    "handle_numeric_row",
    "handle_output_specs",
    "FRAME_DTYPES",
    "CAPI",
    "CAPI_VERSION",
    "__version__",
]

__version__: str
#: The element types camera frames can be made of.
FRAME_DTYPES: list[str]
#: The versioned C function table for native extensions (a PyCapsule; see python/src/capi.rs).
CAPI: object
CAPI_VERSION: int

@final
class OutputSpec:
    """One entry of an item, in LeRobot's key order."""

    @property
    def key(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def dtype(self) -> str: ...
    @property
    def shape(self) -> list[int]: ...
    @property
    def window(self) -> int | None: ...
    @property
    def is_array(self) -> bool: ...
    @property
    def depth(self) -> str | None: ...

@final
class NativeDataset:
    def __new__(
        cls,
        root: str | PathLike[str],
        episodes: Sequence[int] | None = None,
        delta_timestamps: Mapping[str, Sequence[float]] | None = None,
        tolerance_s: float = 1e-4,
        decode_threads: int | None = None,
        strict_decode: bool = False,
        storage_options: Sequence[tuple[str, str]] | None = None,
        cache_dir: str | PathLike[str] | None = None,
        block_cache_bytes: int | None = None,
        depth_output_unit: str = "mm",
        format: str | None = None,
        fps: float | None = None,
        task: str | None = None,
        key_map: Mapping[str, str] | None = None,
        key_map_lerobot: bool = False,
        split: str | None = None,
        topics: Sequence[str] | None = None,
        reference_topic: str | None = None,
        align_tolerance_s: float | None = None,
        episode_spans: Sequence[tuple[str, float, float]] | None = None,
    ) -> NativeDataset: ...
    def handle(self) -> int: ...
    def __len__(self) -> int: ...
    def output_specs(self, frame_dtype: str = "uint8", channels_last: bool = True) -> list[OutputSpec]: ...
    def fill(
        self,
        indices: Sequence[int],
        buffers: Sequence[np.ndarray | None],
        frame_dtype: str = "uint8",
        channels_last: bool = True,
        objects: bool = True,
        normalize: Sequence[tuple[str, str, Sequence[float], Sequence[float], float]] | None = None,
    ) -> list[list[Any] | None]: ...
    @property
    def depth_output_unit(self) -> str: ...
    def frame_layout(self, camera: str, frame_dtype: str, channels_last: bool) -> tuple[list[int], str]: ...
    @property
    def decode_threads(self) -> int: ...
    def set_decode_threads(self, n: int) -> None: ...
    def set_frame_cache(self, bytes: int) -> None: ...
    def frame_cache_stats(self) -> dict[str, int] | None: ...
    def keyframe_items(self) -> list[bool]: ...
    def info_json(self) -> str: ...
    def stats_json(self) -> str | None: ...
    def tasks(self) -> dict[int, str]: ...
    def subtasks(self) -> dict[int, str] | None: ...
    def episodes(self) -> list[int]: ...
    def delta_indices(self) -> dict[str, list[int]]: ...
    def episode_table(self) -> list[dict[str, Any]]: ...
    def open_warnings(self) -> list[str]: ...
    @property
    def format(self) -> str: ...
    @property
    def fps(self) -> float: ...
    @property
    def root(self) -> str: ...
    @property
    def tolerance_s(self) -> float: ...
    @property
    def strict_decode(self) -> bool: ...

@final
class PendingBatch:
    """A batch being filled in the background (dropping it cancels the fill and waits)."""

    def wait(self) -> list[list[Any] | None]: ...
    def cancel(self) -> None: ...
    @property
    def done(self) -> bool: ...

@final
class Prefetcher:
    """Runs batch fills in submission order on a background thread of the core."""

    def __new__(cls) -> Prefetcher: ...
    def submit(
        self,
        handle: int,
        indices: Sequence[int],
        buffers: Sequence[np.ndarray | None],
        frame_dtype: str = "uint8",
        channels_last: bool = True,
        normalize: Sequence[tuple[str, str, Sequence[float], Sequence[float], float]] | None = None,
    ) -> PendingBatch: ...

def validate(
    root: str | PathLike[str],
    decode: str = "ends",
    tolerance_s: float = 1e-4,
    decode_threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    format: str | None = None,
    fps: float | None = None,
    task: str | None = None,
    key_map: Mapping[str, str] | None = None,
    key_map_lerobot: bool = False,
    split: str | None = None,
    topics: Sequence[str] | None = None,
    reference_topic: str | None = None,
    align_tolerance_s: float | None = None,
    episode_spans: Sequence[tuple[str, float, float]] | None = None,
    part: tuple[int, int] | None = None,
) -> dict[str, Any]: ...
def compute_stats(
    dataset: NativeDataset,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]: ...
def episode_stats(
    dataset: NativeDataset,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[tuple[str, bool]], list[list[dict[str, Any] | None]]]: ...
def aggregate_stats(
    keys: Sequence[tuple[str, bool]],
    episodes: Sequence[Sequence[dict[str, Any] | None]],
) -> list[dict[str, Any]]: ...
def open_root(
    root: str,
    storage_options: Sequence[tuple[str, str]] | None = None,
    cache_dir: str | PathLike[str] | None = None,
    block_cache_bytes: int | None = None,
) -> str: ...
def is_url(root: str) -> bool: ...
def root_options(location: str | PathLike[str]) -> tuple[list[tuple[str, str]], str | None] | None: ...
def episode_files(location: str | PathLike[str]) -> list[str]: ...
def read_bytes(location: str | PathLike[str]) -> bytes: ...
def file_exists(location: str | PathLike[str]) -> bool: ...
def remote_stats(location: str | PathLike[str]) -> dict[str, int] | None: ...
def clear_remote_memory_cache() -> None: ...
def register_torch_ops(libtorch_cpu: str | PathLike[str]) -> None: ...
def typed_error(text: str) -> BaseException | None: ...
def error_classes() -> list[tuple[int, str]]: ...
def handle_frame_dims(handle: int, camera: str) -> tuple[int, int, int]: ...
def handle_frame_layout(handle: int, camera: str, frame_dtype: str, channels_last: bool) -> tuple[list[int], str]: ...
def handle_numeric_row(handle: int, key: str) -> tuple[list[int], str]: ...
def handle_output_specs(handle: int, frame_dtype: str, channels_last: bool) -> list[OutputSpec]: ...
