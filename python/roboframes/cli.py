"""The ``roboframes`` command: look at, check, summarise and convert a LeRobot v3.0 dataset
folder, or files read in place (HDF5: ALOHA episode files, robomimic/LIBERO demo files; RLDS:
Open X-Embodiment TFDS folders; MCAP: ROS 2 and Foxglove recordings).

roboframes info ROOT                          summary: episodes, frames, fps, cameras, features, tasks, size
roboframes validate ROOT [--decode all] [--json]   every problem at once; exit status 1 on errors
roboframes stats ROOT [--recompute] [--json]  meta/stats.json, or statistics recomputed from the data
roboframes convert SRC DST [--episodes 0 1] [--engine ray]   SRC written as a LeRobot v3.0 dataset by LeRobot's writer

HDF5 and RLDS sources take --fps (when the files store none), --task, --key-map and --split.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import Error, InvalidArgumentError, MetadataWarning


def _size(root: Path) -> int:
    if root.is_file():
        return root.stat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            try:
                total += (Path(dirpath) / f).stat().st_size
            except OSError:
                pass
    return total


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(f"{h:<{w}}" for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(f"{str(c):<{w}}" for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def _info(args: argparse.Namespace) -> int:
    try:
        ds = _open(args)
    except Error as e:
        return _info_of_a_failing_dataset(args, e)
    feats = ds.features
    summary: dict[str, Any] = {
        "root": str(ds.root),
        "codebase_version": ds.info.get("codebase_version"),
        "episodes": ds.num_episodes,
        "frames": ds.num_frames,
        "fps": ds.fps,
        "duration_s": ds.num_frames / float(ds.fps),
        "format": ds.format,
        "layout": (ds.info.get("source") or {}).get("layout"),
        "split": (ds.info.get("source") or {}).get("split"),
        "reference_topic": (ds.info.get("source") or {}).get("reference_topic"),
        "size_bytes": _size(ds.root) if isinstance(ds.root, Path) else None,
        "cameras": {},
        "features": {},
        "tasks": list(ds.tasks.values()),
    }
    shapes = {s.key: s.shape for s in ds.output_specs()}
    depth = set(ds.depth_keys)
    for k in ds.camera_keys:
        f = feats[k]
        vi = f.get("info") or {}
        h, w = shapes[k][-3], shapes[k][-2]  # frames are (..., H, W, C)
        summary["cameras"][k] = {
            "kind": f["dtype"],
            "codec": vi.get("video.codec"),
            "width": w,
            "height": h,
            "pix_fmt": vi.get("video.pix_fmt"),
            "shape": f.get("shape"),
            # a depth map: the unit it was recorded in (its frames are read in the dataset's
            # depth_output_unit)
            "depth": (vi.get("depth_unit") or "unit not recorded") if k in depth else None,
        }
    for k, f in feats.items():
        if f["dtype"] not in ("video", "image"):
            summary["features"][k] = {"dtype": f["dtype"], "shape": f.get("shape")}
    if args.json:
        print(_dumps(summary))
        return 0
    if ds.format == "lerobot":
        print(f"{summary['root']}  (LeRobot {summary['codebase_version']})")
    else:
        if summary["layout"]:
            how = f"{summary['layout']} layout"
        elif summary["reference_topic"]:
            how = f"items on {summary['reference_topic']}'s times"
        else:
            how = f"split {summary['split']}"
        print(f"{summary['root']}  ({ds.format.upper()}, {how}, read in place)")
    print(
        f"  {summary['episodes']} episodes, {summary['frames']:,} frames at {summary['fps']} fps "
        f"({summary['duration_s'] / 60:.1f} min), "
        + (f"{_human(summary['size_bytes'])} on disk" if summary["size_bytes"] is not None else "remote")
    )
    if summary["cameras"]:
        print("\ncameras")
        rows = [
            [
                k,
                v["kind"] + (" (depth)" if v["depth"] else ""),
                v["codec"] or "-",
                f"{v['width']}x{v['height']}",
                v["pix_fmt"] or "-",
            ]
            for k, v in summary["cameras"].items()
        ]
        print(_table(rows, ["key", "kind", "codec", "size", "pix_fmt"]))
    print("\nfeatures")
    print(
        _table(
            [[k, v["dtype"], str(tuple(v["shape"] or ()))] for k, v in summary["features"].items()],
            ["key", "dtype", "shape"],
        )
    )
    tasks = summary["tasks"]
    print(f"\ntasks ({len(tasks)})")
    for t in tasks[:10]:
        print(f"  {t}")
    if len(tasks) > 10:
        print(f"  ... and {len(tasks) - 10} more")
    return 0


def _info_of_a_failing_dataset(args: argparse.Namespace, problem: Error) -> int:
    """``info`` on a dataset that does not open: what ``meta/info.json`` says, if it can be read,
    and the problem (exit status 1)."""
    from . import remote

    summary: dict[str, Any] = {"root": str(args.root), "ok": False, "problem": str(problem)}
    try:
        root = remote.open_root(args.root, _options(args), args.cache_dir)
        raw = json.loads(remote.read_bytes(remote.join(root, "meta", "info.json")))
        if not isinstance(raw, dict):
            raise ValueError("meta/info.json is not a JSON object")
    except (Error, ValueError) as e:
        summary["info_json"] = None
        if str(e) != str(problem):
            summary["info_json_problem"] = str(e)
    else:
        found = raw.get("features")
        feats: dict[str, Any] = found if isinstance(found, dict) else {}
        summary.update(
            codebase_version=raw.get("codebase_version"),
            episodes=raw.get("total_episodes"),
            frames=raw.get("total_frames"),
            fps=raw.get("fps"),
            features={
                k: {"dtype": f.get("dtype"), "shape": f.get("shape")} for k, f in feats.items() if isinstance(f, dict)
            },
        )
    if args.json:
        print(_dumps(summary))
        return 1
    if "features" not in summary:  # nothing to show beyond the problem
        raise problem

    def said(k: str) -> str:
        return "?" if summary[k] is None else str(summary[k])

    print(f"{summary['root']}: does not open as a LeRobot dataset")
    print(f"  problem: {problem}")
    print(
        f"  meta/info.json says: LeRobot {said('codebase_version')}, {said('episodes')} episodes, "
        f"{said('frames')} frames at {said('fps')} fps"
    )
    if summary["features"]:
        rows = [[k, str(v["dtype"]), str(v["shape"])] for k, v in summary["features"].items()]
        print(_table(rows, ["key", "dtype", "shape"]))
    print(f"\n`roboframes validate {args.root}` lists every problem of the dataset.")
    return 1


def _validate(args: argparse.Namespace) -> int:
    from .tools import validate

    report = validate(
        args.root,
        args.decode,
        tolerance_s=args.tolerance_s,
        progress=None if not args.json else False,
        storage_options=_options(args),
        engine=args.engine,
        **_source(args),
    )
    if args.json:
        print(_dumps(report.to_dict()))
    else:
        print(report)
    return 0 if report.ok else 1


def _no_nan(v: Any) -> Any:
    """``v`` with NaN and infinities as ``None`` (JSON has neither)."""
    if isinstance(v, float):
        return v if np.isfinite(v) else None
    if isinstance(v, list):
        return [_no_nan(x) for x in v]
    if isinstance(v, dict):
        return {k: _no_nan(x) for k, x in v.items()}
    return v


def _dumps(v: Any) -> str:
    return json.dumps(_no_nan(v), indent=2, allow_nan=False)


def _jsonable(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: {n: np.asarray(v).tolist() for n, v in s.items()} for k, s in stats.items()}


def _stats(args: argparse.Namespace) -> int:
    ds = _open(args)
    if args.engine == "ray" and not args.recompute:
        raise InvalidArgumentError("stats --engine ray needs --recompute (reading stats.json runs no tasks)")
    stats = (
        ds.stats(recompute=True, progress=None if not args.json else False, engine=args.engine)
        if args.recompute
        else dict(ds.stats)
    )
    if args.json:
        print(_dumps(_jsonable(stats)))
        return 0
    if not stats:
        print(f"{ds.root}: no {_stats_file(ds)} (use --recompute)")
        return 0

    def fmt(v: Any) -> str:
        a = np.asarray(v, dtype=float).ravel()
        shown = ", ".join(f"{x:.4g}" for x in a[:4])
        return f"[{shown}{', ...' if a.size > 4 else ''}]"

    rows = [
        [
            k,
            fmt(s.get("mean", [])),
            fmt(s.get("std", [])),
            fmt(s.get("min", [])),
            fmt(s.get("max", [])),
            str(np.asarray(s.get("count", [0])).ravel()[0]),
        ]
        for k, s in stats.items()
    ]
    print(f"{ds.root}: {'recomputed from the data' if args.recompute else _stats_file(ds)}")
    print(_table(rows, ["feature", "mean", "std", "min", "max", "count"]))
    return 0


def _quality(args: argparse.Namespace) -> int:
    if args.plot is not None:
        _writable(args.plot, "--plot")
        _needs("matplotlib", "quality --plot")
    ds = _open(args)
    report = ds.quality(cameras=not args.no_cameras, engine=args.engine)
    if args.json:
        print(_dumps(report.to_dict()))
    else:
        cols = [k for k in report.records[0] if k not in ("episode_index", "task")] if report.records else []
        rows = [
            [str(r["episode_index"])]
            + [f"{r.get(c, float('nan')):.4g}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols]
            + ["EXCLUDE" if r["episode_index"] in report.exclude else ""]
            for r in report.records
        ]
        print(_table(rows, ["episode", *cols, ""]))
        print(f"\nsuggested exclusions ({len(report.exclude)} of {len(report.records)} episodes):")
        for ep, reasons in sorted(report.exclude.items()):
            print(f"  episode {ep}: {'; '.join(reasons)}")
        if report.dataset_findings:
            print("\nabout the whole dataset:")
            for finding in report.dataset_findings:
                print(f"  {finding}")
    if args.plot is not None:
        _plot_quality(report, args.plot)
        if not args.json:
            print(f"\nwrote {args.plot}")
    return 0


def _plot_quality(report: Any, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [k for k in report.records[0] if k not in ("episode_index", "task")] if report.records else []
    eps = [r["episode_index"] for r in report.records]
    fig, axes = plt.subplots(len(cols), 1, figsize=(max(6, 0.25 * len(eps)), 1.8 * len(cols)), squeeze=False)
    for ax, c in zip(axes[:, 0], cols, strict=True):
        vals = [float(r.get(c, np.nan)) for r in report.records]
        colors = ["tab:red" if e in report.exclude else "tab:blue" for e in eps]
        ax.bar(range(len(eps)), vals, color=colors)
        ax.set_ylabel(c, rotation=0, ha="right", fontsize=8)
        ax.set_xticks(range(len(eps)), [str(e) for e in eps], fontsize=6)
    axes[-1, 0].set_xlabel("episode (red: suggested exclusion)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _frames(args: argparse.Namespace) -> int:
    _writable(args.out, "--out")
    _needs("PIL", "frames")
    from PIL import Image, ImageDraw

    ds = _open(args)
    rec = next((r for r in ds.episodes() if r.index == args.episode), None)
    if rec is None:
        print(
            f"roboframes frames: episode {args.episode} is not in {args.root} (episodes: {list(ds.episodes)})",
            file=sys.stderr,
        )
        return 2
    cams = list(ds.camera_keys)
    if not cams:
        print("roboframes frames: the dataset has no cameras", file=sys.stderr)
        return 2
    n = min(args.frames, rec.length)
    picks = np.unique(np.linspace(0, rec.length - 1, n).round().astype(int))
    batch = ds.fill_batch(
        picks + rec.first_item, "uint8", True, skip=[s.key for s in ds.output_specs() if s.key not in cams]
    )
    label_h = 14
    tiles = {c: batch[c][:, -1] if batch[c].ndim == 5 else batch[c] for c in cams}
    w = max(t.shape[2] for t in tiles.values())
    h = max(t.shape[1] for t in tiles.values())
    sheet = Image.new("RGB", (len(picks) * w, len(cams) * (h + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, c in enumerate(cams):
        y = row * (h + label_h)
        draw.text((2, y), c, fill="black")
        for col, (f, i) in enumerate(zip(tiles[c], picks, strict=True)):
            if f.dtype != np.uint8:  # a depth map: its range stretched to grey levels
                lo, hi = float(f.min()), float(f.max())
                f = ((f - lo) * (255.0 / (hi - lo) if hi > lo else 0.0)).astype(np.uint8)
            img = Image.fromarray(np.ascontiguousarray(f[..., :3]) if f.shape[-1] >= 3 else f[..., 0])
            sheet.paste(img, (col * w, y + label_h))
            if row == len(cams) - 1:
                draw.text((col * w + 2, y + label_h + 2), f"#{int(i)}", fill="yellow")
    sheet.save(args.out)
    print(f"wrote {args.out}: episode {rec.index}, {len(cams)} camera(s) x {len(picks)} frames")
    return 0


class UsageError(Exception):
    """A mistake in the command line or the environment, said in one line (exit status 2)."""


def _writable(out: Path, option: str) -> None:
    """Refuses an output path whose folder does not exist, before any work is done."""
    folder = out.expanduser().parent
    if not folder.is_dir():
        raise UsageError(f"{option} {out}: the folder {folder} does not exist")
    if out.is_dir():
        raise UsageError(f"{option} {out}: is a folder, not a file name")


#: the import name of an optional dependency -> what provides it
_EXTRAS = {"matplotlib": "matplotlib", "PIL": "Pillow"}


def _needs(module: str, what: str) -> None:
    """Refuses a command whose optional dependency is missing, saying what to install."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UsageError(
            f"{what} needs {_EXTRAS[module]}: pip install 'roboframes[plots]' (or pip install {_EXTRAS[module]})"
        )


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _stats_file(ds: Any) -> str:
    """Where a dataset's recorded statistics are: ``meta/stats.json``, or a v2.1 root's
    episodes' (aggregated)."""
    if ds.codebase_version == "v2.1":
        return "meta/episodes_stats.jsonl (aggregated as LeRobot 0.3 does)"
    return "meta/stats.json"


