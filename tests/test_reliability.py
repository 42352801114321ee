"""Regression tests of the reliability findings (issue 13): each built from a LeRobot-written
fixture, damaged the way the finding describes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import roboframes
from roboframes.errors import IndexOutOfRangeError, InvalidArgumentError, MetadataError, MetadataWarning

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture
def copy(dataset_dir, tmp_path):
    def make(name: str = "h264") -> Path:
        root = tmp_path / name
        shutil.copytree(dataset_dir(name), root)
        return root

    return make


def _info(root: Path) -> dict:
    return json.loads((root / "meta" / "info.json").read_text())


def _write_info(root: Path, info: dict) -> None:
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))


def _episodes_file(root: Path) -> Path:
    return sorted((root / "meta" / "episodes").glob("*/*.parquet"))[0]


def _set_column(path: Path, name: str, values: list) -> None:
    t = pq.read_table(path)
    i = t.column_names.index(name)
    pq.write_table(t.set_column(i, name, pa.array(values, type=t.schema.field(name).type)), path)


def test_an_absurd_template_width_is_an_error_not_a_panic(copy) -> None:
    root = copy()
    info = _info(root)
    info["data_path"] = "data/chunk-{chunk_index:065536d}/file-{file_index:03d}.parquet"
    _write_info(root, info)
    with pytest.raises(MetadataError, match="width"):
        roboframes.Dataset(root)[0]


@pytest.mark.parametrize(
    "template", ["../../../../etc/{chunk_index}{file_index}.parquet", "/etc/{chunk_index}/{file_index}.parquet"]
)
def test_templates_cannot_leave_the_root(copy, template) -> None:
    root = copy()
    info = _info(root)
    info["data_path"] = template
    _write_info(root, info)
    with pytest.raises(MetadataError, match="outside the dataset root"):
        roboframes.Dataset(root)[0]
    report = roboframes.validate(root, "none", progress=False)
    assert any("outside the dataset root" in f.message for f in report.errors)


def test_a_fifo_is_refused_without_blocking(copy) -> None:
    root = copy()
    data = sorted((root / "data").glob("*/*.parquet"))[0]
    data.unlink()
    os.mkfifo(data)
    video = sorted((root / "videos").glob("*/*/*.mp4"))[0]
    video.unlink()
    os.mkfifo(video)
    # in a child with a deadline: a regression would block forever
    script = textwrap.dedent(
        f"""
        import roboframes
        from roboframes.errors import FileReadError
        ds = roboframes.Dataset({str(root)!r})
        for what in ("data", "video"):
            try:
                ds.get_batch([0])
            except FileReadError as e:
                assert "regular file" in str(e), e
                print("refused", what)
            else:
                raise SystemExit("read a FIFO")
            break
        r = roboframes.validate({str(root)!r}, "none", progress=False)
        assert sum("regular file" in f.message for f in r.errors) == 2, str(r)
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def test_symlinked_files_keep_working(copy, tmp_path) -> None:
    """A Hugging Face cache snapshot links its files into a blob store outside the root."""
    root = copy()
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for f in list((root / "data").glob("*/*.parquet")) + list((root / "videos").glob("*/*/*.mp4")):
        target = blobs / f"{f.stat().st_ino}-{f.name}"
        shutil.move(f, target)
        f.symlink_to(target)
    ds = roboframes.Dataset(root)
    assert len(ds.get_batch(np.arange(len(ds)))["index"]) == len(ds)


def test_thread_counts_are_bounded(copy) -> None:
    root = copy()
    for bad in (0, -1, 10_000, 2**63, 1.5, True):
        with pytest.raises(InvalidArgumentError, match="decode_threads"):
            roboframes.Dataset(root, decode_threads=bad)
    ds = roboframes.Dataset(root)
    with pytest.raises(InvalidArgumentError, match="decode_threads"):
        ds.set_decode_threads(2**40)
    ds.set_decode_threads(3)
    assert ds.decode_threads == 3


