"""Whole-dataset passes on Ray Data (``pip install 'roboframes[ray]'``).

- :func:`read`: a ``ray.data.Dataset`` of a dataset's items (or batches) for every format
  :class:`roboframes.Dataset` opens, local or remote, with read tasks planned from the episodes
  and the files they live in.
- The tools' ``engine="ray"`` (:func:`roboframes.tools.validate`,
  :func:`roboframes.tools.compute_stats` / ``ds.stats(recompute=True, engine="ray")``,
  ``ds.quality(engine="ray")``, the command line's ``--engine ray``): the local run's checks or
  per-episode work, split into Ray tasks over groups of files or episodes and merged in
  episode order, so the results equal the local run's (statistics bit for bit).

Ray is used as it is found: an initialised Ray (``ray.init(address=...)`` for a cluster) is
used, otherwise the first call starts a local one, as Ray Data does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import PurePath
from typing import Any, TypeVar

import numpy as np

try:
    import ray
    import ray.data
    from ray.data.block import BlockAccessor, BlockMetadata
    from ray.data.datasource import Datasource, ReadTask
except ImportError as e:  # pragma: no cover (Ray is installed where this is tested)
    raise ImportError(
        "roboframes.ray (and engine='ray') needs Ray: pip install 'roboframes[ray]' (or 'ray[data]')"
    ) from e

from .dataset import Dataset
from .errors import InvalidArgumentError

T = TypeVar("T")

# (validate, compute_stats and quality_records are the engines behind the tools' engine="ray":
# call the tools, not these)
__all__ = ["read", "plan_tasks", "file_groups", "balance", "TaskPlan", "FileGroup"]

#: A read task's item ranges (``[start, end)`` in the dataset's item numbering).
TaskPlan = list[tuple[int, int]]

#: The bytes of decoded items one block holds at most (a block is one read of the core).
BLOCK_BYTES = 64 << 20


def _file_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """The files an episode lives in, from its episode-table row (its data file and each
    camera's video file: the columns ending in ``chunk_index`` / ``file_index``)."""
    return tuple(v for k, v in row.items() if k.endswith(("chunk_index", "file_index")))


#: A file group: the files, and each of its episodes with its item range ``[start, end)``.
FileGroup = tuple[tuple[Any, ...], list[tuple[int, int, int]]]


def file_groups(ds: Dataset) -> list[FileGroup]:
    """The selected episodes as runs that share their files: ``(files, [(episode, start,
    end), ...])`` per run, in dataset order (the one grouping both the read tasks and the
    tools' engine plan by)."""
    rows = {r["episode_index"]: r for r in ds.episode_table()}
    groups: list[FileGroup] = []
    start = 0
    for ep in ds.episodes:
        row = rows[ep]
        end = start + int(row["length"])
        key = _file_key(row)
        if end > start:
            if groups and groups[-1][0] == key:
                groups[-1][1].append((ep, start, end))
            else:
                groups.append((key, [(ep, start, end)]))
        start = end
    return groups


def balance(units: list[tuple[int, T]], tasks: int) -> list[list[T]]:
    """Contiguous runs of ``units`` (``(weight, payload)``, in order) in at most ``tasks``
    groups of about equal weight; no group is empty."""
    total = sum(w for w, _ in units)
    target = total / max(1, tasks)
    groups: list[list[T]] = []
    current: list[T] = []
    size = 0
    for w, payload in units:
        # close the current group when this unit would take it past the target, while groups
        # are left to make
        if current and size + w / 2 > target and len(groups) + 1 < tasks:
            groups.append(current)
            current, size = [], 0
        current.append(payload)
        size += w
    if current:
        groups.append(current)
    return groups


def plan_tasks(ds: Dataset, tasks: int) -> list[TaskPlan]:
    """About ``tasks`` read tasks over the selected episodes: contiguous runs of whole file
    groups (so that a task decodes whole GOPs of its files, and a file group is read by one
    task) of about equal item counts; a file group is split between tasks (by episode, then by
    items) only when there are fewer groups than tasks."""
    return _plan(file_groups(ds), tasks)


def _plan(groups: list[FileGroup], tasks: int) -> list[TaskPlan]:
    """:func:`plan_tasks` of the file groups ``groups``."""
    if isinstance(tasks, bool) or not isinstance(tasks, int) or tasks < 1:
        raise InvalidArgumentError(f"the number of read tasks must be an int >= 1, got {tasks!r}")
    units: list[TaskPlan] = [[(s, e) for _, s, e in eps] for _, eps in groups]
    total = sum(e - s for runs in units for s, e in runs)
    if total == 0:
        return []
    if len(units) < tasks:
        # more tasks than file groups: episodes become the units, then pieces of episodes
        units = [[r] for runs in units for r in runs]
        if len(units) < tasks:
            per = math.ceil(total / tasks)
            units = [[(a, min(a + per, e))] for run in units for s, e in run for a in range(s, e, per)]
    balanced = balance([(sum(e - s for s, e in u), u) for u in units], tasks)
    return [[r for unit in g for r in unit] for g in balanced]


def _item_bytes(ds: Dataset) -> int:
    return max(1, sum(int(np.prod(s.shape)) * np.dtype(s.dtype).itemsize for s in ds.output_specs() if s.is_array))


def _merged(plan: TaskPlan) -> TaskPlan:
    """``plan`` with adjacent ranges joined (a task's batches cross episode boundaries)."""
    out: TaskPlan = []
    for s, e in plan:
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _rows(plan: TaskPlan, batch_size: int | None) -> int:
    """The rows a read task makes: its items, or its batches."""
    if batch_size is None:
        return sum(e - s for s, e in plan)
    return sum(math.ceil((e - s) / batch_size) for s, e in _merged(plan))


def _blocks(ds: Dataset, plan: TaskPlan, batch_size: int | None, skip: Sequence[str]) -> Iterator[Any]:
    """The blocks of one read task: its items read in chunks of at most :data:`BLOCK_BYTES`
    (rows: items), or in batches of ``batch_size`` (rows: batches; a smaller one only at the
    end of the task's items)."""
    per_read = batch_size or max(1, BLOCK_BYTES // _item_bytes(ds))
    for start, end in _merged(plan):
        for a in range(start, end, per_read):
            b = min(a + per_read, end)
            batch = ds.fill_batch(np.arange(a, b), ds.frame_dtype, ds.channels_last, skip=skip)
            if batch_size is None:
                columns = {k: (np.asarray(v, dtype=object) if isinstance(v, list) else v) for k, v in batch.items()}
            else:
                # one row: the batch, each entry with its leading batch dimension
                columns = {k: _one_row(v) for k, v in batch.items()}
            yield BlockAccessor.batch_to_block(columns)


def _one_row(v: Any) -> np.ndarray:
    if isinstance(v, list):
        out = np.empty(1, dtype=object)
        out[0] = v
        return out
    return np.asarray(v)[None]


def read(
    root: str | os.PathLike[str],
    *,
    batch_size: int | None = None,
    episodes: Sequence[int] | None = None,
    cameras: Sequence[str] | None = None,
    override_num_blocks: int | None = None,
    parallelism: int = -1,
    ray_remote_args: dict[str, Any] | None = None,
    **dataset_options: Any,
) -> ray.data.Dataset:
    """A ``ray.data.Dataset`` of the items of the dataset at ``root`` (any format and root
    :class:`roboframes.Dataset` opens, with its options in ``dataset_options``:
    ``delta_timestamps``, ``frame_dtype``, ``channels_last``, ``storage_options``, ...).

    Rows are items, with the keys of ``ds[i]`` as columns (frames and other arrays as Ray's
    tensor columns, strings as strings), in the order the read tasks finish (dataset order with
    ``DataContext.execution_options.preserve_order = True``; each row's ``index`` says which
    item it is); with ``batch_size``, rows are batches of that many consecutive items (fewer
    only at the end of a task's items), each column holding the batch's array. ``cameras`` keeps only those cameras (the others are not decoded).

    The read tasks are planned by :func:`plan_tasks` from the episodes and the files they live
    in; their number is ``override_num_blocks`` (or ``parallelism``, Ray's older name), by
    default one per file group up to twice the CPUs Ray has available (this machine's cores
    when Ray is not initialised yet). Each task opens the dataset
    itself (a pickled :class:`roboframes.Dataset` reopens) and decodes on its own threads;
    ``ray_remote_args`` go to the read tasks (``num_cpus``, ``memory``, ...).
    """
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise InvalidArgumentError(f"batch_size must be a positive int, got {batch_size!r}")
    ds = Dataset(root, episodes=episodes, **dataset_options)
    skip: list[str] = []
    if cameras is not None:
        if isinstance(cameras, str):
            raise InvalidArgumentError(f"cameras must be a list of camera keys, got the string {cameras!r}")
        unknown = [c for c in cameras if c not in ds.camera_keys]
        if unknown:
            raise InvalidArgumentError(f"{unknown} are not camera keys of the dataset (camera keys: {ds.camera_keys})")
        dropped = [c for c in ds.camera_keys if c not in set(cameras)]
        skip = [s.key for s in ds.output_specs() if s.key in dropped or s.key.removesuffix("_is_pad") in dropped]
    groups = file_groups(ds)
    tasks = override_num_blocks if override_num_blocks is not None else (parallelism if parallelism > 0 else None)
    if tasks is None:
        cpus = int(ray.available_resources().get("CPU", 1)) if ray.is_initialized() else (os.cpu_count() or 1)
        tasks = max(1, min(len(groups), 2 * cpus))
    plans = _plan(groups, tasks)
    source = _Datasource(ds, plans, batch_size, skip)
    out: ray.data.Dataset = ray.data.read_datasource(
        source, override_num_blocks=len(plans) or 1, ray_remote_args=ray_remote_args
    )
    return out


class _Datasource(Datasource):
    """The Ray ``Datasource`` of :func:`read`: one read task per plan."""

    def __init__(self, ds: Dataset, plans: list[TaskPlan], batch_size: int | None, skip: Sequence[str]) -> None:
        self.ds = ds
        self.plans = plans
        self.batch_size = batch_size
        self.skip = list(skip)
        self.item_bytes = _item_bytes(ds)

    def get_name(self) -> str:
        return "Roboframes"

    def estimate_inmemory_data_size(self) -> int | None:
        return sum(e - s for plan in self.plans for s, e in plan) * self.item_bytes

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None, **_: Any
    ) -> list[ReadTask]:
        tasks = []
        for plan in self.plans:
            items = sum(e - s for s, e in plan)
            rows = _rows(plan, self.batch_size)
            meta = BlockMetadata(num_rows=rows, size_bytes=items * self.item_bytes, input_files=None, exec_stats=None)
            tasks.append(ReadTask(_read_fn(self.ds, plan, self.batch_size, self.skip), meta))
        return tasks


def _read_fn(ds: Dataset, plan: TaskPlan, batch_size: int | None, skip: list[str]) -> Callable[[], Iterator[Any]]:
    def read_task() -> Iterator[Any]:
        yield from _blocks(ds, plan, batch_size, skip)

    return read_task


# -- the tools' engine ----------------------------------------------------------------------------


def _run(fn: Callable[..., Any], args: list[tuple[Any, ...]], progress: Callable[[int, int], None] | None) -> list[Any]:
    """``fn(*a)`` for each ``a`` as Ray tasks; the results in the order of ``args``, with
    ``progress(done, total)`` as tasks finish. A task's error is raised as its own exception
    (Ray's wrapper removed)."""
    remote = ray.remote(fn)
    refs = [remote.remote(*a) for a in args]
    index = {r: i for i, r in enumerate(refs)}
    out: list[Any] = [None] * len(refs)
    pending = list(refs)
    done = 0
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for r in ready:
                try:
                    out[index[r]] = ray.get(r)
                except ray.exceptions.RayTaskError as e:
                    cause = getattr(e, "cause", None)
                    if isinstance(cause, BaseException):
                        raise cause from None
                    raise
                done += 1
                if progress is not None:
                    progress(done, len(refs))
    finally:
        # (an error, Ctrl-C or a failing progress callback stops the tasks still running)
        for r in pending:
            ray.cancel(r)
    return out


def _task_count(n_units: int) -> int:
    """Tasks for ``n_units`` units of work: at most 4 per CPU of the cluster (starting a local
    Ray when none is initialised)."""
    if not ray.is_initialized():
        ray.init()
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(n_units, 4 * cpus))


