"""Dataset tools: validate (every kind of damage in one report), statistics recomputed against
the ``stats.json`` LeRobot's writer made, episode records, splits, and the ``roboframes``
command through its entry point."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import roboframes
from roboframes.errors import InvalidArgumentError, ValidationError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

FIXTURES = ["av1", "av1_multifile", "h264", "hevc", "grid"]
NARROW_INTS = ("uint8", "int8", "uint16", "int16")


@pytest.mark.parametrize("name", FIXTURES)
def test_lerobot_written_datasets_are_valid(dataset_dir, name) -> None:
    report = roboframes.validate(dataset_dir(name), "all", progress=False)
    assert report.ok, str(report)
    assert report.errors == [] and report.complete
    assert report.frames_decoded > 0
    report.raise_if_errors()
    d = json.loads(json.dumps(report.to_dict()))
    assert d["ok"] and d["episodes"] == roboframes.Dataset(dataset_dir(name)).num_episodes


def _episodes_file(root: Path) -> Path:
    return sorted((root / "meta" / "episodes").glob("*/*.parquet"))[0]


def _set_column(path: Path, name: str, values: list) -> None:
    t = pq.read_table(path)
    i = t.column_names.index(name)
    t = t.set_column(i, name, pa.array(values, type=t.schema.field(name).type))
    pq.write_table(t, path)


@pytest.fixture
def damaged(dataset_dir, tmp_path) -> tuple[Path, dict]:
    """A copy of a LeRobot-written dataset with six kinds of damage at once."""
    root = tmp_path / "damaged"
    shutil.copytree(dataset_dir("av1_multifile"), root)
    info = json.loads((root / "meta" / "info.json").read_text())
    eps = pq.read_table(_episodes_file(root)).to_pylist()
    by_file: dict[tuple[int, int], list[dict]] = {}
    for e in eps:
        by_file.setdefault((e["data/chunk_index"], e["data/file_index"]), []).append(e)
    files = sorted(by_file)
    assert len(files) >= 3, "the fixture has several data files"
    # 1. wrong totals
    info["total_frames"] += 5
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    # 2. a shifted timestamp and 3. a task index naming no task, in one data file
    ts_ep = next(e for e in by_file[files[0]] if e["length"] >= 3)
    data0 = root / info["data_path"].format(chunk_index=files[0][0], file_index=files[0][1])
    t = pq.read_table(data0)
    rows = t.to_pydict()
    row = rows["index"].index(ts_ep["dataset_from_index"] + 1)
    rows["timestamp"][row] += 0.05
    rows["task_index"][row - 1] = 99
    _set_column(data0, "timestamp", rows["timestamp"])
    _set_column(data0, "task_index", rows["task_index"])
    # 4. a missing data file
    gone = by_file[files[-1]]
    (root / info["data_path"].format(chunk_index=files[-1][0], file_index=files[-1][1])).unlink()
    # 5. an episode whose span in its video misses a frame
    span_ep = by_file[files[1]][0]
    col = "videos/observation.images.top/from_timestamp"
    values = [e[col] + (1 / info["fps"] if e["episode_index"] == span_ep["episode_index"] else 0.0) for e in eps]
    _set_column(_episodes_file(root), col, values)
    # 6. a truncated video file
    wrist = next(e for e in eps if e["episode_index"] not in (span_ep["episode_index"],))
    vpath = root / info["video_path"].format(
        video_key="observation.images.wrist",
        chunk_index=wrist["videos/observation.images.wrist/chunk_index"],
        file_index=wrist["videos/observation.images.wrist/file_index"],
    )
    data = vpath.read_bytes()
    vpath.write_bytes(data[: len(data) // 2])
    return root, {
        "ts_ep": ts_ep["episode_index"],
        "data0": data0,
        "gone": [e["episode_index"] for e in gone],
        "span_ep": span_ep["episode_index"],
        "video": vpath,
    }


def test_one_report_names_every_kind_of_damage(damaged) -> None:
    root, d = damaged
    report = roboframes.validate(root, "ends", progress=False)
    assert not report.ok
    by_check: dict[str, list] = {}
    for f in report.errors:
        by_check.setdefault(f.check, []).append(f)
    assert {"totals", "timestamps", "task_index", "data_file", "video_span"} <= set(by_check), str(report)
    assert any("total_frames" in f.message for f in by_check["totals"])
    ts = by_check["timestamps"][0]
    assert ts.episode == d["ts_ep"] and ts.path == str(d["data0"]) and ts.key == "timestamp"
    task = by_check["task_index"][0]
    assert task.episode == d["ts_ep"] and "99" in task.message
    assert any("missing" in f.message and str(d["gone"][0]) in f.message for f in by_check["data_file"])
    span = by_check["video_span"][0]
    assert span.episode == d["span_ep"] and span.key == "observation.images.top"
    # the truncated video: an unreadable file or frames missing from its episodes' spans
    assert any(f.path == str(d["video"]) for f in report.errors), str(report)
    with pytest.raises(ValidationError, match="error") as e:
        report.raise_if_errors()
    assert e.value.report is report
    text = str(report)
    assert text.startswith("FAILED") and "timestamps" in text


def test_a_dataset_too_broken_to_open_still_gets_a_report(tmp_path, dataset_dir) -> None:
    root = tmp_path / "noinfo"
    shutil.copytree(dataset_dir("h264"), root)
    (root / "meta" / "info.json").write_text("{not json")
    report = roboframes.validate(root, progress=False)
    assert not report.ok and report.errors[0].check == "info.json"
    missing = roboframes.validate(tmp_path / "nothing", progress=False)
    assert missing.errors[0].check == "root"
    with pytest.raises(InvalidArgumentError, match="decode"):
        roboframes.validate(root, "some")


def test_progress_callback_sees_the_work(dataset_dir) -> None:
    seen: list[tuple[int, int]] = []
    roboframes.validate(dataset_dir("h264"), "all", progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] > 0


# -- statistics ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["av1", "grid", "h264"])
def test_recomputed_statistics_equal_lerobots(dataset_dir, name) -> None:
    ds = roboframes.Dataset(dataset_dir(name))
    ref = ds.stats
    ours = ds.stats(recompute=True, progress=False)
    assert set(ours) == {k for k, f in ds.features.items() if f["dtype"] != "string"}
    for key, st in ref.items():
        kind = ds.features[key]["dtype"]
        for stat, want in st.items():
            got = ours[key][stat]
            want = np.asarray(want, dtype=np.float64)
            assert got.shape == want.shape, (key, stat)
            if kind in NARROW_INTS and stat == "std":
                # LeRobot 0.4.4 squares the values in their own type (uint8 wraps): its std of
                # narrow integer features is wrong; ours is the values' std (checked below)
                continue
            if kind not in ("video", "image"):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{key}/{stat}")
            elif stat == "std":
                # LeRobot 0.4.4 squares uint8 pixels in uint8 (they wrap): its std is not the
                # pixels' std; ours is (checked below against NumPy)
                assert (got > want).all()
            elif kind == "image":
                # lossless PNG: the same pixels as LeRobot sampled, so the same statistics
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, err_msg=f"{key}/{stat}")
            elif stat != "count":
                # video: LeRobot sampled the frames before encoding; lossy AV1/H.264 moves pixels
                tol = 0.02 if stat == "mean" else 0.2
                np.testing.assert_allclose(got, want, atol=tol, err_msg=f"{key}/{stat}")
            else:
                np.testing.assert_array_equal(got, want)
    # every numeric feature's std and mean are its values' (population) std and mean
    everything = ds.get_batch(np.arange(len(ds)))
    for key, f in ds.features.items():
        if f["dtype"] in ("video", "image", "string"):
            continue
        values = np.asarray(everything[key], dtype=np.float64)
        values = values.reshape(-1, values.shape[-1] if values.ndim > 1 else 1)
        np.testing.assert_allclose(ours[key]["std"], values.std(axis=0), rtol=1e-9, atol=1e-12, err_msg=key)
        np.testing.assert_allclose(ours[key]["mean"], values.mean(axis=0), rtol=1e-9, atol=1e-12, err_msg=key)
    # a camera's std is the std of the sampled pixels (one episode: all its frames are sampled
    # when it has fewer than 100)
    cam = ds.camera_keys[0]
    ep = ds.episodes[0]
    one = roboframes.compute_stats(ds.root, [ep], progress=False)[cam]
    n = next(e["length"] for e in ds.episode_table() if e["episode_index"] == ep)
    pixels = ds.get_batch(np.arange(n))[cam].reshape(-1, 3) / 255.0
    np.testing.assert_allclose(one["std"].ravel(), pixels.std(axis=0), rtol=1e-9)
    np.testing.assert_allclose(one["mean"].ravel(), pixels.mean(axis=0), rtol=1e-9)


def test_stats_call_forms(dataset_dir) -> None:
    ds = roboframes.Dataset(dataset_dir("h264"))
    assert isinstance(ds.stats, dict) and ds.stats  # stats.json, parsed once
    again = ds.stats()  # a fresh parse
    assert again is not ds.stats and set(again) == set(ds.stats)


# -- episodes and splits ---------------------------------------------------------------------


def test_episode_records(dataset_dir) -> None:
    ds = roboframes.Dataset(dataset_dir("av1_multifile"), episodes=[1, 3])
    assert ds.episodes == [1, 3]  # still the list LeRobot's `episodes` is
    recs = list(ds.episodes())
    assert [r.index for r in recs] == [1, 3]
    assert recs[0].first_item == 0 and recs[1].first_item == recs[0].length
    assert all(r.tasks and r.duration_s == r.length / ds.fps for r in recs)
    assert set(recs[0].videos) == set(ds.video_keys)


def test_train_val_split(dataset_dir) -> None:
    ds = roboframes.Dataset(dataset_dir("av1_multifile"))
    train, val = ds.train_val_split(val_fraction=0.4, seed=1)
    assert set(train).isdisjoint(val) and sorted(train + val) == list(ds.episodes)
    assert ds.train_val_split(val_fraction=0.4, seed=1) == (train, val)  # deterministic
    tasks = {r.index: r.tasks[0] for r in ds.episodes()}
    for t in set(tasks.values()):
        mine = [e for e, x in tasks.items() if x == t]
        if len(mine) >= 2:
            assert any(e in val for e in mine) and any(e in train for e in mine), t
    # usable as episodes= of datasets and loaders
    assert roboframes.Dataset(ds.root, episodes=val).episodes == val
    assert ds.loader(2, episodes=train).episodes == train
    assert ds.train_val_split(0.0) == (list(ds.episodes), [])
    with pytest.raises(InvalidArgumentError, match="by"):
        ds.train_val_split(by="frame")


# -- the command line ------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("roboframes")
    assert exe.exists(), "the console script is installed with the package"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


def test_cli(dataset_dir, damaged) -> None:
    root = dataset_dir("av1")
    info = _cli("info", str(root), "--json")
    assert info.returncode == 0, info.stderr
    d = json.loads(info.stdout)
    assert d["episodes"] == 4 and d["frames"] == 18 and d["fps"] == 10
    assert d["cameras"]["observation.images.top"]["codec"] == "av1" and d["size_bytes"] > 0
    text = _cli("info", str(root))
    assert "observation.images.top" in text.stdout and "tasks" in text.stdout
    ok = _cli("validate", str(root), "--decode", "all", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"]
    bad = _cli("validate", str(damaged[0]))
    assert bad.returncode == 1 and "FAILED" in bad.stdout and "timestamps" in bad.stdout
    st = _cli("stats", str(root), "--recompute", "--json")
    assert st.returncode == 0, st.stderr
    assert set(json.loads(st.stdout)) >= {"observation.state", "observation.images.top"}
    assert "observation.state" in _cli("stats", str(root)).stdout
    missing = _cli("info", str(damaged[0].parent / "nothing"))
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_cli_says_what_is_wrong_without_a_traceback(dataset_dir, damaged, tmp_path) -> None:
    root = dataset_dir("av1")
    # output paths in a missing folder: refused before any work
    for args in (
        ("frames", str(root), "--episode", "0", "--out", str(tmp_path / "no" / "s.png")),
        ("quality", str(root), "--plot", str(tmp_path / "no" / "q.png")),
    ):
        r = _cli(*args)
        assert r.returncode == 2 and "does not exist" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    # info on a dataset that does not open: what info.json says and the problem, text and JSON
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    info = json.loads((broken / "meta" / "info.json").read_text())
    del info["data_path"]
    (broken / "meta" / "info.json").write_text(json.dumps(info))
    text = _cli("info", str(broken))
    assert text.returncode == 1 and "data_path" in text.stdout and "observation.state" in text.stdout
    assert "Traceback" not in text.stderr
    js = _cli("info", str(broken), "--json")
    d = json.loads(js.stdout)
    assert js.returncode == 1 and not d["ok"] and "data_path" in d["problem"] and d["frames"] == 18
    # a stale total: info works, with the warning on stderr, once
    stale = _cli("info", str(damaged[0]))
    assert stale.returncode == 0 and stale.stderr.count("warning: ") == 1 and "total_frames" in stale.stderr
    # validate names each finding's location once, and one problem under one check
    bad = _cli("validate", str(damaged[0]))
    for line in bad.stdout.splitlines():
        assert line.count("file '") <= 1, line
    ts_ep = damaged[1]["ts_ep"]
    assert not any(
        "[decode]" in line and f"episode {ts_ep}," in line and "no frame within tolerance" in line
        for line in bad.stdout.splitlines()
    ), bad.stdout
    # a repo id where a folder was meant, a file where a folder was meant
    repo = _cli("info", "someone/some_dataset")
    assert repo.returncode == 2 and "hf://datasets/someone/some_dataset" in repo.stderr
    file = _cli("validate", str(root / "meta" / "info.json"))
    assert file.returncode == 1 and "not a directory" in file.stdout


def test_a_home_relative_root_is_expanded(dataset_dir, monkeypatch) -> None:
    root = dataset_dir("av1")
    monkeypatch.setenv("HOME", str(root.parent))
    assert len(roboframes.Dataset(f"~/{root.name}")) == len(roboframes.Dataset(root))


# -- quality scores --------------------------------------------------------------------------


def test_quality_flags_each_kind_of_junk_with_its_reason(dataset_dir, tmp_path) -> None:
    """Ten smooth episodes; then one with a shaking controller, one idle, one with a frozen
    camera and one blurred: each is flagged for its own reason, the others are not."""
    io = pytest.importorskip("io")
    image = pytest.importorskip("PIL.Image")
    image_filter = pytest.importorskip("PIL.ImageFilter")
    root = tmp_path / "quality"
    shutil.copytree(dataset_dir("quality"), root)
    info = json.loads((root / "meta" / "info.json").read_text())
    path = root / info["data_path"].format(chunk_index=0, file_index=0)
    t = pq.read_table(path).to_pydict()
    ep = np.asarray(t["episode_index"])
    frame = np.asarray(t["frame_index"], dtype=np.float64)
    rng = np.random.default_rng(0)
    phase = rng.uniform(0, 6, size=10)[ep][:, None]
    actions = np.sin(frame[:, None] / 3 + phase + np.arange(4)) + 0.001 * rng.normal(size=(len(ep), 4))
    actions[ep == 2] += rng.normal(scale=2.0, size=(int((ep == 2).sum()), 4))  # shaking
    states = np.cos(frame[:, None] / 3 + phase + np.arange(6))
    states[ep == 5] = states[ep == 5][0]  # idle
    still = list(t["observation.images.still"])
    first7 = int(np.argmax(ep == 7))
    for i in np.flatnonzero(ep == 7):
        still[i] = still[first7]  # frozen camera
    for i in np.flatnonzero(ep == 8):  # out of focus
        img = image.open(io.BytesIO(still[i]["bytes"])).filter(image_filter.GaussianBlur(4))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        still[i] = {"bytes": buf.getvalue(), "path": still[i].get("path")}
    _set_column(path, "action", actions.astype(np.float32).tolist())
    _set_column(path, "observation.state", states.astype(np.float32).tolist())
    _set_column(path, "observation.images.still", still)
    (root / "meta" / "stats.json").unlink()  # the rewritten data's statistics come from the data

    report = roboframes.Dataset(root).quality()
    assert [r["episode_index"] for r in report.records] == list(range(10))
    ex = report.exclude
    assert set(ex) == {2, 5, 7, 8}, ex
    assert "jitter" in ex[2][0] and "idle" in ex[5][0]
    assert any("observation.images.still" in r and "frozen" in r for r in ex[7])
    assert any("blurry" in r for r in ex[8])
    rec = {r["episode_index"]: r for r in report.records}
    assert rec[5]["idle_fraction"] == 1.0 and rec[0]["idle_fraction"] == 0.0
    assert rec[7]["frozen_fraction/observation.images.still"] == 1.0
    assert report.dataset_findings == []
    json.dumps(report.to_dict())
    # a robot that idles in every episode: one finding about the dataset, no exclusion for it
    _set_column(path, "observation.state", np.zeros_like(states, dtype=np.float32).tolist())
    every = roboframes.Dataset(root).quality()
    assert len(every.dataset_findings) == 1 and "idle" in every.dataset_findings[0], every.dataset_findings
    assert "10 of 10 episodes" in every.dataset_findings[0]
    assert not any("idle" in r for reasons in every.exclude.values() for r in reasons), every.exclude
    assert {2, 7, 8} <= set(every.exclude)


def test_an_outlier_needs_a_relative_change() -> None:
    from roboframes.quality import outliers

    tight = np.array([100, 100.1, 99.9, 100, 100.05, 99.95, 100, 100.02, 99.98, 100.01])
    # 3% below a tightly spread median: a huge robust z, but not blurry
    assert outliers(np.append(tight, 97.0), -1) == []
    (i, z), *rest = outliers(np.append(tight, 40.0), -1)
    assert i == 10 and z < -3.5 and rest == []
    assert outliers(np.append(tight, 140.0), -1) == [] and outliers(np.append(tight, 140.0), +1)[0][0] == 10
    assert outliers(np.full(5, np.nan), 0) == []


# -- normalisation ---------------------------------------------------------------------------

NORMALIZE = {
    "observation.state": "MEAN_STD",
    "action": "min_max",
    "observation.effort": "QUANTILES",
    "next.reward": "QUANTILE10",
    "observation.images.top": "MEAN_STD",
    "observation.images.wrist": "IDENTITY",
}


def _lerobot_normalized(ds, raw: dict, key: str, mode: str, stats: dict):
    """LeRobot 0.4.4's NormalizerProcessorStep applied to one entry."""
    torch = pytest.importorskip("torch")
    from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
    from lerobot.processor.normalize_processor import NormalizerProcessorStep

    ftype = FeatureType.VISUAL if key in ds.camera_keys else FeatureType.STATE
    step = NormalizerProcessorStep(
        features={key: PolicyFeature(type=ftype, shape=tuple(raw[key].shape[1:]))},
        norm_map={ftype: NormalizationMode[mode.upper()]},
        stats=stats,
    )
    return step._apply_transform(torch.from_numpy(np.array(raw[key])), key, ftype).numpy()


