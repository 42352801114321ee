"""How the drop-in's items come out of one batch: :class:`BatchItem` (an item that knows the
batch it came from, so ``default_collate`` hands back the stacked batch instead of stacking
copies) and the checks of the indices a ``DataLoader`` passes."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch

from ..errors import IndexOutOfRangeError


class _Batch:
    """What ``__getitems__`` decoded: the stacked values per key and, per item, the values it
    handed out. It refers to no item, so items and batch form no reference cycle: a dropped
    batch is freed at once, not at the next cyclic garbage collection."""

    __slots__ = ("collated", "keys", "values")

    def __init__(self, collated: dict[str, Any], keys: list[str]) -> None:
        self.collated = collated
        self.keys = keys
        self.values: list[tuple[Any, ...]] = []


class BatchItem(dict[str, Any]):
    """An item made by :meth:`LeRobotDataset.__getitems__`: a ``dict`` of the item's values
    that also knows the batch it came from, so that ``default_collate`` can hand back the
    batch the operator already stacked instead of stacking copies of it. Items that were
    changed (a value replaced, a key added or removed, ``image_transforms`` applied) or that
    come from different batches are collated the ordinary way."""

    __slots__ = ("_batch", "_pos")
    _batch: _Batch | None
    _pos: int


def _is_whole_batch(batch: list[BatchItem], src: _Batch) -> bool:
    """True when ``batch`` is exactly the unchanged items ``src`` made, in order."""
    return len(batch) == len(src.values) and all(
        getattr(item, "_batch", None) is src
        and getattr(item, "_pos", -1) == i
        and list(item) == src.keys
        and all(map(operator.is_, item.values(), orig))
        for i, (item, orig) in enumerate(zip(batch, src.values, strict=True))
    )


def _collate_items(batch: list[BatchItem], *, collate_fn_map: Any = None) -> dict[str, Any]:
    src = getattr(batch[0], "_batch", None)
    if isinstance(src, _Batch) and _is_whole_batch(batch, src):
        return {k: src.collated[k] for k in src.keys}
    from torch.utils.data._utils.collate import collate

    return {key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in batch[0]}


try:  # torch's documented extension point of default_collate
    from torch.utils.data._utils.collate import default_collate_fn_map

    default_collate_fn_map[BatchItem] = _collate_items
except ImportError:  # pragma: no cover - items then collate as plain dicts
    pass


def _index_tensor(indices: Any) -> torch.Tensor:
    """``indices`` (integers, 0-d integer tensors, or a 1-D integer tensor) as a 1-D int64 CPU
    tensor; ``TypeError`` for floats, booleans, strings or nested sequences, as Python's
    sequences refuse them."""
    if isinstance(indices, torch.Tensor):
        if indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool:
            raise TypeError(f"dataset indices must be integers, not a tensor of {indices.dtype}")
        if indices.dim() > 1:
            raise TypeError(f"dataset indices must be a 1-D tensor, got {indices.dim()} dimensions")
        return indices.to(device="cpu", dtype=torch.int64).reshape(-1)
    out: list[int] = []
    for i in indices:
        if isinstance(i, torch.Tensor):
            if i.dim() != 0 or i.dtype.is_floating_point or i.dtype.is_complex or i.dtype == torch.bool:
                raise TypeError(
                    f"dataset indices must be integers, not a tensor of {i.dtype} with shape {tuple(i.shape)}"
                )
            out.append(int(i))
        elif isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise TypeError(f"dataset indices must be integers, not {type(i).__name__}")
        else:
            out.append(int(i))
    try:
        return torch.tensor(out, dtype=torch.int64)
    except (RuntimeError, ValueError, OverflowError):  # beyond int64
        raise IndexOutOfRangeError(f"index out of range: {max(out, key=abs)} does not fit in 64 bits") from None
