"""The framework-neutral dataset: LeRobot items as NumPy arrays."""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _native, remote, tools
from ._native import OutputSpec
from .buffers import BufferPool, per_item
from .errors import IndexOutOfRangeError, InvalidArgumentError, MetadataError, MetadataWarning
from .options import ReaderOptions, thread_count
from .tools import EpisodeList, episode_records

if TYPE_CHECKING:
    from .loader import Loader
    from .quality import QualityReport

Item = dict[str, Any]


def is_depth_feature(feature: Mapping[str, Any]) -> bool:
    """Whether an ``info.json`` feature is a depth map: its ``info.is_depth_map`` (or the legacy
    ``info["video.is_depth_map"]`` / ``video_info["video.is_depth_map"]``) is true, LeRobot
    0.6's rule."""
    info = feature.get("info") or {}
    video_info = feature.get("video_info") or {}
    return bool(
        info.get("is_depth_map", False)
        or info.get("video.is_depth_map", False)
        or video_info.get("video.is_depth_map", False)
    )


def depth_stats_in(
    stats: dict[str, Any], features: Mapping[str, Mapping[str, Any]], unit: str, *, recomputed: bool = False
) -> dict[str, Any]:
    """``stats`` with each depth map's statistics turned from the unit they were recorded in
    (the feature's ``info.depth_unit``) into ``unit`` (``"mm"`` or ``"m"``), as LeRobot 0.6's
    ``rescale_depth_stats`` does (every statistic but ``count`` scaled; features without a
    recorded unit, and ``"raw"``, left as they are). ``recomputed``: the statistics come from
    :func:`roboframes.tools.compute_stats`, which gives a depth video without a recorded unit in
    millimetres (its codes dequantised so, as its items are). A new dict; ``stats`` is not
    changed."""
    out = dict(stats)
    for key, feature in features.items():
        recorded = (feature.get("info") or {}).get("depth_unit")
        if recorded is None and recomputed and feature.get("dtype") == "video":
            recorded = "mm"
        if not is_depth_feature(feature) or key not in out or unit == "raw" or recorded in (None, unit):
            continue
        factor = 1000.0 if recorded == "m" else 1.0 / 1000.0
        out[key] = {name: v if name == "count" else v * factor for name, v in out[key].items()}
    return out


def feature_keys(features: Mapping[str, Mapping[str, Any]], *dtypes: str) -> list[str]:
    """Keys of ``info.json`` features whose dtype is one of ``dtypes``, in feature order."""
    return [k for k, f in features.items() if f["dtype"] in dtypes]


class CameraKeys:
    """``video_keys``, ``image_keys`` and ``camera_keys`` of anything with ``info.json``'s
    ``features`` (the NumPy reader and the torch drop-in's metadata alike)."""

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        """``info.json``'s features."""
        raise NotImplementedError

    @property
    def video_keys(self) -> list[str]:
        """Keys of video features (mp4 files under ``videos/``)."""
        return feature_keys(self.features, "video")

    @property
    def image_keys(self) -> list[str]:
        """Keys of image features (PNG/JPEG bytes in the parquet)."""
        return feature_keys(self.features, "image")

    @property
    def camera_keys(self) -> list[str]:
        """Video and image keys, in feature order (LeRobot's ``camera_keys``)."""
        return feature_keys(self.features, "video", "image")

    @property
    def depth_keys(self) -> list[str]:
        """Keys of depth maps (LeRobot 0.6's ``depth_keys``: video or image features whose
        ``info`` flags ``is_depth_map``), in feature order."""
        return [k for k, f in self.features.items() if is_depth_feature(f)]

    @property
    def language_keys(self) -> list[str]:
        """Keys of language columns (``dtype: "language"``: LeRobot 0.6's
        ``language_persistent`` / ``language_events``), in feature order."""
        return feature_keys(self.features, "language")


def parse_stats(
    text: str | None, root: str | Path, path: str | Path | None = None, context: str = ""
) -> dict[str, Any] | None:
    """``meta/stats.json`` as LeRobot reads it: Python's ``json`` (``NaN`` and ``Infinity``
    allowed), every leaf a NumPy array. None when the dataset has no stats. A file that is not
    that shape (invalid JSON, nesting deeper than LeRobot's, ragged lists, non-numbers) is a
    ``MetadataError`` naming the file (``path``, by default the root's ``meta/stats.json``)
    and the key, its message led by ``context`` (where in the file)."""
    if text is None:
        return None
    path = remote.join(root, "meta", "stats.json") if path is None else path

    def bad(msg: str, key: str | None = None) -> MetadataError:
        where = f", key '{key}'" if key else ""
        return MetadataError(f"file '{path}'{where}: invalid metadata: {context}{msg}", path=str(path), key=key)

    try:
        stats = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise bad(f"not valid JSON: {e}") from None
    if not isinstance(stats, dict):
        raise bad("top level is not an object")
    out: dict[str, Any] = {}
    for key, st in stats.items():
        if not isinstance(st, dict):
            raise bad("statistics of a feature must be an object of named statistics", key)
        values: dict[str, Any] = {}
        for name, v in st.items():
            if isinstance(v, dict):
                raise bad(f"'{name}' is an object, not a list of numbers", key)
            try:
                arr = np.array(v)
            except (ValueError, RecursionError) as e:
                raise bad(f"'{name}' is not a rectangular list of numbers ({e})", key) from None
            if arr.dtype.kind not in "biuf":
                raise bad(f"'{name}' holds {arr.dtype} values, not numbers", key)
            if arr.ndim > 4:
                raise bad(f"'{name}' has {arr.ndim} dimensions; LeRobot's statistics have at most 3", key)
            values[name] = arr
        out[key] = values
    return out