@pytest.mark.parametrize("stats_source", ["stats.json", "recompute"])
def test_normalisation_equals_lerobots_normalizer(dataset_dir, stats_source) -> None:
    root = dataset_dir("av1")
    ds = roboframes.Dataset(root, frame_dtype="float32", channels_last=False, delta_timestamps={"action": [0.0, 0.1]})
    stats = ds.stats if stats_source == "stats.json" else ds.compute_stats(progress=False)
    arg = None if stats_source == "stats.json" else "recompute"
    raw = ds.get_batch(np.arange(len(ds)))
    loader = ds.loader(len(ds), shuffle=False, normalize=NORMALIZE, stats=arg)
    (batch,) = list(loader)
    for key, mode in NORMALIZE.items():
        want = _lerobot_normalized(ds, raw, key, mode, stats)
        np.testing.assert_allclose(batch[key], want, rtol=1e-6, atol=1e-6, err_msg=key)
    assert np.array_equal(batch["index"], raw["index"])  # the others untouched
    if stats_source == "stats.json":
        got = ds.get_batch(np.arange(len(ds)), normalize=NORMALIZE)
        for key in NORMALIZE:
            np.testing.assert_array_equal(got[key], batch[key])


def test_drop_in_normalize_option(dataset_dir) -> None:
    torch = pytest.importorskip("torch")
    import roboframes.torch as rt

    root = dataset_dir("av1")
    plain = rt.LeRobotDataset("roboframes/av1", root=root)
    norm = rt.LeRobotDataset(
        "roboframes/av1", root=root, normalize={"observation.state": "MEAN_STD", "observation.images.top": "MEAN_STD"}
    )
    ref = roboframes.Dataset(root)
    for i in (0, 5, len(plain) - 1):
        a, b = plain[i], norm[i]
        assert list(a) == list(b)
        for key in ("observation.state", "observation.images.top"):
            st = ref.stats[key]
            mean = torch.tensor(np.asarray(st["mean"], dtype=np.float32))
            std = torch.tensor(np.asarray(st["std"], dtype=np.float32))
            torch.testing.assert_close(b[key], (a[key] - mean) / (std + 1e-8), rtol=1e-6, atol=1e-6)
        assert torch.equal(a["action"], b["action"])
    batch = next(iter(torch.utils.data.DataLoader(norm, batch_size=4, num_workers=1)))
    assert batch["observation.state"].shape == (4, 6)


