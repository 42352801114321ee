"""LeRobot v2.1 datasets (one parquet and one mp4 per episode, ``meta/*.jsonl``) read in place.

The fixtures are written by LeRobot 0.3.3's own writer, and the reference items are LeRobot
0.3.3's ``LeRobotDataset``'s, both in the environment ``scripts/test.sh`` makes for it
(``.venv-lerobot03``, run through ``tests/lerobot03_fixture.py``; ``ROBOFRAMES_LEROBOT03_PYTHON``
names its Python). Every surface reads them: ``roboframes.Dataset``, the drop-in, the loader,
Ray Data, validation and ``roboframes convert`` (v2.1 to v3.0, read by LeRobot's v3.0 reader).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import roboframes
from conftest import run_lerobot03
from roboframes import tools

CAMERAS = ("observation.images.top", "observation.images.wrist", "observation.images.still")
FPS = 10

WINDOWS: dict[str, dict[str, list[float]] | None] = {
    "none": None,
    "act": {
        "observation.images.top": [-1 / FPS, 0.0],
        "observation.state": [-1 / FPS, 0.0],
        "action": [i / FPS for i in range(4)],
    },
    "wide": {
        "observation.images.wrist": [0.2],
        "observation.images.still": [-2 / FPS, 0.0, 1 / FPS],
        "next.reward": [-3 / FPS, 0.0, 3 / FPS],
        "index": [-1 / FPS, 1 / FPS],
    },
}


def reference(
    root: Path, tmp: Path, delta: dict[str, list[float]] | None = None, episodes: list[int] | None = None
) -> dict[str, Any]:
    """LeRobot 0.3.3's items (every one), statistics and length on ``root``."""
    out = tmp / f"ref-{os.getpid()}-{len(list(tmp.glob('ref-*')))}.pkl"
    args = ["items", str(root), str(out)]
    if delta is not None:
        args += ["--delta", json.dumps(delta)]
    if episodes is not None:
        args += ["--episodes", ",".join(map(str, episodes))]
    run_lerobot03(*args)
    with open(out, "rb") as f:
        loaded: dict[str, Any] = pickle.load(f)
    return loaded


@pytest.fixture(scope="module")
def v21(v21_dir: Path) -> Path:
    return v21_dir


