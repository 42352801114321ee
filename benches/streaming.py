"""Remote reading, measured: bytes fetched and requests made for random items of benchmark
configuration (a) served over HTTP by a stand-in for the Hugging Face Hub on 127.0.0.1 (reached
through ``HF_ENDPOINT``, as both readers reach the Hub), against the dataset's size and against
LeRobot 0.4.4's ``StreamingLeRobotDataset`` reading the same server; and throughput with a
simulated round trip (the server waits ``--rtt-ms`` before answering each request).

Each reader runs in a process of its own (a cold start: no cache shared with another run);
the server counts the requests and body bytes it answered.

    .venv/bin/python benches/streaming.py [--items 100] [--rtt-ms 20] [--out DIR] [--skip-lerobot]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

REPO = "roboframes-bench/pusht_like"


def child_roboframes(items: int, batch: int, seed: int, indices: list[int] | None) -> dict[str, Any]:
    import numpy as np

    import roboframes

    t0 = time.perf_counter()
    ds = roboframes.Dataset(f"hf://datasets/{REPO}@main")
    opened = time.perf_counter()
    after_open = ds.remote_stats() or {}
    idx = np.random.default_rng(seed).choice(len(ds), size=items, replace=False) if indices is None else indices
    items = len(idx)
    if batch <= 1:
        for i in idx:
            ds[int(i)]
    else:
        for k in range(0, items, batch):
            ds.get_batch([int(i) for i in idx[k : k + batch]])
    done = time.perf_counter()
    return {
        "open_s": opened - t0,
        "items_s": done - opened,
        "items": items,
        "open_requests": after_open.get("requests"),
        "open_bytes": after_open.get("bytes"),
    }


def child_lerobot(items: int, seed: int) -> dict[str, Any]:
    from lerobot.datasets.streaming_dataset import StreamingLeRobotDataset

    t0 = time.perf_counter()
    ds = StreamingLeRobotDataset(REPO, streaming=True, shuffle=True, seed=seed)
    opened = time.perf_counter()
    it = iter(ds)
    got = []
    for _ in range(items):
        got.append(int(next(it)["index"]))
    done = time.perf_counter()
    return {"open_s": opened - t0, "items_s": done - opened, "items": len(got), "indices": got}


def run_child(
    kind: str, endpoint: str, items: int, batch: int, seed: int, hf_home: Path, indices: list[int] | None = None
) -> dict[str, Any]:
    env = dict(os.environ)
    env.update({"HF_ENDPOINT": endpoint, "HF_HOME": str(hf_home), "HF_HUB_DISABLE_TELEMETRY": "1"})
    env.pop("HF_TOKEN", None)
    cmd = [sys.executable, __file__, "--child", kind, "--items", str(items), "--batch", str(batch), "--seed", str(seed)]
    if indices is not None:
        cmd += ["--indices", ",".join(map(str, indices))]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip().splitlines()[-1:] or ["failed"], "stderr": p.stderr[-4000:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/bench"))
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rtt-ms", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--skip-lerobot", action="store_true")
    ap.add_argument("--child", choices=["roboframes", "lerobot"], default=None)
    ap.add_argument("--indices", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "roboframes":
        indices = None if args.indices is None else [int(i) for i in args.indices.split(",")]
        print(json.dumps(child_roboframes(args.items, args.batch, args.seed, indices)))
        return
    if args.child == "lerobot":
        print(json.dumps(child_lerobot(args.items, args.seed)))
        return

    from configs import CONFIGS, ensure_dataset
    from remote_servers import commit_of, file_server

    root = ensure_dataset(CONFIGS["a"], args.data)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    hub = {REPO: (root, commit_of(root))}
    runs: list[dict[str, Any]] = []
    readers = [("roboframes", 1), ("roboframes", 10)] + ([] if args.skip_lerobot else [("lerobot", 1)])
    if not args.skip_lerobot:
        readers.append(("roboframes", 0))  # LeRobot's items, item by item
    for rtt in (0.0, args.rtt_ms / 1000):
        lerobot_items: list[int] | None = None
        for kind, batch in readers:
            with tempfile.TemporaryDirectory() as hf_home, file_server(hub=hub, delay_s=rtt) as srv:
                same = batch == 0
                r = run_child(
                    kind, srv.url, args.items, max(batch, 1), args.seed, Path(hf_home), lerobot_items if same else None
                )
                if kind == "lerobot":
                    lerobot_items = r.pop("indices", None)
                r.update(
                    reader=kind + (" (LeRobot's items)" if same else ""),
                    batch=batch,
                    rtt_ms=rtt * 1000,
                    requests=srv.counters.requests,
                    bytes=srv.counters.bytes,
                    dataset_bytes=size,
                )
                if "items_s" in r:
                    r["items_per_s"] = r["items"] / r["items_s"]
                runs.append(r)
                print(json.dumps({k: v for k, v in r.items() if k != "stderr"}), flush=True)
    lines = [
        f"configuration (a): {root} ({size / 1e6:.1f} MB), {args.items} random items, "
        "server on 127.0.0.1 standing in for the Hub (HF_ENDPOINT)",
        "",
        f"{'reader':<34}{'RTT ms':>7}{'requests':>10}{'MB fetched':>12}{'% of dataset':>14}{'open s':>8}{'items/s':>9}",
    ]
    for r in runs:
        name = r["reader"] + (f" (batches of {r['batch']})" if r["batch"] > 1 else "")
        if r["reader"] == "lerobot":
            name = "LeRobot streaming"
        if "error" in r:
            lines.append(f"{name:<34}{r['rtt_ms']:>7.0f}  failed: {r['error']}")
            continue
        lines.append(
            f"{name:<34}{r['rtt_ms']:>7.0f}{r['requests']:>10}{r['bytes'] / 1e6:>12.2f}"
            f"{100 * r['bytes'] / size:>13.1f}%{r['open_s']:>8.2f}{r['items_per_s']:>9.1f}"
        )
    table = "\n".join(lines)
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(runs, indent=1))
        (args.out / "table.txt").write_text(table + "\n")


if __name__ == "__main__":
    main()
