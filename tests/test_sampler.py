"""GopShuffleSampler: every item once per epoch, in runs that start on keyframes, continuous
per worker; batches read through it equal random access."""

from __future__ import annotations

import numpy as np
import pytest

import roboframes


@pytest.fixture(scope="module")
def ds(dataset_dir):
    return roboframes.Dataset(dataset_dir("av1_multifile"), delta_timestamps={"observation.images.top": [-0.1, 0.0]})


def runs(batch: list[int]) -> list[list[int]]:
    """A batch's items as runs of consecutive indices."""
    out: list[list[int]] = []
    for i in sorted(batch):
        if out and out[-1][-1] + 1 == i:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def test_every_item_once_per_epoch_in_keyframe_runs(ds) -> None:
    keys = ds.keyframe_items()
    starts = {0}
    for e in ds.episode_table():
        starts.add(e["dataset_from_index"])
    s = roboframes.GopShuffleSampler(ds, batch_size=4, streams=2, unit_frames=2, seed=3)
    assert len(s) == -(-len(ds) // 4)
    for u0, u1 in s.units:
        assert keys[u0] or u0 in starts, (u0, u1)  # units start on a keyframe (or an episode)
    epochs = [list(s), list(s)]
    for batches in epochs:
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(ds)))
        assert all(len(b) == 4 for b in batches[:-1])
        # a batch is a few runs of consecutive frames, not independent draws
        assert all(len(runs(b)) <= 2 * 2 for b in batches)
    assert epochs[0] != epochs[1]  # a new order every epoch
    again = roboframes.GopShuffleSampler(ds, batch_size=4, streams=2, unit_frames=2, seed=3)
    assert list(again) == epochs[0]  # and the same order for the same seed and epoch


def test_worker_sets_continue_their_runs(ds) -> None:
    """With two workers, batch j + 2 continues the runs of batch j (same worker)."""
    s = roboframes.GopShuffleSampler(ds, batch_size=2, streams=1, unit_frames=4, num_workers=2, seed=0)
    batches = list(s)
    continued = 0
    for j in range(len(batches) - 2):
        a, b = sorted(batches[j]), sorted(batches[j + 2])
        if a[-1] + 1 == b[0]:
            continued += 1
    assert continued >= len(batches) // 3, batches


def test_batches_equal_random_access(ds) -> None:
    s = roboframes.GopShuffleSampler(ds, batch_size=3, streams=2, unit_frames=2, seed=1)
    for b in s:
        got = ds.get_batch(b)
        for k in ("observation.images.top", "index", "observation.images.top_is_pad"):
            np.testing.assert_array_equal(got[k], np.stack([ds[i][k] for i in b]))


def test_arguments_are_checked(ds) -> None:
    with pytest.raises(ValueError):
        roboframes.GopShuffleSampler(ds, batch_size=0)
    with pytest.raises(TypeError):
        roboframes.GopShuffleSampler(object(), batch_size=4)
    drop = roboframes.GopShuffleSampler(ds, batch_size=4, drop_last=True)
    assert all(len(b) == 4 for b in drop) and len(drop) == len(ds) // 4


def test_one_epoch_rule_for_the_loader_the_samplers_and_the_mlx_stream(ds) -> None:
    """Epoch e of seed s is one order everywhere: the loader's shuffle, EpisodeAwareSampler04's
    and the MLX stream's (roboframes.epochs); the loader's "gop" order is GopShuffleSampler's."""
    from roboframes.epochs import epoch_permutation

    n = len(ds)
    for epoch in (0, 3):
        want = epoch_permutation(7, epoch, n).tolist()
        loader = ds.loader(n, shuffle=True, seed=7)
        assert np.concatenate(loader.epoch_batches(epoch)).tolist() == want
        try:
            from roboframes.torch.sampler import EpisodeAwareSampler04
        except ImportError:
            pass
        else:
            s04 = EpisodeAwareSampler04([0], [n], shuffle=True, seed=7)
            assert s04.epoch_indices(epoch) == want
        try:
            import roboframes.mlx as rmx
        except ImportError:
            pass
        else:
            stream = rmx.Dataset(ds.root).to_stream().shuffle(7)
            assert stream.order(epoch).tolist() == want
        gop = ds.loader(8, shuffle="gop", seed=7, gop_streams=2, gop_unit_frames=16)
        sampler = roboframes.GopShuffleSampler(ds, 8, streams=2, unit_frames=16, seed=7)
        assert [b.tolist() for b in gop.epoch_batches(epoch)] == list(sampler.epoch_batches(epoch))


