"""``Dataset.loader(...)``: batches for a training loop, decoded ahead by the core, resumable,
sharded across ranks, optionally served from a decoded-frame cache.

One epoch's order is a function of ``(seed, epoch)`` and the settings alone, so the resume state
is a handful of numbers (the epoch and the batches already yielded); the order is recomputed on
resume, never stored.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from . import _native
from ._native import OutputSpec
from .buffers import BufferPool, per_item
from .dataset import Dataset, Item
from .epochs import EpochCursor, Run, check_state, epoch_rng, shard_order, shard_runs, shard_size, state_int
from .errors import InvalidArgumentError
from .options import check_frame_dtype
from .sampler import distributed_rank, gop_units, interleave_runs
from .tools import normalization

Shuffle = bool | Literal["gop"]
Output = Literal["numpy", "torch", "mlx"]

#: The ``format`` entry of a loader's state.
STATE_FORMAT = "roboframes.Loader/1"


class Loader:
    """Batches of a :class:`~roboframes.Dataset` for a training loop (``ds.loader(...)`` makes
    one): decoded ahead on the core's threads, resumable mid-epoch, sharded across ranks.

    Iterating yields the batches of the current epoch from :attr:`position` on; when an epoch
    ends, the next iteration starts the next epoch. Breaking out of a loop and iterating again
    continues where the loop stopped (``seek(0)`` starts the epoch over).

    Args:
        dataset: The dataset.
        batch_size: Items per batch.
        shuffle: ``True``: a new random permutation every epoch; ``"gop"``: the
            decode-friendly order of :class:`~roboframes.GopShuffleSampler` (random units of
            consecutive frames read side by side by ``gop_streams`` streams of about
            ``gop_unit_frames`` frames); ``False``: dataset order. Epoch ``e``'s order is a
            function of ``(seed, e)``.
        seed: Seed of the orders.
        drop_last: Drop each epoch's last, smaller batch (and, with several ranks, the epoch's
            tail instead of padding it by repeating items, as ``DistributedSampler`` does).
        episodes: Only these episodes (of the dataset's selection).
        cameras: Only these camera keys (the others are neither decoded nor returned, their
            ``_is_pad`` masks neither).
        output: ``"numpy"`` arrays, ``"torch"`` tensors (sharing the arrays' memory: no copy) or
            ``"mlx"`` arrays (made by the MLX batch primitive).
        device: With ``output="torch"``: where the tensors go: ``"cpu"`` (default), ``"cuda"``,
            ``"cuda:N"``, a CUDA device index, a ``torch.device``, or ``"auto"`` (the current CUDA device when there
            is one, else the CPU). A CUDA batch is filled in reused pinned host buffers and
            copied to the device on its current stream without blocking; the values are the
            CPU batch's. ``DeviceUnavailableError`` when CUDA is named and cannot be used.
        prefetch: Batches decoded ahead while the caller uses the current one (``0``: none).
            Memory holds at most ``prefetch + 1`` batches besides the caller's.
        rank, world_size: This process's shard of every epoch (default: ``torch.distributed``'s
            when initialised, else ``RANK``/``WORLD_SIZE``, else a single process).
        frame_cache_bytes: Turn on (or resize) the dataset's decoded-frame cache
            (:meth:`roboframes.Dataset.set_frame_cache`). ``cache_bytes``, its earlier name, is
            accepted with a ``DeprecationWarning``.
        frame_dtype, channels_last: Frame format (default: the dataset's).
        gop_streams, gop_unit_frames: The ``"gop"`` order's streams and unit length
            (``GopShuffleSampler``'s ``streams`` and ``unit_frames``, same defaults).
        normalize: ``{key: mode}`` (LeRobot's ``MEAN_STD``, ``MIN_MAX``, ``QUANTILES``,
            ``QUANTILE10``, ``IDENTITY``; any case): those float32 entries normalised in the
            core's fill, as LeRobot's ``NormalizerProcessorStep`` does (its float32 arithmetic
            and epsilon rules; cameras need ``frame_dtype="float32"``).
        stats: The statistics ``normalize`` uses: default ``meta/stats.json``; ``"recompute"``:
            computed from the data; or a ``{key: {stat: array}}`` dict.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        shuffle: Shuffle = True,
        seed: int = 0,
        drop_last: bool = False,
        episodes: Sequence[int] | None = None,
        cameras: Sequence[str] | None = None,
        output: Output = "numpy",
        device: Any = None,
        prefetch: int = 2,
        rank: int | None = None,
        world_size: int | None = None,
        frame_cache_bytes: int | None = None,
        frame_dtype: str | None = None,
        channels_last: bool | None = None,
        gop_streams: int = 4,
        gop_unit_frames: int = 64,
        normalize: Mapping[str, str] | None = None,
        stats: dict[str, dict[str, Any]] | str | None = None,
        cache_bytes: int | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be a positive int, got {batch_size!r}")
        if shuffle not in (True, False, "gop"):
            raise InvalidArgumentError(f"shuffle must be True, False or 'gop', got {shuffle!r}")
        if output not in ("numpy", "torch", "mlx"):
            raise InvalidArgumentError(f"output must be 'numpy', 'torch' or 'mlx', got {output!r}")
        _check_output_installed(output)
        self.device = None if device is None or output != "torch" else _torch_device(device)
        if output != "torch" and device is not None and str(device) != "cpu":
            raise InvalidArgumentError(f"device={device!r} needs output='torch' (output={output!r} is on the CPU)")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise InvalidArgumentError(f"prefetch must be an int >= 0, got {prefetch!r}")
        if gop_streams < 1 or gop_unit_frames < 1:
            raise InvalidArgumentError("gop_streams and gop_unit_frames must be >= 1")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle: Shuffle = shuffle
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InvalidArgumentError(f"seed must be an int >= 0, got {seed!r}")
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.output: Output = output
        self.prefetch = prefetch
        self.rank, self.world_size = distributed_rank(rank, world_size)
        # (torch tensors share the NumPy arrays the core fills: NumPy's frame types)
        self.frame_dtype = check_frame_dtype(dataset.frame_dtype if frame_dtype is None else frame_dtype, output)
        self.channels_last = dataset.channels_last if channels_last is None else bool(channels_last)
        self.gop_streams = min(gop_streams, batch_size)
        self.gop_unit_frames = gop_unit_frames
        if cache_bytes is not None:
            warnings.warn(
                "Loader(cache_bytes=) is now frame_cache_bytes= (cache_bytes also named the remote block cache)",
                DeprecationWarning,
                stacklevel=2,
            )
            if frame_cache_bytes is None:
                frame_cache_bytes = cache_bytes
        if frame_cache_bytes is not None:
            dataset.set_frame_cache(frame_cache_bytes)

        # the items of the chosen episodes, as runs of consecutive items
        self.episodes = list(dataset.episodes) if episodes is None else _check_episodes(dataset, episodes)
        self._runs = _episode_runs(dataset, self.episodes)
        self.num_items = sum(b - a for a, b in self._runs)
        self._units: list[Run] | None = None  # GOP units, found on first use

        # the entries of a batch: the chosen cameras' frames (and pad masks), everything else
        self._specs = dataset.output_specs(self.frame_dtype, self.channels_last)
        self.cameras = list(dataset.camera_keys) if cameras is None else _check_cameras(dataset, cameras)
        skipped = {k for k in dataset.camera_keys if k not in self.cameras}
        skipped |= {f"{k}_is_pad" for k in skipped}
        self._wanted = [s.key not in skipped for s in self._specs]
        if output == "mlx" and skipped:
            raise InvalidArgumentError(
                "cameras= is not supported with output='mlx' yet (the MLX batch primitive decodes every "
                "camera); use output='numpy' or 'torch', or open the dataset without the other cameras"
            )
        if normalize and output == "mlx":
            raise InvalidArgumentError(
                "normalize= is not supported with output='mlx' yet (the MLX batch primitive has no "
                "statistics); use output='numpy' or 'torch'"
            )
        #: The core's normalisation of this loader's batches (None: none).
        self._normalize = normalization(dataset, dict(normalize) if normalize else None, stats)
        self._spares = BufferPool(limit=(prefetch + 2) * len(self._specs))
        #: pinned host buffers of batches bound to a CUDA device (None: the CPU's BufferPool)
        self._staging: Any = None
        if self.device is not None and self.device.type == "cuda":
            from .torch.device import PinnedStaging

            self._staging = PinnedStaging(self.device, limit=(prefetch + 2) * len(self._specs))
        self._prefetcher: Any = None
        self._pid = os.getpid()

        # the epoch and the batches of it yielded; its generation changes with every
        # repositioning and every new iteration: a live iteration that sees it change stops
        # with an error instead of yielding batches out of step
        self._cursor = EpochCursor()

    @property
    def epoch(self) -> int:
        """The epoch being (or next to be) iterated."""
        return self._cursor.epoch

    @property
    def position(self) -> int:
        """Batches of :attr:`epoch` already yielded (the next batch is number ``position``)."""
        return self._cursor.position

    # -- order ------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Batches per epoch of this rank (equal on every rank)."""
        n = shard_size(self.num_items, self.world_size, self.drop_last) if self.world_size > 1 else self.num_items
        full, rest = divmod(n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches (item indices of the dataset) of epoch ``epoch``, a function of
        ``(seed, epoch)`` and the settings alone."""
        rng = epoch_rng(self.seed, epoch)
        if self.shuffle == "gop":
            if self._units is None:
                self._units = gop_units(self.dataset, self.gop_unit_frames, self.episodes)
            order = [self._units[i] for i in rng.permutation(len(self._units))]
            runs = shard_runs(order, self.rank, self.world_size, self.drop_last)
            batches = interleave_runs(runs, self.batch_size, self.gop_streams, 1, self.drop_last, rng)
            return [np.asarray(b, dtype=np.int64) for b in batches]
        items = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in self._runs] or [np.empty(0, np.int64)])
        if self.shuffle:
            items = items[rng.permutation(len(items))]
        mine = shard_order(items, self.rank, self.world_size, self.drop_last)
        cuts = range(0, len(mine), self.batch_size)
        out = [mine[i : i + self.batch_size] for i in cuts]
        if out and self.drop_last and len(out[-1]) < self.batch_size:
            out.pop()
        return out

    def set_epoch(self, epoch: int) -> None:
        """Starts epoch ``epoch`` at its first batch on the next iteration; right after
        :meth:`load_state_dict`, setting the loaded epoch keeps the loaded position (the usual
        ``for epoch in range(start, n): loader.set_epoch(epoch)`` loop resumes mid-epoch)."""
        self._cursor.set_epoch(epoch)

    def seek(self, batch: int) -> None:
        """Makes batch ``batch`` of the current epoch the next one yielded (``len(self)``: the
        epoch is done, the next iteration starts the next epoch)."""
        self._cursor.seek(batch, len(self))

    # -- resume -----------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {
            "dataset": self._fingerprint,
            "num_items": self.num_items,
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
            "gop": [self.gop_streams, self.gop_unit_frames] if self.shuffle == "gop" else None,
        }

    @functools.cached_property
    def _fingerprint(self) -> str:
        """The dataset's identity in resume states: ``info.json`` and the episode selection."""
        h = hashlib.sha256()
        h.update(json.dumps(self.dataset.info, sort_keys=True).encode())
        h.update(json.dumps([list(self.dataset.episodes), self.episodes]).encode())
        return h.hexdigest()[:16]

    def state_dict(self) -> dict[str, Any]:
        """The resume state (small, JSON-serialisable): epoch, batches yielded, seed, and the
        settings the order depends on (``dataset`` is a fingerprint of ``info.json`` and the
        episode selection). torchdata's ``StatefulDataLoader`` convention."""
        return {
            "format": STATE_FORMAT,
            **self._cursor.state(),
            "seed": self.seed,
            "rank": self.rank,
            **self._config(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continues from a :meth:`state_dict`: the next batch is the one the saving loader would
        have yielded next. A state saved with another dataset, episode selection, batch size,
        world size, shuffle or ``drop_last`` is refused; ranks may differ (every rank is at the
        same position)."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise InvalidArgumentError(f"not a roboframes loader state (format {STATE_FORMAT!r})")
        check_state(state, self._config(), "the loader")
        seed = state_int(state, "seed", "the loader")
        self._cursor.load(state, "the loader", len(self))
        self.seed = seed  # (the saved seed wins over the constructor's)

    # -- iteration --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Item]:
        if self.output == "mlx":
            return self._iterate_mlx()
        return self._iterate()

    def _prefetch_queue(self) -> Any:
        if self._prefetcher is None or self._pid != os.getpid():
            # (a forked child cannot use its parent's thread: the core leaves it alone)
            self._prefetcher, self._pid = _native.Prefetcher(), os.getpid()
        return self._prefetcher

    def _epoch_remaining(self) -> tuple[list[np.ndarray], int]:
        batches = self.epoch_batches(self.epoch)
        return batches, self.position

    def _start(self) -> int:
        """A new iteration: its generation (an older live iteration stops)."""
        return self._cursor.begin()

    def _check_generation(self, generation: int) -> None:
        if generation != self._cursor.generation:
            raise InvalidArgumentError(
                "the loader was repositioned (seek, set_epoch, load_state_dict) or iterated anew during this "
                "iteration; start a new iteration"
            )

    def _iterate(self) -> Iterator[Item]:
        generation = self._start()
        batches, start = self._epoch_remaining()
        queue = self._prefetch_queue()
        handle = self.dataset.handle
        pending: deque[tuple[int, list[np.ndarray | None], Any]] = deque()
        current: Any = None
        nxt = start
        try:
            for _ in range(start, len(batches)):
                while nxt < len(batches) and len(pending) <= self.prefetch:
                    idx = batches[nxt]
                    bufs = self._buffers(len(idx))
                    pending.append(
                        (
                            nxt,
                            bufs,
                            queue.submit(
                                handle, idx.tolist(), bufs, self.frame_dtype, self.channels_last, self._normalize
                            ),
                        )
                    )
                    nxt += 1
                j, bufs, current = pending.popleft()
                strings = current.wait()
                current = None
                if self._staging is None:
                    self._spares.keep(bufs)
                out = self._assemble(len(batches[j]), bufs, strings)
                self._check_generation(generation)
                self._cursor.advance(len(batches))
                yield out
            if generation == self._cursor.generation:
                self._cursor.finish(len(batches))  # (an epoch a loaded state left done)
        finally:
            # stop every fill in flight (the one being waited for included) before dropping
            # them: each PendingBatch waits for its fill to stop as it goes
            for _, _, ticket in pending:
                ticket.cancel()
            if current is not None:
                current.cancel()
            current = None
            pending.clear()

    def _buffers(self, b: int) -> list[np.ndarray | None]:
        pool = self._spares if self._staging is None else self._staging
        return [
            pool.take((b, *s.shape), np.dtype(s.dtype)) if w and s.is_array else None
            for s, w in zip(self._specs, self._wanted, strict=True)
        ]

    def _assemble(self, b: int, bufs: list[np.ndarray | None], strings: list[Any]) -> Item:
        out: Item = {}
        for spec, w, buf, strs in zip(self._specs, self._wanted, bufs, strings, strict=True):
            if not w:
                continue
            if buf is not None:
                out[spec.key] = _to_output(buf, self.output) if self._staging is None else self._staging.to_device(buf)
            elif strs is not None:
                out[spec.key] = per_item(spec, strs, b)
        return out

    def _iterate_mlx(self) -> Iterator[Item]:
        import mlx.core as mx

        from . import mlx as rmx

        generation = self._start()
        batches, start = self._epoch_remaining()
        layout = rmx._BatchLayout(self.dataset, self.frame_dtype, self.channels_last)  # noqa: SLF001
        has_strings = any(not s.is_array for s in self._specs)

        def make(idx: np.ndarray) -> Item:
            by_key: dict[str, Any] = dict(zip((s.key for s in layout.specs), layout.arrays(mx.array(idx)), strict=True))
            rmx.eval(*by_key.values())  # decoded here, on the prefetch thread; typed errors
            if has_strings:
                by_key.update(self.dataset.get_values(idx))
            return {s.key: by_key[s.key] for s in self._specs}

        for out in rmx.prefetched(make, batches[start:], self.prefetch):
            self._check_generation(generation)
            self._cursor.advance(len(batches))
            yield out
        if generation == self._cursor.generation:
            self._cursor.finish(len(batches))  # (an epoch a loaded state left done)

    def close(self) -> None:
        """Stops the prefetch thread (a later iteration starts a new one)."""
        self._prefetcher = None

    def __repr__(self) -> str:
        return (
            f"roboframes.Loader(batches={len(self)}, batch_size={self.batch_size}, shuffle={self.shuffle!r}, "
            f"epoch={self.epoch}, position={self.position}, rank={self.rank}/{self.world_size}, output={self.output!r}"
            + ("" if self.device is None else f", device='{self.device}'")
            + ")"
        )


def _check_output_installed(output: str) -> None:
    """``ImportError`` saying what to install when ``output``'s framework is missing (at
    construction, not at the first batch)."""
    if output == "torch":
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            raise ImportError("output='torch' needs PyTorch: pip install torch (or pip install 'roboframes[torch]')")
    elif output == "mlx":
        try:
            from . import mlx  # noqa: F401
        except ImportError as e:
            raise ImportError(f"output='mlx': {e}") from e


def _torch_device(device: Any) -> Any:
    """``device`` resolved by :func:`roboframes.torch.device.resolve_device`."""
    from .torch.device import resolve_device

    return resolve_device(device)


def _to_output(a: np.ndarray, output: Output) -> Any:
    if output == "torch":
        import torch

        return torch.from_numpy(a)  # shares the array's memory
    return a


def _check_episodes(dataset: Dataset, episodes: Sequence[int]) -> list[int]:
    if isinstance(episodes, str | bytes) or not isinstance(episodes, Sequence | np.ndarray):
        raise TypeError(f"episodes must be a sequence of episode indices, not {type(episodes).__name__}")
    selected = set(dataset.episodes)
    out: list[int] = []
    for e in episodes:
        if isinstance(e, bool) or not isinstance(e, int | np.integer):
            raise TypeError(f"episode indices must be integers, not {type(e).__name__} ({e!r})")
        if int(e) not in selected:
            raise InvalidArgumentError(f"episode {int(e)} is not among the dataset's selected episodes")
        out.append(int(e))
    position = {e: i for i, e in enumerate(dataset.episodes)}
    return sorted(set(out), key=position.__getitem__)


def _episode_runs(dataset: Dataset, episodes: Sequence[int]) -> list[Run]:
    """The item ranges of ``episodes`` in ``dataset`` (items number the selected episodes in
    dataset order)."""
    lengths = {e["episode_index"]: int(e["length"]) for e in dataset.episode_table()}
    wanted = set(episodes)
    runs: list[Run] = []
    start = 0
    for ep in dataset.episodes:
        end = start + lengths[ep]
        if ep in wanted and end > start:
            runs.append((start, end))
        start = end
    return runs


def _check_cameras(dataset: Dataset, cameras: Sequence[str]) -> list[str]:
    if isinstance(cameras, str):
        raise InvalidArgumentError(f"cameras must be a list of camera keys, got the string {cameras!r}")
    known = dataset.camera_keys
    for c in cameras:
        if c not in known:
            raise InvalidArgumentError(f"'{c}' is not a camera key of the dataset (camera keys: {known})")
    return [c for c in known if c in set(cameras)]


__all__ = ["Loader", "OutputSpec", "STATE_FORMAT"]
