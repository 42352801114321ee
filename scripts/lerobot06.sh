#!/usr/bin/env bash
# bash scripts/lerobot06.sh CMD [ARG...]
#
# Runs CMD in the LeRobot 0.6 test environment: a Debian 13 (trixie) root made by debootstrap
# under .lerobot06/root, with Python 3.13, FFmpeg 7.1 (Debian's, development packages included),
# the pinned requirements-lerobot06.lock (lerobot[dataset,training] 0.6.x and its pins: torch <
# 2.12, torchcodec < 0.12, av < 16, numpy < 2.3) in /opt/venv, and roboframes built there against
# FFmpeg 7.1 (cargo's target folder: target/lerobot06; the MLX extension: target/lerobot06-mlx).
# The repository is at the same path inside, the host's /tmp at /tmp, the host's Rust toolchain
# ($CARGO_HOME, $RUSTUP_HOME) at theirs; uv's download cache is the root's own (/var/cache/uv).
# CMD runs in the current folder, with /opt/venv/bin first on PATH.
#
# The first run builds everything (several minutes: debootstrap, apt, the Python packages,
# roboframes); later runs only rebuild roboframes when its sources changed (cargo and CMake are
# quick when nothing did), and reinstall the Python packages when the lock changed.
#
# Needs root (or sudo): debootstrap, chroot and bind mounts. The mounts are made in a private
# mount namespace of each run (unshare -m) and vanish with it, so the tree under .lerobot06 never
# holds a mount outside a run: `rm -rf .lerobot06` cannot reach the repository, /tmp or the
# toolchain through a bind. CMD and the builds run as the calling user (HOME inside: /root for
# root, else /tmp/roboframes-lerobot06-home-UID); installing into the root runs as root. Set
# ROBOFRAMES_LEROBOT06_NO_BUILD=1 to skip the roboframes build.
set -euo pipefail
CWD="$(pwd -P)"
cd "$(dirname "$0")/.."
ROOT="$(pwd -P)"
ENV_DIR="$ROOT/.lerobot06"
CHROOT="$ENV_DIR/root"
LOCK="$ROOT/requirements-lerobot06.lock"
MIRROR="${ROBOFRAMES_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CARGO_HOME_DIR="${CARGO_HOME:-$HOME/.cargo}"
RUSTUP_HOME_DIR="${RUSTUP_HOME:-$HOME/.rustup}"
# Who runs: the builds (cargo, CMake) and CMD run as the calling user, so that what they write
# in the repository and in the toolchain's folders stays theirs; installing into the root (apt,
# /opt/venv) runs as root. uv's cache is the root's own /var/cache/uv: on the same mount as
# /opt/venv, so that installs are hard links into it (a cache bound in from the host is another
# mount, and uv would copy every file: several GB more on disk for torch and its CUDA libraries).
RUN_UID="$(id -u)"
RUN_GID="$(id -g)"

SUDO=""
if [ "$RUN_UID" != "0" ]; then SUDO="sudo"; fi

log() { echo "[lerobot06] $*" >&2; }

