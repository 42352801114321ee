"""``Dataset.loader``: epochs, prefetch in the core, resume, sharding, the decoded-frame cache,
and the resumable samplers of the torch drop-in."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import roboframes
from roboframes.errors import InvalidArgumentError

WINDOW = {"observation.images.top": [-0.1, 0.0], "action": [0.0, 0.1]}


@pytest.fixture(scope="module")
def root(dataset_dir) -> Path:
    return dataset_dir("av1_multifile")


@pytest.fixture(scope="module")
def ds(root) -> roboframes.Dataset:
    return roboframes.Dataset(root, delta_timestamps=WINDOW)


def assert_batches_equal(a: dict, b: dict, what: str = "") -> None:
    assert list(a) == list(b), what
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, list):
            assert x == y, f"{what} {k}"
        else:
            x, y = np.asarray(x), np.asarray(y)
            assert x.dtype == y.dtype and x.shape == y.shape, f"{what} {k}"
            assert np.array_equal(x, y), f"{what} {k}"


def prefetch_threads() -> int:
    """Threads of this process named by the core's prefetcher."""
    n = 0
    for t in Path("/proc/self/task").iterdir():
        try:
            n += (t / "comm").read_text().strip().startswith("roboframes-pref")  # (cut at 15 chars)
        except OSError:
            pass
    return n