def test_a_wrapped_episode_range_is_an_error(copy) -> None:
    """dataset_to_index - dataset_from_index overflowing i64 once equalled `length`."""
    root = copy()
    path = _episodes_file(root)
    t = pq.read_table(path).to_pydict()
    n = t["length"][1]
    frm = -(2**63) + 5
    to = frm + n + 2**64 if frm + n + 2**64 < 2**63 else 2**63 - 1
    t["dataset_from_index"][1] = frm
    t["dataset_to_index"][1] = (frm + n) % 2**64 - 2**64 if (frm + n) % 2**64 >= 2**63 else (frm + n) % 2**64
    del to
    _set_column(path, "dataset_from_index", t["dataset_from_index"])
    _set_column(path, "dataset_to_index", t["dataset_to_index"])
    with pytest.raises(MetadataError, match="disagree with length"):
        roboframes.Dataset(root)


def test_a_stale_total_warns_and_an_empty_episode_is_an_error(copy) -> None:
    """A stale total_frames (a summary the episode table supersedes) opens with a warning on
    both surfaces, which count by the episodes, and validate reports it; an episode of length 0
    is refused."""
    pytest.importorskip("torch")
    import roboframes.torch as rt

    root = copy()
    want = len(roboframes.Dataset(root))
    info = _info(root)
    for delta in (3, -3):
        info["total_frames"] += delta
        _write_info(root, info)
        with pytest.warns(MetadataWarning, match="total_frames") as w:
            ds = roboframes.Dataset(root)
        assert str(root / "meta" / "info.json") in str(w[0].message)
        assert len(ds) == want and ds.get_batch([want - 1])["index"][0] == want - 1
        with pytest.warns(MetadataWarning, match="total_frames"):
            lr = rt.LeRobotDataset("x/y", root=root)
        assert len(lr) == lr.num_frames == want and int(lr[want - 1]["index"]) == want - 1
        report = ds.validate()
        assert any("total_frames" in f.message for f in report.errors)
        info["total_frames"] -= delta
    _write_info(root, info)
    path = _episodes_file(root)
    t = pq.read_table(path).to_pydict()
    t["length"][0] = 0
    _set_column(path, "length", t["length"])
    with pytest.raises(MetadataError, match="length is 0"):
        roboframes.Dataset(root)


def test_misuse_is_a_type_error(dataset_dir) -> None:
    ds = roboframes.Dataset(dataset_dir("h264"))
    with pytest.raises(TypeError, match=r"ds.get_batch\(range\(0, 2\)\)"):
        ds[0:2]  # type: ignore[index]
    for bad in ("3", 1.7, True, float("nan"), None):
        with pytest.raises(TypeError):
            ds[bad]  # type: ignore[index]
    for bad in (np.zeros((2, 2), dtype=np.int64), ["1"], [1.5], [True], 3):
        with pytest.raises(TypeError):
            ds.get_batch(bad)  # type: ignore[arg-type]
    for bad in ("12", [1.9], [True]):
        with pytest.raises(TypeError):
            roboframes.Dataset(dataset_dir("h264"), episodes=bad)  # type: ignore[arg-type]
    with pytest.raises(IndexOutOfRangeError):
        ds[2**70]
    with pytest.raises(IndexOutOfRangeError, match="-1000000"):
        ds[-(10**6)]
    with pytest.raises(InvalidArgumentError):
        roboframes.Dataset(dataset_dir("h264"), episodes=[2**70])
    assert ds[np.int64(-1)]["index"] == len(ds) - 1


def test_drop_in_misuse_is_a_type_error(dataset_dir) -> None:
    torch = pytest.importorskip("torch")
    import roboframes.torch as rt

    ds = rt.LeRobotDataset("x/y", root=dataset_dir("h264"))
    for bad in ("3", 1.7, True, torch.tensor(1.5), torch.tensor([[1]])):
        with pytest.raises(TypeError):
            ds[bad]  # type: ignore[index]
    with pytest.raises(IndexOutOfRangeError):
        ds[2**70]
    with pytest.raises(IndexOutOfRangeError, match="-1000000"):
        ds[-(10**6)]
    assert int(ds[torch.tensor(2)]["index"]) == 2


