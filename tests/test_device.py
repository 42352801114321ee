"""``device=``: the loader (``output="torch"``), the LeRobot drop-in and the operator wrappers.

Everywhere: ``"cpu"`` and ``"auto"`` without a GPU give the CPU batches, ``"cuda"`` without one
is a ``DeviceUnavailableError``, anything else an ``InvalidArgumentError``. Where PyTorch has a
GPU (``bash scripts/gpu_check.sh`` on a GPU machine) the CUDA batches are compared with the CPU's,
bit for bit, over several epochs of reused pinned buffers."""

from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import roboframes  # noqa: E402
import roboframes.torch as rt  # noqa: E402
from roboframes.errors import DeviceUnavailableError, InvalidArgumentError  # noqa: E402
from roboframes.torch.device import resolve_device  # noqa: E402

WINDOW = {"action": [-0.1, 0.0, 0.1], "observation.images.top": [-0.1, 0.0]}
HAS_CUDA = torch.cuda.is_available()
gpu = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (bash scripts/gpu_check.sh runs these on one)")
no_gpu = pytest.mark.skipif(HAS_CUDA, reason="checks the errors of a machine without a usable GPU")


@pytest.fixture(scope="module")
def root(dataset_dir):
    return dataset_dir("av1")


@pytest.fixture(scope="module")
def ds(root) -> roboframes.Dataset:
    return roboframes.Dataset(root, delta_timestamps=WINDOW)


def assert_same(cpu: dict[str, Any], other: dict[str, Any], device: Any) -> None:
    assert list(cpu) == list(other)
    for k, v in cpu.items():
        w = other[k]
        if isinstance(v, torch.Tensor):
            assert w.device == device, k
            assert w.dtype == v.dtype and w.shape == v.shape, k
            assert torch.equal(w.cpu(), v), k
        else:
            assert w == v, k


def test_a_gpu_where_one_is_required() -> None:
    """``scripts/gpu_check.sh`` sets ROBOFRAMES_REQUIRE_GPU=1: there, skipping the GPU tests
    would be a silent pass."""
    if os.environ.get("ROBOFRAMES_REQUIRE_GPU") == "1":
        assert HAS_CUDA, f"ROBOFRAMES_REQUIRE_GPU=1 but torch {torch.__version__} sees no GPU"


def test_resolve_device() -> None:
    cpu = torch.device("cpu")
    for d in (None, "cpu", "CPU".lower(), torch.device("cpu")):
        assert resolve_device(d) == cpu
    assert resolve_device("auto") == (torch.device("cuda", torch.cuda.current_device()) if HAS_CUDA else cpu)
    for bad in ("gpu", "cuda:x", 1.5, True, -1, [0]):
        with pytest.raises(InvalidArgumentError, match="device"):
            resolve_device(bad)
    with pytest.raises(InvalidArgumentError, match="'cpu' or 'cuda'"):
        resolve_device("meta")


@no_gpu
def test_cuda_without_a_gpu_is_a_clear_error(ds, root) -> None:
    for d in ("cuda", "cuda:0", 0, torch.device("cuda", 1)):
        with pytest.raises(DeviceUnavailableError, match="device='auto'"):
            resolve_device(d)
    with pytest.raises(DeviceUnavailableError, match="cuda"):
        ds.loader(2, output="torch", device="cuda")
    with pytest.raises(DeviceUnavailableError):
        rt.LeRobotDataset("x/y", root=root, device="cuda")
    with pytest.raises(DeviceUnavailableError):
        rt.get_batch(ds, [0, 1], device="cuda")
    # (a RuntimeError, as torch's own "no CUDA" errors are)
    assert issubclass(DeviceUnavailableError, RuntimeError)


def test_device_needs_torch_output(ds) -> None:
    for output in ("numpy", "mlx"):
        for d in ("cuda", "auto"):
            with pytest.raises(InvalidArgumentError, match="needs output='torch'"):
                ds.loader(2, output=output, device=d)
    # (cpu is where NumPy batches are anyway)
    assert ds.loader(2, output="numpy", device="cpu").device is None


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_loader_cpu_and_auto(ds, device) -> None:
    ref = ds.loader(3, seed=2, output="torch")
    out = ds.loader(3, seed=2, output="torch", device=device)
    target = resolve_device(device)
    assert out.device == target
    for _ in range(2):  # (two epochs)
        for a, b in zip(ref, out, strict=True):
            assert_same(a, b, target)


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_drop_in_cpu_and_auto(root, device) -> None:
    ref = rt.LeRobotDataset("roboframes/av1", root=root, delta_timestamps=WINDOW)
    ds = rt.LeRobotDataset("roboframes/av1", root=root, delta_timestamps=WINDOW, device=device)
    target = resolve_device(device)
    assert ds.device == target
    idx = [0, 3, len(ds) - 1]
    for a, b in zip(ref.__getitems__(idx), ds.__getitems__(idx), strict=True):
        assert_same(dict(a), dict(b), target)
    back = pickle.loads(pickle.dumps(ds))
    assert back.device == target
    # (a device index or torch.device pickles by its name)
    if HAS_CUDA:
        assert pickle.loads(pickle.dumps(rt.LeRobotDataset("roboframes/av1", root=root, device=0))).device.index == 0


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_operator_wrappers_cpu_and_auto(ds, device) -> None:
    target = resolve_device(device)
    idx = [0, 4, 7]
    for a, b in zip(rt.get_batch(ds, idx), rt.get_batch(ds, idx, device=device), strict=True):
        assert b.device == target and torch.equal(a, b.cpu())
    v, p = rt.gather(ds, "action", idx, [-1, 0, 1])
    v2, p2 = rt.gather(ds, "action", idx, [-1, 0, 1], device=device)
    assert torch.equal(v, v2.cpu()) and torch.equal(p, p2.cpu()) and v2.device == target
    eps, ts = [0, 0, 3], [0.0, 0.1, 0.2]
    f = rt.decode_frames(ds, "observation.images.top", eps, ts)
    f2 = rt.decode_frames(ds, "observation.images.top", eps, ts, device=device)
    assert torch.equal(f, f2.cpu()) and f2.device == target


