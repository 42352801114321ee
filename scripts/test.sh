#!/usr/bin/env bash
# All tests: set up (idempotent), Rust format/lint/unit tests, Python format/lint/type checks
# (ruff, mypy, stubtest), valgrind over the FFI code, a short coverage-guided fuzzing run of the
# core's parsers, a short run of the whole-dataset fuzzer, then the pytest suites (among them a
# clean-venv install of ./python), with a second environment holding the newest torch, a third
# holding LeRobot 0.3.3 (v2.1 fixtures and reference items), and the LeRobot 0.6 suite in its
# own environment (scripts/lerobot06.sh). CI runs this.
#
# bash scripts/test.sh --quick [PYTEST ARGS...]: the edit-test loop's tier: set up, format,
# lints, the Rust tests, ruff/mypy/stubtest and the Python tests not marked `slow` (training
# runs, torchrun, fresh processes, torch.compile, the clean-venv install); no valgrind, fuzzing,
# newest torch, LeRobot 0.3.3 or LeRobot 0.6 environment (tests needing LeRobot 0.3.3 run when
# .venv-lerobot03 exists, and are skipped otherwise). Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
QUICK=0
if [ "${1:-}" = "--quick" ]; then
  QUICK=1
  shift
fi
# CI builds once from a clean clone: cargo's incremental caches (several GB) would only take disk
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi
bash scripts/setup.sh
echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy -D warnings"
cargo clippy --workspace --all-targets --features roboframes-core/testing --quiet -- -D warnings
# (the core alone, without the HDF5 sources the Python build turns on)
cargo clippy -p roboframes-core --all-targets --features testing --quiet -- -D warnings
echo "[test] cargo test"
# (the pyo3 crate is a Python extension: it is exercised by pytest, not linked into a test binary)
CARGO_TEST=(cargo test -p roboframes-core -p roboframes-torch --features roboframes-core/testing,roboframes-core/hdf5)
"${CARGO_TEST[@]}"
echo "[test] ruff format --check, ruff check"
PY_DIRS=(python tests benches examples fuzz)
.venv/bin/ruff format --check "${PY_DIRS[@]}"
.venv/bin/ruff check "${PY_DIRS[@]}"
echo "[test] mypy (the roboframes package; python/pyproject.toml [tool.mypy])"
.venv/bin/mypy --config-file python/pyproject.toml
echo "[test] stubtest: the .pyi stubs against the built extensions (_native, the MLX primitive)"
.venv/bin/python -m mypy.stubtest --mypy-config-file python/pyproject.toml \
  --allowlist python/stubtest-allowlist.txt roboframes._native roboframes.mlx._mlx_ext

if [ "$QUICK" = "1" ]; then
  echo "[test] pytest (quick: not slow)"
  export ROBOFRAMES_REQUIRE_MLX=1
  .venv/bin/python -m pytest -q tests -m "not slow" "$@"
  exit 0
fi

echo "[test] valgrind (memcheck): decoder FFI, parallel writes into caller buffers, depth maps, torch kernels"
# cargo runs the test binaries through the runner of the host's target triple
HOST="$(rustc -vV | sed -n 's/^host: //p')"
RUNNER_VAR="CARGO_TARGET_$(printf '%s' "$HOST" | tr 'a-z.-' 'A-Z__')_RUNNER"
env "$RUNNER_VAR=valgrind -q --error-exitcode=9 --leak-check=no" \
  "${CARGO_TEST[@]}" --test decode --test batch --test depth --test kernels -- --test-threads=1
echo "[test] valgrind (leaks): indexing, seeking and decoding lose no memory"
env "$RUNNER_VAR=valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite" \
  "${CARGO_TEST[@]}" --test leaks -- --test-threads=1

echo "[test] fuzzing, short run: AFL++ over the core's parsers (30 s per target; see scripts/fuzz.sh)"
(cd fuzz && cargo fmt --check)
bash scripts/fuzz.sh 30

# The newest torch, in an environment of its own (LeRobot 0.4.4 needs torch < 2.11).
# (the pinned lock: regenerate it from requirements-newest-torch.in, see there)
NEWEST_LOCK=requirements-newest-torch.lock
NEWEST_STAMP=.venv-newest/.roboframes-deps
if [ ! -x .venv-newest/bin/python ] || ! cmp -s "$NEWEST_LOCK" "$NEWEST_STAMP"; then
  echo "[test] installing the newest torch into .venv-newest"
  .venv/bin/uv venv -q --allow-existing --python "$ROOT/.venv/bin/python" .venv-newest
  VIRTUAL_ENV="$ROOT/.venv-newest" .venv/bin/uv pip install -q -r "$NEWEST_LOCK"
  cp "$NEWEST_LOCK" "$NEWEST_STAMP"