# in_root AS CWD CMD...: runs CMD inside the root in folder CWD, AS `root` or `user` (the
# caller), with the binds of a run. The binds are made in a private mount namespace: they end
# with the command.
in_root() {
  local as="$1" cwd="$2"
  shift 2
  local spec="0:0" home=/root
  if [ "$as" = "user" ] && [ "$RUN_UID" != "0" ]; then
    spec="$RUN_UID:$RUN_GID"
    home="/tmp/roboframes-lerobot06-home-$RUN_UID"
  fi
  # the host's settings for reaching the package registries (CA bundles, proxies, indexes), when
  # set: the root holds a copy of the host's CA bundle at the same path; and the v2.1 fixture
  # LeRobot 0.3.3 wrote on the host (scripts/test.sh), for the 0.6 suite
  local pass=()
  local v
  for v in SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE CURL_CA_BUNDLE PIP_CERT PIP_INDEX_URL \
    PIP_EXTRA_INDEX_URL PIP_DEFAULT_TIMEOUT UV_INDEX_URL UV_DEFAULT_INDEX UV_EXTRA_INDEX_URL \
    UV_NATIVE_TLS HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy \
    ROBOFRAMES_V21_FIXTURE; do
    if [ -n "${!v:-}" ]; then pass+=("$v=${!v}"); fi
  done
  $SUDO unshare --mount --propagation private -- bash -euo pipefail -c '
    chroot_dir="$1"; repo="$2"; cargo_home="$3"; rustup_home="$4"; cwd="$5"
    spec="$6"; home="$7"; npass="$8"
    shift 8
    pass=("${@:1:$npass}")
    shift "$npass"
    bind() { mkdir -p "$chroot_dir$2"; mount --rbind "$1" "$chroot_dir$2"; }
    mount -t proc proc "$chroot_dir/proc"
    mount --rbind /dev "$chroot_dir/dev"
    mount --rbind /sys "$chroot_dir/sys"
    bind /tmp /tmp
    bind "$repo" "$repo"
    bind "$cargo_home" "$cargo_home"
    bind "$rustup_home" "$rustup_home"
    cp --remove-destination /etc/resolv.conf "$chroot_dir/etc/resolv.conf" 2>/dev/null || true
    exec chroot --userspec="$spec" "$chroot_dir" /usr/bin/env -i \
      HOME="$home" LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" \
      PATH="/opt/venv/bin:$cargo_home/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      VIRTUAL_ENV=/opt/venv CARGO_HOME="$cargo_home" RUSTUP_HOME="$rustup_home" \
      UV_CACHE_DIR=/var/cache/uv CARGO_TARGET_DIR="$repo/target/lerobot06" \
      ROBOFRAMES_ENV=lerobot06 "${pass[@]}" \
      bash -c '"'"'mkdir -p "$HOME" && cd "$1" && shift && exec "$@"'"'"' _ "$cwd" "$@"
  ' _ "$CHROOT" "$ROOT" "$CARGO_HOME_DIR" "$RUSTUP_HOME_DIR" "$cwd" "$spec" "$home" \
    "${#pass[@]}" "${pass[@]}" "$@"
}

ensure_root_fs() {
  if [ -f "$CHROOT/.roboframes-debootstrap" ]; then return; fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "apt-get install debootstrap"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      debootstrap >/dev/null
  fi
  # a partial root from an interrupted run is started again (no mount can be inside it: see above)
  $SUDO rm -rf "$CHROOT"
  mkdir -p "$ENV_DIR"
  log "debootstrap Debian 13 (trixie) into $CHROOT (first time: a few minutes)"
  $SUDO debootstrap --variant=minbase --include=ca-certificates trixie "$CHROOT" "$MIRROR" \
    >"$ENV_DIR/debootstrap.log" 2>&1 || {
    tail -20 "$ENV_DIR/debootstrap.log" >&2
    exit 1
  }
  $SUDO touch "$CHROOT/.roboframes-debootstrap"
}

# Debian 13's packages: Python 3.13 (with its shared library: torchcodec links it), FFmpeg 7.1 and
# its development files, libhdf5 (HDF5 sources), libturbojpeg (JPEG), the C toolchain and libclang for the Rust build.
APT_PKGS="python3.13 python3.13-venv python3.13-dev libpython3.13 pkg-config clang libclang-dev \
gcc g++ make libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavfilter-dev \
libavdevice-dev libswresample-dev ffmpeg libhdf5-dev libturbojpeg0-dev ca-certificates"

