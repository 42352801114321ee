"""The decode ceiling of a configuration, measured without roboframes' decoder.

- ``rate``: the sequential one-thread decode rate of each camera's files, RGB conversion
  included: the best of torchcodec (LeRobot's decoder, ``num_ffmpeg_threads=1``) and PyAV
  (``to_ndarray("rgb24")``, one thread), over the first ``--seconds`` of decoding.
- ``decodes_per_sample``: frames that must be decoded for one sample given the files' real
  keyframe structure (read from the packets): for every sample of the dataset, the union over
  its window frames of [the keyframe before the frame, the frame], averaged.
- random-access ceiling = cores / sum over cameras of (decodes per sample / rate);
  sequential ceiling = cores / sum over cameras of (1 / rate) (each frame decoded once).

Usage: python benches/ceiling.py --config a --windows act   (prints one JSON object)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from configs import CONFIGS


def rate_torchcodec(path: Path, seconds: float) -> float:
    from torchcodec.decoders import VideoDecoder

    d = VideoDecoder(str(path), num_ffmpeg_threads=1, seek_mode="exact")
    n = d.metadata.num_frames
    done, t0 = 0, time.perf_counter()
    while done < n and time.perf_counter() - t0 < seconds:
        batch = d.get_frames_in_range(done, min(done + 32, n))
        done += batch.data.shape[0]
    return done / (time.perf_counter() - t0)


def rate_pyav(path: Path, seconds: float) -> float:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_count = 1
        done, t0 = 0, time.perf_counter()
        for frame in c.decode(s):
            frame.to_ndarray(format="rgb24")
            done += 1
            if time.perf_counter() - t0 >= seconds:
                break
        return done / (time.perf_counter() - t0)


def keyframe_before(path: Path) -> np.ndarray:
    """For each frame (presentation order), the index of the keyframe decoding starts at."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        pk = [(p.pts, p.is_keyframe) for p in c.demux(s) if p.pts is not None]
    # decode order -> presentation order; decoding a frame starts at the last keyframe at or
    # before it in decode order, and covers every packet up to the frame's
    order = sorted(range(len(pk)), key=lambda i: pk[i][0])
    last_key, start_dec = 0, []
    for i, (_pts, key) in enumerate(pk):
        if key:
            last_key = i
        start_dec.append(last_key)
    dec_pos = {d: p for p, d in enumerate(order)}
    out = np.empty(len(pk), dtype=np.int64)
    for p, d in enumerate(order):
        out[p] = dec_pos.get(start_dec[d], p)
    return out


def decodes_per_sample(root: Path, camera: str, offsets: list[int], fps: int) -> float:
    """Average over every sample of the frames decoded to produce its window of ``camera``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    eps = pa.concat_tables([pq.read_table(p) for p in sorted((root / "meta" / "episodes").rglob("*.parquet"))])
    info = json.loads((root / "meta" / "info.json").read_text())
    cols = eps.to_pydict()
    keys: dict[Path, np.ndarray] = {}
    total, samples = 0, 0
    for e in range(eps.num_rows):
        rel = info["video_path"].format(
            video_key=camera,
            chunk_index=cols[f"videos/{camera}/chunk_index"][e],
            file_index=cols[f"videos/{camera}/file_index"][e],
        )
        path = root / rel
        if path not in keys:
            keys[path] = keyframe_before(path)
        kb = keys[path]
        first = round(cols[f"videos/{camera}/from_timestamp"][e] * fps)
        n = cols["length"][e]
        for i in range(n):
            needed: set[int] = set()
            for d in offsets:
                f = first + min(max(i + d, 0), n - 1)
                needed.update(range(int(kb[f]), f + 1))
            total += len(needed)
            samples += 1
    return total / samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=sorted(CONFIGS), required=True)
    ap.add_argument("--windows", choices=["plain", "act"], required=True)
    ap.add_argument("--data", type=Path, default=Path("data/bench"))
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    cfg = CONFIGS[args.config]
    root = cfg.root(args.data)
    cores = len(os.sched_getaffinity(0))
    dt = cfg.windows(args.windows) or {}
    cams = {}
    for camera, _h, _w in cfg.cameras:
        video = sorted((root / "videos" / camera).rglob("*.mp4"))[0]
        tc = max(rate_torchcodec(video, args.seconds) for _ in range(2))
        pa_ = max(rate_pyav(video, args.seconds) for _ in range(2))
        offsets = [round(d * cfg.fps) for d in dt.get(camera, [0.0])]
        cams[camera] = {
            "file": str(video),
            "rate_torchcodec": tc,
            "rate_pyav": pa_,
            "rate": max(tc, pa_),
            "decodes_per_sample": decodes_per_sample(root, camera, offsets, cfg.fps),
            "frames_per_sample": len(offsets),
        }
    random_ceiling = cores / sum(c["decodes_per_sample"] / c["rate"] for c in cams.values())
    sequential_ceiling = cores / sum(1 / c["rate"] for c in cams.values())
    print(
        json.dumps(
            {
                "config": args.config,
                "windows": args.windows,
                "cores": cores,
                "cameras": cams,
                "random_ceiling": random_ceiling,
                "sequential_ceiling": sequential_ceiling,
            }
        )
    )


if __name__ == "__main__":
    main()
