"""Synthetic LeRobot v3.0 datasets written by LeRobot's own writer.

Every dataset goes through ``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` /
``finalize``, so the files are exactly what LeRobot writes (the compatibility tests, the
benchmarks and the examples read files that another project wrote). Writing needs ``lerobot``:
0.4.4 or 0.6.x, each through its own API. Depth cameras and language annotations need 0.6.x
(depth maps through its ``DepthEncoderConfig`` writer, language columns through its annotation
pipeline's ``LanguageColumnsWriter``). Importing this module needs neither.

Example::

    from roboframes.synthetic import DatasetSpec, write_dataset

    root = write_dataset(Path("/tmp/sample"), DatasetSpec(episode_lengths=(20, 20)))
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DatasetSpec", "DepthSpec", "features_of", "write_dataset"]


@dataclass(frozen=True)
class DepthSpec:
    """LeRobot 0.6's depth quantiser (``DepthEncoderConfig``) and how depth frames are recorded:
    ``"mm"`` as uint16 millimetres, ``"m"`` as float32 metres (LeRobot infers the unit from the
    dtype). ``vcodec``/``pix_fmt``: LeRobot's defaults (HEVC Main 12, ``gray12le``)."""

    depth_min: float = 0.01
    depth_max: float = 10.0
    shift: float = 3.5
    use_log: bool = True
    unit: str = "mm"
    vcodec: str = "hevc"
    pix_fmt: str = "gray12le"


@dataclass(frozen=True)
class DatasetSpec:
    """What to write. The defaults are small on purpose: the test fixtures are built on every
    test run."""

    vcodec: str = "libsvtav1"
    fps: int = 10
    episode_lengths: tuple[int, ...] = (6, 1, 2, 9)
    # name -> (height, width); one width is a multiple of 32, one is not
    cameras: tuple[tuple[str, int, int], ...] = (
        ("observation.images.top", 64, 96),
        ("observation.images.wrist", 72, 88),
    )
    image_key: str | None = "observation.images.still"
    image_hw: tuple[int, int] = (24, 40)
    tasks: tuple[str, ...] = ("pick the cube", "place the cube")
    data_files_size_in_mb: float | None = None
    video_files_size_in_mb: float | None = None
    chunks_size: int | None = None
    # more non-camera features: name -> LeRobot feature description (dtype, shape, names)
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)
    # camera-like content (a textured scene panning, a moving object, sensor noise) instead of
    # smooth gradients: realistic bitrates, so decode costs what real footage costs
    textured: bool = False
    # LeRobot 0.6 only: depth cameras (name, height, width), written with `depth`'s quantiser
    depth_cameras: tuple[tuple[str, int, int], ...] = ()
    depth: DepthSpec = DepthSpec()
    # LeRobot 0.6 only: depth maps stored as images (name, height, width): TIFF in the table
    depth_images: tuple[tuple[str, int, int], ...] = ()
    # LeRobot 0.6 only: language columns written by its annotation pipeline's writer
    language: bool = False


def features_of(spec: DatasetSpec) -> dict[str, dict[str, Any]]:
    """LeRobot's ``features`` for ``spec``: fixed state/action/effort/counts/reward/done
    features, ``spec.extra``, then the cameras and the image feature."""
    feats: dict[str, dict[str, Any]] = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": [f"j{i}" for i in range(6)]},
        "action": {"dtype": "float32", "shape": (4,), "names": [f"a{i}" for i in range(4)]},
        "observation.effort": {"dtype": "float64", "shape": (3,), "names": None},
        "observation.counts": {"dtype": "int64", "shape": (2,), "names": None},
        "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
        "next.done": {"dtype": "bool", "shape": (1,), "names": None},
    }
    feats.update(spec.extra)
    for name, h, w in spec.cameras:
        feats[name] = {"dtype": "video", "shape": (h, w, 3), "names": ["height", "width", "channels"]}
    for dtype, depth_cameras in (("video", spec.depth_cameras), ("image", spec.depth_images)):
        for name, h, w in depth_cameras:
            feats[name] = {
                "dtype": dtype,
                "shape": (h, w, 1),
                "names": ["height", "width", "channels"],
                "info": {"is_depth_map": True},
            }
    if spec.image_key:
        h, w = spec.image_hw
        feats[spec.image_key] = {"dtype": "image", "shape": (h, w, 3), "names": ["height", "width", "channels"]}
    return feats


