"""Side-by-side throughput of roboframes and the installed LeRobot (0.4.4; or 0.6.x in the
LeRobot 0.6 environment, ``bash scripts/lerobot06.sh python benches/harness.py --uint8 ...``) on
the same machine, in one run.

For each configuration ((a) PushT-like, (b) ALOHA-like; see configs.py) and window kind
(plain, ACT-like), every loader runs in a process of its own (run_loader.py): LeRobot's
LeRobotDataset with DataLoader workers 0, 1 and 2; the roboframes drop-in with workers 0, 1
and 2; roboframes' native batch path; and the opt-in GOP-aware order (GopShuffleSampler). The
decode ceiling is measured by ceiling.py without roboframes' decoder. For configuration (a),
loader_epochs.py runs ``Dataset.loader`` for three epochs without a cache, with a cache of a
quarter of the decoded dataset and with one that holds all of it (and measures the prefetch
against a simulated training step). Also times opening a 10,000-episode dataset.

Prints a table (ratio to LeRobot's best, fraction of the ceilings), writes ``results.json``
and ``throughput.png`` to ``--out``.

Usage: python benches/harness.py [--configs a b] [--windows plain act] [--seconds 8] [--repeats 3]
       [--out bench-out] [--data data/bench] [--loaders lerobot roboframes native] [--uint8]

``--uint8``: LeRobot and the drop-in give uint8 video frames (LeRobot 0.6's ``return_uint8=True``,
its training's setting, so its best; the 0.4 drop-in's ``frame_dtype=torch.uint8``).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from configs import CONFIGS, WINDOWS, ensure_dataset  # benches/ is sys.path[0]: run as a script

HERE = Path(__file__).resolve().parent

LOADERS: list[tuple[str, int]] = [
    ("lerobot", 0),
    ("lerobot", 1),
    ("lerobot", 2),
    ("roboframes", 0),
    ("roboframes", 1),
    ("roboframes", 2),
    ("native", 0),
    ("mlx", 0),
    ("gop", 0),
    ("gop-native", 0),
]


def run_json(cmd: list[str], timeout: float = 900) -> dict[str, Any]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent)
    lines = [x for x in r.stdout.splitlines() if x.startswith("{")]
    if r.returncode != 0 or not lines:
        return {"error": (r.stderr or r.stdout)[-2000:], "cmd": " ".join(cmd)}
    return json.loads(lines[-1])


#: (label, loader_epochs.py arguments) of the loader runs over whole epochs (configuration a).
LOADER_EPOCH_RUNS: list[tuple[str, list[str]]] = [
    ("no cache", ["--cache-fraction", "0"]),
    ("cache 1/4 of the dataset", ["--cache-fraction", "0.25"]),
    ("cache = whole dataset", ["--cache-fraction", "1.0"]),
    ("prefetch 0, 20 ms step", ["--epochs", "1", "--prefetch", "0", "--step-ms", "20"]),
    ("prefetch 2, 20 ms step", ["--epochs", "1", "--prefetch", "2", "--step-ms", "20"]),
]


def loader_epochs(c: str, w: str, data: Path) -> list[dict[str, Any]]:
    """The ``LOADER_EPOCH_RUNS`` of configuration ``c`` with windows ``w``."""
    out = []
    for label, extra in LOADER_EPOCH_RUNS:
        print(f"[bench]   loader: {label}", flush=True)
        cmd = [sys.executable, str(HERE / "loader_epochs.py"), "--config", c, "--windows", w, "--data", str(data)]
        r = run_json([*cmd, *extra])
        r["label"] = label
        out.append(r)
    return out


def loader_report(block: dict[str, Any]) -> list[str]:
    """Lines of the loader runs of a block: samples/s per epoch, ratio to LeRobot's best of the
    same block, peak RSS and the cache's bytes."""
    runs = [r for r in block["loaders"] if "samples_per_s" in r]
    lr = best(runs, "lerobot")
    base = lr["samples_per_s"] if lr else None
    lines = [
        f"  Dataset.loader, full shuffle, whole epochs (x LeRobot's best, {fmt(base)} samples/s):",
        f"  {'run':<28}{'epoch 1':>18}{'epoch 2':>18}{'epoch 3':>18}{'RSS MB':>9}{'cache MB':>10}{'decoded MB':>12}",
    ]
    for r in block.get("loader_epochs", []):
        if "epochs" not in r:
            lines.append(f"  {r['label']:<28} failed: {r.get('error', '')[-200:]!r}")
            continue
        cells = []
        for e in r["epochs"]:
            ratio = f" ({e['samples_per_s'] / base:.1f}x)" if base else ""
            cells.append(f"{e['samples_per_s']:,.0f}{ratio}")
        cells += [""] * (3 - len(cells))
        lines.append(
            f"  {r['label']:<28}"
            + "".join(f"{c:>18}" for c in cells)
            + f"{r['peak_rss_bytes'] / 2**20:>9,.0f}{r['cache_held_bytes'] / 2**20:>10,.0f}"
            f"{r['decoded_dataset_bytes'] / 2**20:>12,.0f}"
        )
    return lines