def test_normalisation_errors_are_clear(dataset_dir) -> None:
    ds = roboframes.Dataset(dataset_dir("av1"))
    with pytest.raises(InvalidArgumentError, match="float32"):
        ds.get_batch([0], normalize={"observation.images.top": "MEAN_STD"})  # uint8 frames
    with pytest.raises(InvalidArgumentError, match="modes|one of"):
        ds.loader(2, normalize={"action": "z_score"})
    with pytest.raises(InvalidArgumentError, match="not an entry"):
        ds.loader(2, normalize={"nope": "MEAN_STD"})
    with pytest.raises(InvalidArgumentError, match="needs its 'q01'"):
        ds.loader(2, normalize={"action": "QUANTILES"}, stats={"action": {"mean": [0.0] * 4}})
    with pytest.raises(InvalidArgumentError, match="int64|float32"):
        ds.get_batch([0], normalize={"index": "MEAN_STD"})


def test_cli_quality_and_frames(dataset_dir, tmp_path) -> None:
    root = dataset_dir("av1")
    q = _cli("quality", str(root), "--json", "--plot", str(tmp_path / "q.png"))
    assert q.returncode == 0, q.stderr
    d = json.loads(q.stdout)
    assert len(d["records"]) == 4 and d["exclude"] == {"1": ["length 1 < 2 frames"]}
    assert (tmp_path / "q.png").stat().st_size > 1000
    f = _cli("frames", str(root), "--episode", "3", "--out", str(tmp_path / "s.png"))
    assert f.returncode == 0, f.stderr
    image = pytest.importorskip("PIL.Image")
    sheet = image.open(tmp_path / "s.png")
    assert sheet.size[0] >= 8 * 88 and sheet.size[1] > 3 * 24
    bad = _cli("frames", str(root), "--episode", "42", "--out", str(tmp_path / "x.png"))
    assert bad.returncode == 2 and "episode 42" in bad.stderr


