"""``GopShuffleSampler``: an opt-in batch order that decodes each frame about once per epoch.

A full shuffle asks for frames at random places, so every frame costs a seek and the decoding
of its keyframe group up to it (LeRobot writes a keyframe every 2 frames: 1.5 decoded frames
per frame, 2.5 for a window of two). This sampler keeps the randomness of the *places* and
reads each place forward:

1. Every selected episode is cut into units of about ``unit_frames`` consecutive frames that
   start on a keyframe in every camera (so a unit decodes on its own).
2. Each epoch permutes the units at random.
3. ``streams`` read the permuted units side by side: each batch takes the next
   ``batch_size / streams`` frames of every stream, and a stream that finishes its unit takes
   the next one. A stream's frames continue in the next batch where they stopped, so the
   reader that decoded them decodes on (a window's previous frame is the frame it decoded
   last), and each frame is decoded about once: a unit start costs a seek and, with a window
   on the previous frame, the keyframe group before it.
4. The order within a batch is shuffled (it does not change what is decoded).

With ``num_workers > 0`` (a DataLoader sends batch ``j`` to worker ``j % num_workers``) there
are ``num_workers`` independent sets of streams, batch ``j`` drawing from set
``j % num_workers``, so each worker's streams stay continuous; give the sampler the same
``num_workers`` as the DataLoader.

How the order differs from a full shuffle: every item still appears exactly once per epoch, in
an order that changes every epoch, but a batch holds ``streams`` runs of consecutive frames
(``batch_size / streams`` each) instead of independent draws, and consecutive batches (of one
worker) continue the same runs for up to ``unit_frames`` frames. Samples within a batch are
therefore correlated (neighbouring frames of a few episodes); more streams or shorter units
mix more and decode slightly more (every unit start costs at most one keyframe group for a
window's previous frame, and a seek).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .dataset import Dataset
from .epochs import EpochCursor, Run, check_state, current_state, epoch_rng, shard_runs, shard_size, state_int
from .errors import InvalidArgumentError

__all__ = ["GopShuffleSampler", "distributed_rank", "sampler_rank"]


def _numpy_reader_of(dataset: Any) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset
    reader = getattr(dataset, "reader", None)  # roboframes.torch.LeRobotDataset
    if isinstance(reader, Dataset):
        return reader
    raise TypeError(f"expected a roboframes dataset, got {type(dataset).__name__}")


def distributed_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: the arguments where given, else ``torch.distributed``'s when it is
    initialised, else ``RANK`` / ``WORLD_SIZE`` from the environment (as ``torchrun`` sets
    them), else a single process ``(0, 1)``."""
    dist = sys.modules.get("torch.distributed")  # never imports torch for NumPy users
    if dist is not None and dist.is_available() and dist.is_initialized():
        default_rank, default_world = dist.get_rank(), dist.get_world_size()
    else:
        default_rank, default_world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    r = default_rank if rank is None else int(rank)
    w = default_world if world_size is None else int(world_size)
    if w < 1 or not 0 <= r < w:
        raise InvalidArgumentError(f"rank must be in [0, world_size) and world_size >= 1, got rank={r}, world_size={w}")
    return r, w


