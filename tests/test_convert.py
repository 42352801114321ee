"""``roboframes convert``: HDF5 files written as a LeRobot v3.0 dataset by LeRobot's own writer,
read back by LeRobot's ``LeRobotDataset`` and by roboframes; re-running is safe."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import roboframes
from roboframes.cli import main
from roboframes.convert import RECORD, UNDER_WAY, convert
from roboframes.errors import InvalidArgumentError
from test_hdf5 import DEMOS, h5_rows, write_robomimic

LENGTHS = (6, 8, 5)


def write_smooth_aloha(folder: Path) -> Path:
    """ALOHA episode files whose frames are smooth gradients (video codecs keep them within a
    few levels, unlike noise)."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:32, 0:48]
    for e, t in enumerate(LENGTHS):
        with h5py.File(folder / f"episode_{e}.hdf5", "w") as f:
            f.attrs["fps"] = 30
            f.create_dataset("observations/qpos", data=rng.normal(size=(t, 6)))
            f.create_dataset("action", data=rng.normal(size=(t, 6)))
            frames = np.stack(
                [
                    np.stack([(xx * 4 + i * 3) % 256, (yy * 6 + e * 20) % 256, np.full_like(xx, 90 + i * 5)], -1)
                    for i in range(t)
                ]
            ).astype(np.uint8)
            f.create_dataset("observations/images/top", data=frames, chunks=(1, 32, 48, 3), compression="gzip")
    return folder


@pytest.fixture(scope="module")
def aloha(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_smooth_aloha(tmp_path_factory.mktemp("convert") / "aloha")


def test_converted_dataset_is_read_by_lerobot(aloha: Path, tmp_path: Path) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    out = convert(aloha, tmp_path / "lerobot", task="stack the cups", progress=False)
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["fps"] == 30 and info["total_episodes"] == 3 and info["total_frames"] == sum(LENGTHS)
    assert info["features"]["observation.images.top"]["dtype"] == "video"
    lr = LeRobotDataset("roboframes/lerobot", root=out)
    src = roboframes.Dataset(aloha, task="stack the cups", key_map="lerobot")
    assert len(lr) == len(src)
    for i in range(len(src)):
        theirs, ours = lr[i], src[i]
        assert theirs["task"] == "stack the cups"
        for k in ("observation.state", "action", "episode_index", "frame_index", "index"):
            np.testing.assert_array_equal(theirs[k].numpy(), ours[k])
        assert float(theirs["timestamp"]) == pytest.approx(float(ours["timestamp"]), abs=1e-6)
        frame = theirs["observation.images.top"].numpy().transpose(1, 2, 0) * 255
        assert np.abs(frame - ours["observation.images.top"]).mean() < 3  # lossy video, smooth frames
    # and roboframes reads the converted dataset like LeRobot
    back = roboframes.Dataset(out)
    np.testing.assert_array_equal(back.get_batch([0, 7])["action"], src.get_batch([0, 7])["action"])


def test_rerunning_is_safe(aloha: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out"
    convert(aloha, dst, task="t", episodes=[2, 0], progress=False)
    record = json.loads((dst / "meta" / RECORD).read_text())
    assert record["episodes"] == [0, 2]  # in the source's order, renumbered 0, 1
    assert roboframes.Dataset(dst).num_episodes == 2
    assert [e.length for e in roboframes.Dataset(dst).episodes()] == [LENGTHS[0], LENGTHS[2]]
    stamp = (dst / "meta" / "info.json").stat().st_mtime_ns
    assert convert(aloha, dst, task="t", episodes=[0, 2], progress=False) == dst  # done: nothing written
    assert (dst / "meta" / "info.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="not this conversion"):
        convert(aloha, dst, task="another task", progress=False)
    # an interrupted conversion's leftovers are cleared, not mixed in
    partial = tmp_path / "again.partial"
    (partial / "meta").mkdir(parents=True)
    (partial / "meta" / "junk").write_text("x")
    with pytest.raises(FileExistsError, match="not an interrupted conversion"):
        convert(aloha, tmp_path / "again", task="t", episodes=[1], progress=False)  # not ours: kept
    assert (partial / "meta" / "junk").exists()
    (partial / UNDER_WAY).write_text("{}")
    convert(aloha, tmp_path / "again", task="t", episodes=[1], progress=False)
    assert not partial.exists() and not (tmp_path / "again" / "meta" / "junk").exists()
    assert not (tmp_path / "again" / UNDER_WAY).exists()


def test_refusals(aloha: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="pass task="):
        convert(aloha, tmp_path / "x", progress=False)
    with pytest.raises(InvalidArgumentError, match="cannot hold '/'"):
        convert(aloha, tmp_path / "x", task="t", key_map=None, progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_robomimic_file_and_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_robomimic(tmp_path / "demo.hdf5")
    dst = tmp_path / "libero_lerobot"
    assert main(["convert", str(src), str(dst), "--episodes", "0", "1", "--no-videos"]) == 0
    assert "LeRobot v3.0 dataset" in capsys.readouterr().out
    ds = roboframes.Dataset(dst)
    assert ds.fps == 20 and ds.num_episodes == 2 and set(ds.tasks.values()) == {"put the bowl on the plate"}
    assert ds.features["observation.images.agentview_rgb"]["dtype"] == "image"  # PNG in the tables: lossless
    b = ds.get_batch(list(range(DEMOS[0])))
    np.testing.assert_array_equal(
        b["observation.images.agentview_rgb"], h5_rows(src, "data/demo_0", "obs/agentview_rgb")
    )
    np.testing.assert_array_equal(b["action"], h5_rows(src, "data/demo_0", "actions").astype(np.float32))
    # the command on the HDF5 source itself
    assert main(["info", str(src)]) == 0
    assert "HDF5, robomimic layout" in capsys.readouterr().out
    assert main(["validate", str(src), "--key-map", "lerobot"]) == 0
    assert main(["convert", str(src), str(dst), "--episodes", "0", "1", "--no-videos"]) == 0  # done already
    assert main(["convert", str(src), str(dst)]) == 2  # another conversion: refused
    assert "not this conversion" in capsys.readouterr().err
