"""``roboframes.torch.LeRobotDataset`` against LeRobot 0.4.4's ``LeRobotDataset``: items,
DataLoader batches (workers 0 and 2, after use in the main process), metadata, errors,
options, pickling, the sampler and ``patch_lerobot``."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
lerobot_dataset = pytest.importorskip("lerobot.datasets.lerobot_dataset")

import roboframes  # noqa: E402
import roboframes.torch as rt  # noqa: E402
from test_compat import WINDOWS, usable_windows  # noqa: E402

LeRobot = lerobot_dataset.LeRobotDataset


def assert_same(ref: Any, ours: Any, where: str) -> None:
    """Same keys in the same order, same types, dtypes, shapes and values."""
    if isinstance(ref, dict):
        assert list(ref) == list(ours), f"{where}: {list(ref)} vs {list(ours)}"
        for k in ref:
            assert_same(ref[k], ours[k], f"{where}.{k}")
    elif isinstance(ref, torch.Tensor):
        assert isinstance(ours, torch.Tensor), f"{where}: {type(ours)}"
        assert (ref.dtype, tuple(ref.shape)) == (ours.dtype, tuple(ours.shape)), (
            f"{where}: {ref.dtype}{tuple(ref.shape)} vs {ours.dtype}{tuple(ours.shape)}"
        )
        assert torch.equal(ref, ours), where
    elif isinstance(ref, (list, tuple)):
        assert len(ref) == len(ours), where
        for i, (a, b) in enumerate(zip(ref, ours, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert ref == ours and type(ref) is type(ours), f"{where}: {ref!r} vs {ours!r}"


@pytest.mark.parametrize("name", ["av1", "av1_multifile", "h264", "grid"])
def test_items_match_lerobot(dataset_dir, name: str) -> None:
    root = dataset_dir(name)
    for wname, dt in usable_windows(root):
        ref = LeRobot(f"roboframes/{name}", root=root, delta_timestamps=dt)
        ours = rt.LeRobotDataset(f"roboframes/{name}", root=root, delta_timestamps=dt)
        assert len(ours) == len(ref) and ours.num_frames == ref.num_frames
        assert ours.num_episodes == ref.num_episodes
        assert ours.delta_indices == ref.delta_indices
        for i in range(len(ref)):
            assert_same(ref[i], ours[i], f"{name}/{wname}[{i}]")
        # negative indices, like LeRobot's
        assert_same(ref[len(ref) - 1], ours[-1], f"{name}/{wname}[-1]")


@pytest.mark.parametrize(("name", "episodes"), [("av1", [3, 1]), ("av1_multifile", [4, 0, 2]), ("h264", [2])])
def test_episode_subsets_match_lerobot(dataset_dir, name: str, episodes: list[int]) -> None:
    root = dataset_dir(name)
    for _wname, dt in usable_windows(root):
        ref = LeRobot(f"roboframes/{name}", root=root, episodes=episodes, delta_timestamps=dt)
        ours = rt.LeRobotDataset(f"roboframes/{name}", root=root, episodes=episodes, delta_timestamps=dt)
        assert (len(ours), ours.num_episodes, ours.episodes) == (len(ref), ref.num_episodes, ref.episodes)
        for i in range(len(ref)):
            assert_same(ref[i], ours[i], f"{name}/subset{episodes}[{i}]")


def test_hevc_frames_equal_the_numpy_reader(dataset_dir) -> None:
    """LeRobot 0.4.4 fails on B-frames of its own HEVC output; our frames there are the NumPy
    reader's, which test_compat checks against a full sequential decode."""
    root = dataset_dir("hevc")
    dt = WINDOWS["act"](10)
    ours = rt.LeRobotDataset("roboframes/hevc", root=root, delta_timestamps=dt)
    ref = roboframes.Dataset(root, delta_timestamps=dt)
    for i in range(len(ours)):
        item, r = ours[i], ref[i]
        for k in ours.meta.video_keys:
            want = torch.from_numpy(r[k]).float().div(255).movedim(-1, -3)
            assert torch.equal(item[k], want.squeeze(0) if k not in dt else want), (i, k)


