"""The benchmark configurations: datasets (written once with LeRobot's writer) and windows.

(a) PushT-like: one 96x96 camera at 10 fps, 100 episodes.
(b) ALOHA-like: two 480x640 cameras at 50 fps.
Both AV1 with LeRobot's defaults (libsvtav1, yuv420p, g=2, crf 30), camera-like content
(textured scene panning, moving object, sensor noise) so that decoding costs what real footage
costs. Each runs plain and with ACT-like windows: cameras and state ``[-1/fps, 0]``, action 16
steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Config:
    name: str
    description: str
    fps: int
    episodes: int
    frames_per_episode: int
    cameras: tuple[tuple[str, int, int], ...]
    state_dim: int
    batch_size: int

    @property
    def repo_id(self) -> str:
        return f"roboframes-bench/{self.name}"

    def root(self, data_dir: Path) -> Path:
        return data_dir / self.name

    def windows(self, kind: str) -> dict[str, list[float]] | None:
        """``plain`` (no windows) or ``act`` (ACT-like)."""
        if kind == "plain":
            return None
        step = 1 / self.fps
        d = {name: [-step, 0.0] for name, _h, _w in self.cameras}
        d["observation.state"] = [-step, 0.0]
        d["action"] = [i * step for i in range(16)]
        return d

    def frames_per_sample(self, kind: str) -> int:
        """Camera frames in one sample."""
        return len(self.cameras) * (2 if kind == "act" else 1)


CONFIGS: dict[str, Config] = {
    "a": Config(
        name="pusht_like",
        description="(a) one 96x96 camera, 10 fps, 100 episodes",
        fps=10,
        episodes=100,
        frames_per_episode=120,
        cameras=(("observation.image", 96, 96),),
        state_dim=2,
        batch_size=64,
    ),
    "b": Config(
        name="aloha_like",
        description="(b) two 480x640 cameras, 50 fps",
        fps=50,
        episodes=8,
        frames_per_episode=300,
        cameras=(("observation.images.top", 480, 640), ("observation.images.wrist", 480, 640)),
        state_dim=14,
        batch_size=8,
    ),
}

WINDOWS = ("plain", "act")


def ensure_dataset(cfg: Config, data_dir: Path) -> Path:
    """Writes the dataset with LeRobot's writer unless it exists; returns its root."""
    root = cfg.root(data_dir)
    if (root / "meta" / "info.json").exists():
        return root
    from roboframes.synthetic import DatasetSpec, write_dataset

    spec = DatasetSpec(
        vcodec="libsvtav1",
        fps=cfg.fps,
        episode_lengths=tuple([cfg.frames_per_episode] * cfg.episodes),
        cameras=cfg.cameras,
        image_key=None,
        textured=True,
        extra={
            "observation.state": {"dtype": "float32", "shape": (cfg.state_dim,), "names": None},
            "action": {"dtype": "float32", "shape": (cfg.state_dim,), "names": None},
        },
    )
    print(f"[bench] writing {cfg.description} with LeRobot's writer to {root} (once) ...", flush=True)
    t = time.perf_counter()
    write_dataset(root, spec, repo_id=cfg.repo_id)
    print(f"[bench] wrote {root} in {time.perf_counter() - t:.0f}s", flush=True)
    return root
