"""roboframes for MLX: lazy ``mx.array``\\ s decoded inside MLX's graph.

- :func:`decode_frames`, :func:`gather`, :func:`get_batch`: lazy arrays made by a custom MLX
  primitive (``mlx_ext/``) whose evaluation calls roboframes' Rust core, which writes straight
  into the arrays MLX allocated. Their shapes are known when the graph is built, so they work
  under ``mx.compile`` (also ``shapeless=True``).
- :class:`Dataset`: the NumPy reader's arguments and items, as ``mx.array``\\ s, with
  mlx.data-style streams (:meth:`Dataset.to_stream`, ``shuffle``, ``batch``, ``prefetch``,
  ``key_transform``, ``sample_transform``, ``reset``); a batch is one primitive.
- :func:`eval`: ``mx.eval`` that raises roboframes' own error classes.
- :meth:`Dataset.to_mlx_data`: the same samples or batches as an ``mlx.data`` stream.

The primitive runs on MLX's CPU stream (on macOS too); arrays computed from it on the GPU read
it through unified memory.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

try:
    import mlx.core as mx
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"roboframes.mlx needs MLX ({e}): `pip install mlx` on macOS, `pip install 'mlx[cpu]'` on Linux"
    ) from e

from .. import errors
from ..dataset import CameraKeys, Item, Stats, check_item_index, item_indices
from ..dataset import Dataset as NumpyDataset
from ..epochs import epoch_permutation
from ..options import check_frame_dtype
from ..tools import EpisodeList

try:
    from . import _mlx_ext
except ImportError as e:  # pragma: no cover - depends on the build
    raise ImportError(
        f"roboframes.mlx: the MLX extension is not built ({e}). `bash scripts/setup.sh` builds it; "
        "by hand: `cmake -S mlx_ext -B build/mlx_ext && cmake --build build/mlx_ext && "
        "cmake --install build/mlx_ext` with the same Python, MLX and nanobind installed (see README)"
    ) from e

__all__ = ["Dataset", "Stream", "decode_frames", "eval", "gather", "get_batch", "mlx_dtype"]

_BATCH, _FRAMES, _GATHER = 0, 1, 2


def mlx_dtype(name: str) -> mx.Dtype:
    """The MLX dtype of one of the core's element type names (``uint8``, ``bool``, ...)."""
    dtype = getattr(mx, "bool_" if name == "bool" else name)
    assert isinstance(dtype, mx.Dtype), name
    return dtype


def _decode_op(*args: Any) -> list[mx.array]:
    """``_mlx_ext.decode_op``; a roboframes failure while building the graph (an unknown
    handle, ...) is raised as its ``roboframes.errors`` class."""
    try:
        return list(_mlx_ext.decode_op(*args))
    except RuntimeError as e:
        raise _typed(e) from None


def _indices(x: Any, what: str = "indices") -> mx.array:
    """Item indices or episode indices as a 1-D int64 array, by the NumPy surface's rules: a
    sequence or 1-D array of integers (``TypeError`` for floats, booleans, strings, nested or 2-D
    input; ``IndexOutOfRangeError`` beyond int64). A lazy ``mx.array`` must be a 1-D integer
    array (checked on its dtype and shape, without evaluating it); it is cast on the CPU stream."""
    if isinstance(x, mx.array):
        if x.ndim != 1 or x.dtype == mx.bool_ or not mx.issubdtype(x.dtype, mx.integer):
            raise TypeError(f"{what} must be a 1-D array of integers, got a {x.ndim}-D array of {x.dtype}")
        return x if x.dtype == mx.int64 else x.astype(mx.int64, stream=mx.cpu)
    return mx.array(item_indices(x), dtype=mx.int64)


def _as_1d(x: Any, dtype: mx.Dtype) -> mx.array:
    """``x`` as a 1-D array of ``dtype``; an ``mx.array`` stays lazy (cast in the graph, on the
    CPU stream: the primitive's own, and float64 exists on the CPU only)."""
    if not isinstance(x, mx.array):
        return mx.array(np.asarray(x).reshape(-1), dtype=dtype)
    a = x.reshape(-1, stream=mx.cpu)
    return a if a.dtype == dtype else a.astype(dtype, stream=mx.cpu)


