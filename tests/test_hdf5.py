"""HDF5 files read in place: ALOHA's one file per episode and robomimic/LIBERO's ``data/demo_<i>``
groups, written here with h5py (the library those projects record with) and compared value by
value with what h5py reads back."""

from __future__ import annotations

import io
import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from PIL import Image

import roboframes
from roboframes.errors import (
    DatasetNotFoundError,
    DeltaTimestampsError,
    ImageDecodeError,
    InvalidArgumentError,
    SourceFormatError,
)

ALOHA_LENGTHS = {"episode_0": 5, "episode_1": 7, "episode_10": 6}  # natural order: 0, 1, 10
FPS = 50


def write_aloha(folder: Path, seed: int = 0, compressed: bool = False) -> Path:
    """ALOHA episode files as ACT's recorder writes them (``record_episodes.py``): images
    chunked a frame at a time; here gzip+shuffle on one camera and lzf on the other, or with
    ``compressed`` JPEG bytes padded to the longest (aloha's compressed recordings)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, t in ALOHA_LENGTHS.items():
        with h5py.File(folder / f"{name}.hdf5", "w") as f:
            f.attrs["sim"] = False
            f.attrs["compress"] = compressed
            obs = f.create_group("observations")
            obs.create_dataset("qpos", data=rng.normal(size=(t, 14)))
            obs.create_dataset("qvel", data=rng.normal(size=(t, 14)).astype(np.float32))
            obs.create_dataset("effort", data=rng.integers(-500, 500, (t, 14)).astype(np.int16))
            images = obs.create_group("images")
            for cam, opts in (
                ("cam_high", {"compression": "gzip", "shuffle": True}),
                ("cam_low", {"compression": "lzf"}),
            ):
                frames = rng.integers(0, 255, (t, 24, 32, 3), dtype=np.uint8)
                if compressed:
                    encoded = []
                    for fr in frames:
                        buf = io.BytesIO()
                        Image.fromarray(fr).save(buf, format="JPEG", quality=90)
                        encoded.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
                    width = max(len(e) for e in encoded) + 17
                    padded = np.zeros((t, width), dtype=np.uint8)
                    for i, e in enumerate(encoded):
                        padded[i, : len(e)] = e
                    images.create_dataset(cam, data=padded, chunks=(1, width))
                else:
                    images.create_dataset(cam, data=frames, chunks=(1, 24, 32, 3), **opts)
            if compressed:
                f.create_dataset("compress_len", data=np.zeros((2, t)))
            f.create_dataset("action", data=rng.normal(size=(t, 14)))
    return folder


DEMOS = {0: 4, 1: 6, 10: 3, 2: 5}  # written out of order; read as demo_0, 1, 2, 10


def write_robomimic(path: Path, seed: int = 1, task: str | None = "put the bowl on the plate") -> Path:
    """A robomimic/LIBERO file: ``data`` with ``env_args`` (control_freq) and LIBERO's
    ``problem_info`` (language_instruction), demos with obs, next_obs, actions, rewards, dones."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Libero_Kitchen", "env_kwargs": {"control_freq": 20}})
        if task is not None:
            data.attrs["problem_info"] = json.dumps({"problem_name": "kitchen", "language_instruction": task})
        total = 0
        for k, t in DEMOS.items():
            g = data.create_group(f"demo_{k}")
            g.attrs["num_samples"] = t
            total += t
            g.create_dataset("actions", data=rng.normal(size=(t, 7)))
            g.create_dataset("rewards", data=rng.normal(size=(t,)).astype(np.float32))
            g.create_dataset("dones", data=(np.arange(t) == t - 1).astype(np.uint8))
            g.create_dataset("states", data=rng.normal(size=(t, 9)))
            obs = g.create_group("obs")
            obs.create_dataset(
                "agentview_rgb",
                data=rng.integers(0, 255, (t, 16, 16, 3), dtype=np.uint8),
                chunks=(1, 16, 16, 3),
                compression="gzip",
            )
            obs.create_dataset("ee_pos", data=rng.normal(size=(t, 3)))
            obs.create_dataset("gripper_closed", data=rng.integers(0, 2, t).astype(bool))
            nxt = g.create_group("next_obs")
            nxt.create_dataset("ee_pos", data=rng.normal(size=(t, 3)))
        data.attrs["total"] = total
    return path