def test_every_iteration_of_a_sampler_is_an_epoch_and_its_state_says_where_it_is(ds) -> None:
    """A sampler abandoned half-way goes on with the next epoch; its state during an iteration
    is that iteration's, after it the next one's; a state saved at an epoch's end resumes with
    the next epoch; set_epoch after load keeps the loaded position."""
    s = roboframes.GopShuffleSampler(ds, 4, seed=1)
    total = len(s)
    it = iter(s)
    assert s.state_dict()["epoch"] == 0 and s.state_dict()["position"] == 0
    first = [next(it) for _ in range(2)]
    assert (s.state_dict()["epoch"], s.state_dict()["position"]) == (0, 2)
    saved = s.state_dict()
    del it  # abandoned
    assert (s.state_dict()["epoch"], s.state_dict()["position"]) == (1, 0)
    assert len(list(s)) == total and s.state_dict()["epoch"] == 2
    again = roboframes.GopShuffleSampler(ds, 4, seed=1)
    again.load_state_dict(saved)
    again.set_epoch(0)  # the usual loop: keeps the loaded position
    rest = list(again)
    assert first + rest == list(s.epoch_batches(0))
    done = dict(saved, position=total)
    again.load_state_dict(done)
    assert again.state_dict()["epoch"] == 1 and next(iter(again)) == next(iter(s.epoch_batches(1)))


def test_a_dataloader_with_workers_reads_the_epochs_set(ds) -> None:
    """torch's multi-worker DataLoader makes its batch sampler's iterator twice before reading
    (once in the base iterator, once in its reset): the epoch set with set_epoch is still the
    one read, every epoch, also with persistent workers."""
    torch = pytest.importorskip("torch")
    sampler = roboframes.GopShuffleSampler(ds, 4, seed=3, num_workers=2)
    for persistent in (False, True):
        loader = torch.utils.data.DataLoader(
            ds, batch_sampler=sampler, num_workers=2, persistent_workers=persistent, collate_fn=lambda b: b
        )
        for epoch in (0, 1, 2):
            sampler.set_epoch(epoch)
            got = [[int(item["index"]) for item in batch] for batch in loader]
            want = [sorted(b) for b in sampler.epoch_batches(epoch)]
            assert [sorted(b) for b in got] == want, (persistent, epoch)


def test_a_state_saved_at_an_epochs_end_resumes_the_usual_loop(ds) -> None:
    """The usual `for epoch in range(saved, n): set_epoch(epoch)` loop after loading a state
    saved at an epoch's end reads nothing more of that epoch and then the next one whole; on
    the loader and on a sampler alike."""
    s = roboframes.GopShuffleSampler(ds, 4, seed=5)
    done = {**s.state_dict(), "epoch": 2, "position": len(s)}
    s.load_state_dict(done)
    s.set_epoch(2)
    assert list(s) == []
    s.set_epoch(3)
    assert list(s) == list(s.epoch_batches(3))
    loader = ds.loader(4, shuffle=True, seed=5)
    state = {**loader.state_dict(), "epoch": 2, "position": len(loader)}
    loader.load_state_dict(state)
    assert (loader.epoch, loader.position) == (3, 0)  # iterating on reads epoch 3
    loader.set_epoch(2)
    assert list(loader) == [] and (loader.epoch, loader.position) == (3, 0)
    loader.set_epoch(3)
    got = [b["index"].tolist() for b in loader]
    assert got == [b.tolist() for b in loader.epoch_batches(3)]
