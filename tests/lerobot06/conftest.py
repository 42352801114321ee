"""Fixtures of the LeRobot 0.6 suite: datasets written at test time by LeRobot 0.6.x's own
writer (RGB, depth maps, language annotations). Runs in the LeRobot 0.6 environment
(``bash scripts/lerobot06.sh python -m pytest tests/lerobot06``); elsewhere tests/conftest.py
leaves it out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from roboframes.synthetic import DatasetSpec, DepthSpec, write_dataset

DEPTH = "observation.images.depth"
RGB = "observation.images.top"

SPECS: dict[str, DatasetSpec] = {
    # LeRobot 0.6's defaults: AV1 cameras, an image feature, short episodes
    "rgb": DatasetSpec(vcodec="libsvtav1", episode_lengths=(6, 1, 2, 9)),
    # depth maps recorded in millimetres (uint16) next to an h264 colour camera
    "depth": DatasetSpec(
        vcodec="h264",
        episode_lengths=(7, 5, 6),
        cameras=((RGB, 48, 64),),
        depth_cameras=((DEPTH, 48, 64),),
        image_key=None,
    ),
    # depth recorded in metres (float32), a linear quantiser, a width that is no multiple of 32
    "depth_m": DatasetSpec(
        vcodec="h264",
        episode_lengths=(6, 6),
        cameras=(),
        depth_cameras=((DEPTH, 40, 56),),
        depth=DepthSpec(depth_min=0.2, depth_max=5.0, shift=0.0, use_log=False, unit="m"),
        image_key=None,
    ),
    # depth in a 10-bit grey stream (LeRobot's writer takes another pix_fmt): read through
    # swscale to 12 bits, as PyAV's gray12le conversion reads it
    "depth_gray10": DatasetSpec(
        vcodec="h264",
        episode_lengths=(6,),
        cameras=(),
        depth_cameras=((DEPTH, 32, 48),),
        depth=DepthSpec(pix_fmt="gray10le"),
        image_key=None,
    ),
    # depth maps stored as images (TIFF in the table; no videos), in mm (uint16) and m (float32)
    "depth_images": DatasetSpec(
        episode_lengths=(4, 3),
        cameras=(),
        depth_images=((DEPTH, 24, 32),),
        image_key="observation.images.still",
    ),
    "depth_images_m": DatasetSpec(
        episode_lengths=(4, 3),
        cameras=(),
        depth_images=((DEPTH, 24, 32),),
        depth=DepthSpec(unit="m"),
        image_key=None,
    ),
    # HEVC colour cameras (open GOPs: leading pictures) written by LeRobot 0.6
    "hevc": DatasetSpec(vcodec="hevc", episode_lengths=(7, 6, 9), image_key=None),
    # language annotations (the annotation pipeline's writer) on an h264 dataset
    "language": DatasetSpec(
        vcodec="h264",
        episode_lengths=(6, 5, 7),
        cameras=((RGB, 32, 48),),
        image_key=None,
        language=True,
    ),
}


@pytest.fixture(scope="session")
def dataset06(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Returns a function name -> path of a dataset written once per session by LeRobot 0.6."""
    base = tmp_path_factory.mktemp("lerobot06")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = write_dataset(base / name, SPECS[name], repo_id=f"roboframes/{name}")
        return made[name]

    return get
