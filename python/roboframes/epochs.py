"""Epochs, once: an epoch's random order, its split between ranks, and where an iteration over
epochs stands (what a resume state records). The loader, ``GopShuffleSampler``, both
``EpisodeAwareSampler`` lines and the MLX stream all use these, so they order, shard and resume
by one rule.

- **Order.** Epoch ``e`` of a run seeded ``seed`` draws from :func:`epoch_rng` ``(seed, e)``
  (NumPy's PCG64): a function of the seed and the epoch alone, the same in every process and
  on every rank. (``EpisodeAwareSampler06`` alone draws with ``torch.randperm`` as LeRobot
  0.6 does, since its order must equal LeRobot's.)
- **Sharding.** ``DistributedSampler``'s rule (:func:`shard_order`, :func:`shard_runs`).
- **Position.** An :class:`EpochCursor`: the epoch and the steps (batches or items) of it
  already yielded; resume states record exactly these two as ``epoch`` and ``position``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .errors import InvalidArgumentError

__all__ = [
    "EpochCursor",
    "check_state",
    "current_state",
    "epoch_permutation",
    "epoch_rng",
    "shard_order",
    "shard_runs",
    "shard_size",
    "state_int",
]

Run = tuple[int, int]  # items [start, end) read forward


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The random generator of epoch ``epoch`` of a run seeded ``seed`` (a negative seed is
    taken modulo 2**64)."""
    return np.random.default_rng((seed % (1 << 64), epoch))


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """Epoch ``epoch``'s random order of ``n`` things (int64 positions)."""
    return epoch_rng(seed, epoch).permutation(n).astype(np.int64)


# -- sharding --------------------------------------------------------------------------------
def shard_size(n: int, world_size: int, drop_last: bool) -> int:
    """Items per rank out of ``n`` with ``DistributedSampler``'s rule: ``n // world_size`` when
    ``drop_last`` (the tail is dropped), else ``ceil(n / world_size)`` (the epoch is padded by
    repeating its first items)."""
    return n // world_size if drop_last else -(-n // world_size)


def shard_order(order: np.ndarray, rank: int, world_size: int, drop_last: bool) -> np.ndarray:
    """This rank's items of an epoch's ``order``, as ``DistributedSampler`` takes them: the order
    padded (by repeating from its start) or cut to ``world_size * shard_size``, then every
    ``world_size``-th item from position ``rank``. The ranks' shards are disjoint (up to the
    padding) and together cover the epoch."""
    if world_size == 1:
        return order
    per = shard_size(len(order), world_size, drop_last)
    total = per * world_size
    if total > len(order) and len(order) > 0:
        order = np.resize(order, total)  # repeats from the start, as many times as needed
    return order[rank:total:world_size]


def shard_runs(runs: Sequence[Run], rank: int, world_size: int, drop_last: bool) -> list[Run]:
    """This rank's part of an epoch given as consecutive ``runs``: the epoch's items (in run
    order) padded or cut with ``DistributedSampler``'s rule, then cut into ``world_size``
    contiguous pieces, so that every rank reads whole runs (at most the first and last one
    cut) forward instead of interleaved items."""
    n = sum(b - a for a, b in runs)
    if world_size == 1:
        return list(runs)
    per = shard_size(n, world_size, drop_last)
    lo, hi = rank * per, (rank + 1) * per
    out: list[Run] = []
    pos = 0  # position in the padded sequence
    while pos < hi and n > 0:
        for a, b in runs:
            s, e = max(lo, pos), min(hi, pos + (b - a))
            if s < e:
                out.append((a + s - pos, a + e - pos))
            pos += b - a
            if pos >= hi:
                break
    return out


# -- resume states ---------------------------------------------------------------------------
#: Keys of resume states saved by earlier versions, and today's names for them.
LEGACY_STATE_KEYS = {"batches": "position", "items": "position", "num_replicas": "world_size"}


def current_state(state: Any, what: str) -> dict[str, Any]:
    """A saved resume state under today's key names (a state saved before the names were
    unified loads as it is); ``InvalidArgumentError`` when it is no dict."""
    if not isinstance(state, dict):
        raise InvalidArgumentError(f"{what} state must be a dict, got {type(state).__name__}")
    out = dict(state)
    for old, new in LEGACY_STATE_KEYS.items():
        if old in out and new not in out:
            out[new] = out.pop(old)
    return out


def state_int(state: dict[str, Any], key: str, what: str, *, at_most: int | None = None, signed: bool = False) -> int:
    """``state[key]`` as an int (``>= 0`` unless ``signed``, at most ``at_most``);
    ``InvalidArgumentError`` naming it otherwise (a bool, a float or text is no position)."""
    v = state.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or (v < 0 and not signed) or (at_most is not None and v > at_most):
        bound = "" if at_most is None else f", at most {at_most}"
        raise InvalidArgumentError(
            f"{what} state has an invalid {key!r}: {v!r} (an int{'' if signed else ' >= 0'}{bound})"
        )
    return v