def decode_frames(
    dataset: NumpyDataset | Dataset,
    camera: str,
    episode_index: mx.array | Sequence[int],
    timestamp: mx.array | Sequence[float],
    *,
    frame_dtype: str = "uint8",
    channels_last: bool = True,
) -> mx.array:
    """Frames of ``camera`` at ``timestamp[i]`` seconds into episode ``episode_index[i]`` (lazy).

    Same rules as ``roboframes.torch.decode_frames``: ``(N, H, W, 3)`` (or ``(N, 3, H, W)``) of
    ``frame_dtype`` (``uint8``, ``float32``, ``float16``, ``bfloat16``: ``value / 255``); a depth
    map's ``(N, H, W, 1)`` (or ``(N, 1, H, W)``) of what its dataset reads depth as
    (``depth_output_unit``). ``episode_index`` and ``timestamp`` may be lazy MLX arrays.
    """
    reader = _reader_of(dataset)
    shape, dtype = reader.frame_layout(camera, frame_dtype, bool(channels_last))
    (frames,) = _decode_op(
        _FRAMES,
        reader.handle,
        camera,
        frame_dtype,
        bool(channels_last),
        [],
        [_indices(episode_index, "episode_index"), _as_1d(timestamp, mx.float64)],
        [shape],
        [mlx_dtype(dtype)],
    )
    return frames


def gather(
    dataset: NumpyDataset | Dataset, key: str, indices: mx.array | Sequence[int], offsets: Sequence[int]
) -> tuple[mx.array, mx.array]:
    """Numeric feature ``key`` at frame ``offsets`` around each item of ``indices`` (lazy), clamped
    to the item's episode: ``values`` ``(N, T, *shape)`` and ``is_pad`` ``(N, T)`` bool."""
    reader = _reader_of(dataset)
    row, dtype = reader.numeric_row(key)
    t = len(offsets)
    values, pads = _decode_op(
        _GATHER,
        reader.handle,
        key,
        "uint8",
        True,
        [int(o) for o in offsets],
        [_indices(indices)],
        [[t, *row], [t]],
        [mlx_dtype(dtype), mx.bool_],
    )
    return values, pads


def get_batch(
    dataset: NumpyDataset | Dataset,
    indices: mx.array | Sequence[int],
    *,
    frame_dtype: str | None = None,
    channels_last: bool | None = None,
) -> list[mx.array]:
    """Every array entry of the items at ``indices`` (lazy), stacked, in item key order (strings
    and language values left out): one primitive, one native call that plans and decodes every
    camera.
    Frames in the dataset's format unless ``frame_dtype`` / ``channels_last`` say otherwise.
    Usable inside ``mx.compile``."""
    reader = _reader_of(dataset)
    fmt = dataset if isinstance(dataset, Dataset) else reader
    frame_dtype = fmt.frame_dtype if frame_dtype is None else frame_dtype
    channels_last = fmt.channels_last if channels_last is None else bool(channels_last)
    if isinstance(dataset, Dataset) and (frame_dtype, channels_last) == (dataset.frame_dtype, dataset.channels_last):
        layout = dataset._layout  # computed once per dataset
    else:
        layout = _BatchLayout(reader, frame_dtype, channels_last)
    return layout.arrays(indices)


class _BatchLayout:
    """What the batch primitive of one reader and frame format needs besides the indices: the
    shapes and MLX dtypes of the array entries of an item, computed once."""

    def __init__(self, reader: NumpyDataset, frame_dtype: str, channels_last: bool) -> None:
        self.reader = reader
        self.frame_dtype = frame_dtype
        self.channels_last = channels_last
        self.specs = [s for s in reader.output_specs(frame_dtype, channels_last) if s.is_array]
        self.shapes = [list(s.shape) for s in self.specs]
        self.dtypes = [mlx_dtype(s.dtype) for s in self.specs]

    def arrays(self, indices: Any) -> list[mx.array]:
        """The lazy array entries of the items at ``indices``: one primitive."""
        return _decode_op(
            _BATCH,
            self.reader.handle,
            "",
            self.frame_dtype,
            self.channels_last,
            [],
            [_indices(indices)],
            self.shapes,
            self.dtypes,
        )


