"""RLDS datasets (Open X-Embodiment's TFDS layout) read in place: the fixtures are written by
TensorFlow Datasets' own builder and read back by tfds (tests/rlds_writer.py, in a process of
its own), and every value roboframes reads is compared with what tfds read, images included
(decoded with TensorFlow's IDCT)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import roboframes
from roboframes.errors import DatasetNotFoundError, InvalidArgumentError, MetadataError, SourceFormatError

WRITER = Path(__file__).with_name("rlds_writer.py")
FPS = 10
KEYS = [
    "observation/image",
    "observation/wrist_image",
    "observation/state",
    "action",
    "reward",
    "is_first",
    "is_last",
    "step_id",
    "language_embedding",
]


def write_rlds(out: Path, **spec: object) -> tuple[Path, dict[str, np.ndarray]]:
    """An RLDS dataset written by tfds under ``out``: its builder folder and what tfds reads."""
    r = subprocess.run(
        [sys.executable, str(WRITER), str(out), json.dumps(spec)], capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    folder = Path(r.stdout.strip().splitlines()[-1])
    with np.load(out / "expected.npz") as z:
        return folder, {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def rlds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    return write_rlds(tmp_path_factory.mktemp("rlds"), episodes=[5, 3, 7, 4], image_hw=[24, 32], shards=2)


def test_items_are_what_tfds_reads(rlds: tuple[Path, dict[str, np.ndarray]]) -> None:
    folder, expected = rlds
    assert len(list(folder.glob("*.tfrecord-*"))) == 2
    ds = roboframes.Dataset(folder.parent, fps=FPS)  # the dataset's folder: its only version is found
    assert ds.format == "rlds" and ds.info["source"]["split"] == "train"
    episodes = sum(1 for k in expected if k.endswith("/length"))
    assert ds.num_episodes == episodes
    b = ds.get_batch(list(range(len(ds))))
    start = 0
    for e in range(episodes):
        n = int(expected[f"{e}/length"])
        for k in KEYS:
            want = expected[f"{e}/{k}"]
            want = (
                want.astype(np.int64)
                if want.dtype.kind in "iu" and k != "observation/image" and "image" not in k
                else want
            )
            np.testing.assert_array_equal(b[k][start : start + n], want, err_msg=f"episode {e} {k}")
        assert list(b["task"][start : start + n]) == list(expected[f"{e}/language_instruction"])
        np.testing.assert_array_equal(b["frame_index"][start : start + n], np.arange(n))
        np.testing.assert_array_equal(b["timestamp"][start : start + n], (np.arange(n) / FPS).astype(np.float32))
        start += n
    assert b["observation/image"].dtype == np.uint8 and b["is_first"].dtype == np.bool_
    assert "discount" in ds.features and "language_instruction" not in ds.features


def test_lerobot_names_windows_loader_stats(rlds: tuple[Path, dict[str, np.ndarray]]) -> None:
    folder, expected = rlds
    ds = roboframes.Dataset(
        folder,
        fps=FPS,
        key_map="lerobot",
        delta_timestamps={"action": [0.0, 0.1, 0.2], "observation.images.image": [-0.1, 0.0]},
    )
    assert {
        "observation.images.image",
        "observation.images.wrist_image",
        "observation.state",
        "next.reward",
        "next.done",
    } <= set(ds.features)
    n0 = int(expected["0/length"])
    item = ds[n0 - 1]  # the last step of episode 0: the action window runs past its end
    np.testing.assert_array_equal(item["action"], expected["0/action"][[n0 - 1] * 3])
    np.testing.assert_array_equal(item["action_is_pad"], [False, True, True])
    np.testing.assert_array_equal(item["observation.images.image"], expected["0/observation/image"][[n0 - 2, n0 - 1]])
    seen = sorted(
        int(i)
        for b in roboframes.Dataset(folder, fps=FPS).loader(batch_size=4, shuffle=True, seed=1)
        for i in b["index"]
    )
    assert seen == list(range(len(ds)))
    stats = roboframes.Dataset(folder, fps=FPS).compute_stats(progress=False)
    actions = np.concatenate([expected[f"{e}/action"] for e in range(ds.num_episodes)])
    np.testing.assert_allclose(stats["action"]["mean"], actions.mean(0), rtol=1e-5, atol=1e-6)
    report = roboframes.validate(folder, "all", fps=FPS, progress=False)
    assert report.ok, report
    assert report.frames_decoded == 2 * len(ds) and report.data_files == 2


def copy(folder: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy" / folder.name
    shutil.copytree(folder, out)
    return out


def test_damaged_shards_are_errors_naming_file_and_record(
    rlds: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    folder, _ = rlds
    # a flipped byte inside a record: its CRC
    bad = copy(folder, tmp_path / "crc")
    shard = sorted(bad.glob("*.tfrecord-*"))[1]
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(SourceFormatError, match="CRC") as e:
        roboframes.Dataset(bad, fps=FPS)
    assert e.value.path == str(shard) and "record" in str(e.value)
    report = roboframes.validate(bad, fps=FPS, progress=False)
    assert not report.ok and "CRC" in str(report)
    # a truncated shard
    cut = copy(folder, tmp_path / "cut")
    shard = sorted(cut.glob("*.tfrecord-*"))[0]
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(SourceFormatError, match="truncated|does not fit"):
        roboframes.Dataset(cut, fps=FPS)
    # a missing shard
    gone = copy(folder, tmp_path / "gone")
    sorted(gone.glob("*.tfrecord-*"))[1].unlink()
    with pytest.raises(DatasetNotFoundError, match="shard"):
        roboframes.Dataset(gone, fps=FPS)


def test_metadata_that_disagrees(rlds: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    folder, _ = rlds
    counts = copy(folder, tmp_path / "counts")
    info = json.loads((counts / "dataset_info.json").read_text())
    info["splits"][0]["shardLengths"][0] = str(int(info["splits"][0]["shardLengths"][0]) + 1)
    (counts / "dataset_info.json").write_text(json.dumps(info))
    with pytest.raises(SourceFormatError, match="dataset_info.json says"):
        roboframes.Dataset(counts, fps=FPS)
    no_steps = copy(folder, tmp_path / "steps")
    feats = json.loads((no_steps / "features.json").read_text())
    del feats["featuresDict"]["features"]["steps"]
    (no_steps / "features.json").write_text(json.dumps(feats))
    with pytest.raises(MetadataError, match="not an RLDS dataset"):
        roboframes.Dataset(no_steps, fps=FPS)
    # a step feature the records lack
    extra = copy(folder, tmp_path / "extra")
    feats = json.loads((extra / "features.json").read_text())
    step = feats["featuresDict"]["features"]["steps"]["sequence"]["feature"]["featuresDict"]["features"]
    step["torque"] = {
        "pythonClassName": "tensorflow_datasets.core.features.tensor_feature.Tensor",
        "tensor": {"shape": {"dimensions": ["3"]}, "dtype": "float32", "encoding": "none"},
    }
    (extra / "features.json").write_text(json.dumps(feats))
    with pytest.raises(SourceFormatError) as e:
        roboframes.Dataset(extra, fps=FPS)
    assert e.value.key == "steps/torque" and "record 0" in str(e.value)
    with pytest.raises(SourceFormatError, match="fps="):
        roboframes.Dataset(folder)
    with pytest.raises(InvalidArgumentError, match="no split 'test'"):
        roboframes.Dataset(folder, fps=FPS, split="test")
    with pytest.raises(DatasetNotFoundError, match="is a folder"):
        roboframes.Dataset(next(folder.glob("*.tfrecord-*")), format="rlds", fps=FPS)


def test_convert_an_rlds_dataset(rlds: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    from roboframes.convert import convert

    folder, expected = rlds
    out = convert(folder, tmp_path / "lerobot", fps=FPS, episodes=[1], use_videos=False, progress=False)
    ds = roboframes.Dataset(out)
    n = int(expected["1/length"])
    assert len(ds) == n and ds.fps == FPS
    b = ds.get_batch(list(range(n)))
    np.testing.assert_array_equal(b["observation.images.image"], expected["1/observation/image"])
    np.testing.assert_array_equal(b["action"], expected["1/action"])
    assert list(b["task"]) == list(expected["1/language_instruction"])


def test_the_command_on_rlds(rlds: tuple[Path, dict[str, np.ndarray]], capsys: pytest.CaptureFixture[str]) -> None:
    from roboframes.cli import main

    folder, _ = rlds
    assert main(["info", str(folder), "--fps", "10"]) == 0
    assert "RLDS, split train, read in place" in capsys.readouterr().out
    assert main(["validate", str(folder), "--fps", "10", "--key-map", "lerobot"]) == 0
    assert main(["info", str(folder)]) == 2  # no frame rate: the problem, one line
    assert "fps=" in capsys.readouterr().err


def test_a_remote_builder_folder_reads_as_the_local_one(rlds: tuple[Path, dict[str, np.ndarray]]) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from remote_servers import file_server  # (the tests' loopback HTTP server)
    from roboframes import remote

    folder, _ = rlds
    local = roboframes.Dataset(folder, fps=FPS)
    with file_server({"rlds": folder}) as srv:
        url = f"{srv.url}/rlds"
        ds = roboframes.Dataset(url, fps=FPS)  # detected: dataset_info.json and no meta/info.json
        assert ds.format == "rlds" and len(ds) == len(local)
        want = local.get_batch(list(range(len(local))))
        got = ds.get_batch(list(range(len(ds))))
        for k in ("observation/image", "observation/state", "action", "task", "timestamp"):
            if k == "task":
                assert list(got[k]) == list(want[k])
            else:
                np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        assert (remote.stats(url) or {}).get("requests", 0) > 0
    # a shard missing on the server (another server: a new root) is an error naming it
    shard = sorted(folder.glob("*.tfrecord-*"))[0]
    hidden = shard.with_name("hidden")
    shard.rename(hidden)
    try:
        with file_server({"rlds": folder}) as srv, pytest.raises(DatasetNotFoundError, match=shard.name):
            roboframes.Dataset(f"{srv.url}/rlds", fps=FPS, format="rlds")
    finally:
        hidden.rename(shard)