def lerobot_batches(ds: Any, batch_size: int, order: list[int]) -> list[dict]:
    """LeRobot's items collated the DataLoader way, in the main process (its safe mode)."""
    from torch.utils.data import default_collate

    return [default_collate([ds[i] for i in order[s : s + batch_size]]) for s in range(0, len(order), batch_size)]


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize(("name", "episodes", "window"), [("av1", None, "wide"), ("av1_multifile", [4, 0, 2], "act")])
def test_dataloader_batches_match_lerobot(dataset_dir, name, episodes, window, num_workers) -> None:
    root = dataset_dir(name)
    dt = dict(usable_windows(root))[window]
    ref = LeRobot(f"roboframes/{name}", root=root, episodes=episodes, delta_timestamps=dt)
    ours = rt.LeRobotDataset(f"roboframes/{name}", root=root, episodes=episodes, delta_timestamps=dt)
    # use it in the main process first: decoders and threads exist before the workers fork
    assert_same(ref[len(ref) // 2], ours[len(ours) // 2], "main process")
    order = torch.randperm(len(ours), generator=torch.Generator().manual_seed(0)).tolist()
    sampler = order  # a list of indices is a valid sampler
    for _epoch in range(2):  # a second epoch reuses the workers' state
        dl = torch.utils.data.DataLoader(ours, batch_size=4, sampler=sampler, num_workers=num_workers)
        got = list(dl)
        want = lerobot_batches(ref, 4, order)
        assert len(got) == len(want)
        for b, (w, g) in enumerate(zip(want, got, strict=True)):
            assert_same(w, g, f"{name} batch {b} (workers={num_workers})")


def test_spawned_workers_and_pickling(dataset_dir) -> None:
    root = dataset_dir("av1")
    dt = WINDOWS["act"](10)
    ours = rt.LeRobotDataset("roboframes/av1", root=root, delta_timestamps=dt, frame_dtype=torch.uint8)
    clone = pickle.loads(pickle.dumps(ours))
    assert clone.handle != ours.handle  # reopened: a dataset of its own
    assert_same(ours[5], clone[5], "pickled")
    dl = torch.utils.data.DataLoader(ours, batch_size=6, num_workers=2, multiprocessing_context="spawn")
    got = torch.cat([b["observation.images.top"] for b in dl])
    want = torch.stack([ours[i]["observation.images.top"] for i in range(len(ours))])
    assert torch.equal(got, want)


def test_frame_options(dataset_dir) -> None:
    root = dataset_dir("av1")
    dt = WINDOWS["wide"](10)
    base = rt.LeRobotDataset("roboframes/av1", root=root, delta_timestamps=dt)
    cams = base.meta.camera_keys
    for dtype in (torch.uint8, torch.float16, torch.bfloat16, torch.float32):
        for cl in (False, True):
            opt = rt.LeRobotDataset(
                "roboframes/av1", root=root, delta_timestamps=dt, frame_dtype=dtype, channels_last=cl
            )
            for i in (0, 7, len(base) - 1):
                a, b = base[i], opt[i]
                assert list(a) == list(b)
                for k in a:
                    if k not in cams:
                        assert_same(a[k], b[k], k)
                        continue
                    ref = a[k].movedim(-3, -1) if cl else a[k]
                    if dtype == torch.uint8:
                        ref = (ref * 255).round().to(torch.uint8)
                    else:
                        ref = ref.to(dtype)
                    assert_same(ref, b[k], f"{k} {dtype} channels_last={cl}")
    with pytest.raises(ValueError):
        rt.LeRobotDataset("roboframes/av1", root=root, frame_dtype=torch.int32)


def test_image_transforms_like_lerobot(dataset_dir) -> None:
    root = dataset_dir("av1")
    dt = WINDOWS["act"](10)

    def transform(x: torch.Tensor) -> torch.Tensor:
        return x.flip(-1) * 0.5 + 0.25

    ref = LeRobot("roboframes/av1", root=root, delta_timestamps=dt, image_transforms=transform)
    ours = rt.LeRobotDataset("roboframes/av1", root=root, delta_timestamps=dt, image_transforms=transform)
    for i in range(len(ref)):
        assert_same(ref[i], ours[i], f"transformed[{i}]")


def test_metadata_matches_lerobot(dataset_dir) -> None:
    root = dataset_dir("av1_multifile")
    ref = lerobot_dataset.LeRobotDatasetMetadata("roboframes/av1_multifile", root=root)
    ours = rt.LeRobotDatasetMetadata("roboframes/av1_multifile", root=root)
    assert ours.info == ref.info
    for attr in (
        "fps",
        "features",
        "robot_type",
        "camera_keys",
        "video_keys",
        "image_keys",
        "names",
        "shapes",
        "total_episodes",
        "total_frames",
        "total_tasks",
        "data_path",
        "video_path",
        "chunks_size",
        "data_files_size_in_mb",
        "video_files_size_in_mb",
        "revision",
        "url_root",
        "_version",
    ):
        assert getattr(ours, attr) == getattr(ref, attr), attr
    assert ref.stats.keys() == ours.stats.keys()
    for feat, st in ref.stats.items():
        assert st.keys() == ours.stats[feat].keys()
        for name, v in st.items():
            assert isinstance(ours.stats[feat][name], np.ndarray)
            np.testing.assert_array_equal(ours.stats[feat][name], v, err_msg=f"{feat}/{name}")
    pd.testing.assert_frame_equal(ours.tasks, ref.tasks)
    assert ours.subtasks is None and ref.subtasks is None
    assert len(ours.episodes) == len(ref.episodes)
    assert ours.episodes.column_names == ref.episodes.column_names
    for i in range(len(ref.episodes)):
        assert ours.episodes[i] == ref.episodes[i], i
    for col in ("dataset_from_index", "dataset_to_index", "videos/observation.images.top/from_timestamp"):
        assert list(ours.episodes[col]) == list(ref.episodes[col])
    pd.testing.assert_frame_equal(ours.episodes.to_pandas(), ref.episodes.to_pandas())
    for ep in range(ref.total_episodes):
        assert ours.get_data_file_path(ep) == ref.get_data_file_path(ep)
        for k in ref.video_keys:
            assert ours.get_video_file_path(ep, k) == ref.get_video_file_path(ep, k)
    assert ours.get_task_index("pick the cube") == ref.get_task_index("pick the cube") == 0
    assert ours.get_task_index("fly") is None
    # training code overwrites camera stats in place (make_dataset's use_imagenet_stats)
    ours.stats["observation.images.top"]["mean"] = torch.zeros(3, 1, 1)
    assert torch.equal(ours.stats["observation.images.top"]["mean"], torch.zeros(3, 1, 1))


def test_dataset_attributes(dataset_dir) -> None:
    root = dataset_dir("av1")
    dt = WINDOWS["act"](10)
    ref = LeRobot("roboframes/av1", root=root, episodes=[1, 3], delta_timestamps=dt, tolerance_s=1e-3)
    ours = rt.LeRobotDataset("roboframes/av1", root=root, episodes=[1, 3], delta_timestamps=dt, tolerance_s=1e-3)
    for attr in (
        "repo_id",
        "root",
        "episodes",
        "delta_timestamps",
        "delta_indices",
        "tolerance_s",
        "fps",
        "num_frames",
        "num_episodes",
        "features",
        "image_transforms",
        "revision",
    ):
        assert getattr(ours, attr) == getattr(ref, attr), attr
    assert len(ours) == len(ref)
    assert "Number of selected samples" in repr(ours)


def test_errors_like_lerobot(dataset_dir, tmp_path: Path) -> None:
    root = dataset_dir("av1")
    bad = {"action": [0.0, 0.013]}
    with pytest.raises(ValueError):
        LeRobot("roboframes/av1", root=root, delta_timestamps=bad)
    with pytest.raises(ValueError) as e:
        rt.LeRobotDataset("roboframes/av1", root=root, delta_timestamps=bad)
    assert "action" in str(e.value)
    # frames shifted off the 1/fps grid: both raise a ValueError subclass (FrameTimestampError)
    shifted = tmp_path / "shifted"
    shutil.copytree(root, shifted)
    import pyarrow as pa
    import pyarrow.parquet as pq

    for p in (shifted / "data").rglob("*.parquet"):
        t = pq.read_table(p)
        i = t.schema.get_field_index("timestamp")
        shifted_ts = pa.array(t["timestamp"].to_numpy() + np.float32(0.03), type=pa.float32())
        t = t.set_column(i, t.schema.field(i), shifted_ts)
        pq.write_table(t, p)
    from lerobot.datasets.video_utils import FrameTimestampError as LeRobotFTE

    with pytest.raises(LeRobotFTE):
        LeRobot("roboframes/av1", root=shifted)[0]
    with pytest.raises(roboframes.FrameTimestampError) as e2:
        rt.LeRobotDataset("roboframes/av1", root=shifted)[0]
    assert isinstance(e2.value, ValueError) and e2.value.key is not None and e2.value.episode == 0
    # a looser tolerance accepts them, as in LeRobot
    assert rt.LeRobotDataset("roboframes/av1", root=shifted, tolerance_s=0.04)[0]["index"] == 0
    with pytest.raises(FileNotFoundError) as e3:
        rt.LeRobotDataset("roboframes/missing", root=tmp_path / "nowhere")
    assert "nowhere" in str(e3.value)
    with pytest.raises(IndexError):
        rt.LeRobotDataset("roboframes/av1", root=root)[10_000]


def test_default_root_is_hf_lerobot_home(dataset_dir, tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    (home / "someone").mkdir(parents=True)
    shutil.copytree(dataset_dir("av1"), home / "someone" / "data")
    monkeypatch.setenv("HF_LEROBOT_HOME", str(home))
    ds = rt.LeRobotDataset("someone/data")
    assert ds.root == home / "someone" / "data" and len(ds) == 18


def test_episode_aware_sampler(dataset_dir) -> None:
    from lerobot.datasets.sampler import EpisodeAwareSampler as LeRobotSampler

    root = dataset_dir("av1_multifile")
    meta = rt.LeRobotDatasetMetadata("roboframes/av1_multifile", root=root)
    frm, to = meta.episodes["dataset_from_index"], meta.episodes["dataset_to_index"]
    # all episodes: exactly LeRobot's indices
    assert list(rt.EpisodeAwareSampler(frm, to, drop_n_last_frames=1)) == list(
        LeRobotSampler(frm, to, drop_n_last_frames=1)
    )
    # a subset: indices into the subset dataset, every item of the kept frames once
    episodes = [4, 2]
    ds = rt.LeRobotDataset("roboframes/av1_multifile", root=root, episodes=episodes)
    s = rt.EpisodeAwareSampler(frm, to, episode_indices_to_use=ds.episodes, drop_n_first_frames=1, shuffle=True)
    idx = sorted(s)
    assert all(0 <= i < len(ds) for i in idx) and len(set(idx)) == len(idx)
    got = [(int(ds[i]["episode_index"]), int(ds[i]["frame_index"])) for i in idx]
    lengths = dict(zip(range(len(frm)), (t - f for f, t in zip(frm, to, strict=True)), strict=True))
    want = [(e, f) for e in sorted(episodes) for f in range(1, lengths[e])]
    assert got == want


def test_patch_lerobot(dataset_dir) -> None:
    import importlib

    from lerobot.datasets import factory, sampler

    originals = (factory.LeRobotDataset, factory.LeRobotDatasetMetadata, sampler.EpisodeAwareSampler)
    with rt.patch_lerobot() as patch:
        assert factory.LeRobotDataset is rt.LeRobotDataset
        assert factory.LeRobotDatasetMetadata is rt.LeRobotDatasetMetadata
        assert sampler.EpisodeAwareSampler is rt.EpisodeAwareSampler
        assert lerobot_dataset.LeRobotDataset is LeRobot  # recording stays LeRobot's
        assert isinstance(patch, rt.LeRobotPatch)
        # a module imported while patched binds the replacement ...
        train_module = importlib.import_module("lerobot.scripts.lerobot_train")
        assert train_module.EpisodeAwareSampler is rt.EpisodeAwareSampler
    assert (factory.LeRobotDataset, factory.LeRobotDatasetMetadata, sampler.EpisodeAwareSampler) == originals
    # ... and gets the original back
    assert train_module.EpisodeAwareSampler is originals[2]


def test_stats_with_nan_like_lerobot(dataset_dir, tmp_path: Path) -> None:
    root = tmp_path / "nan"
    shutil.copytree(dataset_dir("av1"), root)
    p = root / "meta" / "stats.json"
    stats = json.loads(p.read_text())
    stats["observation.state"]["std"] = [float("nan")] * 6
    p.write_text(json.dumps(stats))
    ref = lerobot_dataset.LeRobotDatasetMetadata("roboframes/nan", root=root)
    ours = rt.LeRobotDatasetMetadata("roboframes/nan", root=root)
    for feat, st in ref.stats.items():
        for name, v in st.items():
            np.testing.assert_array_equal(ours.stats[feat][name], v)  # NaN == NaN here
    assert np.isnan(ours.stats["observation.state"]["std"]).all()


def test_tasks_by_value_where_lerobot_uses_the_row_position(dataset_dir, tmp_path: Path) -> None:
    """meta/tasks.parquet rows out of task_index order: the drop-in names an item's task by its
    task_index value, as the NumPy reader does (what the format means); LeRobot 0.4.4 takes the
    row at that position (``tasks.iloc[task_index]``) and names another task (README)."""
    root = tmp_path / "tasks"
    shutil.copytree(dataset_dir("av1"), root)
    p = root / "meta" / "tasks.parquet"
    tasks = pd.read_parquet(p)
    assert len(tasks) >= 2
    tasks.iloc[::-1].to_parquet(p)
    ref = LeRobot("roboframes/tasks", root=root)
    ours = rt.LeRobotDataset("roboframes/tasks", root=root)
    got = [ours[i]["task"] for i in range(len(ref))]
    assert got == [ours.reader[i]["task"] for i in range(len(ref))]
    assert got != [ref[i]["task"] for i in range(len(ref))]  # the reordering mattered to LeRobot


def test_windowed_string_feature_gives_each_item_its_window(dataset_dir) -> None:
    """A string feature with deltas: each item holds its own ``T`` strings (as the NumPy
    reader's items do), whether read alone or in a batch, and a DataLoader collates them."""
    root = dataset_dir("grid")
    dt = {"language.note": [-0.2, -0.1, 0.0]}
    ours = rt.LeRobotDataset("roboframes/grid", root=root, delta_timestamps=dt)
    reader = roboframes.Dataset(root, delta_timestamps=dt)
    idx = [5, 0, 3, 6]
    batch = ours.__getitems__(idx)
    for i, item in zip(idx, batch, strict=True):
        want = reader[i]["language.note"]
        assert isinstance(want, list) and len(want) == 3
        assert item["language.note"] == want == ours[i]["language.note"], i
    loader = torch.utils.data.DataLoader(ours, batch_size=4, sampler=idx)
    (collated,) = list(loader)
    # default_collate transposes a list of T strings per item into T lists of B strings
    got = [list(step) for step in collated["language.note"]]
    assert got == [[reader[i]["language.note"][t] for i in idx] for t in range(3)]


def test_default_collate_takes_the_decoded_batch_without_copying(dataset_dir) -> None:
    from torch.utils.data import default_collate

    root = dataset_dir("grid")  # has a string feature
    dt = {"observation.images.top": [-0.1, 0.0], "action": [0.0, 0.1]}
    ds = rt.LeRobotDataset("roboframes/grid", root=root, delta_timestamps=dt)
    idx = [5, 0, 3]
    fast = default_collate(ds.__getitems__(idx))
    slow = default_collate([dict(x) for x in ds.__getitems__(idx)])  # plain dicts: stacked
    assert_same(slow, fast, "collated")
    items = ds.__getitems__(idx)
    batch = default_collate(items)
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):  # the operator's tensors themselves: no copy
            assert v.data_ptr() == items[0][k].data_ptr(), k
    # a changed item, or items from two batches, are collated the ordinary way
    changed = ds.__getitems__(idx)
    changed[1]["action"] = changed[1]["action"] * 2
    got = default_collate(changed)
    assert torch.equal(got["action"][1], slow["action"][1] * 2)
    assert got["action"].data_ptr() != changed[0]["action"].data_ptr()
    mixed = ds.__getitems__([5]) + ds.__getitems__([0, 3])
    assert_same(slow, default_collate(mixed), "mixed")
    reordered = ds.__getitems__(idx)
    reordered[0], reordered[1] = reordered[1], reordered[0]
    assert torch.equal(default_collate(reordered)["index"], slow["index"][[1, 0, 2]])
    # items and their batch form no reference cycle: dropping them frees the frames at once
    import gc
    import weakref

    gc.disable()
    try:
        items = ds.__getitems__(idx)
        collated = default_collate(items)
        probe = weakref.ref(items[0]["observation.images.top"])
        frames = weakref.ref(collated["observation.images.top"])
        del items, collated
        assert probe() is None and frames() is None
    finally:
        gc.enable()


def test_workers_split_the_cores(dataset_dir) -> None:
    import os

    class Probe(rt.LeRobotDataset):
        def __getitems__(self, indices):
            items = super().__getitems__(indices)
            return [dict(it, threads=torch.tensor(self.reader.decode_threads)) for it in items]

    ds = Probe("roboframes/av1", root=dataset_dir("av1"))
    cores = len(os.sched_getaffinity(0))
    for workers in (1, 2):
        dl = torch.utils.data.DataLoader(ds, batch_size=6, num_workers=workers)
        seen = {int(t) for b in dl for t in b["threads"]}
        assert seen == {max(1, cores // workers)}, (workers, seen)
    assert ds.reader.decode_threads == cores  # the main process keeps its own
