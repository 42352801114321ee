"""The ``torch.ops.roboframes`` operators: registered from Rust through torch's stable C ABI
when this module is imported, with exact fake kernels for ``torch.compile``.

The kernels live in the Rust extension (``roboframes._native``); this module only tells it
where the loaded libtorch is and registers the fake (meta) kernels, which compute output shapes
from the arguments and the metadata of the dataset a handle names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from .. import _native, errors
from ..dataset import Dataset
from .device import DeviceLike, resolve_device

__all__ = ["decode_frames", "gather", "get_batch", "handle_of", "frame_dtype_name", "torch_dtype", "FRAME_DTYPES"]

#: Frame element types the operators produce, with the core's names.
FRAME_DTYPES: dict[torch.dtype, str] = {getattr(torch, name): name for name in _native.FRAME_DTYPES}


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of one of the core's element type names (``float32``, ``bool``, ...)."""
    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype), name
    return dtype


def _libtorch_cpu() -> str:
    """Path of the libtorch_cpu library that ``import torch`` loaded."""
    lib = Path(torch.__file__).resolve().parent / "lib"
    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib"):
        if (lib / name).exists():
            return str(lib / name)
    raise ImportError(f"roboframes.torch: no libtorch_cpu library in {lib}")


_native.register_torch_ops(_libtorch_cpu())


def frame_dtype_name(dtype: torch.dtype) -> str:
    """The core's name of a frame dtype; ``ValueError`` for dtypes frames cannot have."""
    try:
        return FRAME_DTYPES[dtype]
    except KeyError:
        raise ValueError(f"frame dtype must be one of {list(FRAME_DTYPES)}, got {dtype}") from None


def _check_index(t: torch.Tensor, name: str) -> None:
    torch._check(t.dim() == 1, lambda: f"{name} must be a 1-D tensor, got {t.dim()} dimensions")


@torch.library.register_fake("roboframes::decode_frames")
def _decode_frames_fake(
    dataset: int,
    camera: str,
    episode_index: torch.Tensor,
    timestamp: torch.Tensor,
    frame_dtype: torch.dtype,
    channels_last: bool,
) -> torch.Tensor:
    _check_index(episode_index, "episode_index")
    _check_index(timestamp, "timestamp")
    # (a depth map's frames hold what its dataset reads depth as, whatever frame_dtype says)
    shape, dtype = _native.handle_frame_layout(dataset, camera, frame_dtype_name(frame_dtype), channels_last)
    n = episode_index.shape[0]
    # on the input's device: run as the Meta kernel, a fake must not allocate real memory
    return torch.empty((n, *shape), dtype=torch_dtype(dtype), device=episode_index.device)


