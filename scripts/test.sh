#!/usr/bin/env bash
# All tests: set up (idempotent), Rust format/lint/unit tests (and valgrind over the FFI code),
# then the pytest suites, with a second environment holding the newest torch.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
bash scripts/setup.sh
echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy -D warnings"
cargo clippy --workspace --all-targets --features roboframes-core/testing --quiet -- -D warnings
echo "[test] cargo test"
# (the pyo3 crate is a Python extension: it is exercised by pytest, not linked into a test binary)
CARGO_TEST=(cargo test -p roboframes-core -p roboframes-torch --features roboframes-core/testing)
"${CARGO_TEST[@]}"
echo "[test] valgrind (memcheck): decoder FFI, parallel writes into caller buffers, torch kernels"
mapfile -t BINS < <("${CARGO_TEST[@]}" --no-run --message-format=json 2>/dev/null \
  | .venv/bin/python -c "import sys, json
for line in sys.stdin:
    m = json.loads(line)
    if m.get('reason') == 'compiler-artifact' and m.get('executable') and m['target']['name'] in ('decode', 'batch', 'kernels'):
        print(m['executable'])")
if [ "${#BINS[@]}" -ne 3 ]; then
  echo "[test] expected the decode, batch and kernels test binaries, found: ${BINS[*]}" >&2
  exit 1
fi
for bin in "${BINS[@]}"; do
  echo "[test]   $(basename "$bin")"
  valgrind -q --error-exitcode=9 --leak-check=no "$bin" --test-threads=1 -q
done

# The newest torch, in an environment of its own (LeRobot 0.4.4 needs torch < 2.11).
NEWEST_REQ=requirements-newest-torch.txt
NEWEST_STAMP=.venv-newest/.roboframes-deps
if [ ! -x .venv-newest/bin/python ] || ! cmp -s "$NEWEST_REQ" "$NEWEST_STAMP"; then
  echo "[test] installing the newest torch into .venv-newest"
  .venv/bin/uv venv -q --allow-existing --python "$ROOT/.venv/bin/python" .venv-newest
  VIRTUAL_ENV="$ROOT/.venv-newest" .venv/bin/uv pip install -q -r "$NEWEST_REQ"
  cp "$NEWEST_REQ" "$NEWEST_STAMP"
fi
export ROBOFRAMES_NEWEST_TORCH_PYTHON="$ROOT/.venv-newest/bin/python"

echo "[test] pytest"
.venv/bin/python -m pytest -q tests "$@"
