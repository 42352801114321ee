"""Episode quality scores: which episodes of a dataset look like junk, and why.

Every score is computed per episode from the data (numeric features from the tables, camera
metrics from frames the core decodes), and every threshold is a named constant below, relative
to the dataset itself where a fixed number would not fit every robot:

- ``action_jitter``: high-frequency energy of the actions: the mean over steps and dimensions
  of the squared second difference ``a[t+1] - 2 a[t] + a[t-1]``, each dimension divided by the
  dataset's standard deviation of that dimension. Smooth teleoperation gives small values; a
  shaking or noisy controller large ones. Flagged when its robust z-score (distance from the
  dataset's median in units of ``1.4826 * MAD``) exceeds :data:`OUTLIER_Z`.
- ``idle_fraction``: the fraction of steps in which no state dimension moves by more than
  :data:`IDLE_STEP` standard deviations (of that dimension over the dataset). Flagged above
  :data:`MAX_IDLE_FRACTION`.
- ``frozen_fraction/{camera}``: among up to :data:`FRAME_PAIRS` evenly spaced pairs of
  consecutive frames, the fraction whose mean absolute pixel difference is below
  :data:`FROZEN_DIFF` (in 0-255 levels): a stalled camera repeats frames. Flagged above
  :data:`MAX_FROZEN_FRACTION`.
- ``sharpness/{camera}``: the mean variance of the Laplacian of the grey image over the same
  frames (blurred or out-of-focus footage scores low). Flagged when its robust z-score is below
  ``-OUTLIER_Z``.
- ``length``: frames. Flagged when shorter than :data:`MIN_LENGTH` or its robust z-score is
  beyond ``±OUTLIER_Z``.

A robust z-score flags an episode only when it also differs from the median by at least
:data:`MIN_RELATIVE_CHANGE` of the median (with a tiny spread, an episode 3% below the median
sharpness has a large z but is not blurry). A check that would flag more than
:data:`MAX_FLAGGED_FRACTION` of the episodes describes the dataset, not junk episodes: it is
reported once in ``QualityReport.dataset_findings`` instead of suggesting to exclude them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidArgumentError

if TYPE_CHECKING:
    from .dataset import Dataset

#: Robust z-score beyond which a score is an outlier (Iglewicz and Hoaglin's 3.5).
OUTLIER_Z = 3.5
#: A step is idle when no state dimension moves more than this many standard deviations.
IDLE_STEP = 0.01
#: Episodes idle for more than this fraction of their steps are flagged.
MAX_IDLE_FRACTION = 0.5
#: Consecutive frames closer than this mean absolute difference (0-255 levels) are frozen.
FROZEN_DIFF = 0.5
#: Episodes with more than this fraction of frozen frame pairs in a camera are flagged.
MAX_FROZEN_FRACTION = 0.2
#: Frame pairs sampled per episode and camera.
FRAME_PAIRS = 16
#: Episodes shorter than this are flagged.
MIN_LENGTH = 2
#: An outlier by robust z-score must also differ from the median by this fraction of it.
MIN_RELATIVE_CHANGE = 0.25
#: A check flagging more than this fraction of the episodes is a finding about the dataset.
MAX_FLAGGED_FRACTION = 0.5


def outliers(values: np.ndarray, side: int) -> list[tuple[int, float]]:
    """``(position, robust z)`` of the values that are outliers: beyond ``OUTLIER_Z`` on
    ``side`` (``+1`` high, ``-1`` low, ``0`` either) and at least ``MIN_RELATIVE_CHANGE`` of the
    median away from it."""
    v = np.asarray(values, dtype=np.float64)
    if not np.isfinite(v).any():
        return []
    med = float(np.nanmedian(v))
    out = []
    for i, z in enumerate(robust_z(v)):
        far = abs(v[i] - med) >= MIN_RELATIVE_CHANGE * abs(med)
        if np.isfinite(z) and far and (z * side > OUTLIER_Z if side else abs(z) > OUTLIER_Z):
            out.append((i, float(z)))
    return out


def robust_z(values: np.ndarray) -> np.ndarray:
    """``(v - median) / (1.4826 * MAD)``; 0 where the spread is 0 (all equal)."""
    v = np.asarray(values, dtype=np.float64)
    med = np.nanmedian(v) if v.size else 0.0
    mad = 1.4826 * np.nanmedian(np.abs(v - med)) if v.size else 0.0
    if not np.isfinite(mad) or mad == 0:
        return np.zeros_like(v)
    return (v - med) / mad


@dataclass
class QualityReport:
    """Per-episode scores (``records``: one dict per episode; ``table``: a pandas DataFrame when
    pandas is installed, else the records), the suggested exclusions with their reasons, and
    findings about the whole dataset (a check most episodes fail)."""

    records: list[dict[str, Any]]
    exclude: dict[int, list[str]] = field(default_factory=dict)
    dataset_findings: list[str] = field(default_factory=list)

    @property
    def table(self) -> Any:
        """The records as a pandas DataFrame indexed by episode (or the records without pandas)."""
        try:
            import pandas as pd
        except ImportError:
            return self.records
        return pd.DataFrame(self.records).set_index("episode_index")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "records": self.records,
            "exclude": {str(k): v for k, v in self.exclude.items()},
            "dataset_findings": self.dataset_findings,
        }


def _second_difference_energy(a: np.ndarray, std: np.ndarray) -> float:
    if len(a) < 3:
        return float("nan")
    d2 = (a[2:] - 2 * a[1:-1] + a[:-2]) / std
    return float(np.mean(d2**2))


def _idle_fraction(s: np.ndarray, std: np.ndarray) -> float:
    if len(s) < 2:
        return float("nan")
    moves = np.abs(np.diff(s, axis=0)) / std
    return float(np.mean(moves.max(axis=1) <= IDLE_STEP))


def _laplacian_variance(grey: np.ndarray) -> float:
    lap = grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


def quality(
    ds: Dataset,
    *,
    cameras: bool = True,
    engine: str = "local",
    progress: Callable[[int, int], None] | None = None,
) -> QualityReport:
    """Scores every selected episode of ``ds``; see the module documentation for each score and
    threshold. ``cameras=False`` skips the decoded-frame scores. ``engine="ray"`` scores the
    episodes in Ray tasks (:mod:`roboframes.ray`): the same report; ``progress(done, total)``
    is then called as tasks finish (the local run reports none)."""
    if engine not in ("local", "ray"):
        raise InvalidArgumentError(f"engine must be 'local' or 'ray', got {engine!r}")
    if ds.delta_timestamps:
        # the scores are per frame: read the same episodes without windows
        ds = ds.reopen(delta_timestamps=None)
    stds = numeric_stds(ds)
    if engine == "ray":
        from . import ray as rray

        records = rray.quality_records(ds, cameras, stds, progress)
    else:
        records = episode_records(ds, cameras=cameras, stds=stds)
    return judge(records, ds, cameras=cameras)


def _scored(ds: Dataset, cameras: bool) -> tuple[str | None, str | None, list[str]]:
    """The action key, the state key and the cameras that are scored."""
    feats = ds.features
    action_key = "action" if "action" in feats else None
    state_key = "observation.state" if "observation.state" in feats else None
    # (depth maps are not scored: the thresholds are in 8-bit colour levels)
    depth = set(ds.depth_keys)
    cams = [k for k in list(ds.video_keys) + list(ds.image_keys) if k not in depth] if cameras else []
    return action_key, state_key, cams


def _numeric(ds: Dataset, keys: list[str]) -> dict[str, np.ndarray]:
    """Every item's values of the numeric ``keys``, as float64 ``(items, D)``."""
    if not keys:
        return {}
    skip = [s.key for s in ds.output_specs() if s.key not in keys]
    everything = ds.fill_batch(np.arange(len(ds)), ds.frame_dtype, ds.channels_last, skip=skip)
    return {k: np.asarray(everything[k], dtype=np.float64).reshape(len(ds), -1) for k in keys}


