"""roboframes against LeRobot 0.6.x, on datasets its own writer made at test time: the drop-in's
items, metadata and sampler against LeRobot's, depth maps on every surface, language columns,
and LeRobot 0.6's ``lerobot-train`` reading through ``patch_lerobot()``."""

from __future__ import annotations

import inspect
import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lerobot.datasets.dataset_metadata import LeRobotDatasetMetadata as LeRobotMeta
from lerobot.datasets.lerobot_dataset import LeRobotDataset as LeRobotDS
from lerobot.datasets.sampler import EpisodeAwareSampler as LeRobotSampler

import roboframes
import roboframes.torch as rt
from roboframes.errors import VideoDecodeError

# (the fixtures' keys: tests/lerobot06/conftest.py)
DEPTH = "observation.images.depth"
RGB = "observation.images.top"


#: How far depth in metres may be from LeRobot's: one float32 ulp of ``depth + shift`` (LeRobot's
#: exp is torch's SIMD one, ours the correctly rounded one; the quantisers here keep
#: depth + shift below 16 m, whose ulp is 9.5e-7 m).
METRES_ATOL = 9.6e-7


def assert_same_value(a: Any, b: Any, key: str, atol: float = 0.0) -> None:
    """``a`` (ours) is ``b`` (LeRobot's): tensors of the same dtype and shape, equal (within
    ``atol`` for float32), or equal Python values."""
    if isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor), key
        assert (a.dtype, tuple(a.shape)) == (b.dtype, tuple(b.shape)), key
        if atol and b.dtype == torch.float32:
            assert float((a - b).abs().max()) <= atol, (key, float((a - b).abs().max()))
        else:
            assert torch.equal(a, b), key
    else:
        assert a == b, key


def assert_items_equal(ours: dict, ref: dict, metres_keys: tuple[str, ...] = ()) -> None:
    assert list(ours) == list(ref)
    for k in ref:
        assert_same_value(ours[k], ref[k], k, atol=METRES_ATOL if k in metres_keys else 0.0)


ACT_WINDOWS = {
    "action": [i / 10 for i in range(4)],
    "observation.state": [-0.1, 0.0],
}


@pytest.mark.parametrize("return_uint8", [False, True])
@pytest.mark.parametrize("windows", [None, "act"])
def test_rgb_items_equal_lerobot(dataset06, return_uint8: bool, windows: str | None) -> None:
    root = dataset06("rgb")
    dt = None if windows is None else {**ACT_WINDOWS, RGB: [-0.1, 0.0], "observation.images.wrist": [0.0]}
    ref = LeRobotDS("roboframes/rgb", root=root, delta_timestamps=dt, return_uint8=return_uint8)
    ours = rt.LeRobotDataset("roboframes/rgb", root=root, delta_timestamps=dt, return_uint8=return_uint8)
    assert isinstance(ours, rt.LeRobotDataset06)
    assert len(ours) == len(ref)
    for i in range(len(ref)):
        assert_items_equal(ours[i], ref[i])
    # a DataLoader batch (one native call) collates to what LeRobot's items collate to
    loader = torch.utils.data.DataLoader(ours, batch_size=5)
    ref_loader = torch.utils.data.DataLoader(ref, batch_size=5)
    for a, b in zip(loader, ref_loader, strict=True):
        assert_items_equal(a, b)


@pytest.mark.parametrize("name", ["hevc", "depth"])
def test_random_windows_equal_a_sequential_read(dataset06, name: str) -> None:
    """Windows read in a random order (backward seeks into open GOPs) give the frames one
    batch of every item gives: on FFmpeg 7.1 the HEVC decoder kept a frame across a flush and
    returned it after a backward seek."""
    root = dataset06(name)
    keys = [k for k in (RGB, DEPTH, "observation.images.wrist") if k in roboframes.Dataset(root).features]
    dt = {k: [-0.2, -0.1, 0.0] for k in keys}
    whole = roboframes.Dataset(root, delta_timestamps=dt, depth_output_unit="raw").get_batch(list(range(18)))
    ds = roboframes.Dataset(root, delta_timestamps=dt, depth_output_unit="raw", decode_threads=1)
    order = np.random.default_rng(0).permutation(18).tolist() + list(range(18)) + list(range(17, -1, -1))
    for i in order:
        item = ds[i]
        for k in keys:
            np.testing.assert_array_equal(item[k], whole[k][i], err_msg=f"{k} of item {i}")


