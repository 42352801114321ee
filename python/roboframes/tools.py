"""Dataset tools: validation, recomputed statistics, episode records and train/validation
splits. The work runs in the core (in parallel, off the GIL); this module shapes the results."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _native
from .errors import InvalidArgumentError, ValidationError
from .options import ReaderOptions
from .remote import StorageOptions, open_root

if TYPE_CHECKING:
    from .dataset import Dataset

ProgressArg = bool | Callable[[int, int], None] | None


class _Bar:
    """A one-line progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        width = 30
        filled = width * done // total
        elapsed = time.monotonic() - self.started
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {elapsed:.1f}s")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _progress(arg: ProgressArg, label: str) -> tuple[Callable[[int, int], None] | None, _Bar | None]:
    """The callback for ``progress``: ``None`` (default) draws a bar when stderr is a terminal,
    ``True`` always, ``False`` never; a callable receives ``(done, total)``."""
    if callable(arg):
        return arg, None
    if arg is False or (arg is None and not sys.stderr.isatty()):
        return None, None
    bar = _Bar(label)
    return bar, bar


@dataclass(frozen=True)
class Finding:
    """One problem ``validate`` found."""

    severity: str  #: ``"error"`` or ``"warning"``
    check: str  #: the check's short name (``totals``, ``frame_index``, ``video_span``, ...)
    path: str | None
    episode: int | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = ", ".join(
            p
            for p in (
                f"file '{self.path}'" if self.path else "",
                f"episode {self.episode}" if self.episode is not None else "",
                f"key '{self.key}'" if self.key else "",
            )
            if p
        )
        return f"{self.severity} [{self.check}] {where or 'dataset'}: {self.message}"