def eval(*arrays: Any) -> None:
    """``mx.eval(*arrays)``; a roboframes failure during evaluation (MLX raises it as a
    ``RuntimeError``) is re-raised as its ``roboframes.errors`` class (``FrameTimestampError``,
    ``VideoDecodeError``, ...), whose message names the file, episode and key."""
    try:
        mx.eval(*arrays)
    except RuntimeError as e:
        raise _typed(e) from None


def _typed(e: RuntimeError) -> BaseException:
    """The roboframes exception a RuntimeError from evaluation carries (the core's own, with its
    path, episode and key, when it is still known), else ``e`` itself."""
    return errors.from_native(e)


def _reader_of(dataset: NumpyDataset | Dataset) -> NumpyDataset:
    if isinstance(dataset, Dataset):
        return dataset.reader
    if isinstance(dataset, NumpyDataset):
        return dataset
    raise TypeError(
        "roboframes.mlx needs a roboframes.Dataset or roboframes.mlx.Dataset (shapes come from its metadata)"
    )


class Dataset(CameraKeys):
    """A LeRobot v3.0 dataset whose items and batches are ``mx.array``\\ s.

    Takes ``roboframes.Dataset``'s arguments and gives its keys, dtypes and shapes (uint8
    ``(H, W, 3)`` frames by default; ``frame_dtype`` may also be ``"bfloat16"`` here; depth maps
    as ``depth_output_unit`` says); string entries stay ``str`` and language values Python
    objects. Arrays are lazy: a batch is one primitive, evaluated (decoded) when MLX
    evaluates it. Iterate with :meth:`to_stream` (mlx.data's vocabulary). ``root`` may be a
    remote root's URL, reached with ``storage_options`` and cached in ``cache_dir`` (see
    :mod:`roboframes.remote`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        episodes: Sequence[int] | None = None,
        delta_timestamps: Mapping[str, Sequence[float]] | None = None,
        *,
        frame_dtype: str = "uint8",
        channels_last: bool = True,
        **options: Any,
    ) -> None:
        """``options``: every other option of ``roboframes.Dataset`` (``tolerance_s``,
        ``decode_threads``, ``strict_decode``, ``storage_options``, ``cache_dir``,
        ``block_cache_bytes``, ``depth_output_unit``, ...), passed to the NumPy reader."""
        check_frame_dtype(frame_dtype, "mlx")
        #: The NumPy reader (``roboframes.Dataset``) this dataset's metadata and strings come from.
        self.reader = NumpyDataset(root, episodes, delta_timestamps, **options)
        self.frame_dtype = frame_dtype
        self.channels_last = bool(channels_last)
        self._specs = self.reader.output_specs(frame_dtype, self.channels_last)
        self._layout = _BatchLayout(self.reader, frame_dtype, self.channels_last)
        self._has_strings = any(not s.is_array for s in self._specs)

    def __len__(self) -> int:
        return len(self.reader)

    # -- the metadata, as the NumPy reader names it -------------------------------------------
    @property
    def features(self) -> dict[str, dict[str, Any]]:
        """``info.json``'s features."""
        return self.reader.features

    @property
    def fps(self) -> int | float:
        """Frames per second of the dataset (windows are in seconds: steps of ``1 / fps``)."""
        return self.reader.fps

    @property
    def root(self) -> str | os.PathLike[str]:
        """The dataset's root: a folder, or a remote root's location."""
        return self.reader.root

    @property
    def episodes(self) -> EpisodeList:
        """The selected episodes' indices (called, their records: see ``roboframes.Dataset``)."""
        return self.reader.episodes

    @property
    def num_frames(self) -> int:
        """Frames of the selected episodes (``len(ds)``)."""
        return self.reader.num_frames

    @property
    def num_episodes(self) -> int:
        """Number of selected episodes."""
        return self.reader.num_episodes

    @property
    def tasks(self) -> dict[int, str]:
        """Task index -> task text."""
        return self.reader.tasks

    @property
    def stats(self) -> Stats:
        """``meta/stats.json`` as NumPy arrays (see ``roboframes.Dataset.stats``)."""
        return self.reader.stats

    @property
    def delta_timestamps(self) -> dict[str, list[float]] | None:
        """The windows the dataset was opened with."""
        return self.reader.delta_timestamps

    def __getitem__(self, idx: int) -> Item:
        """One item (lazy arrays; 0-d for scalar features)."""
        check_item_index(idx, len(self))
        batch = self.get_batch([idx])
        return _sample(batch, 0)

    def get_batch(self, indices: mx.array | Sequence[int] | np.ndarray) -> Item:
        """The items at ``indices`` stacked along a leading dimension, in item key order: arrays
        ``(B, *item_shape)`` (lazy, one primitive for all of them), strings as lists. Indices
        may be a lazy ``mx.array`` (then string entries, which need the indices now, evaluate
        it)."""
        index = _indices(indices)
        arrays = self._layout.arrays(index)
        by_key: dict[str, Any] = {s.key: a for s, a in zip(self._layout.specs, arrays, strict=True)}
        if self._has_strings:
            by_key.update(self.reader.get_values(np.asarray(index)))
        return {s.key: by_key[s.key] for s in self._specs}

    def to_stream(self) -> Stream:
        """The items in order, one at a time; chain ``shuffle``, ``batch``, ``prefetch``,
        ``key_transform`` and ``sample_transform`` as in mlx.data."""
        return Stream(self)

    def shuffle(self, seed: int = 0) -> Stream:
        """``to_stream().shuffle(seed)``."""
        return self.to_stream().shuffle(seed)

    def to_mlx_data(self, batch_size: int | None = None, *, shuffle: bool = False, seed: int = 0) -> Any:
        """The samples (or batches of ``batch_size``) as an ``mlx.data`` stream
        (``mlx.data.stream_python_iterable``), to continue with mlx.data's own transforms.
        mlx.data works on NumPy arrays: each sample's arrays are evaluated here and handed over
        without a copy (``np.asarray`` of an evaluated ``mx.array``); ``bool`` entries become
        ``uint8`` (mlx.data has no bool) and strings UTF-8 bytes in ``uint8`` arrays, zero-padded to
        the longest (mlx.data's way of carrying text; ``bytes(a).rstrip(b"\\0").decode()``
        reads one back); language values travel the same way as their JSON text
        (``json.loads`` reads one back). ``reset()`` on the returned stream starts a new
        epoch."""
        import importlib
        import json

        dx = importlib.import_module("mlx.data")  # optional; untyped
        stream = self.to_stream()
        if shuffle:
            stream = stream.shuffle(seed)
        if batch_size is not None:
            stream = stream.batch(batch_size)
        epochs = iter(range(1 << 62))
        language = set(self.reader.language_keys)

        def text(key: str, v: Any) -> np.ndarray:
            if key in language:
                v = [json.dumps(x) for x in v] if batch_size is not None else json.dumps(v)
            return _text(v)

        def samples() -> Iterator[dict[str, np.ndarray]]:
            for sample in stream.epoch(next(epochs)):
                eval(*[v for v in sample.values() if isinstance(v, mx.array)])
                yield {k: (_numpy(v) if isinstance(v, mx.array) else text(k, v)) for k, v in sample.items()}

        return dx.stream_python_iterable(samples)

    def __repr__(self) -> str:
        return f"roboframes.mlx.Dataset({self.reader!r}, frame_dtype={self.frame_dtype!r})"


