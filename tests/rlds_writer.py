"""Writes an RLDS dataset with TensorFlow Datasets' own builder, then reads it back with tfds
and saves what tfds reads (every step of every episode) to an .npz, for tests/test_rlds.py.
Runs in a process of its own (TensorFlow stays out of the test process):

    python tests/rlds_writer.py OUT_DIR SPEC_JSON

SPEC_JSON: {"episodes": [lengths], "image_hw": [h, w], "encoding": "jpeg"|"png", "seed": 0,
"wrist": true}. Writes OUT_DIR/data/rlds_fixture/1.0.0/ and OUT_DIR/expected.npz."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402


def scene(h: int, w: int, t: int, seed: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(xx * 5 + t * 7 + seed) % 256, (yy * 3 + seed * 11) % 256, ((xx + yy) * 2 + t) % 256], -1).astype(
        np.uint8
    )


def main() -> None:
    out = Path(sys.argv[1])
    spec = json.loads(sys.argv[2])
    lengths = spec["episodes"]
    h, w = spec["image_hw"]
    encoding = spec.get("encoding", "jpeg")
    seed = spec.get("seed", 0)
    wrist = spec.get("wrist", True)
    rng = np.random.default_rng(seed)

    obs = {
        "image": tfds.features.Image(shape=(h, w, 3), encoding_format=encoding),
        "state": tfds.features.Tensor(shape=(5,), dtype=np.float32),
    }
    if wrist:
        obs["wrist_image"] = tfds.features.Image(shape=(h, w, 3), encoding_format=encoding)
    features = tfds.features.FeaturesDict(
        {
            "steps": tfds.features.Dataset(
                {
                    "observation": tfds.features.FeaturesDict(obs),
                    "action": tfds.features.Tensor(shape=(7,), dtype=np.float32),
                    "reward": tfds.features.Scalar(dtype=np.float32),
                    "discount": tfds.features.Scalar(dtype=np.float32),
                    "is_first": tfds.features.Scalar(dtype=np.bool_),
                    "is_last": tfds.features.Scalar(dtype=np.bool_),
                    "is_terminal": tfds.features.Scalar(dtype=np.bool_),
                    "language_instruction": tfds.features.Text(),
                    "language_embedding": tfds.features.Tensor(shape=(4,), dtype=np.float32),
                    "step_id": tfds.features.Scalar(dtype=np.int32),
                }
            ),
            "episode_metadata": tfds.features.FeaturesDict({"file_path": tfds.features.Text()}),
        }
    )
    tasks = ["pick up the red block", "open the drawer"]
    episodes = []
    for e, n in enumerate(lengths):
        steps = []
        for t in range(n):
            o = {"image": scene(h, w, t, e), "state": rng.normal(size=5).astype(np.float32)}
            if wrist:
                o["wrist_image"] = scene(h, w, t + 3, e + 50)
            steps.append(
                {
                    "observation": o,
                    "action": rng.normal(size=7).astype(np.float32),
                    "reward": np.float32(t == n - 1),
                    "discount": np.float32(1.0),
                    "is_first": t == 0,
                    "is_last": t == n - 1,
                    "is_terminal": t == n - 1,
                    "language_instruction": tasks[e % len(tasks)],
                    "language_embedding": rng.normal(size=4).astype(np.float32),
                    "step_id": np.int32(t),
                }
            )
        episodes.append({"steps": steps, "episode_metadata": {"file_path": f"/raw/episode_{e}.npy"}})

    class RldsFixture(tfds.core.GeneratorBasedBuilder):
        """An RLDS dataset in Open X-Embodiment's layout."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self) -> tfds.core.DatasetInfo:
            return tfds.core.DatasetInfo(builder=self, features=features)

        def _split_generators(self, dl_manager):  # type: ignore[no-untyped-def]
            return {"train": self._generate_examples()}

        def _generate_examples(self):  # type: ignore[no-untyped-def]
            for i, ep in enumerate(episodes):
                yield f"episode_{i}", ep

    data_dir = out / "data"
    builder = RldsFixture(data_dir=str(data_dir), file_format="tfrecord")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(max_examples_per_split=None, num_shards=spec.get("shards"))
    )
    # what tfds reads back, episode by episode, in the files' order
    expected: dict[str, np.ndarray] = {}
    read = tfds.builder_from_directory(builder.data_dir)
    ds = read.as_dataset(split="train", shuffle_files=False)
    for i, ep in enumerate(tfds.as_numpy(ds)):
        steps = list(ep["steps"])
        expected[f"{i}/length"] = np.array(len(steps))
        for key, get in {
            "observation/image": lambda s: s["observation"]["image"],
            "observation/state": lambda s: s["observation"]["state"],
            "action": lambda s: s["action"],
            "reward": lambda s: s["reward"],
            "is_first": lambda s: s["is_first"],
            "is_last": lambda s: s["is_last"],
            "step_id": lambda s: s["step_id"],
            "language_embedding": lambda s: s["language_embedding"],
        }.items():
            expected[f"{i}/{key}"] = np.stack([get(s) for s in steps])
        if wrist:
            expected[f"{i}/observation/wrist_image"] = np.stack([s["observation"]["wrist_image"] for s in steps])
        expected[f"{i}/language_instruction"] = np.array([s["language_instruction"].decode() for s in steps])
    np.savez(out / "expected.npz", **expected)
    print(builder.data_dir)


if __name__ == "__main__":
    main()
