"""MCAP: items/s of roboframes against the ``mcap`` Python reader on the same ROS 2 bags, one run.

Writes ``--files`` ROS 2 recordings with ``mcap-ros2-support``'s writer into ``--data`` once (as
rosbag2's MCAP storage does: CDR messages, ``ros2msg`` schemas, zstd chunks of 1 MiB): two JPEG
``CompressedImage`` cameras (``--hw``) at 15 Hz, ``JointState`` at 100 Hz, ``--seconds`` each.
Then measures, each reader in a process of its own:

- **pass**: every item of every file, images decoded: roboframes' ``Dataset.loader``
  (sequential batches of ``--batch``) against the ``mcap`` reader with its ROS 2 decoder
  (``iter_decoded_messages`` in log-time order), holding each topic's latest message and
  making an item at each reference-camera message (PIL decodes the JPEGs): the loop a user
  writes to align topics;
- **random**: ``--items`` random items in batches of ``--batch``: roboframes' ``get_batch``.
  The ``mcap`` reader has no random access to items (a time's messages need the index walked
  and a chunk decompressed), so only roboframes' number is given, next to its pass.

Each measurement is the median of ``--repeats`` runs; roboframes' open time (one scan of every
record) is given too. Prints one JSON object; no test asserts on time.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CAMS = ("/cam_high/image/compressed", "/cam_wrist/image/compressed")
JOINT_STATE = """std_msgs/Header header
string[] name
float64[] position
float64[] velocity
float64[] effort
================================================================================
MSG: std_msgs/Header
builtin_interfaces/Time stamp
string frame_id
"""
COMPRESSED_IMAGE = """std_msgs/Header header
string format
uint8[] data
================================================================================
MSG: std_msgs/Header
builtin_interfaces/Time stamp
string frame_id
"""


def write(folder: Path, files: int, seconds: float, hw: tuple[int, int]) -> None:
    import numpy as np
    from mcap_ros2.writer import Writer
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = hw
    # smooth images (gradients and noise) compress like camera frames
    base = np.linspace(0, 255, h * w * 3).reshape(h, w, 3)
    for i in range(files):
        events = []
        start = 1_700_000_000_000_000_000 + i * 10**12
        with (folder / f"run_{i}.mcap").open("wb") as f:
            wr = Writer(f)
            cam = wr.register_msgdef("sensor_msgs/msg/CompressedImage", COMPRESSED_IMAGE)
            js = wr.register_msgdef("sensor_msgs/msg/JointState", JOINT_STATE)
            for k in range(int(seconds * 15)):
                t = start + k * 1_000_000_000 // 15
                for c, topic in enumerate(CAMS):
                    px = np.clip(base + rng.normal(0, 8, base.shape) + c * 40, 0, 255).astype(np.uint8)
                    buf = io.BytesIO()
                    Image.fromarray(px).save(buf, format="JPEG", quality=85)
                    msg = {"header": {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": topic}, "format": "jpeg"}
                    events.append((t + c, topic, cam, {**msg, "data": buf.getvalue()}))
            for k in range(int(seconds * 100) + 2):
                t = start + k * 10_000_000 - 5_000_000
                q = rng.normal(size=14).tolist()
                msg = {"header": {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": ""}, "name": [], "position": q}
                events.append((t, "/joint_states", js, {**msg, "velocity": q, "effort": q}))
            for t, topic, schema, msg in sorted(events, key=lambda e: e[0]):
                wr.write_message(topic, schema, msg, log_time=t, publish_time=t)
            wr.finish()


def child_mcap(folder: str, repeats: int) -> dict[str, Any]:
    import numpy as np
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    from PIL import Image

    def run() -> int:
        n = 0
        for path in sorted(Path(folder).glob("*.mcap")):
            latest: dict[str, Any] = {}
            with path.open("rb") as f:
                reader = make_reader(f, decoder_factories=[DecoderFactory()])
                for _s, channel, _m, msg in reader.iter_decoded_messages(log_time_order=True):
                    latest[channel.topic] = msg
                    if channel.topic == CAMS[1] and all(k in latest for k in (*CAMS, "/joint_states")):
                        item = {
                            "state": np.asarray(latest["/joint_states"].position, dtype=np.float32),
                            **{
                                c: np.asarray(Image.open(io.BytesIO(bytes(latest[c].data))).convert("RGB"))
                                for c in CAMS
                            },
                        }
                        n += len(item) > 0
        return n

    run()  # warm-up (page cache)
    times, n = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        n = run()
        times.append(time.perf_counter() - t)
    return {"items": n, "pass_items_s": n / statistics.median(times)}


def child_roboframes(folder: str, batch: int, items: int, repeats: int) -> dict[str, Any]:
    import numpy as np

    import roboframes

    t = time.perf_counter()
    ds = roboframes.Dataset(folder, reference_topic=CAMS[1])
    open_s = time.perf_counter() - t

    def full() -> int:
        n = 0
        for b in ds.loader(batch, shuffle=False):
            n += len(b["index"])
        return n

    full()
    passes, n = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        n = full()
        passes.append(time.perf_counter() - t)
    rng = np.random.default_rng(0)
    randoms = []
    for _ in range(repeats):
        idx = rng.integers(0, len(ds), items).tolist()
        t = time.perf_counter()
        for i in range(0, items, batch):
            ds.get_batch(idx[i : i + batch])
        randoms.append(time.perf_counter() - t)
    return {
        "items": n,
        "open_s": open_s,
        "pass_items_s": n / statistics.median(passes),
        "random_items_s": items / statistics.median(randoms),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT / "target" / "bench-mcap"))
    p.add_argument("--files", type=int, default=4)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--hw", type=int, nargs=2, default=[240, 320])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--items", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--child", choices=["mcap", "roboframes"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child == "mcap":
        print(json.dumps(child_mcap(args.data, args.repeats)))
        return
    if args.child == "roboframes":
        print(json.dumps(child_roboframes(args.data, args.batch, args.items, args.repeats)))
        return
    folder = Path(args.data)
    if not any(folder.glob("*.mcap")):
        write(folder, args.files, args.seconds, tuple(args.hw))
    common = ["--data", args.data, "--repeats", str(args.repeats)]
    out: dict[str, Any] = {"data": vars(args)}
    for who, extra in (("mcap", []), ("roboframes", ["--batch", str(args.batch), "--items", str(args.items)])):
        run = subprocess.run(
            [sys.executable, __file__, "--child", who, *common, *extra], capture_output=True, text=True, check=True
        )
        out[who] = json.loads(run.stdout.strip().splitlines()[-1])
    out["pass_ratio"] = out["roboframes"]["pass_items_s"] / out["mcap"]["pass_items_s"]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