def check_state(state: dict[str, Any], config: dict[str, Any], what: str) -> None:
    """Raises ``InvalidArgumentError`` naming every setting of ``config`` that ``state`` (a saved
    state) records differently."""
    if not isinstance(state, dict):
        raise InvalidArgumentError(f"{what} state must be a dict, got {type(state).__name__}")
    wrong = [f"{k}: saved {state.get(k)!r}, now {v!r}" for k, v in config.items() if state.get(k) != v]
    if wrong:
        raise InvalidArgumentError(f"cannot resume {what} from a state saved with other settings ({'; '.join(wrong)})")


# -- position --------------------------------------------------------------------------------
class EpochCursor:
    """Where an iteration over epochs stands: ``epoch`` and ``position``, the steps (batches or
    items) of that epoch already yielded; after an epoch's last step, the next epoch from 0.

    Between iterations the two name what the next iteration yields; during one, what it has
    yielded, so a checkpoint taken at any moment resumes exactly. ``generation`` changes with
    every repositioning (:meth:`set_epoch`, :meth:`seek`, :meth:`load`, a new
    :meth:`iterate`): an older iteration still alive then stops moving the cursor.

    Two ways to iterate, one state: the loader continues where its last iteration stopped
    (:meth:`advance` after each step, :meth:`finish` after an epoch's last); a DataLoader
    sampler's every iteration is an epoch of its own (:meth:`iterate`: one abandoned half-way
    leaves the cursor at the next epoch, as ``DistributedSampler`` would draw it).

    After :meth:`load`, the usual ``for epoch in range(saved_epoch, n): x.set_epoch(epoch)``
    loop resumes exactly: ``set_epoch`` of the saved epoch keeps the saved position (a state
    saved at an epoch's end then yields nothing more of that epoch), while iterating without
    ``set_epoch`` goes on from the saved position (at an epoch's end: the next epoch).
    """

    def __init__(self) -> None:
        self.epoch = 0
        self.position = 0
        self.generation = 0
        # (epoch, position) of the state just loaded: set_epoch of that epoch returns to it
        self._loaded: tuple[int, int] | None = None
        # the generation of a sampler iteration that has started and not yet ended
        self._running: int | None = None

    def set_epoch(self, epoch: int) -> None:
        """Makes epoch ``epoch`` the next, from its start; right after :meth:`load`, setting the
        saved epoch keeps the saved position."""
        epoch = int(epoch)
        if self._loaded is not None and self._loaded[0] == epoch:
            self.epoch, self.position = self._loaded
            return
        self._loaded = self._running = None
        self.generation += 1
        self.epoch, self.position = epoch, 0

    def seek(self, position: int, steps: int) -> None:
        """Makes step ``position`` (``0 <= position <= steps``, the epoch's ``steps``) of the
        current epoch the next; ``steps`` itself means the epoch is done."""
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= steps:
            raise InvalidArgumentError(f"seek needs a position in [0, {steps}], got {position!r}")
        self.generation += 1
        self._loaded = self._running = None
        self.position = position
        if position == steps and position > 0:
            self.epoch, self.position = self.epoch + 1, 0

    def advance(self, steps: int) -> None:
        """Counts one step yielded of an epoch of ``steps`` (the epoch ends after its last)."""
        self._loaded = None
        self.position += 1
        self.finish(steps)

    def finish(self, steps: int) -> None:
        """Ends the epoch if all its ``steps`` were yielded (an iteration over an epoch that a
        loaded state left done yields nothing and ends it here)."""
        if self.position >= steps:
            self._loaded = None
            self.epoch, self.position = self.epoch + 1, 0

    def state(self) -> dict[str, int]:
        """``{"epoch", "position"}``."""
        return {"epoch": self.epoch, "position": self.position}

    def load(self, state: dict[str, Any], what: str, steps: int) -> None:
        """Positions the cursor at a saved state's ``epoch`` and ``position`` (checked: ints,
        the position at most ``steps``)."""
        epoch = state_int(state, "epoch", what)
        position = state_int(state, "position", what, at_most=steps)
        self.epoch, self.position = epoch, 0
        self.seek(position, steps)
        self._loaded = (epoch, position)

    def begin(self) -> int:
        """A new iteration: the generation it runs under (an older live iteration, seeing the
        generation change, stops moving the cursor)."""
        self.generation += 1
        return self.generation

    def iterate(self, steps_of: Callable[[int], Sequence[Any] | np.ndarray]) -> Iterator[Any]:
        """A sampler's iteration: the steps of the current epoch (``steps_of(epoch)``) from the
        current position. The cursor moves as they are yielded; when the iteration ends,
        finished or abandoned, the next one is the next epoch. Bookkeeping starts at the call,
        not at the first ``next``: a state taken in between is this iteration's start. While
        another iteration that has started is alive, a new one is the next epoch; one made and
        never started (a DataLoader makes its sampler's iterator twice) is simply replaced."""
        if self._running is not None:
            self.epoch, self.position = self.epoch + 1, 0
        self._loaded = self._running = None
        generation, epoch, start = self.begin(), self.epoch, self.position
        return self._steps(steps_of(epoch), generation, epoch, start)

    def _steps(self, steps: Sequence[Any] | np.ndarray, generation: int, epoch: int, start: int) -> Iterator[Any]:
        if self.generation == generation:
            self._running = generation
        try:
            for k in range(start, len(steps)):
                if self.generation == generation:
                    self.position = k + 1
                yield steps[k]
        finally:
            if self.generation == generation:
                self.epoch, self.position = epoch + 1, 0
                self._running = None
