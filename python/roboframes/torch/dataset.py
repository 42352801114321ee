"""``roboframes.torch.LeRobotDataset``: LeRobot 0.4.4's ``LeRobotDataset`` for reading, with
every item and batch produced by the roboframes core through ``torch.ops.roboframes``."""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import remote, tools
from ..dataset import Dataset
from ..errors import IndexOutOfRangeError, InvalidArgumentError, MetadataError
from . import _ops
from .metadata import CODEBASE_VERSION, LeRobotDatasetMetadata, resolve_root

Item = dict[str, Any]


class _Batch:
    """What ``__getitems__`` decoded: the stacked values per key and, per item, the values it
    handed out. It refers to no item, so items and batch form no reference cycle: a dropped
    batch is freed at once, not at the next cyclic garbage collection."""

    __slots__ = ("collated", "keys", "values")

    def __init__(self, collated: dict[str, Any], keys: list[str]) -> None:
        self.collated = collated
        self.keys = keys
        self.values: list[tuple[Any, ...]] = []


class BatchItem(dict[str, Any]):
    """An item made by :meth:`LeRobotDataset.__getitems__`: a ``dict`` of the item's values
    that also knows the batch it came from, so that ``default_collate`` can hand back the
    batch the operator already stacked instead of stacking copies of it. Items that were
    changed (a value replaced, a key added or removed, ``image_transforms`` applied) or that
    come from different batches are collated the ordinary way."""

    __slots__ = ("_batch", "_pos")
    _batch: _Batch | None
    _pos: int


def _is_whole_batch(batch: list[BatchItem], src: _Batch) -> bool:
    """True when ``batch`` is exactly the unchanged items ``src`` made, in order."""
    return len(batch) == len(src.values) and all(
        getattr(item, "_batch", None) is src
        and getattr(item, "_pos", -1) == i
        and list(item) == src.keys
        and all(map(operator.is_, item.values(), orig))
        for i, (item, orig) in enumerate(zip(batch, src.values, strict=True))
    )


def _collate_items(batch: list[BatchItem], *, collate_fn_map: Any = None) -> dict[str, Any]:
    src = getattr(batch[0], "_batch", None)
    if isinstance(src, _Batch) and _is_whole_batch(batch, src):
        return {k: src.collated[k] for k in src.keys}
    from torch.utils.data._utils.collate import collate

    return {key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in batch[0]}


try:  # torch's documented extension point of default_collate
    from torch.utils.data._utils.collate import default_collate_fn_map

    default_collate_fn_map[BatchItem] = _collate_items
except ImportError:  # pragma: no cover - items then collate as plain dicts
    pass


def _index_tensor(indices: Any) -> torch.Tensor:
    """``indices`` (integers, 0-d integer tensors, or a 1-D integer tensor) as a 1-D int64 CPU
    tensor; ``TypeError`` for floats, booleans, strings or nested sequences, as Python's
    sequences refuse them."""
    if isinstance(indices, torch.Tensor):
        if indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool:
            raise TypeError(f"dataset indices must be integers, not a tensor of {indices.dtype}")
        if indices.dim() > 1:
            raise TypeError(f"dataset indices must be a 1-D tensor, got {indices.dim()} dimensions")
        return indices.to(device="cpu", dtype=torch.int64).reshape(-1)
    out: list[int] = []
    for i in indices:
        if isinstance(i, torch.Tensor):
            if i.dim() != 0 or i.dtype.is_floating_point or i.dtype.is_complex or i.dtype == torch.bool:
                raise TypeError(
                    f"dataset indices must be integers, not a tensor of {i.dtype} with shape {tuple(i.shape)}"
                )
            out.append(int(i))
        elif isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise TypeError(f"dataset indices must be integers, not {type(i).__name__}")
        else:
            out.append(int(i))
    try:
        return torch.tensor(out, dtype=torch.int64)
    except (RuntimeError, ValueError, OverflowError):  # beyond int64
        raise IndexOutOfRangeError(f"index out of range: {max(out, key=abs)} does not fit in 64 bits") from None