def _numpy(a: mx.array) -> np.ndarray:
    """An evaluated array as NumPy for mlx.data, without a copy. MLX's buffers say int64 as
    ``q`` (long long), which mlx.data 0.1 refuses: the view under NumPy's own name of the dtype
    is the same memory. mlx.data has no bool: flags become uint8 0/1 (a view too)."""
    if a.dtype == mx.bfloat16:  # NumPy has no bfloat16: exact in float32
        a = a.astype(mx.float32)
        mx.eval(a)
    arr = np.asarray(a)
    return arr.view(np.uint8 if arr.dtype == np.bool_ else np.dtype(arr.dtype.name))


def _text(v: Any) -> np.ndarray:
    """A string (or a nested list of strings) as mlx.data carries text: UTF-8 bytes in a uint8
    array, padded with zeros to the longest string (shape ``(*nesting, max_len)``)."""
    encoded = np.array(_encode(v), dtype=np.bytes_)
    return np.atleast_1d(encoded).view(np.uint8).reshape(*encoded.shape, encoded.itemsize)


def _encode(v: Any) -> Any:
    return v.encode() if isinstance(v, str) else [_encode(x) for x in v]


Transform = Callable[[dict[str, Any]], dict[str, Any]]
T = TypeVar("T")


@dataclass(frozen=True)
class _Config:
    shuffle_seed: int | None = None
    batch_size: int | None = None
    drop_last: bool = False
    sample_stages: tuple[Transform, ...] = ()
    batch_stages: tuple[Transform, ...] = ()
    prefetch: int = 0
    threads: int = 1


