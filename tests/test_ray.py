"""``roboframes.ray``: ``read`` (a Ray Data dataset of items or batches, read tasks planned by
files) and the tools' ``engine="ray"``, on a local Ray of 2 CPUs on 127.0.0.1 that the tests
start and stop. The engine's results are compared with the local run's: statistics bit for bit,
validation reports and quality reports equal."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import roboframes  # noqa: E402
from roboframes import cli, tools  # noqa: E402
from roboframes.errors import InvalidArgumentError  # noqa: E402

WINDOW = {"action": [-0.1, 0.0, 0.1], "observation.images.top": [-0.1, 0.0]}


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray of 2 CPUs, on loopback only, without the dashboard or usage reports."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def multifile(dataset_dir) -> Path:
    return dataset_dir("av1_multifile")


def rows_of(rds: Any) -> list[dict[str, Any]]:
    return list(rds.iter_rows())


def assert_item_equal(row: dict[str, Any], item: dict[str, Any], what: str) -> None:
    assert list(row) == list(item), what
    for k, v in item.items():
        if isinstance(v, np.ndarray) and v.ndim == 0:
            # (a scalar column's rows are Python scalars; its Arrow type is checked by the caller)
            assert np.asarray(row[k], dtype=v.dtype) == v, (what, k)
        elif isinstance(v, np.ndarray):
            got = np.asarray(row[k])
            assert got.dtype == v.dtype and got.shape == v.shape, (what, k)
            assert np.array_equal(got, v), (what, k)
        else:
            assert row[k] == v or list(row[k]) == list(v), (what, k)


# -- planning (no Ray needed) ------------------------------------------------------------------


def test_plans_keep_files_whole_and_cover_every_item_once(multifile) -> None:
    from roboframes.ray import file_groups, plan_tasks

    ds = roboframes.Dataset(multifile)
    groups = file_groups(ds)
    assert len(groups) == 5  # (one data and video file per episode in this fixture)
    for tasks in (1, 2, 3, 5, 7, 40):
        plans = plan_tasks(ds, tasks)
        assert 1 <= len(plans) <= tasks
        covered = [i for plan in plans for s, e in plan for i in range(s, e)]
        assert covered == list(range(len(ds))), tasks  # every item once, in dataset order
        if tasks <= len(groups):
            # no file group is split between two tasks
            owner = {}
            for t, plan in enumerate(plans):
                for s, _ in plan:
                    for key, runs in groups:
                        if any(a <= s < b for _, a, b in runs):
                            assert owner.setdefault(key, t) == t, (tasks, key)
    with pytest.raises(InvalidArgumentError):
        plan_tasks(ds, 0)


def test_balance_is_contiguous_and_even() -> None:
    from roboframes.ray import balance

    groups = balance([(10, "a"), (10, "b"), (10, "c"), (10, "d")], 2)
    assert groups == [["a", "b"], ["c", "d"]]
    assert balance([(1, "a")], 4) == [["a"]]
    assert [x for g in balance([(i % 5 + 1, i) for i in range(50)], 7) for x in g] == list(range(50))


# -- read ---------------------------------------------------------------------------------------


def test_read_items_equal_the_dataset(local_ray, multifile) -> None:
    import roboframes.ray as rr

    ds = roboframes.Dataset(multifile, delta_timestamps=WINDOW)
    rds = rr.read(multifile, delta_timestamps=WINDOW, override_num_blocks=3)
    rows = rows_of(rds)
    assert len(rows) == len(ds) == rds.count()
    # (blocks come in the order tasks finish unless Ray is told to preserve order; the items'
    # own index says which is which)
    position = {int(v): i for i, v in enumerate(ds.get_batch(np.arange(len(ds)))["index"])}
    for row in rows:
        i = position[int(row["index"])]
        assert_item_equal(row, ds[i], f"item {i}")
    ctx = ray.data.DataContext.get_current()
    kept = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True
    try:
        ordered = rows_of(rr.read(multifile, delta_timestamps=WINDOW, override_num_blocks=3))
    finally:
        ctx.execution_options.preserve_order = kept
    assert [int(r["index"]) for r in ordered] == sorted(position)
    # frames are tensor columns; scalars keep their dtype
    import pyarrow as pa

    schema = rds.schema()
    types = dict(zip(schema.names, schema.types, strict=True))
    assert "Tensor" in str(types["observation.images.top"])
    for k, v in ds[0].items():
        if isinstance(v, np.ndarray) and v.ndim == 0:
            assert types[k] == pa.from_numpy_dtype(v.dtype), k


def test_read_batches_cameras_and_episodes(local_ray, multifile) -> None:
    import roboframes.ray as rr

    ds = roboframes.Dataset(multifile, episodes=[1, 2, 4])
    rds = rr.read(multifile, episodes=[1, 2, 4], batch_size=2, cameras=["observation.images.top"])
    rows = sorted(rows_of(rds), key=lambda r: int(np.asarray(r["index"])[0]))
    assert "observation.images.wrist" not in rows[0]
    got = np.concatenate([np.asarray(r["observation.images.top"]) for r in rows])
    assert np.array_equal(got, ds.get_batch(np.arange(len(ds)))["observation.images.top"])
    assert [int(i) for r in rows for i in np.asarray(r["index"])] == [
        int(i) for i in ds.get_batch(np.arange(len(ds)))["index"]
    ]
    with pytest.raises(InvalidArgumentError, match="camera"):
        rr.read(multifile, cameras=["nope"])
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        rr.read(multifile, batch_size=0)


def test_read_batches_cross_episodes_within_a_task(local_ray, dataset_dir) -> None:
    import roboframes.ray as rr

    root = dataset_dir("h264")  # (3 episodes in one data file and one video file per camera)
    ds = roboframes.Dataset(root)
    rds = rr.read(root, batch_size=4, override_num_blocks=1)
    assert rds.count() == -(-len(ds) // 4)  # (the read tasks' metadata, without reading)
    rows = rows_of(rds)
    assert [len(np.asarray(r["index"])) for r in rows] == [4] * (len(ds) // 4) + ([len(ds) % 4] if len(ds) % 4 else [])
    want = ds.get_batch(np.arange(len(ds)))
    for k in ("observation.images.top", "action", "index"):
        assert np.array_equal(np.concatenate([np.asarray(r[k]) for r in rows]), want[k]), k


def test_read_feeds_ray_data_pipelines(local_ray, multifile, tmp_path) -> None:
    import roboframes.ray as rr

    torch = pytest.importorskip("torch")
    rds = rr.read(multifile, frame_dtype="float32", channels_last=False)
    n = 0
    # (Ray's torch batches hold numbers: string columns such as `task` are dropped first)
    for batch in rds.drop_columns(["task"]).iter_torch_batches(batch_size=4):
        assert isinstance(batch["observation.images.top"], torch.Tensor)
        assert batch["observation.images.top"].dtype == torch.float32
        n += len(batch["index"])
    assert n == roboframes.Dataset(multifile).num_frames
    means = rds.map_batches(lambda b: {"m": b["observation.images.top"].mean(axis=(1, 2, 3))}).take_all()
    assert len(means) == n
    rds.select_columns(["index", "action"]).write_parquet(str(tmp_path / "out"))
    assert list((tmp_path / "out").glob("*.parquet"))


# -- the engine ---------------------------------------------------------------------------------


def test_stats_engine_ray_is_bit_for_bit(local_ray, multifile, dataset_dir) -> None:
    for root in (multifile, dataset_dir("h264")):
        ds = roboframes.Dataset(root)
        local = ds.stats(recompute=True, progress=False)
        distributed = ds.stats(recompute=True, progress=False, engine="ray")
        assert list(local) == list(distributed)
        for key, st in local.items():
            assert list(st) == list(distributed[key]), key
            for name, v in st.items():
                w = distributed[key][name]
                assert v.dtype == w.dtype and v.shape == w.shape, (key, name)
                assert np.array_equal(v, w), (key, name)  # bit for bit, not close
    sub = roboframes.Dataset(multifile, episodes=[0, 3])
    a = tools.compute_stats(sub, progress=False)
    b = tools.compute_stats(sub, progress=False, engine="ray")
    assert all(np.array_equal(a[k][n], b[k][n]) for k in a for n in a[k])


def test_validate_engine_ray_equals_local(local_ray, multifile, tmp_path) -> None:
    good = roboframes.tools.validate(multifile, "all", progress=False)
    assert good.to_dict() == roboframes.tools.validate(multifile, "all", progress=False, engine="ray").to_dict()
    # a damaged copy: a truncated video file, a missing data file
    bad = tmp_path / "bad"
    shutil.copytree(multifile, bad)
    video = sorted(bad.glob("videos/**/*.mp4"))[1]
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    sorted(bad.glob("data/**/*.parquet"))[-1].unlink()
    local = roboframes.tools.validate(bad, "ends", progress=False)
    distributed = roboframes.tools.validate(bad, "ends", progress=False, engine="ray")
    assert not local.ok
    assert distributed.to_dict() == local.to_dict()


def test_validate_engine_ray_on_a_dataset_that_does_not_open(local_ray, multifile, tmp_path) -> None:
    """No tasks file: the dataset cannot open for the decode checks; that finding is the run's,
    reported once, not once per part."""
    bad = tmp_path / "no_tasks"
    shutil.copytree(multifile, bad)
    (bad / "meta" / "tasks.parquet").unlink()
    local = roboframes.tools.validate(bad, "ends", progress=False)
    distributed = roboframes.tools.validate(bad, "ends", progress=False, engine="ray")
    assert not local.ok
    assert distributed.to_dict() == local.to_dict()


def test_quality_engine_ray_equals_local(local_ray, dataset_dir) -> None:
    ds = roboframes.Dataset(dataset_dir("quality"))
    assert ds.quality(engine="ray").to_dict() == ds.quality().to_dict()


def test_cli_engine_ray(local_ray, multifile, capsys) -> None:
    assert cli.main(["validate", str(multifile), "--engine", "ray", "--json"]) == 0
    distributed = json.loads(capsys.readouterr().out)
    assert cli.main(["validate", str(multifile), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == distributed
    assert cli.main(["stats", str(multifile), "--recompute", "--engine", "ray", "--json"]) == 0
    assert json.loads(capsys.readouterr().out).keys()


def test_a_remote_root(local_ray, multifile) -> None:
    """An HTTP root on 127.0.0.1: the tasks open it in their own processes."""
    import sys

    import roboframes.ray as rr

    sys.path.insert(0, str(Path(__file__).parent))
    from remote_servers import file_server  # (the tests' loopback HTTP server)

    local = roboframes.Dataset(multifile)
    with file_server({"ds": multifile}) as srv:
        url = f"{srv.url}/ds"
        rows = rows_of(rr.read(url, override_num_blocks=2))
        assert sorted(int(r["index"]) for r in rows) == [
            int(i) for i in local.get_batch(np.arange(len(local)))["index"]
        ]
        remote = roboframes.Dataset(url)
        a, b = local.stats(recompute=True, progress=False), remote.stats(recompute=True, progress=False, engine="ray")
        assert all(np.array_equal(a[k][n], b[k][n]) for k in a for n in a[k])
        report = remote.validate(engine="ray", progress=False)
        assert report.ok and report.episodes == local.num_episodes


def test_a_task_error_is_raised_as_its_own_exception(local_ray, multifile, tmp_path) -> None:
    """A file damaged after the caller opened the dataset: the task that reads it fails, and
    the caller gets the core's exception naming the file, not Ray's wrapper."""
    copy = tmp_path / "copy"
    shutil.copytree(multifile, copy)
    ds = roboframes.Dataset(copy)
    data = sorted(copy.glob("data/**/*.parquet"))[2]
    data.write_bytes(b"not parquet")
    with pytest.raises(roboframes.Error, match=data.name) as caught:
        ds.stats(recompute=True, progress=False, engine="ray")
    assert not isinstance(caught.value, ray.exceptions.RayError)


def test_unknown_engine_is_an_error(multifile) -> None:
    ds = roboframes.Dataset(multifile)
    for call in (
        lambda: ds.stats(recompute=True, engine="spark"),
        lambda: ds.validate(engine="dask"),
        lambda: ds.quality(engine="slurm"),
    ):
        with pytest.raises(InvalidArgumentError, match="engine"):
            call()


def test_read_v21(local_ray, v21_dir: Path) -> None:
    """A LeRobot v2.1 root (one data file and video per episode): a file group per episode."""
    from roboframes.ray import file_groups, read

    ds = roboframes.Dataset(v21_dir)
    assert len(file_groups(ds)) == 4
    rows = rows_of(read(v21_dir, override_num_blocks=2))
    assert [int(r["index"]) for r in rows] == list(range(len(ds)))
    for i in (0, 6, 17):
        assert_item_equal(rows[i], ds[i], f"v21[{i}]")


def test_convert_engine_ray_equals_local(local_ray, multifile, tmp_path) -> None:
    """``convert --engine ray``: shards written by Ray tasks and merged by LeRobot's
    ``aggregate_datasets`` give the local conversion's dataset: ``stats.json`` and every
    episode's statistics bit for bit (a shard numbers ``index``, ``episode_index`` and
    ``task_index`` on its own: those are recomputed over the merged values), and LeRobot's
    reader gives the same items, frames included."""
    pytest.importorskip("lerobot")
    import pyarrow as pa
    import pyarrow.parquet as pq
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from roboframes.convert import convert

    local = convert(multifile, tmp_path / "local", progress=False)
    assert cli.main(["convert", str(multifile), str(tmp_path / "ray"), "--engine", "ray"]) == 0
    ray_out = tmp_path / "ray"
    assert not (tmp_path / "ray.partial").exists()  # (the shards were its work folder's)
    assert json.loads((local / "meta/stats.json").read_text()) == json.loads((ray_out / "meta/stats.json").read_text())

    def episodes_table(root: Path) -> pa.Table:
        return pa.concat_tables([pq.read_table(f) for f in sorted((root / "meta/episodes").glob("*/*.parquet"))])

    a, b = episodes_table(local), episodes_table(ray_out)
    stats_columns = [c for c in a.column_names if c.startswith("stats/")]
    assert any(c.startswith("stats/index/") for c in stats_columns)
    for c in stats_columns + ["episode_index", "length", "dataset_from_index", "tasks"]:
        assert a[c].to_pylist() == b[c].to_pylist(), c
    ra, rb = LeRobotDataset("x/local", root=local), LeRobotDataset("x/ray", root=ray_out)
    assert len(ra) == len(rb) == len(roboframes.Dataset(multifile))
    for i in range(len(ra)):
        x, y = ra[i], rb[i]
        assert list(x) == list(y)
        for k, v in x.items():
            if isinstance(v, str):
                assert v == y[k], (i, k)
            else:
                assert v.dtype == y[k].dtype and v.shape == y[k].shape and bool((v == y[k]).all()), (i, k)
    # the record is the same conversion's: either engine finds it done
    assert convert(multifile, ray_out, progress=False) == ray_out
    with pytest.raises(InvalidArgumentError, match="engine"):
        convert(multifile, tmp_path / "nope", engine="spark")