def test_fake_kernels_follow_the_input_device(dataset_dir) -> None:
    torch = pytest.importorskip("torch")
    import roboframes.torch as rt
    from roboframes.torch import _ops

    ds = rt.LeRobotDataset("x/y", root=dataset_dir("h264"))
    out = _ops.get_batch(ds.handle, torch.tensor([0, 1], device="meta"))
    assert all(t.device.type == "meta" for t in out)
    values, pads = _ops.gather(ds.handle, "action", torch.tensor([0], device="meta"), [0, 1])
    assert values.device.type == "meta" and pads.device.type == "meta"


def test_values_that_cannot_be_read_are_errors_not_zeros(copy) -> None:
    """An Arrow cast used to turn unrepresentable values into nulls, read as 0 / False."""
    from roboframes.errors import ParquetError

    for column, values, arrow_type in [
        ("task_index", lambda n: [2**64 - 1] * n, pa.uint64()),
        ("next.reward", lambda n: ["abc"] * n, pa.string()),
        ("next.done", lambda n: ["maybe"] * n, pa.string()),
    ]:
        root = copy()
        data = sorted((root / "data").glob("*/*.parquet"))[0]
        t = pq.read_table(data)
        i = t.column_names.index(column)
        t = t.set_column(i, column, pa.array(values(t.num_rows), type=arrow_type))
        pq.write_table(t, data)
        with pytest.raises(ParquetError, match=column.replace(".", r"\.")):
            roboframes.Dataset(root).get_batch([0])
        shutil.rmtree(root)


def test_tasks_are_named_by_value_on_both_surfaces(copy) -> None:
    """tasks.parquet rows out of task_index order: both surfaces name the task by its value."""
    pytest.importorskip("torch")
    import roboframes.torch as rt

    root = copy("av1")  # two tasks
    path = root / "meta" / "tasks.parquet"
    t = pq.read_table(path)
    pq.write_table(t.take(list(reversed(range(t.num_rows)))), path)
    text = next(c for c in t.column_names if c != "task_index")  # (pandas writes the task as its index)
    by_value = dict(zip(t.column("task_index").to_pylist(), t.column(text).to_pylist(), strict=True))
    ds = roboframes.Dataset(root)
    drop_in = rt.LeRobotDataset("x/y", root=root)
    for i in range(len(ds)):
        item = ds[i]
        assert item["task"] == by_value[int(item["task_index"])]
        assert drop_in[i]["task"] == item["task"]


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"action": {"mean": [[1, 2], [3]]}}', "rectangular"),
        ('{"action": {"mean": ' + "[" * 5000 + "]" * 5000 + "}}", "JSON|dimensions"),
        ('{"action": {"mean": ["a"]}}', "not numbers"),
        ("[1, 2]", "top level"),
    ],
)
def test_a_broken_stats_json_is_a_metadata_error_and_does_not_stop_opening(copy, text, match) -> None:
    pytest.importorskip("torch")
    import roboframes.torch as rt

    root = copy()
    (root / "meta" / "stats.json").write_text(text)
    ds = roboframes.Dataset(root)
    with pytest.raises(MetadataError, match=match):
        _ = ds.stats
    drop_in = rt.LeRobotDataset("x/y", root=root)  # opens: the stats are optional
    assert int(drop_in[0]["index"]) == 0
    with pytest.raises(MetadataError, match=match):
        _ = drop_in.meta.stats