def test_episode_subsets_filters_and_indices(dataset06) -> None:
    root = dataset06("rgb")
    ref = LeRobotDS("roboframes/rgb", root=root, episodes=[1, 3], delta_timestamps=ACT_WINDOWS)
    ours = rt.LeRobotDataset("roboframes/rgb", root=root, episodes=[1, 3], delta_timestamps=ACT_WINDOWS)
    assert ours.absolute_to_relative_idx == ref.absolute_to_relative_idx
    assert (ours.num_frames, ours.num_episodes) == (ref.num_frames, ref.num_episodes)
    for i in range(len(ref)):
        assert_items_equal(ours[i], ref[i])
    # slices, as LeRobot 0.6
    got, want = ours[1:5:2], ref[1:5:2]
    assert len(got) == len(want) == 2
    for a, b in zip(got, want, strict=True):
        assert_items_equal(a, b)
    # episode_filter intersected with episodes
    keep = lambda ep: ep["length"] >= 2  # noqa: E731
    f_ref = LeRobotDS("roboframes/rgb", root=root, episodes=[0, 1, 3], episode_filter=keep)
    f_ours = rt.LeRobotDataset("roboframes/rgb", root=root, episodes=[0, 1, 3], episode_filter=keep)
    assert f_ours.episodes == f_ref.episodes == [0, 3]
    assert f_ours.absolute_to_relative_idx == f_ref.absolute_to_relative_idx
    with pytest.raises(ValueError, match="did not match any episode"):
        rt.LeRobotDataset("roboframes/rgb", root=root, episode_filter=lambda ep: False)
    # pickles without the filter (its result), as DataLoader workers need
    again = pickle.loads(pickle.dumps(f_ours))
    assert again.episodes == [0, 3]
    # the reader side copies plainly (no recursion through its forwarding)
    import copy

    assert copy.copy(f_ours.reader).delta_indices == f_ours.reader.delta_indices
    assert f_ours.reader.decode_threads == f_ours.decode_threads
    # hf_dataset is LeRobot's own, of the selected rows
    assert len(f_ours.hf_dataset) == len(f_ref.hf_dataset)
    assert f_ours.get_raw_item(0)["index"] == f_ref.get_raw_item(0)["index"]