def open_times(source: Path) -> dict[str, float]:
    """Median open time (s) of a 10,000-episode dataset built from ``source``'s metadata."""
    import open_10k

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "big"
        open_10k.build(source, root, 10_000)
        code = {
            "roboframes.Dataset": "import roboframes; roboframes.Dataset(ROOT)",
            "roboframes.torch.LeRobotDataset": "import roboframes.torch as rt; rt.LeRobotDataset('x/big', root=ROOT)",
            "lerobot LeRobotDatasetMetadata": (
                "from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata; LeRobotDatasetMetadata('x/big', root=ROOT)"
            ),
        }
        for name, stmt in code.items():
            # a fresh process; the first call (imports, page cache) is not timed
            prog = (
                "import json, statistics, time\n"
                "from pathlib import Path\n"
                f"ROOT = Path({str(root)!r})\n"
                "def once():\n"
                f"    {stmt}\n"
                "once()\n"
                "ts = []\n"
                "for _ in range(5):\n"
                "    t = time.perf_counter(); once(); ts.append(time.perf_counter() - t)\n"
                "print(json.dumps({'median_s': statistics.median(ts)}))\n"
            )
            res = run_json([sys.executable, "-c", prog])
            if "median_s" in res:
                out[name] = res["median_s"]
    return out


def fmt(x: float | None, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


CEILING_LABELS = {
    "random_ceiling": "random",
    "keyframe_aware_random_ceiling": "keyframe-aware",
    "sequential_ceiling": "sequential",
}


def pct(s: float, ceil: dict[str, Any], name: str, width: int) -> str:
    """``s`` as a percentage of ceiling ``name``, right-aligned in ``width``."""
    return f"{100 * s / ceil[name]:>{width - 1}.0f}%" if ceil.get(name) else f"{'-':>{width}}"


def best(runs: list[dict[str, Any]], loader: str) -> dict[str, Any] | None:
    """The fastest of ``runs`` with this loader (any number of workers)."""
    cands = [r for r in runs if r["loader"] == loader]
    return max(cands, key=lambda r: r["samples_per_s"]) if cands else None


def cell(r: dict[str, Any] | None, base: float | None, ceil: dict[str, Any], *ceilings: str) -> str:
    """A summary cell: samples/s, workers, ratio to ``base`` (LeRobot's best, when it ran),
    fractions of ``ceilings``."""
    if r is None:
        return "-"
    s = r["samples_per_s"]
    pcts = ", ".join(f"{100 * s / ceil[c]:.0f}% {CEILING_LABELS[c]}" for c in ceilings if ceil.get(c))
    ratio = f": {s / base:.2f}x" if base else ""
    return f"{s:,.0f} (w{r['workers']}){ratio}" + (f"; {pcts}" if pcts else "")


def mem(r: dict[str, Any] | None) -> str:
    """Peak RSS (peak PSS) in MB."""
    if r is None:
        return "-"
    return f"{r['peak_rss_bytes'] / 2**20:,.0f} ({r.get('peak_pss_bytes', 0) / 2**20:,.0f})"


def report(results: dict[str, Any]) -> str:
    lines = []
    for block in results["runs"].values():
        ceil = block["ceiling"]
        runs = [r for r in block["loaders"] if "samples_per_s" in r]
        lr = [r for r in runs if r["loader"] == "lerobot"]
        best_lr = max(lr, key=lambda r: r["samples_per_s"]) if lr else None
        cams = "; ".join(
            f"{c}: {v['decodes_per_sample']:.2f} decodes/sample ({v['keyframes_per_sample']:.2f} keyframes) "
            f"at {v['rate']:,.0f} fps, keyframe {v['keyframe_s'] * 1000:.2f} ms vs inter {v['inter_frame_s'] * 1000:.2f} ms"
            for c, v in ceil.get("cameras", {}).items()
        )
        lines.append("")
        lines.append(
            f"{block['description']}, windows={block['windows']}, batch {block['batch_size']}: "
            f"ceilings (samples/s): random access {fmt(ceil.get('random_ceiling'))}, "
            f"keyframe-aware random access {fmt(ceil.get('keyframe_aware_random_ceiling'))}, "
            f"sequential {fmt(ceil.get('sequential_ceiling'))}"
        )
        lines.append(f"  ({cams})")
        lines.append(
            f"  {'loader':<22}{'samples/s':>11}{'frames/s':>11}{'x LeRobot':>10}{'% rand':>8}{'% key-aware':>12}"
            f"{'% seq':>7}{'RSS MB':>9}{'PSS MB':>8}{'1st batch s':>12}{'open s':>8}"
        )
        for r in block["loaders"]:
            name = f"{r.get('loader', '?')} w{r.get('workers', '?')}"
            if "samples_per_s" not in r:
                lines.append(f"  {name:<22} failed: {r.get('error', '')[-200:]!r}")
                continue
            s = r["samples_per_s"]
            lines.append(
                f"  {name:<22}{s:>11,.1f}{r['frames_per_s']:>11,.0f}"
                f"{(s / best_lr['samples_per_s']) if best_lr else float('nan'):>10.2f}"
                f"{pct(s, ceil, 'random_ceiling', 8)}{pct(s, ceil, 'keyframe_aware_random_ceiling', 12)}"
                f"{pct(s, ceil, 'sequential_ceiling', 7)}"
                f"{r['peak_rss_bytes'] / 2**20:>9,.0f}{r.get('peak_pss_bytes', 0) / 2**20:>8,.0f}"
                f"{r['first_batch_s']:>12.2f}{r['open_s']:>8.3f}"
            )
        if block.get("loader_epochs"):
            lines += loader_report(block)
    if results.get("open_10k"):
        lines.append("")
        times = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in results["open_10k"].items())
        lines.append(f"open a 10,000-episode dataset (median): {times}")
    return "\n".join(lines)


