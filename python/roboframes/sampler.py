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

from collections.abc import Iterator
from typing import Any

import numpy as np

from .dataset import Dataset

__all__ = ["GopShuffleSampler"]


def _numpy_reader_of(dataset: Any) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset
    reader = getattr(dataset, "reader", None)  # roboframes.torch.LeRobotDataset
    if isinstance(reader, Dataset):
        return reader
    raise TypeError(f"expected a roboframes dataset, got {type(dataset).__name__}")


class GopShuffleSampler:
    """Batches of item indices in a decode-friendly random order; see the module docstring.

    Use it as a DataLoader ``batch_sampler`` (``DataLoader(ds, batch_sampler=sampler,
    num_workers=W)``, with the same ``num_workers`` here), or iterate it and pass each batch to
    ``roboframes.Dataset.get_batch``.

    Args:
        dataset: A ``roboframes.Dataset`` or ``roboframes.torch.LeRobotDataset``.
        batch_size: Items per batch.
        streams: Runs read side by side per batch (default: 4, at most ``batch_size``).
        unit_frames: Frames per unit (units end on a keyframe; an episode's last unit may be
            shorter).
        num_workers: The DataLoader's ``num_workers`` (one set of streams per worker).
        seed: Seed of the unit permutations and in-batch shuffles (epoch ``e`` uses
            ``(seed, e)``).
        drop_last: Drop the last batch of an epoch when it is smaller than ``batch_size``.
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
    ) -> None:
        if batch_size < 1 or streams < 1 or unit_frames < 1 or num_workers < 0:
            raise ValueError("batch_size, streams and unit_frames must be >= 1, num_workers >= 0")
        reader = _numpy_reader_of(dataset)
        keys = reader.keyframe_items()
        lengths = {e["episode_index"]: e["length"] for e in reader.episode_table()}
        units: list[tuple[int, int]] = []
        start = 0
        for ep in reader.episodes:
            end = start + int(lengths[ep])
            u = start
            for i in range(start + 1, end):
                if i - u >= unit_frames and keys[i]:
                    units.append((u, i))
                    u = i
            if u < end:
                units.append((u, end))
            start = end
        self.units = units
        self.num_items = start
        self.batch_size = batch_size
        self.streams = min(streams, batch_size)
        self.sets = max(1, num_workers)
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def __len__(self) -> int:
        full, rest = divmod(self.num_items, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        queue = [self.units[i] for i in rng.permutation(len(self.units))][::-1]  # pop() from the end
        # per set, per stream: [next item, end of its unit]
        lanes = [[[0, 0] for _ in range(self.streams)] for _ in range(self.sets)]
        quotas = [
            self.batch_size // self.streams + (1 if s < self.batch_size % self.streams else 0)
            for s in range(self.streams)
        ]
        emitted = 0
        j = 0
        while emitted < self.num_items:
            batch: list[int] = []
            lane_set = lanes[j % self.sets]
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
            if len(batch) < self.batch_size:
                # this set ran dry: fill from the other sets' streams
                for other in lanes:
                    for lane in other:
                        take = min(self.batch_size - len(batch), lane[1] - lane[0])
                        if take > 0:
                            batch.extend(range(lane[0], lane[0] + take))
                            lane[0] += take
            if not batch:
                break
            emitted += len(batch)
            j += 1
            if len(batch) < self.batch_size and self.drop_last:
                break
            yield [batch[i] for i in rng.permutation(len(batch))]