@dataclass
class ValidationReport:
    """What :func:`validate` found: every problem of a dataset, each naming file, episode and
    key, plus what was looked at."""

    root: str
    decode: str
    findings: list[Finding] = field(default_factory=list)
    episodes: int = 0
    frames: int = 0
    data_files: int = 0
    video_files: int = 0
    frames_decoded: int = 0
    #: False when the run was interrupted before every check ran.
    complete: bool = True

    @property
    def errors(self) -> list[Finding]:
        """Problems that give wrong or no items."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Suspicious things that do not change the items."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when every check ran and found no error."""
        return self.complete and not self.errors

    def raise_if_errors(self) -> None:
        """Raises :class:`~roboframes.errors.ValidationError` listing the errors (the report is
        its ``report`` attribute)."""
        if self.ok:
            return
        lines = [str(f) for f in self.errors[:20]]
        more = len(self.errors) - len(lines)
        if more > 0:
            lines.append(f"... and {more} more")
        if not self.complete:
            lines.append("(validation was interrupted: not every check ran)")
        err = ValidationError(
            f"dataset at '{self.root}' has {len(self.errors)} error(s):\n  " + "\n  ".join(lines), path=self.root
        )
        err.report = self
        raise err

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-serialisable data."""
        d = asdict(self)
        d["ok"] = self.ok
        return d

    def __str__(self) -> str:
        head = (
            f"{'OK' if self.ok else 'FAILED'}: {self.root}: {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s); {self.episodes} episodes, {self.frames} frames, "
            f"{self.data_files} data file(s), {self.video_files} video file(s), "
            f"{self.frames_decoded} frames decoded (decode={self.decode!r})"
        )
        return "\n".join([head, *(f"  {f}" for f in self.findings)])


def validate(
    root: str | os.PathLike[str],
    decode: str = "ends",
    *,
    tolerance_s: float = 1e-4,
    decode_threads: int | None = None,
    progress: ProgressArg = None,
    storage_options: StorageOptions | None = None,
    format: str | None = None,
    fps: float | None = None,
    task: str | None = None,
    key_map: str | Mapping[str, str] | None = None,
    split: str | None = None,
    topics: Sequence[str] | None = None,
    reference_topic: str | None = None,
    align_tolerance_s: float | None = None,
    episode_spans: Mapping[str, Sequence[tuple[float, float]]] | Sequence[tuple[str, float, float]] | None = None,
    engine: str = "local",
) -> ValidationReport:
    """Checks the LeRobot v3.0 dataset at ``root`` and reports every problem at once (it never
    stops at the first one, and works on datasets too broken to open). HDF5 files and RLDS
    folders and MCAP recordings (see ``roboframes.Dataset``; ``format``, ``fps``, ``task``,
    ``key_map``, ``split``, ``topics``, ``reference_topic`` and ``align_tolerance_s`` as there)
    are checked
    for what they can hold wrong: a layout that is not recognised, an episode whose datasets
    are missing, unreadable or not one row per frame, and camera frames that do not decode.

    Args:
        root: The dataset root: a folder or a remote root's URL (see :mod:`roboframes.remote`).
        decode: ``"none"``: metadata, tables and video indexes; ``"ends"``: also decode the
            first and last frame of every episode in every camera; ``"all"``: every frame.
        tolerance_s: Tolerance of timestamps against the ``1/fps`` grid and of frame times.
        decode_threads: Decoding threads (default: the number of cores).
        progress: ``None``: a progress bar when stderr is a terminal; ``True``/``False``;
            or a callable receiving ``(done, total)``.
        storage_options: Settings of a remote root's store (see :mod:`roboframes.remote`).
        engine: ``"local"`` (this process) or ``"ray"``: the checks split into Ray tasks over
            groups of files (contiguous ranges of episodes for HDF5, RLDS and MCAP sources; at
            most 64; :mod:`roboframes.ray`), the same report; ``progress`` then counts
            finished tasks.
    """
    if decode not in ("none", "ends", "all"):
        raise InvalidArgumentError(f"decode must be 'none', 'ends' or 'all', got {decode!r}")
    _check_engine(engine)
    given_root = root
    root = open_root(root, storage_options)
    cb, bar = _progress(progress, "validate")
    try:
        names = dict(key_map) if isinstance(key_map, Mapping) else key_map
        source = ReaderOptions(  # (checks them)
            format=format,
            fps=fps,
            task=task,
            key_map=names,
            split=split,
            topics=None if topics is None else list(topics),
            reference_topic=reference_topic,
            align_tolerance_s=align_tolerance_s,
            episode_spans=episode_spans,  # type: ignore[arg-type]  # (normalised by ReaderOptions)
        )
        call: dict[str, Any] = dict(
            root=os.fspath(root),
            decode=decode,
            tolerance_s=float(tolerance_s),
            decode_threads=decode_threads,
            format=source.format,
            fps=source.fps,
            task=source.task,
            key_map=source.key_map if isinstance(source.key_map, dict) else None,
            key_map_lerobot=source.key_map == "lerobot",
            split=source.split,
            topics=source.topics,
            reference_topic=source.reference_topic,
            align_tolerance_s=source.align_tolerance_s,
            episode_spans=source.episode_spans,
        )
        if engine == "ray":
            from . import ray as rray

            raw = rray.validate(_validate_part, (os.fspath(given_root), storage_options, call), cb)
        else:
            raw = _native.validate(**call, progress=cb)
    finally:
        if bar is not None:
            bar.close()
    findings = [Finding(**f) for f in raw.pop("findings")]
    return ValidationReport(root=os.fspath(root), decode=decode, findings=findings, **raw)


def _check_engine(engine: str) -> None:
    if engine not in ("local", "ray"):
        raise InvalidArgumentError(f"engine must be 'local' or 'ray', got {engine!r}")


def _validate_part(
    root: str, storage_options: StorageOptions | None, call: dict[str, Any], part: tuple[int, int]
) -> dict[str, Any]:
    """Part ``part`` of a validation run, in a Ray task (its process registers the root's store
    settings itself)."""
    open_root(root, storage_options)
    raw: dict[str, Any] = _native.validate(**call, part=part)
    return raw


def compute_stats(
    root: str | os.PathLike[str] | Dataset,
    episodes: Sequence[int] | None = None,
    *,
    tolerance_s: float | None = None,
    decode_threads: int | None = None,
    progress: ProgressArg = None,
    storage_options: StorageOptions | None = None,
    engine: str = "local",
    **source: Any,
) -> dict[str, dict[str, np.ndarray]]:
    """Statistics of every numeric and camera feature, recomputed from the data the way LeRobot
    0.4.4's writer computes ``meta/stats.json`` (see the README), as ``{feature: {stat:
    ndarray}}`` in LeRobot's shapes: ``(D,)`` per element of a numeric feature's last axis,
    ``(3, 1, 1)`` per channel for cameras (values / 255), ``count`` of shape ``(1,)``.
    ``root`` may be a remote root's URL, reached with ``storage_options``; HDF5 files or an
    RLDS folder, with ``roboframes.Dataset``'s ``format``, ``fps``, ``task``, ``key_map`` and
    ``split`` in ``source``; or an opened ``roboframes.Dataset``: then its own selection and
    options are used, and no other option may be given (``tolerance_s`` defaults to 1e-4).
    ``engine="ray"`` computes each episode's statistics in Ray tasks over runs of episodes that
    share files (each episode on its own for HDF5, RLDS and MCAP sources) and aggregates them
    here in episode order: the same numbers, bit for bit; ``progress`` then counts finished
    tasks."""
    from .dataset import Dataset as Opened

    _check_engine(engine)
    if isinstance(root, Opened):
        given = {
            "episodes": episodes,
            "tolerance_s": tolerance_s,
            "decode_threads": decode_threads,
            "storage_options": storage_options,
            **source,
        }
        passed = sorted(k for k, v in given.items() if v is not None)
        if passed:
            raise InvalidArgumentError(
                f"compute_stats of an opened dataset uses its own episodes and options, not {passed}: "
                "open it with them (ds.reopen(...)) instead"
            )
        ds = root
    else:
        ds = Opened(
            root,
            episodes=episodes,
            tolerance_s=1e-4 if tolerance_s is None else tolerance_s,
            decode_threads=decode_threads,
            storage_options=storage_options,
            **source,
        )
    cb, bar = _progress(progress, "stats")
    try:
        if engine == "ray":
            from . import ray as rray

            raw = rray.compute_stats(ds, cb)
        else:
            raw = _native.compute_stats(ds._native, cb)
    finally:
        if bar is not None:
            bar.close()
    out: dict[str, dict[str, np.ndarray]] = {}
    for s in raw:
        key, camera = s.pop("key"), s.pop("camera")
        stats: dict[str, np.ndarray] = {}
        for name, v in s.items():
            if name == "count":
                stats[name] = np.array([v], dtype=np.int64)
            else:
                a = np.asarray(v, dtype=np.float64)
                stats[name] = a.reshape(-1, 1, 1) if camera else a
        out[key] = stats
    return out


@dataclass(frozen=True)
class EpisodeRecord:
    """One episode of a dataset, as ``Dataset.episodes()`` yields it."""

    index: int  #: the episode index
    length: int  #: frames (items)
    tasks: list[str]  #: the tasks of its frames, in order of first appearance
    duration_s: float  #: ``length / fps``
    first_item: int  #: item index of its first frame in the dataset (its selection)
    #: per video key: ``(chunk_index, file_index, from_timestamp, to_timestamp)`` in the file
    videos: dict[str, tuple[int, int, float, float]]
    data_file: tuple[int, int]  #: ``(chunk_index, file_index)`` of its rows


class EpisodeList(list[int]):
    """The selected episode indices (a list, as LeRobot's ``dataset.episodes``); calling it,
    ``ds.episodes()``, iterates their :class:`EpisodeRecord`\\ s."""

    def __init__(self, values: Sequence[int], records: Callable[[], Iterator[EpisodeRecord]]) -> None:
        super().__init__(values)
        self._records = records

    def __call__(self) -> Iterator[EpisodeRecord]:
        return self._records()

    def __reduce__(self) -> Any:
        # pickles (DataLoader workers, spawn) as the plain list it is
        return (list, (list(self),))


def episode_records(ds: Dataset) -> Iterator[EpisodeRecord]:
    """The :class:`EpisodeRecord` of every selected episode of ``ds``, in dataset order."""
    rows = {e["episode_index"]: e for e in ds.episode_table()}
    item = 0
    for ep in list(ds.episodes):
        row = rows[ep]
        length = int(row["length"])
        strings = ds.get_values(np.arange(item, item + length)) if length else {}
        tasks = list(dict.fromkeys(strings.get("task", [])))
        videos = {
            k: (
                int(row[f"videos/{k}/chunk_index"]),
                int(row[f"videos/{k}/file_index"]),
                float(row[f"videos/{k}/from_timestamp"]),
                float(row[f"videos/{k}/to_timestamp"]),
            )
            for k in ds.video_keys
        }
        yield EpisodeRecord(
            index=int(ep),
            length=length,
            tasks=tasks,
            duration_s=length / float(ds.fps),
            first_item=item,
            videos=videos,
            data_file=(int(row["data/chunk_index"]), int(row["data/file_index"])),
        )
        item += length


def train_val_split(
    ds: Dataset, val_fraction: float = 0.1, seed: int = 0, by: str = "episode", stratify: str | None = "task"
) -> tuple[list[int], list[int]]:
    """Splits the selected episodes into disjoint, deterministic ``(train, val)`` lists (each
    in dataset order, usable as ``episodes=``). Whole episodes only (``by="episode"``: frames of
    one episode are never on both sides). With ``stratify="task"`` episodes are grouped by
    their first task and each group is split on its own, so that every task with at least two
    episodes is in both lists; a task with one episode goes to ``train``. Each group gives
    ``round(n * val_fraction)`` episodes to ``val``, at least one and at most ``n - 1`` when
    ``n >= 2`` and ``val_fraction > 0``. ``stratify=None`` splits all episodes as one group."""
    if by != "episode":
        raise InvalidArgumentError(
            f"by must be 'episode' (frames of one episode must not be on both sides), got {by!r}"
        )
    if stratify not in ("task", None):
        raise InvalidArgumentError(f"stratify must be 'task' or None, got {stratify!r}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, int | float) or not 0.0 <= val_fraction < 1.0:
        raise InvalidArgumentError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    groups: dict[str, list[int]] = {}
    for rec in episode_records(ds) if stratify == "task" else ():
        groups.setdefault(rec.tasks[0] if rec.tasks else "", []).append(rec.index)
    if stratify is None:
        groups = {"": list(ds.episodes)}
    rng = np.random.default_rng(seed)
    val: set[int] = set()
    for name in sorted(groups):
        eps = groups[name]
        n = len(eps)
        k = int(round(n * float(val_fraction)))
        if n >= 2 and val_fraction > 0:
            k = min(max(k, 1), n - 1)
        else:
            k = 0
        for i in rng.permutation(n)[:k]:
            val.add(eps[int(i)])
    order = list(ds.episodes)
    return [e for e in order if e not in val], [e for e in order if e in val]


#: LeRobot's normalisation modes (``NormalizationMode``), by the names ``normalize=`` takes.
NORMALIZATION_MODES = ("IDENTITY", "MEAN_STD", "MIN_MAX", "QUANTILES", "QUANTILE10")
_STATS_OF_MODE = {
    "MEAN_STD": ("mean", "std"),
    "MIN_MAX": ("min", "max"),
    "QUANTILES": ("q01", "q99"),
    "QUANTILE10": ("q10", "q90"),
}

NormTuple = tuple[str, str, list[float], list[float], float]


def normalization(
    ds: Dataset,
    normalize: dict[str, str] | None,
    stats: dict[str, dict[str, Any]] | str | None = None,
    eps: float = 1e-8,
) -> list[NormTuple] | None:
    """The core's normalisation of the entries named in ``normalize`` (``{key: mode}``, modes
    of :data:`NORMALIZATION_MODES`, any case), from ``stats`` (default: the dataset's
    ``stats.json``; ``"recompute"``: recomputed from the data; or a ``{key: {stat: array}}``
    dict such as LeRobot's). LeRobot's float32 arithmetic and epsilon rules; the entries must
    be float32 (cameras: ``frame_dtype="float32"``)."""
    if not normalize:
        return None
    if stats is None:
        table: dict[str, dict[str, Any]] = dict(ds.stats)
    elif isinstance(stats, str):
        if stats != "recompute":
            raise InvalidArgumentError(f"stats must be a dict, None or 'recompute', got {stats!r}")
        table = ds.compute_stats(progress=False)
    else:
        table = dict(stats)
    keys = {s.key for s in ds.output_specs()}
    out: list[NormTuple] = []
    for key, mode in normalize.items():
        m = str(getattr(mode, "value", mode)).upper()  # (LeRobot's NormalizationMode too)
        if m not in NORMALIZATION_MODES:
            raise InvalidArgumentError(f"normalize['{key}'] must be one of {NORMALIZATION_MODES}, got {mode!r}")
        if key not in keys:
            raise InvalidArgumentError(f"cannot normalise '{key}': not an entry of the dataset's items")
        if m == "IDENTITY":
            continue
        a_name, b_name = _STATS_OF_MODE[m]
        st = table.get(key)
        if st is None or a_name not in st or b_name not in st:
            raise InvalidArgumentError(
                f"{m} normalisation of '{key}' needs its '{a_name}' and '{b_name}' statistics, which the "
                "statistics do not have (stats='recompute' computes them from the data)"
            )
        try:
            a = np.asarray(st[a_name], dtype=np.float32).ravel().tolist()
            b = np.asarray(st[b_name], dtype=np.float32).ravel().tolist()
        except (TypeError, ValueError) as e:
            raise InvalidArgumentError(
                f"statistics '{a_name}'/'{b_name}' of '{key}' are not arrays of numbers: {e}"
            ) from None
        out.append((key, m, a, b, float(eps)))
    return out
