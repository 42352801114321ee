"""``EpisodeAwareSampler`` with LeRobot 0.4.4's signature, right for episode subsets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ..sampler import check_state, sampler_rank, shard_order, shard_size


class EpisodeAwareSampler(torch.utils.data.Sampler[int]):
    """Samples the frames of the chosen episodes, optionally dropping each episode's first and
    last frames, in order or shuffled.

    Same arguments as LeRobot 0.4.4's ``EpisodeAwareSampler`` (``from``/``to`` indices of every
    episode, from ``meta.episodes``). LeRobot's yields *global* frame indices, which are wrong
    for a dataset opened with ``episodes=[...]``: such a dataset numbers its items from 0 over
    the selected episodes only. This one yields indices into the dataset made of exactly the
    episodes in ``episode_indices_to_use`` (in dataset order), which is the same thing as the
    global index when all episodes are used.

    Beyond LeRobot's, keyword arguments for long and distributed runs:

    - ``num_replicas`` / ``rank``: each epoch is split between ranks with
      ``DistributedSampler``'s rule (padded by repeating, or its tail dropped with
      ``drop_last``). Default: no sharding; under ``accelerate`` (LeRobot's training script)
      leave them unset, as accelerate shards the DataLoader's batches itself. When only one is
      given the other defaults to ``torch.distributed``'s, else ``RANK``/``WORLD_SIZE``.
    - ``seed``: epoch ``e`` is shuffled with a generator seeded by ``(seed, e)``; default: a seed
      drawn from torch's global generator when the sampler is made (so ``torch.manual_seed``
      still decides the order), or 0 when sharding (every rank must draw the same order). Each iteration is a new epoch; ``set_epoch`` chooses one.
    - ``state_dict`` / ``load_state_dict`` (torchdata's ``Stateful`` protocol): a
      ``StatefulDataLoader`` resumes the sampler mid-epoch exactly.
    """

    def __init__(
        self,
        dataset_from_indices: Sequence[int],
        dataset_to_indices: Sequence[int],
        episode_indices_to_use: Sequence[int] | None = None,
        drop_n_first_frames: int = 0,
        drop_n_last_frames: int = 0,
        shuffle: bool = False,
        *,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int | None = None,
        drop_last: bool = False,
    ) -> None:
        use = None if episode_indices_to_use is None else {int(e) for e in episode_indices_to_use}
        indices: list[int] = []
        position = 0  # item index of the current episode's first frame in the selection
        for episode_idx, (start, end) in enumerate(zip(dataset_from_indices, dataset_to_indices, strict=True)):
            start, end = int(start), int(end)
            if use is not None and episode_idx not in use:
                continue
            base = start if use is None else position
            indices.extend(range(base + drop_n_first_frames, base + (end - start) - drop_n_last_frames))
            position += end - start
        self.indices = indices
        self.shuffle = shuffle
        self.rank, self.num_replicas = sampler_rank(rank, num_replicas)
        self.drop_last = drop_last
        if seed is None:
            # sharded: every rank must draw the same order, whatever its own generator's state
            # (DistributedSampler's default); else torch.manual_seed decides, as in LeRobot
            seed = 0 if self.num_replicas > 1 else int(torch.empty((), dtype=torch.int64).random_().item())
        self.seed = int(seed)
        #: The epoch the next iteration yields (each iteration advances it).
        self.epoch = 0
        self._current = (0, 0)  # (epoch of the running iteration, items it produced)
        self._skip = 0

    def epoch_indices(self, epoch: int) -> list[int]:
        """This rank's indices of epoch ``epoch`` (no state changes)."""
        order = np.asarray(self.indices, dtype=np.int64)
        if self.shuffle:
            g = torch.Generator()
            seq = np.random.SeedSequence([self.seed % (1 << 64), epoch])
            g.manual_seed(int(seq.generate_state(1, np.uint64)[0]) >> 1)
            order = order[torch.randperm(len(order), generator=g).numpy()]
        mine: list[int] = shard_order(order, self.rank, self.num_replicas, self.drop_last).tolist()
        return mine

    def set_epoch(self, epoch: int) -> None:
        """Makes the next iteration epoch ``epoch`` (``DistributedSampler``'s convention); right
        after ``load_state_dict``, setting the loaded epoch keeps the loaded position."""
        if int(epoch) != self.epoch:
            self._skip = 0
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        epoch, skip = self.epoch, self._skip
        self.epoch, self._skip = epoch + 1, 0
        self._current = (epoch, skip)
        indices = self.epoch_indices(epoch)
        for j in range(skip, len(indices)):
            self._current = (epoch, j + 1)
            yield indices[j]

    def __len__(self) -> int:
        if self.num_replicas == 1:
            return len(self.indices)
        return shard_size(len(self.indices), self.num_replicas, self.drop_last)

    def _config(self) -> dict[str, Any]:
        return {
            "num_items": len(self.indices),
            "shuffle": bool(self.shuffle),
            "num_replicas": self.num_replicas,
            "drop_last": self.drop_last,
        }

    def state_dict(self) -> dict[str, Any]:
        """The running (or last) iteration's epoch and items produced, the seed, and the
        settings the order depends on (JSON-serialisable)."""
        epoch, produced = self._current
        return {"epoch": epoch, "items": produced, "seed": self.seed, **self._config()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Makes the next iteration continue the saved epoch after its produced items; refuses
        a state saved with other settings."""
        check_state(state, self._config(), "EpisodeAwareSampler")
        self.seed = int(state["seed"])
        self.epoch, self._skip = int(state["epoch"]), int(state["items"])
        self._current = (self.epoch, self._skip)