def numeric_stds(ds: Dataset) -> dict[str, np.ndarray]:
    """The scales of the action and state scores: ``std`` of ``stats.json``, else of the
    selected items' values (zeros made ones)."""
    stats: dict[str, Any] = dict(ds.stats)
    action_key, state_key, _ = _scored(ds, False)
    keys = [k for k in (action_key, state_key) if k is not None]
    missing = [k for k in keys if stats.get(k, {}).get("std") is None]
    values = _numeric(ds, missing)
    out: dict[str, np.ndarray] = {}
    for k in keys:
        st = stats.get(k, {}).get("std")
        s = np.asarray(st, dtype=np.float64).ravel() if st is not None else values[k].std(axis=0)
        out[k] = np.where(s > 0, s, 1.0)
    return out


def episode_records(ds: Dataset, *, cameras: bool, stds: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The scores of each selected episode of ``ds`` (opened without windows), with the
    action and state scales ``stds`` (:func:`numeric_stds` of the whole selection)."""
    action_key, state_key, cams = _scored(ds, cameras)
    values = _numeric(ds, [k for k in (action_key, state_key) if k is not None])
    a_all = values.get(action_key) if action_key else None
    s_all = values.get(state_key) if state_key else None
    records: list[dict[str, Any]] = []
    for rec in ds.episodes():
        r: dict[str, Any] = {
            "episode_index": rec.index,
            "length": rec.length,
            "task": rec.tasks[0] if rec.tasks else "",
        }
        span = slice(rec.first_item, rec.first_item + rec.length)
        if a_all is not None and action_key is not None:
            r["action_jitter"] = _second_difference_energy(a_all[span], stds[action_key])
        if s_all is not None and state_key is not None:
            r["idle_fraction"] = _idle_fraction(s_all[span], stds[state_key])
        if cams and rec.length >= 2:
            starts = np.unique(np.linspace(0, rec.length - 2, min(FRAME_PAIRS, rec.length - 1)).round().astype(int))
            items = np.concatenate([starts, starts + 1]) + rec.first_item
            frames = ds.fill_batch(items, "uint8", True, skip=[s.key for s in ds.output_specs() if s.key not in cams])
            n = len(starts)
            for cam in cams:
                f = frames[cam].astype(np.float32)
                diff = np.abs(f[:n] - f[n:]).mean(axis=(1, 2, 3))
                r[f"frozen_fraction/{cam}"] = float(np.mean(diff < FROZEN_DIFF))
                grey = f[:n].mean(axis=-1)
                r[f"sharpness/{cam}"] = float(np.mean([_laplacian_variance(g) for g in grey]))
        records.append(r)
    return records


def judge(records: list[dict[str, Any]], ds: Dataset, *, cameras: bool) -> QualityReport:
    """The exclusions and dataset findings the thresholds give for every episode's ``records``
    (in episode order)."""
    action_key, state_key, cams = _scored(ds, cameras)
    n = len(records)
    exclude: dict[int, list[str]] = {}
    findings: list[str] = []

    def check(flags: list[tuple[int, str]], what: str) -> None:
        """The episodes one check flags, or, when it flags most of them, one dataset finding."""
        if n >= 2 and len(flags) > MAX_FLAGGED_FRACTION * n:
            findings.append(
                f"{what} in {len(flags)} of {n} episodes: a property of the dataset (of its robot, "
                "task or cameras), not episodes to exclude"
            )
            return
        for i, reason in flags:
            exclude.setdefault(int(records[i]["episode_index"]), []).append(reason)

    def column(name: str) -> np.ndarray:
        return np.array([r.get(name, np.nan) for r in records], dtype=np.float64)

    lengths = column("length")
    check([(i, f"length {int(v)} < {MIN_LENGTH} frames") for i, v in enumerate(lengths) if v < MIN_LENGTH], "too short")
    check(
        [
            (i, f"length {int(lengths[i])} is an outlier (robust z {z:+.1f})")
            for i, z in outliers(lengths, 0)
            if lengths[i] >= MIN_LENGTH
        ],
        "length outliers",
    )
    if action_key:
        jit = column("action_jitter")
        check(
            [(i, f"action jitter {jit[i]:.3g} is high (robust z {z:+.1f})") for i, z in outliers(jit, +1)],
            "high action jitter",
        )
    if state_key:
        idle = column("idle_fraction")
        check(
            [
                (i, f"idle for {100 * v:.0f}% of its steps")
                for i, v in enumerate(idle)
                if np.isfinite(v) and v > MAX_IDLE_FRACTION
            ],
            f"idle for more than {100 * MAX_IDLE_FRACTION:.0f}% of the steps",
        )
    for cam in cams:
        frozen = column(f"frozen_fraction/{cam}")
        check(
            [
                (i, f"{cam}: {100 * v:.0f}% of sampled frame pairs frozen")
                for i, v in enumerate(frozen)
                if np.isfinite(v) and v > MAX_FROZEN_FRACTION
            ],
            f"{cam}: more than {100 * MAX_FROZEN_FRACTION:.0f}% of frame pairs frozen",
        )
        sharp = column(f"sharpness/{cam}")
        check(
            [(i, f"{cam}: blurry (sharpness {sharp[i]:.3g}, robust z {z:+.1f})") for i, z in outliers(sharp, -1)],
            f"{cam}: blurry",
        )
    return QualityReport(records=records, exclude=exclude, dataset_findings=findings)