def aggregate_episodes_stats(text: str, root: str | Path) -> dict[str, Any] | None:
    """A v2.1 dataset's statistics as LeRobot 0.3 makes them at load: each line of
    ``meta/episodes_stats.jsonl`` (``{"episode_index", "stats"}``, in episode order) parsed as
    ``stats.json`` is (:func:`parse_stats`), then LeRobot's ``aggregate_stats``: min of mins,
    max of maxes, count-weighted mean, and the parallel variance. None when no episode has
    statistics; a line that cannot be read is a ``MetadataError`` naming the file and line. An
    episode with two lines counts once, with its last (LeRobot 0.3 keeps them in a dict)."""
    path = remote.join(root, "meta", "episodes_stats.jsonl")
    rows: dict[int, dict[str, Any]] = {}  # (an episode listed twice: the last line, as LeRobot 0.3)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise MetadataError(f"file '{path}': line {n}: not valid JSON: {e}", path=str(path)) from None
        episode = doc.get("episode_index") if isinstance(doc, dict) else None
        if isinstance(episode, bool) or not isinstance(episode, int) or not isinstance(doc.get("stats"), dict):
            raise MetadataError(
                f"file '{path}': line {n}: not an object with an integer 'episode_index' and 'stats'", path=str(path)
            )
        context = f"line {n} (episode {episode}): "
        stats = parse_stats(json.dumps(doc["stats"]), root, path, context) or {}
        for key, st in stats.items():
            for name, arr in st.items():
                if arr.ndim < 1 or (name == "count" and arr.shape != (1,)):
                    raise MetadataError(
                        f"file '{path}', key '{key}': invalid metadata: {context}'{name}' has shape "
                        f"{arr.shape}; LeRobot's per-episode statistics are lists ('count' one number)",
                        path=str(path),
                        key=key,
                    )
        rows[episode] = stats
    per_key: dict[str, list[dict[str, Any]]] = {}
    for episode in sorted(rows):
        for key, st in rows[episode].items():
            per_key.setdefault(key, []).append(st)
    out: dict[str, Any] = {}
    for key, parts in per_key.items():
        try:
            means = np.stack([p["mean"] for p in parts])
            variances = np.stack([p["std"] ** 2 for p in parts])
            counts = np.stack([p["count"] for p in parts])
            total = counts.sum(axis=0)
            while counts.ndim < means.ndim:
                counts = np.expand_dims(counts, axis=-1)
            mean = (means * counts).sum(axis=0) / total
            variance = ((variances + (means - mean) ** 2) * counts).sum(axis=0) / total
            out[key] = {
                "min": np.min(np.stack([p["min"] for p in parts]), axis=0),
                "max": np.max(np.stack([p["max"] for p in parts]), axis=0),
                "mean": mean,
                "std": np.sqrt(variance),
                "count": total,
            }
        except (KeyError, ValueError) as e:
            what = f"lacks {e}" if isinstance(e, KeyError) else f"has shapes that differ between episodes ({e})"
            raise MetadataError(
                f"file '{path}', key '{key}': invalid metadata: an episode's statistics {what}", path=str(path), key=key
            ) from None
    return out or None


def recorded_stats(ds: Dataset) -> dict[str, Any] | None:
    """The statistics of ``ds``'s root as written: ``meta/stats.json`` parsed
    (:func:`parse_stats`), or for a v2.1 root its episodes' (:func:`aggregate_episodes_stats`;
    LeRobot 0.3 ignores a v2.1 root's ``stats.json``, if any). None when there are none."""
    if ds.codebase_version == "v2.1":
        where = remote.join(ds.root, "meta", "episodes_stats.jsonl")
        if not remote.file_exists(where):
            return None
        data = remote.read_bytes(where)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MetadataError(f"file '{where}': invalid metadata: not UTF-8 text ({e})", path=str(where)) from None
        return aggregate_episodes_stats(text, ds.root)
    return parse_stats(ds._native.stats_json(), ds.root)  # noqa: SLF001


