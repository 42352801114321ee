"""The decode ceiling of a configuration, measured without roboframes' decoder.

- ``rate``: the sequential one-thread decode rate of each camera's files, RGB conversion
  included: the best of torchcodec (LeRobot's decoder, ``num_ffmpeg_threads=1``) and PyAV
  (``to_ndarray("rgb24")``, one thread), over the first ``--seconds`` of decoding.
- ``decodes_per_sample``: frames that must be decoded for one sample given the files' real
  keyframe structure (read from the packets): for every sample of the dataset, the union over
  its window frames of [the keyframe before the frame, the frame], averaged.
- random-access ceiling = cores / sum over cameras of (decodes per sample / rate);
  sequential ceiling = cores / sum over cameras of (1 / rate) (each frame decoded once).
- keyframe-aware random-access ceiling: the same, but pricing keyframes and inter frames at
  their own cost. Random access decodes a keyframe for every frame it needs, while the
  sequential rate averages over the file's keyframes and inter frames; with LeRobot's AV1
  keyframes costing several times an inter frame, the plain ceiling is out of reach for any
  random-access loader. The costs are timed per packet (PyAV, one thread, RGB included) and
  scaled so that the file's mix reproduces the best sequential rate.

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


def frame_costs(path: Path, rate: float) -> tuple[float, float]:
    """Seconds to decode (and convert to RGB) a keyframe and an inter frame, scaled so that
    the file's mix of the two decodes at ``rate`` frames/s."""
    import av

    key_t, inter_t = [], []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        packets = [p for p in c.demux(s) if p.size > 0]
        cc = av.CodecContext.create(s.codec_context.name, "r")
        cc.extradata = s.codec_context.extradata
        cc.thread_count = 1
        for p in packets:
            t = time.perf_counter()
            for f in cc.decode(p):
                f.to_ndarray(format="rgb24")
            (key_t if p.is_keyframe else inter_t).append(time.perf_counter() - t)
    k = float(np.mean(key_t)) if key_t else 0.0
    i = float(np.mean(inter_t)) if inter_t else k
    mix = (k * len(key_t) + i * len(inter_t)) / max(1, len(key_t) + len(inter_t))
    scale = (1.0 / rate) / mix if mix > 0 else 1.0
    return k * scale, i * scale


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


def decodes_per_sample(root: Path, camera: str, offsets: list[int], fps: int) -> tuple[float, float]:
    """Average over every sample of the frames decoded to produce its window of ``camera``,
    and of the keyframes among them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    eps = pa.concat_tables([pq.read_table(p) for p in sorted((root / "meta" / "episodes").rglob("*.parquet"))])
    info = json.loads((root / "meta" / "info.json").read_text())
    cols = eps.to_pydict()
    keys: dict[Path, np.ndarray] = {}
    total, total_keys, samples = 0, 0, 0
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
            total_keys += sum(1 for x in needed if kb[x] == x)
            samples += 1
    return total / samples, total_keys / samples


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
        decodes, keys = decodes_per_sample(root, camera, offsets, cfg.fps)
        rate = max(tc, pa_)
        key_s, inter_s = frame_costs(video, rate)
        cams[camera] = {
            "file": str(video),
            "rate_torchcodec": tc,
            "rate_pyav": pa_,
            "rate": rate,
            "decodes_per_sample": decodes,
            "keyframes_per_sample": keys,
            "keyframe_s": key_s,
            "inter_frame_s": inter_s,
            "frames_per_sample": len(offsets),
        }
    random_ceiling = cores / sum(c["decodes_per_sample"] / c["rate"] for c in cams.values())
    keyframe_aware = cores / sum(
        c["keyframes_per_sample"] * c["keyframe_s"]
        + (c["decodes_per_sample"] - c["keyframes_per_sample"]) * c["inter_frame_s"]
        for c in cams.values()
    )
    sequential_ceiling = cores / sum(1 / c["rate"] for c in cams.values())
    print(
        json.dumps(
            {
                "config": args.config,
                "windows": args.windows,
                "cores": cores,
                "cameras": cams,
                "random_ceiling": random_ceiling,
                "keyframe_aware_random_ceiling": keyframe_aware,
                "sequential_ceiling": sequential_ceiling,
            }
        )
    )


if __name__ == "__main__":
    main()