def test_bad_episode_rows_shifted_timestamps_and_shared_spans(dataset_dir, tmp_path) -> None:
    """A duplicated episode, a row range that disagrees with its length, an episode whose
    timestamps are shifted by one frame, and two episodes pointing at the same frames of a
    shared video file: each reported, and the other episodes still checked."""
    root = tmp_path / "rows"
    shutil.copytree(dataset_dir("av1"), root)  # every episode in one video file per camera
    info = json.loads((root / "meta" / "info.json").read_text())
    path = _episodes_file(root)
    t = pq.read_table(path).to_pydict()
    assert len(set(t["videos/observation.images.top/file_index"])) == 1
    # episode 3 now claims episode 0's frames of the top camera (same file)
    for c in ("from_timestamp", "to_timestamp"):
        t[f"videos/observation.images.top/{c}"][3] = t[f"videos/observation.images.top/{c}"][0]
    t["length"][2] += 1  # rows no longer span the length
    for name in (
        "videos/observation.images.top/from_timestamp",
        "videos/observation.images.top/to_timestamp",
        "length",
    ):
        _set_column(path, name, t[name])
    data = root / info["data_path"].format(chunk_index=0, file_index=0)
    d = pq.read_table(data).to_pydict()
    ep = np.asarray(d["episode_index"])
    ts = np.asarray(d["timestamp"], dtype=np.float64)
    ts[ep == 0] += 1 / info["fps"]  # shifted by one frame: every step is still 1/fps
    _set_column(data, "timestamp", ts.astype(np.float32).tolist())
    report = roboframes.validate(root, "ends", progress=False)
    errors = {(f.check, f.episode) for f in report.errors}
    assert ("episode_range", 2) in errors, str(report)
    assert ("timestamps", 0) in errors, str(report)
    assert ("video_span", 3) in errors, str(report)
    # one problem, one finding: episode 2's rows are not also "claimed by no episode"
    assert not [f for f in report.errors if f.check == "data_file"], str(report)
    # a duplicated row: reported, the rest still checked
    t2 = pq.read_table(path)
    pq.write_table(pa.concat_tables([t2, t2.slice(1, 1)]), path)
    report = roboframes.validate(root, "none", progress=False)
    checks = {f.check for f in report.errors}
    assert any("listed twice" in f.message for f in report.errors), str(report)
    assert {"timestamps", "video_span"} <= checks


