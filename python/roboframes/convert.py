"""``roboframes convert SRC DST``: any source roboframes reads (HDF5 files of ALOHA or
robomimic/LIBERO episodes, or a LeRobot dataset) written as a LeRobot v3.0 dataset by LeRobot's
own writer (``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` / ``finalize``), so
its videos, tables, statistics and ``info.json`` are what LeRobot writes, with the installed
LeRobot's codec defaults.

The dataset is written into ``DST.partial`` and renamed to ``DST`` when complete, with a record
of what it was converted from (``meta/roboframes_convert.json``): running the same conversion
again finds it done and returns at once; an interrupted one starts over; a different one into
an existing ``DST`` is refused, never written over.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import remote
from .dataset import Dataset
from .errors import InvalidArgumentError, MetadataError

#: LeRobot's own columns: the writer makes them.
BOOKKEEPING = ("index", "episode_index", "frame_index", "timestamp", "task_index")

#: The record of a conversion, in the written dataset's ``meta/``.
RECORD = "roboframes_convert.json"

#: The mark of a conversion under way, in ``DST.partial``: only a folder holding it is ever
#: removed (an interrupted conversion's), never another one of that name.
UNDER_WAY = ".roboframes-convert-under-way"


def lerobot_features(ds: Dataset, use_videos: bool = True) -> dict[str, dict[str, Any]]:
    """The ``features`` to create a LeRobot dataset holding ``ds``'s items: cameras as videos
    (``use_videos``; colour cameras only, LeRobot's videos are RGB) or images, numeric entries
    with their item dtype (``float32``, ``int64``, ``bool``) and shape."""
    out: dict[str, dict[str, Any]] = {}
    depth = set(ds.depth_keys)
    for key, f in ds.features.items():
        if key in BOOKKEEPING:
            continue
        if key in depth or f["dtype"] == "language":
            what = "a depth map" if key in depth else "a language column"
            raise InvalidArgumentError(
                f"'{key}' is {what}: LeRobot writes those with its own tools, not add_frame; convert "
                "a selection without it, or copy the dataset"
            )
        if f["dtype"] == "string":
            out[key] = {"dtype": "string", "shape": (1,), "names": None}
            continue
        if "/" in key:
            raise InvalidArgumentError(
                f"LeRobot's feature names cannot hold '/', and '{key}' does: name it with key_map "
                "(key_map='lerobot' names the usual keys, or give {source key: name})"
            )
        shape = tuple(int(d) for d in f["shape"])
        if f["dtype"] in ("video", "image"):
            if shape[-1] != 3:
                raise InvalidArgumentError(
                    f"camera '{key}' has {shape[-1]} channels; LeRobot's writer takes colour (3-channel) "
                    "frames: convert the source's frames to RGB first"
                )
            out[key] = {
                "dtype": "video" if use_videos else "image",
                "shape": shape,
                "names": ["height", "width", "channels"],
            }
            continue
        spec = next(s for s in ds.output_specs() if s.key == key)
        out[key] = {"dtype": spec.dtype, "shape": shape, "names": f.get("names")}
    return out


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    episodes: Sequence[int] | None = None,
    format: str | None = None,
    fps: float | None = None,
    task: str | None = None,
    key_map: str | Mapping[str, str] | None = "lerobot",
    split: str | None = None,
    topics: Sequence[str] | None = None,
    reference_topic: str | None = None,
    align_tolerance_s: float | None = None,
    episode_spans: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    repo_id: str | None = None,
    robot_type: str | None = None,
    use_videos: bool = True,
    batch_size: int = 64,
    progress: bool | Callable[[int, int], None] | None = None,
    engine: str = "local",
) -> Path:
    """Writes the episodes of ``src`` (all, or ``episodes``, renumbered from 0 in that order of
    the source) as a LeRobot v3.0 dataset at ``dst``; returns ``dst``.

    ``format``, ``fps``, ``task``, ``key_map``, ``split``, ``topics``, ``reference_topic``,
    ``align_tolerance_s`` and ``episode_spans`` open ``src`` as ``roboframes.Dataset`` does
    (``key_map`` defaults to ``"lerobot"`` here: LeRobot's names; LeRobot refuses names with
    ``/``). Every frame needs a task: a source without one needs ``task``. ``progress``: a bar
    on stderr when it is a terminal (``None``), ``True``/``False``, or a callable receiving
    ``(frames done, frames)``. Needs ``lerobot``.

    A local LeRobot v2.1 dataset, converted whole (no ``episodes``) with its videos, is not
    re-encoded: LeRobot's own v2.1-to-v3.0 converter copies its tables and video streams into
    v3.0 files (:func:`convert_v21`); the result is checked to hold the source's episodes and
    frames. Anything else (a selection of episodes, a remote or v2.0 root, another format) is
    decoded by roboframes and re-encoded by LeRobot's writer.

    ``engine="ray"`` runs the writer path as Ray tasks (the connected cluster, or a local Ray
    started for the call): each task writes a run of episodes that share files with LeRobot's
    writer into a shard under ``DST.partial``, the shards are merged in episode order by
    LeRobot's ``aggregate_datasets``, and the statistics are made those of the local run, bit
    for bit: the episodes' statistics of ``index``, ``episode_index`` and ``task_index``
    (a shard numbers its own) computed by LeRobot's ``compute_episode_stats`` over the merged
    values, and ``stats.json`` folded over the episodes in order as LeRobot's writer folds it.
    ``DST`` must be on a file system every Ray node sees. (A whole local v2.1 root is copied,
    not re-encoded, on the caller whatever the engine: that is I/O, not decoding.)
    """
    from .synthetic import quiet_lerobot_writer
    from .tools import _progress
    from .torch.lines import installed_lerobot

    version = installed_lerobot()
    if version is None:
        raise ImportError(
            "roboframes convert writes with LeRobot's own writer: pip install lerobot "
            "(0.4.4 on Python 3.10+, 0.6.x on Python 3.12+)"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive int, got {batch_size!r}")
    from .tools import _check_engine

    _check_engine(engine)
    dst = Path(dst).expanduser()
    ds = Dataset(
        src,
        episodes=episodes,
        format=format,
        fps=fps,
        task=task,
        key_map=key_map,
        split=split,
        topics=topics,
        reference_topic=reference_topic,
        align_tolerance_s=align_tolerance_s,
        episode_spans=episode_spans,
    )
    record = {
        "source": str(ds.root),
        "format": ds.format,
        "episodes": [int(e) for e in ds.episodes],
        "fps": ds.fps,
        "task": task,
        "split": split,
        "topics": None if topics is None else list(topics),
        "reference_topic": reference_topic,
        "align_tolerance_s": align_tolerance_s,
        "episode_spans": None if episode_spans is None else {k: [list(r) for r in v] for k, v in episode_spans.items()},
        "key_map": key_map if not isinstance(key_map, Mapping) else dict(key_map),
        "use_videos": bool(use_videos),
        "lerobot": version,
    }
    # a whole local v2.1 root is copied by LeRobot's converter (no re-encoding); else the writer
    lossless = (
        ds.format == "lerobot"
        and ds.codebase_version == "v2.1"
        and episodes is None
        and use_videos
        and not remote.is_url(ds.root)
    )
    record["method"] = "lerobot-v21-to-v30" if lossless else "lerobot-writer"
    if dst.exists() or dst.is_symlink():
        done = dst / "meta" / RECORD
        if done.is_file() and json.loads(done.read_text()) == record:
            return dst
        raise FileExistsError(
            f"{dst} exists and is not this conversion of {ds.root} (its record, meta/{RECORD}, "
            "differs or is missing); remove it or choose another destination"
        )
    if lossless:
        return _convert_v21(ds, dst, record, progress, robot_type)
    if "task" not in {s.key for s in ds.output_specs()}:
        raise InvalidArgumentError(f"{ds.root} stores no task, and LeRobot's frames each need one: pass task='...'")
    features = lerobot_features(ds, use_videos)
    empty = [e.index for e in ds.episodes() if e.length == 0]
    if empty:
        raise InvalidArgumentError(
            f"episodes {empty} of {ds.root} hold no frames, and LeRobot saves no empty episode: "
            "convert a selection without them (episodes=)"
        )
    if float(ds.fps) != int(ds.fps):
        raise InvalidArgumentError(f"LeRobot stores an integer fps; {ds.root} is at {ds.fps} fps")
    partial = _fresh_partial(dst)
    total = len(ds)
    cb, bar = _progress(progress, "convert")
    create = {
        "repo_id": repo_id or f"roboframes/{dst.name}",
        "fps": int(ds.fps),
        "features": features,
        "robot_type": robot_type,
        "use_videos": any(f["dtype"] == "video" for f in features.values()),
    }
    try:
        if engine == "ray":
            partial.mkdir(parents=True)
            (partial / UNDER_WAY).write_text(json.dumps(record) + "\n")
            merged = _convert_with_ray(ds, partial, create, batch_size, cb)
        else:
            merged = partial
            with quiet_lerobot_writer():
                writer = _create_writer(partial, create)
                (partial / UNDER_WAY).write_text(json.dumps(record) + "\n")
                written = [0]

                def frames_done(n: int) -> None:
                    written[0] += n
                    if cb is not None:
                        cb(written[0], total)

                _write_episodes(ds, writer, features, batch_size, frames_done)
                writer.finalize()
    finally:
        if bar is not None:
            bar.close()
    (merged / "meta" / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    if merged == partial:
        partial.rename(dst)
        (dst / UNDER_WAY).unlink()  # (after the rename: a crash before it leaves a marked partial)
    else:
        merged.rename(dst)  # (out of the marked work folder, then the folder goes)
        shutil.rmtree(partial)
    return dst


def _fresh_partial(dst: Path) -> Path:
    """``DST.partial``, where a conversion into ``dst`` is written: an interrupted conversion's
    leftovers there (a folder holding :data:`UNDER_WAY`) are removed; anything else there is
    refused, never removed."""
    partial = dst.with_name(dst.name + ".partial")
    if partial.exists() or partial.is_symlink():
        if not (partial.is_dir() and not partial.is_symlink() and (partial / UNDER_WAY).is_file()):
            raise FileExistsError(
                f"{partial} exists and is not an interrupted conversion's (it lacks {UNDER_WAY}); "
                "remove it or choose another destination"
            )
        shutil.rmtree(partial)
    return partial


def _create_writer(root: Path, create: dict[str, Any]) -> Any:
    """``LeRobotDataset.create`` at ``root`` (which must not exist); whatever a failed create
    left there is removed (the folder was its own)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    try:
        return LeRobotDataset.create(root=root, **create)
    except BaseException:
        if root.is_dir() and not root.is_symlink():
            shutil.rmtree(root)
        raise


def _write_episodes(
    ds: Dataset, writer: Any, features: dict[str, dict[str, Any]], batch_size: int, frames_done: Callable[[int], None]
) -> None:
    """Every selected episode of ``ds``, in order, through LeRobot's ``add_frame`` /
    ``save_episode`` (``frames_done(n)`` after each batch of ``n`` frames)."""
    for record_ in ds.episodes():
        first, n = record_.first_item, record_.length
        for start in range(first, first + n, batch_size):
            batch = ds.get_batch(list(range(start, min(start + batch_size, first + n))))
            for j in range(len(batch["index"])):
                frame: dict[str, Any] = {"task": batch["task"][j]}
                for key, f in features.items():
                    if f["dtype"] == "string":
                        frame[key] = batch[key][j]
                        continue
                    value = np.asarray(batch[key][j])
                    frame[key] = value.reshape(f["shape"]) if f["dtype"] not in ("video", "image") else value
                writer.add_frame(frame)
            frames_done(len(batch["index"]))
        writer.save_episode()


#: LeRobot's bookkeeping columns whose values a shard numbers on its own (the others,
#: ``frame_index`` and ``timestamp``, are the same in a shard as in the whole).
RENUMBERED = ("index", "episode_index", "task_index")


def _write_shard(
    ds: Dataset, episodes: list[int], root: str, create: dict[str, Any], batch_size: int
) -> list[tuple[Any, list[str]]]:
    """A Ray task: ``episodes`` of ``ds`` written by LeRobot's writer as a dataset at ``root``;
    returns, per episode in order, the statistics LeRobot's writer computed for it and the task
    of each of its frames."""
    from .synthetic import quiet_lerobot_writer

    part = ds.reopen(episodes=episodes)
    captured: list[tuple[Any, list[str]]] = []
    if Path(root).exists():
        shutil.rmtree(root)  # a retried task's first attempt's (inside the marked work folder)
    with quiet_lerobot_writer():
        writer = _create_writer(Path(root), create)
        meta = writer.meta
        save = meta.save_episode
        tasks: list[str] = []

        def save_episode(episode_index: int, length: int, ep_tasks: Any, stats: Any, *a: Any, **k: Any) -> Any:
            captured.append((stats, list(tasks)))
            tasks.clear()
            return save(episode_index, length, ep_tasks, stats, *a, **k)

        meta.save_episode = save_episode
        add = writer.add_frame

        def add_frame(frame: dict[str, Any], *a: Any, **k: Any) -> Any:
            tasks.append(frame["task"])
            return add(frame, *a, **k)

        writer.add_frame = add_frame
        _write_episodes(part, writer, create["features"], batch_size, lambda n: None)
        writer.finalize()
    if len(captured) != len(episodes):
        raise RuntimeError(
            f"LeRobot's writer saved {len(captured)} episodes of {len(episodes)} into {root}: the "
            "installed LeRobot saves episodes otherwise than roboframes expects"
        )
    return captured


def _lerobot_io() -> tuple[Any, Any, Any]:
    """LeRobot's ``aggregate_datasets``, ``compute_episode_stats`` / ``aggregate_stats`` and
    ``write_stats`` (in ``datasets.utils`` in 0.4.x, ``datasets.io_utils`` in 0.6.x)."""
    from lerobot.datasets import compute_stats
    from lerobot.datasets.aggregate import aggregate_datasets

    try:
        from lerobot.datasets.io_utils import write_stats  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        from lerobot.datasets.utils import write_stats  # type: ignore[attr-defined,no-redef,unused-ignore]
    return aggregate_datasets, compute_stats, write_stats


def _convert_with_ray(
    ds: Dataset, work: Path, create: dict[str, Any], batch_size: int, cb: Callable[[int, int], None] | None
) -> Path:
    """The writer path as Ray tasks (see :func:`convert`): shards under ``work/shards``, merged
    into ``work/merged`` (returned) with the local run's statistics."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from . import ray as rray

    aggregate_datasets, compute_stats, write_stats = _lerobot_io()
    groups = rray._episode_groups(ds)  # noqa: SLF001
    shards = [work / "shards" / f"shard-{k:05d}" for k in range(len(groups))]
    (work / "shards").mkdir()
    total = len(ds)

    def progress(done: int, n: int) -> None:
        # (tasks of about equal item counts: frames in proportion to the tasks finished)
        if cb is not None:
            cb(total * done // n, total)

    results = rray._run(  # noqa: SLF001
        _write_shard, [(ds, g, str(root), create, batch_size) for g, root in zip(groups, shards, strict=True)], progress
    )
    merged = work / "merged"
    repo_id = create["repo_id"]
    from .synthetic import quiet_lerobot_writer

    with quiet_lerobot_writer():
        aggregate_datasets(
            repo_ids=[f"{repo_id}-shard-{k}" for k in range(len(shards))],
            aggr_repo_id=repo_id,
            roots=shards,
            aggr_root=merged,
        )
    # the episodes' statistics and stats.json as the local run makes them
    tasks_table = pq.read_table(merged / "meta" / "tasks.parquet").to_pandas()
    task_index = {str(t): int(i) for t, i in zip(tasks_table.index, tasks_table["task_index"], strict=True)}
    per_episode = [ep for shard in results for ep in shard]
    features = create["features"] | _bookkeeping_features(merged)
    files = sorted((merged / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    tables = [pq.read_table(f) for f in files]
    rows = [(t, r) for t in range(len(tables)) for r in range(tables[t].num_rows)]
    if len(rows) != len(per_episode):
        raise RuntimeError(f"merging the shards gave {len(rows)} episodes, the tasks wrote {len(per_episode)}")
    stats_of: list[Any] = []
    fixed: dict[tuple[int, str], list[Any]] = {}
    for (t, r), (ep_stats, frame_tasks) in zip(rows, per_episode, strict=True):
        row = {c: tables[t].column(c)[r].as_py() for c in ("episode_index", "dataset_from_index", "length")}
        ep, start, n = row["episode_index"], row["dataset_from_index"], row["length"]
        if ep != len(stats_of) or len(frame_tasks) != n:
            raise RuntimeError(
                f"merging the shards put episode {ep} ({n} frames) at position {len(stats_of)}, where the "
                f"shards wrote an episode of {len(frame_tasks)} frames"
            )
        buffer = {
            "index": np.arange(start, start + n),
            "episode_index": np.full((n,), ep),
            "task_index": np.array([task_index[x] for x in frame_tasks]),
        }
        renumbered = compute_stats.compute_episode_stats(
            {k: buffer[k] for k in RENUMBERED}, {k: features[k] for k in RENUMBERED}
        )
        ep_stats = {**ep_stats, **renumbered}
        stats_of.append(ep_stats)
        for key in RENUMBERED:
            for name, value in ep_stats[key].items():
                fixed.setdefault((t, f"stats/{key}/{name}"), []).append(np.asarray(value).tolist())
    for t, (path, table) in enumerate(zip(files, tables, strict=True)):
        for (tt, column), values in fixed.items():
            if tt != t or column not in table.column_names:
                continue
            i = table.schema.get_field_index(column)
            table = table.set_column(i, column, pa.array(values, type=table.schema.field(column).type))
        pq.write_table(table, path)
    stats = None
    for ep_stats in stats_of:
        stats = ep_stats if stats is None else compute_stats.aggregate_stats([stats, ep_stats])
    if stats is not None:
        write_stats(stats, merged)
    return merged


def _bookkeeping_features(root: Path) -> dict[str, dict[str, Any]]:
    """The features of LeRobot's bookkeeping columns, as its writer declared them at ``root``."""
    info = json.loads((root / "meta" / "info.json").read_text())
    return {k: v for k, v in info["features"].items() if k in BOOKKEEPING}


def _v21_converter() -> Any:
    """LeRobot's v2.1-to-v3.0 converter module: ``lerobot.datasets.v30`` in 0.4.x,
    ``lerobot.scripts`` in 0.6.x."""
    import importlib

    names = ("lerobot.datasets.v30.convert_dataset_v21_to_v30", "lerobot.scripts.convert_dataset_v21_to_v30")
    for name in names:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is None or not name.startswith(e.name):
                raise ImportError(
                    f"LeRobot's v2.1-to-v3.0 converter needs '{e.name}': pip install 'lerobot[dataset]'"
                ) from e
    raise ImportError("the installed LeRobot has no v2.1-to-v3.0 converter (LeRobot 0.4 and 0.6 have one)")


def _convert_v21(
    ds: Dataset,
    dst: Path,
    record: dict[str, Any],
    progress: bool | Callable[[int, int], None] | None,
    robot_type: str | None,
) -> Path:
    """Converts the local v2.1 root of ``ds`` into ``dst`` with LeRobot's own converter's steps
    (info, tasks, data files, video files concatenated without re-encoding, episode metadata
    with the episodes' statistics), written into ``DST.partial`` and renamed when the result
    holds the source's episodes and frames. ``robot_type``, when given, replaces the source's
    in ``info.json`` (a v3.0 ``info.json`` holds no ``repo_id``).

    The root is validated first (its tables, not its frames): LeRobot's converter copies the
    stored values, so a root whose tables disagree with its metadata, whose ``index`` is not
    where its rows lie, or whose episodes lack statistics would give a v3.0 dataset that
    cannot be read right; such a root is refused, naming what is wrong."""
    from .synthetic import quiet_lerobot_writer
    from .tools import _progress, validate

    report = validate(ds.root, decode="none", progress=False)
    blocking = [
        f
        for f in report.findings
        if f.severity == "error" or f.check in ("index", "episode_index", "episodes_stats", "data_file")
    ]
    if blocking:
        listed = "; ".join(str(f) for f in blocking[:5])
        more = f" (and {len(blocking) - 5} more)" if len(blocking) > 5 else ""
        raise MetadataError(
            f"{ds.root} cannot be copied into v3.0 as it is (LeRobot's converter copies the stored "
            f"values): {listed}{more}. `roboframes validate` lists every problem; converting a "
            "selection (episodes=[...], every episode for all of them) decodes and re-encodes "
            "through LeRobot's writer instead, which renumbers the rows",
            path=str(ds.root),
        )
    conv = _v21_converter()
    partial = _fresh_partial(dst)
    src = Path(ds.root)
    total = len(ds)
    cb, bar = _progress(progress, "convert")
    try:
        partial.mkdir(parents=True)
        (partial / UNDER_WAY).write_text(json.dumps(record) + "\n")
        data_mb = int(conv.DEFAULT_DATA_FILE_SIZE_IN_MB)
        video_mb = int(conv.DEFAULT_VIDEO_FILE_SIZE_IN_MB)
        with quiet_lerobot_writer():
            conv.convert_info(src, partial, data_mb, video_mb)
            conv.convert_tasks(src, partial)
            episodes_meta = conv.convert_data(src, partial, data_mb)
            if cb is not None:
                cb(total // 2, total)
            videos_meta = conv.convert_videos(src, partial, video_mb)
            conv.convert_episodes_metadata(src, partial, episodes_meta, videos_meta)
        if robot_type is not None:
            info_path = partial / "meta" / "info.json"
            info = json.loads(info_path.read_text())
            info["robot_type"] = robot_type
            info_path.write_text(json.dumps(info, indent=4))
        if cb is not None:
            cb(total, total)
    finally:
        if bar is not None:
            bar.close()
    # the result against the source: the same episodes, each as long
    out = Dataset(partial)
    want = [(e.index, e.length) for e in ds.episodes()]
    got = [(e.index, e.length) for e in out.episodes()]
    if got != want or len(out) != total:
        raise MetadataError(
            f"converting {src}: LeRobot's converter wrote {len(got)} episodes of {len(out)} frames into "
            f"{partial}, the source holds {len(want)} of {total}; {partial} is left as it is (the next "
            "conversion into DST removes it)"
        )
    (partial / "meta" / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    partial.rename(dst)
    (dst / UNDER_WAY).unlink()
    return dst