def test_huge_shapes_and_a_zero_tolerance_are_refused_at_open(copy) -> None:
    root = copy()
    info = _info(root)
    info["features"]["action"]["shape"] = [2**62, 2**62, 3]
    _write_info(root, info)
    with pytest.raises(MetadataError, match="memory|elements"):
        roboframes.Dataset(root)
    info["features"]["action"]["shape"] = [2**20, 2**11]
    _write_info(root, info)
    with pytest.raises(MetadataError, match="not a recording"):
        roboframes.Dataset(root)
    root2 = copy("av1")
    with pytest.raises(InvalidArgumentError, match="tolerance_s must be a positive"):
        roboframes.Dataset(root2, tolerance_s=0)


def test_a_corrupt_episodes_column_is_a_parquet_error_in_the_drop_in(copy) -> None:
    pytest.importorskip("torch")
    import roboframes.torch as rt
    from roboframes.errors import ParquetError

    root = copy()
    ds = rt.LeRobotDataset("x/y", root=root)
    path = _episodes_file(root)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ParquetError, match="cannot read parquet"):
        _ = ds.meta.episodes["tasks"]


# -- soak and concurrency ------------------------------------------------------------------------


def test_eight_threads_sharing_a_dataset_get_single_thread_results(dataset_dir) -> None:
    import threading

    ds = roboframes.Dataset(dataset_dir("av1_multifile"), delta_timestamps={"observation.images.top": [-0.1, 0.0]})
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, len(ds), size=5) for _ in range(16)]
    want = [ds.get_batch(b) for b in batches]
    got: dict[int, dict] = {}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for j in range(t, len(batches), 8):
                got[j] = ds.get_batch(batches[j])
        except BaseException as e:  # noqa: BLE001  (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    for j, w in enumerate(want):
        for k, v in w.items():
            if isinstance(v, np.ndarray):
                assert np.array_equal(got[j][k], v), (j, k)
            else:
                assert got[j][k] == v


def test_a_keyboard_interrupt_during_a_batch_leaves_the_dataset_usable(dataset_dir) -> None:
    import signal
    import threading

    ds = roboframes.Dataset(dataset_dir("av1_multifile"), delta_timestamps={"observation.images.top": [-0.1, 0.0]})
    everything = np.tile(np.arange(len(ds)), 40)
    timer = threading.Timer(0.05, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in range(200):  # (the signal lands during one of these batches)
                ds.get_batch(everything)
    finally:
        timer.cancel()
    ref = roboframes.Dataset(dataset_dir("av1_multifile"), delta_timestamps={"observation.images.top": [-0.1, 0.0]})
    a, b = ds.get_batch(np.arange(len(ds))), ref.get_batch(np.arange(len(ds)))
    for k, v in a.items():
        assert np.array_equal(v, b[k]) if isinstance(v, np.ndarray) else v == b[k]


def test_a_thousand_open_use_drop_cycles_release_files_and_threads(dataset_dir) -> None:
    root = dataset_dir("h264")

    def counts() -> tuple[int, int]:
        return len(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task"))

    def cycle() -> None:
        ds = roboframes.Dataset(root, decode_threads=2)
        ds.get_batch([0, len(ds) - 1])

    for _ in range(20):
        cycle()
    before = counts()
    for _ in range(1000):
        cycle()
    after = counts()
    assert after[0] <= before[0], f"file descriptors {before[0]} -> {after[0]}"
    assert after[1] <= before[1] + 2, f"threads {before[1]} -> {after[1]}"


# -- found by the fuzzing campaign (fuzz/dataset_fuzz.py, scripts/fuzz.sh) ------------------------


def _all_items(ds: roboframes.Dataset) -> list[dict]:
    return [ds[i] for i in range(len(ds))]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(v, b[k]) if isinstance(v, np.ndarray) else v == b[k] for k, v in a.items()
    )


def _box(data: bytes, kind: bytes) -> tuple[int, int]:
    """(offset, size) of the first box of type `kind` in an mp4 (containers searched)."""
    containers = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}

    def walk(start: int, end: int) -> tuple[int, int] | None:
        i = start
        while i + 8 <= end:
            size = int.from_bytes(data[i : i + 4], "big")
            typ = data[i + 4 : i + 8]
            if size < 8:
                return None
            if typ == kind:
                return i, size
            if typ in containers and (found := walk(i + 8, i + size)):
                return found
            i += size
        return None

    found = walk(0, len(data))
    assert found, f"no {kind!r} box"
    return found


