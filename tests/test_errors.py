"""Broken inputs give a roboframes exception naming the file, episode and key: never a crash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import roboframes
from roboframes import errors

CAM = "observation.images.top"


@pytest.fixture
def broken(dataset_dir, tmp_path: Path):
    """A fresh copy of the AV1 fixture to damage."""
    dst = tmp_path / "ds"
    shutil.copytree(dataset_dir("av1"), dst)
    return dst


def read_everything(root: Path, **kw) -> None:
    ds = roboframes.Dataset(root, **kw)
    for i in range(len(ds)):
        ds[i]


def video_file(root: Path, key: str = CAM) -> Path:
    return next((root / "videos" / key).rglob("*.mp4"))


def data_file(root: Path) -> Path:
    return next((root / "data").rglob("*.parquet"))


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(errors.DatasetNotFoundError) as e:
        roboframes.Dataset(tmp_path / "nope")
    assert "nope" in str(e.value)
    assert isinstance(e.value, FileNotFoundError)


def test_missing_info(broken: Path) -> None:
    (broken / "meta" / "info.json").unlink()
    with pytest.raises(errors.DatasetNotFoundError) as e:
        roboframes.Dataset(broken)
    assert e.value.path.endswith("info.json")


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: json.dumps({k: v for k, v in d.items() if k != "features"}), "features"),
        (lambda d: json.dumps({**d, "fps": "fast"}), "fps"),
        (lambda d: json.dumps({**d, "codebase_version": "v1.6"}), "v1.6"),
        (
            lambda d: json.dumps({**d, "features": {**d["features"], "x": {"dtype": "complex", "shape": [1]}}}),
            "'x'",
        ),
    ],
)
def test_malformed_info(broken: Path, mutate, needle: str) -> None:
    p = broken / "meta" / "info.json"
    p.write_text(mutate(json.loads(p.read_text())))
    with pytest.raises(errors.MetadataError) as e:
        roboframes.Dataset(broken)
    assert needle in str(e.value)
    assert "info.json" in str(e.value)


def test_v3_root_labelled_v21(broken: Path) -> None:
    """A v3.0 root whose info.json says v2.1 is looked for in v2.1's files, and says so."""
    p = broken / "meta" / "info.json"
    p.write_text(json.dumps({**json.loads(p.read_text()), "codebase_version": "v2.1"}))
    with pytest.raises(errors.DatasetNotFoundError) as e:
        roboframes.Dataset(broken)
    assert "episodes.jsonl" in str(e.value) and "v2.x" in str(e.value)


def test_missing_data_column(broken: Path) -> None:
    p = data_file(broken)
    t = pq.read_table(p).drop_columns(["action"])
    pq.write_table(t, p)
    ds = roboframes.Dataset(broken)
    with pytest.raises(errors.MetadataError) as e:
        ds[0]
    assert "action" in str(e.value) and str(p.name) in str(e.value)


