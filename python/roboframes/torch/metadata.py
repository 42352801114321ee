"""``LeRobotDatasetMetadata`` with the constructor and attributes of LeRobot 0.4.4
(:class:`LeRobotDatasetMetadata04`) and of LeRobot 0.6.x (:class:`LeRobotDatasetMetadata06`),
read by the roboframes core (no Hugging Face ``datasets``, no Arrow cache, nothing
downloaded)."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from .. import _native, remote
from ..dataset import CameraKeys, Dataset
from ..errors import DatasetNotFoundError, InvalidArgumentError, MetadataError, ParquetError

logger = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"


def lerobot_home() -> Path:
    """``$HF_LEROBOT_HOME``, else ``$HF_HOME/lerobot``, else ``~/.cache/huggingface/lerobot``
    (LeRobot's rule for where ``repo_id`` datasets live)."""
    if "HF_LEROBOT_HOME" in os.environ:
        return Path(os.environ["HF_LEROBOT_HOME"]).expanduser()
    hf_home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    return Path(hf_home).expanduser() / "lerobot"


def _version_ref(refs: Path, revision: str) -> str | None:
    """The name of the ref under ``refs`` that LeRobot's ``get_safe_version`` would have picked
    for a version ``revision`` (``v3.0``): that version itself, else the newest ``v{major}.{minor}``
    tag of the same major version and a minor version no higher. None when none is there (or
    ``revision`` is no version)."""
    import re

    version = re.fullmatch(r"v?(\d+)\.(\d+)", revision)
    if version is None or not refs.is_dir():
        return None
    want = (int(version.group(1)), int(version.group(2)))
    tags: list[tuple[tuple[int, int], str]] = []
    for ref in refs.iterdir():
        m = re.fullmatch(r"v?(\d+)\.(\d+)", ref.name)
        if m and ref.is_file():
            tags.append(((int(m.group(1)), int(m.group(2))), ref.name))
    compatible = [t for t in tags if t[0][0] == want[0] and t[0][1] <= want[1]]
    return max(compatible)[1] if compatible else None


def hub_snapshot(repo_id: str, revision: str | None, repo_type: str = "dataset") -> Path | None:
    """Where LeRobot 0.6 keeps a dataset it downloaded without a ``root``: its revision-safe Hub
    cache, ``$HF_LEROBOT_HOME/hub/datasets--{org}--{name}/snapshots/{commit}`` (the commit that
    ``refs/{revision}`` names, ``revision`` defaulting to ``v3.0``; for a version, the tag
    LeRobot's ``get_safe_version`` picks among the cached refs; or a snapshot named by a commit
    given as ``revision``), or for a storage bucket ``$HF_LEROBOT_HOME/hub/buckets--{org}--{name}``.
    None when it holds no such dataset."""
    hub = lerobot_home() / "hub"
    if repo_type == "bucket":
        folder = hub / ("buckets--" + repo_id.replace("/", "--"))
        return folder if (folder / "meta" / "info.json").exists() else None
    repo = hub / ("datasets--" + repo_id.replace("/", "--"))
    rev = revision or CODEBASE_VERSION
    candidates: list[str] = []
    for name in (rev, _version_ref(repo / "refs", rev)):
        ref = repo / "refs" / name if name else None
        if ref is not None and ref.is_file():
            candidates.append(ref.read_text().strip())
    candidates.append(rev)  # a commit hash given as the revision
    for commit in candidates:
        snap = repo / "snapshots" / commit
        if commit and "/" not in commit and (snap / "meta" / "info.json").exists():
            return snap
    return None


def resolve_root(
    repo_id: str,
    root: str | os.PathLike[str] | None,
    streaming: bool = False,
    revision: str | None = None,
    *,
    hub_cache: bool = False,
    repo_type: str = "dataset",
) -> str | Path:
    """The dataset root: ``root`` (a folder or a remote root's URL); with ``streaming`` and no
    ``root``, the Hub dataset ``hf://datasets/{repo_id}@{revision}`` read in place; otherwise
    ``lerobot_home() / repo_id`` or, with ``hub_cache`` (LeRobot 0.6), the dataset in LeRobot's
    Hub snapshot cache (:func:`hub_snapshot`) when that folder holds none (or is a legacy
    ``local_dir`` mirror that LeRobot 0.6 re-fetches into the cache). A missing local one is a
    :class:`DatasetNotFoundError` naming the places looked at."""
    if root is not None and remote.is_url(root):
        return remote.root_of(root)
    if streaming and not root:
        return f"hf://datasets/{repo_id}@{revision or CODEBASE_VERSION}"
    path = Path(root).expanduser() if root else lerobot_home() / repo_id
    looked = [str(path)]
    if not root and hub_cache:
        legacy = (path / ".cache" / "huggingface" / "download").exists()
        snap = hub_snapshot(repo_id, revision, repo_type)
        if snap is not None and (legacy or repo_type == "bucket" or not (path / "meta" / "info.json").exists()):
            return snap
        looked.append(str(lerobot_home() / "hub"))
    if not (path / "meta" / "info.json").exists():
        raise DatasetNotFoundError(
            f"no LeRobot dataset at {' nor in '.join(repr(p) for p in looked)} (for repo_id '{repo_id}'): "
            "roboframes downloads nothing; pass streaming=True (or a root URL such as "
            "hf://datasets/org/name) to read the dataset in place, or fetch it first, e.g. with "
            "LeRobot's LeRobotDataset(repo_id) or `huggingface-cli download --repo-type dataset`",
            path=str(path / "meta" / "info.json"),
        )
    return path


def read_table(location: str | Path) -> Any:
    """A whole parquet table (a ``pyarrow.Table``) of a local or remote root, its bytes read
    through the core's byte source; a damaged file is a :class:`ParquetError` naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = remote.read_bytes(location)
    try:
        return pq.read_table(pa.BufferReader(data))
    except (OSError, pa.ArrowException) as e:
        raise ParquetError(f"file '{location}': cannot read parquet: {e}", path=str(location)) from None


def _jsonl_tasks(location: str | Path) -> dict[int, list[str]]:
    """``{episode_index: tasks}`` of a v2.x root's ``meta/episodes.jsonl`` (the core has read
    and checked its episodes and lengths; an episode's ``tasks`` that is not a list of strings
    is a ``MetadataError`` naming the file and line)."""
    out: dict[int, list[str]] = {}
    for n, line in enumerate(remote.read_bytes(location).decode("utf-8", "strict").splitlines(), 1):
        if not line.strip():
            continue
        doc = json.loads(line)
        tasks = doc.get("tasks", [])
        if not (isinstance(tasks, list) and all(isinstance(t, str) for t in tasks)):
            raise MetadataError(f"file '{location}': line {n}: 'tasks' is not a list of strings", path=str(location))
        out[int(doc["episode_index"])] = tasks
    return out


class EpisodeTable:
    """``meta.episodes``: one row per episode (every column of ``meta/episodes`` except the
    ``stats/*`` ones, as LeRobot loads it), with the access patterns LeRobot's code uses:
    ``episodes[i]`` (a dict), ``episodes["dataset_from_index"]`` (a list), ``len``, iteration,
    ``column_names`` and ``to_pandas()``. Read once, on first use."""

    def __init__(self, root: str | Path, rows: Callable[[], list[dict[str, Any]]] | None = None) -> None:
        # `rows`: a v2.x root's table, as the core made it from meta/episodes.jsonl (its v3.0
        # columns: where each episode's rows and frames lie)
        self._root = root
        self._rows = rows

    @cached_property
    def _columns(self) -> dict[str, list[Any]]:
        import pyarrow as pa

        if self._rows is not None:
            rows = self._rows()
            columns = {c: [r[c] for r in rows] for c in (rows[0] if rows else {})}
            # each episode's tasks, as meta/episodes.jsonl lists them (LeRobot's `tasks` column)
            tasks = _jsonl_tasks(remote.join(self._root, "meta", "episodes.jsonl"))
            episodes = columns.pop("episode_index", [])
            return {"episode_index": episodes, "tasks": [tasks.get(int(e), []) for e in episodes], **columns}

        folder = remote.join(self._root, "meta", "episodes")
        paths = _native.episode_files(str(self._root))
        if not paths:
            raise DatasetNotFoundError(f"no episode metadata under '{folder}'", path=str(folder))
        tables = [read_table(p) for p in paths]
        try:
            table = pa.concat_tables(tables, promote_options="default")
        except pa.ArrowException as e:
            raise ParquetError(f"files under '{folder}': episode tables disagree: {e}") from None
        keep = [c for c in table.column_names if not c.startswith("stats/")]
        return cast("dict[str, list[Any]]", table.select(keep).to_pydict())

    @property
    def column_names(self) -> list[str]:
        """Column names, in file order."""
        return list(self._columns)

    @property
    def num_rows(self) -> int:
        """Number of episodes."""
        return len(self)

    def __len__(self) -> int:
        cols = self._columns
        return len(next(iter(cols.values()))) if cols else 0

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._columns[key]
        i = int(key)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"episode row {key} out of range for {n} episodes")
        return {c: v[i] for c, v in self._columns.items()}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    def rows_where(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The rows for which ``predicate(row)`` is true, in table order."""
        return [row for row in self if predicate(row)]

    def to_pandas(self) -> Any:
        """The table as a ``pandas.DataFrame``."""
        import pandas as pd

        return pd.DataFrame(self._columns)

    def __repr__(self) -> str:
        return f"EpisodeTable(num_rows={len(self)}, columns={self.column_names})"


class _Metadata(CameraKeys):
    """What both lines' metadata share: the root, ``info.json``'s features and totals, the
    episode table, tasks, statistics, and file paths. ``self._raw`` is ``info.json`` as a dict
    (shapes as tuples); each line exposes ``info`` its own way."""

    repo_id: str
    revision: str
    root: str | Path
    storage_options: remote.StorageOptions | None
    _raw: dict[str, Any]

    def _load(self, opened: Dataset | None) -> None:
        # `opened`: the reader of this root that the caller has just opened (the drop-in's),
        # so that the metadata is not read from disk twice
        reader = opened if opened is not None else Dataset(self.root, storage_options=self.storage_options)
        self.root = reader.root  # a remote root's location (a Hub revision as its commit)
        raw = copy.deepcopy(reader.info)
        for ft in raw["features"].values():
            ft["shape"] = tuple(ft["shape"])
        self._raw = raw
        # stats.json is optional: parsed on first use, so a broken one does not stop opening
        self._stats_reader = reader
        self._legacy_tasks = dict(reader.tasks) if reader.codebase_version.startswith("v2") else None
        legacy_rows = reader._native.episode_table if self._legacy_tasks is not None else None  # noqa: SLF001
        self.episodes = EpisodeTable(self.root, legacy_rows)
        for cached in ("tasks", "subtasks", "stats"):
            self.__dict__.pop(cached, None)

    @cached_property
    def stats(self) -> dict[str, dict[str, Any]] | None:
        """``meta/stats.json`` (``{feature: {stat: ndarray}}``), or None without one; parsed on
        first use (a ``MetadataError`` names a broken file then), a plain mutable dict, depth
        maps' statistics in the unit they were recorded in (see ``rescale_depth_stats``)."""
        return parse_recorded_stats(self._stats_reader)

    @cached_property
    def tasks(self) -> Any:
        """``meta/tasks.parquet`` as LeRobot reads it: a DataFrame indexed by task string (a v2.x
        root's ``meta/tasks.jsonl`` in that shape)."""
        return self._tasks_table()

    def _tasks_table(self) -> Any:
        if self._legacy_tasks is not None:
            import pandas as pd

            tasks = self._legacy_tasks
            return pd.DataFrame({"task_index": list(tasks)}, index=pd.Index(list(tasks.values()), name="task"))
        return read_table(remote.join(self.root, "meta", "tasks.parquet")).to_pandas()

    @property
    def url_root(self) -> str:
        return f"hf://datasets/{self.repo_id}"

    @property
    def _version(self) -> Any:
        import packaging.version

        return packaging.version.parse(self._raw["codebase_version"])

    def get_data_file_path(self, ep_index: int) -> Path:
        """Data file of an episode, relative to ``root``."""
        ep = self._episode_row(ep_index)
        chunk, file = ep["data/chunk_index"], ep["data/file_index"]
        # (a v2.x template names the episode's chunk and index: its file is the episode's)
        return Path(self.data_path.format(chunk_index=chunk, file_index=file, episode_chunk=chunk, episode_index=file))

    def get_video_file_path(self, ep_index: int, vid_key: str) -> Path:
        """Video file of an episode's camera, relative to ``root``."""
        ep = self._episode_row(ep_index)
        if self.video_path is None:
            info = remote.join(self.root, "meta", "info.json")
            raise MetadataError(f"file '{info}': the dataset has no videos (video_path is null)", path=str(info))
        chunk, file = ep[f"videos/{vid_key}/chunk_index"], ep[f"videos/{vid_key}/file_index"]
        return Path(
            self.video_path.format(
                video_key=vid_key, chunk_index=chunk, file_index=file, episode_chunk=chunk, episode_index=file
            )
        )

    def _episode_row(self, ep_index: int) -> dict[str, Any]:
        if ep_index >= len(self.episodes):
            raise IndexError(f"Episode index {ep_index} out of range. Episodes: {len(self.episodes)}")
        return cast("dict[str, Any]", self.episodes[ep_index])

    @property
    def data_path(self) -> str:
        return cast("str", self._raw["data_path"])

    @property
    def video_path(self) -> str | None:
        return cast("str | None", self._raw.get("video_path"))

    @property
    def robot_type(self) -> str | None:
        return cast("str | None", self._raw.get("robot_type"))

    @property
    def fps(self) -> int:
        return cast("int", self._raw["fps"])

    @property
    def features(self) -> dict[str, dict]:
        return cast("dict[str, dict]", self._raw["features"])

    @property
    def names(self) -> dict[str, list | dict]:
        return {k: ft["names"] for k, ft in self.features.items()}

    @property
    def shapes(self) -> dict:
        return {k: tuple(ft["shape"]) for k, ft in self.features.items()}

    @property
    def total_episodes(self) -> int:
        return cast("int", self._raw["total_episodes"])

    @property
    def total_frames(self) -> int:
        return cast("int", self._raw["total_frames"])

    @property
    def total_tasks(self) -> int:
        return cast("int", self._raw["total_tasks"])

    @property
    def chunks_size(self) -> int:
        return cast("int", self._raw["chunks_size"])

    @property
    def data_files_size_in_mb(self) -> int:
        return cast("int", self._raw["data_files_size_in_mb"])

    @property
    def video_files_size_in_mb(self) -> int:
        return cast("int", self._raw["video_files_size_in_mb"])

    def get_task_index(self, task: str) -> int | None:
        """The ``task_index`` of a task string, or None if the dataset lacks it."""
        if task in self.tasks.index:
            return int(self.tasks.loc[task].task_index)
        return None

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({{\n"
            f"    Repository ID: '{self.repo_id}',\n"
            f"    Total episodes: '{self.total_episodes}',\n"
            f"    Total frames: '{self.total_frames}',\n"
            f"    Features: '{list(self.features)}',\n"
            "})',\n"
        )


def parse_recorded_stats(reader: Dataset) -> dict[str, dict[str, Any]] | None:
    """``meta/stats.json`` of ``reader``'s root as written (depth maps in their recorded unit; a
    v2.1 root's episodes' statistics aggregated as LeRobot 0.3 does)."""
    from ..dataset import recorded_stats

    return recorded_stats(reader)


class LeRobotDatasetMetadata04(_Metadata):
    """Metadata of a LeRobot v3.0 dataset (local, or a remote root), usable wherever LeRobot 0.4.4's
    ``LeRobotDatasetMetadata`` is (policy factories, processors, samplers).

    Args:
        repo_id: The dataset's id; locates it under ``$HF_LEROBOT_HOME`` when ``root`` is None.
        root: The dataset folder (holding ``meta/``, ``data/``, ``videos/``).
        revision: Kept for LeRobot compatibility (defaults to ``"v3.0"``); nothing is fetched.
        force_cache_sync: Accepted for compatibility; ignored (nothing is downloaded).
        metadata_buffer_size: Accepted for compatibility (LeRobot's writer setting).
        streaming: With no ``root``, read the Hub dataset ``repo_id`` at ``revision`` in place
            (``hf://datasets/{repo_id}@{revision}``, through ``HF_ENDPOINT``/``HF_TOKEN``).
        storage_options: Settings of a remote root's store (see :mod:`roboframes.remote`).
    """

    def __init__(
        self,
        repo_id: str,
        root: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        force_cache_sync: bool = False,
        metadata_buffer_size: int = 10,
        *,
        streaming: bool = False,
        storage_options: remote.StorageOptions | None = None,
        _opened: Dataset | None = None,
    ) -> None:
        self.repo_id = repo_id
        self.revision = revision if revision else CODEBASE_VERSION
        self.storage_options = storage_options
        self.root = resolve_root(repo_id, root, streaming, self.revision)
        self.metadata_buffer_size = metadata_buffer_size
        self._load(_opened)

    def load_metadata(self) -> None:
        """(Re)reads ``info.json``, stats and (on next use) tasks, subtasks and episodes."""
        self._load(None)

    @property
    def info(self) -> dict[str, Any]:
        """``meta/info.json`` as a dict (feature shapes as tuples), as LeRobot 0.4.4 holds it."""
        return self._raw

    @cached_property
    def subtasks(self) -> Any:
        """``meta/subtasks.parquet`` as a DataFrame, or None when the dataset has none."""
        path = remote.join(self.root, "meta", "subtasks.parquet")
        return read_table(path).to_pandas() if remote.file_exists(path) else None


def dataset_info(raw: dict[str, Any]) -> Any:
    """``info.json`` as LeRobot 0.6 holds it: its ``DatasetInfo`` dataclass (attribute access,
    ``to_dict()``, dict-style access with a deprecation warning); the installed LeRobot's own
    class when there is one, else :class:`DatasetInfo`."""
    import importlib

    cls: Any = DatasetInfo
    try:
        cls = getattr(importlib.import_module("lerobot.datasets.utils"), "DatasetInfo", DatasetInfo)
    except ImportError:
        pass
    if not hasattr(cls, "from_dict"):
        cls = DatasetInfo
    return cls.from_dict(copy.deepcopy(raw))


@dataclasses.dataclass
class DatasetInfo:
    """LeRobot 0.6's ``DatasetInfo`` (``info.json``), for environments whose ``lerobot`` lacks
    it: attribute access, ``to_dict()``, ``from_dict()`` (unknown fields ignored), and
    dict-style ``info["fps"]`` / ``get`` / ``in``."""

    codebase_version: str
    fps: int
    features: dict[str, dict]
    total_episodes: int = 0
    total_frames: int = 0
    total_tasks: int = 0
    chunks_size: int = 1000
    data_files_size_in_mb: int = 100
    video_files_size_in_mb: int = 200
    data_path: str = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    video_path: str | None = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    robot_type: str | None = None
    splits: dict[str, str] = dataclasses.field(default_factory=dict)
    tools: list[dict] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        known = {f.name for f in dataclasses.fields(cls)}
        info = cls(**{k: v for k, v in data.items() if k in known})
        for ft in info.features.values():
            if isinstance(ft.get("shape"), list):
                ft["shape"] = tuple(ft["shape"])
        return info

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for ft in d["features"].values():
            if isinstance(ft.get("shape"), tuple):
                ft["shape"] = list(ft["shape"])
        if d.get("tools") is None:
            d.pop("tools", None)
        return d

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError as err:
            raise KeyError(key) from err

    def __contains__(self, key: str) -> bool:
        return hasattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


#: LeRobot 0.6's language columns.
LANGUAGE_COLUMNS = ("language_persistent", "language_events")

#: The ``say`` tool LeRobot 0.6 declares when a dataset declares no tools
#: (``lerobot.datasets.language.DEFAULT_TOOLS``).
_SAY_TOOL = {
    "type": "function",
    "function": {
        "name": "say",
        "description": "Speak a short utterance to the user via the TTS executor.",
        "parameters": {
            "type": "object",
            "properties": {"text": {"type": "string", "description": "The verbatim text to speak."}},
            "required": ["text"],
        },
    },
}


class LeRobotDatasetMetadata06(_Metadata):
    """Metadata of a LeRobot v3.0 dataset (local, or a remote root), usable wherever LeRobot
    0.6.x's ``LeRobotDatasetMetadata`` is (policy factories, processors, samplers, training).

    Args:
        repo_id: The dataset's id; with no ``root``, found under ``$HF_LEROBOT_HOME/{repo_id}``
            or in LeRobot 0.6's Hub snapshot cache ``$HF_LEROBOT_HOME/hub``.
        root: The dataset folder (holding ``meta/``, ``data/``, ``videos/``), or a remote root.
        revision: The revision to look for in the Hub cache (default ``"v3.0"``); nothing is
            fetched.
        force_cache_sync, metadata_buffer_size: Accepted for compatibility (nothing is
            downloaded or written).
        repo_type: ``"dataset"`` or ``"bucket"`` (a storage bucket synced under
            ``$HF_LEROBOT_HOME/hub``).
        token: Accepted for compatibility; sent to the Hub when the dataset is read in place
            (``streaming=True`` or an ``hf://`` root).
        streaming, storage_options: As :class:`LeRobotDatasetMetadata04`'s.
    """

    def __init__(
        self,
        repo_id: str,
        root: str | os.PathLike[str] | None = None,
        revision: str | None = None,
        force_cache_sync: bool = False,
        metadata_buffer_size: int = 10,
        *,
        repo_type: str = "dataset",
        token: str | bool | None = None,
        streaming: bool = False,
        storage_options: remote.StorageOptions | None = None,
        _opened: Dataset | None = None,
    ) -> None:
        if repo_type not in ("dataset", "bucket"):
            raise ValueError(f"repo_type must be 'dataset' or 'bucket', got {repo_type!r}")
        self.repo_id = repo_id
        self.repo_type = repo_type
        self.revision = revision if revision else CODEBASE_VERSION
        self.storage_options = with_token(storage_options, token)
        self.root = resolve_root(repo_id, root, streaming, self.revision, hub_cache=True, repo_type=repo_type)
        self.metadata_buffer_size = metadata_buffer_size
        self._load(_opened)

    def _load(self, opened: Dataset | None) -> None:
        super()._load(opened)
        self.info = dataset_info(self._raw)

    @cached_property
    def stats(self) -> dict[str, dict[str, Any]] | None:
        """``meta/stats.json`` (``{feature: {stat: ndarray}}``), or None without one; parsed on
        first use (a ``MetadataError`` names a broken file then), a plain mutable dict; depth
        maps' statistics in the unit :meth:`rescale_depth_stats` asked for (else as recorded)."""
        stats = parse_recorded_stats(self._stats_reader)
        unit = self.__dict__.get("_depth_unit")
        return stats if stats is None or unit is None else _rescaled(stats, self.features, None, unit)

    @cached_property
    def tasks(self) -> Any:
        """``meta/tasks.parquet`` as LeRobot 0.6 reads it: a DataFrame indexed by task string
        (an index named ``task``)."""
        tasks = self._tasks_table()
        tasks.index.name = "task"
        return tasks

    def ensure_readable(self) -> None:
        """LeRobot 0.6's guard before reading: the metadata is read at construction, so this
        only reloads it when it was dropped."""
        if getattr(self, "episodes", None) is None:
            self._load(None)

    @property
    def features(self) -> dict[str, dict]:
        return cast("dict[str, dict]", self.info.features)

    @property
    def url_root(self) -> str:
        kind = "buckets" if self.repo_type == "bucket" else "datasets"
        return f"hf://{kind}/{self.repo_id}"

    @property
    def has_language_columns(self) -> bool:
        """Whether the dataset declares a language column (LeRobot 0.6's gate for its
        language-aware collate)."""
        return any(c in self.features for c in LANGUAGE_COLUMNS)

    @property
    def tools(self) -> list[dict]:
        """The tool schemas ``info.json`` declares, else LeRobot 0.6's default ``say`` tool
        (copies)."""
        declared = self._raw.get("tools")
        return [dict(t) for t in (declared or [_SAY_TOOL])]

    def filter_episodes(self, predicate: Callable[[dict], bool], candidates: list[int] | None = None) -> list[int]:
        """The sorted indices of the episodes (among ``candidates`` when given) whose
        ``meta/episodes`` row (without ``stats/*``) satisfies ``predicate``."""
        keep = None if candidates is None else set(candidates)
        rows = self.episodes.rows_where(lambda ep: (keep is None or ep["episode_index"] in keep) and predicate(ep))
        return sorted(int(r["episode_index"]) for r in rows)

    def rescale_depth_stats(self, output_unit: str) -> None:
        """Turns the depth maps' statistics, in place, from the unit each was recorded in
        (``info.depth_unit``) into ``output_unit`` (``"m"`` or ``"mm"``), as LeRobot 0.6 does;
        a depth map without a recorded unit is left as it is, with a warning."""
        if output_unit not in ("m", "mm"):
            raise InvalidArgumentError(f"depth_output_unit must be 'm' or 'mm', got {output_unit!r}")
        missing = [k for k in self.depth_keys if (self.features[k].get("info") or {}).get("depth_unit") is None]
        if missing:
            logger.warning(
                "Depth feature(s) %s have no recorded 'depth_unit' in their info: their depth maps and "
                "statistics are returned as they are, not converted to %r",
                missing,
                output_unit,
            )
        # (stats.json stays unparsed until used, so that a broken one does not stop opening;
        # statistics already handed out are rescaled, as LeRobot's)
        parsed = self.__dict__.get("stats")
        if parsed is not None:
            self.__dict__["stats"] = _rescaled(parsed, self.features, self.__dict__.get("_depth_unit"), output_unit)
        self._depth_unit = output_unit


def _rescaled(
    stats: dict[str, dict[str, Any]], features: dict[str, dict], current: str | None, target: str
) -> dict[str, dict[str, Any]]:
    """``stats`` with each depth map's statistics (in ``current``, or in its recorded unit when
    ``current`` is None) turned into ``target``; depth maps without a recorded unit are left as
    they are. A new dict."""
    from ..dataset import is_depth_feature

    out = dict(stats)
    for key, ft in features.items():
        recorded = (ft.get("info") or {}).get("depth_unit")
        unit = current if current is not None else recorded
        if key not in out or not is_depth_feature(ft) or recorded is None or unit == target:
            continue
        factor = 1000.0 if unit == "m" else 1.0 / 1000.0
        out[key] = {n: v if n == "count" else v * factor for n, v in out[key].items()}
    return out


def with_token(storage_options: remote.StorageOptions | None, token: str | bool | None) -> remote.StorageOptions | None:
    """``storage_options`` with a Hub ``token`` given as LeRobot's argument (a string; ``True``,
    ``False`` and None leave the options as they are: the environment's ``HF_TOKEN`` applies)."""
    if not isinstance(token, str):
        return storage_options
    out = dict(storage_options or {})
    out.setdefault("token", token)
    return out