class Stream:
    """An mlx.data-style stream over a :class:`Dataset`; every method returns a new stream.

    Transforms added before :meth:`batch` apply to each sample, after it to each batch. A batch
    is planned natively (one primitive for the whole batch); per-sample transforms slice it into
    samples and stack them back. Iterating runs one epoch; :meth:`reset` moves to the next one
    (a new order when shuffled: epoch ``e`` uses ``(seed, e)``).
    """

    def __init__(self, dataset: Dataset, config: _Config | None = None, epoch: int = 0) -> None:
        self.dataset = dataset
        self._config = config or _Config()
        self._epoch = epoch

    def _with(self, **changes: Any) -> Stream:
        return Stream(self.dataset, replace(self._config, **changes), self._epoch)

    def shuffle(self, seed: int = 0) -> Stream:
        """A new random order of all items every epoch, from ``(seed, epoch)`` (a full
        permutation; mlx.data's ``Stream.shuffle(buffer_size)`` shuffles within a buffer)."""
        return self._with(shuffle_seed=int(seed))

    def batch(self, batch_size: int, drop_last: bool = False) -> Stream:
        """Batches of ``batch_size`` items (the last one smaller unless ``drop_last``)."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self._config.batch_size is not None:
            raise ValueError("the stream is batched already")
        return self._with(batch_size=int(batch_size), drop_last=bool(drop_last))

    def sample_transform(self, fn: Transform) -> Stream:
        """Applies ``fn(sample) -> sample`` to each sample (or batch, after :meth:`batch`); an
        empty dict drops it, as in mlx.data."""
        if self._config.batch_size is None:
            return self._with(sample_stages=(*self._config.sample_stages, fn))
        return self._with(batch_stages=(*self._config.batch_stages, fn))

    def key_transform(self, key: str, fn: Callable[[Any], Any], output_key: str | None = None) -> Stream:
        """Applies ``fn`` to entry ``key``, storing the result under ``output_key`` (default:
        ``key``)."""
        out = key if output_key is None else output_key

        def stage(sample: dict[str, Any]) -> dict[str, Any]:
            return {**sample, out: fn(sample[key])}

        return self.sample_transform(stage)

    def prefetch(self, prefetch_size: int, num_threads: int = 1) -> Stream:
        """Builds and evaluates (decodes) the next ``prefetch_size`` elements on
        ``num_threads`` background threads while the caller uses the current one: at most
        ``prefetch_size + 1`` elements exist at a time. The threads are shared by every stream
        with the same ``num_threads`` (MLX keeps per-thread streams, so threads are reused, not
        made per epoch)."""
        if prefetch_size < 0 or num_threads < 1:
            raise ValueError("prefetch_size must be >= 0 and num_threads >= 1")
        return self._with(prefetch=int(prefetch_size), threads=int(num_threads))

    def reset(self) -> None:
        """Starts the next epoch (a new order when shuffled)."""
        self._epoch += 1

    def __len__(self) -> int:
        n = len(self.dataset)
        b = self._config.batch_size
        if b is None:
            return n
        return n // b if self._config.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.epoch(self._epoch)

    def order(self, epoch: int) -> np.ndarray:
        """The item indices of ``epoch``, in the order they are read."""
        n = len(self.dataset)
        seed = self._config.shuffle_seed
        if seed is None:
            return np.arange(n, dtype=np.int64)
        return epoch_permutation(seed, epoch, n)

    def epoch(self, epoch: int) -> Iterator[dict[str, Any]]:
        """The elements of one epoch."""
        order = self.order(epoch)
        c = self._config
        size = c.batch_size or 1
        stop = len(order) - len(order) % size if (c.batch_size and c.drop_last) else len(order)
        chunks = [order[i : min(i + size, stop)] for i in range(0, stop, size)]
        make = self._element if c.prefetch == 0 else self._ready
        for element in prefetched(make, chunks, c.prefetch, c.threads):
            if element is not None:
                yield element

    def _ready(self, chunk: np.ndarray) -> dict[str, Any] | None:
        """An element built and evaluated (decoded), for prefetching (None: dropped)."""
        element = self._element(chunk)
        if element is not None:
            eval(*[v for v in element.values() if isinstance(v, mx.array)])
        return element

    def _element(self, chunk: np.ndarray) -> dict[str, Any] | None:
        """The element of ``chunk``: a sample, or a batch; None when a transform dropped it
        (returned an empty dict, mlx.data's convention)."""
        c = self._config
        batch = self.dataset.get_batch(chunk)
        if c.sample_stages:
            samples = [_sample(batch, i) for i in range(len(chunk))]
            for stage in c.sample_stages:
                samples = [t for s in samples if (t := stage(s))]
            if not samples:
                return None
            if c.batch_size is None:
                return samples[0]
            batch = _stack(samples)
        elif c.batch_size is None:
            return _sample(batch, 0)
        for stage in c.batch_stages:
            batch = stage(batch)
            if not batch:
                return None
        return batch


def prefetched(make: Callable[[Any], T], items: Sequence[Any], prefetch: int, threads: int = 1) -> Iterator[T]:
    """``make(item)`` of each item, in order, the next ``prefetch`` of them made on ``threads``
    background threads while the caller uses the current one (``prefetch=0``: made when asked
    for). The one MLX prefetch path (streams and the loader's ``output="mlx"``): ``make``
    builds an element and evaluates it, so the decoding happens on the background thread.
    Leaving early cancels what has not started and waits for what has (an MLX evaluation cannot
    be cancelled): nothing outlives the iteration."""
    if prefetch == 0:
        for item in items:
            yield make(item)
        return
    pool = _pool(threads)
    pending: deque[Future[T]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(make, item))
            if len(pending) > prefetch:  # the caller's element and `prefetch` in flight
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        for f in pending:
            if not f.cancelled():
                f.exception()


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    """The prefetch threads of every stream with ``threads`` threads, made once per process."""
    pool = _POOLS.get(threads)
    if pool is None:
        pool = _POOLS[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="roboframes-mlx")
    return pool


# a forked child has none of the parent's threads: it makes its own pools
os.register_at_fork(after_in_child=_POOLS.clear)


def _sample(batch: Mapping[str, Any], i: int) -> dict[str, Any]:
    return {k: v[i] for k, v in batch.items()}


def _stack(samples: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in samples[0]:
        values = [s[k] for s in samples]
        out[k] = mx.stack(values) if isinstance(values[0], mx.array) else values
    return out