@pytest.fixture(scope="module")
def aloha(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_aloha(tmp_path_factory.mktemp("aloha") / "episodes")


@pytest.fixture(scope="module")
def robomimic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_robomimic(tmp_path_factory.mktemp("robomimic") / "libero_demo.hdf5")


def h5_rows(path: Path, group: str, key: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return np.asarray(f[f"{group}/{key}" if group else key][()])


def test_aloha_items_are_the_files_values(aloha: Path) -> None:
    ds = roboframes.Dataset(aloha, fps=FPS)
    assert ds.format == "hdf5"
    assert len(ds) == sum(ALOHA_LENGTHS.values())
    assert ds.num_episodes == 3 and ds.fps == FPS
    keys = [
        "action",
        "observations/effort",
        "observations/images/cam_high",
        "observations/images/cam_low",
        "observations/qpos",
        "observations/qvel",
    ]
    assert list(ds.features) == [*keys, "timestamp", "frame_index", "episode_index", "index"]
    assert ds.features["observations/images/cam_high"]["dtype"] == "image"
    assert ds.info["source"]["layout"] == "aloha"
    index = 0
    for ep, (name, length) in enumerate(ALOHA_LENGTHS.items()):
        path = aloha / f"{name}.hdf5"
        stored = {k: h5_rows(path, "", k) for k in keys}
        for r in range(length):
            item = ds[index]
            assert int(item["episode_index"]) == ep and int(item["frame_index"]) == r
            assert int(item["index"]) == index
            assert item["timestamp"] == np.float32(r / FPS)
            for k in keys:
                want = stored[k][r]
                if "images" in k:
                    assert item[k].dtype == np.uint8
                    np.testing.assert_array_equal(item[k], want)
                elif want.dtype.kind == "f":
                    assert item[k].dtype == np.float32
                    np.testing.assert_array_equal(item[k], want.astype(np.float32))
                else:  # integers become int64, as LeRobot's items
                    assert item[k].dtype == np.int64
                    np.testing.assert_array_equal(item[k], want.astype(np.int64))
            assert "task" not in item  # the files store none and none was given
            index += 1


def test_aloha_compressed_images_decode_like_pil(tmp_path: Path) -> None:
    folder = write_aloha(tmp_path / "compressed", seed=3, compressed=True)
    ds = roboframes.Dataset(folder, fps=FPS, key_map="lerobot", task="fold the towel")
    assert "compress_len" not in ds.features
    assert ds.features["observation.images.cam_high"]["shape"] == [24, 32, 3]
    b = ds.get_batch(list(range(len(ds))))
    index = 0
    for name, length in ALOHA_LENGTHS.items():
        padded = h5_rows(folder / f"{name}.hdf5", "", "observations/images/cam_high")
        for r in range(length):
            want = np.asarray(Image.open(io.BytesIO(padded[r].tobytes())).convert("RGB"))
            np.testing.assert_array_equal(b["observation.images.cam_high"][index], want)
            index += 1
    assert b["task"] == ["fold the towel"] * len(ds)
    np.testing.assert_array_equal(
        b["observation.state"][:5], h5_rows(folder / "episode_0.hdf5", "", "observations/qpos").astype(np.float32)
    )


def test_robomimic_file_with_lerobot_names(robomimic: Path) -> None:
    ds = roboframes.Dataset(robomimic, key_map="lerobot")
    assert ds.fps == 20  # env_args' control_freq
    assert ds.num_episodes == len(DEMOS)
    assert [e.length for e in ds.episodes()] == [DEMOS[k] for k in sorted(DEMOS)]
    assert "observation.ee_pos" in ds.features and "next_obs/ee_pos" not in ds.features
    assert ds.camera_keys == ["observation.images.agentview_rgb"]
    names = {
        "action": "actions",
        "next.reward": "rewards",
        "next.done": "dones",
        "observation.environment_state": "states",
        "observation.images.agentview_rgb": "obs/agentview_rgb",
        "observation.ee_pos": "obs/ee_pos",
        "observation.gripper_closed": "obs/gripper_closed",
    }
    b = ds.get_batch(list(range(len(ds))))
    start = 0
    for k in sorted(DEMOS):
        t = DEMOS[k]
        for ours, theirs in names.items():
            want = h5_rows(robomimic, f"data/demo_{k}", theirs)
            got = b[ours][start : start + t]
            if want.dtype.kind == "f":
                want = want.astype(np.float32)
            elif want.dtype.kind in "iu":
                want = want.astype(np.int64)
            np.testing.assert_array_equal(got, want, err_msg=f"demo_{k} {ours}")
        start += t
    assert b["observation.gripper_closed"].dtype == np.bool_
    assert set(b["task"]) == {"put the bowl on the plate"}
    assert b["next.reward"].shape == (len(ds),)  # (T,) datasets are scalars per item


def test_windows_and_pads_follow_lerobot(robomimic: Path) -> None:
    ds = roboframes.Dataset(
        robomimic, delta_timestamps={"actions": [-0.05, 0.0, 0.05, 0.1], "obs/agentview_rgb": [-0.05, 0.0]}
    )
    actions = h5_rows(robomimic, "data/demo_0", "actions").astype(np.float32)
    frames = h5_rows(robomimic, "data/demo_0", "obs/agentview_rgb")
    t = DEMOS[0]
    for i in range(t):
        item = ds[i]
        rows = [min(max(i + d, 0), t - 1) for d in (-1, 0, 1, 2)]
        np.testing.assert_array_equal(item["actions"], actions[rows])
        np.testing.assert_array_equal(item["actions_is_pad"], [not 0 <= i + d < t for d in (-1, 0, 1, 2)])
        np.testing.assert_array_equal(item["obs/agentview_rgb"], frames[[max(i - 1, 0), i]])
    with pytest.raises(DeltaTimestampsError):
        roboframes.Dataset(robomimic, delta_timestamps={"actions": [0.01]})


def test_loader_stats_and_workers(aloha: Path) -> None:
    import torch.utils.data

    ds = roboframes.Dataset(aloha, fps=FPS, key_map="lerobot")
    seen: list[int] = []
    loader = roboframes.Loader(ds, batch_size=4, shuffle=True, seed=3)
    for batch in loader:
        seen.extend(int(i) for i in batch["index"])
    assert sorted(seen) == list(range(len(ds)))
    # a DataLoader's worker processes get the pickled dataset and reopen the files
    dl = torch.utils.data.DataLoader(pickle.loads(pickle.dumps(ds)), batch_size=5, num_workers=2)
    states = torch.cat([b["observation.state"] for b in dl])
    want = np.concatenate([h5_rows(aloha / f"{n}.hdf5", "", "observations/qpos") for n in ALOHA_LENGTHS])
    np.testing.assert_array_equal(states.numpy(), want.astype(np.float32))
    stats = ds.compute_stats(progress=False)
    np.testing.assert_allclose(stats["observation.state"]["mean"], want.astype(np.float32).mean(0), rtol=1e-5)
    np.testing.assert_allclose(
        stats["action"]["max"],
        np.concatenate([h5_rows(aloha / f"{n}.hdf5", "", "action") for n in ALOHA_LENGTHS]).astype(np.float32).max(0),
    )
    frames = np.concatenate([h5_rows(aloha / f"{n}.hdf5", "", "observations/images/cam_low") for n in ALOHA_LENGTHS])
    np.testing.assert_allclose(
        stats["observation.images.cam_low"]["mean"].ravel(), (frames / 255.0).mean((0, 1, 2)), rtol=1e-5
    )


def test_validate_reports_a_sound_source(aloha: Path, robomimic: Path) -> None:
    report = roboframes.validate(aloha, "all", fps=FPS, progress=False)
    assert report.ok, report
    assert report.episodes == 3 and report.frames == 18 and report.frames_decoded == 2 * 18
    assert roboframes.Dataset(robomimic).validate(progress=False).ok


def test_missing_frame_rate_and_bad_options(aloha: Path, robomimic: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceFormatError, match="fps="):
        roboframes.Dataset(aloha)
    with pytest.raises(InvalidArgumentError, match="fps"):
        roboframes.Dataset(aloha, fps=0)
    with pytest.raises(InvalidArgumentError, match="not a key"):
        roboframes.Dataset(robomimic, key_map={"obs/nope": "x"})
    with pytest.raises(InvalidArgumentError, match="both be named"):
        roboframes.Dataset(robomimic, key_map={"rewards": "actions"})
    with pytest.raises(InvalidArgumentError, match="LeRobot's own column"):
        roboframes.Dataset(robomimic, key_map={"rewards": "timestamp"})
    with pytest.raises(InvalidArgumentError, match="format"):
        roboframes.Dataset(robomimic, format="zarr")
    with pytest.raises(DatasetNotFoundError):
        roboframes.Dataset(tmp_path / "nothing.hdf5", format="hdf5")
    # a LeRobot root asked to be read as HDF5 holds no HDF5 files
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no .hdf5"):
        roboframes.Dataset(tmp_path / "empty", format="hdf5")


def broken(tmp_path: Path, robomimic: Path, edit: Any) -> Path:
    path = tmp_path / f"broken_{edit.__name__}.hdf5"
    shutil.copy(robomimic, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def test_a_demo_without_actions_is_named(robomimic: Path, tmp_path: Path) -> None:
    def no_actions(f: h5py.File) -> None:
        del f["data/demo_2/actions"]

    path = broken(tmp_path, robomimic, no_actions)
    with pytest.raises(SourceFormatError) as e:
        roboframes.Dataset(path)
    assert "data/demo_2" in str(e.value) and e.value.key == "actions" and e.value.path == str(path)
    report = roboframes.validate(path, progress=False)
    assert not report.ok and "demo_2" in str(report)


def test_episodes_that_disagree_are_errors_naming_group_and_key(robomimic: Path, tmp_path: Path) -> None:
    def short_states(f: h5py.File) -> None:
        del f["data/demo_1/states"]
        f["data/demo_1"].create_dataset("states", data=np.zeros((2, 9)))

    path = broken(tmp_path, robomimic, short_states)
    ds = roboframes.Dataset(path)
    ds[0]  # demo_0 is sound
    with pytest.raises(SourceFormatError) as e:
        ds[DEMOS[0]]  # the first item of demo_1
    assert "data/demo_1" in str(e.value) and e.value.key == "states" and e.value.episode == 1
    report = roboframes.validate(path, progress=False)
    assert [f.episode for f in report.errors] == [1]

    def missing_camera(f: h5py.File) -> None:
        del f["data/demo_2/obs/agentview_rgb"]

    path = broken(tmp_path, robomimic, missing_camera)
    with pytest.raises(SourceFormatError, match="no dataset 'obs/agentview_rgb'"):
        roboframes.Dataset(path).get_batch([DEMOS[0] + DEMOS[1]])  # the first item of demo_2


def test_a_file_replaced_after_open_is_not_read(robomimic: Path, tmp_path: Path) -> None:
    """A file replaced (or rewritten) after the dataset was opened is an error, in this process
    and in a forked DataLoader worker alike: never the new file's values under the old
    episodes, nor a stale handle's."""
    import torch.utils.data

    path = tmp_path / "replaced.hdf5"
    shutil.copy(robomimic, path)
    ds = roboframes.Dataset(path)
    ds[0]
    write_robomimic(tmp_path / "new.hdf5", seed=9)
    (tmp_path / "new.hdf5").replace(path)
    with pytest.raises(SourceFormatError, match="changed after the dataset was opened"):
        ds[1]
    # (fork: the worker inherits this dataset, as a DataLoader's workers do on Linux)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1, multiprocessing_context="fork")
    with pytest.raises(Exception, match="changed after the dataset was opened"):
        next(iter(loader))
    np.testing.assert_array_equal(
        roboframes.Dataset(path)[0]["actions"], h5_rows(path, "data/demo_0", "actions")[0].astype(np.float32)
    )


def test_damaged_files(robomimic: Path, aloha: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.hdf5"
    data = robomimic.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceFormatError) as e:
        roboframes.Dataset(truncated)
    assert e.value.path == str(truncated)
    not_hdf5 = tmp_path / "text.hdf5"
    not_hdf5.write_text("not an hdf5 file")
    with pytest.raises(SourceFormatError, match="cannot open"):
        roboframes.Dataset(not_hdf5)
    other = tmp_path / "other.h5"  # neither layout
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(SourceFormatError, match="neither an ALOHA"):
        roboframes.Dataset(other)
    # a corrupt gzip chunk of one camera frame: that frame's read fails, naming the dataset
    folder = tmp_path / "aloha"
    shutil.copytree(aloha, folder)
    path = folder / "episode_1.hdf5"
    with h5py.File(path, "r") as f:
        offset = f["observations/images/cam_high"].id.get_chunk_info(2).byte_offset
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 64] = bytes(64)
    path.write_bytes(bytes(raw))
    reader = roboframes.Dataset(folder, fps=FPS)
    reader[ALOHA_LENGTHS["episode_0"] + 1]  # another frame of the episode reads
    with pytest.raises(SourceFormatError) as e:
        reader[ALOHA_LENGTHS["episode_0"] + 2]
    assert "row 2" in str(e.value) and e.value.key == "/observations/images/cam_high"
    assert e.value.path == str(path) and e.value.episode == 1
    report = roboframes.validate(folder, "all", fps=FPS, progress=False)
    assert [(f.check, f.episode) for f in report.errors] == [("decode", 1)]


def test_jpeg_rows_that_are_not_images(tmp_path: Path) -> None:
    folder = write_aloha(tmp_path / "compressed", seed=4, compressed=True)
    with h5py.File(folder / "episode_1.hdf5", "r+") as f:
        f["observations/images/cam_low"][3] = 7  # every byte: not an image
    ds = roboframes.Dataset(folder, fps=FPS)
    with pytest.raises(ImageDecodeError) as e:
        ds[ALOHA_LENGTHS["episode_0"] + 3]
    assert e.value.key == "observations/images/cam_low" and e.value.episode == 1


def test_frames_stored_every_way_read_as_h5py_reads_them(tmp_path: Path) -> None:
    """Frames read directly from their chunks and through libhdf5's pipeline alike: a deflated
    chunk, one whose deflate filter was skipped (its filter mask), chunks of several frames, a
    contiguous dataset, and booleans; a frame never written is an error, not its fill value."""
    rng = np.random.default_rng(5)
    t = 4
    frames = rng.integers(0, 255, (t, 8, 12, 3), dtype=np.uint8)
    path = tmp_path / "episode_0.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("action", data=rng.normal(size=(t, 2)))
        f.create_dataset("observations/half", data=rng.normal(size=(t, 3)).astype(np.float16))
        images = f.create_group("observations/images")
        d = images.create_dataset("masked", (t, 8, 12, 3), dtype=np.uint8, chunks=(1, 8, 12, 3), compression="gzip")
        d[0], d[2], d[3] = frames[0], frames[2], frames[3]
        d.id.write_direct_chunk((1, 0, 0, 0), frames[1].tobytes(), filter_mask=1)  # deflate skipped
        images.create_dataset("multi", data=frames, chunks=(2, 8, 12, 3), compression="gzip")
        images.create_dataset("contiguous", data=frames)
    ds = roboframes.Dataset(path, fps=10)
    b = ds.get_batch(list(range(t)))
    for cam in ("masked", "multi", "contiguous"):
        np.testing.assert_array_equal(b[f"observations/images/{cam}"], h5_rows(path, "", f"observations/images/{cam}"))
    np.testing.assert_array_equal(b["observations/half"], h5_rows(path, "", "observations/half").astype(np.float32))
    del ds  # (closes its files: h5py writes only to a file nobody holds open)
    with h5py.File(path, "r+") as f:
        f.create_dataset(
            "observations/images/holey", (t, 8, 12, 3), dtype=np.uint8, chunks=(1, 8, 12, 3), compression="gzip"
        )[0] = frames[0]
    holey = roboframes.Dataset(path, fps=10)
    holey[0]
    with pytest.raises(SourceFormatError, match="row 1: the frame was never written"):
        holey[1]


def test_booleans_that_are_not_booleans_are_errors(tmp_path: Path) -> None:
    """h5py stores booleans as an int8 enum; a byte other than 0 or 1 there is damage, named."""
    path = tmp_path / "episode_0.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("action", data=np.zeros((3, 2)))
        flags = f.create_dataset("observations/flag", data=np.array([True, False, True]))
        raw = flags.id.get_offset()
    data = bytearray(path.read_bytes())
    data[raw + 1] = 7
    path.write_bytes(bytes(data))
    with pytest.raises(SourceFormatError, match="element 1 is 7, not a boolean") as e:
        roboframes.Dataset(path, fps=10)[0]
    assert e.value.key == "observations/flag"


def test_mlx_surface_reads_hdf5(aloha: Path) -> None:
    import mlx.core as mx

    import roboframes.mlx as rmx

    ds = rmx.Dataset(aloha, fps=FPS, key_map="lerobot")
    ref = roboframes.Dataset(aloha, fps=FPS, key_map="lerobot")
    b = ds.get_batch([0, 9, 17])
    want = ref.get_batch([0, 9, 17])
    for k in ("observation.images.cam_low", "observation.state", "index"):
        assert isinstance(b[k], mx.array)
        np.testing.assert_array_equal(np.array(b[k]), want[k])


def test_what_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    """A task that is not text, a numeric dataset only partly written, a JPEG whose scan is
    damaged (PIL refuses it too), and a camera whose header claims an absurd size."""
    rng = np.random.default_rng(3)
    t = 3

    def episode(name: str, **edit: Any) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        path = folder / "episode_0.hdf5"
        with h5py.File(path, "w") as f:
            f.create_dataset("action", data=rng.normal(size=(t, 2)))
            if "task" in edit:
                f.attrs["task"] = edit["task"]
            q = f.create_dataset("observations/qpos", (t, 4), dtype=np.float64, chunks=(1, 4))
            q[0 : (1 if edit.get("partial") else t)] = 1.0
            if "jpeg" in edit:
                rows = np.zeros((t, len(edit["jpeg"])), dtype=np.uint8)
                rows[:] = np.frombuffer(edit["jpeg"], dtype=np.uint8)
                f.create_dataset("observations/images/top", data=rows)
        return folder

    with pytest.raises(SourceFormatError, match="not UTF-8 text"):
        roboframes.Dataset(episode("task", task=b"\xff\xfe"), fps=10)
    with pytest.raises(SourceFormatError, match="not a string") as e:
        roboframes.Dataset(episode("numeric_task", task=3), fps=10)
    assert e.value.key == "task"
    # numpy's fixed-length bytes (h5py's fixed-length strings) are a task like any string
    fixed = roboframes.Dataset(episode("fixed_task", task=np.bytes_(b"wipe the table")), fps=10)
    assert fixed[0]["task"] == "wipe the table"
    with pytest.raises(SourceFormatError, match="only 1 of its 3 chunks") as e:
        roboframes.Dataset(episode("partial", partial=True), fps=10)[0]
    assert e.value.key == "observations/qpos"
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(buf, format="JPEG")
    good = buf.getvalue()
    sos = good.index(b"\xff\xda")
    damaged = good[: sos + 40] + b"\xff\x03" + good[sos + 40 :]
    with pytest.raises(OSError):
        Image.open(io.BytesIO(damaged)).load()  # PIL refuses it
    with pytest.raises(ImageDecodeError):
        roboframes.Dataset(episode("damaged", jpeg=damaged), fps=10)[0]
    sof = good.index(b"\xff\xc0")
    huge = bytearray(good)
    huge[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2  # height, width
    with pytest.raises(InvalidArgumentError, match="not a recording"):
        roboframes.Dataset(episode("huge", jpeg=bytes(huge)), fps=10)
