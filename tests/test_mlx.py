"""``roboframes.mlx``: the MLX primitive (values equal to the NumPy reader's on the LeRobot-written
fixtures, shapes before evaluation, compile, lazy inputs, threads, errors, memory), the
mlx.data-style streams, the mlx.data interop and the training example."""

from __future__ import annotations

import gc
import importlib.util
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

if os.environ.get("ROBOFRAMES_REQUIRE_MLX"):  # the test command: a broken MLX install must fail
    import mlx.core as mx
else:
    mx = pytest.importorskip("mlx.core")

import roboframes  # noqa: E402
import roboframes.mlx as rm  # noqa: E402
from roboframes import errors  # noqa: E402
from test_compat import usable_windows  # noqa: E402

TOP = "observation.images.top"


def as_numpy(v: Any) -> Any:
    return np.asarray(v) if isinstance(v, mx.array) else v


def assert_same_as_reader(ref: dict[str, Any], got: dict[str, Any], where: str) -> None:
    """Same keys in the same order; arrays of the same dtype, shape and values; strings equal."""
    assert list(ref) == list(got), where
    for k, a in ref.items():
        b = got[k]
        if isinstance(a, (str, list)):
            assert a == b, f"{where} {k}"
            continue
        assert isinstance(b, mx.array), f"{where} {k}: {type(b)}"
        nb = np.asarray(b)
        assert nb.dtype == a.dtype and nb.shape == a.shape, f"{where} {k}: {nb.dtype}{nb.shape} vs {a.dtype}{a.shape}"
        np.testing.assert_array_equal(nb, a, err_msg=f"{where} {k}")


@pytest.mark.parametrize("name", ["av1", "av1_multifile", "h264", "hevc", "grid"])
def test_batches_and_items_equal_the_numpy_reader(dataset_dir, name: str) -> None:
    root = dataset_dir(name)
    for wname, dt in usable_windows(root):
        for episodes in (None, [2, 0] if name != "grid" else [1]):
            ref = roboframes.Dataset(root, episodes=episodes, delta_timestamps=dt)
            ours = rm.Dataset(root, episodes=episodes, delta_timestamps=dt)
            assert len(ours) == len(ref)
            idx = list(np.random.default_rng(0).permutation(len(ref)))
            b = ours.get_batch(idx)
            rm.eval(*[v for v in b.values() if isinstance(v, mx.array)])
            assert_same_as_reader(ref.get_batch(idx), b, f"{name}/{wname}/{episodes} batch")
            for i in (0, len(ref) - 1, -1):
                assert_same_as_reader(ref[i], ours[i], f"{name}/{wname}/{episodes} item {i}")


@pytest.mark.parametrize("frame_dtype", ["float32", "float16"])
def test_frame_options_equal_the_numpy_reader(dataset_dir, frame_dtype: str) -> None:
    root = dataset_dir("av1")  # one camera width is a multiple of 32, one is not; an image feature
    ref = roboframes.Dataset(root, frame_dtype=frame_dtype, channels_last=False)
    ours = rm.Dataset(root, frame_dtype=frame_dtype, channels_last=False)
    idx = [4, 0, 7]
    assert_same_as_reader(ref.get_batch(idx), ours.get_batch(idx), frame_dtype)


def test_bfloat16_frames_round_the_float32_values(dataset_dir) -> None:
    """NumPy has no bfloat16; MLX does: the frames are the float32 frames rounded as MLX rounds."""
    root = dataset_dir("av1")
    f32 = rm.Dataset(root, frame_dtype="float32").get_batch([1, 5])[TOP]
    bf16 = rm.Dataset(root, frame_dtype="bfloat16").get_batch([1, 5])[TOP]
    assert bf16.dtype == mx.bfloat16 and bf16.shape == f32.shape
    assert mx.array_equal(bf16, f32.astype(mx.bfloat16)).item()