def test_synthetic_writes_quietly_and_never_over_a_folder(tmp_path, capfd) -> None:
    from roboframes.synthetic import DatasetSpec, write_dataset

    spec = DatasetSpec(episode_lengths=(2, 3), cameras=(("observation.images.top", 32, 32),), image_key=None)
    root = tmp_path / "syn"
    capfd.readouterr()
    write_dataset(root, spec)
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)  # no encoder banners, progress bars or warnings
    assert len(roboframes.Dataset(root)) == 5
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_dataset(root, spec)
    write_dataset(root, DatasetSpec(episode_lengths=(4,), cameras=spec.cameras, image_key=None), overwrite=True)
    assert len(roboframes.Dataset(root)) == 4
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="neither a LeRobot dataset"):
        write_dataset(other, spec, overwrite=True)
    assert (other / "keep.txt").read_text() == "mine"


def test_reopen_keeps_every_other_option(dataset_dir) -> None:
    ds = roboframes.Dataset(
        dataset_dir("av1"),
        episodes=[0, 2],
        delta_timestamps={"action": [0.0, 0.1]},
        decode_threads=1,
        strict_decode=True,
        frame_dtype="float32",
        channels_last=False,
    )
    plain = ds.reopen(delta_timestamps=None)
    assert plain.delta_timestamps is None and plain.episodes == ds.episodes and len(plain) == len(ds)
    assert (plain.strict_decode, plain.decode_threads, plain.frame_dtype, plain.channels_last) == (
        True,
        1,
        "float32",
        False,
    )
    with pytest.raises(TypeError, match="unknown options"):
        ds.reopen(decode_thread=2)


