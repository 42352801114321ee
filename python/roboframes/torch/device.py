"""Where torch outputs go: the ``device=`` of the loader (``output="torch"``), the LeRobot
drop-in and the operator wrappers.

``"cpu"`` (the default), ``"cuda"`` / ``"cuda:N"`` / a ``torch.device`` / a CUDA device index, or ``"auto"`` (the
current CUDA device when PyTorch has one, else the CPU). Frames are decoded and converted by the
core on the CPU; batches bound to a GPU are filled into page-locked (pinned) host buffers that
are reused, and copied to the device without blocking, on the device's current stream, so that
work queued on that stream sees the whole batch.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from ..errors import DeviceUnavailableError, InvalidArgumentError

__all__ = ["DeviceLike", "PinnedStaging", "resolve_device"]

#: What ``device=`` accepts.
DeviceLike = str | torch.device | int | None


def resolve_device(device: DeviceLike) -> torch.device:
    """The ``torch.device`` that ``device`` names: ``cpu``, or ``cuda:N`` with an explicit index
    (``"cuda"`` is the current CUDA device). ``InvalidArgumentError`` for anything but a CPU or
    CUDA device; ``DeviceUnavailableError`` for a CUDA device PyTorch cannot use here."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, str) and device.strip().lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", _current_index())
        return torch.device("cpu")
    if isinstance(device, int) and not isinstance(device, bool) and device >= 0:
        device = torch.device("cuda", device)  # (torch's convention: an index names a CUDA device)
    if not isinstance(device, str | torch.device):
        raise InvalidArgumentError(
            f"device must be 'cpu', 'cuda', 'cuda:N', 'auto', a CUDA device index or a torch.device, got {device!r}"
        )
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InvalidArgumentError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise InvalidArgumentError(
            f"device={device!r}: roboframes delivers torch batches to 'cpu' or 'cuda' devices "
            f"(move them with .to({dev.type!r}) yourself; on Apple Silicon, roboframes.mlx reads into MLX)"
        )
    if not torch.cuda.is_available():
        if torch.version.cuda is None:
            why = f"this PyTorch ({torch.__version__}) is built without CUDA"
        else:
            why = f"PyTorch (CUDA {torch.version.cuda}) finds no usable GPU"
        raise DeviceUnavailableError(
            f"device={device!r}: {why}; use device='cpu', or device='auto' to take a GPU where there is one"
        )
    index = _current_index() if dev.index is None else dev.index
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceUnavailableError(f"device={device!r}: there are {count} CUDA devices (cuda:0 to cuda:{count - 1})")
    return torch.device("cuda", index)


def _current_index() -> int:
    """The current CUDA device's index, without creating a CUDA context where none exists yet
    (in a DataLoader worker, say): until then it is 0."""
    return torch.cuda.current_device() if torch.cuda.is_initialized() else 0


class PinnedStaging:
    """Page-locked host buffers for batches bound to one CUDA device, reused across batches.

    :meth:`take` hands out a NumPy view of a pinned buffer for the core to fill;
    :meth:`to_device` queues its copy to the device on the device's current stream, without
    blocking, records a CUDA event after it and keeps the buffer. A kept buffer is handed out
    again only after its event has completed (the copy has read it), so a fill never overwrites
    bytes still on their way to the GPU. At most ``limit`` buffers are kept.
    """

    def __init__(self, device: torch.device, limit: int) -> None:
        self.device = device
        self.limit = limit
        self.lock = threading.Lock()
        # kept buffers with the event after the copy that last read them
        self.free: list[tuple[torch.Tensor, torch.cuda.Event]] = []

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A pinned buffer of ``shape`` and ``dtype``, as a writable NumPy array (a buffer that
        is never passed to :meth:`to_device` is simply freed with its array)."""
        tdtype = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        found: tuple[torch.Tensor, torch.cuda.Event] | None = None
        with self.lock:
            for i, (t, _) in enumerate(self.free):
                if tuple(t.shape) == shape and t.dtype == tdtype:
                    found = self.free.pop(i)
                    break
        if found is not None:
            host, event = found
            event.synchronize()  # the copy out of it has finished
        else:
            # (pinned memory belongs to the current device's context: this one's, not GPU 0's)
            with torch.cuda.device(self.device):
                host = torch.empty(shape, dtype=tdtype, pin_memory=True)
        array: np.ndarray = host.numpy()  # (its base is a tensor over the same pinned memory)
        return array

    def to_device(self, array: np.ndarray) -> torch.Tensor:
        """The device copy of a buffer from :meth:`take`, queued on the device's current stream
        and not waited for; the buffer is kept for reuse once the copy has read it."""
        src = torch.from_numpy(array)
        host = array.base  # (the pinned tensor that owns the memory: kept until it is reused)
        if not isinstance(host, torch.Tensor) or not src.is_pinned():
            # (not one of ours: an ordinary copy, complete when it returns)
            return src.to(self.device)
        stream = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(stream):
            out = src.to(self.device, non_blocking=True)
            event = torch.cuda.Event()
            event.record(stream)
        with self.lock:
            self.free.append((host, event))
            del self.free[: max(0, len(self.free) - self.limit)]
        return out
