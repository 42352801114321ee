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
echo "[test] pytest"
.venv/bin/python -m pytest -q tests "$@"
