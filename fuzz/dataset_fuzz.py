"""Structure-aware fuzzing of whole LeRobot datasets, and of roboframes' API arguments.

Each case copies a small dataset written by LeRobot's own writer, damages one part of it the way
a broken recorder, converter, download or hand edit would (``info.json`` fields and path
templates, ``stats.json``, the schema and values of each parquet table, mp4 boxes and bitstream
bytes, the file system), or keeps it intact and calls the API with hostile arguments. A forked
child with a memory limit then opens and reads it (every item, a batch, or ``validate``), and
the parent classifies what happened:

``ok``           every item equals the undamaged dataset's (the damage did not matter)
``error``        a ``roboframes.Error`` (or, for a misused API, ``TypeError``) was raised
``changed``      items differ only in a feature whose stored values the mutation changed
``payload``      items differ, and the damage is inside coded data that the format cannot check:
                 mp4 picture bytes, or parquet pages that pyarrow itself reads to other values
``concealed``    items differ after damage to a video that default (non-strict) decoding hides,
                 as FFmpeg, torchcodec and LeRobot do; strict decoding is the check
``silent``       items differ and nothing above explains it: a bug
``false_error``  an error on a dataset changed only in ways that keep it valid (row groups split,
                 an extra column or field): a bug
``internal``     a ``roboframes.InternalError`` (a caught Rust panic or broken invariant): a bug
``exception``    another Python exception (an unclear error): a bug
``panic``        a Rust panic reached Python: a bug
``signal``       the child died of a signal (a crash): a bug
``timeout``      the child did not finish within the time limit: a bug
``memory``       the child ran out of its memory limit: a bug

Usage (the test command runs a short campaign; README "Reliability" has a long one)::

    .venv/bin/python fuzz/dataset_fuzz.py --cases 300 --seed 1 --out target/fuzz-datasets

Every case is reproducible from ``(seed, case number)``; bugs are listed with the command that
replays them (``--only N``), and the exit status is 1 when there was any.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import random
import resource
import select
import shutil
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import roboframes
from roboframes.synthetic import DatasetSpec, write_dataset

BUGS = ("silent", "false_error", "internal", "exception", "panic", "signal", "timeout", "memory")

# Small datasets written by LeRobot 0.4.4's writer: H.264, HEVC with B-frames (a ctts table),
# and AV1 spread over several data and video files with an embedded image feature.
BASES: dict[str, DatasetSpec] = {
    "h264": DatasetSpec(
        vcodec="h264", episode_lengths=(6, 5, 7), image_key=None, cameras=(("observation.images.top", 48, 64),)
    ),
    "hevc": DatasetSpec(
        vcodec="hevc", episode_lengths=(6, 5, 7), image_key=None, cameras=(("observation.images.top", 48, 64),)
    ),
    "av1": DatasetSpec(
        vcodec="libsvtav1",
        episode_lengths=(3, 1, 4, 2),
        cameras=(("observation.images.top", 32, 64), ("observation.images.wrist", 24, 40)),
        image_hw=(16, 24),
        data_files_size_in_mb=0.0001,
        video_files_size_in_mb=0.0001,
        chunks_size=2,
    ),
}


class Skip(Exception):
    """The mutator does not apply to this dataset (nothing of the kind to damage)."""


@dataclass
class Case:
    number: int
    base: str
    mutation: str = ""
    detail: str = ""
    # damage inside coded data that no reader can check (see the module docstring)
    payload: bool = False
    # the items' keys the damage may change: payload damage, or concealed video damage
    payload_keys: set[str] = field(default_factory=set)
    video: bool = False
    # the damage keeps the dataset valid: any error is a false error
    benign: bool = False
    op: str = "read"
    strict: bool = False
    windows: bool = False
    api: dict[str, Any] = field(default_factory=dict)
    # features whose stored values the mutation changed legitimately (an edited or recast value
    # of a data column): the items may differ there, and only there
    changes: set[str] = field(default_factory=set)
    # features whose declared dtype or shape changed: the same numbers, cast or reshaped
    recast: set[str] = field(default_factory=set)


# -- the reference: every item of each undamaged base, plain and windowed ------------------------


def windows_of(ds: roboframes.Dataset) -> dict[str, list[float]]:
    """A two-step window on the state and the first camera (LeRobot's delta_timestamps)."""
    fps = float(ds.info["fps"])
    keys = ["observation.state", *ds.camera_keys[:1]]
    return {k: [-1.0 / fps, 0.0] for k in keys}


def read_all(ds: roboframes.Dataset) -> list[dict[str, Any]]:
    return [ds[i] for i in range(len(ds))]


def same_items(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> str | None:
    """None when equal, else where they first differ."""
    if len(a) != len(b):
        return f"{len(b)} items instead of {len(a)}"
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x.keys() != y.keys():
            return f"item {i}: keys {sorted(set(x) ^ set(y))}"
        for k, v in x.items():
            w = y[k]
            if isinstance(v, np.ndarray):
                if not (isinstance(w, np.ndarray) and v.dtype == w.dtype and v.shape == w.shape):
                    return f"item {i} '{k}': {getattr(w, 'dtype', type(w))} {getattr(w, 'shape', '')}"
                if not np.array_equal(v, w, equal_nan=v.dtype.kind == "f"):
                    return f"item {i} '{k}': values"
            elif v != w:
                return f"item {i} '{k}': {w!r} instead of {v!r}"
    return None


def same_numbers(a: list[dict[str, Any]], b: list[dict[str, Any]], keys: set[str]) -> bool:
    """Equal items, except that entries under `keys` need only hold the same numbers (another
    dtype or shape)."""
    for x, y in zip(a, b, strict=True):
        if x.keys() != y.keys():
            return False
        for k, v in x.items():
            w = y[k]
            if k in keys and isinstance(v, np.ndarray) and isinstance(w, np.ndarray):
                if v.size != w.size or not np.array_equal(
                    v.ravel().astype(np.float64), w.ravel().astype(np.float64), equal_nan=True
                ):
                    return False
            elif same_items([{k: v}], [{k: w}]) is not None:
                return False
    return True


# -- mutators -------------------------------------------------------------------------------------

Mutator = Callable[[Path, random.Random, Case], None]
MUTATORS: dict[str, tuple[float, Mutator]] = {}


def mutator(weight: float) -> Callable[[Mutator], Mutator]:
    def register(f: Mutator) -> Mutator:
        MUTATORS[f.__name__] = (weight, f)
        return f

    return register


def odd_value(rng: random.Random, like: Any) -> Any:
    """A hostile replacement for a JSON value."""
    choices: list[Any] = [
        None,
        True,
        -1,
        0,
        2**31,
        2**63,
        -(2**63) - 1,
        2**70,
        1e308,
        -0.0,
        "x",
        "",
        [],
        {},
        [[[]]],
        "NaN",
        "{chunk_index:065536d}",
        "../" * 8 + "etc/passwd",
        "/etc/passwd",
    ]
    if isinstance(like, bool):
        choices += [not like]
    elif isinstance(like, int):
        choices += [like + 1, like - 1, -like, like * 1000]
    elif isinstance(like, float):
        choices += [like * 2, like + 1e-9, -like, float("inf")]
    elif isinstance(like, str):
        choices += [like[:-1], like + "x", like.upper()]
    elif isinstance(like, list):
        choices += [like[:-1], like + like[-1:] if like else [0], [2**62] * len(like), list(reversed(like))]
    return rng.choice(choices)


def json_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += json_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += json_paths(v, (*prefix, i))
    return out


def dump_json(doc: Any) -> str:
    """json.dumps, with the nesting placeholders of json_edit expanded to nested lists."""
    text = json.dumps(doc, allow_nan=True)
    while (i := text.find('"__NEST_')) >= 0:
        j = text.index('__"', i)
        n = int(text[i + 8 : j])
        text = text[:i] + "[" * n + "0" + "]" * n + text[j + 3 :]
    return text


def json_edit(doc: Any, rng: random.Random) -> tuple[Any, str]:
    """One structural edit of a JSON document: replace, delete or duplicate a value."""
    paths = [p for p in json_paths(doc) if p]
    p = rng.choice(paths)
    parent = doc
    for k in p[:-1]:
        parent = parent[k]
    key = p[-1]
    how = rng.choice(["replace", "replace", "replace", "delete", "nest"])
    if how == "delete":
        del parent[key]
    elif how == "nest":
        # (written as text by dump_json: too deep for json.dumps)
        parent[key] = f"__NEST_{rng.choice([2, 50, 5000])}__"
    else:
        parent[key] = odd_value(rng, parent[key])
    return doc, f"{how} {'/'.join(map(str, p))}"


@mutator(10)
def info_field(root: Path, rng: random.Random, case: Case) -> None:
    """A field of info.json replaced, deleted or nested."""
    path = root / "meta/info.json"
    doc, what = json_edit(json.loads(path.read_text()), rng)
    path.write_text(dump_json(doc))
    case.detail = what
    parts = what.split(" ", 1)[1].split("/")
    if what.startswith("delete") and len(parts) == 2 and parts[0] == "features":
        # a feature no longer declared: items lack it (and its window's padding mask)
        case.changes |= {parts[1], f"{parts[1]}_is_pad"}
    elif len(parts) >= 3 and parts[0] == "features" and parts[2] in ("shape", "dtype"):
        case.recast.add(parts[1])


@mutator(4)
def info_template(root: Path, rng: random.Random, case: Case) -> None:
    """A path template in info.json changed."""
    path = root / "meta/info.json"
    doc = json.loads(path.read_text())
    key = rng.choice(["data_path", "video_path"])
    t = doc.get(key) or ""
    doc[key] = rng.choice(
        [
            t.replace("{chunk_index:03d}", "{chunk_index:0300d}"),
            t.replace("{chunk_index:03d}", "{chunk_index:x}"),
            t.replace("{file_index:03d}", "{file_index}"),
            t.replace("{file_index:03d}", "{file_index:03d"),
            t.replace("{file_index:03d}", "{other}"),
            t.replace("chunk-", "../chunk-"),
            "/" + t,
            t.replace("{video_key}", "{video_key}/../../.."),
            t + "/",
            "",
            "{chunk_index:03d}",
        ]
    )
    path.write_text(json.dumps(doc))
    case.detail = f"{key}={doc[key]!r}"


@mutator(3)
def stats_json(root: Path, rng: random.Random, case: Case) -> None:
    """stats.json edited, made ragged, deeply nested or replaced by non-JSON."""
    path = root / "meta/stats.json"
    if not path.exists():
        raise Skip
    if rng.random() < 0.2:
        data = path.read_bytes()
        path.write_bytes(rng.choice([b"", b"{", b"[]", b"null", data[: len(data) // 2], b"[" * 100000]))
        case.detail = "replaced"
        return
    doc, what = json_edit(json.loads(path.read_text()), rng)
    path.write_text(dump_json(doc))
    case.detail = what


def parquet_files(root: Path, which: str) -> list[Path]:
    return sorted((root / which).rglob("*.parquet")) if which != "meta/tasks" else [root / "meta/tasks.parquet"]


# columns of a data table that place a row (the rest are features whose values may change)
ROW_METADATA = {"index", "episode_index", "frame_index", "timestamp", "task_index"}


def table_target(root: Path, rng: random.Random) -> tuple[Path, str]:
    which = rng.choice(["data", "data", "data", "meta/episodes", "meta/episodes", "meta/tasks"])
    files = [f for f in parquet_files(root, which) if f.exists()]
    if not files:
        raise Skip
    return rng.choice(files), which


def cast_column(col: pa.ChunkedArray, rng: random.Random) -> pa.Array:
    t = col.type
    if pa.types.is_integer(t):
        to = rng.choice([pa.int32(), pa.int16(), pa.uint64(), pa.float64(), pa.float32(), pa.string()])
    elif pa.types.is_floating(t):
        to = rng.choice([pa.float64(), pa.float16(), pa.int64(), pa.string()])
    elif pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t):
        vt = t.value_type
        inner = rng.choice([pa.float64(), pa.float16(), pa.int64(), pa.string()]) if not pa.types.is_struct(vt) else vt
        to = rng.choice([pa.list_(inner), pa.large_list(inner), pa.list_(vt)])
    elif pa.types.is_boolean(t):
        to = rng.choice([pa.int8(), pa.string(), pa.float32()])
    else:
        to = rng.choice([pa.string(), pa.binary(), pa.int64()])
    return col.cast(to, safe=False)


def edit_value(col: pa.ChunkedArray, rng: random.Random, row: int) -> pa.Array:
    values = col.to_pylist()
    v = values[row]
    if isinstance(v, bool):
        values[row] = not v
    elif isinstance(v, int):
        values[row] = rng.choice([v + 1, v - 1, 0, -1, -v, v + 1000, 2**62, -(2**63)])
    elif isinstance(v, float):
        values[row] = rng.choice([v + 1e-6, v + 1e-3, v + 0.05, v - 0.05, -v, v + 1e6, math.nan, math.inf])
    elif isinstance(v, list) and v:
        v = list(v)
        j = rng.randrange(len(v))
        x = v[j]
        if isinstance(x, float):
            v[j] = rng.choice([math.nan, 1e38, -1e38, 0.0])
        elif isinstance(x, int) and not isinstance(x, bool):
            v[j] = x + 1
        else:
            v[j] = None
        values[row] = rng.choice([v, v[:-1], [*v, v[-1]]])
    elif isinstance(v, str):
        values[row] = rng.choice(["", v + "x", "\x00", "é" * 1000])
    else:
        values[row] = None
    return pa.array(values, type=col.type, safe=False) if not isinstance(values[row], list) else pa.array(values)


@mutator(14)
def table_values(root: Path, rng: random.Random, case: Case) -> None:
    """One parquet table's schema or values changed: a cast, nulls, a dropped, renamed or added
    column, one edited value, rows reordered, dropped or repeated, row groups split."""
    path, which = table_target(root, rng)
    table = pq.read_table(path)
    names = table.column_names
    name = rng.choice(names)
    i = names.index(name)
    n = table.num_rows
    how = rng.choice(["cast", "null", "drop", "rename", "add", "value", "value", "value", "rows", "groups"])
    if how == "cast":
        table = table.set_column(i, name, cast_column(table[name], rng))
    elif how == "null":
        mask = [rng.random() < 0.3 for _ in range(n)]
        mask[rng.randrange(n)] = True
        table = table.set_column(
            i,
            name,
            pa.array(
                [None if m else v for m, v in zip(mask, table[name].to_pylist(), strict=True)], type=table[name].type
            ),
        )
    elif how == "drop":
        table = table.remove_column(i)
    elif how == "rename":
        table = table.rename_columns([("x" + c if c == name else c) for c in names])
    elif how == "add":
        table = table.append_column("extra." + name, table[name])
    elif how == "value":
        row = rng.randrange(n)
        table = table.set_column(i, name, edit_value(table[name], rng, row))
        name = f"{name}[{row}]"
    elif how == "rows":
        order = list(range(n))
        op = rng.choice(["shuffle", "drop", "repeat", "reverse"])
        if op == "shuffle":
            rng.shuffle(order)
        elif op == "drop" and n > 1:
            del order[rng.randrange(n)]
        elif op == "repeat":
            order.insert(rng.randrange(n), rng.randrange(n))
        else:
            order.reverse()
        table = table.take(order)
        name = op
    column = name.split("[")[0]
    if how in ("cast", "value"):
        # a feature's stored value (a timestamp too, while the frame stays within tolerance), or
        # a task's text: items may carry the new value
        if which == "data" and (column not in ROW_METADATA or column in ("timestamp", "frame_index")):
            case.changes.add(column)
        elif which == "data" and column == "task_index":
            case.changes |= {"task_index", "task"}
        elif which == "meta/tasks" and column not in ("task_index",):
            case.changes.add("task")
    pq.write_table(table, path, row_group_size=1 if how == "groups" else None)
    case.detail = f"{path.relative_to(root)}: {how} {name}"


@mutator(6)
def parquet_bytes(root: Path, rng: random.Random, case: Case) -> None:
    """Bytes of a parquet file flipped or the file truncated. When pyarrow reads the damaged file
    to other values, the damage is in pages the format has no checksum for (payload)."""
    path, _ = table_target(root, rng)
    data = bytearray(path.read_bytes())
    before = pq.read_table(path)
    if rng.random() < 0.3:
        data = data[: rng.randrange(len(data))]
        case.detail = f"{path.relative_to(root)} truncated to {len(data)}"
    else:
        spots = [rng.randrange(len(data)) for _ in range(rng.choice([1, 1, 2, 8]))]
        for s in spots:
            data[s] = rng.randrange(256)
        case.detail = f"{path.relative_to(root)} bytes {spots}"
    path.write_bytes(bytes(data))
    try:
        after = pq.read_table(path)
        differing = {c for c in before.column_names if c not in after.column_names or not after[c].equals(before[c])}
        case.payload = bool(differing) or not after.equals(before)
        # a data column's values reach items under its own name; metadata tables reach anything
        case.payload_keys = differing if "data" in path.parts and differing else {"*"}
    except Exception:
        case.payload = False


MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta", b"mvex"}


def mp4_boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of every box, depth first; sample entries' configuration boxes
    (avcC, hvcC, av1C) included."""
    end = len(data) if end is None else end
    out: list[tuple[bytes, int, int]] = []
    i = start
    while i + 8 <= end:
        size, typ = struct.unpack(">I4s", data[i : i + 8])
        if size < 8 or i + size > end:
            break
        out.append((typ, i, size))
        if typ in MP4_CONTAINERS:
            out += mp4_boxes(data, i + 8, i + size)
        elif typ == b"stsd":
            # version/flags, count, then one visual sample entry: 8 + 78 bytes before its boxes
            entry = i + 16
            if entry + 8 <= i + size:
                esize = struct.unpack(">I", data[entry : entry + 4])[0]
                out += mp4_boxes(data, entry + 86, min(entry + esize, i + size))
        i += size
    return out


def camera_of(root: Path, video: Path) -> str:
    """The camera key of a video file (``videos/<key>/chunk-*/file-*.mp4``)."""
    return video.relative_to(root).parts[1]


# boxes that place frames in time: damage there must be refused or harmless, strict or not
TIMING_BOXES = {"stts", "ctts", "elst", "mdhd", "mvhd", "tkhd", "stss", "cslg"}


def video_files(root: Path) -> list[Path]:
    files = sorted((root / "videos").rglob("*.mp4"))
    if not files:
        raise Skip
    return files


@mutator(12)
def mp4_box(root: Path, rng: random.Random, case: Case) -> None:
    """A field of an mp4 index or header box changed (stts, ctts, stss, stsz, stco, stsc, elst,
    mdhd, tkhd, mvhd, the codec configuration), a box's size or type broken."""
    path = rng.choice(video_files(root))
    data = bytearray(path.read_bytes())
    boxes = [b for b in mp4_boxes(bytes(data)) if b[0] != b"mdat" and b[0] not in MP4_CONTAINERS]
    typ, off, size = rng.choice(boxes)
    how = rng.choice(["field", "field", "field", "byte", "size", "type"])
    if how == "field" and size >= 16:
        # a 32-bit word of the payload (entry tables are 32-bit words after version/flags)
        w = off + 8 + 4 * rng.randrange((size - 8) // 4)
        v = struct.unpack(">I", data[w : w + 4])[0]
        new = rng.choice([0, 1, v + 1, (v - 1) % 2**32, v + 512, (v - 512) % 2**32, v * 2 % 2**32, 2**31, 2**32 - 1])
        data[w : w + 4] = struct.pack(">I", new)
        detail = f"word at +{w - off} {v}->{new}"
    elif how == "byte":
        p = off + 8 + rng.randrange(max(1, size - 8))
        data[p] = rng.randrange(256)
        detail = f"byte +{p - off}"
    elif how == "size":
        new = rng.choice([0, 1, 7, size - 1, size + 1, 2**32 - 1])
        data[off : off + 4] = struct.pack(">I", new)
        detail = f"size {size}->{new}"
    else:
        data[off + 4 : off + 8] = b"free"
        detail = "type->free"
    path.write_bytes(bytes(data))
    # other boxes (sample sizes and offsets, the codec configuration) damage the bitstream the
    # decoder sees, which default decoding may conceal; timing boxes must never shift frames
    case.video = typ.decode("latin1") not in TIMING_BOXES
    case.payload_keys = {camera_of(root, path)}
    case.detail = f"{path.relative_to(root)} {typ.decode('latin1')} {detail}"


@mutator(6)
def mp4_payload(root: Path, rng: random.Random, case: Case) -> None:
    """Bytes of coded pictures (inside mdat) changed: no checksum covers them."""
    path = rng.choice(video_files(root))
    data = bytearray(path.read_bytes())
    mdat = [b for b in mp4_boxes(bytes(data)) if b[0] == b"mdat"]
    if not mdat:
        raise Skip
    _, off, size = mdat[0]
    spots = [off + 8 + rng.randrange(size - 8) for _ in range(rng.choice([1, 2, 8]))]
    for s in spots:
        data[s] = rng.randrange(256)
    path.write_bytes(bytes(data))
    case.video = case.payload = True
    case.payload_keys = {camera_of(root, path)}
    case.detail = f"{path.relative_to(root)} mdat bytes {spots}"


@mutator(3)
def mp4_truncate(root: Path, rng: random.Random, case: Case) -> None:
    """An mp4 cut short (an interrupted download or copy)."""
    path = rng.choice(video_files(root))
    data = path.read_bytes()
    n = rng.randrange(len(data))
    path.write_bytes(data[:n])
    case.video = True
    case.payload_keys = {camera_of(root, path)}
    case.detail = f"{path.relative_to(root)} truncated to {n} of {len(data)}"


@mutator(4)
def file_system(root: Path, rng: random.Random, case: Case) -> None:
    """A file removed, emptied, replaced by a folder, a FIFO or a symlink out of the root."""
    files = [p for p in root.rglob("*") if p.is_file()]
    path = rng.choice(files)
    how = rng.choice(["remove", "empty", "folder", "fifo", "symlink"])
    path.unlink()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "folder":
        path.mkdir()
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "symlink":
        path.symlink_to("/etc/hostname")
    case.detail = f"{path.relative_to(root)}: {how}"


@mutator(6)
def benign(root: Path, rng: random.Random, case: Case) -> None:
    """Changes that keep the dataset valid (row groups split, an extra column, unknown fields in
    info.json and stats.json, the tasks table's rows reordered): any error is a false error."""
    case.benign = True
    how = rng.choice(["groups", "extra_column", "info_field", "stats_field", "tasks_order"])
    if how in ("groups", "extra_column"):
        path, _ = table_target(root, rng)
        table = pq.read_table(path)
        if how == "extra_column":
            table = table.append_column("fuzz.extra", pa.array([f"r{i}" for i in range(table.num_rows)]))
        pq.write_table(table, path, row_group_size=rng.choice([1, 2, 3]) if how == "groups" else None)
        case.detail = f"{path.relative_to(root)}: {how}"
    elif how == "info_field":
        path = root / "meta/info.json"
        doc = json.loads(path.read_text())
        doc["fuzz_note"] = {"by": "dataset_fuzz", "n": rng.randrange(100)}
        feature = rng.choice(sorted(doc["features"]))
        doc["features"][feature]["fuzz_note"] = "unused"
        path.write_text(json.dumps(doc))
        case.detail = f"info.json: unknown fields (top level, {feature})"
    elif how == "stats_field":
        path = root / "meta/stats.json"
        if not path.exists():
            raise Skip
        doc = json.loads(path.read_text())
        feature = rng.choice(sorted(doc))
        doc[feature]["fuzz_stat"] = [0.0]
        path.write_text(json.dumps(doc))
        case.detail = f"stats.json: unknown statistic in {feature}"
    else:
        path = root / "meta/tasks.parquet"
        table = pq.read_table(path)
        pq.write_table(table.take(list(reversed(range(table.num_rows)))), path)
        case.detail = "tasks.parquet rows reversed"


# API misuse: the dataset stays intact; hostile arguments must give a clear error or a right
# answer (compared with the reference where one exists).
ODD_INDICES: list[Any] = [
    0,
    -1,
    1,
    10**6,
    -(10**6),
    2**63,
    2**70,
    -(2**70),
    1.0,
    1.7,
    math.nan,
    math.inf,
    "3",
    b"3",
    True,
    None,
    np.int64(1),
    np.int32(-2),
    np.uint64(2**64 - 1),
    np.float64(1.0),
    np.array([1, 2]),
    np.array([[0, 1]]),
    [0, 1],
    (0,),
    slice(0, 2),
    object(),
]
ODD_ARGS: dict[str, list[Any]] = {
    "episodes": [[], [0, 0], [-1], [2**70], "12", [1.9], np.array([0, 1]), {0: 1}, [None], [10**6], (1,)],
    "tolerance_s": [0, -1, math.nan, math.inf, 1e9, "x", None, 1e-12],
    "decode_threads": [0, -1, 2**63, 1.5, "2", 1024, 1025, True],
    "frame_dtype": ["float64", "", "uint16", None, 3, "float16"],
    "delta_timestamps": [
        {"unknown": [0.0]},
        {"observation.state": []},
        {"observation.state": [math.nan]},
        {"observation.state": [1e308]},
        {"observation.state": "abc"},
        {"observation.state": [-1e9, 0.0]},
        {"observation.state": [0.0] * 10000},
        {"observation.state": [0.05]},
        {"observation.state": [1, 2, 3]},
    ],
    "strict_decode": [1, "yes", None],
}


@mutator(10)
def api(root: Path, rng: random.Random, case: Case) -> None:
    """Hostile arguments to the reader (the files stay intact)."""
    kind = rng.choice(["index", "index", "batch", "open", "open", "loader", "validate"])
    if kind == "index":
        case.api = {"kind": kind, "index": rng.randrange(len(ODD_INDICES))}
    elif kind == "batch":
        picks = [rng.randrange(len(ODD_INDICES)) for _ in range(rng.choice([0, 1, 3]))]
        case.api = {"kind": kind, "indices": picks}
    elif kind == "open":
        arg = rng.choice(sorted(ODD_ARGS))
        case.api = {"kind": kind, "arg": arg, "value": rng.randrange(len(ODD_ARGS[arg]))}
    elif kind == "loader":
        case.api = {
            "kind": kind,
            "batch_size": rng.choice([0, -1, 1, 3, 2**40, 1.5, "2"]),
            "shuffle": rng.choice([True, False, "gop", "xyz", None]),
            "seed": rng.choice([0, -1, 2**70, "s"]),
            "prefetch": rng.choice([0, 2, -1, 10**9]),
            "world": rng.choice([(0, 1), (1, 2), (2, 2), (-1, 2), (0, 0)]),
        }
    else:
        case.api = {"kind": kind, "decode": rng.choice(["none", "ends", "all", "bogus", None, 3])}
    case.op = "api"
    case.detail = json.dumps(case.api)


# -- the child: open, read, compare ---------------------------------------------------------------


def run_api(root: Path, case: Case, ref: list[dict[str, Any]]) -> str:
    a = case.api
    if a["kind"] == "index":
        ds = roboframes.Dataset(root)
        idx = ODD_INDICES[a["index"]]
        item = ds[idx]
        # an accepted index must be an integer in range, and give that item
        if isinstance(idx, (bool, float, str, bytes)) or not hasattr(idx, "__index__"):
            return "silent"
        want = ref[int(idx)]
        return "ok" if same_items([want], [item]) is None else "silent"
    if a["kind"] == "batch":
        ds = roboframes.Dataset(root)
        idx = [ODD_INDICES[i] for i in a["indices"]]
        batch = ds.get_batch(idx)
        if any(isinstance(i, (bool, float, str, bytes)) or not hasattr(i, "__index__") for i in idx):
            return "silent"
        for j, i in enumerate(idx):
            for k, v in ref[int(i)].items():
                got = batch[k][j]
                if isinstance(v, np.ndarray) and not np.array_equal(v, got):
                    return "silent"
        return "ok"
    if a["kind"] == "open":
        kwargs = {a["arg"]: ODD_ARGS[a["arg"]][a["value"]]}
        ds = roboframes.Dataset(root, **kwargs)
        for i in range(min(len(ds), 3)):
            ds[i]
        return "ok"
    if a["kind"] == "loader":
        ds = roboframes.Dataset(root)
        rank, world = a["world"]
        loader = ds.loader(
            batch_size=a["batch_size"],
            shuffle=a["shuffle"],
            seed=a["seed"],
            prefetch=a["prefetch"],
            rank=rank,
            world_size=world,
        )
        for b in loader:
            idx = np.asarray(b["index"])
            if idx.size == 0 or idx.min() < 0 or idx.max() >= len(ds):
                return "silent"
        return "ok"
    report = roboframes.validate(root, decode=a["decode"])
    return "ok" if report.ok else "silent"


def run_case(root: Path, case: Case, refs: dict[tuple[str, bool], list[dict[str, Any]]]) -> tuple[str, str]:
    """Runs one case in this (child) process: (outcome, detail)."""
    ref = refs[(case.base, case.windows)]
    try:
        if case.op == "api":
            return run_api(root, case, refs[(case.base, False)]), ""
        if case.op == "validate":
            report = roboframes.validate(root, decode="all")
            internal = [f for f in report.errors if f.check == "internal"]
            if internal:
                return "internal", str(internal[0])[:300]
            if not report.ok:
                kind = "false_error" if case.benign else "error"
                return kind, f"validate: {len(report.errors)} errors: {str(report.errors[0])[:300]}"
            # validate found nothing: what the reader returns must then be the original
        probe = roboframes.Dataset(root, strict_decode=case.strict)
        dt = windows_of(probe) if case.windows else None
        ds = roboframes.Dataset(root, delta_timestamps=dt, strict_decode=case.strict) if dt else probe
        if case.op == "batch":
            n = len(ds)
            batch = ds.get_batch(list(range(n)))
            items = [
                {k: (np.asarray(v[i]) if isinstance(v, np.ndarray) else v[i]) for k, v in batch.items()}
                for i in range(n)
            ]
        else:
            items = read_all(ds)
        diff = same_items(ref, items)
    except roboframes.errors.InternalError as e:
        return "internal", f"{type(e).__name__}: {str(e)[:300]}"
    except roboframes.Error as e:
        return ("false_error" if case.benign else "error"), f"{type(e).__name__}: {str(e)[:300]}"
    except TypeError as e:
        return ("error" if case.op == "api" else "exception"), f"TypeError: {str(e)[:300]}"
    except MemoryError:
        return "memory", "MemoryError"
    except BaseException as e:
        kind = "panic" if type(e).__name__ == "PanicException" else "exception"
        return kind, f"{type(e).__name__}: {str(e)[:300]}\n{traceback.format_exc()[-1500:]}"
    if diff is None:
        return "ok", ""
    if case.recast and len(items) == len(ref) and same_numbers(ref, items, case.recast):
        return "changed", diff
    if case.changes and len(items) == len(ref):
        strip = [{k: v for k, v in it.items() if k not in case.changes} for it in ref]
        if same_items(strip, [{k: v for k, v in it.items() if k not in case.changes} for it in items]) is None:
            return "changed", diff
    only_in = case.payload_keys if "*" not in case.payload_keys else None
    if only_in is not None:
        pads = {f"{k}_is_pad" for k in only_in}
        keep = [{k: v for k, v in it.items() if k not in only_in and k not in pads} for it in items]
        if same_items([{k: v for k, v in it.items() if k not in only_in and k not in pads} for it in ref], keep):
            return "silent", f"{diff} (outside the damaged {sorted(only_in)})"
    if case.payload:
        return "payload", diff
    if case.video and not case.strict:
        return "concealed", diff
    return "silent", diff


def fork_case(
    root: Path,
    case: Case,
    refs: dict[tuple[str, bool], list[dict[str, Any]]],
    timeout: float,
    memory_mb: int,
    log: Path,
) -> tuple[str, str, float]:
    """Runs `case` in a forked child with a memory limit and a time limit."""
    r, w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child
        code = 0
        try:
            os.close(r)
            limit = memory_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 2)
            outcome, detail = run_case(root, case, refs)
            os.write(w, json.dumps([outcome, detail]).encode())
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    os.close(w)
    chunks: list[bytes] = []
    deadline = t0 + timeout
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([r], [], [], left)
        if ready:
            b = os.read(r, 1 << 16)
            if not b:
                break
            chunks.append(b)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(r)
    took = time.monotonic() - t0
    if timed_out:
        return "timeout", f"no answer within {timeout:.0f} s", took
    if os.WIFSIGNALED(status):
        tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
        kind = "memory" if "memory allocation" in tail else "signal"
        return kind, f"signal {os.WTERMSIG(status)}: {tail}", took
    try:
        outcome, detail = json.loads(b"".join(chunks) or b"null")
    except (TypeError, ValueError):
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        return "exception", f"child exited {os.WEXITSTATUS(status)} without an answer: {tail}", took
    return outcome, detail, took


# -- the campaign ---------------------------------------------------------------------------------


def make_case(number: int, seed: int, base_names: list[str]) -> tuple[Case, random.Random]:
    rng = random.Random(f"{seed}:{number}")
    case = Case(number=number, base=rng.choice(base_names))
    names = sorted(MUTATORS)
    weights = [MUTATORS[n][0] for n in names]
    case.mutation = rng.choices(names, weights)[0]
    case.op = rng.choices(["read", "batch", "validate"], [6, 2, 2])[0]
    case.strict = rng.random() < 0.5
    case.windows = rng.random() < 0.3
    return case, rng


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("target/fuzz-datasets"))
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per case")
    ap.add_argument("--memory-mb", type=int, default=4096, help="address-space limit per case")
    ap.add_argument("--only", type=int, nargs="*", help="run these case numbers only")
    args = ap.parse_args(argv)

    out: Path = args.out
    bases_dir = out / "bases"
    bases_dir.mkdir(parents=True, exist_ok=True)
    for name, spec in BASES.items():
        if not (bases_dir / name / "meta/info.json").exists():
            shutil.rmtree(bases_dir / name, ignore_errors=True)
            write_dataset(bases_dir / name, spec, repo_id=f"fuzz/{name}")
    refs: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for name in BASES:
        ds = roboframes.Dataset(bases_dir / name)
        refs[(name, False)] = read_all(ds)
        refs[(name, True)] = read_all(roboframes.Dataset(bases_dir / name, delta_timestamps=windows_of(ds)))
        del ds
    work = out / "case"
    numbers = args.only if args.only else range(args.cases)
    counts: collections.Counter[str] = collections.Counter()
    by_mutation: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    bugs: list[dict[str, Any]] = []
    t_start = time.monotonic()
    for number in numbers:
        case, rng = make_case(number, args.seed, sorted(BASES))
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(bases_dir / case.base, work, symlinks=True)
        try:
            MUTATORS[case.mutation][1](work, rng, case)
        except (Skip, pa.ArrowException, ValueError, TypeError, OverflowError, IndexError):
            # nothing of the kind to damage, or pyarrow cannot write that damage
            counts["skipped"] += 1
            continue
        outcome, detail, took = fork_case(work, case, refs, args.timeout, args.memory_mb, out / "child-stderr.log")
        counts[outcome] += 1
        by_mutation[case.mutation][outcome] += 1
        if outcome in BUGS:
            record = {"case": number, "outcome": outcome, "seconds": round(took, 2), **case.__dict__, "why": detail}
            bugs.append(record)
            print(
                f"[fuzz-datasets] BUG {outcome}: case {number} ({case.mutation}: {case.detail}; op {case.op}, "
                f"strict={case.strict}, windows={case.windows}): {detail[:400]}",
                file=sys.stderr,
            )
    elapsed = time.monotonic() - t_start
    summary = {
        "seed": args.seed,
        "cases": sum(counts.values()),
        "seconds": round(elapsed, 1),
        "outcomes": dict(counts),
        "by_mutation": {k: dict(v) for k, v in sorted(by_mutation.items())},
        "bugs": bugs,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(
        f"[fuzz-datasets] {summary['cases']} cases in {elapsed:.0f} s (seed {args.seed}): "
        + ", ".join(f"{k} {v}" for k, v in counts.most_common())
    )
    for m, c in sorted(by_mutation.items()):
        print(f"[fuzz-datasets]   {m:14s} " + ", ".join(f"{k} {v}" for k, v in c.most_common()))
    if bugs:
        nums = " ".join(str(b["case"]) for b in bugs[:20])
        print(
            f"[fuzz-datasets] {len(bugs)} bugs; replay: python fuzz/dataset_fuzz.py --seed {args.seed} --only {nums}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
