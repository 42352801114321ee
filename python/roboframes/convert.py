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
        return _convert_v21(ds, dst, record, progress)
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
    partial = dst.with_name(dst.name + ".partial")
    if partial.exists() or partial.is_symlink():
        if not (partial.is_dir() and not partial.is_symlink() and (partial / UNDER_WAY).is_file()):
            raise FileExistsError(
                f"{partial} exists and is not an interrupted conversion's (it lacks {UNDER_WAY}); "
                "remove it or choose another destination"
            )
        shutil.rmtree(partial)  # an interrupted conversion's leftovers
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    total = len(ds)
    cb, bar = _progress(progress, "convert")
    done_frames = 0
    try:
        with quiet_lerobot_writer():
            try:
                writer = LeRobotDataset.create(
                    repo_id=repo_id or f"roboframes/{dst.name}",
                    fps=int(ds.fps),
                    features=features,
                    root=partial,
                    robot_type=robot_type,
                    use_videos=any(f["dtype"] == "video" for f in features.values()),
                )
            except BaseException:
                # (the folder did not exist before: whatever create left there is its own)
                if partial.is_dir() and not partial.is_symlink():
                    shutil.rmtree(partial)
                raise
            (partial / UNDER_WAY).write_text(json.dumps(record) + "\n")
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
                    done_frames += len(batch["index"])
                    if cb is not None:
                        cb(done_frames, total)
                writer.save_episode()
            writer.finalize()
    finally:
        if bar is not None:
            bar.close()
    (partial / "meta" / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    partial.rename(dst)
    (dst / UNDER_WAY).unlink()  # (after the rename: a crash before it leaves a marked partial)
    return dst


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
    ds: Dataset, dst: Path, record: dict[str, Any], progress: bool | Callable[[int, int], None] | None
) -> Path:
    """Converts the local v2.1 root of ``ds`` into ``dst`` with LeRobot's own converter's steps
    (info, tasks, data files, video files concatenated without re-encoding, episode metadata
    with the episodes' statistics), written into ``DST.partial`` and renamed when the result
    holds the source's episodes and frames."""
    from .synthetic import quiet_lerobot_writer
    from .tools import _progress

    conv = _v21_converter()
    partial = dst.with_name(dst.name + ".partial")
    if partial.exists() or partial.is_symlink():
        if not (partial.is_dir() and not partial.is_symlink() and (partial / UNDER_WAY).is_file()):
            raise FileExistsError(
                f"{partial} exists and is not an interrupted conversion's (it lacks {UNDER_WAY}); "
                "remove it or choose another destination"
            )
        shutil.rmtree(partial)
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
            f"{partial}, the source holds {len(want)} of {total}; {partial} is kept for inspection"
        )
    (partial / "meta" / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    partial.rename(dst)
    (dst / UNDER_WAY).unlink()
    return dst
