"""roboframes.Dataset items against LeRobot 0.4.4's LeRobotDataset, key by key, byte by byte."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import roboframes

lerobot_dataset = pytest.importorskip("lerobot.datasets.lerobot_dataset")


def act_windows(fps: int) -> dict[str, list[float]]:
    return {
        "observation.images.top": [-1 / fps, 0.0],
        "observation.state": [-1 / fps, 0.0],
        "action": [i / fps for i in range(6)],
    }


WINDOWS = {
    "none": lambda fps: None,
    "act": act_windows,
    # both sides padded, a camera with exactly one delta (LeRobot squeezes it), the
    # image feature and scalar features windowed
    "wide": lambda fps: {
        "observation.images.wrist": [0.2],
        "observation.images.still": [-2 / fps, 0.0, 1 / fps],
        "next.reward": [-3 / fps, 0.0, 3 / fps],
        "observation.state": [-5 / fps, 5 / fps],
        "index": [-1 / fps, 1 / fps],
    },
}


def lerobot_frame_to_uint8_hwc(v: torch.Tensor) -> np.ndarray:
    """LeRobot's float CHW frames back to uint8 HWC (exact: they are uint8/255)."""
    u = (v * 255).round().to(torch.uint8)
    return (u.permute(1, 2, 0) if u.ndim == 3 else u.permute(0, 2, 3, 1)).numpy()


def assert_item_equal(ref: dict, ours: dict, camera_keys: list[str], where: str) -> None:
    assert list(ref.keys()) == list(ours.keys()), where
    for k, a in ref.items():
        b = ours[k]
        if isinstance(a, str):
            assert a == b, f"{where} {k}"
        elif k in camera_keys:
            fa = lerobot_frame_to_uint8_hwc(a)
            if fa.ndim == 3 and b.ndim == 4 and b.shape[0] == 1:
                b = b[0]  # LeRobot squeezes a single-delta camera window
            assert fa.shape == b.shape, f"{where} {k}: {fa.shape} vs {b.shape}"
            assert b.dtype == np.uint8
            np.testing.assert_array_equal(fa, b, err_msg=f"{where} {k}")
            # and LeRobot's floats are exactly our bytes / 255
            back = torch.from_numpy(b).float() / 255
            back = back.permute(2, 0, 1) if back.ndim == 3 else back.permute(0, 3, 1, 2)
            assert torch.equal(back, a), f"{where} {k}"
        else:
            na = a.numpy()
            assert isinstance(b, np.ndarray), f"{where} {k}: {type(b)}"
            assert na.dtype == b.dtype, f"{where} {k}: {na.dtype} vs {b.dtype}"
            assert na.shape == b.shape, f"{where} {k}: {na.shape} vs {b.shape}"
            np.testing.assert_array_equal(na, b, err_msg=f"{where} {k}")


def usable_windows(root: Path) -> list[tuple[str, dict[str, list[float]] | None]]:
    """``(name, delta_timestamps)`` of the WINDOWS whose keys the dataset at ``root`` has."""
    ds = roboframes.Dataset(root)
    out = []
    for w, make in WINDOWS.items():
        d = make(ds.fps)
        if d is None or all(k in ds.features for k in d):
            out.append((w, d))
    return out


@pytest.mark.parametrize("name", ["av1", "av1_multifile", "h264", "grid"])
def test_items_match_lerobot(dataset_dir, name: str) -> None:
    root = dataset_dir(name)
    for w, dt in usable_windows(root):
        ref = lerobot_dataset.LeRobotDataset(f"roboframes/{name}", root=root, delta_timestamps=dt)
        ours = roboframes.Dataset(root, delta_timestamps=dt)
        assert len(ref) == len(ours) == ref.num_frames
        assert ours.num_episodes == ref.num_episodes
        for i in range(len(ref)):
            assert_item_equal(ref[i], ours[i], ref.meta.camera_keys, f"{name}/{w}[{i}]")


@pytest.mark.parametrize("name", ["av1", "av1_multifile"])
def test_episode_subset_matches_lerobot(dataset_dir, name: str) -> None:
    root = dataset_dir(name)
    fps = roboframes.Dataset(root).fps
    episodes = [3, 1] if name == "av1" else [4, 0, 2]
    for dt in (None, act_windows(fps)):
        ref = lerobot_dataset.LeRobotDataset(f"roboframes/{name}", root=root, episodes=episodes, delta_timestamps=dt)
        ours = roboframes.Dataset(root, episodes=episodes, delta_timestamps=dt)
        assert len(ref) == len(ours)
        assert ours.episodes == sorted(episodes)
        for i in range(len(ref)):
            assert_item_equal(ref[i], ours[i], ref.meta.camera_keys, f"{name}/subset[{i}]")


def test_get_batch_stacks_items(dataset_dir) -> None:
    root = dataset_dir("av1")
    ds = roboframes.Dataset(root, delta_timestamps=act_windows(10))
    idx = [5, 0, 17, 6, 6, -1]
    batch = ds.get_batch(idx)
    items = [ds[i] for i in idx]
    assert list(batch.keys()) == list(items[0].keys())
    for k, v in batch.items():
        if isinstance(v, list):
            assert v == [it[k] for it in items]
        else:
            assert v.shape == (len(idx), *items[0][k].shape)
            np.testing.assert_array_equal(v, np.stack([it[k] for it in items]))