def sampler_rank(rank: int | None, world_size: int | None, num_replicas: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)`` of a DataLoader sampler: a single process unless either is given
    (then the other defaults as in :func:`distributed_rank`). ``num_replicas`` is torch's
    ``DistributedSampler`` name for ``world_size``, taken as an alias. Unlike the loader,
    samplers do not shard by themselves: ``accelerate`` (LeRobot's training script) shards a
    DataLoader's batches itself, and a sampler sharding too would leave each rank
    ``1 / world_size`` of its share."""
    if num_replicas is not None:
        if world_size is not None and int(world_size) != int(num_replicas):
            raise InvalidArgumentError(
                f"world_size={world_size} and num_replicas={num_replicas} (its alias) disagree: give one"
            )
        world_size = num_replicas
    if rank is None and world_size is None:
        return 0, 1
    return distributed_rank(rank, world_size)


class WorldSizeAlias:
    """``num_replicas``: ``world_size`` under torch's ``DistributedSampler`` name, for samplers."""

    world_size: int

    @property
    def num_replicas(self) -> int:
        """``world_size`` under torch's ``DistributedSampler`` name."""
        return self.world_size


def gop_units(reader: Dataset, unit_frames: int, episodes: Sequence[int] | None = None) -> list[Run]:
    """The dataset's items cut into units of about ``unit_frames`` consecutive frames of one
    episode that start on a keyframe in every camera (so that each decodes on its own); only
    the units of ``episodes`` when given (indices of episodes of the selection)."""
    keys = reader.keyframe_items()
    lengths = {e["episode_index"]: e["length"] for e in reader.episode_table()}
    wanted = None if episodes is None else {int(e) for e in episodes}
    units: list[Run] = []
    start = 0
    for ep in reader.episodes:
        end = start + int(lengths[ep])
        if wanted is None or ep in wanted:
            u = start
            for i in range(start + 1, end):
                if i - u >= unit_frames and keys[i]:
                    units.append((u, i))
                    u = i
            if u < end:
                units.append((u, end))
        start = end
    return units


def interleave_runs(
    runs: Sequence[Run], batch_size: int, streams: int, sets: int, drop_last: bool, rng: np.random.Generator
) -> Iterator[list[int]]:
    """Batches read from ``runs`` (in order) by ``streams`` side-by-side readers per set of
    streams, batch ``j`` drawing from set ``j % sets`` (see the module docstring); the items of
    each batch in random order."""
    total = sum(b - a for a, b in runs)
    queue = list(runs)[::-1]  # pop() from the end
    # per set, per stream: [next item, end of its unit]
    lanes = [[[0, 0] for _ in range(streams)] for _ in range(sets)]
    quotas = [batch_size // streams + (1 if s < batch_size % streams else 0) for s in range(streams)]
    emitted = 0
    j = 0
    while emitted < total:
        batch: list[int] = []
        lane_set = lanes[j % sets]
        for lane, quota in zip(lane_set, quotas, strict=True):
            while quota > 0:
                if lane[0] >= lane[1]:
                    if not queue:
                        break
                    lane[0], lane[1] = queue.pop()
                take = min(quota, lane[1] - lane[0])
                batch.extend(range(lane[0], lane[0] + take))
                lane[0] += take
                quota -= take
        if len(batch) < batch_size:
            # this set ran dry: fill from the other sets' streams
            for other in lanes:
                for lane in other:
                    take = min(batch_size - len(batch), lane[1] - lane[0])
                    if take > 0:
                        batch.extend(range(lane[0], lane[0] + take))
                        lane[0] += take
        if not batch:
            break
        emitted += len(batch)
        j += 1
        if len(batch) < batch_size and drop_last:
            break
        yield [batch[i] for i in rng.permutation(len(batch))]


class GopShuffleSampler(WorldSizeAlias):
    """Batches of item indices in a decode-friendly random order; see the module docstring.

    Use it as a DataLoader ``batch_sampler`` (``DataLoader(ds, batch_sampler=sampler,
    num_workers=W)``, with the same ``num_workers`` here), or iterate it and pass each batch to
    ``roboframes.Dataset.get_batch``. Each iteration is a new epoch (``set_epoch`` chooses one).

    Resumable: ``state_dict()`` / ``load_state_dict()`` follow torchdata's ``Stateful``
    protocol, so a ``StatefulDataLoader`` restores the sampler mid-epoch exactly (the next
    iteration after ``load_state_dict`` continues the saved epoch after the batches already
    produced). Distributed: with ``world_size`` > 1 every epoch's unit order is cut into
    ``world_size`` contiguous pieces of equal size (``DistributedSampler``'s padding rule),
    one per ``rank``, so each rank reads its units forward (equal shares need a cut inside at
    most one unit at each end of a piece: that unit's second part starts mid-GOP and costs a
    little more decoding, never other values).

    Args:
        dataset: A ``roboframes.Dataset`` or ``roboframes.torch.LeRobotDataset``.
        batch_size: Items per batch.
        streams: Runs read side by side per batch (default: 4, at most ``batch_size``).
        unit_frames: Frames per unit (units end on a keyframe; an episode's last unit may be
            shorter).
        num_workers: The DataLoader's ``num_workers`` (one set of streams per worker).
        seed: Seed of the unit permutations and in-batch shuffles (epoch ``e`` uses
            ``(seed, e)``).
        drop_last: Drop the last batch of an epoch when it is smaller than ``batch_size`` (and,
            with several replicas, the epoch's tail rather than padding it).
        world_size: Ranks sharing each epoch. Default 1 (no sharding): under ``accelerate``
            leave it unset, accelerate shards the DataLoader's batches itself; with a plain DDP
            DataLoader pass it (``rank`` then defaults to ``torch.distributed``'s, else ``RANK``).
        rank: This process's rank.
        num_replicas: torch's ``DistributedSampler`` name for ``world_size`` (an alias).
        episodes: Restrict the epochs to these episodes of the dataset (default: all).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        *,
        streams: int = 4,
        unit_frames: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        drop_last: bool = False,
        world_size: int | None = None,
        rank: int | None = None,
        episodes: Sequence[int] | None = None,
        num_replicas: int | None = None,
    ) -> None:
        if batch_size < 1 or streams < 1 or unit_frames < 1 or num_workers < 0:
            raise ValueError("batch_size, streams and unit_frames must be >= 1, num_workers >= 0")
        reader = _numpy_reader_of(dataset)
        self.units = gop_units(reader, unit_frames, episodes)
        self.num_items = sum(b - a for a, b in self.units)
        self.rank, self.world_size = sampler_rank(rank, world_size, num_replicas)
        self.batch_size = batch_size
        self.streams = min(streams, batch_size)
        self.unit_frames = unit_frames
        self.sets = max(1, num_workers)
        self.seed = seed
        self.drop_last = drop_last
        self._cursor = EpochCursor()

    @property
    def epoch(self) -> int:
        """The epoch of the running iteration, else of the next one (each iteration is an epoch)."""
        return self._cursor.epoch

    def __len__(self) -> int:
        n = shard_size(self.num_items, self.world_size, self.drop_last) if self.world_size > 1 else self.num_items
        full, rest = divmod(n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def set_epoch(self, epoch: int) -> None:
        """Makes the next iteration epoch ``epoch`` (``DistributedSampler``'s convention); right
        after ``load_state_dict``, setting the loaded epoch keeps the loaded position."""
        self._cursor.set_epoch(epoch)

    def epoch_batches(self, epoch: int) -> Iterator[list[int]]:
        """The batches of epoch ``epoch`` for this rank (no state changes)."""
        rng = epoch_rng(self.seed, epoch)
        order = [self.units[i] for i in rng.permutation(len(self.units))]
        runs = shard_runs(order, self.rank, self.world_size, self.drop_last)
        return interleave_runs(runs, self.batch_size, self.streams, self.sets, self.drop_last, rng)

    def __iter__(self) -> Iterator[list[int]]:
        return self._cursor.iterate(lambda epoch: list(self.epoch_batches(epoch)))

    def _config(self) -> dict[str, Any]:
        return {
            "num_items": self.num_items,
            "units": len(self.units),
            "batch_size": self.batch_size,
            "streams": self.streams,
            "unit_frames": self.unit_frames,
            "sets": self.sets,
            "world_size": self.world_size,
            "drop_last": self.drop_last,
        }

    def state_dict(self) -> dict[str, Any]:
        """The position of the running (or last) iteration: its epoch, the batches it has
        produced (``position``), the seed, and the settings the order depends on
        (JSON-serialisable; the loader's keys)."""
        return {**self._cursor.state(), "seed": self.seed, **self._config()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Makes the next iteration continue the saved epoch after its produced batches.
        Refuses a state saved with other settings (dataset size, batch size, replicas, ...)."""
        state = current_state(state, "GopShuffleSampler")
        check_state(state, self._config(), "GopShuffleSampler")
        seed = state_int(state, "seed", "GopShuffleSampler")
        self._cursor.load(state, "GopShuffleSampler", len(self))
        self.seed = seed