def test_operations_know_their_shapes_before_evaluation(dataset_dir) -> None:
    ds = rm.Dataset(dataset_dir("av1"), delta_timestamps={"action": [0.0, 0.1, 0.2]})
    b = ds.get_batch([0, 1, 2])
    assert b[TOP].shape == (3, 64, 96, 3) and b["action"].shape == (3, 3, 4)
    frames = rm.decode_frames(ds, TOP, [0, 0], [0.0, 0.1], frame_dtype="float32", channels_last=False)
    assert frames.shape == (2, 3, 64, 96) and frames.dtype == mx.float32
    values, pads = rm.gather(ds, "observation.state", [0, 5], [-1, 0, 1])
    assert values.shape == (2, 3, 6) and pads.shape == (2, 3) and pads.dtype == mx.bool_
    # frames by (episode, time) equal the items' frames; gather equals the windowed reader's
    rm.eval(frames, values, pads)
    reader = roboframes.Dataset(ds.reader.root, delta_timestamps={"observation.state": [-0.1, 0.0, 0.1]})
    ref = reader.get_batch([0, 5])
    np.testing.assert_array_equal(np.asarray(values), ref["observation.state"])
    np.testing.assert_array_equal(np.asarray(pads), ref["observation.state_is_pad"])
    first = roboframes.Dataset(ds.reader.root, frame_dtype="float32", channels_last=False).get_batch([0, 1])[TOP]
    np.testing.assert_array_equal(np.asarray(frames), first)
    # a lazy array keeps the dataset it reads open after the Python objects are gone
    orphan = rm.Dataset(ds.reader.root).get_batch([2])[TOP]
    gc.collect()
    rm.eval(orphan)
    np.testing.assert_array_equal(np.asarray(orphan), roboframes.Dataset(ds.reader.root).get_batch([2])[TOP])


def test_compile_lazy_inputs_and_shapeless(dataset_dir) -> None:
    ds = rm.Dataset(dataset_dir("av1"))

    def mean_frame(i: mx.array) -> mx.array:
        return rm.get_batch(ds, i)[0].astype(mx.float32).mean(axis=(1, 2, 3))

    idx = mx.array([0, 3, 5], dtype=mx.int64)
    want = mean_frame(idx)
    np.testing.assert_array_equal(np.asarray(mx.compile(mean_frame)(idx)), np.asarray(want))
    shapeless = mx.compile(mean_frame, shapeless=True)
    assert shapeless(idx).shape == (3,)
    two = shapeless(mx.array([5, 0], dtype=mx.int64))
    assert two.shape == (2,)
    np.testing.assert_array_equal(np.asarray(two), np.asarray(want)[[2, 0]])
    # the indices themselves lazy (computed in the graph, int32 cast inside it)
    lazy = (mx.arange(3) * 2 + 1).astype(mx.int32)
    got = rm.get_batch(ds, lazy)
    assert got[0].shape[0] == 3
    ref = roboframes.Dataset(ds.reader.root).get_batch([1, 3, 5])
    np.testing.assert_array_equal(np.asarray(got[0]), ref[TOP])
    # dataset items from lazy indices: strings evaluate them
    assert ds.get_batch(lazy)["task"] == ref["task"]


def test_evaluation_from_several_threads(dataset_dir) -> None:
    ds = rm.Dataset(dataset_dir("av1"), delta_timestamps={"action": [0.0, 0.1]})
    reader = roboframes.Dataset(ds.reader.root, delta_timestamps={"action": [0.0, 0.1]})
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            rng = np.random.default_rng(seed)
            for _ in range(10):
                idx = rng.integers(0, len(ds), 6).tolist()
                b = ds.get_batch(idx)
                rm.eval(b[TOP], b["action"])
                ref = reader.get_batch(idx)
                np.testing.assert_array_equal(np.asarray(b[TOP]), ref[TOP])
                np.testing.assert_array_equal(np.asarray(b["action"]), ref["action"])
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures


