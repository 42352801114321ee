"""Checks of the ``torch.ops.roboframes`` operators that need only torch and roboframes (no
LeRobot), so they run under any torch: in the test environment (torch 2.10, LeRobot's pin)
and, from ``test_torch_ops.py``, in a second environment with the newest torch on PyPI, using
the very same built extension.

Usage: python tests/torch_op_checks.py DATASET_ROOT   (prints one line per check, exits != 0
on failure). DATASET_ROOT is a LeRobot dataset with the cameras and features of the ``av1``
fixture (see conftest.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

import roboframes
import roboframes.torch as rt

TOP, WRIST = "observation.images.top", "observation.images.wrist"
WINDOWS = {TOP: [-0.1, 0.0], "action": [0.0, 0.1, 0.2], "observation.state": [-0.2, 0.0]}


def open_dataset(root: Path) -> roboframes.Dataset:
    return roboframes.Dataset(root, delta_timestamps=WINDOWS)


def op_cases(ds: roboframes.Dataset) -> list[tuple[object, tuple]]:
    """(operator overload, arguments) pairs covering every operator, dtype and layout."""
    h = ds.handle
    eps = [e["episode_index"] for e in ds.episode_table()]
    ep = torch.tensor([eps[0], eps[0], eps[-1], eps[-1]])
    ts = torch.tensor([0.0, 0.1, 0.0, 0.2], dtype=torch.float64)
    idx = torch.tensor([0, len(ds) - 1, len(ds) // 2])
    ops = torch.ops.roboframes
    cases: list[tuple[object, tuple]] = []
    for dtype in (torch.uint8, torch.float32, torch.float16, torch.bfloat16):
        for cl in (True, False):
            cases.append((ops.decode_frames.default, (h, TOP, ep, ts, dtype, cl)))
            cases.append((ops.get_batch.default, (h, idx, dtype, cl)))
    cases.append((ops.decode_frames.default, (h, WRIST, ep[:2], ts[:2].float(), torch.uint8, True)))
    cases.append((ops.gather.default, (h, "action", idx, [-1, 0, 2])))
    cases.append((ops.gather.default, (h, "next.reward", idx.int(), [0])))
    cases.append((ops.gather.default, (h, "observation.counts", idx, [-3, 5])))
    return cases


def check_opcheck(ds: roboframes.Dataset) -> None:
    """``torch.library.opcheck``: schema, autograd registration, fake tensors, AOT dispatch."""
    for op, args in op_cases(ds):
        result = torch.library.opcheck(op, args)
        bad = {k: v for k, v in result.items() if v != "SUCCESS"}
        assert not bad, f"{op}: {bad}"


def compiled_fn(handle: int):
    def f(ep: torch.Tensor, ts: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        frames = torch.ops.roboframes.decode_frames(handle, TOP, ep, ts, torch.float32, False)
        values, pad = torch.ops.roboframes.gather(handle, "action", idx, [0, 1, 2])
        batch = torch.ops.roboframes.get_batch(handle, idx, torch.uint8, True)
        return frames.mean() + (values * (~pad).unsqueeze(-1)).sum() + batch[0].float().mean()

    return f


def check_compile(ds: roboframes.Dataset) -> None:
    """One graph, no graph breaks under ``fullgraph=True``, same result as eager, also when
    the batch size changes (dynamic shapes)."""
    f = compiled_fn(ds.handle)
    ep = torch.tensor([0, 0, 3])
    ts = torch.tensor([0.0, 0.1, 0.2], dtype=torch.float64)
    idx = torch.tensor([0, 5])
    explained = torch._dynamo.explain(f)(ep, ts, idx)
    assert explained.graph_count == 1 and explained.graph_break_count == 0, explained
    cf = torch.compile(f, fullgraph=True, dynamic=True)
    for args in ((ep, ts, idx), (ep[:2], ts[:2], torch.tensor([1, 2, 3, 4]))):
        torch.testing.assert_close(cf(*args), f(*args))


def check_values(ds: roboframes.Dataset) -> None:
    """Operator outputs equal the NumPy reader's (itself checked against LeRobot)."""
    n = len(ds)
    idx = list(range(n))
    ref = ds.get_batch(idx)
    specs = [(o.key, o.kind) for o in ds.output_specs() if o.is_array]
    got = torch.ops.roboframes.get_batch(ds.handle, torch.tensor(idx), torch.uint8, True)
    assert [k for k, _ in specs] == [k for k in ref if k in dict(specs)]
    for (k, _kind), t in zip(specs, got, strict=True):
        np.testing.assert_array_equal(t.numpy(), ref[k], err_msg=k)
    # float32 CHW is value / 255, f16/bf16 are that rounded as torch rounds it
    f32 = torch.ops.roboframes.get_batch(ds.handle, torch.tensor(idx), torch.float32, False)
    cam = [i for i, (k, kind) in enumerate(specs) if kind in ("video", "image")]
    for i in cam:
        u8 = got[i]
        chw = u8.movedim(-1, -3)
        assert torch.equal(f32[i], chw.float() / 255), specs[i][0]
        for dt in (torch.float16, torch.bfloat16):
            h = torch.ops.roboframes.get_batch(ds.handle, torch.tensor(idx), dt, True)[i]
            assert torch.equal(h, (u8.float() / 255).to(dt)), (specs[i][0], dt)
    # decode_frames at each item's own time equals the item's frame
    eps = torch.from_numpy(ref["episode_index"])
    ts = torch.from_numpy(ref["timestamp"]).double()
    frames = rt.decode_frames(ds, TOP, eps, ts)
    np.testing.assert_array_equal(frames.numpy(), ref[TOP][:, -1])  # delta 0 is the last step
    # gather with the dataset's own offsets equals the windowed items
    offsets = ds.delta_indices["action"]
    values, pad = rt.gather(ds, "action", idx, offsets)
    np.testing.assert_array_equal(values.numpy(), ref["action"])
    np.testing.assert_array_equal(pad.numpy(), ref["action_is_pad"])