def test_one_options_object_serves_every_surface(dataset_dir) -> None:
    """ReaderOptions is checked once and pickled once; the MLX dataset and the torch drop-in
    pass every reader option through (block_cache_bytes included), unknown ones are refused."""
    import pickle

    from roboframes.options import ReaderOptions

    root = dataset_dir("av1")
    ds = roboframes.Dataset(root, decode_threads=1, strict_decode=True, block_cache_bytes=1 << 20)
    assert ds.options == ReaderOptions(decode_threads=1, strict_decode=True, block_cache_bytes=1 << 20)
    back = pickle.loads(pickle.dumps(ds))
    assert back.options == ds.options and back.root == ds.root and len(back) == len(ds)
    with pytest.raises(InvalidArgumentError, match="block_cache_bytes"):
        ReaderOptions(block_cache_bytes=-1)
    rt = pytest.importorskip("roboframes.torch")
    lr = rt.LeRobotDataset("x/y", root=root, decode_threads=1, strict_decode=True, block_cache_bytes=1 << 20)
    assert lr.reader.options.block_cache_bytes == 1 << 20 and lr.reader.options.strict_decode
    assert pickle.loads(pickle.dumps(lr)).reader.options == lr.reader.options
    with pytest.raises(TypeError):
        rt.LeRobotDataset("x/y", root=root, decode_thread=1)
    if importlib.util.find_spec("mlx") is not None:
        import roboframes.mlx as rm

        mds = rm.Dataset(root, frame_dtype="bfloat16", block_cache_bytes=1 << 20, decode_threads=1)
        assert mds.reader.options.block_cache_bytes == 1 << 20 and mds.reader.decode_threads == 1