def validate(part_fn: Callable[..., dict[str, Any]], args: tuple[Any, ...], progress: Any) -> dict[str, Any]:
    """The engine of :func:`roboframes.tools.validate`: ``part_fn(*args, (index, count))``
    (the core's validation of one part of the run) as Ray tasks, merged: the findings of all
    parts (sorted as one run sorts them), the counts of part 0, the frames decoded of all."""
    count = _task_count(64)
    results = _run(part_fn, [(*args, (i, count)) for i in range(count)], progress)
    merged = dict(results[0])
    merged["findings"] = sorted((f for r in results for f in r["findings"]), key=_finding_order)
    merged["frames_decoded"] = sum(r["frames_decoded"] for r in results)
    merged["complete"] = all(r["complete"] for r in results)
    return merged


def _finding_order(f: dict[str, Any]) -> tuple[Any, ...]:
    """The order of the core's findings (errors first, then path by components, episode, key,
    check, message; absent before present, as Rust orders ``Option``)."""

    def opt(v: Any, empty: Any) -> tuple[bool, Any]:
        return (v is not None, empty if v is None else v)

    path = f["path"]
    return (
        f["severity"] != "error",
        opt(None if path is None else PurePath(path).parts, ()),
        opt(f["episode"], 0),
        opt(f["key"], ""),
        f["check"],
        f["message"],
    )