@pytest.fixture(scope="module")
def refs(v21: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("refs")
    return {name: reference(v21, tmp, delta) for name, delta in WINDOWS.items()}


def as_uint8_hwc(v: np.ndarray) -> np.ndarray:
    """LeRobot's float CHW frames back to uint8 HWC (exact: they are uint8/255)."""
    u = np.round(v * 255).astype(np.uint8)
    return np.moveaxis(u, -3, -1)


def assert_item_equal(ref: dict[str, Any], ours: dict[str, Any], where: str, torch_frames: bool = False) -> None:
    """Keys in LeRobot's order, dtypes, shapes and values; frames byte for byte (``ours`` from
    ``roboframes.Dataset``: uint8 HWC; from the drop-in: LeRobot's float CHW tensors)."""
    assert list(ref) == list(ours), where
    for k, a in ref.items():
        b = ours[k]
        if isinstance(a, str):
            assert a == b, f"{where} {k}"
            continue
        if hasattr(b, "numpy"):
            b = b.numpy()
        if k in CAMERAS and not torch_frames:
            a = as_uint8_hwc(a)
            if a.ndim == 3 and b.ndim == 4 and b.shape[0] == 1:
                b = b[0]  # LeRobot squeezes a single-delta camera window
        assert a.dtype == b.dtype, f"{where} {k}: {a.dtype} vs {b.dtype}"
        assert a.shape == b.shape, f"{where} {k}: {a.shape} vs {b.shape}"
        np.testing.assert_array_equal(a, b, err_msg=f"{where} {k}")


@pytest.mark.parametrize("window", list(WINDOWS))
def test_items_equal_lerobot03(v21: Path, refs, window: str) -> None:
    ref = refs[window]
    ds = roboframes.Dataset(v21, delta_timestamps=WINDOWS[window])
    assert ds.codebase_version == "v2.1"
    assert len(ds) == ref["len"] == 18
    assert ds.num_episodes == ref["num_episodes"] == 4
    for i in range(len(ds)):
        assert_item_equal(ref["items"][i], ds[i], f"{window}[{i}]")
    batch = ds.get_batch([17, 0, 6])
    for j, i in enumerate([17, 0, 6]):
        np.testing.assert_array_equal(batch["observation.images.top"][j], ds[i]["observation.images.top"])


def test_statistics_are_lerobot03s_aggregation(v21: Path, refs) -> None:
    """``meta/episodes_stats.jsonl`` aggregated as LeRobot 0.3.3 does at load, bit for bit."""
    want = refs["none"]["stats"]
    got = roboframes.Dataset(v21).read_stats()
    assert got is not None and set(got) == set(want)
    for key, st in want.items():
        assert set(got[key]) == set(st), key
        for name, a in st.items():
            assert got[key][name].dtype == a.dtype, (key, name)
            np.testing.assert_array_equal(got[key][name], a, err_msg=f"{key} {name}")


def test_episode_selection(v21: Path, tmp_path: Path) -> None:
    # (LeRobot 0.3.3 finds a selected episode's rows by its episode_index in a table of the
    # selection, so only a prefix of the episodes reads right there; roboframes reads any)
    delta = WINDOWS["act"]
    ref = reference(v21, tmp_path, delta, [0, 1])
    ds = roboframes.Dataset(v21, episodes=[1, 0], delta_timestamps=delta)
    assert len(ds) == ref["len"] == 7
    for i in range(len(ds)):
        assert_item_equal(ref["items"][i], ds[i], f"episodes[0, 1][{i}]")
    # a later episode alone: its items are those of the whole dataset's at its place
    whole = roboframes.Dataset(v21, delta_timestamps=delta)
    three = roboframes.Dataset(v21, episodes=[3], delta_timestamps=delta)
    for i in range(len(three)):
        a, b = whole[9 + i], three[i]
        for k in a:
            if isinstance(a[k], str):
                assert a[k] == b[k]
            else:
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_v20_reads_as_lerobot03_does(v21: Path, refs, tmp_path: Path) -> None:
    """A v2.0 root: v2.1's layout with the whole dataset's ``meta/stats.json`` instead of the
    episodes' statistics (LeRobot 0.3 reads both)."""
    root = copy_of(v21, tmp_path)
    info = json.loads((root / "meta/info.json").read_text())
    info["codebase_version"] = "v2.0"
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    stats = {k: {s: np.asarray(v).tolist() for s, v in st.items()} for k, st in refs["none"]["stats"].items()}
    (root / "meta/stats.json").write_text(json.dumps(stats))
    (root / "meta/episodes_stats.jsonl").unlink()
    delta = WINDOWS["act"]
    ref = reference(root, tmp_path, delta)
    ds = roboframes.Dataset(root, delta_timestamps=delta)
    assert ds.codebase_version == "v2.0"
    for i in range(len(ds)):
        assert_item_equal(ref["items"][i], ds[i], f"v2.0[{i}]")
    got = ds.read_stats()
    assert got is not None
    for key, st in ref["stats"].items():
        for name, a in st.items():
            np.testing.assert_array_equal(got[key][name], a, err_msg=f"{key} {name}")
    assert tools.validate(root).ok


def test_drop_in_reads_v21(v21: Path, refs) -> None:
    pytest.importorskip("lerobot")
    from roboframes.torch import LeRobotDataset

    delta = WINDOWS["act"]
    ds = LeRobotDataset("roboframes/v21", root=v21, delta_timestamps=delta)
    ref = refs["act"]
    for i in range(len(ds)):
        assert_item_equal(ref["items"][i], ds[i], f"drop-in[{i}]", torch_frames=True)
    meta = ds.meta
    assert list(meta.tasks.index) == ["pick the cube", "place the cube", "stack the blocks"]
    assert meta.get_task_index("stack the blocks") == 2
    assert len(meta.episodes) == 4 and meta.episodes[3]["dataset_from_index"] == 9
    # (LeRobot 0.3's writer lists an episode's tasks in Python's set order: the file is the truth)
    listed = [json.loads(line)["tasks"] for line in (v21 / "meta/episodes.jsonl").read_text().splitlines()]
    assert meta.episodes["tasks"] == listed
    assert sorted(listed[2]) == ["pick the cube", "stack the blocks"]
    assert meta.get_data_file_path(2) == Path("data/chunk-001/episode_000002.parquet")
    assert meta.get_video_file_path(3, "observation.images.top") == Path(
        "videos/chunk-001/observation.images.top/episode_000003.mp4"
    )
    assert meta.stats is not None
    np.testing.assert_array_equal(meta.stats["action"]["mean"], ref["stats"]["action"]["mean"])


def test_loader_reads_v21(v21: Path) -> None:
    ds = roboframes.Dataset(v21)
    seen: list[int] = []
    for batch in ds.loader(batch_size=5, shuffle=False):
        seen += [int(i) for i in batch["index"]]
        for j, i in enumerate(batch["index"]):
            np.testing.assert_array_equal(batch["observation.images.wrist"][j], ds[int(i)]["observation.images.wrist"])
    assert seen == list(range(18))
    mlx_rf = pytest.importorskip("roboframes.mlx")
    mds = mlx_rf.Dataset(v21)
    frame = mds[7]["observation.images.top"]
    np.testing.assert_array_equal(np.array(frame), ds[7]["observation.images.top"])


def test_http_root_reads_v21(v21: Path) -> None:
    from remote_servers import file_server

    local = roboframes.Dataset(v21, delta_timestamps=WINDOWS["act"])
    with file_server({"d": v21}) as srv:
        remote = roboframes.Dataset(f"{srv.url}/d", delta_timestamps=WINDOWS["act"])
        assert len(remote) == len(local)
        for i in (0, 6, 7, 17):
            a, b = local[i], remote[i]
            for k in a:
                if isinstance(a[k], str):
                    assert a[k] == b[k]
                else:
                    np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        stats = remote.read_stats()
        assert stats is not None
        np.testing.assert_array_equal(stats["action"]["std"], local.read_stats()["action"]["std"])  # type: ignore[index]


def copy_of(v21: Path, tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(v21, root)
    return root


def test_validate_v21(v21: Path, tmp_path: Path) -> None:
    report = tools.validate(v21, decode="all")
    assert report.ok, report.findings
    assert (report.episodes, report.frames, report.data_files, report.video_files) == (4, 18, 4, 8)
    # a missing video, a bad statistic and a stale total, each named
    root = copy_of(v21, tmp_path)
    (root / "videos/chunk-001/observation.images.wrist/episode_000002.mp4").unlink()
    lines = (root / "meta/episodes_stats.jsonl").read_text().splitlines()
    doc = json.loads(lines[1])
    doc["stats"]["action"]["mean"] = [0.0]
    lines[1] = json.dumps(doc)
    (root / "meta/episodes_stats.jsonl").write_text("\n".join(lines) + "\n")
    info = json.loads((root / "meta/info.json").read_text())
    info["total_frames"] = 17
    (root / "meta/info.json").write_text(json.dumps(info))
    report = tools.validate(root)
    errors = [f for f in report.findings if f.severity == "error"]
    text = "\n".join(str(f) for f in errors)
    assert any("episode_000002.mp4" in (f.path or "") for f in errors), text
    assert any(f.path and f.path.endswith("episodes_stats.jsonl") and "line 2" in f.message for f in errors), text
    assert any("total_frames" in f.message for f in errors), text


@pytest.mark.parametrize(
    "damage, words",
    [
        ("episodes_line", "line 3"),
        ("tasks_missing", "tasks.jsonl"),
        ("no_chunks_size", "chunks_size"),
    ],
)
def test_bad_v21_metadata_is_a_clear_error(v21: Path, tmp_path: Path, damage: str, words: str) -> None:
    root = copy_of(v21, tmp_path)
    if damage == "episodes_line":
        lines = (root / "meta/episodes.jsonl").read_text().splitlines()
        lines[2] = '{"episode_index": 2, "tasks": []}'
        (root / "meta/episodes.jsonl").write_text("\n".join(lines) + "\n")
    elif damage == "tasks_missing":
        (root / "meta/tasks.jsonl").unlink()
    else:
        info = json.loads((root / "meta/info.json").read_text())
        del info["chunks_size"]
        (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(roboframes.Error) as e:
        ds = roboframes.Dataset(root)
        for i in range(len(ds)):
            ds[i]
    assert words in str(e.value), str(e.value)


def test_rows_are_found_by_place_as_lerobot03_does(v21: Path, tmp_path: Path) -> None:
    """A v2.1 episode file whose ``index`` column is not its place in the dataset (the lengths
    of the episodes before it): LeRobot 0.3 reads its rows by place and returns ``index`` as
    stored; so does roboframes, and ``validate`` warns of it."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    root = copy_of(v21, tmp_path)
    path = root / "data/chunk-000/episode_000001.parquet"
    t = pq.read_table(path)
    i = t.schema.get_field_index("index")
    pq.write_table(t.set_column(i, "index", pc.add(t["index"], 5)), path)
    delta = WINDOWS["wide"]  # (windows over 'index' too)
    ref = reference(root, tmp_path, delta)
    ds = roboframes.Dataset(root, delta_timestamps=delta)
    for i in range(len(ds)):
        assert_item_equal(ref["items"][i], ds[i], f"moved index[{i}]")
    assert int(ds[6]["index"][1]) == 11
    report = tools.validate(root)
    assert report.ok, report.findings
    warned = [f for f in report.findings if f.check == "index"]
    assert len(warned) == 1 and warned[0].episode == 1 and "should run from 6" in warned[0].message, warned
    # LeRobot's converter would copy those values into a v3.0 dataset no reader can use: refused
    pytest.importorskip("lerobot")
    from roboframes.convert import convert

    with pytest.raises(roboframes.errors.MetadataError, match="should run from 6"):
        convert(root, tmp_path / "v30", progress=False)
    assert not (tmp_path / "v30").exists() and not (tmp_path / "v30.partial").exists()


def test_statistics_lines_as_lerobot03_reads_them(v21: Path, refs, tmp_path: Path) -> None:
    """An episode's statistics listed twice count once, with the last line (LeRobot 0.3 keeps a
    dict); ``validate`` says so, and says which episodes have none."""
    root = copy_of(v21, tmp_path)
    path = root / "meta/episodes_stats.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], *lines, ""]))  # episode 0 twice, the same numbers
    got = roboframes.Dataset(root).read_stats()
    assert got is not None
    for key, st in refs["none"]["stats"].items():
        for name, a in st.items():
            np.testing.assert_array_equal(got[key][name], a, err_msg=f"{key} {name}")
    found = [f for f in tools.validate(root).findings if f.check == "episodes_stats"]
    assert [(f.severity, f.episode) for f in found] == [("warning", 0)] and "line 2" in found[0].message, found
    path.write_text("\n".join(lines[:2]) + "\n")  # episodes 2 and 3 without statistics
    found = [f for f in tools.validate(root).findings if f.check == "episodes_stats"]
    assert len(found) == 1 and "2 episode(s) have no statistics (2, 3)" in found[0].message, found
    # a statistic that is not a list is refused, naming the file, line and key
    doc = json.loads(lines[0])
    doc["stats"]["action"]["mean"] = 0.5
    path.write_text(json.dumps(doc) + "\n")
    with pytest.raises(roboframes.errors.MetadataError, match="line 1 .episode 0.: 'mean' has shape") as e:
        roboframes.Dataset(root).read_stats()
    assert e.value.key == "action" and str(e.value.path).endswith("episodes_stats.jsonl")


def test_unlisted_data_file_is_named(v21: Path, tmp_path: Path) -> None:
    """A data file no episode names: LeRobot 0.3 would read it too (shifting the rows after
    it); ``validate`` names it, and ``convert`` refuses to copy it."""
    root = copy_of(v21, tmp_path)
    shutil.copy(root / "data/chunk-000/episode_000001.parquet", root / "data/chunk-001/episode_000007.parquet")
    found = [f for f in tools.validate(root).findings if f.check == "data_file"]
    assert len(found) == 1 and found[0].severity == "warning" and found[0].path.endswith("episode_000007.parquet")
    assert len(roboframes.Dataset(root)) == 18


def test_convert_v21_to_v30_read_equal_by_lerobot(v21: Path, refs, tmp_path: Path) -> None:
    pytest.importorskip("lerobot")
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from roboframes.convert import convert

    dst = convert(v21, tmp_path / "v30", progress=False)
    assert json.loads((dst / "meta/info.json").read_text())["codebase_version"] == "v3.0"
    assert json.loads((dst / "meta/roboframes_convert.json").read_text())["method"] == "lerobot-v21-to-v30"
    # the videos' streams were copied, not re-encoded: LeRobot's v3.0 reader gives LeRobot
    # 0.3.3's items of the v2.1 files, frames included
    for window in ("none", "act"):
        ours = LeRobotDataset("roboframes/v30", root=dst, delta_timestamps=WINDOWS[window])
        ref = refs[window]
        assert len(ours) == ref["len"]
        for i in range(len(ours)):
            assert_item_equal(ref["items"][i], ours[i], f"converted/{window}[{i}]", torch_frames=True)
    # and roboframes reads the result as it read the source
    a, b = roboframes.Dataset(v21), roboframes.Dataset(dst)
    for i in (0, 7, 17):
        for k, v in a[i].items():
            if isinstance(v, str):
                assert v == b[i][k]
            else:
                np.testing.assert_array_equal(v, b[i][k], err_msg=k)
    assert convert(v21, tmp_path / "v30", progress=False) == dst  # done already: returns at once


def test_cli_reads_v21(v21: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "roboframes.cli", "info", str(v21)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "LeRobot v2.1" in r.stdout and "4 episodes, 18 frames" in r.stdout