ensure_packages() {
  local stamp="$CHROOT/.roboframes-apt"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$APT_PKGS" ]; then return; fi
  log "apt-get install in the root:$(echo $APT_PKGS | tr -s ' ' | head -c 200)"
  # the host's CA bundle and pip settings (a proxy or mirror configured there applies inside too)
  $SUDO mkdir -p "$CHROOT/etc/ssl/certs"
  [ -f /etc/ssl/certs/ca-certificates.crt ] &&
    $SUDO cp /etc/ssl/certs/ca-certificates.crt "$CHROOT/etc/ssl/certs/ca-certificates.crt"
  [ -f /etc/pip.conf ] && $SUDO cp /etc/pip.conf "$CHROOT/etc/pip.conf"
  in_root root / bash -c "DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $APT_PKGS >/dev/null &&
    apt-get clean"
  # (apt's ca-certificates rewrites the bundle: keep the host's, which may trust a local proxy)
  [ -f /etc/ssl/certs/ca-certificates.crt ] &&
    $SUDO cp /etc/ssl/certs/ca-certificates.crt "$CHROOT/etc/ssl/certs/ca-certificates.crt"
  echo "$APT_PKGS" | $SUDO tee "$stamp" >/dev/null
}

ensure_venv() {
  local stamp="$CHROOT/opt/venv/.roboframes-deps"
  if [ -f "$stamp" ] && cmp -s "$LOCK" "$stamp"; then return; fi
  log "installing the Python packages of $LOCK into /opt/venv (first time: several minutes)"
  in_root root "$ROOT" bash -c '
    set -euo pipefail
    [ -x /opt/venv/bin/python ] || python3.13 -m venv /opt/venv
    [ -x /opt/venv/bin/uv ] || /opt/venv/bin/python -m pip install -q uv
    UV_HTTP_TIMEOUT=300 /opt/venv/bin/uv pip install -q -r "$1"
  ' _ "$LOCK"
  $SUDO cp "$LOCK" "$stamp"
}

# roboframes is installed into /opt/venv as a wheel (not the editable install of .venv, whose
# extension module lives in python/roboframes/ and is linked against the host's FFmpeg), rebuilt
# and reinstalled only when the wheel changed; then the MLX extension against that install.
# (Builds as the caller, installs as root; no FFmpeg copied into the wheel: roboframes links the
# system FFmpeg, see the README.)
ensure_build() {
  if [ "${ROBOFRAMES_LEROBOT06_NO_BUILD:-0}" = "1" ]; then return; fi
  local wheels=target/lerobot06/wheels
  in_root user "$ROOT" bash -c '
    set -euo pipefail
    rm -rf "$1"
    maturin build --release -q -m python/Cargo.toml -i /opt/venv/bin/python -o "$1" \
      --auditwheel skip >/dev/null
  ' _ "$wheels"
  in_root root "$ROOT" bash -c '
    set -euo pipefail
    wheel="$(ls "$1"/roboframes-*.whl)"
    sum="$(sha256sum "$wheel" | cut -d" " -f1)"
    stamp=/opt/venv/.roboframes-wheel
    if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
      uv pip install -q --reinstall --no-deps "$wheel"
      echo "$sum" > "$stamp"
    fi
  ' _ "$wheels"
  in_root user "$ROOT" bash -c '
    set -euo pipefail
    py=/opt/venv/bin/python
    pkg="$("$py" -c "import roboframes, os; print(os.path.dirname(roboframes.__file__))")"
    cmake -S mlx_ext -B target/lerobot06-mlx -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$py" \
      -DROBOFRAMES_MLX_INSTALL_DIR="$pkg/mlx" >/dev/null
    cmake --build target/lerobot06-mlx -j "$(nproc)" >/dev/null
  '
  in_root root "$ROOT" cmake --install target/lerobot06-mlx >/dev/null
}

if [ "$#" -eq 0 ]; then
  echo "usage: bash scripts/lerobot06.sh CMD [ARG...]" >&2
  exit 2
fi
ensure_root_fs
ensure_packages
ensure_venv
ensure_build
in_root user "$CWD" "$@"
