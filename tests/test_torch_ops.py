"""The ``torch.ops.roboframes`` operators: opcheck, torch.compile, values, errors, GIL, and the
same built extension under the newest torch on PyPI."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import roboframes  # noqa: E402
import roboframes.torch as rt  # noqa: E402
import torch_op_checks as checks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ds(dataset_dir):
    return checks.open_dataset(dataset_dir("av1"))


@pytest.mark.parametrize(
    "check",
    [pytest.param(c, marks=pytest.mark.slow) if c is checks.check_compile else c for c in checks.CHECKS],
    ids=lambda c: c.__name__,
)
def test_operators(ds, check) -> None:
    check(ds)


def test_schemas_are_registered_from_rust() -> None:
    schemas = {
        name: str(getattr(torch.ops.roboframes, name).default._schema)
        for name in ("decode_frames", "gather", "get_batch")
    }
    assert schemas["decode_frames"].endswith("ScalarType frame_dtype, bool channels_last) -> Tensor")
    assert schemas["gather"].endswith("int[] offsets) -> (Tensor, Tensor)")
    assert schemas["get_batch"].endswith("bool channels_last) -> Tensor[]")
    # the CPU kernel is a native (boxed) kernel, not a Python one
    assert torch._C._dispatch_has_kernel_for_dispatch_key("roboframes::get_batch", "CPU")
    assert not torch._C._dispatch_has_kernel_for_dispatch_key("roboframes::get_batch", "CompositeImplicitAutograd")


def _spin_while(call) -> tuple[int, float, float]:
    """Runs ``call`` while another Python thread counts; returns (ticks during the call,
    calibrated ticks per second, call duration)."""
    ticks: list[float] = []
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # a thread holding the GIL yields it within 0.5 ms
    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.1)
        c0, t0 = len(ticks), time.perf_counter()
        time.sleep(0.1)
        rate = (len(ticks) - c0) / (time.perf_counter() - t0)
        start = time.perf_counter()
        call()
        end = time.perf_counter()
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    return sum(start < x < end for x in ticks), rate, end - start


def test_kernels_run_off_the_gil(dataset_dir) -> None:
    """While an operator runs, other Python threads run: torch releases the GIL around the
    call and the kernel never takes it back. (Holding it would leave the other thread about
    one switch interval, 0.5 ms, around the call.)"""
    ds = roboframes.Dataset(dataset_dir("av1"), delta_timestamps=checks.WINDOWS, decode_threads=1)
    idx = torch.arange(len(ds)).repeat(20)
    torch.ops.roboframes.get_batch(ds.handle, idx[:4], torch.float32, False)  # warm up
    during, rate, duration = 0, 0.0, 0.0
    for _ in range(3):  # the call must be long enough to tell
        during, rate, duration = _spin_while(
            lambda idx=idx: torch.ops.roboframes.get_batch(ds.handle, idx, torch.float32, False)
        )
        if duration > 0.05:
            break
        idx = idx.repeat(4)
    assert duration > 0.05
    # more than 10 ms worth of the other thread's progress inside the call
    assert during > rate * 0.010, (during, rate, duration)


def _run_checks(python: str, root: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python") + os.pathsep + str(ROOT / "tests")}
    r = subprocess.run(
        [python, str(ROOT / "tests" / "torch_op_checks.py"), str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.mark.slow
def test_fresh_process_registers_the_operators(dataset_dir) -> None:
    out = _run_checks(sys.executable, dataset_dir("av1"))
    assert f"ALL OK torch {torch.__version__}" in out


def test_same_build_runs_on_the_newest_torch(dataset_dir) -> None:
    """The extension built here (torch 2.10 environment, no torch at build time) loads and
    passes the operator checks under the newest torch too, without a rebuild."""
    python = os.environ.get("ROBOFRAMES_NEWEST_TORCH_PYTHON")
    if not python:
        pytest.skip("scripts/test.sh installs the newest torch in .venv-newest and sets ROBOFRAMES_NEWEST_TORCH_PYTHON")
    assert Path(python).exists(), python
    out = _run_checks(python, dataset_dir("av1"))
    line = next(x for x in out.splitlines() if x.startswith("ALL OK torch "))
    newest = line.removeprefix("ALL OK torch ")
    assert newest.split("+")[0] != torch.__version__.split("+")[0], (newest, torch.__version__)
    print(f"same build: torch {torch.__version__} here, {newest} in {python}")


def test_wrappers_accept_datasets_handles_and_lists(ds) -> None:
    a = rt.decode_frames(ds, checks.TOP, [0, 3], [0.0, 0.1])
    b = rt.decode_frames(ds.handle, checks.TOP, torch.tensor([0, 3]), torch.tensor([0.0, 0.1]))
    assert torch.equal(a, b) and a.shape == (2, 64, 96, 3) and a.dtype == torch.uint8
    with pytest.raises(TypeError):
        rt.decode_frames("not a dataset", checks.TOP, [0], [0.0])  # type: ignore[arg-type]
    empty = rt.decode_frames(ds, checks.TOP, [], [], frame_dtype=torch.float32, channels_last=False)
    assert empty.shape == (0, 3, 64, 96)
