#!/usr/bin/env bash
# Coverage-guided fuzzing of the core's parsers (info.json and its path templates, the episode
# table, a data table, the mp4 frame index) with AFL++ on the stable toolchain (cargo-afl).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]     (default: 30 s, every target)
#
# Installs cargo-afl and builds AFL++ on first use. Fresh seeds come from the core's testing
# writer; each target runs for the given time. Every crash AFL saves, and every hang, is replayed
# outside AFL (the target binary on its own, 60 s limit): one that still crashes or runs past the limit
# is copied to $FUZZ_OUT/findings/<target>/ and fails the run. Once fixed, move it to
# fuzz/regressions/<target>/, where `cargo test` replays it (core/tests/fuzz_replay.rs).
# (A hang AFL saves on a loaded machine that replays in time is reported, not failed.)
# FUZZ_OUT (default target/fuzz-out) keeps the queues; FUZZ_RESUME=1 continues them.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-30}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(info_json episodes_table v2_meta data_table mp4_index rlds_shard mcap_file)
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
if [ ! -f "$OUT/seeds/.complete" ]; then
  rm -rf "$OUT/seeds"
  fuzz/target/release/write_seeds "$OUT/seeds"
  touch "$OUT/seeds/.complete"
fi

export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_AUTORESUME=1 \
  AFL_NO_AFFINITY=1
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
      # (outside AFL a target binary runs its input once, from stdin)
      # (with AFL's memory limit: a case that needs gigabytes is a finding too)
      if (ulimit -v $((2048 * 1024)); timeout 60 "fuzz/target/release/$t" < "$f" > /dev/null 2>&1); then
        echo "[fuzz] $t: a $kind case replays fine outside AFL (a loaded machine?): $f" >&2
        continue
      fi
      mkdir -p "$OUT/findings/$t"
      name="$kind-$(sha256sum "$f" | cut -c1-16)"
      cp "$f" "$OUT/findings/$t/$name"
      echo "[fuzz] $t: $kind case reproduces: $OUT/findings/$t/$name" >&2
      found=1
    done
  done
done
if [ "$found" = 1 ]; then
  echo "[fuzz] findings under $OUT/findings/: fix them, then move them to fuzz/regressions/" >&2
  exit 1
fi