def _convert(args: argparse.Namespace) -> int:
    from .convert import convert

    out = convert(
        args.src,
        args.dst,
        episodes=args.episodes,
        repo_id=args.repo_id,
        robot_type=args.robot_type,
        use_videos=not args.no_videos,
        engine=args.engine,
        **_source(args),
    )
    print(f"{out}: a LeRobot v3.0 dataset (open it with roboframes.Dataset or LeRobot's LeRobotDataset)")
    return 0


def _root_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", help="dataset folder, or a remote root: s3://..., https://..., hf://datasets/org/name[@rev]")
    p.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of a remote root's store (repeatable; e.g. aws_endpoint=http://127.0.0.1:9000)",
    )
    p.add_argument("--cache-dir", default=None, help="keep blocks of remote files in this folder")
    _source_args(p, key_map="source")


def _source_args(p: argparse.ArgumentParser, key_map: str) -> None:
    """The options of a root that is not a LeRobot dataset (HDF5 files)."""
    p.add_argument(
        "--format",
        choices=["lerobot", "hdf5", "rlds", "mcap"],
        default=None,
        help="the root's format (default: detected)",
    )
    p.add_argument("--topics", default=None, metavar="T1,T2,...", help="the MCAP topics to read (default: all)")
    p.add_argument("--reference-topic", default=None, help="the MCAP topic whose times are the items' times")
    p.add_argument(
        "--align-tolerance-s",
        type=float,
        default=None,
        help="how much older than an item's time an MCAP topic's message may be (default: 1.5 periods)",
    )
    p.add_argument(
        "--episode-span",
        action="append",
        default=None,
        metavar="FILE:START:END",
        help="an MCAP episode: seconds [START, END) of the recording FILE (repeatable; default: one per file)",
    )
    p.add_argument("--split", default=None, help="the split of an RLDS dataset (default: train)")
    p.add_argument("--fps", type=float, default=None, help="frames per second of files that store none")
    p.add_argument("--task", default=None, help="the task of every episode of files that store none")
    p.add_argument(
        "--key-map",
        default=key_map,
        metavar="lerobot|source|SRC=NAME,...",
        help=f"item names of the files' keys: LeRobot's, the files' own, or given (default: {key_map})",
    )


