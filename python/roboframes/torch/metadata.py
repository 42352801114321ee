"""``LeRobotDatasetMetadata`` with LeRobot 0.4.4's constructor and attributes, read by the
roboframes core (no Hugging Face ``datasets``, no Arrow cache, nothing downloaded)."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from .. import _native, remote
from ..dataset import CameraKeys, Dataset
from ..errors import DatasetNotFoundError, MetadataError, ParquetError

CODEBASE_VERSION = "v3.0"


def lerobot_home() -> Path:
    """``$HF_LEROBOT_HOME``, else ``$HF_HOME/lerobot``, else ``~/.cache/huggingface/lerobot``
    (LeRobot's rule for where ``repo_id`` datasets live)."""
    if "HF_LEROBOT_HOME" in os.environ:
        return Path(os.environ["HF_LEROBOT_HOME"]).expanduser()
    hf_home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    return Path(hf_home).expanduser() / "lerobot"


def resolve_root(
    repo_id: str,
    root: str | os.PathLike[str] | None,
    streaming: bool = False,
    revision: str | None = None,
) -> str | Path:
    """The dataset root: ``root`` (a folder or a remote root's URL); with ``streaming`` and no
    ``root``, the Hub dataset ``hf://datasets/{repo_id}@{revision}`` read in place; otherwise
    ``lerobot_home() / repo_id``. A missing local one is a :class:`DatasetNotFoundError`."""
    if root is not None and remote.is_url(root):
        return remote.root_of(root)
    if streaming and not root:
        return f"hf://datasets/{repo_id}@{revision or CODEBASE_VERSION}"
    path = Path(root) if root else lerobot_home() / repo_id
    if not (path / "meta" / "info.json").exists():
        raise DatasetNotFoundError(
            f"no LeRobot dataset at '{path}' (for repo_id '{repo_id}'): roboframes downloads "
            "nothing; pass streaming=True (or a root URL such as hf://datasets/org/name) to read "
            "the dataset in place, or fetch it first, e.g. with LeRobot's LeRobotDataset(repo_id) "
            "or `huggingface-cli download --repo-type dataset`",
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


class EpisodeTable:
    """``meta.episodes``: one row per episode (every column of ``meta/episodes`` except the
    ``stats/*`` ones, as LeRobot loads it), with the access patterns LeRobot's code uses:
    ``episodes[i]`` (a dict), ``episodes["dataset_from_index"]`` (a list), ``len``, iteration,
    ``column_names`` and ``to_pandas()``. Read once, on first use."""

    def __init__(self, root: str | Path) -> None:
        self._root = root

    @cached_property
    def _columns(self) -> dict[str, list[Any]]:
        import pyarrow as pa

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

    def to_pandas(self) -> Any:
        """The table as a ``pandas.DataFrame``."""
        import pandas as pd

        return pd.DataFrame(self._columns)

    def __repr__(self) -> str:
        return f"EpisodeTable(num_rows={len(self)}, columns={self.column_names})"


class LeRobotDatasetMetadata(CameraKeys):
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

    def _load(self, opened: Dataset | None) -> None:
        # `opened`: the reader of this root that the caller has just opened (the drop-in's),
        # so that the metadata is not read from disk twice
        reader = opened if opened is not None else Dataset(self.root, storage_options=self.storage_options)
        self.root = reader.root  # a remote root's location (a Hub revision as its commit)
        info = copy.deepcopy(reader.info)
        for ft in info["features"].values():
            ft["shape"] = tuple(ft["shape"])
        self.info: dict[str, Any] = info
        # stats.json is optional: parsed on first use, so a broken one does not stop opening
        self._stats_reader = reader
        self.episodes = EpisodeTable(self.root)
        for cached in ("tasks", "subtasks", "stats"):
            self.__dict__.pop(cached, None)

    @cached_property
    def stats(self) -> dict[str, dict[str, Any]] | None:
        """``meta/stats.json`` (``{feature: {stat: ndarray}}``), or None without one; parsed on
        first use (a ``MetadataError`` names a broken file then), a plain mutable dict."""
        return self._stats_reader.read_stats()

    @cached_property
    def tasks(self) -> Any:
        """``meta/tasks.parquet`` as LeRobot reads it: a DataFrame indexed by task string."""
        return read_table(remote.join(self.root, "meta", "tasks.parquet")).to_pandas()

    @cached_property
    def subtasks(self) -> Any:
        """``meta/subtasks.parquet`` as a DataFrame, or None when the dataset has none."""
        path = remote.join(self.root, "meta", "subtasks.parquet")
        return read_table(path).to_pandas() if remote.file_exists(path) else None

    @property
    def url_root(self) -> str:
        return f"hf://datasets/{self.repo_id}"

    @property
    def _version(self) -> Any:
        import packaging.version

        return packaging.version.parse(self.info["codebase_version"])

    def get_data_file_path(self, ep_index: int) -> Path:
        """Data file of an episode, relative to ``root``."""
        ep = self._episode_row(ep_index)
        return Path(self.data_path.format(chunk_index=ep["data/chunk_index"], file_index=ep["data/file_index"]))

    def get_video_file_path(self, ep_index: int, vid_key: str) -> Path:
        """Video file of an episode's camera, relative to ``root``."""
        ep = self._episode_row(ep_index)
        if self.video_path is None:
            info = remote.join(self.root, "meta", "info.json")
            raise MetadataError(f"file '{info}': the dataset has no videos (video_path is null)", path=str(info))
        return Path(
            self.video_path.format(
                video_key=vid_key,
                chunk_index=ep[f"videos/{vid_key}/chunk_index"],
                file_index=ep[f"videos/{vid_key}/file_index"],
            )
        )

    def _episode_row(self, ep_index: int) -> dict[str, Any]:
        if ep_index >= len(self.episodes):
            raise IndexError(f"Episode index {ep_index} out of range. Episodes: {len(self.episodes)}")
        return cast("dict[str, Any]", self.episodes[ep_index])

    @property
    def data_path(self) -> str:
        return cast("str", self.info["data_path"])

    @property
    def video_path(self) -> str | None:
        return cast("str | None", self.info["video_path"])

    @property
    def robot_type(self) -> str | None:
        return cast("str | None", self.info["robot_type"])

    @property
    def fps(self) -> int:
        return cast("int", self.info["fps"])

    @property
    def features(self) -> dict[str, dict]:
        return cast("dict[str, dict]", self.info["features"])

    @property
    def names(self) -> dict[str, list | dict]:
        return {k: ft["names"] for k, ft in self.features.items()}

    @property
    def shapes(self) -> dict:
        return {k: tuple(ft["shape"]) for k, ft in self.features.items()}

    @property
    def total_episodes(self) -> int:
        return cast("int", self.info["total_episodes"])

    @property
    def total_frames(self) -> int:
        return cast("int", self.info["total_frames"])

    @property
    def total_tasks(self) -> int:
        return cast("int", self.info["total_tasks"])

    @property
    def chunks_size(self) -> int:
        return cast("int", self.info["chunks_size"])

    @property
    def data_files_size_in_mb(self) -> int:
        return cast("int", self.info["data_files_size_in_mb"])

    @property
    def video_files_size_in_mb(self) -> int:
        return cast("int", self.info["video_files_size_in_mb"])

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