def test_image_transforms_and_setters(dataset06) -> None:
    root = dataset06("depth")
    flip = torch.nn.Identity()

    def double(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    ref = LeRobotDS("roboframes/depth", root=root, image_transforms=double)
    ours = rt.LeRobotDataset("roboframes/depth", root=root, image_transforms=double)
    # transforms apply to colour cameras only: depth maps are left alone
    assert_items_equal(ours[3], ref[3])
    ours.set_image_transforms(flip)
    ref.set_image_transforms(flip)
    assert_items_equal(ours[4], ref[4])
    ours.clear_image_transforms()
    ref.clear_image_transforms()
    assert ours.image_transforms is None
    assert_items_equal(ours[5], ref[5])
    with pytest.raises(TypeError):
        ours.set_image_transforms(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["depth", "depth_m"])
@pytest.mark.parametrize("unit", ["mm", "m"])
@pytest.mark.parametrize("return_uint8", [False, True])
def test_depth_items_equal_lerobot(dataset06, name: str, unit: str, return_uint8: bool) -> None:
    root = dataset06(name)
    dt = {DEPTH: [-0.2, -0.1, 0.0], "action": [0.0, 0.1]}
    for windows in (None, dt):
        ref = LeRobotDS(
            f"roboframes/{name}", root=root, depth_output_unit=unit, return_uint8=return_uint8, delta_timestamps=windows
        )
        ours = rt.LeRobotDataset(
            f"roboframes/{name}", root=root, depth_output_unit=unit, return_uint8=return_uint8, delta_timestamps=windows
        )
        assert ours.depth_output_unit == unit
        for i in range(len(ref)):
            # millimetres are whole numbers: equal; metres within METRES_ATOL
            assert_items_equal(ours[i], ref[i], metres_keys=(DEPTH,) if unit == "m" else ())
        # the statistics are rescaled to the output unit, as LeRobot's
        for stat, v in ref.meta.stats[DEPTH].items():
            np.testing.assert_allclose(ours.meta.stats[DEPTH][stat], v, rtol=1e-12)


def test_dequantisation_of_every_code_equals_lerobots(tmp_path: Path) -> None:
    """Every 12-bit code of three quantisers, through LeRobot's own dequantisation (torch) and
    ours: millimetres and the linear mode bit for bit; metres in log mode within one float32 ulp
    of ``depth + shift``, on a few percent of the codes."""
    from lerobot.configs import DepthEncoderConfig
    from lerobot.datasets.depth_utils import dequantize_depth

    for n, (lo, hi, shift, log) in enumerate(((0.01, 10.0, 3.5, True), (0.2, 5.0, 0.0, False), (0.05, 8.0, 1.0, True))):
        codes = torch.arange(4096, dtype=torch.int32).reshape(1, 64, 64)
        # a dataset written by LeRobot 0.6 whose depth frames hold every code's depth: its
        # quantiser maps each back to its code
        metres = dequantize_depth(codes, lo, hi, shift, log, output_unit="m")[0, :, :, None].numpy()
        root = tmp_path / f"q{n}"
        ds = LeRobotDS.create(
            repo_id="roboframes/codes",
            fps=10,
            root=root,
            features={DEPTH: {"dtype": "video", "shape": (64, 64, 1), "names": None, "info": {"is_depth_map": True}}},
            depth_encoder=DepthEncoderConfig(depth_min=lo, depth_max=hi, shift=shift, use_log=log),
        )
        for _ in range(6):  # (LeRobot's HEVC writer fails on episodes of fewer than ~5 frames)
            ds.add_frame({"task": "codes", DEPTH: metres.astype(np.float32)})
        ds.save_episode()
        ds.finalize()
        stored = roboframes.Dataset(root, depth_output_unit="raw")[0][DEPTH][..., 0].astype(np.int32)
        assert len(np.unique(stored)) >= 0.95 * 4096  # (nearly) every code is in the frame
        for unit in ("m", "mm"):
            ref = dequantize_depth(torch.from_numpy(stored)[None], lo, hi, shift, log, output_unit=unit)[0]
            ours = torch.from_numpy(roboframes.Dataset(root, depth_output_unit=unit)[0][DEPTH][..., 0])
            if unit == "mm" or not log:
                assert torch.equal(ours, ref), unit  # whole millimetres, and the linear mode, are exact
            else:
                diff = (ours - ref).abs()
                assert float(diff.max()) <= np.spacing(np.float32(hi + shift))
                assert int((diff > 0).sum()) <= 0.05 * 4096


def test_depth_codes_are_pyavs_gray12(dataset06) -> None:
    """The raw codes are what PyAV gives for ``gray12le`` (LeRobot's depth decoder), frame by frame."""
    import av

    root = dataset06("depth")
    ds = roboframes.Dataset(root, depth_output_unit="raw")
    assert ds.output_specs()[1].depth == "raw"
    table = {e["episode_index"]: e for e in ds.episode_table()}
    got = ds.get_batch(list(range(len(ds))))[DEPTH]
    assert got.dtype == np.uint16 and got.shape == (len(ds), 48, 64, 1)
    frames = []
    for ep in ds.episodes:
        path = root / f"videos/{DEPTH}/chunk-000/file-{table[ep][f'videos/{DEPTH}/file_index']:03d}.mp4"
        with av.open(str(path)) as c:
            frames = [f.to_ndarray(format="gray12le") for f in c.decode(video=0)]
        break
    first = got[: len(frames)]
    np.testing.assert_array_equal(first[..., 0], np.stack(frames)[: len(first)])


def test_other_grey_depths_read_as_pyav_converts_them(dataset06) -> None:
    """A depth map in a 10-bit grey stream: the codes are PyAV's ``to_ndarray(format="gray12le")``
    (swscale's conversion; LeRobot's depth decoder), and the items LeRobot's."""
    import av

    root = dataset06("depth_gray10")
    video = next((root / "videos" / DEPTH).rglob("*.mp4"))
    with av.open(str(video)) as c:
        frames = list(c.decode(video=0))
        assert frames[0].format.name == "gray10le"
        ref = np.stack([f.to_ndarray(format="gray12le") for f in frames])
    ds = roboframes.Dataset(root, depth_output_unit="raw")
    got = ds.get_batch(list(range(len(ds))))[DEPTH][..., 0]
    np.testing.assert_array_equal(got, ref[: len(got)])
    lr = LeRobotDS("roboframes/depth_gray10", root=root)
    ours = rt.LeRobotDataset("roboframes/depth_gray10", root=root)
    for i in range(len(lr)):
        assert_items_equal(ours[i], lr[i])


@pytest.mark.parametrize("name", ["depth_images", "depth_images_m"])
def test_depth_images_equal_lerobot(dataset06, name: str) -> None:
    """Depth maps stored as images (TIFF of the recorded uint16 mm or float32 m): LeRobot's
    items in either output unit, with and without uint8 colour frames; their recorded values
    through ``"raw"``; statistics and validation."""
    root = dataset06(name)
    dt = {DEPTH: [-0.1, 0.0]}
    for unit in ("mm", "m"):
        for return_uint8 in (False, True):
            ref = LeRobotDS(
                f"roboframes/{name}", root=root, depth_output_unit=unit, return_uint8=return_uint8, delta_timestamps=dt
            )
            ours = rt.LeRobotDataset(
                f"roboframes/{name}", root=root, depth_output_unit=unit, return_uint8=return_uint8, delta_timestamps=dt
            )
            for i in range(len(ref)):
                assert_items_equal(ours[i], ref[i])
    raw = roboframes.Dataset(root, depth_output_unit="raw")
    recorded = raw.get_batch(list(range(len(raw))))[DEPTH]
    assert recorded.dtype == np.float32 and recorded.shape == (len(raw), 24, 32, 1)
    written = json.loads((root / "meta" / "stats.json").read_text())[DEPTH]
    recomputed = raw.compute_stats(progress=False)[DEPTH]
    for stat in ("min", "max", "mean"):
        np.testing.assert_allclose(recomputed[stat], np.asarray(written[stat]), rtol=1e-6)
    assert raw.validate(decode="all", progress=False).ok


def test_depth_on_every_surface(dataset06) -> None:
    root = dataset06("depth")
    dt = {DEPTH: [-0.1, 0.0]}
    numpy_ds = roboframes.Dataset(root, delta_timestamps=dt)
    ref = numpy_ds.get_batch([0, 3, 7, 12])
    assert ref[DEPTH].dtype == np.float32 and ref[DEPTH].shape == (4, 2, 48, 64, 1)
    assert ref[RGB].dtype == np.uint8
    # channels first: (T, 1, H, W)
    chw = roboframes.Dataset(root, delta_timestamps=dt, channels_last=False).get_batch([0, 3, 7, 12])
    np.testing.assert_array_equal(chw[DEPTH][:, :, 0], ref[DEPTH][..., 0])
    # the loader, NumPy and torch output, with the frame cache
    loader = numpy_ds.loader(4, shuffle=False, output="torch", frame_cache_bytes=64 << 20)
    head = numpy_ds.get_batch([0, 1, 2, 3])[DEPTH]
    for _ in range(2):  # the second epoch from the cache
        first = next(iter(loader))
        loader.set_epoch(loader.epoch)
        np.testing.assert_array_equal(first[DEPTH].numpy(), head)
    assert numpy_ds.frame_cache_stats()["hits"] > 0
    # torch operators: depth frames are float32 whatever frame_dtype says
    frames = rt.decode_frames(numpy_ds, DEPTH, [0, 1], [0.0, 0.1], frame_dtype=torch.uint8)
    assert frames.dtype == torch.float32 and frames.shape == (2, 48, 64, 1)
    np.testing.assert_array_equal(frames[0].numpy(), ref[DEPTH][0, 1])
    h = numpy_ds.handle
    compiled = torch.compile(
        lambda e, t: torch.ops.roboframes.decode_frames(h, DEPTH, e, t, torch.float16, False),
        fullgraph=True,
    )
    out = compiled(torch.tensor([0, 0]), torch.tensor([0.0, 0.1], dtype=torch.float64))
    assert out.dtype == torch.float32 and out.shape == (2, 1, 48, 64)
    batch = rt.get_batch(numpy_ds, [0, 3, 7, 12], frame_dtype=torch.uint8, channels_last=True)
    np.testing.assert_array_equal(batch[1].numpy(), ref[DEPTH])
    # uint16 codes through the operators too
    raw = roboframes.Dataset(root, depth_output_unit="raw")
    codes = rt.decode_frames(raw, DEPTH, [0], [0.0])
    assert codes.dtype == torch.uint16
    # MLX (scripts/lerobot06.sh builds its extension in this environment too)
    import mlx.core as mx

    import roboframes.mlx as rm

    mds = rm.Dataset(root, delta_timestamps=dt)
    got = mds.get_batch([0, 3, 7, 12])
    rm.eval(got[DEPTH])
    assert got[DEPTH].dtype == mx.float32
    np.testing.assert_array_equal(np.asarray(got[DEPTH]), ref[DEPTH])
    one = rm.decode_frames(mds, DEPTH, [0], [0.0])
    rm.eval(one)
    np.testing.assert_array_equal(np.asarray(one)[0], ref[DEPTH][0, 1])


def test_depth_statistics_validation_and_normalisation(dataset06) -> None:
    root = dataset06("depth")
    ds = roboframes.Dataset(root)
    written = json.loads((root / "meta" / "stats.json").read_text())[DEPTH]
    recomputed = ds.compute_stats(progress=False)[DEPTH]
    assert recomputed["mean"].shape == (1, 1, 1)
    # LeRobot's statistics come from the recorded depth, ours from the stored codes: the
    # quantiser's step (under 0.3% of the depth with the default log quantiser) apart
    for stat in ("min", "max", "mean", "q50"):
        np.testing.assert_allclose(recomputed[stat], np.asarray(written[stat]), rtol=0.01)
    # in metres, as the items are
    m = roboframes.Dataset(root, depth_output_unit="m")
    np.testing.assert_allclose(m.stats[DEPTH]["mean"], np.asarray(written["mean"]) / 1000, rtol=1e-12)
    report = ds.validate(decode="all", progress=False)
    assert report.ok, str(report)
    norm = ds.get_batch([0, 5], normalize={DEPTH: "MEAN_STD"})[DEPTH]
    plain = ds.get_batch([0, 5])[DEPTH]
    mean, std = ds.stats[DEPTH]["mean"].item(), ds.stats[DEPTH]["std"].item()
    np.testing.assert_allclose(norm, (plain - np.float32(mean)) / (np.float32(std) + np.float32(1e-8)), rtol=1e-6)


def test_depth_in_a_colour_stream_is_an_error(dataset06, tmp_path: Path) -> None:
    """A feature flagged as a depth map whose video is colour is refused, naming file and key."""
    root = tmp_path / "flagged"
    shutil.copytree(dataset06("depth"), root)
    info = json.loads((root / "meta" / "info.json").read_text())
    ft = info["features"][RGB]
    ft["shape"] = [48, 64, 1]
    ft.setdefault("info", {})["is_depth_map"] = True
    (root / "meta" / "info.json").write_text(json.dumps(info))
    ds = roboframes.Dataset(root)
    with pytest.raises(VideoDecodeError, match="pixel format is yuv420p") as e:
        ds[0]
    assert e.value.key == RGB and e.value.path and RGB in e.value.path


def test_language_items_equal_lerobot(dataset06) -> None:
    from lerobot.utils.collate import lerobot_collate_fn

    root = dataset06("language")
    ref = LeRobotDS("roboframes/language", root=root, delta_timestamps=ACT_WINDOWS)
    ours = rt.LeRobotDataset("roboframes/language", root=root, delta_timestamps=ACT_WINDOWS)
    assert ours.meta.has_language_columns and ref.meta.has_language_columns
    for i in range(len(ref)):
        assert_items_equal(ours[i], ref[i])
    assert any(ref[i]["language_events"] for i in range(len(ref)))
    # LeRobot's language collate over our items, through DataLoader workers (pickled dataset)
    loader = torch.utils.data.DataLoader(ours, batch_size=4, num_workers=2, collate_fn=lerobot_collate_fn)
    ref_loader = torch.utils.data.DataLoader(ref, batch_size=4, collate_fn=lerobot_collate_fn)
    for a, b in zip(loader, ref_loader, strict=True):
        assert_items_equal(a, b)
    # the NumPy surface: Python objects; batches and the loader: lists of them
    numpy_ds = roboframes.Dataset(root)
    assert numpy_ds.language_keys == ["language_persistent", "language_events"]
    batch = numpy_ds.get_batch([0, 2, 3])
    assert batch["language_events"] == [ref[i]["language_events"] for i in (0, 2, 3)]
    assert numpy_ds[2]["language_persistent"] == ref[2]["language_persistent"]
    got = next(iter(numpy_ds.loader(3, shuffle=False, prefetch=1)))
    assert got["language_persistent"] == [ref[i]["language_persistent"] for i in range(3)]
    assert pickle.loads(pickle.dumps(numpy_ds))[2]["language_events"] == ref[2]["language_events"]
    # no windows over language columns
    with pytest.raises(ValueError, match="language column"):
        roboframes.Dataset(root, delta_timestamps={"language_events": [0.0, 0.1]})


def test_tool_calls_stored_as_json_text(dataset06, tmp_path: Path) -> None:
    """``tool_calls`` stored as JSON text (LeRobot's declared ``pa.json_()`` type, as a table
    rewritten with its features holds them): LeRobot's ``datasets.Json()`` parses them, and so
    does roboframes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "json_calls"
    shutil.copytree(dataset06("language"), root)
    for path in sorted((root / "data").rglob("*.parquet")):
        t = pq.read_table(path)
        rows = t.column("language_events").to_pylist()
        for row in rows:
            for ev in row:
                if ev["tool_calls"] is not None:
                    ev["tool_calls"] = [json.dumps(c) for c in ev["tool_calls"]]
        typ = pa.list_(
            pa.struct(
                [
                    ("role", pa.string()),
                    ("content", pa.string()),
                    ("style", pa.string()),
                    ("camera", pa.string()),
                    ("tool_calls", pa.list_(pa.string())),
                ]
            )
        )
        i = t.column_names.index("language_events")
        pq.write_table(t.set_column(i, "language_events", pa.array(rows, type=typ)), path)
    ref = LeRobotDS("roboframes/language", root=root)
    ours = rt.LeRobotDataset("roboframes/language", root=root)
    calls = 0
    for i in range(len(ref)):
        assert_items_equal(ours[i], ref[i])
        calls += sum(1 for ev in ref[i]["language_events"] if ev["tool_calls"])
    assert calls > 0  # (the speech atoms' calls came back as dicts on both sides)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shuffle": True, "seed": 0},
        {"shuffle": True, "seed": 1234, "drop_n_last_frames": 2},
        {"shuffle": True, "seed": 7, "drop_n_first_frames": 1, "episode_indices_to_use": [0, 3]},
        {"shuffle": False},
    ],
)
def test_sampler_order_equals_lerobot(dataset06, kwargs: dict[str, Any]) -> None:
    root = dataset06("rgb")
    episodes = kwargs.get("episode_indices_to_use")
    ds = LeRobotDS("roboframes/rgb", root=root, episodes=episodes)
    args = (ds.meta.episodes["dataset_from_index"], ds.meta.episodes["dataset_to_index"])
    extra = {"absolute_to_relative_idx": ds.absolute_to_relative_idx}
    ref = LeRobotSampler(*args, **kwargs, **extra)
    ours = rt.EpisodeAwareSampler(*args, **kwargs, **extra)
    assert isinstance(ours, rt.EpisodeAwareSampler06)
    assert len(ours) == len(ref) and ours.indices == ref.indices
    for _ in range(3):  # three epochs
        assert list(ours) == list(ref)
    assert ours.state_dict() == ref.state_dict() == {"epoch": 3, "start_index": 0}
    # LeRobot's resume state (compute_sampler_state) loads as it is
    state = {"epoch": 5, "start_index": 4}
    ours.load_state_dict(state)
    ref.load_state_dict(state)
    assert list(ours) == list(ref)
    # a checkpoint between making the iteration and its first item resumes at its start
    it = iter(ours)
    assert ours.state_dict() == {"epoch": 6, "start_index": 0}
    del it
    ours.load_state_dict({"epoch": 6, "start_index": 0})
    # mid-epoch, ours tells where the iteration is
    it = iter(ours)
    next(it), next(it)
    assert ours.state_dict() == {"epoch": 6, "start_index": 2}
    rest = list(it)
    ours.load_state_dict({"epoch": 6, "start_index": 2})
    assert list(ours) == rest


def test_signatures_follow_lerobot() -> None:
    def positional(f: Any) -> list[str]:
        return [
            p.name
            for p in inspect.signature(f).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
        ]

    def keyword(f: Any) -> set[str]:
        return {p.name for p in inspect.signature(f).parameters.values() if p.kind == p.KEYWORD_ONLY}

    for ours, ref in (
        (rt.LeRobotDataset, LeRobotDS),
        (rt.LeRobotDatasetMetadata, LeRobotMeta),
        (rt.EpisodeAwareSampler, LeRobotSampler),
    ):
        assert positional(ours.__init__) == positional(ref.__init__), ours
        assert keyword(ref.__init__) <= keyword(ours.__init__), ours


def test_metadata_equals_lerobot(dataset06) -> None:
    for name in ("depth", "language"):
        root = dataset06(name)
        ref = LeRobotMeta(f"roboframes/{name}", root=root)
        ours = rt.LeRobotDatasetMetadata(f"roboframes/{name}", root=root)
        assert type(ours.info) is type(ref.info)
        assert ours.info.to_dict() == ref.info.to_dict()
        assert ours.info.fps == ref.info.fps
        for attr in (
            "depth_keys",
            "has_language_columns",
            "tools",
            "camera_keys",
            "video_keys",
            "image_keys",
            "fps",
            "total_episodes",
            "total_frames",
            "total_tasks",
            "names",
            "shapes",
            "repo_type",
            "url_root",
            "data_path",
            "video_path",
            "robot_type",
        ):
            assert getattr(ours, attr) == getattr(ref, attr), attr
        assert list(ours.episodes["dataset_from_index"]) == list(ref.episodes["dataset_from_index"])
        assert ours.episodes[1]["tasks"] == ref.episodes[1]["tasks"]
        assert ours.get_video_file_path(1, ours.video_keys[0]) == ref.get_video_file_path(1, ref.video_keys[0])
        assert list(ours.tasks.index) == list(ref.tasks.index)
        keep = lambda ep: ep["length"] >= 6  # noqa: E731
        assert ours.filter_episodes(keep) == ref.filter_episodes(keep)
        for key, stats in ref.stats.items():
            for stat, v in stats.items():
                np.testing.assert_array_equal(ours.stats[key][stat], v)
        ours.rescale_depth_stats("m")
        ref.rescale_depth_stats("m")
        for key in ref.depth_keys:
            for stat, v in ref.stats[key].items():
                np.testing.assert_allclose(ours.stats[key][stat], v, rtol=1e-12)


def test_datasets_in_lerobots_hub_cache(dataset06, tmp_path: Path, monkeypatch) -> None:
    """With no root, LeRobot 0.6 keeps a download in its revision-safe Hub cache
    ($HF_LEROBOT_HOME/hub/datasets--org--name/snapshots/<commit>, files as links into blobs/)."""
    home = tmp_path / "home"
    repo = home / "hub" / "datasets--someone--demo"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = repo / "snapshots" / commit
    src = dataset06("depth")
    for f in src.rglob("*"):
        if f.is_file():
            blob = repo / "blobs" / f"{abs(hash(str(f))):x}"
            blob.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, blob)
            link = snap / f.relative_to(src)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "v3.0").write_text(commit)
    monkeypatch.setenv("HF_LEROBOT_HOME", str(home))
    ds = rt.LeRobotDataset("someone/demo")
    assert Path(ds.root) == snap and ds.meta.root == snap
    direct = rt.LeRobotDataset("someone/demo", root=src)
    assert_items_equal(ds[4], direct[4])
    assert rt.LeRobotDataset("someone/demo", revision=commit).root == snap
    # a newer version asked for falls back to the cached v3.0, as LeRobot's get_safe_version
    assert rt.LeRobotDataset("someone/demo", revision="v3.2").root == snap
    with pytest.raises(FileNotFoundError, match="hub"):
        rt.LeRobotDataset("someone/missing")


@pytest.mark.slow
def test_lerobot_train_runs_through_patch(dataset06, tmp_path: Path) -> None:
    """LeRobot 0.6's ``lerobot-train`` (its ``make_train_eval_datasets``, EpisodeAwareSampler,
    language-aware collate, uint8 frames) reads through roboframes with no other change."""
    for name in ("rgb", "language"):
        cmd = [
            sys.executable,
            "-m",
            "roboframes.torch.train",
            f"--dataset.repo_id=roboframes/{name}",
            f"--dataset.root={dataset06(name)}",
            "--policy.type=act",
            "--policy.device=cpu",
            "--policy.push_to_hub=false",
            "--policy.pretrained_backbone_weights=null",
            "--policy.chunk_size=4",
            "--policy.n_action_steps=4",
            "--steps=3",
            "--batch_size=2",
            "--num_workers=1",
            "--save_checkpoint=false",
            "--log_freq=1",
            f"--output_dir={tmp_path / name}",
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-4000:]
        assert "builds roboframes.torch.dataset.LeRobotDataset06" in out, out[-4000:]
        assert "step:3 " in out and "End of training" in out, out[-4000:]


def test_patch_installs_the_06_classes() -> None:
    import lerobot.datasets as lds
    from lerobot.datasets import factory, sampler

    with rt.patch_lerobot():
        assert factory.LeRobotDataset is rt.LeRobotDataset06
        assert factory.LeRobotDatasetMetadata is rt.LeRobotDatasetMetadata06
        assert sampler.EpisodeAwareSampler is rt.EpisodeAwareSampler06
        assert lds.EpisodeAwareSampler is rt.EpisodeAwareSampler06
    assert factory.LeRobotDataset is LeRobotDS
    assert lds.EpisodeAwareSampler is LeRobotSampler


def test_convert_writes_with_the_06_writer(dataset06: Callable[[str], Path], tmp_path: Path) -> None:
    """``roboframes convert`` through LeRobot 0.6's writer (its encoder configs' defaults): a
    selection of a dataset, read back by LeRobot 0.6."""
    from roboframes.convert import convert

    src = dataset06("rgb")
    out = convert(src, tmp_path / "subset", episodes=[3, 0], progress=False)
    theirs = LeRobotDS("roboframes/subset", root=out)
    ours = roboframes.Dataset(src, episodes=[0, 3])
    assert len(theirs) == len(ours) and theirs.meta.total_episodes == 2
    for i in range(len(ours)):
        a, b = theirs[i], ours[i]
        assert a["task"] == b["task"]
        for k in ("observation.state", "action"):
            np.testing.assert_array_equal(a[k].numpy(), b[k])


def v21_fixture() -> Path:
    """The v2.1 dataset LeRobot 0.3.3 wrote on the host (``scripts/test.sh`` sets
    ``ROBOFRAMES_V21_FIXTURE``: ``ds/`` and ``items.pkl``, its LeRobot 0.3.3 items)."""
    where = os.environ.get("ROBOFRAMES_V21_FIXTURE")
    if not where:
        pytest.skip("scripts/test.sh writes the v2.1 fixture with LeRobot 0.3.3 on the host")
    return Path(where)


V21_DELTA = {"action": [0.0, 0.1, 0.2], "observation.images.top": [-0.1, 0.0]}


def assert_items_equal_v21(ref: dict[str, Any], ours: dict[str, Any], where: str) -> None:
    assert list(ref) == list(ours), where
    for k, a in ref.items():
        b = ours[k]
        if isinstance(a, str):
            assert a == b, (where, k)
            continue
        b = b.numpy()
        assert a.dtype == b.dtype and a.shape == b.shape, (where, k, a.dtype, b.dtype, a.shape, b.shape)
        np.testing.assert_array_equal(a, b, err_msg=f"{where} {k}")


def test_v21_root_with_the_06_drop_in(tmp_path: Path) -> None:
    """A LeRobot v2.1 root through the 0.6 drop-in: LeRobot 0.3.3's items, frames included."""
    fixture = v21_fixture()
    with open(fixture / "items.pkl", "rb") as f:
        ref = pickle.load(f)
    ds = rt.LeRobotDataset("roboframes/v21", root=fixture / "ds", delta_timestamps=V21_DELTA)
    assert len(ds) == ref["len"]
    for i in range(len(ds)):
        assert_items_equal_v21(ref["items"][i], ds[i], f"v21[{i}]")
    assert list(ds.meta.tasks.index) == ["pick the cube", "place the cube", "stack the blocks"]
    np.testing.assert_array_equal(ds.meta.stats["action"]["mean"], ref["stats"]["action"]["mean"])


def test_v21_converted_by_lerobot06s_converter(tmp_path: Path) -> None:
    """``roboframes convert`` of a v2.1 root runs LeRobot 0.6's converter steps (streams copied):
    LeRobot 0.6's reader gives LeRobot 0.3.3's items of the source."""
    from roboframes.convert import convert

    fixture = v21_fixture()
    with open(fixture / "items.pkl", "rb") as f:
        ref = pickle.load(f)
    src = tmp_path / "v21"
    shutil.copytree(fixture / "ds", src)
    out = convert(src, tmp_path / "v30", progress=False)
    assert json.loads((out / "meta/roboframes_convert.json").read_text())["method"] == "lerobot-v21-to-v30"
    theirs = LeRobotDS("roboframes/v30", root=out, delta_timestamps=V21_DELTA)
    assert len(theirs) == ref["len"]
    for i in range(len(theirs)):
        assert_items_equal_v21(ref["items"][i], theirs[i], f"converted[{i}]")
