#!/usr/bin/env bash
# The side-by-side benchmark: set up (idempotent), write the benchmark datasets with LeRobot's
# writer (once, into data/bench), run every loader in its own process, print the table and
# write bench-out/results.json, table.txt, summary.md and throughput.png. Arguments go to the harness
# (e.g. --configs a --windows act --seconds 20).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python benches/harness.py "$@"