def _key_map(text: str) -> str | dict[str, str] | None:
    """``--key-map``: ``lerobot``, ``source`` (None) or ``SRC=NAME,...``."""
    if text == "lerobot":
        return "lerobot"
    if text == "source":
        return None
    names: dict[str, str] = {}
    for pair in text.split(","):
        k, sep, v = pair.partition("=")
        if not sep or not k or not v:
            raise UsageError(f"--key-map takes lerobot, source or SRC=NAME,...; got {text!r}")
        names[k] = v
    return names


def _source(args: argparse.Namespace) -> dict[str, Any]:
    """The source options the command was given, as ``roboframes.Dataset``'s arguments."""
    return {
        "format": args.format,
        "fps": args.fps,
        "task": args.task,
        "key_map": _key_map(args.key_map),
        "split": args.split,
        "topics": None if args.topics is None else [t for t in args.topics.split(",") if t],
        "reference_topic": args.reference_topic,
        "align_tolerance_s": args.align_tolerance_s,
        "episode_spans": _episode_spans(args.episode_span),
    }


def _episode_spans(given: list[str] | None) -> dict[str, list[tuple[float, float]]] | None:
    """``--episode-span FILE:START:END`` (repeated) as ``episode_spans``."""
    if not given:
        return None
    out: dict[str, list[tuple[float, float]]] = {}
    for text in given:
        name, _, rest = text.rpartition(":")
        name, _, start = name.rpartition(":")
        try:
            span = (float(start), float(rest))
        except ValueError:
            raise UsageError(f"--episode-span takes FILE:START:END (seconds), got {text!r}") from None
        if not name:
            raise UsageError(f"--episode-span takes FILE:START:END (seconds), got {text!r}")
        out.setdefault(name, []).append(span)
    return out


