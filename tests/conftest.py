"""Session fixtures: LeRobot datasets written by LeRobot 0.4.4's writer at test time. The suite
of tests/lerobot06/ runs in the LeRobot 0.6 environment (scripts/lerobot06.sh), with its own
fixtures; elsewhere it is not collected."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from roboframes.synthetic import DatasetSpec, write_dataset
from roboframes.torch.lines import installed_lerobot, lerobot_line

# the LeRobot 0.6 suite needs lerobot 0.6 (bash scripts/lerobot06.sh python -m pytest tests/lerobot06)
collect_ignore = [] if installed_lerobot() and lerobot_line() == "0.6" else ["lerobot06"]

# Named fixture variants. LeRobot's h264/hevc writer fails on episodes shorter than ~5 frames,
# so the very short episodes live in the AV1 variant (LeRobot's default codec).
SPECS: dict[str, DatasetSpec] = {
    # two cameras (width 96: swscale path; width 88: filter-graph path), an image feature,
    # episodes of 1 and 2 frames
    "av1": DatasetSpec(vcodec="libsvtav1", episode_lengths=(6, 1, 2, 9)),
    # several data and video files across chunks
    "av1_multifile": DatasetSpec(
        vcodec="libsvtav1",
        episode_lengths=(3, 1, 4, 2, 5),
        image_key=None,
        data_files_size_in_mb=0.0001,
        video_files_size_in_mb=0.0001,
        chunks_size=2,
    ),
    "h264": DatasetSpec(vcodec="h264", episode_lengths=(6, 5, 9), image_key=None),
    # LeRobot's own hevc output has B-frames
    "hevc": DatasetSpec(vcodec="hevc", episode_lengths=(6, 5, 9), image_key=None),
    # a multi-dimensional numeric feature, a string feature, uint8 and int32 features
    # ten equal episodes (tests/test_tools.py rewrites their tables for the quality scores)
    "quality": DatasetSpec(
        vcodec="h264",
        episode_lengths=(12,) * 10,
        cameras=(("observation.images.top", 32, 32),),
        image_hw=(32, 32),
        tasks=("pick the cube",),
    ),
    "grid": DatasetSpec(
        vcodec="libsvtav1",
        episode_lengths=(4, 3),
        cameras=(("observation.images.top", 64, 96),),
        extra={
            "observation.grid": {"dtype": "float32", "shape": (2, 3), "names": None},
            "language.note": {"dtype": "string", "shape": (1,), "names": None},
            "observation.u8": {"dtype": "uint8", "shape": (2,), "names": None},
            "observation.i32": {"dtype": "int32", "shape": (1,), "names": None},
        },
    ),
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "install: installs ./python into a clean venv (tests/test_install.py; runs by default)"
    )
    config.addinivalue_line(
        "markers",
        "slow: training runs, torchrun, fresh processes, torch.compile, the clean-venv install "
        "(left out by `bash scripts/test.sh --quick`; the full test command runs them)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # the clean-venv install is slow too
    for item in items:
        if item.get_closest_marker("install") is not None:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Returns a function name -> path of a dataset written once per session."""
    base = tmp_path_factory.mktemp("lerobot")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = write_dataset(base / name, SPECS[name], repo_id=f"roboframes/{name}")
        return made[name]

    return get


LEROBOT03_FIXTURE = Path(__file__).resolve().parent / "lerobot03_fixture.py"


def lerobot03_python() -> str:
    """The LeRobot 0.3.3 environment's Python: ``ROBOFRAMES_LEROBOT03_PYTHON`` (set by
    ``scripts/test.sh``), else ``.venv-lerobot03``'s; the test is skipped without either."""
    named = os.environ.get("ROBOFRAMES_LEROBOT03_PYTHON")
    if named:
        return named
    local = Path(__file__).resolve().parent.parent / ".venv-lerobot03" / "bin" / "python"
    if not local.exists():
        pytest.skip("LeRobot 0.3.3's environment (.venv-lerobot03) is made by scripts/test.sh")
    return str(local)


def run_lerobot03(*args: str) -> None:
    """``tests/lerobot03_fixture.py ARGS`` in the LeRobot 0.3.3 environment."""
    r = subprocess.run(
        [lerobot03_python(), str(LEROBOT03_FIXTURE), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SVT_LOG": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    assert r.returncode == 0, f"LeRobot 0.3.3 ({' '.join(args[:2])}) failed:\n{r.stderr[-4000:]}"


@pytest.fixture(scope="session")
def v21_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LeRobot v2.1 dataset written by LeRobot 0.3.3's writer: 4 episodes (6, 1, 2, 9 frames)
    in chunk folders of 2, two AV1 cameras, an image feature, an episode whose task changes
    half-way."""
    root = tmp_path_factory.mktemp("v21") / "ds"
    run_lerobot03("write", str(root), "--lengths", "6,1,2,9", "--chunks-size", "2")
    return root
