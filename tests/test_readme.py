"""The README's Python examples run, so they cannot rot: every ```python block of README.md runs
unless the line before its fence is ``<!-- not run: reason -->``. Each block runs on its own in
a folder where ``data/sample`` is a LeRobot-written dataset at 10 fps (an example that assumes
30 fps fails here), after ``import roboframes`` and ``ds = roboframes.Dataset("data/sample")``
(what the README's first example makes)."""

from __future__ import annotations

import re
import shutil
import sys
import types
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SKIP = re.compile(r"<!--\s*not run:\s*(\S.*?)\s*-->")
PRELUDE = 'import roboframes\nds = roboframes.Dataset("data/sample")\n'


def python_blocks() -> list[tuple[int, str, str | None]]:
    """``(line, code, reason not run)`` of every ```python block of the README."""
    lines = README.read_text().splitlines()
    out: list[tuple[int, str, str | None]] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i + 1
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            marker = SKIP.search(before)
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                i += 1
            out.append((start, "\n".join(lines[start:i]) + "\n", marker.group(1) if marker else None))
        i += 1
    return out


BLOCKS = python_blocks()


def test_the_readme_has_runnable_examples() -> None:
    run = [b for b in BLOCKS if b[2] is None]
    assert len(run) >= 6, f"{len(run)} runnable blocks"
    for line, code, reason in BLOCKS:
        if reason is not None:
            assert len(reason) > 10, f"README line {line}: say why the example is not run"
        assert "/ 30" not in code, f"README line {line}: windows in steps of 1/fps, not 1/30"


@pytest.fixture(scope="module")
def workdir(dataset_dir, tmp_path_factory) -> Path:
    wd = tmp_path_factory.mktemp("readme")
    (wd / "data").mkdir()
    shutil.copytree(dataset_dir("av1"), wd / "data" / "sample")
    return wd


def _params() -> list:
    out = []
    for line, code, reason in BLOCKS:
        marks = [pytest.mark.slow] if "torch.compile" in code else []
        if reason is not None:
            marks.append(pytest.mark.skip(reason=f"not run: {reason}"))
        out.append(pytest.param(line, code, id=f"line{line}", marks=marks))
    return out


@pytest.mark.parametrize(("line", "code"), _params())
def test_readme_example_runs(line: int, code: str, workdir: Path, monkeypatch) -> None:
    for framework in ("torch", "mlx"):
        if re.search(rf"^\s*(import|from) {framework}\b", code, re.M):
            pytest.importorskip(framework)
    if "roboframes.mlx" in code:
        pytest.importorskip("roboframes.mlx")
    monkeypatch.chdir(workdir)
    shutil.rmtree(workdir / "data" / "demo", ignore_errors=True)
    # a module of its own (torch.compile looks its functions' module up in sys.modules)
    module = types.ModuleType(f"readme_line_{line}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(PRELUDE, "<prelude>", "exec"), module.__dict__)  # noqa: S102
    exec(compile(code, f"README.md:{line}", "exec"), module.__dict__)  # noqa: S102
