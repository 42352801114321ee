"""``./python`` installs into a clean virtual environment and works there; without FFmpeg's
libraries, ``import roboframes`` says what is missing and how to install it.

The install goes the way a user's does: ``uv pip install <repo>/python`` in a fresh ``uv venv``,
which builds the extension through maturin in an isolated build environment (PEP 517). The
build reuses this repository's ``target/`` (``CARGO_TARGET_DIR``), so it is quick once the
extension has been built for the test environment. Deselect with ``-m "not install"``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.install,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the install checks use Linux ELF tools"),
]

BUILD_TIMEOUT_S = 3600  # a cold build of the whole workspace on a small machine


def _tool(name: str) -> str:
    """``name`` from the test environment's bin/ (where requirements-dev.lock puts it), else PATH."""
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    assert found, f"{name} is not installed: scripts/setup.sh installs it from requirements-dev.lock"
    return found


def _clean_env() -> dict[str, str]:
    """This process's environment without what would point Python at the test environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(cmd: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


@dataclass(frozen=True)
class Venv:
    python: Path
    package: Path  # the installed roboframes package directory


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh venv with ``./python`` installed into it by ``uv pip install``."""
    uv = _tool("uv")
    venv = tmp_path_factory.mktemp("install") / "venv"
    r = _run([uv, "venv", "-q", "--python", sys.executable, str(venv)], timeout=300, env=_clean_env())
    assert r.returncode == 0, r.stdout + r.stderr
    python = venv / "bin" / "python"

    env = {**_clean_env(), "CARGO_TARGET_DIR": str(ROOT / "target")}
    # --reinstall-package: build from the current sources, not a wheel uv cached for this path
    # (uv keys a local directory's build on its pyproject.toml, not on the Rust sources)
    cmd = [uv, "pip", "install", "--python", str(python), "--reinstall-package", "roboframes", str(ROOT / "python")]
    r = _run(cmd, timeout=BUILD_TIMEOUT_S, env=env, cwd=venv.parent)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}"

    where = "import importlib.util; print(importlib.util.find_spec('roboframes').submodule_search_locations[0])"
    r = _run([str(python), "-c", where], timeout=120, env=_clean_env(), cwd=venv.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    package = Path(r.stdout.strip())
    assert package.is_relative_to(venv), f"roboframes resolves to {package}, not into {venv}"
    return Venv(python=python, package=package)


def test_clean_venv_install_reads_a_dataset(clean_venv: Venv, dataset_dir: Callable[[str], Path]) -> None:
    root = dataset_dir("av1")
    expected = json.loads((root / "meta" / "info.json").read_text())["total_frames"]
    code = f"import roboframes; ds = roboframes.Dataset({str(root)!r}); print(len(ds)); print(roboframes.__file__)"
    r = _run([str(clean_venv.python), "-c", code], timeout=300, env=_clean_env(), cwd=clean_venv.python.parents[2])
    assert r.returncode == 0, r.stdout + r.stderr
    length, where = r.stdout.split()[-2:]
    assert int(length) == expected
    assert Path(where).parent == clean_venv.package  # the installed copy, not the source tree


def test_missing_ffmpeg_library_is_a_friendly_import_error(clean_venv: Venv, tmp_path: Path) -> None:
    """The installed extension with its libavcodec dependency renamed to a library that does not
    exist (as on a machine without FFmpeg, or with another FFmpeg major version): the
    ImportError names the library and says how to install FFmpeg."""
    patchelf = _tool("patchelf")
    pkg = tmp_path / "site" / "roboframes"
    shutil.copytree(clean_venv.package, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (native,) = sorted(pkg.glob("_native*.so"))

    r = _run([patchelf, "--print-needed", str(native)], timeout=60)
    assert r.returncode == 0, r.stderr
    (needed,) = [n for n in r.stdout.split() if n.startswith("libavcodec.so")]
    missing = "libavcodec.so.999"  # no FFmpeg has this major version
    r = _run([patchelf, "--replace-needed", needed, missing, str(native)], timeout=60)
    assert r.returncode == 0, r.stderr
    r = _run([patchelf, "--print-needed", str(native)], timeout=60)
    assert missing in r.stdout.split() and needed not in r.stdout.split(), r.stdout

    code = (
        "import sys\n"
        "try:\n"
        "    import roboframes\n"
        "except ImportError as e:\n"
        "    print(f'ImportError: {e}')\n"
        "    sys.exit(3)\n"
        "print('imported', roboframes.__file__)\n"
    )
    env = {**_clean_env(), "PYTHONPATH": str(pkg.parent)}  # the patched copy before site-packages
    r = _run([str(clean_venv.python), "-c", code], timeout=300, env=env, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 3, f"expected an ImportError:\n{out}"
    message = r.stdout.removeprefix("ImportError: ")
    assert "libavcodec" in message, message
    assert "FFmpeg" in message, message
    assert "install" in message.lower(), message