def _frame(h: int, w: int, t: int, seed: int) -> np.ndarray:
    """A smooth image with a moving square: varied enough that a wrong frame is obvious."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[..., 0] = (x * 255 // max(w - 1, 1) + 7 * t) % 256
    img[..., 1] = (y * 255 // max(h - 1, 1) + 11 * seed) % 256
    img[..., 2] = (40 * seed + 13 * t) % 256
    s = max(4, min(h, w) // 4)
    oy = (3 * t + seed) % max(h - s, 1)
    ox = (5 * t + 2 * seed) % max(w - s, 1)
    img[oy : oy + s, ox : ox + s] = (255 - 20 * seed) % 256
    return img


def _depth_frame(h: int, w: int, t: int, seed: int, spec: DepthSpec) -> np.ndarray:
    """A depth map ``(h, w, 1)``: a tilted plane from 0.3 m to about 4 m with a box moving in
    front of it, as uint16 millimetres or float32 metres (``spec.unit``)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    metres = 0.3 + 3.5 * (x / max(w - 1, 1)) * (0.6 + 0.4 * y / max(h - 1, 1))
    s = max(3, min(h, w) // 4)
    oy = (2 * t + seed) % max(h - s, 1)
    ox = (3 * t + 2 * seed) % max(w - s, 1)
    metres[oy : oy + s, ox : ox + s] = 0.25 + 0.01 * t
    out: np.ndarray = metres.astype(np.float32) if spec.unit == "m" else np.round(metres * 1000.0).astype(np.uint16)
    return out[..., None]


class _Scene:
    """A textured scene for one camera: a random multi-scale texture larger than the frame
    that pans over time, a moving bright object, and per-frame sensor noise."""

    def __init__(self, h: int, w: int, seed: int) -> None:
        rng = np.random.default_rng(1000 + seed)
        H, W = h + 64, w + 256
        tex = np.zeros((H, W, 3), dtype=np.float32)
        for scale, amp in ((32, 90.0), (8, 45.0), (2, 20.0)):
            small = rng.standard_normal((H // scale + 2, W // scale + 2, 3)).astype(np.float32)
            big = np.repeat(np.repeat(small, scale, axis=0), scale, axis=1)[:H, :W]
            tex += amp * big
        self.tex: np.ndarray = np.clip(tex + 128.0, 0, 255)
        self.h, self.w = h, w
        self.rng = np.random.default_rng(2000 + seed)

    def frame(self, t: int) -> np.ndarray:
        oy = int(16 + 12 * np.sin(t / 23.0))
        ox = (2 * t) % 256
        img: np.ndarray = self.tex[oy : oy + self.h, ox : ox + self.w].copy()
        s = max(4, min(self.h, self.w) // 5)
        cy = int((self.h - s) * (0.5 + 0.4 * np.sin(t / 11.0)))
        cx = int((self.w - s) * (0.5 + 0.4 * np.cos(t / 7.0)))
        img[cy : cy + s, cx : cx + s] = (230.0, 60.0, 40.0)
        img += self.rng.normal(0.0, 3.0, img.shape).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.uint8)


def write_dataset(
    root: Path, spec: DatasetSpec | None = None, repo_id: str = "roboframes/fixture", *, overwrite: bool = False
) -> Path:
    """Writes a dataset described by ``spec`` (default: ``DatasetSpec()``) with LeRobot's writer
    under ``root``; returns ``root``.

    ``root`` must not exist (``FileExistsError`` otherwise), unless ``overwrite`` is true: then
    a LeRobot dataset (a folder with ``meta/info.json``) or an empty folder there is removed
    first; any other folder is refused, never deleted.

    The content is deterministic: the same spec writes the same frames and table values. Needs
    ``lerobot`` (``ImportError`` saying what to install otherwise). Writing is quiet: LeRobot's
    INFO logs (the root logger is raised to WARNING meanwhile), its warnings and progress bars,
    and the encoders' banners (``SVT_LOG``, unless set) are silenced while it writes, and
    restored afterwards.
    """
    import importlib.util
    import shutil

    root = Path(root).expanduser()
    if importlib.util.find_spec("lerobot") is None:
        raise ImportError(
            "roboframes.synthetic writes datasets with LeRobot's own writer: pip install lerobot "
            "(0.4.4 on Python 3.10+, 0.6.x on Python 3.12+)"
        )
    if root.exists() or root.is_symlink():
        is_dataset = (root / "meta" / "info.json").is_file()
        if not overwrite:
            raise FileExistsError(
                f"{root} exists: write_dataset writes a new folder (pass overwrite=True to replace "
                f"{'the dataset there' if is_dataset else 'it, when it is an empty folder'})"
            )
        if root.is_dir() and not root.is_symlink() and (is_dataset or not any(root.iterdir())):
            shutil.rmtree(root)
        else:
            raise FileExistsError(
                f"{root} exists and is neither a LeRobot dataset nor an empty folder: overwrite=True "
                "replaces only those"
            )
    with quiet_lerobot_writer():
        return _write(root, DatasetSpec() if spec is None else spec, repo_id)


@contextlib.contextmanager
def quiet_lerobot_writer() -> Iterator[None]:
    """Silences LeRobot's writer while it runs: its INFO logs (the root logger is raised to
    WARNING), its warnings and the ``datasets`` progress bars, and the encoders' banners
    (``SVT_LOG``, unless set; PyAV's libav log level); everything is restored afterwards."""
    import os
    import warnings

    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(max(level, logging.WARNING))
    svt_log = os.environ.get("SVT_LOG")
    if svt_log is None:
        os.environ["SVT_LOG"] = "1"  # SVT-AV1: errors only
    bars = _progress_bars(False)
    av_level = _libav_level(_LIBAV_ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root_logger.setLevel(level)
        if svt_log is None:
            os.environ.pop("SVT_LOG", None)
        _progress_bars(bars)
        _libav_level(av_level)


#: libav's AV_LOG_ERROR
_LIBAV_ERROR = 16


def _libav_level(level: int | None) -> int | None:
    """Sets the log level of PyAV's bundled libav (LeRobot's encoder hands its logs back to
    libav's default callback, which prints muxer notes at INFO); returns the previous one, or
    None when PyAV or its libavutil is not found (then nothing changes)."""
    if level is None:
        return None
    try:
        import ctypes
        import glob
        import os

        import av
    except ImportError:
        return None
    here = os.path.dirname(av.__file__)
    found = sorted(
        glob.glob(os.path.join(here, "..", "av.libs", "libavutil*"))
        + glob.glob(os.path.join(here, ".dylibs", "libavutil*"))
    )
    if not found:
        return None
    try:
        lib = ctypes.CDLL(found[0])  # already loaded by PyAV: the same library
        was = int(lib.av_log_get_level())
        lib.av_log_set_level(ctypes.c_int(level))
    except (OSError, AttributeError):
        return None
    return was


def _progress_bars(enabled: bool) -> bool:
    """Turns the ``datasets`` library's progress bars on or off; returns whether they were on."""
    try:
        from datasets.utils import logging as ds_logging
    except ImportError:
        return False
    was = bool(ds_logging.is_progress_bar_enabled())
    if enabled:
        ds_logging.enable_progress_bar()
    else:
        ds_logging.disable_progress_bar()
    return was


def _create(root: Path, spec: DatasetSpec, repo_id: str, feats: dict[str, dict[str, Any]]) -> Any:
    """``LeRobotDataset.create`` through the installed LeRobot's API (0.4: ``vcodec=``; 0.6:
    ``rgb_encoder`` / ``depth_encoder`` configs)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from .torch.lines import installed_lerobot

    version = installed_lerobot() or "0"
    line06 = tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) >= (0, 5)
    common: dict[str, Any] = {
        "repo_id": repo_id,
        "fps": spec.fps,
        "features": feats,
        "root": root,
        "robot_type": "fixture_bot",
        "use_videos": bool(spec.cameras or spec.depth_cameras),
        "image_writer_threads": 0,
    }
    if not line06:
        if spec.depth_cameras or spec.depth_images or spec.language:
            raise ValueError(
                f"depth cameras and language columns are written by LeRobot 0.6; lerobot {version} is installed"
            )
        return LeRobotDataset.create(vcodec=spec.vcodec, **common)
    from lerobot.configs import DepthEncoderConfig, RGBEncoderConfig

    d = spec.depth
    return LeRobotDataset.create(
        rgb_encoder=RGBEncoderConfig(vcodec=spec.vcodec),
        depth_encoder=DepthEncoderConfig(
            vcodec=d.vcodec,
            pix_fmt=d.pix_fmt,
            depth_min=d.depth_min,
            depth_max=d.depth_max,
            shift=d.shift,
            use_log=d.use_log,
        ),
        **common,
    )


def _annotate(root: Path) -> None:
    """Adds LeRobot 0.6's language columns with its annotation pipeline's writer: per episode a
    plan and a subtask (``language_persistent``) and a user interjection with the assistant's
    spoken answer on its third frame (``language_events``), then ``info.json``'s language
    features and tools, as the pipeline's executor writes them."""
    import shutil
    import tempfile

    from lerobot.annotations.steerable_pipeline.executor import Executor
    from lerobot.annotations.steerable_pipeline.reader import iter_episodes
    from lerobot.annotations.steerable_pipeline.staging import EpisodeStaging
    from lerobot.annotations.steerable_pipeline.writer import LanguageColumnsWriter, speech_atom

    records = list(iter_episodes(root))
    staging = Path(tempfile.mkdtemp(prefix="roboframes-annotate-"))
    try:
        for r in records:
            ts = r.frame_timestamps
            at = ts[min(2, len(ts) - 1)]
            s = EpisodeStaging(staging, r.episode_index)
            s.write(
                "plan",
                [
                    {
                        "role": "assistant",
                        "content": f"plan of episode {r.episode_index}",
                        "style": "plan",
                        "timestamp": ts[0],
                    },
                    {"role": "assistant", "content": "reach the cube", "style": "subtask", "timestamp": ts[-1]},
                ],
            )
            s.write(
                "interjections",
                [
                    {
                        "role": "user",
                        "content": f"slower, {r.episode_index}!",
                        "style": "interjection",
                        "timestamp": at,
                    },
                    speech_atom(at, "slowing down"),
                ],
            )
        LanguageColumnsWriter().write_all(records, staging, root)
        Executor._ensure_annotation_metadata_in_info(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write(root: Path, spec: DatasetSpec, repo_id: str) -> Path:
    feats = features_of(spec)
    ds = _create(root, spec, repo_id, feats)
    if spec.data_files_size_in_mb or spec.video_files_size_in_mb or spec.chunks_size:
        ds.meta.update_chunk_settings(
            chunks_size=spec.chunks_size,
            data_files_size_in_mb=spec.data_files_size_in_mb,
            video_files_size_in_mb=spec.video_files_size_in_mb,
        )
    rng = np.random.default_rng(0)
    scenes = {name: _Scene(h, w, ci) for ci, (name, h, w) in enumerate(spec.cameras)} if spec.textured else {}
    g = 0
    for ep, n in enumerate(spec.episode_lengths):
        for t in range(n):
            frame: dict[str, Any] = {"task": spec.tasks[ep % len(spec.tasks)]}
            for name, ft in feats.items():
                if ft["dtype"] in ("video", "image"):
                    continue
                shape = tuple(ft["shape"])
                if name == "observation.counts":
                    frame[name] = np.array([g, ep], dtype=np.int64)
                elif name == "next.done":
                    frame[name] = np.array([t == n - 1], dtype=bool)
                elif name == "next.reward":
                    frame[name] = np.array([t / n], dtype=np.float32)
                elif ft["dtype"] == "string":
                    frame[name] = f"note {g} of episode {ep}"
                elif ft["dtype"] == "bool":
                    frame[name] = rng.random(shape) > 0.5
                elif ft["dtype"].startswith(("int", "uint")):
                    frame[name] = rng.integers(0, 100, shape).astype(ft["dtype"])
                else:
                    frame[name] = rng.standard_normal(shape).astype(ft["dtype"])
            for ci, (name, h, w) in enumerate(spec.cameras):
                frame[name] = scenes[name].frame(g) if spec.textured else _frame(h, w, g, ci + 1)
            for ci, (name, h, w) in enumerate(spec.depth_cameras + spec.depth_images):
                frame[name] = _depth_frame(h, w, g, ci + 1, spec.depth)
            if spec.image_key:
                h, w = spec.image_hw
                frame[spec.image_key] = _frame(h, w, g, 9)
            ds.add_frame(frame)
            g += 1
        ds.save_episode()
    ds.finalize()
    if spec.language:
        _annotate(root)
    return root