def test_strict_decoding_refuses_damage_the_default_conceals(copy) -> None:
    """Bytes of coded pictures changed: FFmpeg's default decoding conceals the damage (frames
    differ from the recording, as with torchcodec and LeRobot); strict_decode raises, naming the
    file, and validate(decode="all") reports it."""
    clean = copy()
    want = _all_items(roboframes.Dataset(clean))
    rng = np.random.default_rng(0)
    concealed_and_caught = 0
    for attempt in range(12):
        root = clean.with_name(f"damaged{attempt}")
        shutil.copytree(clean, root)
        video = sorted(root.glob("videos/**/*.mp4"))[0]
        data = bytearray(video.read_bytes())
        off, size = _box(bytes(data), b"mdat")
        for p in rng.integers(off + 16, off + size, 4):
            data[p] ^= 0x5A
        video.write_bytes(bytes(data))
        try:
            got = _all_items(roboframes.Dataset(root))
        except roboframes.Error:
            continue  # the default noticed too (a decode error, or a damaged frame size)
        if all(_same(a, b) for a, b in zip(want, got, strict=True)):
            continue  # damage in bytes that do not matter
        # (a flipped bit in residual data decodes cleanly to other pixels: no decoder can tell,
        # so not every such damage is caught; most on H.264 is)
        try:
            _all_items(roboframes.Dataset(root, strict_decode=True))
        except roboframes.Error as e:
            assert video.name in str(e) and e.path is not None
            assert not roboframes.validate(root, decode="all").ok
            concealed_and_caught += 1
    assert concealed_and_caught >= 3, "strict decoding caught too little of the damage the default hid"


def test_a_shifted_video_timeline_is_refused_not_read_shifted(copy) -> None:
    """An edited ctts table (a HEVC file with B-frames) makes the demuxer drop the first frame
    and shift every later one by a frame: every time then finds a frame, the wrong one. The file
    is refused at first use instead: no item comes back different."""
    clean = copy("hevc")
    want = _all_items(roboframes.Dataset(clean))
    root = clean.with_name("hevc-shifted")
    shutil.copytree(clean, root)
    video = sorted(root.glob("videos/**/*.mp4"))[0]
    data = bytearray(video.read_bytes())
    off, _ = _box(bytes(data), b"ctts")
    first = off + 16 + 4  # the first entry's sample offset
    offset = int.from_bytes(data[first : first + 4], "big", signed=True)
    ticks = int.from_bytes(data[off + 16 + 8 + 4 : off + 16 + 8 + 8], "big", signed=True)
    step = abs(offset - ticks) or 512
    data[first : first + 4] = (offset - step).to_bytes(4, "big", signed=True)
    video.write_bytes(bytes(data))
    ds = roboframes.Dataset(root)
    errors = 0
    for i, w in enumerate(want):
        try:
            assert _same(w, ds[i]), f"item {i} differs from the undamaged dataset's"
        except roboframes.Error:
            errors += 1
    assert errors > 0


def test_rows_must_be_their_episodes_rows(copy) -> None:
    """A data table whose episode_index disagrees with meta/episodes is refused (it would give
    one episode's items with another's windows and labels), and so is one whose timestamps do
    not increase within an episode (two rows would read one frame)."""
    for column, row, value in [("episode_index", 2, 1), ("timestamp", 3, 0.1)]:
        root = copy()
        data = sorted(root.glob("data/*/*.parquet"))[0]
        values = pq.read_table(data)[column].to_pylist()
        values[row] = value
        _set_column(data, column, values)
        with pytest.raises(MetadataError, match=column):
            roboframes.Dataset(root)[0]
        shutil.rmtree(root)