def mlx_cell(mlx: dict[str, Any] | None, native: dict[str, Any] | None) -> str:
    """The MLX primitive's samples/s and its share of the native batch path's (measured in the
    same harness run)."""
    if mlx is None:
        return "-"
    if native is None:
        return f"{mlx['samples_per_s']:,.0f}"
    return f"{mlx['samples_per_s']:,.0f} ({100 * mlx['samples_per_s'] / native['samples_per_s']:.0f}%)"


def summary_markdown(results: dict[str, Any]) -> str:
    """A compact markdown table: LeRobot's best against roboframes' best per kind of loader."""
    rows = [
        f"| configuration | LeRobot {results.get('lerobot') or ''} best | roboframes drop-in (DataLoader) | roboframes native batch | MLX primitive (% of native) | GOP order: drop-in / native | ceilings: random / keyframe-aware / sequential | peak RSS (PSS), MB: LeRobot best / drop-in best / native |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for block in results["runs"].values():
        runs = [r for r in block["loaders"] if "samples_per_s" in r]
        ceil = block["ceiling"]
        lr, drop, nat = best(runs, "lerobot"), best(runs, "roboframes"), best(runs, "native")
        mlx = best(runs, "mlx")
        gop, gopn = best(runs, "gop"), best(runs, "gop-native")
        base = lr["samples_per_s"] if lr is not None else None
        lerobot = f"{lr['samples_per_s']:,.0f} (w{lr['workers']})" if lr is not None else "-"
        random_ceilings = ("random_ceiling", "keyframe_aware_random_ceiling")
        rows.append(
            f"| {block['description']}, {block['windows']}, batch {block['batch_size']} "
            f"| {lerobot} "
            f"| {cell(drop, base, ceil, *random_ceilings)} "
            f"| {cell(nat, base, ceil, *random_ceilings)} "
            f"| {mlx_cell(mlx, nat)} "
            f"| {cell(gop, base, ceil, 'sequential_ceiling')} / {cell(gopn, base, ceil, 'sequential_ceiling')} "
            f"| {fmt(ceil.get('random_ceiling'))} / {fmt(ceil.get('keyframe_aware_random_ceiling'))} / {fmt(ceil.get('sequential_ceiling'))} "
            f"| {mem(lr)} / {mem(drop)} / {mem(nat)} |"
        )
    return "\n".join(rows)


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = list(results["runs"].values())
    fig, axes = plt.subplots(1, len(blocks), figsize=(4.2 * len(blocks), 4.8), squeeze=False)
    for ax, block in zip(axes[0], blocks, strict=True):
        runs = [r for r in block["loaders"] if "samples_per_s" in r]
        names = [f"{r['loader']}\nw{r['workers']}" for r in runs]
        vals = [r["samples_per_s"] for r in runs]
        colors = [
            "#999999" if r["loader"] == "lerobot" else "#1f77b4" if "gop" not in r["loader"] else "#2ca02c"
            for r in runs
        ]
        ax.bar(range(len(vals)), vals, color=colors)
        ceil = block["ceiling"]
        if ceil.get("random_ceiling"):
            ax.axhline(ceil["random_ceiling"], color="#d62728", ls="--", lw=1, label="random-access ceiling")
        if ceil.get("keyframe_aware_random_ceiling"):
            ax.axhline(
                ceil["keyframe_aware_random_ceiling"], color="#9467bd", ls="-.", lw=1, label="keyframe-aware random"
            )
        if ceil.get("sequential_ceiling"):
            ax.axhline(ceil["sequential_ceiling"], color="#ff7f0e", ls=":", lw=1, label="sequential ceiling")
        ax.set_xticks(range(len(vals)))
        ax.set_xticklabels(names, fontsize=7, rotation=60)
        ax.set_title(f"{block['description']}\n{block['windows']} windows, batch {block['batch_size']}", fontsize=8)
        ax.set_ylabel("samples/s")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=sorted(CONFIGS), choices=sorted(CONFIGS))
    ap.add_argument("--windows", nargs="+", default=list(WINDOWS), choices=list(WINDOWS))
    ap.add_argument("--loaders", nargs="+", default=None, help="subset of loader names to run")
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run, after warm-up")
    ap.add_argument("--repeats", type=int, default=3, help="runs per loader; the median run is reported")
    ap.add_argument("--data", type=Path, default=Path("data/bench"))
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument(
        "--no-loader-epochs", action="store_true", help="skip the Dataset.loader cache and prefetch runs (config a)"
    )
    ap.add_argument("--uint8", action="store_true", help="uint8 video frames from LeRobot and the drop-in")
    ap.add_argument("--no-open-10k", action="store_true", help="skip timing the opening of a 10,000-episode dataset")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {
        "machine": {"cpus": len(__import__("os").sched_getaffinity(0)), "platform": platform.platform()},
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": args.seconds,
        "repeats": args.repeats,
        "uint8": bool(args.uint8),
        "lerobot": __import__("roboframes.torch.lines", fromlist=["installed_lerobot"]).installed_lerobot(),
        "python": platform.python_version(),
        "runs": {},
    }
    for c in args.configs:
        ensure_dataset(CONFIGS[c], args.data)
    loaders = [x for x in LOADERS if args.loaders is None or x[0] in args.loaders]
    for c in args.configs:
        cfg = CONFIGS[c]
        for w in args.windows:
            key = f"{c}/{w}"
            print(f"[bench] {cfg.description}, {w} windows: ceiling", flush=True)
            ceil = run_json(
                [sys.executable, str(HERE / "ceiling.py"), "--config", c, "--windows", w, "--data", str(args.data)]
            )
            block = {
                "description": cfg.description,
                "windows": w,
                "batch_size": cfg.batch_size,
                "ceiling": ceil,
                "loaders": [],
            }
            results["runs"][key] = block
            for loader, workers in loaders:
                print(f"[bench]   {loader} workers={workers}", flush=True)
                cmd = [sys.executable, str(HERE / "run_loader.py"), "--config", c, "--windows", w, "--loader", loader]
                cmd += ["--workers", str(workers), "--seconds", str(args.seconds), "--data", str(args.data)]
                cmd += ["--uint8"] if args.uint8 else []
                tries = [run_json([*cmd, "--seed", str(k)]) for k in range(args.repeats)]
                ok = sorted((t for t in tries if "samples_per_s" in t), key=lambda t: t["samples_per_s"])
                r = ok[len(ok) // 2] if ok else tries[0]
                r["all_samples_per_s"] = [t["samples_per_s"] for t in ok]
                r.setdefault("loader", loader)
                r.setdefault("workers", workers)
                block["loaders"].append(r)
            if c == "a" and not args.no_loader_epochs:
                block["loader_epochs"] = loader_epochs(c, w, args.data)
            (args.out / "results.json").write_text(json.dumps(results, indent=2))
    if "a" in args.configs and not args.no_open_10k:
        results["open_10k"] = open_times(CONFIGS["a"].root(args.data))
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    text = report(results)
    (args.out / "table.txt").write_text(text + "\n")
    (args.out / "summary.md").write_text(summary_markdown(results) + "\n")
    print(text)
    try:
        chart(results, args.out / "throughput.png")
        print(f"\n[bench] wrote {args.out / 'results.json'}, {args.out / 'table.txt'}, {args.out / 'throughput.png'}")
    except ImportError:
        print(f"\n[bench] wrote {args.out / 'results.json'} (matplotlib missing: no chart)")


if __name__ == "__main__":
    main()