def check_item_index(idx: object, n: int) -> None:
    """Refuses what is not one item index (``TypeError``), saying what to use for a slice."""
    if isinstance(idx, slice):
        a, b, step = idx.indices(n)
        shown = f"range({a}, {b}{'' if step == 1 else f', {step}'})"
        raise TypeError(
            f"a dataset is indexed by one item at a time; for the items of a slice use "
            f"ds.get_batch({shown}) (one batch) or [ds[i] for i in {shown}]"
        )
    if isinstance(idx, bool) or not isinstance(idx, int | np.integer):
        raise TypeError(f"dataset indices must be integers, not {type(idx).__name__}")


def item_indices(indices: Any) -> list[int]:
    """``indices`` (a sequence or 1-D array of integers) as a list of ints: ``TypeError`` for
    anything else (strings, floats, booleans, nested or 2-D arrays), as Python's sequences do;
    ``IndexOutOfRangeError`` for integers beyond int64."""
    if isinstance(indices, str | bytes) or np.isscalar(indices):
        raise TypeError(f"indices must be a sequence of integers, not {type(indices).__name__}")
    try:
        arr = np.asarray(indices) if not hasattr(indices, "numpy") else np.asarray(indices.numpy())
    except (ValueError, TypeError) as e:  # ragged or mixed nesting
        raise TypeError(f"indices must be a 1-D sequence of integers ({e})") from None
    if arr.dtype == object and all(isinstance(i, int) and not isinstance(i, bool) for i in arr.ravel()):
        raise IndexOutOfRangeError(f"index out of range: {max(arr.ravel().tolist(), key=abs)} does not fit in 64 bits")
    if arr.size == 0:
        return []
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        what = f"a {arr.ndim}-D array" if arr.ndim != 1 else f"elements of type {arr.dtype}"
        raise TypeError(f"indices must be a 1-D sequence of integers, got {what}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise IndexOutOfRangeError(f"index out of range: {int(arr.max())} does not fit in 64 bits")
    out: list[int] = arr.astype(np.int64).tolist()
    return out


class Stats(dict[str, Any]):
    """``meta/stats.json``'s statistics (a dict); calling it gives them anew:
    ``stats()`` parses ``stats.json`` again, ``stats(recompute=True)`` computes them from the
    data."""

    def __init__(self, values: dict[str, Any], dataset: Dataset) -> None:
        super().__init__(values)
        self._dataset = dataset

    def __call__(
        self,
        recompute: bool = False,
        *,
        progress: bool | Callable[[int, int], None] | None = None,
        engine: str = "local",
    ) -> dict[str, Any]:
        """``stats.json`` parsed anew (the whole dataset's, as LeRobot wrote it), or with
        ``recompute=True`` the statistics of the selected episodes computed from the data
        (``engine="ray"``: in Ray tasks, the same numbers)."""
        if recompute:
            return self._dataset.compute_stats(progress=progress, engine=engine)
        return self._dataset.read_stats() or {}

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))


