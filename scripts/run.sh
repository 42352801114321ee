#!/usr/bin/env bash
# The main job: set up (idempotent), write a sample LeRobot dataset, read it through roboframes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/main_job.py "$@"