def _episode_stats(ds: Dataset, episodes: list[int]) -> tuple[list[tuple[str, bool]], list[tuple[int, Any]]]:
    """One task's episodes' statistics: the keys, and ``(episode, row)`` per episode."""
    from . import _native

    part = ds.reopen(episodes=episodes)
    keys, rows = _native.episode_stats(part._native, None)  # noqa: SLF001
    return keys, list(zip(part.episodes, rows, strict=True))


def compute_stats(ds: Dataset, progress: Callable[[int, int], None] | None) -> list[dict[str, Any]]:
    """The engine of :func:`roboframes.tools.compute_stats`: each episode's statistics in Ray
    tasks over runs of episodes that share files, aggregated on the caller in the dataset's
    episode order, as the local run aggregates them (the same numbers, bit for bit)."""
    from . import _native

    groups = _episode_groups(ds)
    results = _run(_episode_stats, [(ds, g) for g in groups], progress)
    keys: list[tuple[str, bool]] = results[0][0] if results else []
    # (in the caller's episode order, whatever order a task's reopened selection has)
    by_episode = {ep: row for _, part in results for ep, row in part}
    rows = [by_episode[ep] for ep in ds.episodes]
    out: list[dict[str, Any]] = _native.aggregate_stats(keys, rows)
    return out