def test_an_episode_missing_from_meta_episodes_is_refused_not_left_out(copy) -> None:
    """An episode row dropped from meta/episodes (first, middle or last; total_frames made to
    agree) leaves data rows that no episode claims: reading the data file is refused with the
    message validate reports under 'data_file' (one rule, one message), instead of a dataset
    that silently has fewer items."""
    for drop in (0, 1, -1):
        root = copy()
        path = _episodes_file(root)
        table = pq.read_table(path)
        n = table.num_rows
        keep = [i for i in range(n) if i != drop % n]
        lost = table["length"].to_pylist()[drop % n]
        pq.write_table(table.take(keep), path)
        info = _info(root)
        info["total_frames"] -= lost
        info["total_episodes"] -= 1
        _write_info(root, info)
        ds = roboframes.Dataset(root)
        with pytest.raises(MetadataError, match="belong to no episode of the episode table") as e:
            ds.get_batch(range(len(ds)))
        data = sorted(root.glob("data/*/*.parquet"))[0]
        assert str(data) in str(e.value) and f"{lost} of its" in str(e.value)
        found = [f for f in ds.validate().errors if f.check == "data_file"]
        assert found and "belong to no episode of the episode table" in found[0].message
        shutil.rmtree(root)


def test_a_timestamp_pointing_into_another_episode_is_an_error(copy) -> None:
    """The first row of episode 1 one frame period early (timestamps still increase) lands
    exactly on the last frame of episode 0 in the shared video file: that is an error, never the
    neighbour's frame."""
    root = copy()
    data = sorted(root.glob("data/*/*.parquet"))[0]
    ts = pq.read_table(data)["timestamp"].to_pylist()
    row = pq.read_table(data)["episode_index"].to_pylist().index(1)
    ts[row] = -1.0 / _info(root)["fps"]
    _set_column(data, "timestamp", ts)
    ds = roboframes.Dataset(root)
    with pytest.raises(MetadataError, match="another episode"):
        ds[row]


def test_more_misuse_is_a_type_error(dataset_dir) -> None:
    ds = roboframes.Dataset(dataset_dir("h264"))
    with pytest.raises(TypeError):
        ds.get_batch([[0, 1], (0,), 3])  # ragged
    with pytest.raises(TypeError, match="delta_timestamps"):
        roboframes.Dataset(dataset_dir("h264"), delta_timestamps={"observation.state": "abc"})
    with pytest.raises(TypeError, match="tolerance_s"):
        roboframes.Dataset(dataset_dir("h264"), tolerance_s="x")  # type: ignore[arg-type]
    for seed in (-1, "s", 1.5):
        with pytest.raises(InvalidArgumentError, match="seed"):
            ds.loader(batch_size=2, seed=seed)  # type: ignore[arg-type]


def test_every_error_class_of_the_core_is_a_roboframes_error() -> None:
    """The core's table of error classes (error_channel::ErrorClass) names classes of
    roboframes.errors: a class crossing any native boundary comes back as itself."""
    from roboframes import errors

    classes = roboframes._native.error_classes()
    assert [code for code, _ in classes] == list(range(1, len(classes) + 1))  # the C API's codes
    for _, name in classes:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.Error), name
        back = errors.from_native(RuntimeError(f"[{name}#0] gone: the class by its name"))
        assert type(back) is cls and str(back) == "gone: the class by its name"
    assert isinstance(errors.from_native(RuntimeError("[NotOurs] x")), RuntimeError)


def test_errors_pickle_with_their_location() -> None:
    """A roboframes error sent between processes (a process pool, Ray) keeps its class, message,
    path, episode and key."""
    import pickle

    from roboframes import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        e = cls("what went wrong", "/d/file.parquet", 3, "observation.state")
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is cls and str(back) == "what went wrong", name
        assert (back.path, back.episode, back.key) == ("/d/file.parquet", 3, "observation.state"), name