# -- epochs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [True, False, "gop"])
def test_every_item_once_per_epoch_with_the_values_of_get_batch(ds, shuffle) -> None:
    loader = ds.loader(4, shuffle=shuffle, seed=5, gop_unit_frames=2, gop_streams=2)
    epochs = []
    for e in range(2):
        assert loader.epoch == e and loader.position == 0
        batches = list(loader)
        assert len(batches) == len(loader) == -(-len(ds) // 4)
        got = [int(i) for b in batches for i in b["index"]]
        assert sorted(got) == list(range(len(ds)))  # (the fixture's global index = item index)
        for j, b in enumerate(batches):
            assert_batches_equal(b, ds.get_batch(loader.epoch_batches(e)[j]), f"epoch {e} batch {j}")
        epochs.append(got)
    if shuffle:
        assert epochs[0] != epochs[1]  # a new order every epoch
    else:
        assert epochs[0] == epochs[1] == list(range(len(ds)))
    again = ds.loader(4, shuffle=shuffle, seed=5, gop_unit_frames=2, gop_streams=2)
    again.set_epoch(1)
    assert [int(i) for b in again for i in b["index"]] == epochs[1]  # reproducible from (seed, epoch)


def test_drop_last_episodes_and_cameras(ds) -> None:
    top = "observation.images.top"
    loader = ds.loader(3, drop_last=True, episodes=[0, 2, 4], cameras=[top], frame_cache_bytes=1 << 30)
    eps = {e["episode_index"]: e for e in ds.episode_table()}
    n = sum(eps[e]["length"] for e in (0, 2, 4))
    assert len(loader) == n // 3
    seen = []
    for b in loader:
        assert b[top].shape[0] == 3
        assert set(int(e) for e in b["episode_index"]) <= {0, 2, 4}
        # the other cameras are neither returned nor decoded
        assert not any(k.startswith("observation.images.") and not k.startswith(top) for k in b)
        seen += [int(i) for i in b["index"]]
    assert len(seen) == len(set(seen)) == (n // 3) * 3
    stats = ds.frame_cache_stats()
    assert stats is not None and 0 < stats["frames"] <= n  # frames of one camera only
    ds.set_frame_cache(0)
    assert ds.frame_cache_stats() is None


def test_bad_arguments_are_clear_errors(ds) -> None:
    for kwargs, match in [
        ({"shuffle": "yes"}, "shuffle"),
        ({"output": "jax"}, "output"),
        ({"prefetch": -1}, "prefetch"),
        ({"episodes": [99]}, "episode 99"),
        ({"cameras": ["nope"]}, "camera key"),
        ({"rank": 2, "world_size": 2}, "rank"),
        ({"frame_cache_bytes": -1}, "frame_cache_bytes"),
    ]:
        with pytest.raises(InvalidArgumentError, match=match):
            ds.loader(2, **kwargs)
    # a value of the wrong type is a TypeError, as on every surface
    for kwargs in ({"episodes": "12"}, {"episodes": [0.5]}, {"episodes": [True]}):
        with pytest.raises(TypeError, match="episode"):
            ds.loader(2, **kwargs)
    with pytest.raises(TypeError):
        ds.loader(2, frame_cache=1)  # an unknown option
    # the frame cache's earlier name still works, with a warning
    with pytest.warns(DeprecationWarning, match="frame_cache_bytes"):
        ds.loader(2, cache_bytes=1 << 20)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        ds.loader(0)
    with pytest.raises(InvalidArgumentError, match="seek"):
        ds.loader(2).seek(10_000)


# -- outputs ---------------------------------------------------------------------------------


def test_torch_output(ds) -> None:
    torch = pytest.importorskip("torch")
    ref = ds.loader(5, seed=1)
    out = ds.loader(5, seed=1, output="torch", frame_dtype="float32", channels_last=False)
    for a, t in zip(ref, out, strict=True):
        for k, v in a.items():
            if isinstance(v, list):
                assert t[k] == v
                continue
            assert isinstance(t[k], torch.Tensor)
            if k in ds.camera_keys:
                dims = (0, 1, 4, 2, 3) if v.ndim == 5 else (0, 3, 1, 2)
                expect = torch.from_numpy(v).permute(*dims).float() / 255
                assert torch.equal(t[k], expect)
                assert t[k].dtype == torch.float32 and t[k].is_contiguous()
            else:
                assert torch.equal(t[k], torch.from_numpy(v))


def test_mlx_output_goes_through_the_primitive(ds) -> None:
    mx = pytest.importorskip("mlx.core")
    ref = list(ds.loader(4, seed=2, shuffle="gop", gop_unit_frames=2))
    got = list(ds.loader(4, seed=2, shuffle="gop", gop_unit_frames=2, output="mlx", prefetch=3))
    assert len(ref) == len(got)
    for a, m in zip(ref, got, strict=True):
        assert list(a) == list(m)
        for k, v in a.items():
            if isinstance(v, list):
                assert m[k] == v
            else:
                assert isinstance(m[k], mx.array)
                assert np.array_equal(np.array(m[k]), v), k
    with pytest.raises(InvalidArgumentError, match="cameras"):
        ds.loader(2, output="mlx", cameras=["observation.images.top"])


# -- prefetch: stopping, threads, fork -------------------------------------------------------


def test_breaking_deleting_and_errors_stop_the_work_and_leak_no_thread(ds) -> None:
    before = prefetch_threads()
    for _ in range(20):
        loader = ds.loader(2, prefetch=4)
        for _ in loader:
            break  # leaves 4 prefetched batches behind: cancelled
        assert loader.position == 1
        del loader
    assert prefetch_threads() == before

    loader = ds.loader(2, prefetch=3)
    with pytest.raises(ZeroDivisionError):
        for j, _ in enumerate(loader):
            if j == 2:
                1 / 0  # noqa: B018  (an exception in the training step)
    assert loader.position == 3
    rest = list(loader)  # continues where the failed loop stopped
    assert len(rest) == len(loader) - 3
    assert prefetch_threads() == before + 1  # one idle thread per live loader
    loader.close()
    assert prefetch_threads() == before


def test_keyboard_interrupt_stops_the_loop_cleanly(ds) -> None:
    loader = ds.loader(2, prefetch=4)
    with pytest.raises(KeyboardInterrupt):
        for j, _ in enumerate(loader):
            if j == 1:
                os.kill(os.getpid(), signal.SIGINT)
                signal.getsignal(signal.SIGINT)  # (a bytecode boundary to deliver it)
    batches = list(loader)
    assert len(batches) == len(loader) - 2


def test_fork_after_use(ds) -> None:
    loader = ds.loader(3, prefetch=2, frame_cache_bytes=1 << 28)
    first = list(loader)
    fresh = ds.loader(3, prefetch=0)
    fresh.set_epoch(1)
    expect = [b["index"].tolist() for b in fresh]
    pid = os.fork()
    if pid == 0:  # child: the same loader (next epoch) and dataset work here
        code = 1
        try:
            got = [b["index"].tolist() for b in loader]
            code = 0 if got == expect and len(ds.get_batch([0, 1])["index"]) == 2 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(first) == len(loader)
    assert [b["index"].tolist() for b in loader] == expect  # the parent goes on too


# -- resume ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [True, False, "gop"])
def test_resume_continues_exactly(ds, shuffle) -> None:
    def make(**kw):
        return ds.loader(3, shuffle=shuffle, seed=11, gop_unit_frames=2, **kw)

    n = len(make())
    m = make()
    full = list(m) + list(m)  # epochs 0 and 1
    for k in (0, 1, n - 1, n, n + 2):
        a = make(prefetch=2)
        taken = 0
        while taken < k:  # (breaking out and iterating again continues, across epochs)
            for _ in a:
                taken += 1
                if taken == k:
                    break
        state = json.loads(json.dumps(a.state_dict()))
        assert (state["epoch"], state["position"]) == divmod(k, n)
        b = make(prefetch=1)
        b.load_state_dict(state)
        rest = []
        while b.epoch < 2:
            rest += list(b)
        assert len(rest) == len(full) - k
        for j, (x, y) in enumerate(zip(rest, full[k:], strict=True)):
            assert_batches_equal(x, y, f"k={k} batch {j}")


def test_resume_after_sigkill(ds, root, tmp_path) -> None:
    """A process saves the state after 3 batches and is killed with SIGKILL; a new process's
    loader restored from it yields what the first would have yielded next."""
    state_file = tmp_path / "state.json"
    script = textwrap.dedent(
        f"""
        import json, os, signal
        import roboframes
        ds = roboframes.Dataset({str(root)!r}, delta_timestamps={WINDOW!r})
        loader = ds.loader(3, shuffle="gop", seed=4, gop_unit_frames=2, prefetch=4)
        loader.set_epoch(1)
        for j, batch in enumerate(loader):
            if j == 2:
                with open({str(state_file)!r} + ".tmp", "w") as f:
                    json.dump(loader.state_dict(), f)
                os.replace({str(state_file)!r} + ".tmp", {str(state_file)!r})
                os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    state = json.loads(state_file.read_text())
    restored = ds.loader(3, shuffle="gop", seed=4, gop_unit_frames=2)
    restored.load_state_dict(state)
    reference = ds.loader(3, shuffle="gop", seed=4, gop_unit_frames=2)
    reference.set_epoch(1)
    expect = list(reference)[3:]
    got = list(restored)
    assert len(got) == len(expect) > 0
    for x, y in zip(got, expect, strict=True):
        assert_batches_equal(x, y)


def test_set_epoch_after_loading_keeps_the_position(ds) -> None:
    """The usual DDP loop (`set_epoch(epoch)` before each epoch) resumes mid-epoch."""
    a = ds.loader(3, seed=2)
    it = iter(a)
    next(it), next(it)
    state = a.state_dict()
    expect = [b["index"].tolist() for b in it]
    b = ds.loader(3, seed=2)
    b.load_state_dict(state)
    b.set_epoch(state["epoch"])
    assert [x["index"].tolist() for x in b] == expect
    b.set_epoch(0)  # an explicit other choice starts that epoch over
    assert b.position == 0 and len(list(b)) == len(b)


def test_repositioning_during_an_iteration_is_an_error(ds) -> None:
    loader = ds.loader(2)
    it = iter(loader)
    next(it)
    loader.seek(0)
    with pytest.raises(InvalidArgumentError, match="repositioned"):
        next(it)
    first = iter(loader)
    next(first)
    second = iter(loader)  # a new iteration takes over
    next(second)
    with pytest.raises(InvalidArgumentError, match="repositioned"):
        next(first)


def test_a_state_of_other_settings_is_refused(ds, dataset_dir) -> None:
    state = ds.loader(3, seed=1).state_dict()
    for kwargs, match in [
        ({"batch_size": 4}, "batch_size"),
        ({"world_size": 2, "rank": 0}, "world_size"),
        ({"shuffle": "gop"}, "shuffle"),
        ({"episodes": [0, 1]}, "dataset"),
    ]:
        args = {"batch_size": 3, **kwargs}
        with pytest.raises(InvalidArgumentError, match=match):
            ds.loader(args.pop("batch_size"), **args).load_state_dict(state)
    other = roboframes.Dataset(dataset_dir("h264"))
    with pytest.raises(InvalidArgumentError, match="dataset"):
        other.loader(3).load_state_dict(state)
    with pytest.raises(InvalidArgumentError, match="loader state"):
        ds.loader(3).load_state_dict({"epoch": 0})
    # another rank of the same world may load it (every rank is at the same position)
    ds.loader(3, seed=1, rank=1, world_size=2).load_state_dict(ds.loader(3, seed=1, rank=0, world_size=2).state_dict())
    # a bool, float, negative or out-of-range epoch, position or seed is no state
    for key, bad in [("epoch", True), ("position", 1.0), ("position", -1), ("position", 10**9), ("seed", "1")]:
        with pytest.raises(InvalidArgumentError, match=key):
            ds.loader(3, seed=1).load_state_dict({**state, key: bad})


def test_sampler_states_are_checked(root) -> None:
    ds = roboframes.Dataset(root)
    s = roboframes.GopShuffleSampler(ds, 3, unit_frames=2, seed=1)
    state = s.state_dict()
    for key, bad in [("epoch", False), ("position", 2.5), ("position", len(s) + 1), ("seed", None)]:
        with pytest.raises(InvalidArgumentError, match=key):
            roboframes.GopShuffleSampler(ds, 3, unit_frames=2, seed=1).load_state_dict({**state, key: bad})
    pytest.importorskip("torch")
    import roboframes.torch as rt

    frm = [e["dataset_from_index"] for e in ds.episode_table()]
    to = [e["dataset_to_index"] for e in ds.episode_table()]
    t = rt.EpisodeAwareSampler(frm, to, shuffle=True, seed=5)
    tstate = t.state_dict()
    for key, bad in [("epoch", True), ("position", "3"), ("position", len(t) + 1)]:
        with pytest.raises(InvalidArgumentError, match=key):
            rt.EpisodeAwareSampler(frm, to, shuffle=True, seed=5).load_state_dict({**tstate, key: bad})


def test_one_vocabulary_for_sharding_and_resume(root) -> None:
    """Loader and samplers shard by rank/world_size (num_replicas: torch's name, an alias) and
    save their position under one key; states saved under the earlier keys still load."""
    ds = roboframes.Dataset(root)
    a = roboframes.GopShuffleSampler(ds, 3, unit_frames=2, seed=1, world_size=2, rank=1)
    b = roboframes.GopShuffleSampler(ds, 3, unit_frames=2, seed=1, num_replicas=2, rank=1)
    assert list(a) == list(b) and a.world_size == a.num_replicas == 2
    with pytest.raises(InvalidArgumentError, match="disagree"):
        roboframes.GopShuffleSampler(ds, 3, world_size=2, num_replicas=3, rank=0)
    it = iter(a)
    next(it)
    state = a.state_dict()
    assert state["position"] == 1 and state["world_size"] == 2
    assert {"epoch", "position", "seed", "world_size"} <= set(ds.loader(3, rank=0, world_size=2).state_dict())
    legacy = {
        ("batches" if k == "position" else "num_replicas" if k == "world_size" else k): v for k, v in state.items()
    }
    c = roboframes.GopShuffleSampler(ds, 3, unit_frames=2, seed=1, world_size=2, rank=1)
    c.load_state_dict(legacy)
    assert list(c) == list(it)
    pytest.importorskip("torch")
    import roboframes.torch as rt

    frm = [e["dataset_from_index"] for e in ds.episode_table()]
    to = [e["dataset_to_index"] for e in ds.episode_table()]
    t = rt.EpisodeAwareSampler(frm, to, shuffle=True, seed=5, world_size=2, rank=0)
    assert t.num_replicas == 2 and len(t) == len(rt.EpisodeAwareSampler(frm, to, num_replicas=2, rank=0))
    ti = iter(t)
    next(ti)
    tstate = t.state_dict()
    assert tstate["position"] == 1
    old = {("items" if k == "position" else "num_replicas" if k == "world_size" else k): v for k, v in tstate.items()}
    u = rt.EpisodeAwareSampler(frm, to, shuffle=True, seed=5, world_size=2, rank=0)
    u.load_state_dict(old)
    assert list(u) == list(ti)


# -- sharding --------------------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [True, False, "gop"])
@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_split_every_epoch(ds, shuffle, drop_last) -> None:
    world = 3
    n = len(ds)
    for epoch in range(2):
        shards = []
        for rank in range(world):
            loader = ds.loader(2, shuffle=shuffle, seed=3, rank=rank, world_size=world, drop_last=drop_last)
            loader.set_epoch(epoch)
            batches = loader.epoch_batches(epoch)
            assert len(batches) == len(loader)
            shards.append([int(i) for b in batches for i in b])
        assert len({len(s) for s in shards}) == 1  # equal shares
        flat = [i for s in shards for i in s]
        per = n // world if drop_last else -(-n // world)
        if drop_last:
            assert len(flat) == len(set(flat))  # disjoint
            assert len(flat) == world * (per - per % 2)  # each rank's last, smaller batch dropped
        else:
            assert set(flat) == set(range(n))  # together they cover the epoch
            assert len(flat) - len(set(flat)) == per * world - n  # only the padding repeats
        if shuffle == "gop":
            # each rank reads few runs of consecutive items, not interleaved frames
            for s in shards:
                steps = sum(1 for a, b in zip(sorted(s), sorted(s)[1:], strict=False) if b != a + 1)
                assert steps <= len(s) // 2 + 2


def test_rank_defaults_come_from_the_environment(ds, monkeypatch) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    loader = ds.loader(2)
    assert (loader.rank, loader.world_size) == (1, 2)
    per_rank = math.ceil(len(ds) / 2)
    assert len(loader) == math.ceil(per_rank / 2)


# -- decoded-frame cache ---------------------------------------------------------------------


@pytest.mark.parametrize("frame_dtype, channels_last", [("uint8", True), ("float32", False), ("float16", True)])
def test_cached_frames_equal_decoded_ones(root, frame_dtype, channels_last) -> None:
    plain = roboframes.Dataset(root, delta_timestamps=WINDOW, frame_dtype=frame_dtype, channels_last=channels_last)
    cached = roboframes.Dataset(root, delta_timestamps=WINDOW, frame_dtype=frame_dtype, channels_last=channels_last)
    loader = cached.loader(4, seed=9, frame_cache_bytes=1 << 30)
    ref = plain.loader(4, seed=9)
    for epoch in range(3):
        for a, b in zip(ref, loader, strict=True):
            assert_batches_equal(a, b, f"epoch {epoch}")
        stats = cached.frame_cache_stats()
        assert stats is not None
        if epoch == 0:
            warm = stats["frames"]
            assert warm > 0 and stats["bytes"] <= stats["capacity"]
        else:
            assert stats["frames"] == warm  # everything was cached in epoch 0
    assert stats["hits"] > 2 * stats["misses"]


def test_a_small_cache_stays_within_its_budget(root) -> None:
    ds = roboframes.Dataset(root)
    frame = int(np.prod(ds.frame_dims("observation.images.top")))
    ds.set_frame_cache(3 * frame)
    ref = roboframes.Dataset(root)
    for a, b in zip(ref.loader(5, seed=0), ds.loader(5, seed=0), strict=True):
        assert_batches_equal(a, b)
    for a, b in zip(ref.loader(5, seed=1), ds.loader(5, seed=1), strict=True):
        assert_batches_equal(a, b)
    stats = ds.frame_cache_stats()
    assert stats is not None and 0 < stats["bytes"] <= 3 * frame and stats["hits"] > 0


# -- the torch drop-in's samplers under torchdata's StatefulDataLoader --------------------------


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("kind", ["gop", "episode_aware"])
def test_stateful_dataloader_resumes_the_samplers(root, kind, num_workers) -> None:
    pytest.importorskip("torch")
    sdl = pytest.importorskip("torchdata.stateful_dataloader")
    import roboframes.torch as rt

    ds = rt.LeRobotDataset("roboframes/av1_multifile", root=root, delta_timestamps=WINDOW)
    eps = ds.meta.episodes

    def make():
        if kind == "gop":
            s = roboframes.GopShuffleSampler(ds, 3, unit_frames=2, streams=2, num_workers=num_workers, seed=1)
            return sdl.StatefulDataLoader(ds, batch_sampler=s, num_workers=num_workers)
        s = rt.EpisodeAwareSampler(
            eps["dataset_from_index"], eps["dataset_to_index"], drop_n_last_frames=1, shuffle=True, seed=1
        )
        return sdl.StatefulDataLoader(ds, batch_size=3, sampler=s, num_workers=num_workers)

    ref = make()
    epochs = [[b["index"].tolist() for b in ref] for _ in range(2)]
    n = len(epochs[0])
    for k in (1, n - 1):
        a = make()
        it = iter(a)
        for _ in range(k):
            next(it)
        state = a.state_dict()
        del it
        b = make()
        b.load_state_dict(state)
        assert [x["index"].tolist() for x in b] == epochs[0][k:], (kind, k)
        assert [x["index"].tolist() for x in b] == epochs[1]  # and the next epoch follows


def test_samplers_shard_when_asked(root) -> None:
    pytest.importorskip("torch")
    import roboframes.torch as rt

    ds = roboframes.Dataset(root)
    frm = [e["dataset_from_index"] for e in ds.episode_table()]
    to = [e["dataset_to_index"] for e in ds.episode_table()]
    shards = [list(rt.EpisodeAwareSampler(frm, to, shuffle=True, seed=3, num_replicas=2, rank=r)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == math.ceil(len(ds) / 2)
    assert set(shards[0]) | set(shards[1]) == set(range(len(ds)))
    gop = [list(roboframes.GopShuffleSampler(ds, 2, unit_frames=2, num_replicas=2, rank=r)) for r in range(2)]
    flat = [i for s in gop for b in s for i in b]
    assert set(flat) == set(range(len(ds))) and len(gop[0]) == len(gop[1])
    # unset, they do not shard (accelerate shards a DataLoader's batches itself)
    assert len(rt.EpisodeAwareSampler(frm, to)) == len(ds)
    # sharded without a seed, ranks whose global generators differ still draw one order
    import torch

    default = []
    for r in range(2):
        torch.manual_seed(100 + r)
        default.append(list(rt.EpisodeAwareSampler(frm, to, shuffle=True, num_replicas=2, rank=r)))
    assert set(default[0]) | set(default[1]) == set(range(len(ds)))
    assert len(set(default[0]) & set(default[1])) <= 2 * math.ceil(len(ds) / 2) - len(ds)
    # set_epoch right after load_state_dict keeps the loaded position
    s = rt.EpisodeAwareSampler(frm, to, shuffle=True, seed=5)
    it = iter(s)
    head = [next(it) for _ in range(4)]
    state = s.state_dict()
    rest = list(it)
    t = rt.EpisodeAwareSampler(frm, to, shuffle=True, seed=5)
    t.load_state_dict(state)
    t.set_epoch(state["epoch"])
    assert list(t) == rest and len(head) == 4


# -- a real distributed run --------------------------------------------------------------------


@pytest.mark.slow
def test_torchrun_ddp_covers_the_epoch_and_resumes_identically(root, tmp_path) -> None:
    """examples/train_ddp_resumable.py under torchrun (2 ranks, gloo): the ranks' shards cover
    each epoch, and a run restarted from its mid-epoch checkpoint continues identically."""
    pytest.importorskip("torch")
    script = Path(__file__).resolve().parents[1] / "examples" / "train_ddp_resumable.py"
    steps, every, batch = 9, 5, 2

    def torchrun(mode: str) -> list[dict]:
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), str(script), str(root), "--checkpoint", str(tmp_path / "ckpt"),
               "--steps", str(steps), "--checkpoint-every", str(every), "--batch-size", str(batch),
               "--record", str(tmp_path / mode)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr.decode()[-4000:]
        return [json.loads((tmp_path / f"{mode}.rank{r}.json").read_text()) for r in range(2)]

    n = len(roboframes.Dataset(root))
    per_rank = math.ceil(n / 2)
    full = torchrun("full")  # saves a checkpoint after step 5 (mid-epoch 1)
    assert all(f["world"] == 2 and f["batches"] == math.ceil(per_rank / batch) for f in full)
    per_epoch = full[0]["batches"]
    assert every % per_epoch != 0  # the checkpoint is mid-epoch
    # epoch 0: the ranks' shards are disjoint but for the padding and together cover the epoch
    first = [[i for r in f["record"][:per_epoch] for i in r["index"]] for f in full]
    assert set(first[0]) | set(first[1]) == set(range(n))
    padding = 2 * per_rank - n
    assert len(first[0]) + len(first[1]) == n + padding
    assert len(set(first[0]) & set(first[1])) <= padding

    resumed = torchrun("resumed")  # starts from the checkpoint of step 5
    for r in range(2):
        assert resumed[r]["record"] == full[r]["record"][every:], f"rank {r}"
        assert resumed[r]["weights"] == full[r]["weights"], f"rank {r}"
    assert full[0]["weights"] == full[1]["weights"]  # DDP kept the replicas equal


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_missing_output_framework_says_what_to_install(ds, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(ImportError, match="pip install torch"):
        ds.loader(2, output="torch")