def test_errors_raise_and_leave_the_process_usable(dataset_dir, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(dataset_dir("av1"), root)
    ds = rm.Dataset(root)
    good = ds.get_batch([0])[TOP]
    rm.eval(good)  # decoded before the damage
    video = next((root / "videos" / TOP).rglob("*.mp4"))
    video.write_bytes(b"\x00" * 1000)  # decoders open files lazily: this one was never opened
    bad = rm.Dataset(root).get_batch([0])[TOP]
    # mx.eval: a RuntimeError carrying the class and the message (file, episode, key)
    with pytest.raises(RuntimeError) as e:
        mx.eval(bad)
    assert str(e.value).startswith("[VideoDecodeError#") and TOP in str(e.value) and str(video) in str(e.value)
    # errors.from_native: the core's own error behind that text, with its location
    crossed = errors.from_native(e.value)
    assert isinstance(crossed, errors.VideoDecodeError) and crossed.path == str(video) and crossed.key == TOP
    # roboframes.mlx.eval: roboframes' own class, with the location as attributes
    with pytest.raises(errors.VideoDecodeError) as typed:
        rm.eval(rm.Dataset(root).get_batch([1])[TOP])
    assert typed.value.key == TOP and typed.value.path == str(video) and typed.value.episode is not None
    # an error in a prefetched batch of a stream surfaces there, as roboframes' class
    with pytest.raises(errors.VideoDecodeError):
        for _ in rm.Dataset(root).to_stream().batch(2).prefetch(2, 2):
            pass
    with pytest.raises(errors.IndexOutOfRangeError):
        rm.eval(rm.get_batch(ds, mx.array([len(ds)]))[0])
    # the process and MLX keep working
    fine = rm.Dataset(dataset_dir("av1")).get_batch([0, 1])[TOP]
    rm.eval(fine, good)
    assert (fine.astype(mx.int32).sum() + 1).item() > 0
    with pytest.raises(errors.InvalidArgumentError):
        rm.Dataset(root, frame_dtype="int8")


def test_indices_follow_the_numpy_rules(dataset_dir) -> None:
    ds = rm.Dataset(dataset_dir("av1"))
    np_ds = roboframes.Dataset(dataset_dir("av1"))
    for bad in ([1.7], [True], [[0, 1]], [float("nan")], mx.array([1.5]), mx.array([True]), mx.array([[0, 1]])):
        with pytest.raises(TypeError):
            ds.get_batch(bad)
        with pytest.raises(TypeError):
            np_ds.get_batch(bad if not isinstance(bad, mx.array) else np.asarray(bad))
    for bad_item in (1.7, True, "1"):
        with pytest.raises(TypeError):
            ds[bad_item]  # type: ignore[index]
    with pytest.raises(TypeError):
        rm.decode_frames(ds, TOP, [0.5], [0.0])
    with pytest.raises(TypeError):
        rm.gather(ds, "observation.state", [0.5], [0])
    # integers of any width, as lists, NumPy or MLX arrays, are item indices
    want = np.asarray(ds.get_batch([0, 2])["index"])
    for good in ([0, 2], np.array([0, 2], dtype=np.int32), mx.array([0, 2], dtype=mx.uint8)):
        np.testing.assert_array_equal(np.asarray(ds.get_batch(good)["index"]), want)
    assert int(ds[np.int64(2)]["index"].item()) == 2


def test_frames_and_gather_compile_and_check_their_lengths(dataset_dir) -> None:
    ds = rm.Dataset(dataset_dir("av1"))

    def f(ep: mx.array, ts: mx.array, idx: mx.array) -> tuple[mx.array, mx.array]:
        frames = rm.decode_frames(ds, TOP, ep, ts)
        values, pads = rm.gather(ds, "observation.state", idx, [-1, 0])
        return frames.astype(mx.float32).mean(axis=(1, 2, 3)), values.sum(axis=(1, 2)) * (~pads).sum(axis=1)

    ep, ts, idx = mx.array([0, 0]), mx.array([0.0, 0.1]), mx.array([0, 5])
    want = f(ep, ts, idx)
    for compiled in (mx.compile(f), mx.compile(f, shapeless=True)):
        got = compiled(ep, ts, idx)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    shapeless = mx.compile(f, shapeless=True)
    three = shapeless(mx.array([0, 0, 0]), mx.array([0.0, 0.1, 0.2]), mx.array([0, 5, 6]))
    assert three[0].shape == (3,)
    # a shapeless graph re-run with inputs of different lengths is refused, never read past
    with pytest.raises((RuntimeError, ValueError, errors.InvalidArgumentError)):
        rm.eval(*shapeless(mx.array([0, 0, 0]), mx.array([0.0, 0.1]), mx.array([0, 5, 6])))
    with pytest.raises(errors.InvalidArgumentError):
        rm.decode_frames(ds, TOP, [0, 0, 0], [0.0, 0.1])


def test_datasets_close_when_their_arrays_are_gone(dataset_dir) -> None:
    """Lazy arrays hold their dataset open; once they are evaluated or dropped (MLX lets go of
    an evaluated array's primitive) and the dataset object is gone, its files are closed: the
    primitive leaks no reference."""
    proc = psutil.Process()
    root = dataset_dir("av1")

    def open_videos() -> int:
        return sum(1 for f in proc.open_files() if f.path.startswith(str(root / "videos")))

    gc.collect()
    before = open_videos()
    ds = rm.Dataset(root, delta_timestamps={TOP: [-0.1, 0.0]})
    arrays = [ds.get_batch([i, (i + 3) % len(ds)]) for i in range(8)]
    del ds
    gc.collect()
    # still readable; the unevaluated half keeps the dataset (and its open decoders) alive
    rm.eval(*[v for b in arrays[:4] for v in b.values() if isinstance(v, mx.array)])
    assert open_videos() > before
    del arrays
    gc.collect()
    assert open_videos() == before


def test_memory_stays_flat_over_many_evaluations(dataset_dir) -> None:
    ds = rm.Dataset(dataset_dir("av1"), delta_timestamps={TOP: [-0.1, 0.0]})
    proc = psutil.Process()

    def run(n: int) -> None:
        for i in range(n):
            b = ds.get_batch([i % len(ds), (i * 7) % len(ds)])
            rm.eval(*[v for v in b.values() if isinstance(v, mx.array)])
        gc.collect()

    run(100)  # warm up: decoders, MLX's buffer cache
    before = proc.memory_info().rss
    run(600)
    grown = proc.memory_info().rss - before
    # one batch is ~80 KB: a leak of outputs or inputs would add ~50 MB over 600 batches
    assert grown < 15 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 600 evaluations"


def test_streams_shuffle_batch_prefetch_and_transform(dataset_dir) -> None:
    ds = rm.Dataset(dataset_dir("av1"), delta_timestamps={"action": [0.0, 0.1]})
    n = len(ds)
    plain = ds.to_stream()
    assert [int(s["index"].item()) for s in plain] == list(range(n))  # sequential samples
    stream = ds.shuffle(seed=3).batch(4).prefetch(3, 2)
    assert len(stream) == -(-n // 4)
    seen: list[int] = []
    for batch in stream:
        assert batch[TOP].shape[0] == len(batch["task"]) <= 4
        seen += np.asarray(batch["index"]).tolist()
    assert sorted(seen) == list(range(n))  # every item once per epoch
    again = [i for b in stream for i in np.asarray(b["index"]).tolist()]
    assert again == seen  # the same epoch: the same order
    stream.reset()
    nxt = [i for b in stream for i in np.asarray(b["index"]).tolist()]
    assert sorted(nxt) == list(range(n)) and nxt != seen  # a new epoch: a new order
    # transforms: before batch() per sample, after it per batch; keys stay in order
    doubled = ds.to_stream().key_transform("action", lambda a: a * 2).batch(5, drop_last=True)
    tagged = doubled.sample_transform(lambda b: {**b, "size": len(b["task"])})
    batches = list(tagged)
    assert len(batches) == n // 5 and all(b["size"] == 5 for b in batches)
    # a transform before batch() sees one sample ((T, 4) action), after it the batch
    shapes = ds.to_stream().key_transform("action", lambda a: a.shape, "seen").batch(3)
    assert all(s == (2, 4) for b in shapes for s in b["seen"])
    # an empty dict drops the sample (mlx.data's convention)
    evens = ds.to_stream().sample_transform(lambda s: s if int(s["index"].item()) % 2 == 0 else {})
    assert [int(s["index"].item()) for s in evens] == list(range(0, n, 2))
    ref = roboframes.Dataset(ds.reader.root, delta_timestamps={"action": [0.0, 0.1]}).get_batch(list(range(5)))
    np.testing.assert_array_equal(np.asarray(batches[0]["action"]), ref["action"] * 2)
    assert list(batches[0])[: len(ref)] == list(ref)
    # an error in a prefetched batch surfaces as roboframes' class; stopping early is clean
    with pytest.raises(ValueError):
        ds.to_stream().batch(0)
    # stopping early is clean, and epochs reuse the prefetch threads (MLX keeps per-thread
    # streams: threads made per epoch would pile up)
    it = iter(ds.shuffle(1).batch(2).prefetch(4, 2))
    next(it)
    del it
    gc.collect()
    stream = ds.shuffle(2).batch(3).prefetch(2, 2)

    def prefetch_threads() -> set[int]:
        return {t.ident or 0 for t in threading.enumerate() if t.name.startswith("roboframes-mlx")}

    for _ in stream:
        pass
    stream.reset()
    first = prefetch_threads()
    for _ in range(10):
        for _ in stream:
            pass
        stream.reset()
    # the same Python threads every epoch (threads made per epoch each left MLX streams and
    # their worker threads behind); the OS-level count is not compared: pooled decoders come
    # and go with their codec's own threads
    assert prefetch_threads() == first and 0 < len(first) <= 2 + 2


def test_mlx_data_interop(dataset_dir) -> None:
    dx = pytest.importorskip("mlx.data")
    ds = rm.Dataset(dataset_dir("av1"), delta_timestamps={"action": [0.0, 0.1]})
    ref = roboframes.Dataset(ds.reader.root, delta_timestamps={"action": [0.0, 0.1]})
    stream = ds.to_mlx_data(batch_size=4).key_transform("action", lambda a: a + 1).prefetch(2, 1)
    got = list(stream)
    assert len(got) == -(-len(ds) // 4)
    first = ref.get_batch([0, 1, 2, 3])
    np.testing.assert_array_equal(got[0][TOP], first[TOP])
    np.testing.assert_array_equal(got[0]["action"], first["action"] + 1)
    np.testing.assert_array_equal(got[0]["next.done"], first["next.done"].astype(np.uint8))
    tasks = [bytes(row).rstrip(b"\0").decode() for row in got[0]["task"]]
    assert tasks == first["task"]
    # samples, and a buffer built from them that mlx.data shuffles and batches itself
    samples = list(ds.to_mlx_data())
    assert len(samples) == len(ds)
    buf = dx.buffer_from_vector(samples).shuffle().batch(3)
    assert sum(len(b["index"]) for b in buf) == len(ds)
    stream.reset()
    assert len(list(stream)) == len(got)


@pytest.mark.slow
def test_mlx_training_example_learns(dataset_dir) -> None:
    path = Path(__file__).resolve().parents[1] / "examples" / "train_mlx.py"
    spec = importlib.util.spec_from_file_location("train_mlx", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_mlx"] = module
    spec.loader.exec_module(module)
    result = module.train(dataset_dir("av1"), steps=60, batch_size=8, seed=0)
    assert result["steps"] == 60
    assert result["loss_last"] < 0.7 * result["loss_first"], result


def _with_language(src: Path, dst: Path) -> list[list[dict[str, Any]]]:
    """A copy of ``src`` with LeRobot 0.6's two language columns added to its data tables (one
    plan per episode in ``language_persistent``, an interjection on every third frame in
    ``language_events``; the struct types pyarrow infers, as LeRobot's annotation writer lets it)
    and declared in ``info.json``; returns each row's events as LeRobot reads them."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copytree(src, dst)
    events_of_rows: list[list[dict[str, Any]]] = []
    for path in sorted((dst / "data").rglob("*.parquet")):
        t = pq.read_table(path)
        eps = t.column("episode_index").to_pylist()
        ts = t.column("timestamp").to_pylist()
        persistent = [
            [
                {
                    "role": "assistant",
                    "content": f"plan {e}",
                    "style": "plan",
                    "timestamp": 0.1,
                    "camera": None,
                    "tool_calls": None,
                }
            ]
            for e in eps
        ]
        events = [
            [{"role": "user", "content": f"stop {i}", "style": "interjection", "camera": None, "tool_calls": None}]
            if i % 3 == 0
            else []
            for i in range(len(eps))
        ]
        events_of_rows += events
        t = t.append_column("language_persistent", pa.array(persistent))
        t = t.append_column("language_events", pa.array(events))
        pq.write_table(t, path)
        assert len(ts) == len(eps)
    info = json.loads((dst / "meta" / "info.json").read_text())
    for k in ("language_persistent", "language_events"):
        info["features"][k] = {"dtype": "language", "shape": [1], "names": None}
    (dst / "meta" / "info.json").write_text(json.dumps(info))
    return events_of_rows


def test_language_values_on_numpy_mlx_and_mlx_data(dataset_dir, tmp_path: Path) -> None:
    import json

    events = _with_language(dataset_dir("h264"), tmp_path / "lang")
    ds = roboframes.Dataset(tmp_path / "lang")
    assert ds.language_keys == ["language_persistent", "language_events"]
    # LeRobot's canonical struct: its field order, the float32 timestamp
    plan = ds[0]["language_persistent"][0]
    assert list(plan) == ["role", "content", "style", "timestamp", "camera", "tool_calls"]
    assert plan["timestamp"] == float(np.float32(0.1)) and plan["camera"] is None
    batch = ds.get_batch([0, 1, 3])
    assert batch["language_events"] == [events[0], events[1], events[3]]
    mds = rm.Dataset(tmp_path / "lang")
    assert mds.get_batch([3, 0])["language_events"] == [events[3], events[0]]
    dx = pytest.importorskip("mlx.data")
    assert dx is not None
    got = next(iter(mds.to_mlx_data(batch_size=2)))
    rows = [json.loads(bytes(row).rstrip(b"\0").decode()) for row in got["language_events"]]
    assert rows == [events[0], events[1]]