def sequential_reference(path: Path):
    """Every frame of a file, decoded in order by torchcodec (exact mode), with its pts."""
    from torchcodec.decoders import VideoDecoder

    d = VideoDecoder(str(path), seek_mode="exact")
    fr = d.get_frames_in_range(0, d.metadata.num_frames)
    return fr.data.permute(0, 2, 3, 1).numpy(), fr.pts_seconds.numpy()


def test_hevc_bframes_match_sequential_decode(dataset_dir) -> None:
    """LeRobot 0.4.4 fails on every other frame of its own HEVC output; we return the right one."""
    root = dataset_dir("hevc")
    ours = roboframes.Dataset(root)
    # Where LeRobot succeeds its frames equal ours; where it fails (FrameTimestampError on
    # B-frames, or torchcodec errors) the sequential decode below is the reference.
    dt = act_windows(10)
    ref = lerobot_dataset.LeRobotDataset("roboframes/hevc", root=root, delta_timestamps=dt)
    ours_w = roboframes.Dataset(root, delta_timestamps=dt)
    lerobot_failures = 0
    for i in range(len(ref)):
        try:
            r = ref[i]
        except (ValueError, RuntimeError):  # FrameTimestampError, or torchcodec giving up
            lerobot_failures += 1
            continue
        assert_item_equal(r, ours_w[i], ref.meta.camera_keys, f"hevc/act[{i}]")
    print(f"LeRobot 0.4.4 failed on {lerobot_failures}/{len(ref)} windowed items of its own HEVC output")

    eps = {e["episode_index"]: e for e in ours.episode_table()}
    cache: dict[Path, tuple[np.ndarray, np.ndarray]] = {}
    for i in range(len(ours)):
        it = ours[i]
        ep = eps[int(it["episode_index"])]
        for k in ours.video_keys:
            p = (
                root
                / f"videos/{k}/chunk-{ep[f'videos/{k}/chunk_index']:03d}/file-{ep[f'videos/{k}/file_index']:03d}.mp4"
            )
            if p not in cache:
                cache[p] = sequential_reference(p)
            frames, pts = cache[p]
            t = ep[f"videos/{k}/from_timestamp"] + float(it["timestamp"])
            j = int(np.argmin(np.abs(pts - t)))
            assert abs(pts[j] - t) < 1e-4
            np.testing.assert_array_equal(frames[j], it[k], err_msg=f"hevc[{i}] {k}")
    # the batch path gives the same bytes
    b = ours.get_batch(list(range(len(ours))))
    for i in range(len(ours)):
        for k in ours.video_keys:
            np.testing.assert_array_equal(b[k][i], ours[i][k])


def test_metadata_surface(dataset_dir) -> None:
    root = dataset_dir("av1")
    ds = roboframes.Dataset(root)
    ref = lerobot_dataset.LeRobotDataset("roboframes/av1", root=root)
    assert ds.fps == ref.fps
    assert ds.camera_keys == ref.meta.camera_keys
    assert ds.video_keys == ref.meta.video_keys
    assert ds.num_frames == ref.num_frames
    assert set(ds.tasks.values()) == set(ref.meta.tasks.index)
    for feat, st in ref.meta.stats.items():
        for name, v in st.items():
            np.testing.assert_allclose(ds.stats[feat][name], v, rtol=1e-6)


def test_usable_after_fork(dataset_dir) -> None:
    """Decoders opened in the parent are not reused in a forked child."""
    import multiprocessing as mp

    root = dataset_dir("av1")
    ds = roboframes.Dataset(root)
    expected = ds.get_batch(list(range(len(ds))))
    ctx = mp.get_context("fork")
    with ctx.Pool(2) as pool:
        got = pool.map(_read_all, [ds, ds])
    for g in got:
        for k in ds.video_keys:
            np.testing.assert_array_equal(g[k], expected[k])


def _read_all(ds: roboframes.Dataset) -> dict:
    b = ds.get_batch(list(range(len(ds))))
    return {k: b[k] for k in ds.video_keys}


def test_get_batch_reuses_only_arrays_nobody_holds(dataset_dir) -> None:
    """Output arrays of earlier batches are reused (no fresh pages to fault in) only when the
    caller no longer refers to them, directly or through a view."""
    ds = roboframes.Dataset(dataset_dir("av1"), delta_timestamps=act_windows(10))
    b1 = ds.get_batch([0, 1])
    kept = {k: v.copy() for k, v in b1.items() if isinstance(v, np.ndarray)}
    view = b1["action"][0]  # a view keeps its base array
    view_before = view.copy()
    ids = {id(v) for v in b1.values() if isinstance(v, np.ndarray)}
    for i in range(4):  # while b1 is held, nothing of it is reused
        b = ds.get_batch([2 + i, 9 + i])
        assert not ids & {id(v) for v in b.values() if isinstance(v, np.ndarray)}
    for k, v in kept.items():
        np.testing.assert_array_equal(b1[k], v, err_msg=k)
    del b1, b
    for i in range(4):
        b = ds.get_batch([4 + i, 12 + i])
    np.testing.assert_array_equal(view, view_before)  # the viewed array was left alone
    dropped = ds.get_batch([1, 3])
    ids = {id(v) for v in dropped.values() if isinstance(v, np.ndarray)}
    del dropped
    b = ds.get_batch([2, 4])
    assert ids == {id(v) for v in b.values() if isinstance(v, np.ndarray)}, "a dropped batch's arrays are reused"
    del b
    # and reused arrays hold the new batch's values
    b = ds.get_batch([7, 8])
    ref = [ds[7], ds[8]]
    for k, v in b.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(v, np.stack([r[k] for r in ref]), err_msg=k)
