#!/usr/bin/env bash
# The main job: set up (idempotent), write a sample LeRobot dataset with LeRobot's writer (once),
# train a small ACT policy with LeRobot's own training loop reading through roboframes, and
# print the throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/train_lerobot.py "$@"
