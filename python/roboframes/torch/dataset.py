"""``roboframes.torch.LeRobotDataset``: LeRobot's ``LeRobotDataset`` for reading, in the API of
LeRobot 0.4.4 (:class:`LeRobotDataset04`) and of LeRobot 0.6.x (:class:`LeRobotDataset06`),
with every item and batch produced by the roboframes core through ``torch.ops.roboframes``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .. import remote, tools
from ..dataset import Dataset
from ..errors import InvalidArgumentError, MetadataError
from . import _ops
from .batch import BatchItem, _Batch, _index_tensor
from .device import DeviceLike, resolve_device
from .metadata import (
    CODEBASE_VERSION,
    LeRobotDatasetMetadata04,
    LeRobotDatasetMetadata06,
    resolve_root,
    with_token,
)

Item = dict[str, Any]
logger = logging.getLogger(__name__)


class _DropIn(torch.utils.data.Dataset):
    """What both lines' drop-ins share: the NumPy reader the items come from, the batch path
    (one ``torch.ops.roboframes.get_batch`` per DataLoader batch), LeRobot's item layout,
    worker threads and pickling. Each line's class opens it with its own constructor."""

    #: This line's constructor arguments (for pickling: a DataLoader worker reopens with them).
    _args: dict[str, Any]
    meta: LeRobotDatasetMetadata04 | LeRobotDatasetMetadata06

    def _open(
        self,
        *,
        repo_id: str,
        root: str | os.PathLike[str] | None,
        episodes: list[int] | None,
        image_transforms: Callable | None,
        delta_timestamps: dict[str, list[float]] | None,
        tolerance_s: float,
        revision: str | None,
        video_backend: str | None,
        frame_dtype: torch.dtype,
        image_dtype: torch.dtype,
        channels_last: bool,
        reader_options: dict[str, Any],
        normalize: dict[str, Any] | None,
        stats: dict[str, dict[str, Any]] | str | None,
        streaming: bool,
        storage_options: remote.StorageOptions | None,
        cache_dir: str | os.PathLike[str] | None,
        depth_output_unit: str,
        device: DeviceLike,
        line: str,
        repo_type: str = "dataset",
        token: str | bool | None = None,
    ) -> None:
        self.repo_id = repo_id
        self.streaming = bool(streaming)
        storage_options = with_token(storage_options, token)
        self.storage_options = None if storage_options is None else dict(storage_options)
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        self.revision = revision if revision else CODEBASE_VERSION
        self.root: str | Path = resolve_root(
            repo_id, root, self.streaming, self.revision, hub_cache=line == "0.6", repo_type=repo_type
        )
        self.image_transforms = image_transforms
        self.delta_timestamps = delta_timestamps
        self.episodes = episodes
        self.tolerance_s = tolerance_s
        self.video_backend = video_backend if video_backend else "roboframes"
        self.frame_dtype = frame_dtype
        self._image_dtype = image_dtype
        self.channels_last = bool(channels_last)
        #: Where the items' tensors are (``device=``).
        self.device = resolve_device(device)
        self._auto_device = isinstance(device, str) and device.strip().lower() == "auto"
        self._line = line
        _ops.frame_dtype_name(frame_dtype)  # validates
        _ops.frame_dtype_name(image_dtype)

        self._numpy = Dataset(
            self.root,
            episodes=episodes,
            delta_timestamps=delta_timestamps,
            tolerance_s=tolerance_s,
            storage_options=self.storage_options,
            cache_dir=self.cache_dir,
            depth_output_unit=depth_output_unit,
            **reader_options,
        )
        self.root = self._numpy.root  # a remote root's location (a Hub revision as its commit)
        self.storage_options, self.cache_dir = self._numpy.storage_options, self._numpy.cache_dir
        if line == "0.6":
            self.meta = LeRobotDatasetMetadata06(
                repo_id, self.root, self.revision, repo_type=repo_type, _opened=self._numpy
            )
            self.meta.rescale_depth_stats(depth_output_unit)
        else:
            self.meta = LeRobotDatasetMetadata04(repo_id, self.root, self.revision, _opened=self._numpy)
        self.delta_indices: dict[str, list[int]] | None = self._numpy.delta_indices
        self.normalize = normalize
        if normalize and stats == "recompute":
            stats = self._numpy.compute_stats(progress=False)  # once: workers get the numbers
        self._norm_stats = stats
        self._norm = tools.normalization(self._numpy, normalize, stats)
        depth = set(self._numpy.depth_keys)
        videos = set(self._numpy.video_keys) - depth
        images = set(self._numpy.image_keys) - depth
        normalized_cameras = [n[0] for n in self._norm or [] if n[0] in videos | images]
        not_float = [k for k in normalized_cameras if (frame_dtype if k in videos else image_dtype) != torch.float32]
        if not_float:
            raise InvalidArgumentError(
                f"normalize= of cameras {not_float} needs float32 frames (frame_dtype=torch.float32, and "
                f"not return_uint8), got {frame_dtype}"
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
        self._args.update(
            root=str(self.root),
            storage_options=self.storage_options,
            cache_dir=self.cache_dir,
            stats=self._norm_stats,
            streaming=False,
        )
        self._layout()

    def _layout(self) -> None:
        """Precomputes how the operator's tensors become items."""
        specs = self._numpy.output_specs(_ops.frame_dtype_name(self.frame_dtype), self.channels_last)
        # LeRobot 0.6 items have no `subtask` (its language columns replaced subtasks)
        drop = {"subtask"} if self._line == "0.6" else set()
        self._keys = [spec.key for spec in specs if spec.key not in drop]
        self._tensor_keys = [spec.key for spec in specs if spec.is_array]
        # LeRobot squeezes the time dimension of a video key with a single delta
        self._squeeze = {spec.key for spec in specs if spec.kind == "video" and spec.window == 1}
        self._value_features = [spec.key for spec in specs if spec.kind in ("string", "language")]
        self._windowed_strings = [k for k in self._value_features if k in (self.delta_timestamps or {})]
        self._has_subtask = any(spec.kind == "subtask" for spec in specs) and not drop
        # image features as float32 [0, 1] when video frames come as uint8 (LeRobot 0.6's
        # return_uint8 leaves images float32)
        self._float_images = (
            [spec.key for spec in specs if spec.kind == "image" and spec.depth is None]
            if self._image_dtype != self.frame_dtype
            else []
        )
        # Tasks by their task_index value, as the format means it and as the NumPy reader does.
        # (LeRobot 0.4.4 looks a task up by row position in meta/tasks.parquet, which gives
        # another task when the file's rows are not in task_index order.)
        self._task_names = dict(self._numpy.tasks)
        self._subtask_names = dict(self._numpy.subtasks or {})
        # LeRobot 0.6 applies image transforms to colour cameras only
        depth = set(self._numpy.depth_keys) if self._line == "0.6" else set()
        self._transformed_cameras = [k for k in self.meta.camera_keys if k not in depth]

    # -- LeRobot's attributes ---------------------------------------------------------
    @property
    def fps(self) -> int:
        """Frames per second of the dataset."""
        return self.meta.fps

    @property
    def num_frames(self) -> int:
        """Number of frames of the selected episodes, by the episode table: ``info.json``'s
        ``total_frames`` when that agrees (a stale total is a ``MetadataWarning`` at open, where
        LeRobot would index past the data or short of it)."""
        return len(self._numpy)

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
        return self._numpy.decode_threads

    @property
    def handle(self) -> int:
        """The handle of this dataset for the ``torch.ops.roboframes`` operators."""
        return self._numpy.handle

    @property
    def numpy_reader(self) -> Dataset:
        """The NumPy reader (``roboframes.Dataset``) this dataset's items come from."""
        return self._numpy

    def __len__(self) -> int:
        return self.num_frames

    def set_image_transforms(self, image_transforms: Callable | None) -> None:
        """Replaces the transform applied to camera frames (colour cameras, in the 0.6 line)."""
        if image_transforms is not None and not callable(image_transforms):
            raise TypeError("image_transforms must be callable or None.")
        self.image_transforms = image_transforms
        self._args["image_transforms"] = image_transforms

    def clear_image_transforms(self) -> None:
        """Removes the transform applied to camera frames."""
        self.set_image_transforms(None)

    # -- items --------------------------------------------------------------------------
    def __getitem__(self, idx: int | slice | torch.Tensor) -> Any:
        if isinstance(idx, slice):
            return self.__getitems__(list(range(*idx.indices(len(self)))))
        return self.__getitems__([idx])[0]

    def __getitems__(self, indices: Sequence[int | torch.Tensor] | torch.Tensor) -> list[Item]:
        """The items at ``indices``, decoded in one native call (``torch.ops.roboframes.get_batch``).

        ``torch.utils.data.DataLoader`` calls this with each batch's indices.
        """
        self._fit_threads_to_workers()
        if self.device.type != "cpu" and torch.utils.data.get_worker_info() is not None and not self._auto_device:
            raise InvalidArgumentError(
                f"device='{self.device}' in a DataLoader worker: CUDA tensors made in worker processes cannot be "
                "shared safely; use num_workers=0 (roboframes decodes on its own threads), or device='cpu' with "
                "pin_memory=True"
            )
        idx = _index_tensor(indices)  # the core resolves negatives
        if len(idx) == 0:
            return []
        if self._norm:
            # normalised in the core's fill (the operator has no statistics)
            arrays = self._numpy.fill_batch(
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
        # task strings the way LeRobot looks them up (position in meta/tasks.parquet)
        tasks = [self._label(self._task_names, t, "task", idx) for t in batch["task_index"].tolist()]
        subtasks = None
        if self._has_subtask:
            subtasks = [self._label(self._subtask_names, t, "subtask", idx) for t in batch["subtask_index"].tolist()]
        # ("auto" in a DataLoader worker: the CPU, as with workers CUDA tensors cannot be made)
        if self.device.type != "cpu" and torch.utils.data.get_worker_info() is None:
            # (before the frames' float conversion: uint8 frames cross, and are converted there)
            batch = {k: t.to(self.device) for k, t in batch.items()}
        for key in self._squeeze:
            batch[key] = batch[key].squeeze(1)
        for key in self._float_images:
            frames = batch[key].to(self._image_dtype)
            # (on a GPU, by a divisor on the device: a CPU scalar would make torch multiply by
            # its reciprocal there, which can differ from LeRobot's value / 255 in the last bit)
            batch[key] = frames.div_(
                255 if frames.is_cpu else torch.full((), 255, dtype=frames.dtype, device=frames.device)
            )
        if self._value_features:
            values = self._numpy.get_values(idx.tolist())
            for key in self._value_features:
                batch[key] = values[key]
        keys = [k for k in self._keys if k in batch]  # the core's (LeRobot's) key order
        batch["task"] = tasks
        keys.append("task")
        if subtasks is not None:
            batch["subtask"] = subtasks
            keys.append("subtask")
        made = _Batch(batch, keys)
        # Transformed frames, and windowed strings (collated by transposition), are collated
        # the ordinary way.
        fast = self.image_transforms is None and not self._windowed_strings
        # one call per key makes all of its item views (unbind), not one indexing per item
        columns = [batch[k].unbind(0) if isinstance(batch[k], torch.Tensor) else batch[k] for k in keys]
        items: list[Item] = []
        for pos, row in enumerate(zip(*columns, strict=True)):
            item = BatchItem(zip(keys, row, strict=True))
            item._batch = made if fast else None
            item._pos = pos
            if self.image_transforms is not None:
                for cam in self._transformed_cameras:
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
        if info is None or self._numpy.options.decode_threads is not None:
            return
        pid = os.getpid()
        if getattr(self, "_threads_fitted_in", None) == pid:
            return
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self._numpy.set_decode_threads(max(1, cores // max(1, info.num_workers)))
        self._threads_fitted_in = pid

    # -- pickling: reopen in the receiving process -------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return dict(self._args)

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, **state)

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


class LeRobotDataset04(_DropIn):
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
        normalize: ``{key: mode}`` with LeRobot's ``NormalizationMode`` names or values
            (``MEAN_STD``, ``MIN_MAX``, ``QUANTILES``, ``QUANTILE10``, ``IDENTITY``): those
            float32 entries come normalised in the core, equal to what LeRobot's
            ``NormalizerProcessorStep`` makes of them (float tolerance), so a training loop can
            skip that step for them. Statistics: ``stats`` (a ``{key: {stat: array}}`` dict, or
            ``"recompute"``), default ``meta/stats.json``.
        streaming: with no ``root``, read ``hf://datasets/{repo_id}@{revision}`` in place.
        storage_options: settings of a remote root's store (see ``roboframes.remote``).
        cache_dir: a folder for blocks of remote files on local disk (keyed by ETag).
        depth_output_unit: what depth maps (LeRobot 0.6's) are read as (``"mm"``, ``"m"``).
        device: where the items' tensors are: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, a
            ``torch.device`` or ``"auto"`` (a GPU when there is one). A CUDA batch goes to the
            device as the core made it (frames in ``frame_dtype``; 0.6's image features beside
            ``return_uint8`` videos are converted to float there); the values are the CPU's. Use a CUDA device with
            ``num_workers=0`` and without ``pin_memory`` (decoding runs on roboframes' own
            threads; in a worker, ``"auto"`` gives CPU items and ``"cuda"`` is an error);
            ``DeviceUnavailableError`` when CUDA cannot be used.
        reader_options: any other option of the NumPy reader (``roboframes.Dataset``:
            ``decode_threads``, ``strict_decode``, ``block_cache_bytes``, ...), passed to it
            as given; an unknown one is a ``TypeError``.

    Arguments LeRobot uses for downloading and recording (``revision``, ``force_cache_sync``,
    ``download_videos``, ``batch_encoding_size``, ``vcodec``, ``streaming_encoding``,
    ``encoder_queue_maxsize``, ``encoder_threads``) are accepted and have no effect;
    ``video_backend`` is recorded but decoding is always roboframes'. ``reader`` is the NumPy
    reader (``roboframes.Dataset``) the items come from.
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
        normalize: dict[str, Any] | None = None,
        stats: dict[str, dict[str, Any]] | str | None = None,
        streaming: bool = False,
        storage_options: remote.StorageOptions | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        depth_output_unit: str = "mm",
        device: DeviceLike = None,
        **reader_options: Any,
    ) -> None:
        super().__init__()
        self._args = {
            "repo_id": repo_id,
            "episodes": episodes,
            "image_transforms": image_transforms,
            "delta_timestamps": delta_timestamps,
            "tolerance_s": tolerance_s,
            "revision": revision,
            "video_backend": video_backend,
            "frame_dtype": frame_dtype,
            "channels_last": channels_last,
            "normalize": normalize,
            **reader_options,
            "depth_output_unit": depth_output_unit,
            "device": _device_arg(device),
        }
        _check_depth_unit(depth_output_unit)
        self._open(
            repo_id=repo_id,
            root=root,
            episodes=episodes,
            image_transforms=image_transforms,
            delta_timestamps=delta_timestamps,
            tolerance_s=tolerance_s,
            revision=revision,
            video_backend=video_backend,
            frame_dtype=frame_dtype,
            image_dtype=frame_dtype,
            channels_last=channels_last,
            reader_options=reader_options,
            normalize=normalize,
            stats=stats,
            streaming=streaming,
            storage_options=storage_options,
            cache_dir=cache_dir,
            depth_output_unit=depth_output_unit,
            device=device,
            line="0.4",
        )

    @property
    def reader(self) -> Dataset:
        """The NumPy reader (``roboframes.Dataset``) this dataset's items come from."""
        return self._numpy


def _device_arg(device: DeviceLike) -> str | None:
    """``device=`` as a pickled drop-in keeps it: ``"auto"`` (and ``None``) as given, so that a
    worker resolves it; any other device by its resolved name (``cuda:N``)."""
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return device
    return str(resolve_device(device))


def _check_depth_unit(unit: Any) -> None:
    """LeRobot's depth output units (``"m"``, ``"mm"``); anything else is a ``ValueError``
    (an ``InvalidArgumentError``)."""
    if unit not in ("m", "mm"):
        raise InvalidArgumentError(f"depth_output_unit must be 'm' or 'mm', got {unit!r}")


class LeRobotDataset06(_DropIn):
    """A drop-in for LeRobot 0.6.x's ``LeRobotDataset`` for reading: its constructor (argument
    order included), attributes and items.

    Items are LeRobot 0.6.1's: video frames float32 ``(C, H, W)`` in [0, 1], or uint8 with
    ``return_uint8=True`` (image features stay float32); depth maps (``is_depth_map``) float32
    ``(1, H, W)`` in ``depth_output_unit`` (``"mm"`` default, or ``"m"``), dequantised as LeRobot
    does; language columns (``language_persistent``, ``language_events``) as their lists of
    annotation dicts; ``{key}_is_pad`` masks and ``task``; no ``subtask``. ``image_transforms``
    apply to colour cameras (not depth maps) and can be changed with
    :meth:`set_image_transforms` / :meth:`clear_image_transforms`. Slices give lists of items.
    ``__getitems__`` decodes a whole DataLoader batch in one native call.

    Also LeRobot 0.6's ``episode_filter`` (a predicate over ``meta/episodes`` rows, intersected
    with ``episodes``), ``absolute_to_relative_idx``, ``depth_output_unit``, ``hf_dataset``
    (LeRobot's own Hugging Face dataset of the selected rows, built on first use),
    ``select_columns`` and ``get_raw_item``, and ``meta`` as :class:`LeRobotDatasetMetadata06`
    (depth statistics in ``depth_output_unit``). With no ``root`` the dataset is found under
    ``$HF_LEROBOT_HOME/{repo_id}`` or in LeRobot 0.6's Hub snapshot cache
    (``$HF_LEROBOT_HOME/hub``); nothing is downloaded. Arguments for recording and downloading
    (``force_cache_sync``, ``download_videos``, ``batch_encoding_size``, ``rgb_encoder``,
    ``depth_encoder``, ``encoder_threads``, ``streaming_encoding``, ``encoder_queue_maxsize``)
    are accepted and have no effect; ``token`` is sent when the Hub is read in place.

    roboframes' own options (keyword-only) are :class:`LeRobotDataset04`'s; ``frame_dtype``,
    when given, sets the element type of every camera frame (videos and images) and overrides
    ``return_uint8``.
    """

    def __init__(
        self,
        repo_id: str,
        root: str | os.PathLike[str] | None = None,
        episodes: list[int] | None = None,
        episode_filter: Callable[[dict], bool] | None = None,
        image_transforms: Callable | None = None,
        delta_timestamps: dict[str, list[float]] | None = None,
        tolerance_s: float = 1e-4,
        revision: str | None = None,
        force_cache_sync: bool = False,
        download_videos: bool = True,
        video_backend: str | None = None,
        return_uint8: bool = False,
        depth_output_unit: str = "mm",
        batch_encoding_size: int = 1,
        rgb_encoder: Any | None = None,
        depth_encoder: Any | None = None,
        encoder_threads: int | None = None,
        streaming_encoding: bool = False,
        encoder_queue_maxsize: int = 30,
        *,
        token: str | bool | None = None,
        frame_dtype: torch.dtype | None = None,
        channels_last: bool = False,
        normalize: dict[str, Any] | None = None,
        stats: dict[str, dict[str, Any]] | str | None = None,
        streaming: bool = False,
        storage_options: remote.StorageOptions | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        device: DeviceLike = None,
        **reader_options: Any,
    ) -> None:
        super().__init__()
        if image_transforms is not None and not callable(image_transforms):
            raise TypeError("image_transforms must be callable or None.")
        _check_depth_unit(depth_output_unit)
        self._return_uint8 = bool(return_uint8)
        self._depth_output_unit = depth_output_unit
        video_dtype = frame_dtype if frame_dtype is not None else (torch.uint8 if return_uint8 else torch.float32)
        image_dtype = frame_dtype if frame_dtype is not None else torch.float32
        self._args = {
            "repo_id": repo_id,
            "episodes": episodes,
            "image_transforms": image_transforms,
            "delta_timestamps": delta_timestamps,
            "tolerance_s": tolerance_s,
            "revision": revision,
            "video_backend": video_backend,
            "return_uint8": return_uint8,
            "depth_output_unit": depth_output_unit,
            "token": token,
            "frame_dtype": frame_dtype,
            "channels_last": channels_last,
            "normalize": normalize,
            "device": _device_arg(device),
            **reader_options,
        }
        if episode_filter is not None:
            # (the metadata of the root alone: the filter chooses the episodes to open)
            probe = LeRobotDatasetMetadata06(
                repo_id, root, revision, token=token, streaming=streaming, storage_options=storage_options
            )
            if episodes is not None and any(e < 0 or e >= probe.total_episodes for e in episodes):
                logger.warning(
                    "Some episodes in the provided episodes list are out of range for this dataset (%d).",
                    probe.total_episodes,
                )
            resolved = probe.filter_episodes(episode_filter, candidates=episodes)
            if not resolved:
                raise ValueError(
                    "The episode filter did not match any episode. Make sure the filter and episodes list "
                    "are valid and compatible."
                )
            episodes = resolved
            root = probe.root
            self._args["episodes"] = episodes  # (a filter may not pickle; its result does)
        self._open(
            repo_id=repo_id,
            root=root,
            episodes=episodes,
            image_transforms=image_transforms,
            delta_timestamps=delta_timestamps,
            tolerance_s=tolerance_s,
            revision=revision,
            video_backend=video_backend,
            frame_dtype=video_dtype,
            image_dtype=image_dtype,
            channels_last=channels_last,
            reader_options=reader_options,
            normalize=normalize,
            stats=stats,
            streaming=streaming,
            storage_options=storage_options,
            cache_dir=cache_dir,
            depth_output_unit=depth_output_unit,
            device=device,
            line="0.6",
            token=token,
        )
        self._reader = DatasetReader06(self)

    @property
    def depth_output_unit(self) -> str:
        """The unit (``"m"`` or ``"mm"``) depth maps and their statistics are returned in."""
        return self._depth_output_unit

    @property
    def reader(self) -> DatasetReader06:
        """LeRobot 0.6's ``DatasetReader`` side of the dataset (``hf_dataset``,
        ``delta_indices``, ``_absolute_to_relative_idx``, ``get_item``); anything else is the
        NumPy reader's (``roboframes.Dataset``)."""
        return self._reader

    @property
    def absolute_to_relative_idx(self) -> dict[int, int] | None:
        """Mapping from absolute frame indices (``index``) to item positions; None when every
        episode is selected (then they are the same). Made on first use, then kept."""
        if self.episodes is None:
            return None
        cached: dict[int, int] | None = self.__dict__.get("_abs_to_rel")
        if cached is not None:
            return cached
        out: dict[int, int] = {}
        pos = 0
        table = {e["episode_index"]: e for e in self._numpy.episode_table()}
        for ep in self._numpy.episodes:
            row = table[ep]
            start, end = int(row["dataset_from_index"]), int(row["dataset_to_index"])
            for i, g in enumerate(range(start, end)):
                out[g] = pos + i
            pos += end - start
        self._abs_to_rel = out  # (made once: LeRobot's scripts read it per frame)
        return out

    @property
    def hf_dataset(self) -> Any:
        """LeRobot's own Hugging Face dataset of the selected rows (``datasets.Dataset``, with
        LeRobot's features and torch transform), built on first use with LeRobot's functions
        (the table is read by ``datasets``, with its cache). roboframes' items never use it."""
        return self._reader.hf_dataset

    def select_columns(self, column_names: str | list[str]) -> Any:
        """``hf_dataset.select_columns(...)``, as LeRobot's."""
        return self.hf_dataset.select_columns(column_names)

    def get_raw_item(self, idx: int) -> dict:
        """The raw row ``idx`` of ``hf_dataset`` (no windows, no decoding), as LeRobot's."""
        row: dict[str, Any] = dict(self.hf_dataset[idx])
        return row


class DatasetReader06:
    """LeRobot 0.6's ``DatasetReader`` side of a :class:`LeRobotDataset06`: ``hf_dataset``,
    ``_absolute_to_relative_idx``, ``delta_indices``, ``episodes``, ``root``, ``num_frames``,
    ``num_episodes``, ``get_item`` and the image-transform setters. Other attributes are the
    NumPy reader's (``roboframes.Dataset``: ``decode_threads``, ``handle``, ...)."""

    def __init__(self, owner: LeRobotDataset06) -> None:
        self._owner = owner
        self._hf: Any = None

    def __getattr__(self, name: str) -> Any:
        # (only for names this class lacks; never for its own state or Python's protocols, so
        # that copying or unpickling an instance without `_owner` fails plainly)
        owner = self.__dict__.get("_owner")
        if owner is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(owner.numpy_reader, name)

    @property
    def root(self) -> str | Path:
        return self._owner.root

    @property
    def episodes(self) -> list[int] | None:
        return self._owner.episodes

    @property
    def delta_indices(self) -> dict[str, list[int]] | None:
        return self._owner.delta_indices

    @property
    def num_frames(self) -> int:
        return self._owner.num_frames

    @property
    def num_episodes(self) -> int:
        return self._owner.num_episodes

    @property
    def _absolute_to_relative_idx(self) -> dict[int, int] | None:
        return self._owner.absolute_to_relative_idx

    def get_item(self, idx: int) -> Item:
        item: Item = self._owner[idx]
        return item

    def set_image_transforms(self, image_transforms: Callable | None) -> None:
        self._owner.set_image_transforms(image_transforms)

    def clear_image_transforms(self) -> None:
        self._owner.clear_image_transforms()

    @property
    def hf_dataset(self) -> Any:
        if self._hf is None:
            self._hf = _lerobot_hf_dataset(self._owner)
        return self._hf

    def load_and_activate(self) -> None:
        """Builds ``hf_dataset`` (LeRobot calls this before reading; roboframes needs it not)."""
        _ = self.hf_dataset


def _lerobot_hf_dataset(ds: LeRobotDataset06) -> Any:
    """The Hugging Face dataset LeRobot 0.6 would hold for ``ds``: its ``load_nested_dataset``
    over ``data/`` with its features (language columns included), filtered to the selected
    episodes, with its ``hf_transform_to_torch``."""
    if isinstance(ds.root, str):
        raise InvalidArgumentError(
            f"hf_dataset reads the data tables with Hugging Face datasets from a local root; '{ds.root}' is "
            "remote (roboframes' items and batches do not need it)"
        )
    try:
        from lerobot.datasets.feature_utils import get_hf_features_from_features
        from lerobot.datasets.io_utils import hf_transform_to_torch, load_nested_dataset
    except ImportError as e:
        raise ImportError(f"hf_dataset is built with LeRobot's own functions: install lerobot 0.6 ({e})") from e
    features = get_hf_features_from_features(ds.meta.features)
    hf = load_nested_dataset(Path(ds.root) / "data", features=features, episodes=ds.episodes)
    hf.set_transform(hf_transform_to_torch)
    return hf
