"""``EpisodeAwareSampler`` with LeRobot 0.4.4's signature, right for episode subsets
(:class:`EpisodeAwareSampler04`), and with LeRobot 0.6.x's signature, state and order
(:class:`EpisodeAwareSampler06`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ..epochs import EpochCursor, check_state, current_state, epoch_permutation, shard_order, shard_size, state_int
from ..errors import InvalidArgumentError
from ..sampler import WorldSizeAlias, sampler_rank

logger = logging.getLogger(__name__)


class EpisodeAwareSampler04(WorldSizeAlias, torch.utils.data.Sampler[int]):
    """Samples the frames of the chosen episodes, optionally dropping each episode's first and
    last frames, in order or shuffled.

    Same arguments as LeRobot 0.4.4's ``EpisodeAwareSampler`` (``from``/``to`` indices of every
    episode, from ``meta.episodes``). LeRobot's yields *global* frame indices, which are wrong
    for a dataset opened with ``episodes=[...]``: such a dataset numbers its items from 0 over
    the selected episodes only. This one yields indices into the dataset made of exactly the
    episodes in ``episode_indices_to_use`` (in dataset order), which is the same thing as the
    global index when all episodes are used.

    Beyond LeRobot's, keyword arguments for long and distributed runs:

    - ``world_size`` / ``rank`` (``num_replicas``: torch's name, an alias): each epoch is split between ranks with
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
        world_size: int | None = None,
        rank: int | None = None,
        seed: int | None = None,
        drop_last: bool = False,
        num_replicas: int | None = None,
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
        self.rank, self.world_size = sampler_rank(rank, world_size, num_replicas)
        self.drop_last = drop_last
        if seed is None:
            # sharded: every rank must draw the same order, whatever its own generator's state
            # (DistributedSampler's default); else torch.manual_seed decides, as in LeRobot
            seed = 0 if self.world_size > 1 else int(torch.empty((), dtype=torch.int64).random_().item())
        self.seed = int(seed)
        self._cursor = EpochCursor()

    @property
    def epoch(self) -> int:
        """The epoch of the running iteration, else of the next one (each iteration is an epoch)."""
        return self._cursor.epoch

    def epoch_indices(self, epoch: int) -> list[int]:
        """This rank's indices of epoch ``epoch`` (no state changes)."""
        order = np.asarray(self.indices, dtype=np.int64)
        if self.shuffle:
            order = order[epoch_permutation(self.seed, epoch, len(order))]
        mine: list[int] = shard_order(order, self.rank, self.world_size, self.drop_last).tolist()
        return mine

    def set_epoch(self, epoch: int) -> None:
        """Makes the next iteration epoch ``epoch`` (``DistributedSampler``'s convention); right
        after ``load_state_dict``, setting the loaded epoch keeps the loaded position."""
        self._cursor.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        return self._cursor.iterate(self.epoch_indices)

    def __len__(self) -> int:
        if self.world_size == 1:
            return len(self.indices)
        return shard_size(len(self.indices), self.world_size, self.drop_last)

    def _config(self) -> dict[str, Any]:
        return {
            "num_items": len(self.indices),
            "shuffle": bool(self.shuffle),
            # states of the earlier torch.randperm order (no such key) are refused, not resumed
            # into another permutation
            "order": "roboframes.epochs" if self.shuffle else None,
            "world_size": self.world_size,
            "drop_last": self.drop_last,
        }

    def state_dict(self) -> dict[str, Any]:
        """The running (or last) iteration's epoch and items produced (``position``), the
        seed, and the settings the order depends on (JSON-serialisable; the loader's keys)."""
        return {**self._cursor.state(), "seed": self.seed, **self._config()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Makes the next iteration continue the saved epoch after its produced items; refuses
        a state saved with other settings."""
        state = current_state(state, "EpisodeAwareSampler")
        check_state(state, self._config(), "EpisodeAwareSampler")
        seed = state_int(state, "seed", "EpisodeAwareSampler", signed=True)
        self._cursor.load(state, "EpisodeAwareSampler", len(self))
        self.seed = seed


class EpisodeAwareSampler06(WorldSizeAlias, torch.utils.data.Sampler[int]):
    """LeRobot 0.6.x's ``EpisodeAwareSampler``: the frames of the chosen episodes (each without
    its first ``drop_n_first_frames`` and last ``drop_n_last_frames``), in order or shuffled,
    in the same order as LeRobot's for the same arguments and seed.

    Epoch ``e`` is ``torch.randperm`` over the frames with a generator seeded from
    ``numpy.random.SeedSequence([seed, e])``, as LeRobot's; positions map to global frame
    indices through the episodes' boundaries, and through ``absolute_to_relative_idx`` (the
    dataset's, for a dataset opened with ``episodes=[...]``) to item indices. Each iteration
    advances the epoch; ``set_epoch`` and ``load_state_dict`` position the next one.

    State: LeRobot's ``{"epoch", "start_index"}``. LeRobot's ``state_dict`` gives the next
    epoch once an iteration has started; this one gives the running iteration's epoch and the
    items it has yielded, so a ``torchdata`` ``StatefulDataLoader`` resumes mid-epoch exactly;
    states LeRobot makes (``compute_sampler_state``) load as they are.

    Beyond LeRobot's, keyword-only: ``world_size`` / ``rank`` (``num_replicas``: torch's name, an
    alias) split each epoch between ranks
    with ``DistributedSampler``'s rule (``drop_last``); default: no sharding (under
    ``accelerate``, LeRobot's training script, leave them unset: it shards batches itself).
    Sharded, ``start_index`` counts the items of this rank's shard (LeRobot's
    ``compute_sampler_state`` counts positions of the whole epoch, for accelerate's sharding).
    """

    def __init__(
        self,
        dataset_from_indices: Sequence[int],
        dataset_to_indices: Sequence[int],
        episode_indices_to_use: Sequence[int] | None = None,
        drop_n_first_frames: int = 0,
        drop_n_last_frames: int = 0,
        shuffle: bool = False,
        seed: int = 0,
        absolute_to_relative_idx: dict[int, int] | None = None,
        *,
        world_size: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
        num_replicas: int | None = None,
    ) -> None:
        if drop_n_first_frames < 0:
            raise ValueError(f"drop_n_first_frames must be >= 0, got {drop_n_first_frames}")
        if drop_n_last_frames < 0:
            raise ValueError(f"drop_n_last_frames must be >= 0, got {drop_n_last_frames}")
        from_indices = np.asarray(dataset_from_indices, dtype=np.int64)
        to_indices = np.asarray(dataset_to_indices, dtype=np.int64)
        if from_indices.shape != to_indices.shape:
            raise ValueError(
                f"dataset_from_indices and dataset_to_indices must have the same length, "
                f"got {len(from_indices)} and {len(to_indices)}"
            )
        used = np.ones(len(from_indices), dtype=bool)
        if episode_indices_to_use is not None:
            used = np.zeros(len(from_indices), dtype=bool)
            used[np.asarray(list(episode_indices_to_use), dtype=np.int64)] = True
        starts = from_indices + drop_n_first_frames
        lengths = to_indices - drop_n_last_frames - starts
        for episode_idx in np.flatnonzero(used & (lengths <= 0)):
            logger.warning(
                "Episode %d has %d frames but drop_n_first_frames=%d and drop_n_last_frames=%d removes "
                "all frames. Skipping.",
                episode_idx,
                to_indices[episode_idx] - from_indices[episode_idx],
                drop_n_first_frames,
                drop_n_last_frames,
            )
        used &= lengths > 0
        if not used.any():
            raise ValueError(
                "No valid frames remain after applying drop_n_first_frames and drop_n_last_frames. "
                "All episodes were either filtered out or had too few frames."
            )
        self._starts = starts[used]
        self._cum_lengths = np.cumsum(lengths[used])
        self._num_frames = int(self._cum_lengths[-1])
        self.shuffle = shuffle
        self.seed = seed
        self._absolute_to_relative = absolute_to_relative_idx
        self.rank, self.world_size = sampler_rank(rank, world_size, num_replicas)
        self.drop_last = drop_last
        self._cursor = EpochCursor()

    @property
    def indices(self) -> list[int]:
        """Every frame index in unshuffled order (introspection)."""
        return [self._frame_index(k) for k in range(self._num_frames)]

    def _frame_index(self, position: int) -> int:
        episode = int(np.searchsorted(self._cum_lengths, position, side="right"))
        position_in_episode = position - (int(self._cum_lengths[episode - 1]) if episode > 0 else 0)
        absolute_idx = int(self._starts[episode]) + position_in_episode
        if self._absolute_to_relative is not None:
            return self._absolute_to_relative[absolute_idx]
        return absolute_idx

    def _epoch_generator(self, epoch: int) -> torch.Generator:
        epoch_seed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1, dtype=np.uint64)[0])
        return torch.Generator().manual_seed(epoch_seed)

    def epoch_positions(self, epoch: int) -> np.ndarray:
        """This rank's frame positions of epoch ``epoch`` (no state changes)."""
        if self.shuffle:
            order = torch.randperm(self._num_frames, generator=self._epoch_generator(epoch)).numpy()
        else:
            order = np.arange(self._num_frames, dtype=np.int64)
        return shard_order(order, self.rank, self.world_size, self.drop_last)

    def epoch_indices(self, epoch: int) -> list[int]:
        """This rank's item indices of epoch ``epoch`` (no state changes)."""
        return [self._frame_index(int(p)) for p in self.epoch_positions(epoch)]

    def set_epoch(self, epoch: int) -> None:
        """Makes the next iteration epoch ``epoch``; right after ``load_state_dict``, setting the
        loaded epoch keeps the loaded start."""
        self._cursor.set_epoch(epoch)

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "start_index"}``: the running iteration's epoch and items yielded, else
        the next iteration's epoch and start."""
        c = self._cursor.state()
        return {"epoch": c["epoch"], "start_index": c["position"]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Makes the next iteration epoch ``state["epoch"]`` from ``state["start_index"]``."""
        if not isinstance(state, dict):
            raise InvalidArgumentError(f"EpisodeAwareSampler state must be a dict, got {type(state).__name__}")
        start = state_int(state, "start_index", "EpisodeAwareSampler", at_most=len(self))
        self._cursor.load({"epoch": state.get("epoch"), "position": start}, "EpisodeAwareSampler", len(self))

    def __iter__(self) -> Iterator[int]:
        # the bookkeeping starts when the iteration is made, as LeRobot's; from then on the
        # state is the new iteration's (a checkpoint before its first item resumes at its start)
        return map(lambda p: self._frame_index(int(p)), self._cursor.iterate(self.epoch_positions))

    def __len__(self) -> int:
        if self.world_size == 1:
            return self._num_frames
        return shard_size(self._num_frames, self.world_size, self.drop_last)