# -- on a GPU -----------------------------------------------------------------------------------


@gpu
@pytest.mark.parametrize(
    # (the loader's torch output shares NumPy's arrays: no bfloat16 there)
    ("frame_dtype", "channels_last"),
    [("uint8", True), ("float32", False), ("float16", False)],
)
def test_loader_cuda_batches_equal_cpu_batches(ds, frame_dtype, channels_last) -> None:
    opts = dict(seed=5, output="torch", frame_dtype=frame_dtype, channels_last=channels_last, prefetch=2)
    ref = ds.loader(2, **opts)
    out = ds.loader(2, device="cuda", **opts)
    device = torch.device("cuda", torch.cuda.current_device())
    assert out.device == device
    kept = []
    for _ in range(3):  # (several epochs: the pinned buffers are reused many times)
        for a, b in zip(ref, out, strict=True):
            kept.append((a, b))  # (batches kept alive while later ones are filled)
    torch.cuda.synchronize()
    for a, b in kept:
        assert_same(a, b, device)


@gpu
def test_loader_cuda_normalize_and_resume(ds) -> None:
    opts = dict(seed=1, output="torch", frame_dtype="float32", normalize={"action": "MEAN_STD"})
    ref = list(ds.loader(3, **opts))
    out = ds.loader(3, device="cuda:0", **opts)
    it = iter(out)
    first = next(it)
    state = out.state_dict()
    resumed = ds.loader(3, device="cuda:0", **opts)
    resumed.load_state_dict(state)
    rest = list(resumed)
    for a, b in zip(ref, [first, *rest], strict=True):
        assert_same(a, b, torch.device("cuda", 0))


@gpu
@pytest.mark.parametrize("frame_dtype", [torch.float32, torch.uint8, torch.bfloat16])
def test_drop_in_cuda_items_equal_cpu_items(root, frame_dtype) -> None:
    kw: dict[str, Any] = dict(root=root, delta_timestamps=WINDOW, frame_dtype=frame_dtype)
    ref = rt.LeRobotDataset("roboframes/av1", **kw)
    ds = rt.LeRobotDataset("roboframes/av1", device="cuda", **kw)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=0)
    cpu_loader = torch.utils.data.DataLoader(ref, batch_size=4, num_workers=0)
    for a, b in zip(cpu_loader, loader, strict=True):
        assert_same(a, b, torch.device("cuda", torch.cuda.current_device()))


@gpu
def test_drop_in_cuda_in_a_worker_is_an_error_and_auto_is_the_cpu(root) -> None:
    ds = rt.LeRobotDataset("roboframes/av1", root=root, device="cuda")
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1)
    with pytest.raises(Exception, match="num_workers=0"):
        next(iter(loader))
    auto = rt.LeRobotDataset("roboframes/av1", root=root, device="auto")
    batch = next(iter(torch.utils.data.DataLoader(auto, batch_size=2, num_workers=1, pin_memory=True)))
    ref = next(iter(torch.utils.data.DataLoader(rt.LeRobotDataset("roboframes/av1", root=root), batch_size=2)))
    assert_same(ref, batch, torch.device("cpu"))


@gpu
def test_operators_follow_cuda_index_tensors(ds) -> None:
    idx = torch.tensor([0, 4, 7])
    cuda = idx.cuda()
    for a, b in zip(
        torch.ops.roboframes.get_batch(ds.handle, idx, torch.float32, False),
        torch.ops.roboframes.get_batch(ds.handle, cuda, torch.float32, False),
        strict=True,
    ):
        assert b.is_cuda and torch.equal(a, b.cpu())
    v, p = torch.ops.roboframes.gather(ds.handle, "action", cuda, [-1, 0])
    assert v.is_cuda and p.is_cuda
    eps = torch.tensor([0, 3]).cuda()
    ts = torch.tensor([0.0, 0.1], dtype=torch.float64).cuda()
    f = torch.ops.roboframes.decode_frames(ds.handle, "observation.images.top", eps, ts, torch.uint8, True)
    ref = rt.decode_frames(ds, "observation.images.top", [0, 3], [0.0, 0.1])
    assert f.is_cuda and torch.equal(f.cpu(), ref)

    @torch.compile(fullgraph=True)
    def batch(i: torch.Tensor) -> list[torch.Tensor]:
        return torch.ops.roboframes.get_batch(ds.handle, i, torch.float32, False)

    for a, b in zip(rt.get_batch(ds, idx), batch(cuda), strict=True):
        assert b.is_cuda and torch.equal(a, b.cpu())


@gpu
def test_pinned_staging_reuses_only_after_the_copy() -> None:
    """A pinned buffer comes back through to_device, is handed out again only for its shape
    and dtype, and refilling it does not change the copy already made."""
    from roboframes.torch.device import PinnedStaging

    st = PinnedStaging(torch.device("cuda", 0), limit=2)
    a = st.take((4, 3), np.dtype(np.float32))
    a[:] = 7
    out = st.to_device(a)
    b = st.take((4, 3), np.dtype(np.float32))
    assert b.ctypes.data == a.ctypes.data  # (reused, after the copy's event)
    b[:] = 1
    torch.cuda.synchronize()
    assert torch.equal(out.cpu(), torch.full((4, 3), 7.0))
    c = st.take((4, 3), np.dtype(np.uint8))
    assert c.ctypes.data != a.ctypes.data