@torch.library.register_fake("roboframes::gather")
def _gather_fake(
    dataset: int, key: str, indices: torch.Tensor, offsets: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    _check_index(indices, "indices")
    row, dtype = _native.handle_numeric_row(dataset, key)
    n, t = indices.shape[0], len(offsets)
    values = torch.empty((n, t, *row), dtype=torch_dtype(dtype), device=indices.device)
    return values, torch.empty((n, t), dtype=torch.bool, device=indices.device)


@torch.library.register_fake("roboframes::get_batch")
def _get_batch_fake(
    dataset: int, indices: torch.Tensor, frame_dtype: torch.dtype, channels_last: bool
) -> list[torch.Tensor]:
    _check_index(indices, "indices")
    b = indices.shape[0]
    specs = _native.handle_output_specs(dataset, frame_dtype_name(frame_dtype), channels_last)
    return [
        torch.empty((b, *spec.shape), dtype=torch_dtype(spec.dtype), device=indices.device)
        for spec in specs
        if spec.is_array
    ]


# CUDA index tensors: the CPU kernel on their values, its outputs copied to their device (the
# fake kernels above already put the outputs there). Decoding is the CPU's; the copy is the
# only work on the GPU.
@torch.library.impl("roboframes::decode_frames", "CUDA")
def _decode_frames_cuda(
    dataset: int,
    camera: str,
    episode_index: torch.Tensor,
    timestamp: torch.Tensor,
    frame_dtype: torch.dtype,
    channels_last: bool,
) -> torch.Tensor:
    frames: torch.Tensor = torch.ops.roboframes.decode_frames(
        dataset, camera, episode_index.cpu(), timestamp.cpu(), frame_dtype, channels_last
    )
    return frames.to(episode_index.device)


@torch.library.impl("roboframes::gather", "CUDA")
def _gather_cuda(
    dataset: int, key: str, indices: torch.Tensor, offsets: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    values, pads = torch.ops.roboframes.gather(dataset, key, indices.cpu(), offsets)
    return values.to(indices.device), pads.to(indices.device)


@torch.library.impl("roboframes::get_batch", "CUDA")
def _get_batch_cuda(
    dataset: int, indices: torch.Tensor, frame_dtype: torch.dtype, channels_last: bool
) -> list[torch.Tensor]:
    tensors = torch.ops.roboframes.get_batch(dataset, indices.cpu(), frame_dtype, channels_last)
    return [t.to(indices.device) for t in tensors]


T = TypeVar("T")


def _typed_errors(call: Callable[..., T], *args: Any) -> T:
    """Runs an operator; a roboframes failure is re-raised as its ``roboframes.errors`` class
    (``FrameTimestampError`` is a ``ValueError``, ...) instead of torch's ``RuntimeError``."""
    try:
        return call(*args)
    except RuntimeError as e:
        typed = errors.from_native(e)
        if typed is e:
            raise
        raise typed from None


def handle_of(dataset: Dataset | int) -> int:
    """The operator handle of a ``roboframes.Dataset`` (integers are returned as they are)."""
    if isinstance(dataset, int):
        return dataset
    if isinstance(dataset, Dataset):
        return dataset.handle
    handle = getattr(dataset, "handle", None)
    if isinstance(handle, int):
        return handle
    raise TypeError(f"expected a roboframes dataset or handle, got {type(dataset).__name__}")


def _as_1d(x: Any, dtype: torch.dtype, device: DeviceLike) -> torch.Tensor:
    """``x`` as a 1-D tensor of ``dtype``, on ``device`` when one is given (an operator's
    outputs are on its index tensors' device)."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    t = t.reshape(-1).to(dtype)
    return t if device is None else t.to(resolve_device(device))


def decode_frames(
    dataset: Dataset | int,
    camera: str,
    episode_index: torch.Tensor | Sequence[int],
    timestamp: torch.Tensor | Sequence[float],
    *,
    frame_dtype: torch.dtype = torch.uint8,
    channels_last: bool = True,
    device: DeviceLike = None,
) -> torch.Tensor:
    """Frames of ``camera`` at ``timestamp[i]`` seconds into episode ``episode_index[i]``.

    ``timestamp`` is LeRobot's per-frame ``timestamp`` (time within the episode). Returns
    ``(N, H, W, 3)`` (``channels_last``) or ``(N, 3, H, W)`` of ``frame_dtype``: ``uint8`` as decoded,
    or ``float32``/``float16``/``bfloat16`` holding ``value / 255``. A depth map's frames are
    ``(N, H, W, 1)`` / ``(N, 1, H, W)`` of what its dataset reads depth as (float32 millimetres
    or metres, or uint16 codes: ``depth_output_unit``), whatever ``frame_dtype``. The defaults
    are the decoder's own bytes (no conversion; 4x smaller than float32 to move to a GPU);
    :func:`get_batch` defaults to LeRobot's item format instead, since it reads items. Eager wrapper of
    ``torch.ops.roboframes.decode_frames`` with typed errors; call the operator itself inside
    ``torch.compile``. The frames are on ``device`` (as :class:`roboframes.Loader`'s ``device=``),
    by default on ``episode_index``'s device: the operators decode on the CPU and copy their
    outputs to the device of CUDA index tensors.
    """
    frames: torch.Tensor = _typed_errors(
        torch.ops.roboframes.decode_frames,
        handle_of(dataset),
        camera,
        _as_1d(episode_index, torch.int64, device),
        _as_1d(timestamp, torch.float64, device),
        frame_dtype,
        channels_last,
    )
    return frames


def gather(
    dataset: Dataset | int,
    key: str,
    indices: torch.Tensor | Sequence[int],
    offsets: Sequence[int],
    *,
    device: DeviceLike = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Numeric feature ``key`` at frame ``offsets`` around each item of ``indices``.

    Offsets are clamped to the item's episode as LeRobot does. Returns ``values`` of shape
    ``(N, T, *feature_shape)`` (``(N, T)`` for scalar features) and ``is_pad`` ``(N, T)`` bool,
    on ``device`` (default: ``indices``' device).
    """
    values_and_pads: tuple[torch.Tensor, torch.Tensor] = _typed_errors(
        torch.ops.roboframes.gather,
        handle_of(dataset),
        key,
        _as_1d(indices, torch.int64, device),
        [int(o) for o in offsets],
    )
    return values_and_pads


def get_batch(
    dataset: Dataset | int,
    indices: torch.Tensor | Sequence[int],
    *,
    frame_dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    device: DeviceLike = None,
) -> list[torch.Tensor]:
    """Every tensor entry of the items at ``indices``, stacked, in the dataset's key order
    (entries that are not arrays, such as ``task`` or language columns, are left out); one
    native call for the whole batch.

    Frames default to what LeRobot's items hold (``float32`` ``(N, 3, H, W)`` in ``[0, 1]``),
    since a batch is a batch of items; :func:`decode_frames` defaults to what the decoder gives
    (``uint8`` ``(N, H, W, 3)``), since it reads frames, not items. The tensors are on ``device``
    (default: ``indices``' device)."""
    tensors: list[torch.Tensor] = _typed_errors(
        torch.ops.roboframes.get_batch,
        handle_of(dataset),
        _as_1d(indices, torch.int64, device),
        frame_dtype,
        channels_last,
    )
    return tensors