def _episode_groups(ds: Dataset) -> list[list[int]]:
    """The selected episodes in about as many groups as the cluster runs tasks: contiguous
    runs of episodes that share files (whole file groups), of about equal item counts."""
    groups = file_groups(ds)
    tasks = _task_count(len(ds.episodes))
    units = [(sum(e - s for _, s, e in eps), [ep for ep, _, _ in eps]) for _, eps in groups]
    if len(units) < tasks:
        units = [(e - s, [ep]) for _, eps in groups for ep, s, e in eps]
    return [[ep for eps in g for ep in eps] for g in balance(units, tasks)]


def _quality_part(ds: Dataset, episodes: list[int], cameras: bool, stds: dict[str, Any]) -> list[dict[str, Any]]:
    from .quality import episode_records

    return episode_records(ds.reopen(episodes=episodes), cameras=cameras, stds=stds)


def quality_records(
    ds: Dataset, cameras: bool, stds: dict[str, Any], progress: Callable[[int, int], None] | None
) -> list[dict[str, Any]]:
    """The engine of :meth:`roboframes.Dataset.quality`: each episode's scores in Ray tasks,
    in episode order (the caller judges them)."""
    groups = _episode_groups(ds)
    parts = _run(_quality_part, [(ds, g, cameras, stds) for g in groups], progress)
    by_episode = {r["episode_index"]: r for part in parts for r in part}
    return [by_episode[ep] for ep in ds.episodes]
