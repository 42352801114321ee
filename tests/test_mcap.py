"""MCAP recordings read in place: ROS 2 bags (CDR messages with ``.msg`` schemas), Foxglove's
protobuf schemas and JSON channels, written here with the ``mcap`` writers (``mcap-ros2-support``,
``mcap-protobuf-support``, the raw writer) and compared value by value with what the ``mcap``
reader and its decoders read back, each topic put on the reference topic's time grid."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap.writer import Writer as RawWriter
from PIL import Image

import roboframes
from roboframes.errors import InvalidArgumentError, MetadataWarning, SourceFormatError

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
RAW_IMAGE = """std_msgs/Header header
uint32 height
uint32 width
string encoding
uint8 is_bigendian
uint32 step
uint8[] data
================================================================================
MSG: std_msgs/Header
builtin_interfaces/Time stamp
string frame_id
"""
GRIPPER = """float32 opening
int32 mode
bool closed
float64[3] target
"""
START = 1_700_000_000_000_000_000  # ns
CAM_HZ, JOINT_HZ = 10, 50
H, W = 24, 32


def jpeg(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def stamp(t: int) -> dict[str, Any]:
    return {"sec": t // 1_000_000_000, "nanosec": t % 1_000_000_000}


def write_ros2(path: Path, seconds: float = 1.0, seed: int = 0, joints_from_ns: int = 0) -> Path:
    """A ROS 2 bag as rosbag2's MCAP storage writes one (CDR, ``ros2msg`` schemas, zstd chunks):
    a compressed camera at 10 Hz, a raw bgr8 camera at 10 Hz (1 us before it), joint states at 50 Hz (their effort
    empty, as many drivers publish it) and a gripper state at 50 Hz, with jitter."""
    from mcap_ros2.writer import Writer

    rng = np.random.default_rng(seed)
    with path.open("wb") as f:
        w = Writer(f, chunk_size=64 * 1024)
        cam = w.register_msgdef("sensor_msgs/msg/CompressedImage", COMPRESSED_IMAGE)
        raw = w.register_msgdef("sensor_msgs/msg/Image", RAW_IMAGE)
        js = w.register_msgdef("sensor_msgs/msg/JointState", JOINT_STATE)
        grip = w.register_msgdef("my_robot/msg/Gripper", GRIPPER)
        events: list[tuple[int, str, Any, dict[str, Any]]] = []
        n_cam = int(seconds * CAM_HZ)
        for i in range(n_cam):
            t = START + i * 1_000_000_000 // CAM_HZ + int(rng.integers(0, 2_000_000))
            px = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
            header = {"stamp": stamp(t), "frame_id": "cam"}
            events.append((t, "/cam/image/compressed", cam, {"header": header, "format": "jpeg", "data": jpeg(px)}))
            bgr = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
            step = W * 3 + 4  # rows padded, as some drivers do
            data = np.zeros((H, step), dtype=np.uint8)
            data[:, : W * 3] = bgr.reshape(H, W * 3)
            msg = {"header": header, "height": H, "width": W, "encoding": "bgr8", "is_bigendian": 0, "step": step}
            events.append((t - 1000, "/wrist/image_raw", raw, {**msg, "data": data.tobytes()}))
        for i in range(int(seconds * JOINT_HZ) + 5):
            t = START + i * 1_000_000_000 // JOINT_HZ - 40_000_000 + joints_from_ns
            q = rng.normal(size=3)
            js_msg = {
                "header": {"stamp": stamp(t), "frame_id": ""},
                "name": ["j0", "j1", "j2"],
                "position": q.tolist(),
                "velocity": (q * 2).tolist(),
                "effort": [],
            }
            events.append((t, "/joint_states", js, js_msg))
            g = {"opening": float(rng.random()), "mode": int(rng.integers(-3, 3)), "closed": bool(i % 3 == 0)}
            events.append((t + 500, "/gripper", grip, {**g, "target": rng.normal(size=3).tolist()}))
        for t, topic, schema, msg in sorted(events, key=lambda e: e[0]):
            w.write_message(topic, schema, msg, log_time=t, publish_time=t)
        w.finish()
    return path


def read_back(path: Path) -> dict[str, list[tuple[int, Any]]]:
    """Every message of ``path`` as the ``mcap`` reader and its ROS 2 / protobuf decoders read
    it: topic -> [(log time, decoded message)]."""
    from mcap_protobuf.decoder import DecoderFactory as ProtobufDecoders
    from mcap_ros2.decoder import DecoderFactory as Ros2Decoders

    out: dict[str, list[tuple[int, Any]]] = {}
    with path.open("rb") as f:
        reader = make_reader(f, decoder_factories=[Ros2Decoders(), ProtobufDecoders()])
        for _schema, channel, message, decoded in reader.iter_decoded_messages(log_time_order=True):
            out.setdefault(channel.topic, []).append((message.log_time, decoded))
    return out


def latest(messages: list[tuple[int, Any]], t: int) -> Any:
    """The latest message at or before ``t``."""
    before = [m for lt, m in messages if lt <= t]
    assert before, t
    return before[-1]


@pytest.fixture(scope="module")
def ros2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bags")
    write_ros2(folder / "run_2.mcap", seconds=1.0, seed=2)
    write_ros2(folder / "run_10.mcap", seconds=0.6, seed=10)
    return folder


def test_ros2_items_are_the_messages_on_the_camera_grid(ros2_folder: Path) -> None:
    with pytest.warns(MetadataWarning, match="effort' is left out"):
        ds = roboframes.Dataset(ros2_folder)
    assert ds.format == "mcap" and ds.fps == CAM_HZ
    assert ds.num_episodes == 2  # run_2 before run_10: natural order
    source = ds.info["source"]
    # the cameras run at the same rate: the slowest one first in name order is the reference
    assert source["reference_topic"] == "/cam/image/compressed"
    keys = {
        "/cam/image/compressed",
        "/wrist/image_raw",
        "/joint_states.position",
        "/joint_states.velocity",
        "/gripper.opening",
        "/gripper.mode",
        "/gripper.closed",
        "/gripper.target",
    }
    assert keys <= set(ds.features), list(ds.features)
    assert ds.features["/joint_states.position"]["shape"] == [3]
    assert ds.features["/gripper.target"]["dtype"] == "float64"
    assert ds.features["/wrist/image_raw"]["shape"] == [H, W, 3]
    index = 0
    for ep, name in enumerate(["run_2.mcap", "run_10.mcap"]):
        msgs = read_back(ros2_folder / name)
        grid = [t for t, _ in msgs["/cam/image/compressed"]]
        for r, t in enumerate(grid):
            item = ds[index]
            assert int(item["episode_index"]) == ep and int(item["frame_index"]) == r
            assert item["timestamp"] == np.float32((t - grid[0]) / 1e9)
            js = latest(msgs["/joint_states"], t)
            np.testing.assert_array_equal(item["/joint_states.position"], np.float32(js.position))
            np.testing.assert_array_equal(item["/joint_states.velocity"], np.float32(js.velocity))
            g = latest(msgs["/gripper"], t)
            assert item["/gripper.opening"].dtype == np.float32 and item["/gripper.mode"].dtype == np.int64
            assert item["/gripper.opening"] == np.float32(g.opening) and item["/gripper.mode"] == g.mode
            assert bool(item["/gripper.closed"]) == g.closed
            np.testing.assert_array_equal(item["/gripper.target"], np.float32(g.target))
            cam = latest(msgs["/cam/image/compressed"], t)
            want = np.asarray(Image.open(io.BytesIO(bytes(cam.data))).convert("RGB"))
            np.testing.assert_array_equal(item["/cam/image/compressed"], want)
            raw = latest(msgs["/wrist/image_raw"], t)
            rows = np.frombuffer(bytes(raw.data), np.uint8).reshape(H, raw.step)[:, : W * 3]
            np.testing.assert_array_equal(item["/wrist/image_raw"], rows.reshape(H, W, 3)[..., ::-1])
            index += 1
    assert index == len(ds)


def test_a_camera_a_microsecond_late_holds_its_previous_frame(ros2_folder: Path) -> None:
    # on the raw camera's grid, the compressed camera's message comes 1 us later: the first
    # time has none yet (left out, with a warning), and each later item holds the previous
    # compressed frame (the latest at or before the time, within the tolerance)
    with pytest.warns(MetadataWarning, match="left out at the start or end"):
        ds = roboframes.Dataset(
            ros2_folder,
            reference_topic="/wrist/image_raw",
            topics=["/wrist/image_raw", "/cam/image/compressed"],
            align_tolerance_s=0.2,
        )
    assert list(ds.features)[:2] == ["/wrist/image_raw", "/cam/image/compressed"]
    msgs = read_back(ros2_folder / "run_2.mcap")
    cams = msgs["/cam/image/compressed"]
    assert ds.episode_table()[0]["length"] == len(cams) - 1
    for r in range(len(cams) - 1):
        want = np.asarray(Image.open(io.BytesIO(bytes(cams[r][1].data))).convert("RGB"))
        np.testing.assert_array_equal(ds[r]["/cam/image/compressed"], want)


def test_lerobot_names_windows_loader_and_workers(ros2_folder: Path) -> None:
    import torch.utils.data

    opts: dict[str, Any] = {"key_map": "lerobot", "topics": ["/cam/image/compressed", "/joint_states"]}
    ds = roboframes.Dataset(ros2_folder, **opts, delta_timestamps={"observation.joint_states.position": [-0.1, 0.0]})
    assert set(ds.features) >= {"observation.images.cam.image.compressed", "observation.joint_states.position"}
    item = ds[0]
    assert item["observation.joint_states.position"].shape == (2, 3)
    assert item["observation.joint_states.position_is_pad"].tolist() == [True, False]
    seen = [int(i) for b in roboframes.Loader(ds, batch_size=4, shuffle=True, seed=1) for i in b["index"]]
    assert sorted(seen) == list(range(len(ds)))
    plain = roboframes.Dataset(ros2_folder, **opts)
    dl = torch.utils.data.DataLoader(pickle.loads(pickle.dumps(plain)), batch_size=4, num_workers=2)
    got = torch.cat([b["observation.joint_states.position"] for b in dl])
    want = np.stack([plain[i]["observation.joint_states.position"] for i in range(len(plain))])
    np.testing.assert_array_equal(got.numpy(), want)
    stats = plain.compute_stats(progress=False)
    np.testing.assert_allclose(stats["observation.joint_states.position"]["mean"], want.mean(0), rtol=1e-5)
    assert roboframes.validate(ros2_folder, "all", progress=False, **opts).ok


def test_a_gap_in_a_topic_is_an_error_naming_topic_and_time(tmp_path: Path) -> None:
    path = tmp_path / "gap.mcap"
    from mcap_ros2.writer import Writer

    with path.open("wb") as f:
        w = Writer(f)
        js = w.register_msgdef("sensor_msgs/msg/JointState", JOINT_STATE)
        grip = w.register_msgdef("my_robot/msg/Gripper", GRIPPER)
        for i in range(20):
            t = START + i * 100_000_000
            msg = {
                "header": {"stamp": stamp(t), "frame_id": ""},
                "name": ["a"],
                "position": [float(i)],
                "velocity": [0.0],
            }
            w.write_message("/joint_states", js, {**msg, "effort": [0.0]}, log_time=t, publish_time=t)
            if not 8 <= i <= 11:  # the gripper is silent for 0.4 s
                g = {"opening": 0.5, "mode": 1, "closed": False, "target": [0.0, 0.0, 0.0]}
                w.write_message("/gripper", grip, g, log_time=t + 10, publish_time=t + 10)
        w.finish()
    with pytest.raises(SourceFormatError, match=r"gap\.mcap.*/gripper.*0\.900 s into the recording"):
        roboframes.Dataset(path, reference_topic="/joint_states")
    # a wider tolerance holds the gripper's last message (the first time, before the gripper's
    # first message, is left out); leaving the topic out reads every time
    with pytest.warns(MetadataWarning, match="1 of 20 times"):
        assert len(roboframes.Dataset(path, reference_topic="/joint_states", align_tolerance_s=0.5)) == 19
    assert len(roboframes.Dataset(path, topics=["/joint_states"])) == 20


def write_protobuf(path: Path, seed: int = 0) -> dict[str, Any]:
    """Foxglove's protobuf schemas: a JPEG ``CompressedImage`` camera at 15 Hz, a ``RawImage``
    (rgb8) at 15 Hz and a ``PoseInFrame`` at 30 Hz, zstd chunks."""
    from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
    from foxglove_schemas_protobuf.PoseInFrame_pb2 import PoseInFrame
    from foxglove_schemas_protobuf.RawImage_pb2 import RawImage
    from mcap_protobuf.writer import Writer

    rng = np.random.default_rng(seed)
    frames = []
    with path.open("wb") as f:
        w = Writer(f, chunk_size=16 * 1024)
        for i in range(30):
            t = START + i * 1_000_000_000 // 30
            pose = PoseInFrame(frame_id="base")
            pose.timestamp.FromNanoseconds(t)
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = rng.normal(size=3).tolist()
            pose.pose.orientation.w = 1.0
            w.write_message("/pose", pose, log_time=t, publish_time=t)
            if i % 2 == 0:
                px = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
                frames.append(px)
                img = CompressedImage(frame_id="cam", format="jpeg", data=jpeg(px))
                img.timestamp.FromNanoseconds(t)
                w.write_message("/camera", img, log_time=t + 5, publish_time=t)
                raw = RawImage(width=W, height=H, encoding="rgb8", step=W * 3, data=px.tobytes())
                w.write_message("/camera_raw", raw, log_time=t + 5, publish_time=t)
        w.finish()
    return {"frames": frames}


def test_protobuf_recordings(tmp_path: Path) -> None:
    path = tmp_path / "proto.mcap"
    written = write_protobuf(path)
    ds = roboframes.Dataset(path)
    assert ds.fps == 15 and len(ds) == 15
    assert "/pose.pose.position.x" in ds.features and "/pose.timestamp.seconds" not in ds.features
    msgs = read_back(path)
    grid = [t for t, _ in msgs["/camera"]]
    for r, t in enumerate(grid):
        item = ds[r]
        pose = latest(msgs["/pose"], t).pose
        assert item["/pose.pose.position.x"] == np.float32(pose.position.x)
        assert item["/pose.pose.orientation.w"] == np.float32(1.0)
        np.testing.assert_array_equal(item["/camera_raw"], written["frames"][r])
        want = np.asarray(Image.open(io.BytesIO(jpeg(written["frames"][r]))).convert("RGB"))
        np.testing.assert_array_equal(item["/camera"], want)


def write_json(path: Path, broken_at: int | None = None) -> None:
    """JSON channels with JSON Schemas (the raw writer), no camera: a 20 Hz arm state and a
    10 Hz command."""
    with path.open("wb") as f:
        w = RawWriter(f)
        w.start()
        arm = w.register_schema("Arm", "jsonschema", json.dumps({"type": "object"}).encode())
        cmd = w.register_schema("Cmd", "jsonschema", b"{}")
        arm_ch = w.register_channel("/arm", "json", arm)
        cmd_ch = w.register_channel("/action", "json", cmd)
        for i in range(40):
            t = START + i * 50_000_000
            state = {
                "timestamp": {"sec": 1, "nsec": i},
                "q": [i * 0.5, -i],
                "gripper": {"open": i % 2 == 0},
                "contacts": [1.0] * (i % 3 + 1),  # a list whose length changes: not a key
            }
            w.add_message(arm_ch, log_time=t, data=json.dumps(state).encode(), publish_time=t)
            if i % 2 == 0:
                body = b'{"target": [1.5, ' if broken_at == i else json.dumps({"target": [i, 2 * i]}).encode()
                w.add_message(cmd_ch, log_time=t + 1, data=body, publish_time=t)
        w.finish()


def test_json_channels_without_a_camera(tmp_path: Path) -> None:
    path = tmp_path / "json.mcap"
    write_json(path)
    with pytest.warns(MetadataWarning, match=r"'/arm.contacts' is left out: the first message has 1 values"):
        ds = roboframes.Dataset(path, task="wave")
    assert "/arm.contacts" not in ds.features
    # no camera: the slowest topic is the grid
    assert ds.info["source"]["reference_topic"] == "/action" and len(ds) == 20 and ds.fps == 10
    item = ds[3]
    np.testing.assert_array_equal(item["/action.target"], np.float32([6, 12]))
    np.testing.assert_array_equal(item["/arm.q"], np.float32([3.0, -6]))
    assert bool(item["/arm.gripper.open"]) is True and item["task"] == "wave"
    # a message the reader cannot decode is an error naming file, topic and time
    write_json(path, broken_at=6)
    with pytest.raises(SourceFormatError, match=r"json\.mcap.*/action.*log time 1700000000300000001 ns"):
        roboframes.Dataset(path)


def test_damaged_and_unreadable_recordings(tmp_path: Path, ros2_folder: Path) -> None:
    whole = (ros2_folder / "run_2.mcap").read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SourceFormatError, match=r"cut\.mcap.*cut short"):
        roboframes.Dataset(cut)
    flipped = bytearray(whole)
    flipped[len(whole) // 3] ^= 0xFF  # inside a zstd chunk
    bad = tmp_path / "flipped.mcap"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(SourceFormatError, match=r"flipped\.mcap"):
        roboframes.Dataset(bad)
    not_mcap = tmp_path / "x.mcap"
    not_mcap.write_bytes(b"hello world, not a recording")
    with pytest.raises(SourceFormatError, match="magic"):
        roboframes.Dataset(not_mcap)
    with pytest.raises(InvalidArgumentError, match="/nope"):
        roboframes.Dataset(ros2_folder, topics=["/nope"])
    with pytest.raises(InvalidArgumentError, match="reference_topic"):
        roboframes.Dataset(ros2_folder, reference_topic="/nope")
    with pytest.raises(InvalidArgumentError, match="align_tolerance_s"):
        roboframes.Dataset(ros2_folder, align_tolerance_s=-1)
    # a channel in an encoding roboframes does not read is left out, with a warning
    odd = tmp_path / "odd.mcap"
    with odd.open("wb") as f:
        w = RawWriter(f)
        w.start()
        s = w.register_schema("Thing", "flatbuffer", b"\x00")
        ch = w.register_channel("/thing", "flatbuffer", s)
        js = w.register_schema("J", "jsonschema", b"{}")
        jch = w.register_channel("/j", "json", js)
        for i in range(5):
            w.add_message(ch, log_time=START + i, data=b"\x00", publish_time=0)
            w.add_message(jch, log_time=START + i * 10_000_000, data=b'{"v": 1}', publish_time=0)
        w.finish()
    with pytest.warns(MetadataWarning, match="'/thing' is left out.*flatbuffer"):
        assert list(roboframes.Dataset(odd).features)[0] == "/j.v"


def test_convert_a_bag_to_lerobot(ros2_folder: Path, tmp_path: Path) -> None:
    pytest.importorskip("lerobot")
    from roboframes.convert import convert

    topics = ["/cam/image/compressed", "/joint_states"]
    out = convert(ros2_folder, tmp_path / "out", topics=topics, task="pick", progress=False)
    src = roboframes.Dataset(ros2_folder, topics=topics, key_map="lerobot")
    back = roboframes.Dataset(out)
    assert len(back) == len(src) and back.fps == src.fps
    for i in (0, len(src) - 1):
        a, b = src[i], back[i]
        np.testing.assert_array_equal(a["observation.joint_states.position"], b["observation.joint_states.position"])
        assert b["task"] == "pick"


def test_a_remote_recording_reads_as_the_local_one(ros2_folder: Path, tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from remote_servers import file_server  # (the tests' loopback HTTP server)
    from roboframes import remote

    local = roboframes.Dataset(ros2_folder / "run_2.mcap", topics=["/cam/image/compressed", "/joint_states"])
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "run_2.mcap").write_bytes((ros2_folder / "run_2.mcap").read_bytes())
    with file_server({"bags": folder}) as srv:
        url = f"{srv.url}/bags/run_2.mcap"
        ds = roboframes.Dataset(url, topics=["/cam/image/compressed", "/joint_states"])
        assert ds.format == "mcap" and len(ds) == len(local)
        for i in range(len(ds)):
            a, b = ds[i], local[i]
            for k in ("/cam/image/compressed", "/joint_states.position", "timestamp"):
                np.testing.assert_array_equal(a[k], b[k])
        # a worker process reopens it from the pickled dataset
        back = pickle.loads(pickle.dumps(ds))
        np.testing.assert_array_equal(back[3]["/cam/image/compressed"], local[3]["/cam/image/compressed"])
        assert (remote.stats(url) or {}).get("requests", 0) > 0
        assert roboframes.validate(url, "all", progress=False, topics=["/cam/image/compressed", "/joint_states"]).ok
        # a recording cut short on the server is an error naming its URL
        whole = (folder / "run_2.mcap").read_bytes()
        (folder / "cut.mcap").write_bytes(whole[: len(whole) // 2])
        with pytest.raises(SourceFormatError, match=r"cut\.mcap.*cut short"):
            roboframes.Dataset(f"{srv.url}/bags/cut.mcap")
        # HDF5 and RLDS roots are local only
        with pytest.raises(InvalidArgumentError, match="local"):
            roboframes.Dataset(f"{srv.url}/bags/x.hdf5", format="hdf5")


def write_rates(path: Path, depth_hz: int = 0, gripper_hz: int = 20, second_publisher: bool = False) -> None:
    """A 30 Hz camera, a gripper at ``gripper_hz`` (1 ms after the camera's times), optionally a
    raw 16-bit depth camera at ``depth_hz`` (which roboframes does not read) and a second
    publisher on the camera's topic."""
    from mcap_ros2.writer import Writer

    with path.open("wb") as f:
        w = Writer(f)
        cam = w.register_msgdef("sensor_msgs/msg/CompressedImage", COMPRESSED_IMAGE)
        raw = w.register_msgdef("sensor_msgs/msg/Image", RAW_IMAGE)
        grip = w.register_msgdef("my_robot/msg/Gripper", GRIPPER)
        px = jpeg(np.zeros((H, W, 3), np.uint8))
        events: list[tuple[int, str, Any, dict[str, Any]]] = []
        for i in range(60):  # 2 s
            t = START + i * 1_000_000_000 // 30
            head = {"stamp": stamp(t), "frame_id": ""}
            events.append((t, "/cam", cam, {"header": head, "format": "jpeg", "data": px}))
            if second_publisher and i == 30:
                events.append((t, "/cam", cam, {"header": head, "format": "jpeg", "data": px}))
        for i in range(2 * gripper_hz + 1):
            t = START + i * 1_000_000_000 // gripper_hz + 1_000_000
            g = {"opening": float(i), "mode": 0, "closed": False, "target": [0.0, 0.0, 0.0]}
            events.append((t - 2_000_000, "/gripper", grip, g))
        for i in range(2 * depth_hz):
            t = START + i * 1_000_000_000 // depth_hz
            d = {"header": {"stamp": stamp(t), "frame_id": ""}, "height": H, "width": W, "encoding": "16UC1"}
            d |= {"is_bigendian": 0, "step": W * 2, "data": bytes(H * W * 2)}
            events.append((t, "/depth", raw, d))
        for t, topic, schema, msg in sorted(events, key=lambda e: e[0]):
            w.write_message(topic, schema, msg, log_time=t, publish_time=t)
        w.finish()


def test_default_reference_and_tolerance_fit_real_rates(tmp_path: Path) -> None:
    # a 20 Hz gripper next to a 30 Hz camera: its messages are up to 50 ms old at the camera's
    # times, within the default tolerance (1.5 periods of the slower of the two)
    path = tmp_path / "rates.mcap"
    write_rates(path, depth_hz=15)
    with pytest.warns(MetadataWarning, match="'/depth'.*16UC1"):
        ds = roboframes.Dataset(path)
    # the 15 Hz depth camera is slower, but roboframes cannot read it: the grid is the camera's
    assert ds.info["source"]["reference_topic"] == "/cam" and ds.fps == 30
    msgs = read_back(path)
    grid = [t for t, _ in msgs["/cam"]][: len(ds)]
    for r in (5, 17, len(ds) - 1):
        want = latest(msgs["/gripper"], grid[r])
        assert ds[r]["/gripper.opening"] == np.float32(want.opening)


def test_two_messages_at_one_grid_time_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.mcap"
    write_rates(path, second_publisher=True)
    with pytest.raises(SourceFormatError, match=r"/cam.*two messages at log time"):
        roboframes.Dataset(path)


def test_a_topic_of_another_type_in_another_file_is_refused(tmp_path: Path) -> None:
    from mcap_ros2.writer import Writer

    for name, text in (("a.mcap", "float64 x\nfloat64 y\n"), ("b.mcap", "float64 y\nfloat64 x\n")):
        with (tmp_path / name).open("wb") as f:
            w = Writer(f)
            s = w.register_msgdef("my_robot/msg/Point", text)
            for i in range(5):
                t = START + i * 100_000_000
                w.write_message("/p", s, {"x": float(i), "y": -float(i)}, log_time=t, publish_time=t)
            w.finish()
    with pytest.raises(SourceFormatError, match=r"b\.mcap.*/p.*another type"):
        roboframes.Dataset(tmp_path)


def test_episodes_as_spans_of_recordings(ros2_folder: Path) -> None:
    topics = ["/cam/image/compressed", "/joint_states"]
    whole = roboframes.Dataset(ros2_folder, topics=topics)
    spans = {"run_10.mcap": [(0.0, 0.35)], "run_2.mcap": [(0.0, 0.45), (0.45, 1.0)]}
    ds = roboframes.Dataset(ros2_folder, topics=topics, episode_spans=spans)
    lengths = [e["length"] for e in ds.episode_table()]
    assert lengths == [4, 5, 5]  # in the order given
    run2_first = 0  # run_2 is the whole dataset's first episode
    second = ds.episode_table()[2]["dataset_from_index"]
    for r in range(5):
        a, b = ds[second + r], whole[run2_first + 5 + r]
        np.testing.assert_array_equal(a["/joint_states.position"], b["/joint_states.position"])
        np.testing.assert_array_equal(a["/cam/image/compressed"], b["/cam/image/compressed"])
        assert int(a["frame_index"]) == r and int(a["episode_index"]) == 2
    assert ds[second]["timestamp"] == 0.0
    with pytest.raises(InvalidArgumentError, match="not a recording"):
        roboframes.Dataset(ros2_folder, topics=topics, episode_spans={"nope.mcap": [(0, 1)]})
    with pytest.raises(InvalidArgumentError, match="holds no item"):
        roboframes.Dataset(ros2_folder, topics=topics, episode_spans={"run_2.mcap": [(5, 6)]})
    with pytest.raises(InvalidArgumentError, match="start < end"):
        roboframes.Dataset(ros2_folder, topics=topics, episode_spans={"run_2.mcap": [(0.5, 0.2)]})


def test_the_command_on_recordings(ros2_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from roboframes.cli import main

    args = ["--topics", "/cam/image/compressed,/joint_states"]
    assert main(["info", str(ros2_folder), *args]) == 0
    out = capsys.readouterr().out
    assert "MCAP, items on /cam/image/compressed's times, read in place" in out and "2 episodes" in out
    spans = ["--episode-span", "run_2.mcap:0:0.45", "--episode-span", "run_2.mcap:0.45:1"]
    assert main(["info", str(ros2_folder), *args, *spans, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 2
    assert main(["validate", str(ros2_folder), *args]) == 0
    assert main(["info", str(ros2_folder), "--episode-span", "run_2.mcap:zero:1"]) == 2
    assert "FILE:START:END" in capsys.readouterr().err