class Dataset(CameraKeys):
    """A LeRobot v3.0 dataset (or v2.1/v2.0, or an HDF5, RLDS or MCAP source) read by the
    roboframes core.

    Items carry LeRobot's keys in LeRobot's order: video camera keys, then the parquet
    features (image features included), then ``{key}_is_pad`` for every key with deltas, then
    ``task`` (and ``subtask`` when the dataset has subtasks). Camera frames are ``uint8``
    ``(H, W, 3)`` RGB by default, or ``(T, H, W, 3)`` for a key with
    ``delta_timestamps``; depth maps (LeRobot 0.6) float32 depth ``(H, W, 1)`` in
    ``depth_output_unit``; numeric features of shape ``(1,)`` are 0-d arrays, others keep their
    shape (``(T, ...)`` with deltas); strings are ``str``; language columns (LeRobot 0.6) their
    stored lists of annotations (dicts), as LeRobot's items hold them. Windows follow LeRobot: offsets are
    ``round(delta * fps)``, clamped to the episode, with ``{key}_is_pad`` marking clamped steps.
    Negative indices count from the end.

    Args:
        root: The dataset root (the folder holding ``meta/``, ``data/`` and ``videos/``), or a
            URL of a remote one (``s3://bucket/prefix``, ``gs://...``, ``az://...``,
            ``https://host/path``, ``hf://datasets/org/name[@revision]``; see
            :mod:`roboframes.remote`). A remote root is read in place: metadata once, then only
            the byte ranges items need.
        episodes: Episode indices to select; ``None`` selects all. Items follow dataset order.
        delta_timestamps: ``{key: [seconds, ...]}`` windows, as in LeRobot.
        tolerance_s: Allowed distance between a requested time and the frame returned, and the
            tolerance of the ``delta_timestamps`` check.
        decode_threads: Decoding threads of this process; ``None`` uses the number of cores.
        strict_decode: Fail on damage in a video's bitstream instead of concealing it. By
            default (as in FFmpeg, torchcodec and LeRobot) the decoder hides errors it finds by
            guessing the damaged blocks from their neighbours, so a frame of a damaged file may
            differ from what was recorded; with ``strict_decode=True`` it checks CRCs,
            bitstream conformance and buffer bounds and raises :class:`VideoDecodeError` (naming the
            file and frame) instead. ``validate(decode=...)`` always decodes strictly.
        frame_dtype: Element type of camera frames: ``"uint8"`` (the decoded bytes, default),
            ``"float32"`` or ``"float16"`` (``value / 255``). Depth maps are not camera frames
            of this kind: see ``depth_output_unit``.
        channels_last: Frames as ``(H, W, C)`` (default) or, when false, ``(C, H, W)``.
        storage_options: Settings of a remote root's store (endpoint, credentials, timeouts,
            ``max_retries``, ``token``; see :mod:`roboframes.remote`). S3 roots also read the
            standard ``AWS_*`` environment variables.
        cache_dir: A folder where blocks of remote files are kept on local disk, keyed by each
            object's ETag (a changed object is fetched again), shared by processes.
        block_cache_bytes: Bytes of this process's in-memory cache of blocks of remote files
            (default 256 MiB; the largest asked for in the process is kept).
        depth_output_unit: What depth maps (LeRobot 0.6's ``is_depth_map`` videos, stored as
            12-bit codes of a quantiser) are read as: ``"mm"`` (default, LeRobot's) or ``"m"``:
            float32 depth, dequantised as LeRobot does; ``"raw"``: the stored codes, uint16.
            One channel: ``(H, W, 1)``, or ``(1, H, W)`` with ``channels_last=False``.
        format: ``"lerobot"``, ``"hdf5"``, ``"rlds"`` or ``"mcap"``; ``None`` (default) detects it: a
            ``.hdf5``/``.h5`` file, or a folder of them without ``meta/info.json``, is read as
            HDF5 (ALOHA's one file per episode, or robomimic/LIBERO's ``data/demo_<i>``
            groups); a TFDS builder folder (``dataset_info.json``, ``features.json`` and
            TFRecord shards; or the folder above its only version) as RLDS (Open X-Embodiment);
            a ``.mcap`` file, or a folder of them, as MCAP (one episode per file).
        fps: Frames per second of a source that stores no rate (an HDF5 file without an
            ``fps`` attribute); items' ``timestamp`` is ``frame_index / fps``. Given, it
            overrides a stored rate.
        task: The task of every episode of a source that stores none (overrides RLDS's
            ``language_instruction``).
        split: The split of an RLDS dataset (default ``"train"``, or its only split).
        topics: The topics of an MCAP recording to read (default: every topic roboframes can
            decode whose rate is at least half the reference topic's; the others are left out
            with a warning).
        reference_topic: The MCAP topic whose message times are the items' times (default:
            the slowest camera, or the slowest topic without cameras).
        align_tolerance_s: How much older than an item's time another MCAP topic's message may
            be (default: one period of the reference topic); a time where a topic has no such
            message is an error when the dataset is opened.
        episode_spans: Episodes of an MCAP source as spans of its recordings:
            ``{file name: [(start_s, end_s), ...]}``, ``[start, end)`` seconds from the file's
            first message of the reference topic, in the order given (default: one episode
            per file).
        key_map: Item names of a source's keys: ``None`` keeps the source's names
            (``observations/qpos``, ``obs/agentview_image``); ``"lerobot"`` names the layout's
            usual keys as LeRobot does (``observation.state``, ``observation.images.<cam>``,
            ``action``); a dict names chosen keys.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        episodes: Sequence[int] | None = None,
        delta_timestamps: Mapping[str, Sequence[float]] | None = None,
        tolerance_s: float = 1e-4,
        decode_threads: int | None = None,
        frame_dtype: str = "uint8",
        channels_last: bool = True,
        strict_decode: bool = False,
        storage_options: remote.StorageOptions | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        block_cache_bytes: int | None = None,
        depth_output_unit: str = "mm",
        format: str | None = None,
        fps: float | None = None,
        task: str | None = None,
        key_map: str | Mapping[str, str] | None = None,
        split: str | None = None,
        topics: Sequence[str] | None = None,
        reference_topic: str | None = None,
        align_tolerance_s: float | None = None,
        episode_spans: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    ) -> None:
        # (the options as given: ReaderOptions checks each and keeps its normalised form)
        given: dict[str, Any] = {
            "episodes": episodes,
            "delta_timestamps": delta_timestamps,
            "tolerance_s": tolerance_s,
            "decode_threads": decode_threads,
            "frame_dtype": frame_dtype,
            "channels_last": channels_last,
            "strict_decode": strict_decode,
            "storage_options": storage_options,
            "cache_dir": cache_dir,
            "block_cache_bytes": block_cache_bytes,
            "depth_output_unit": depth_output_unit,
            "format": format,
            "fps": fps,
            "task": task,
            "key_map": key_map,
            "split": split,
            "topics": topics,
            "reference_topic": reference_topic,
            "align_tolerance_s": align_tolerance_s,
            "episode_spans": episode_spans,
        }
        self._open(root, ReaderOptions(**given))

    @classmethod
    def from_options(cls, root: str | os.PathLike[str], options: ReaderOptions) -> Dataset:
        """The dataset at ``root`` read with ``options`` (what every surface opens, and what a
        pickled dataset reopens with)."""
        ds = cls.__new__(cls)
        ds._open(root, options)
        return ds

    def _open(self, root: str | os.PathLike[str], options: ReaderOptions) -> None:
        #: The root: a ``Path``, or for a remote root its URL (a Hub revision as its commit).
        self.root: str | Path = remote.root_of(root)
        o = options
        self._native = _native.NativeDataset(
            str(self.root),
            o.episodes,
            o.delta_timestamps,
            o.tolerance_s,
            o.decode_threads,
            o.strict_decode,
            None if o.storage_options is None else list(o.storage_options.items()),
            o.cache_dir,
            o.block_cache_bytes,
            o.depth_output_unit,
            o.format,
            o.fps,
            o.task,
            o.key_map if isinstance(o.key_map, dict) else None,
            o.key_map == "lerobot",
            o.split,
            topics=o.topics,
            reference_topic=o.reference_topic,
            align_tolerance_s=o.align_tolerance_s,
            episode_spans=o.episode_spans,
        )
        for message in self._native.open_warnings():
            warnings.warn(message, MetadataWarning, stacklevel=3)
        if isinstance(self.root, str):
            self.root = self._native.root
            # what this root was opened with in this process (here or by an earlier open), so
            # that a pickled copy (a spawned worker) opens it the same way
            known = _native.root_options(self.root)
            if known is not None:
                given, known_dir = known
                if o.storage_options is None and given:
                    o = o.replace(storage_options=dict(given))
                if o.cache_dir is None and known_dir is not None:
                    o = o.replace(cache_dir=known_dir)
        #: How this dataset reads (see :class:`roboframes.options.ReaderOptions`).
        self.options: ReaderOptions = o
        self._specs = self._native.output_specs(o.frame_dtype, o.channels_last)
        self.info: dict[str, Any] = json.loads(self._native.info_json())
        #: The format of the root: ``"lerobot"``, or ``"hdf5"``/``"rlds"`` for files read in place.
        self.format: str = self._native.format
        # two batches' worth: the one the caller holds and the one being filled
        self._spares = BufferPool(limit=2 * sum(1 for spec in self._specs if spec.is_array))

    # -- pickling: reopen in the receiving process (DataLoader workers, spawn) --------------
    def __getstate__(self) -> dict[str, Any]:
        return {"root": str(self.root), "options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._open(state["root"], state["options"])

    def reopen(self, **changes: Any) -> Dataset:
        """A new dataset over the same root with every option of this one (episodes, windows,
        tolerance, decode threads, frame format, strict decoding, remote settings, depth unit)
        except those given, e.g. ``ds.reopen(delta_timestamps=None)``; ``TypeError`` naming an
        unknown option."""
        return Dataset.from_options(self.root, self.options.replace(**changes))

    # -- the options, as attributes -----------------------------------------------------------
    @property
    def delta_timestamps(self) -> dict[str, list[float]] | None:
        """``{key: [seconds, ...]}`` windows, as given."""
        return self.options.delta_timestamps

    @property
    def tolerance_s(self) -> float:
        """Allowed distance between a requested time and the frame returned."""
        return self.options.tolerance_s

    @property
    def strict_decode(self) -> bool:
        """Whether damage in a video's bitstream is an error rather than concealed."""
        return self.options.strict_decode

    @property
    def frame_dtype(self) -> str:
        """Element type of camera frames."""
        return self.options.frame_dtype

    @property
    def channels_last(self) -> bool:
        """Frames as ``(H, W, C)`` (else ``(C, H, W)``)."""
        return self.options.channels_last

    @property
    def storage_options(self) -> dict[str, str] | None:
        """Settings of a remote root's store."""
        return self.options.storage_options

    @property
    def cache_dir(self) -> str | None:
        """Folder of a remote root's blocks on local disk."""
        return self.options.cache_dir

    @property
    def block_cache_bytes(self) -> int | None:
        """Bytes of this process's in-memory cache of remote blocks asked for."""
        return self.options.block_cache_bytes

    @property
    def depth_output_unit(self) -> str:
        """What depth maps are read as: ``"mm"``, ``"m"`` or ``"raw"``."""
        return self.options.depth_output_unit

    @property
    def decode_threads(self) -> int:
        """Decoding threads this process uses for the dataset."""
        return self._native.decode_threads

    def set_decode_threads(self, n: int) -> None:
        """Sets this process's decoding threads (e.g. cores divided by the number of data
        loading worker processes); the thread pool is rebuilt on next use."""
        self._native.set_decode_threads(thread_count(n))

    def set_frame_cache(self, frame_cache_bytes: int) -> None:
        """Keeps up to ``frame_cache_bytes`` of decoded frames (the decoder's uint8 RGB, whatever the
        output format) for reuse by every later batch of this dataset in this process, its loaders
        included; ``0`` turns the cache off and frees it. Frames from the cache are the bytes the
        decoder produced. Policy: frames are admitted until the budget is spent, then kept (over
        shuffled epochs every frame is equally likely to come next, so replacing cached frames
        cannot raise the hit rate, and recency-based eviction lowers it). After ``fork`` a child
        starts with an empty cache of the same size."""
        n = frame_cache_bytes
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidArgumentError(f"frame_cache_bytes must be an int >= 0, got {n!r}")
        self._native.set_frame_cache(n)

    def frame_cache_stats(self) -> dict[str, int] | None:
        """The frame cache's ``capacity`` and ``bytes`` (in bytes), ``frames`` held, and the
        ``hits`` and ``misses`` of frame requests so far; ``None`` without a cache."""
        return self._native.frame_cache_stats()

    def loader(self, batch_size: int, **options: Any) -> Loader:
        """Batches of this dataset for a training loop: decoded ahead on the core's threads,
        resumable mid-epoch, sharded across ranks: ``roboframes.Loader(self, batch_size,
        **options)``, whose keyword arguments (``shuffle``, ``seed``, ``drop_last``,
        ``episodes``, ``cameras``, ``output``, ``prefetch``, ``rank``/``world_size``,
        ``frame_cache_bytes``, ``frame_dtype``/``channels_last``,
        ``gop_streams``/``gop_unit_frames``, ``normalize``, ``stats``) it takes."""
        from .loader import Loader

        return Loader(self, batch_size, **options)

    @property
    def handle(self) -> int:
        """This dataset's handle for the ``torch.ops.roboframes`` operators (process-local)."""
        return self._native.handle()

    # -- metadata -------------------------------------------------------------------------
    @property
    def fps(self) -> int | float:
        """Frames per second of the dataset."""
        fps: int | float = self.info["fps"]
        return fps

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        """``info.json``'s features."""
        features: dict[str, dict[str, Any]] = self.info["features"]
        return features

    @property
    def codebase_version(self) -> str:
        """The LeRobot layout of the root (``"v3.0"``, or ``"v2.1"``/``"v2.0"``: one data file
        and one video per episode, read in place); ``""`` for a source that is not a LeRobot
        dataset (HDF5, RLDS, MCAP)."""
        version = self.info.get("codebase_version")
        return version if isinstance(version, str) else ""

    @property
    def episodes(self) -> EpisodeList:
        """Selected episode indices, in dataset order (a list); ``ds.episodes()`` iterates their
        :class:`~roboframes.tools.EpisodeRecord`\\ s (index, length, tasks, duration, first
        item, per-camera video span, data file)."""
        return EpisodeList(self._native.episodes(), lambda: episode_records(self))

    @property
    def num_episodes(self) -> int:
        """Number of selected episodes."""
        return len(self._native.episodes())

    @property
    def num_frames(self) -> int:
        """Number of items (frames of the selected episodes)."""
        return len(self._native)

    @property
    def tasks(self) -> dict[int, str]:
        """``{task_index: task}``, in the row order of ``meta/tasks.parquet`` (v2.x:
        ``meta/tasks.jsonl``)."""
        return self._native.tasks()

    @property
    def subtasks(self) -> dict[int, str] | None:
        """``{subtask_index: subtask}``, or ``None`` when the dataset has no subtasks."""
        return self._native.subtasks()

    @property
    def is_remote(self) -> bool:
        """True when the dataset is read from a remote root (a URL)."""
        return isinstance(self.root, str)

    def remote_stats(self) -> dict[str, int] | None:
        """``requests`` made, ``bytes`` received and ``disk_hits`` (blocks ``cache_dir``
        served) for this dataset's remote root by this process so far; ``None`` when local."""
        return remote.stats(self.root)

    def read_stats(self) -> dict[str, Any] | None:
        """``meta/stats.json`` as a new ``{feature: {stat: ndarray}}`` dict, or ``None`` when the
        dataset has none; depth maps' statistics in this dataset's ``depth_output_unit`` (as its
        items; LeRobot 0.6's ``rescale_depth_stats``)."""
        stats = recorded_stats(self)
        return None if stats is None else depth_stats_in(stats, self.features, self.depth_output_unit)

    @functools.cached_property
    def stats(self) -> Stats:
        """``meta/stats.json`` as ``{feature: {stat: ndarray}}`` (empty when absent; a v2.1 root's
        episodes' statistics aggregated as LeRobot 0.3 does, :func:`recorded_stats`), depth maps'
        in ``depth_output_unit``.

        Parsed once; a plain mutable dict, so normalisation code may edit it in place. Calling
        it, ``ds.stats(recompute=True)``, recomputes the statistics from the data instead
        (:meth:`compute_stats`); ``ds.stats()`` is a fresh parse of ``stats.json``.
        """
        return Stats(self.read_stats() or {}, self)

    def compute_stats(
        self, *, progress: bool | Callable[[int, int], None] | None = None, engine: str = "local"
    ) -> dict[str, Any]:
        """The statistics of every numeric and camera feature of the selected episodes,
        recomputed from the data in one parallel pass the way LeRobot's writer computes
        ``stats.json`` (:func:`roboframes.tools.compute_stats`), depth maps' in
        ``depth_output_unit``; ``engine="ray"`` runs the pass as Ray tasks (the same numbers,
        bit for bit)."""
        per_frame = self if self.delta_timestamps is None else self.reopen(delta_timestamps=None)
        stats = tools.compute_stats(per_frame, progress=progress, engine=engine)
        return depth_stats_in(stats, self.features, self.depth_output_unit, recomputed=True)

    def validate(
        self,
        decode: str = "ends",
        *,
        progress: bool | Callable[[int, int], None] | None = None,
        engine: str = "local",
    ) -> tools.ValidationReport:
        """Checks the whole dataset (every episode, not only the selected ones) and reports every
        problem at once; see :func:`roboframes.tools.validate` (``engine="ray"``: as Ray
        tasks, the same report)."""
        o = self.options
        return tools.validate(
            self.root,
            decode,
            engine=engine,
            storage_options=self.storage_options,
            tolerance_s=self.tolerance_s,
            decode_threads=o.decode_threads,
            progress=progress,
            format=o.format,
            fps=o.fps,
            task=o.task,
            key_map=o.key_map,
            split=o.split,
            topics=o.topics,
            reference_topic=o.reference_topic,
            align_tolerance_s=o.align_tolerance_s,
            episode_spans=o.episode_spans,
        )

    def quality(self, *, cameras: bool = True, engine: str = "local") -> QualityReport:
        """Scores every selected episode (action jitter, idle fraction, frozen frames and
        sharpness per camera, length) and suggests exclusions with reasons; thresholds and
        definitions in :mod:`roboframes.quality`; ``engine="ray"`` scores the episodes in Ray
        tasks (the same report)."""
        from .quality import quality

        return quality(self, cameras=cameras, engine=engine)

    def train_val_split(
        self, val_fraction: float = 0.1, seed: int = 0, by: str = "episode", stratify: str | None = "task"
    ) -> tuple[list[int], list[int]]:
        """Disjoint, deterministic ``(train, val)`` episode lists of the selection, every task
        in both where possible; see :func:`roboframes.tools.train_val_split`."""
        return tools.train_val_split(self, val_fraction, seed, by, stratify)

    @property
    def delta_indices(self) -> dict[str, list[int]] | None:
        """Frame offsets per key, or ``None`` without ``delta_timestamps``."""
        return None if self.delta_timestamps is None else self._native.delta_indices()

    def episode_table(self) -> list[dict[str, Any]]:
        """One row per episode of the dataset (all episodes, not only the selected ones):
        ``episode_index``, ``length``, data file, ``dataset_from_index``/``dataset_to_index``
        and each camera's ``videos/{key}/...`` span."""
        return self._native.episode_table()

    def output_specs(self, frame_dtype: str | None = None, channels_last: bool | None = None) -> list[OutputSpec]:
        """Every entry of an item, in item order: ``key``, ``kind`` (``video``, ``image``,
        ``numeric``, ``string``, ``language``, ``pad``, ``task``, ``subtask``), ``dtype``,
        ``shape``, ``window``, ``is_array`` and ``depth``. Frames in this dataset's format
        unless ``frame_dtype`` / ``channels_last`` (which may name any frame type of the core,
        ``bfloat16`` included) say otherwise."""
        if frame_dtype is None and channels_last is None:
            return list(self._specs)
        return self._native.output_specs(
            self.frame_dtype if frame_dtype is None else frame_dtype,
            self.channels_last if channels_last is None else bool(channels_last),
        )

    def frame_dims(self, camera: str) -> tuple[int, int, int]:
        """``(H, W, C)`` of the decoded frames of video key ``camera`` (``C`` is 1 for a depth
        map)."""
        return _native.handle_frame_dims(self.handle, camera)

    def frame_layout(self, camera: str, frame_dtype: str, channels_last: bool) -> tuple[list[int], str]:
        """``(shape, dtype)`` of one frame of video key ``camera`` with frames in the given format;
        a depth map's hold what ``depth_output_unit`` says, whatever ``frame_dtype``."""
        return self._native.frame_layout(camera, frame_dtype, bool(channels_last))

    def numeric_row(self, key: str) -> tuple[list[int], str]:
        """``(shape, dtype)`` of one row of numeric feature ``key`` as items carry it (``[]``
        for LeRobot's shape-``(1,)`` scalars; floats ``float32``, integers ``int64``)."""
        return _native.handle_numeric_row(self.handle, key)

    def keyframe_items(self) -> list[bool]:
        """Per item: whether its frame starts a keyframe group in every camera video (so that
        decoding from it needs no earlier frame). All true without videos."""
        return self._native.keyframe_items()

    # -- items ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._native)

    def __getitem__(self, idx: int) -> Item:
        """One item: a dict of arrays (0-d for scalar features) and strings."""
        check_item_index(idx, len(self))
        batch = self.get_batch([idx])
        # `v[0, ...]` keeps 0-d entries as 0-d arrays (not NumPy scalars)
        return {k: (v[0] if isinstance(v, list) else v[0, ...]) for k, v in batch.items()}

    def get_values(self, indices: Sequence[int] | np.ndarray) -> dict[str, list[Any]]:
        """The entries of the items at ``indices`` that are not arrays (string features,
        ``task``, ``subtask``, language columns), nothing else read or decoded, as
        :meth:`get_batch` returns them: per key a list of ``len(indices)`` values, or of
        ``len(indices)`` lists of ``T`` strings for a string feature windowed over ``T``
        steps."""
        idx = item_indices(indices)
        strings = self._native.fill(idx, [None] * len(self._specs), self.frame_dtype, self.channels_last)
        return {
            spec.key: per_item(spec, s, len(idx)) for spec, s in zip(self._specs, strings, strict=True) if s is not None
        }

    def get_batch(self, indices: Sequence[int] | np.ndarray, *, normalize: Mapping[str, str] | None = None) -> Item:
        """Returns the items at ``indices`` stacked along a leading batch dimension.

        Arrays get shape ``(B, *item_shape)``; string entries are lists of ``B`` strings (or of
        ``B`` lists of ``T`` strings for a windowed string feature); language columns lists of
        ``B`` values (lists of dicts, as LeRobot 0.6's items hold them). All native work runs with
        the GIL released. ``normalize`` (``{key: mode}``, LeRobot's modes, from ``stats.json``)
        normalises those float32 entries in the core as LeRobot's ``NormalizerProcessorStep``
        does (see :meth:`loader`).
        """
        return self.fill_batch(indices, self.frame_dtype, self.channels_last, normalize=self._norm(normalize))

    def _norm(self, normalize: Mapping[str, str] | None) -> list[Any] | None:
        """The prepared normalisation of ``normalize`` with :attr:`stats` as it is now (edits made
        to it in place count)."""
        if not normalize:
            return None
        return tools.normalization(self, dict(normalize))

    def fill_batch(
        self,
        indices: Sequence[int] | np.ndarray,
        frame_dtype: str,
        channels_last: bool,
        *,
        normalize: list[Any] | None = None,
        skip: Sequence[str] = (),
    ) -> Item:
        """:meth:`get_batch` with frames in any NumPy frame format, entries ``skip`` left out
        (neither read nor decoded), and a prepared normalisation
        (:func:`roboframes.tools.normalization`); what other layers build on."""
        idx = item_indices(indices)
        b = len(idx)
        specs = (
            self._specs
            if (frame_dtype, channels_last) == (self.frame_dtype, self.channels_last)
            else (self._native.output_specs(frame_dtype, channels_last))
        )
        buffers: list[np.ndarray | None] = [
            None if not spec.is_array or spec.key in skip else self._spares.take((b, *spec.shape), np.dtype(spec.dtype))
            for spec in specs
        ]
        try:
            strings = self._native.fill(idx, buffers, frame_dtype, channels_last, True, normalize)
        finally:
            self._spares.keep(buffers)
        out: Item = {}
        for spec, buf, strs in zip(specs, buffers, strings, strict=True):
            if buf is not None:
                out[spec.key] = buf
            elif strs is not None and spec.key not in skip:
                out[spec.key] = per_item(spec, strs, b)
        return out

    def __repr__(self) -> str:
        return (
            f"roboframes.Dataset(root='{self.root}', episodes={self.num_episodes}, "
            f"frames={self.num_frames}, fps={self.fps}, cameras={self.camera_keys})"
        )