def _open(args: argparse.Namespace) -> Any:
    """The dataset the command names, remote roots with their options."""
    from .dataset import Dataset

    return Dataset(args.root, storage_options=_options(args), cache_dir=args.cache_dir, **_source(args))


def _options(args: argparse.Namespace) -> dict[str, str] | None:
    out = {}
    for kv in args.storage_option:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise SystemExit(f"roboframes {args.command}: --storage-option takes KEY=VALUE, got {kv!r}")
        out[k] = v
    return out or None


def _engine_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="where the work runs: this process (default) or Ray tasks (an initialised Ray, "
        "RAY_ADDRESS, or a local Ray started for the run); the same results",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``roboframes`` console script."""
    ap = argparse.ArgumentParser(
        prog="roboframes", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="summary of a dataset")
    _root_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_info)
    p = sub.add_parser("validate", help="check a dataset; exit status 1 on errors")
    _root_args(p)
    p.add_argument(
        "--decode", choices=["none", "ends", "all"], default="ends", help="how much video to decode (default: ends)"
    )
    p.add_argument("--tolerance-s", type=float, default=1e-4)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _engine_arg(p)
    p.set_defaults(run=_validate)
    p = sub.add_parser("stats", help="feature statistics")
    _root_args(p)
    p.add_argument("--recompute", action="store_true", help="compute them from the data (as LeRobot's writer does)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _engine_arg(p)
    p.set_defaults(run=_stats)
    p = sub.add_parser("quality", help="per-episode quality scores and suggested exclusions")
    _root_args(p)
    p.add_argument("--plot", type=Path, default=None, help="write a chart of the scores (PNG; needs matplotlib)")
    p.add_argument("--no-cameras", action="store_true", help="skip the decoded-frame scores")
    p.add_argument("--json", action="store_true", help="print JSON")
    _engine_arg(p)
    p.set_defaults(run=_quality)
    p = sub.add_parser("frames", help="a contact sheet of an episode's frames, every camera")
    _root_args(p)
    p.add_argument("--episode", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--frames", type=_positive, default=8, help="frames per camera (evenly spaced)")
    p.set_defaults(run=_frames)
    p = sub.add_parser("convert", help="write a source as a LeRobot v3.0 dataset with LeRobot's writer")
    p.add_argument("src", help="what to convert: HDF5 files (a file or folder) or a LeRobot dataset")
    p.add_argument("dst", help="the LeRobot dataset folder to write (must not exist, unless it is this conversion)")
    p.add_argument("--episodes", type=int, nargs="+", default=None, help="episodes of SRC to convert (default: all)")
    p.add_argument(
        "--repo-id", default=None, help="the dataset's repo_id in info.json (default: roboframes/<DST name>)"
    )
    p.add_argument("--robot-type", default=None)
    p.add_argument("--no-videos", action="store_true", help="store cameras as images in the tables, not videos")
    _engine_arg(p)
    _source_args(p, key_map="lerobot")
    p.set_defaults(run=_convert)
    args = ap.parse_args(argv)
    name = f"roboframes {args.command}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetadataWarning)
        try:
            code: int = args.run(args)
        except (Error, UsageError) as e:
            code = 2
            print(f"{name}: {e}", file=sys.stderr)
        except BrokenPipeError:  # `roboframes info ... | head`
            code = 141
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (nothing more reaches the pipe)
        except OSError as e:  # writing an output file: a full disk, no permission
            code = 2
            print(f"{name}: {e}", file=sys.stderr)
        except KeyboardInterrupt:
            code = 130
            print(f"{name}: interrupted", file=sys.stderr)
    seen = set()
    for w in caught:
        text = str(w.message)
        if text not in seen:
            seen.add(text)
            print(f"{name}: warning: {text}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
