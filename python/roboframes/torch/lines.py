"""Which LeRobot API the drop-in follows: the 0.4 line (0.4.x) or the 0.6 line (0.5 and later),
chosen by the installed ``lerobot``.

The two lines differ in constructors (argument order included), attributes, items (0.6: depth
maps, language columns, ``return_uint8``, no ``subtask``), metadata (0.6: ``info`` is a
dataclass, ``depth_keys``, ``has_language_columns``) and the sampler (0.6: seeded per epoch,
state ``{epoch, start_index}``). ``roboframes.torch.LeRobotDataset``,
``LeRobotDatasetMetadata`` and ``EpisodeAwareSampler`` are the installed line's classes; both
lines' classes are importable by name (``LeRobotDataset04``, ``LeRobotDataset06``, ...).
"""

from __future__ import annotations

import os
import re
from importlib import metadata

#: The lines, by the LeRobot release each follows.
LINES = ("0.4", "0.6")

#: Environment variable that picks a line whatever is installed (``0.4`` or ``0.6``).
LINE_ENV = "ROBOFRAMES_LEROBOT_API"


def installed_lerobot() -> str | None:
    """The installed ``lerobot``'s version, or None when it is not installed."""
    try:
        return metadata.version("lerobot")
    except metadata.PackageNotFoundError:
        return None


def lerobot_line() -> str:
    """``"0.4"`` or ``"0.6"``: ``$ROBOFRAMES_LEROBOT_API`` when set; else the installed
    ``lerobot``'s line (0.5 and later follow 0.6's API); else ``"0.6"``, today's release."""
    forced = os.environ.get(LINE_ENV)
    if forced:
        if forced not in LINES:
            raise ValueError(f"${LINE_ENV} must be one of {LINES}, got {forced!r}")
        return forced
    version = installed_lerobot()
    if version is None:
        return "0.6"
    m = re.match(r"(\d+)\.(\d+)", version)
    if m is None:
        return "0.6"
    major, minor = int(m.group(1)), int(m.group(2))
    return "0.4" if (major, minor) < (0, 5) else "0.6"
