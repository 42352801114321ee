#!/usr/bin/env bash
# Coverage-guided fuzzing of the core's parsers (info.json and its path templates, the episode
# table, a data table, the mp4 frame index) with AFL++ on the stable toolchain (cargo-afl).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]     (default: 30 s, every target)
#
# Installs cargo-afl and builds AFL++ on first use. Fresh seeds come from the core's testing
# writer; each target runs for the given time. Every crash or hang found is copied to
# fuzz/regressions/<target>/ (replayed by `cargo test`, core/tests/fuzz_replay.rs) and fails the
# run. FUZZ_OUT (default target/fuzz-out) keeps the queues; FUZZ_RESUME=1 continues them.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-30}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(info_json episodes_table data_table mp4_index)
OUT="${FUZZ_OUT:-target/fuzz-out}"

AFL_VERSION=0.18.2
if ! cargo afl --version 2>/dev/null | grep -q "$AFL_VERSION"; then
  echo "[fuzz] installing cargo-afl $AFL_VERSION"
  cargo install -q --locked cargo-afl --version "$AFL_VERSION"
fi
COMMIT="$(rustc -vV | sed -n 's/^commit-hash: //p' | cut -c1-7)"
VERSION="$(rustc -vV | sed -n 's/^release: //p')"
if [ ! -d "${XDG_DATA_HOME:-$HOME/.local/share}/afl.rs/rustc-$VERSION-$COMMIT/afl.rs-$AFL_VERSION/afl" ]; then
  echo "[fuzz] building AFL++ for rustc $VERSION"
  cargo afl config --build
fi
echo "[fuzz] cargo afl build (instrumented targets)"
(cd fuzz && cargo afl build --release --locked -q)

if [ "${FUZZ_RESUME:-0}" != 1 ]; then rm -rf "$OUT"; fi
mkdir -p "$OUT"
[ -d "$OUT/seeds" ] || fuzz/target/release/write_seeds "$OUT/seeds"

export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_AUTORESUME=1
found=0
for t in "${TARGETS[@]}"; do
  echo "[fuzz] $t for ${SECS}s"
  # -t: a case running longer than 5 s is a hang; -m: 2 GiB of memory per case
  if ! cargo afl fuzz -V "$SECS" -t 5000 -m 2048 -i "$OUT/seeds/$t" -o "$OUT/$t" \
      "fuzz/target/release/$t" > "$OUT/$t.log" 2>&1; then
    tail -30 "$OUT/$t.log"
    echo "[fuzz] afl-fuzz failed on $t" >&2
    exit 1
  fi
  stats="$OUT/$t/default/fuzzer_stats"
  get() { sed -n "s/^$1 *: //p" "$stats"; }
  echo "[fuzz] $t: $(get execs_done) executions, $(get corpus_count) corpus entries," \
    "edge coverage $(get bitmap_cvg), $(get saved_crashes) crashes, $(get saved_hangs) hangs"
  for kind in crashes hangs; do
    for f in "$OUT/$t/default/$kind"/id:*; do
      [ -e "$f" ] || continue
      mkdir -p "fuzz/regressions/$t"
      name="$kind-$(sha256sum "$f" | cut -c1-16)"
      cp "$f" "fuzz/regressions/$t/$name"
      echo "[fuzz] $t: $kind case saved as fuzz/regressions/$t/$name" >&2
      found=1
    done
  done
done
if [ "$found" = 1 ]; then
  echo "[fuzz] findings saved under fuzz/regressions/: fix them (cargo test replays them)" >&2
  exit 1
fi
