"""``EpisodeAwareSampler`` with LeRobot 0.4.4's signature, right for episode subsets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch


class EpisodeAwareSampler(torch.utils.data.Sampler[int]):
    """Samples the frames of the chosen episodes, optionally dropping each episode's first and
    last frames, in order or shuffled.

    Same arguments as LeRobot 0.4.4's ``EpisodeAwareSampler`` (``from``/``to`` indices of every
    episode, from ``meta.episodes``). LeRobot's yields *global* frame indices, which are wrong
    for a dataset opened with ``episodes=[...]``: such a dataset numbers its items from 0 over
    the selected episodes only. This one yields indices into the dataset made of exactly the
    episodes in ``episode_indices_to_use`` (in dataset order), which is the same thing as the
    global index when all episodes are used.
    """

    def __init__(
        self,
        dataset_from_indices: Sequence[int],
        dataset_to_indices: Sequence[int],
        episode_indices_to_use: Sequence[int] | None = None,
        drop_n_first_frames: int = 0,
        drop_n_last_frames: int = 0,
        shuffle: bool = False,
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

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            for i in torch.randperm(len(self.indices)).tolist():
                yield self.indices[i]
        else:
            yield from self.indices

    def __len__(self) -> int:
        return len(self.indices)