class LeRobotDataset(torch.utils.data.Dataset):
    """A drop-in for ``lerobot.datasets.lerobot_dataset.LeRobotDataset`` (0.4.4) for reading.

    Takes LeRobot's constructor arguments and returns, for every index, what LeRobot returns:
    the same keys in the same order, dtypes, shapes and values (camera frames float32
    ``(C, H, W)`` in [0, 1], bit-identical to LeRobot's torchcodec path), ``{key}_is_pad``
    masks, the ``task`` string; ``ValueError`` for bad ``delta_timestamps`` and
    :class:`roboframes.FrameTimestampError` (a ``ValueError``) for frames outside
    ``tolerance_s``. ``__getitems__`` decodes a whole DataLoader batch in one native call.

    Works in ``DataLoader`` workers (forked or spawned), also after use in the main process,
    and pickles by reopening. Nothing is downloaded: ``root`` (or
    ``$HF_LEROBOT_HOME/<repo_id>``) holds the dataset, or ``root`` is a remote root's URL
    (``s3://...``, ``https://...``, ``hf://datasets/org/name[@rev]``), or ``streaming=True``
    reads the Hub dataset ``repo_id`` at ``revision`` in place, with random access and every
    option below (unlike LeRobot's iterable-only ``StreamingLeRobotDataset``).

    Options LeRobot lacks (keyword-only, off by default):
        frame_dtype: ``torch.float32`` (LeRobot's), ``torch.uint8`` (the decoded bytes),
            ``torch.float16`` or ``torch.bfloat16`` (``value / 255`` rounded).
        channels_last: frames as ``(H, W, C)`` instead of ``(C, H, W)``.
        decode_threads: decoding threads of this process (default: the number of cores).
        strict_decode: raise on damage in a video's bitstream instead of concealing it, as
            FFmpeg (and so LeRobot) does by default (see ``roboframes.Dataset``).
        normalize: ``{key: mode}`` with LeRobot's ``NormalizationMode`` names or values
            (``MEAN_STD``, ``MIN_MAX``, ``QUANTILES``, ``QUANTILE10``, ``IDENTITY``): those
            float32 entries come normalised in the core, equal to what LeRobot's
            ``NormalizerProcessorStep`` makes of them (float tolerance), so a training loop can
            skip that step for them. Statistics: ``stats`` (a ``{key: {stat: array}}`` dict, or
            ``"recompute"``), default ``meta/stats.json``.
        streaming: with no ``root``, read ``hf://datasets/{repo_id}@{revision}`` in place.
        storage_options: settings of a remote root's store (see ``roboframes.remote``).
        cache_dir: a folder for blocks of remote files on local disk (keyed by ETag).

    Arguments LeRobot uses for downloading and recording (``revision``, ``force_cache_sync``,
    ``download_videos``, ``batch_encoding_size``, ``vcodec``, ``streaming_encoding``,
    ``encoder_queue_maxsize``, ``encoder_threads``) are accepted and have no effect;
    ``video_backend`` is recorded but decoding is always roboframes'.
    """

    def __init__(
        self,
        repo_id: str,
        root: str | os.PathLike[str] | None = None,
        episodes: list[int] | None = None,
        image_transforms: Callable | None = None,
        delta_timestamps: dict[str, list[float]] | None = None,
        tolerance_s: float = 1e-4,
        revision: str | None = None,
        force_cache_sync: bool = False,
        download_videos: bool = True,
        video_backend: str | None = None,
        batch_encoding_size: int = 1,
        vcodec: str = "libsvtav1",
        streaming_encoding: bool = False,
        encoder_queue_maxsize: int = 30,
        encoder_threads: int | None = None,
        *,
        frame_dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
        decode_threads: int | None = None,
        strict_decode: bool = False,
        normalize: dict[str, Any] | None = None,
        stats: dict[str, dict[str, Any]] | str | None = None,
        streaming: bool = False,
        storage_options: remote.StorageOptions | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.repo_id = repo_id
        self.streaming = bool(streaming)
        self.storage_options = None if storage_options is None else dict(storage_options)
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        self.root: str | Path = resolve_root(repo_id, root, self.streaming, revision if revision else CODEBASE_VERSION)
        self.image_transforms = image_transforms
        self.delta_timestamps = delta_timestamps
        self.episodes = episodes
        self.tolerance_s = tolerance_s
        self.revision = revision if revision else CODEBASE_VERSION
        self.video_backend = video_backend if video_backend else "roboframes"
        self.frame_dtype = frame_dtype
        self.channels_last = bool(channels_last)
        self._decode_threads_arg = decode_threads
        _ops.frame_dtype_name(frame_dtype)  # validates

        #: The NumPy reader (``roboframes.Dataset``) this dataset's items come from.
        self.reader = Dataset(
            self.root,
            episodes=episodes,
            delta_timestamps=delta_timestamps,
            tolerance_s=tolerance_s,
            decode_threads=decode_threads,
            strict_decode=strict_decode,
            storage_options=self.storage_options,
            cache_dir=self.cache_dir,
        )
        self.root = self.reader.root  # a remote root's location (a Hub revision as its commit)
        self.storage_options, self.cache_dir = self.reader.storage_options, self.reader.cache_dir
        self.meta = LeRobotDatasetMetadata(repo_id, self.root, self.revision, _opened=self.reader)
        self.delta_indices: dict[str, list[int]] | None = self.reader.delta_indices
        self.normalize = normalize
        if normalize and stats == "recompute":
            stats = self.reader.compute_stats(progress=False)  # once: workers get the numbers
        self._norm_stats = stats
        self._norm = tools.normalization(self.reader, normalize, stats)
        normalized_cameras = [n[0] for n in self._norm or [] if n[0] in self.reader.camera_keys]
        if normalized_cameras and frame_dtype != torch.float32:
            raise InvalidArgumentError(
                f"normalize= of cameras {normalized_cameras} needs frame_dtype=torch.float32, got {frame_dtype}"
            )
        if normalized_cameras and image_transforms is not None:
            # LeRobot transforms [0, 1] frames and normalises afterwards, in the policy
            raise InvalidArgumentError(
                f"normalize= of cameras {normalized_cameras} with image_transforms would transform normalised "
                "frames; normalise the cameras after the transforms (LeRobot's order) instead"
            )
        if self._norm and frame_dtype == torch.bfloat16:
            raise InvalidArgumentError(
                "normalize= reads frames through NumPy, which has no bfloat16: use another frame_dtype"
            )
        self._layout()

    def _layout(self) -> None:
        """Precomputes how the operator's tensors become items."""
        specs = self.reader.output_specs(_ops.frame_dtype_name(self.frame_dtype), self.channels_last)
        self._keys = [spec.key for spec in specs]
        self._tensor_keys = [spec.key for spec in specs if spec.is_array]
        # LeRobot squeezes the time dimension of a video key with a single delta
        self._squeeze = {spec.key for spec in specs if spec.kind == "video" and spec.window == 1}
        self._string_features = [spec.key for spec in specs if spec.kind == "string"]
        self._has_subtask = any(spec.kind == "subtask" for spec in specs)
        # Tasks by their task_index value, as the format means it and as the NumPy reader does.
        # (LeRobot 0.4.4 looks a task up by row position in meta/tasks.parquet, which gives
        # another task when the file's rows are not in task_index order.)
        self._task_names = dict(self.reader.tasks)
        self._subtask_names = dict(self.reader.subtasks or {})
        self._camera_keys = list(self.meta.camera_keys)

    # -- LeRobot's attributes ---------------------------------------------------------
    @property
    def fps(self) -> int:
        """Frames per second of the dataset."""
        return self.meta.fps

    @property
    def num_frames(self) -> int:
        """Number of frames of the selected episodes (LeRobot's rule: ``info.json``'s
        ``total_frames`` when all episodes are selected)."""
        return len(self.reader) if self.episodes is not None else self.meta.total_frames

    @property
    def num_episodes(self) -> int:
        """Number of episodes selected (LeRobot's count: ``len(episodes)`` when given)."""
        return len(self.episodes) if self.episodes is not None else self.meta.total_episodes

    @property
    def features(self) -> dict[str, dict]:
        """``info.json``'s features."""
        return self.meta.features

    @property
    def decode_threads(self) -> int:
        """Decoding threads this process uses (in a DataLoader worker, by default, the cores
        divided by the number of workers)."""
        return self.reader.decode_threads

    @property
    def handle(self) -> int:
        """The handle of this dataset for the ``torch.ops.roboframes`` operators."""
        return self.reader.handle

    def __len__(self) -> int:
        return self.num_frames

    # -- items --------------------------------------------------------------------------
    def __getitem__(self, idx: int | torch.Tensor) -> Item:
        return self.__getitems__([idx])[0]

    def __getitems__(self, indices: Sequence[int | torch.Tensor] | torch.Tensor) -> list[Item]:
        """The items at ``indices``, decoded in one native call (``torch.ops.roboframes.get_batch``).

        ``torch.utils.data.DataLoader`` calls this with each batch's indices.
        """
        self._fit_threads_to_workers()
        idx = _index_tensor(indices)  # the core resolves negatives
        if self._norm:
            # normalised in the core's fill (the operator has no statistics)
            arrays = self.reader.fill_batch(
                idx.numpy(), _ops.frame_dtype_name(self.frame_dtype), self.channels_last, normalize=self._norm
            )
            tensors = [torch.from_numpy(arrays[k]) for k in self._tensor_keys]
        else:
            tensors = _ops.get_batch(
                self.handle,
                idx,
                frame_dtype=self.frame_dtype,
                channels_last=self.channels_last,
            )
        batch: dict[str, Any] = dict(zip(self._tensor_keys, tensors, strict=True))
        for key in self._squeeze:
            batch[key] = batch[key].squeeze(1)
        if self._string_features:
            strings = self.reader.get_values(idx.tolist())
            for key in self._string_features:
                batch[key] = strings[key]
        # task strings the way LeRobot looks them up (position in meta/tasks.parquet)
        tasks = [self._label(self._task_names, t, "task", idx) for t in batch["task_index"].tolist()]
        subtasks = None
        if self._has_subtask:
            subtasks = [self._label(self._subtask_names, t, "subtask", idx) for t in batch["subtask_index"].tolist()]
        keys = [k for k in self._keys if k in batch]  # the core's (LeRobot's) key order
        batch["task"] = tasks
        keys.append("task")
        if subtasks is not None:
            batch["subtask"] = subtasks
            keys.append("subtask")
        made = _Batch(batch, keys)
        # Transformed frames, and windowed strings (collated by transposition), are collated
        # the ordinary way.
        fast = self.image_transforms is None and not any(
            k in self._string_features and k in (self.delta_timestamps or {}) for k in keys
        )
        # one call per key makes all of its item views (unbind), not one indexing per item
        columns = [batch[k].unbind(0) if isinstance(batch[k], torch.Tensor) else batch[k] for k in keys]
        items: list[Item] = []
        for pos, row in enumerate(zip(*columns, strict=True)):
            item = BatchItem(zip(keys, row, strict=True))
            item._batch = made if fast else None
            item._pos = pos
            if self.image_transforms is not None:
                for cam in self._camera_keys:
                    item[cam] = self.image_transforms(item[cam])
            made.values.append(row)
            items.append(item)
        return items

    def _label(self, table: dict[int, str], value: int, kind: str, idx: torch.Tensor) -> str:
        """The task (or subtask) of ``{kind}_index`` ``value``; ``MetadataError`` naming the file
        when ``meta/{kind}s.parquet`` has none (the core checks this first; kept as a guard)."""
        try:
            return table[value]
        except KeyError:
            path = remote.join(self.root, "meta", f"{kind}s.parquet")
            raise MetadataError(
                f"file '{path}': invalid metadata: {kind}_index {value} (items {idx.tolist()}) has no entry",
                path=str(path),
                key=f"{kind}_index",
            ) from None

    def _fit_threads_to_workers(self) -> None:
        """In a DataLoader worker, decode with cores / num_workers threads (at least 1), so
        that all workers together match the cores; ``decode_threads``, when given, wins."""
        info = torch.utils.data.get_worker_info()
        if info is None or self._decode_threads_arg is not None:
            return
        pid = os.getpid()
        if getattr(self, "_threads_fitted_in", None) == pid:
            return
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.reader.set_decode_threads(max(1, cores // max(1, info.num_workers)))
        self._threads_fitted_in = pid

    # -- pickling: reopen in the receiving process -------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "root": str(self.root),
            "episodes": self.episodes,
            "image_transforms": self.image_transforms,
            "delta_timestamps": self.delta_timestamps,
            "tolerance_s": self.tolerance_s,
            "revision": self.revision,
            "video_backend": self.video_backend,
            "frame_dtype": self.frame_dtype,
            "channels_last": self.channels_last,
            "decode_threads": self._decode_threads_arg,
            "strict_decode": self.reader.strict_decode,
            "normalize": self.normalize,
            "stats": self._norm_stats,
            "storage_options": self.storage_options,
            "cache_dir": self.cache_dir,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        LeRobotDataset.__init__(self, **state)

    @classmethod
    def create(cls, *args: Any, **kwargs: Any) -> Any:
        """Recording is LeRobot's: this returns ``lerobot``'s own ``LeRobotDataset.create(...)``."""
        from lerobot.datasets.lerobot_dataset import LeRobotDataset as _LeRobotWriter

        return _LeRobotWriter.create(*args, **kwargs)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({{\n"
            f"    Repository ID: '{self.repo_id}',\n"
            f"    Number of selected episodes: '{self.num_episodes}',\n"
            f"    Number of selected samples: '{self.num_frames}',\n"
            f"    Features: '{list(self.features)}',\n"
            "})',\n"
        )