def check_errors(ds: roboframes.Dataset) -> None:
    """Failures are torch RuntimeErrors from the operators, typed errors from the wrappers."""
    h = ds.handle
    ep0 = ds.episode_table()[0]["episode_index"]
    try:
        torch.ops.roboframes.decode_frames(
            h, TOP, torch.tensor([ep0]), torch.tensor([0.05], dtype=torch.float64), torch.uint8, True
        )
        raise AssertionError("no error for a time between frames")
    except RuntimeError as e:
        assert "tolerance" in str(e) and TOP in str(e), e
        assert str(e).startswith("[FrameTimestampError#"), e
        err = roboframes.errors.from_native(e)
        assert isinstance(err, roboframes.FrameTimestampError) and err.episode == ep0 and err.key == TOP, err
        assert roboframes.errors.from_native(e) is not err  # taken once; then the class by name
        assert type(roboframes.errors.from_native(e)) is roboframes.FrameTimestampError
    cases = [
        (lambda: rt.decode_frames(ds, TOP, [ep0], [0.05]), roboframes.FrameTimestampError, "tolerance"),
        (lambda: rt.decode_frames(ds, TOP, [ep0], [99.0]), roboframes.errors.InvalidArgumentError, "outside episode"),
        (lambda: rt.decode_frames(ds, "nope", [ep0], [0.0]), roboframes.errors.InvalidArgumentError, "not a video key"),
        (lambda: rt.decode_frames(ds, TOP, [12345], [0.0]), roboframes.errors.InvalidArgumentError, "episode 12345"),
        (lambda: rt.gather(ds, "task_index", [len(ds)], [0]), roboframes.errors.IndexOutOfRangeError, "out of range"),
        (lambda: rt.gather(ds, TOP, [0], [0]), roboframes.errors.InvalidArgumentError, "not a numeric"),
        (lambda: rt.get_batch(987654321, [0]), roboframes.errors.InvalidArgumentError, "no open dataset"),
        (
            lambda: torch.ops.roboframes.get_batch(h, torch.tensor([[0]]), torch.uint8, True),
            RuntimeError,
            "1-D",
        ),
        (
            lambda: torch.ops.roboframes.get_batch(h, torch.tensor([0.5]), torch.uint8, True),
            RuntimeError,
            "int64 or int32",
        ),
        (
            lambda: torch.ops.roboframes.get_batch(h, torch.tensor([0]), torch.int32, True),
            RuntimeError,
            "frame dtype",
        ),
    ]
    for call, exc, needle in cases:
        try:
            call()
        except exc as e:
            assert needle in str(e), (needle, str(e))
        else:
            raise AssertionError(f"no {exc.__name__} ({needle})")
    assert issubclass(roboframes.FrameTimestampError, ValueError)


CHECKS = [check_opcheck, check_compile, check_values, check_errors]


def main() -> None:
    root = Path(sys.argv[1])
    ds = open_dataset(root)
    for check in CHECKS:
        check(ds)
        print(f"ok {check.__name__} (torch {torch.__version__})", flush=True)
    print(f"ALL OK torch {torch.__version__}")


if __name__ == "__main__":
    main()