fi
export ROBOFRAMES_NEWEST_TORCH_PYTHON="$ROOT/.venv-newest/bin/python"
# LeRobot 0.3.3 (the last line of v2.1 datasets), in an environment of its own: its writer makes
# the v2.1 fixtures and its LeRobotDataset gives the reference items of roboframes' v2.1 reader
# (tests/test_lerobot_v21.py; the pinned lock: regenerate it from requirements-lerobot03.in)
LR03_LOCK=requirements-lerobot03.lock
LR03_STAMP=.venv-lerobot03/.roboframes-deps
if [ ! -x .venv-lerobot03/bin/python ] || ! cmp -s "$LR03_LOCK" "$LR03_STAMP"; then
  echo "[test] installing LeRobot 0.3.3 into .venv-lerobot03"
  .venv/bin/uv venv -q --allow-existing --python "$ROOT/.venv/bin/python" .venv-lerobot03
  VIRTUAL_ENV="$ROOT/.venv-lerobot03" .venv/bin/uv pip install -q -r "$LR03_LOCK"
  cp "$LR03_LOCK" "$LR03_STAMP"
fi
export ROBOFRAMES_LEROBOT03_PYTHON="$ROOT/.venv-lerobot03/bin/python"
# In CI, uv's cache keeps no second copy of the wheels just installed (where the cache is on
# another file system than the venvs, its files are copies, not hard links: GBs of CUDA libraries)
if [ "${CI:-}" = "true" ]; then .venv/bin/uv cache prune --ci -q; fi

echo "[test] fuzzing, short run: 500 damaged LeRobot datasets and hostile API calls (fuzz/dataset_fuzz.py)"
.venv/bin/python fuzz/dataset_fuzz.py --cases 500 --seed 0 --out target/fuzz-datasets

echo "[test] pytest"
export ROBOFRAMES_REQUIRE_MLX=1  # the MLX tests must run here, never skip
.venv/bin/python -m pytest -q tests "$@"

# a v2.1 dataset by LeRobot 0.3.3's writer, and its LeRobot 0.3.3 items, for the 0.6 suite to read
# with the 0.6 drop-in and to convert with LeRobot 0.6's converter (the root has no LeRobot 0.3)
V21="$ROOT/target/v21-fixture"
rm -rf "$V21" && mkdir -p "$V21"
SVT_LOG=1 "$ROBOFRAMES_LEROBOT03_PYTHON" tests/lerobot03_fixture.py write "$V21/ds" --chunks-size 2 >/dev/null 2>&1
SVT_LOG=1 "$ROBOFRAMES_LEROBOT03_PYTHON" tests/lerobot03_fixture.py items "$V21/ds" "$V21/items.pkl" \
  --delta '{"action": [0.0, 0.1, 0.2], "observation.images.top": [-0.1, 0.0]}' >/dev/null 2>&1
export ROBOFRAMES_V21_FIXTURE="$V21"

# In CI (a clean clone, run once), what the steps left need not wait for the LeRobot 0.6 root
# (about 10 GB more): the newest-torch and LeRobot 0.3.3 environments (their tests have run),
# and the fuzzing and debug builds (about 11 GB together, and 6 GB of builds)
if [ "${CI:-}" = "true" ]; then
  echo "[test] CI: removing .venv-newest, .venv-lerobot03, fuzz/target and target/debug (used up)"
  rm -rf .venv-newest .venv-lerobot03 fuzz/target target/debug
fi

# LeRobot 0.6.x on Python 3.13 with FFmpeg 7.1: a Debian 13 root made by debootstrap under
# .lerobot06 (first run: several minutes), roboframes built there against its FFmpeg
echo "[test] the core's Rust tests against FFmpeg 7.1 (scripts/lerobot06.sh)"
bash scripts/lerobot06.sh cargo test -q --release -p roboframes-core --features testing
echo "[test] the LeRobot 0.6 suite (scripts/lerobot06.sh: Python 3.13, FFmpeg 7.1, lerobot 0.6)"
bash scripts/lerobot06.sh python -m pytest -q tests/lerobot06 "$@"