def test_truncated_parquet(broken: Path) -> None:
    p = data_file(broken)
    b = p.read_bytes()
    p.write_bytes(b[: len(b) // 2])
    ds = roboframes.Dataset(broken)
    with pytest.raises(errors.ParquetError) as e:
        ds[0]
    assert p.name in str(e.value) and e.value.episode is not None


def test_corrupt_episodes_parquet(broken: Path) -> None:
    p = next((broken / "meta" / "episodes").rglob("*.parquet"))
    p.write_bytes(b"PAR1 garbage")
    with pytest.raises(errors.ParquetError) as e:
        roboframes.Dataset(broken)
    assert p.name in str(e.value)


def test_missing_data_file(broken: Path) -> None:
    data_file(broken).unlink()
    ds = roboframes.Dataset(broken)
    with pytest.raises(errors.DatasetNotFoundError) as e:
        ds[0]
    assert e.value.episode == 0


def test_inconsistent_episode_metadata(broken: Path) -> None:
    p = next((broken / "meta" / "episodes").rglob("*.parquet"))
    t = pq.read_table(p)
    to = t.column("dataset_to_index").to_pylist()
    to[1] += 1
    t = t.set_column(t.schema.get_field_index("dataset_to_index"), "dataset_to_index", pa.array(to, pa.int64()))
    pq.write_table(t, p)
    with pytest.raises(errors.MetadataError) as e:
        roboframes.Dataset(broken)
    assert e.value.episode == 1


def test_missing_video(broken: Path) -> None:
    v = video_file(broken)
    v.unlink()
    ds = roboframes.Dataset(broken)
    with pytest.raises(errors.DatasetNotFoundError) as e:
        ds[0]
    assert e.value.key == CAM and e.value.episode == 0 and v.name in e.value.path


def test_garbage_video(broken: Path) -> None:
    v = video_file(broken)
    v.write_bytes(b"\x00" * 1000)
    ds = roboframes.Dataset(broken)
    with pytest.raises(errors.VideoDecodeError) as e:
        ds[0]
    assert e.value.key == CAM and e.value.episode is not None


def test_truncated_video(broken: Path) -> None:
    v = video_file(broken)
    b = v.read_bytes()
    v.write_bytes(b[: len(b) * 2 // 3])
    with pytest.raises(errors.VideoDecodeError) as e:
        read_everything(broken)
    assert e.value.key == CAM


def test_corrupted_video_payload(broken: Path) -> None:
    """Random bytes inside the frame data: an error or a frame, never a crash or hang."""
    v = video_file(broken)
    b = bytearray(v.read_bytes())
    rng = np.random.default_rng(1)
    mdat = b.find(b"mdat")
    for off in rng.integers(mdat + 8, len(b), 64):
        b[off] = int(rng.integers(0, 256))
    v.write_bytes(bytes(b))
    try:
        read_everything(broken)
    except errors.Error as e:
        assert e.key == CAM


def test_unsupported_codec(broken: Path) -> None:
    v = video_file(broken)
    b = v.read_bytes()
    assert b"av01" in b
    v.write_bytes(b.replace(b"av01", b"zz99"))
    ds = roboframes.Dataset(broken)
    with pytest.raises(errors.UnsupportedCodecError) as e:
        ds[0]
    assert e.value.key == CAM


def test_frame_outside_tolerance(broken: Path) -> None:
    p = next((broken / "meta" / "episodes").rglob("*.parquet"))
    t = pq.read_table(p)
    col = f"videos/{CAM}/from_timestamp"
    shifted = [x + 0.03 for x in t.column(col).to_pylist()]
    t = t.set_column(t.schema.get_field_index(col), col, pa.array(shifted, pa.float64()))
    pq.write_table(t, p)
    ds = roboframes.Dataset(broken)
    with pytest.raises(errors.FrameTimestampError) as e:
        ds[0]
    assert isinstance(e.value, ValueError)
    assert e.value.key == CAM and e.value.episode == 0 and "tolerance" in str(e.value)
    # a looser tolerance accepts the nearest frame
    roboframes.Dataset(broken, tolerance_s=0.04)[0]


def test_index_out_of_range(dataset_dir) -> None:
    ds = roboframes.Dataset(dataset_dir("av1"))
    with pytest.raises(IndexError):
        ds[len(ds)]
    with pytest.raises(errors.IndexOutOfRangeError) as e:
        ds.get_batch([0, -len(ds) - 1])
    assert f"index {-len(ds) - 1} out of range" in str(e.value)
    with pytest.raises(errors.IndexOutOfRangeError):
        ds.get_batch([2**62])


def test_negative_indices_count_from_the_end(dataset_dir) -> None:
    """The core resolves negative indices, for every surface alike."""
    ds = roboframes.Dataset(dataset_dir("av1"), delta_timestamps={"action": [-0.1, 0.0]})
    n = len(ds)
    for neg, pos in ((-1, n - 1), (-n, 0), (-3, n - 3)):
        a, b = ds[neg], ds[pos]
        assert list(a) == list(b)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_error_classes_carry_their_location() -> None:
    """Errors take (message, path, episode, key); OSError subclasses keep the plain message,
    and every class pickles with its location (DataLoader workers send them to the parent)."""
    import pickle

    for cls, base in (
        (errors.DatasetNotFoundError, FileNotFoundError),
        (errors.FileReadError, OSError),
        (errors.FrameTimestampError, ValueError),
        (errors.InternalError, RuntimeError),
    ):
        e = cls("file 'x.mp4', episode 3, key 'cam': broken", "x.mp4", 3, "cam")
        assert isinstance(e, (errors.Error, base))
        assert str(e) == "file 'x.mp4', episode 3, key 'cam': broken"
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is cls and str(back) == str(e)
        assert (back.path, back.episode, back.key) == ("x.mp4", 3, "cam")
    assert errors.MetadataError("no location").path is None


def test_bad_delta_timestamps(dataset_dir) -> None:
    root = dataset_dir("av1")
    with pytest.raises(ValueError):
        roboframes.Dataset(root, delta_timestamps={"action": [0.0, 0.05]})
    with pytest.raises(errors.DeltaTimestampsError) as e:
        roboframes.Dataset(root, delta_timestamps={"no.such.key": [0.0]})
    assert "no.such.key" in str(e.value)


def test_unknown_episode(dataset_dir) -> None:
    with pytest.raises(errors.InvalidArgumentError) as e:
        roboframes.Dataset(dataset_dir("av1"), episodes=[0, 99])
    assert "99" in str(e.value)


def test_corrupt_embedded_image(broken: Path) -> None:
    p = data_file(broken)
    t = pq.read_table(p)
    key = "observation.images.still"
    col = t.column(key).to_pylist()
    col[0] = {"bytes": b"\x89PNG not really", "path": None}
    t = t.set_column(t.schema.get_field_index(key), t.schema.field(key), pa.array(col, t.schema.field(key).type))
    pq.write_table(t, p)
    ds = roboframes.Dataset(broken)
    with pytest.raises(errors.ImageDecodeError) as e:
        ds[0]
    assert e.value.key == key and e.value.episode == 0
    ds[1]  # other rows still read


def _edit_info(root: Path, edit) -> None:
    p = root / "meta" / "info.json"
    info = json.loads(p.read_text())
    edit(info)
    p.write_text(json.dumps(info, indent=4))


def test_video_size_disagreeing_with_info(broken: Path) -> None:
    """Swapped height and width have the right byte count: refused, not scrambled."""

    def swap(info: dict) -> None:
        h, w, c = info["features"][CAM]["shape"]
        info["features"][CAM]["shape"] = [w, h, c]

    _edit_info(broken, swap)
    with pytest.raises(errors.MetadataError) as e:
        roboframes.Dataset(broken)[0]
    assert e.value.key == CAM and "info.json says 64x96" in str(e.value)


def test_embedded_image_channels_disagreeing_with_info(broken: Path) -> None:
    key = "observation.images.still"
    _edit_info(broken, lambda info: info["features"][key].update(shape=[24, 40, 4]))
    with pytest.raises(errors.ImageDecodeError) as e:
        roboframes.Dataset(broken)[0]
    assert e.value.key == key and "3 channels" in str(e.value) and "says 4" in str(e.value)


def test_stats_with_nan_and_infinity(broken: Path) -> None:
    """Python's json (which LeRobot writes stats with) allows NaN and Infinity."""
    p = broken / "meta" / "stats.json"
    stats = json.loads(p.read_text())
    stats["next.reward"]["min"] = [float("nan")]
    stats["next.reward"]["max"] = [float("inf")]
    p.write_text(json.dumps(stats))
    ds = roboframes.Dataset(broken)
    assert np.isnan(ds.stats["next.reward"]["min"][0]) and np.isinf(ds.stats["next.reward"]["max"][0])
    p.write_text("{broken")
    with pytest.raises(errors.MetadataError) as e:
        _ = roboframes.Dataset(broken).stats
    assert e.value.path.endswith("stats.json")


def test_native_fill_checks_its_buffers(dataset_dir) -> None:
    """The native layer refuses buffers of the wrong element type or that overlap."""
    ds = roboframes.Dataset(dataset_dir("av1"))
    outs = ds.output_specs()
    good = [None if not o.is_array else np.empty((1, *o.shape), o.dtype) for o in outs]
    ds._native.fill([0], good)
    i = next(n for n, o in enumerate(outs) if o.key == "index")
    wrong = list(good)
    wrong[i] = np.empty((1,), dtype=object)
    with pytest.raises(errors.InternalError, match="int64"):
        ds._native.fill([0], wrong)
    shared = list(good)
    j = next(n for n, o in enumerate(outs) if o.key == "frame_index")
    shared[j] = shared[i]
    with pytest.raises(errors.InternalError, match="overlap"):
        ds._native.fill([0], shared)
