"""Type stub of ``roboframes.mlx._mlx_ext``, the MLX primitive built from ``mlx_ext/`` (checked
against the built module by ``mypy.stubtest`` in the test command)."""

from collections.abc import Sequence

import mlx.core as mx

CAPI_VERSION: int

def decode_op(
    op: int,
    handle: int,
    name: str,
    frame_dtype: str,
    channels_last: bool,
    offsets: Sequence[int],
    inputs: Sequence[mx.array],
    item_shapes: Sequence[Sequence[int]],
    dtypes: Sequence[mx.Dtype],
) -> list[mx.array]: ...
