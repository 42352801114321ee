#!/usr/bin/env bash
# Installs everything roboframes needs on a fresh Debian machine with the Rust toolchain and
# Python 3.11: system FFmpeg, HDF5 and libjpeg-turbo dev packages, libclang, pkg-config (apt), a .venv with the Python
# packages, and the native extension built into it. Idempotent: quick when already set up.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

APT_PKGS="pkg-config clang libclang-dev libavcodec-dev libavformat-dev libavutil-dev \
libswscale-dev libavfilter-dev libavdevice-dev libswresample-dev ffmpeg valgrind g++ libhdf5-dev libturbojpeg0-dev"
missing=""
for p in $APT_PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
# Debian's own Python creates venvs only with python3-venv (ensurepip) installed
if [ ! -x .venv/bin/python ] && ! "$PY" -c "import ensurepip" >/dev/null 2>&1; then
  missing="$missing python3-venv"
fi
# the MLX extension (mlx_ext/) compiles against Python's headers
if ! [ -f "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ]; then
  missing="$missing python3-dev"
fi
if [ -n "$missing" ]; then
  echo "[setup] apt-get install:$missing"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install -q --upgrade pip uv
fi
# The pinned lock (regenerate it from requirements-dev.in: see there); reinstalled when it
# differs from the copy stamped at the last install.
STAMP=.venv/.roboframes-deps
LOCK=requirements-dev.lock
if [ ! -f "$STAMP" ] || ! cmp -s "$LOCK" "$STAMP"; then
  echo "[setup] installing Python packages from $LOCK (first time: several minutes)"
  VIRTUAL_ENV="$ROOT/.venv" .venv/bin/uv pip install -q -r "$LOCK"
  cp "$LOCK" "$STAMP"
fi

# Build the native extension into the venv (cargo makes this quick when nothing changed).
echo "[setup] building roboframes (maturin develop --release)"
VIRTUAL_ENV="$ROOT/.venv" PATH="$ROOT/.venv/bin:$PATH" \
  .venv/bin/maturin develop --release -q -m python/Cargo.toml >/dev/null

# The MLX extension (mlx_ext/: a C++ MLX primitive + nanobind module, built by CMake against the
# MLX and nanobind in .venv, calling the core through roboframes._native's C table); installed
# into python/roboframes/mlx/. CMake rebuilds only what changed.
echo "[setup] building the MLX extension (cmake)"
MLX_BUILD=target/mlx_ext
PATH="$ROOT/.venv/bin:$PATH" cmake -S mlx_ext -B "$MLX_BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DPython_EXECUTABLE="$ROOT/.venv/bin/python" >/dev/null
PATH="$ROOT/.venv/bin:$PATH" cmake --build "$MLX_BUILD" -j "$(nproc)" >/dev/null
PATH="$ROOT/.venv/bin:$PATH" cmake --install "$MLX_BUILD" >/dev/null
