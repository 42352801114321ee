#!/usr/bin/env bash
# bash scripts/gpu_check.sh: the GPU checks in one short run, for a machine with an NVIDIA GPU
# (such as the lent GPU machine, whose device time is short: run this once, prepared).
#
#   ROBOFRAMES_PYTHON=/path/to/python bash scripts/gpu_check.sh [OUT_DIR]
#
# Needs a Python (default .venv/bin/python) where a CUDA build of torch sees the GPU and
# roboframes imports, with the test requirements (pytest; LeRobot's writer for the fixtures).
# Runs the GPU tests of tests/test_device.py (CUDA batches of the loader, the drop-in and the
# operators against the CPU's, bit for bit; ROBOFRAMES_REQUIRE_GPU=1 makes a skipped GPU test
# a failure), then benches/device_loader.py, which writes OUT_DIR/device_loader.json
# (default target/gpu-check).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${ROBOFRAMES_PYTHON:-.venv/bin/python}"
OUT="${1:-target/gpu-check}"
mkdir -p "$OUT"
echo "[gpu] the machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "(no nvidia-smi)"
"$PY" - <<'PY'
import torch

import roboframes

if not torch.cuda.is_available():
    raise SystemExit(f"[gpu] torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU: nothing to check")
print(f"[gpu] torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}, roboframes {roboframes.__version__}")
PY
# (the benchmark runs even when a test fails: device time is scarce; the exit status is the
# tests' then)
echo "[gpu] tests/test_device.py"
status=0
ROBOFRAMES_REQUIRE_GPU=1 "$PY" -m pytest -q -p no:cacheprovider tests/test_device.py -rs || status=$?
echo "[gpu] benches/device_loader.py"
"$PY" benches/device_loader.py --device cuda --seconds 3 --data "$OUT/data" --out "$OUT" || status=$?
"$PY" benches/device_loader.py --device cuda --seconds 3 --step-ms 20 --data "$OUT/data" --out "$OUT/step-20ms" || status=$?
exit "$status"
