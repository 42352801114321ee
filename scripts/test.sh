#!/usr/bin/env bash
# All tests: set up (idempotent), Rust format/lint/unit tests, then the pytest suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "[test] cargo test"
# (the pyo3 crate is a Python extension: it is exercised by pytest, not linked into a test binary)
cargo test -p roboframes-core
echo "[test] valgrind (memcheck) over the core's decode tests: FFI and unsafe code"
BIN=$(cargo test -p roboframes-core --test decode --no-run --message-format=json 2>/dev/null \
  | .venv/bin/python -c "import sys, json
for line in sys.stdin:
    m = json.loads(line)
    if m.get('reason') == 'compiler-artifact' and m.get('executable') and m['target']['name'] == 'decode':
        print(m['executable'])")
valgrind -q --error-exitcode=9 --leak-check=no "$BIN" --test-threads=1 -q
echo "[test] pytest"
.venv/bin/python -m pytest -q tests "$@"
