#!/usr/bin/env bash
# Builds the libFuzzer targets on the stable toolchain and runs them.
#
#   fuzz/run.sh [TARGET|all] [RUNS]   run one target (or all, one after another) for RUNS
#                                     executions each (default: all, 10000000)
#   fuzz/run.sh merge [TARGET|all]    fold new finds (corpus-new/) into the minimized corpus/
#                                     (set-cover merge on edges alone, not hit counts, so the
#                                     committed corpus stays a few hundred files per target)
#
# The build passes rustc exactly the instrumentation flags `cargo fuzz build -s none` passes
# (SanitizerCoverage: inline 8-bit counters, PC table, comparison tracing; `--cfg fuzzing`;
# debug assertions on), all of them stable `-C` flags, so neither nightly, RUSTC_BOOTSTRAP nor
# cargo-fuzz itself is needed. No sanitizer: the project is `forbid(unsafe_code)` Rust, and
# aws-lc's C code is not instrumented either way.
#
# Each run reads corpus/<target> (minimized, committed) and seeds/<target> (hand-made,
# committed) and writes new finds to corpus-new/<target> and crashes to artifacts/ (both
# ignored by git). A crash makes the script exit non-zero. Extra libFuzzer flags can be passed
# in FUZZ_ARGS (e.g. FUZZ_ARGS="-max_total_time=600").
set -euo pipefail
cd "$(dirname "$0")"

TARGETS=(jws_verify jwk_parse opaque_token http_headers request_bodies dpop_proof)

mode="${1:-all}"
if [[ "$mode" == merge ]]; then
  which="${2:-all}"
  runs=0
else
  which="$mode"
  runs="${2:-10000000}"
fi
if [[ "$which" == all ]]; then
  selected=("${TARGETS[@]}")
else
  [[ " ${TARGETS[*]} " == *" $which "* ]] || { echo "unknown target: $which (one of: ${TARGETS[*]})" >&2; exit 2; }
  selected=("$which")
fi

triple="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cllvm-args=-sanitizer-coverage-stack-depth \
-Cdebug-assertions -Ccodegen-units=1"
echo "== building fuzz targets (${triple})"
cargo build --release --locked --target "$triple" --bins

bin_dir="${CARGO_TARGET_DIR:-target}/${triple}/release"
for t in "${selected[@]}"; do
  mkdir -p "corpus/$t" "corpus-new/$t" "seeds/$t" artifacts
  if [[ "$mode" == merge ]]; then
    echo "== merging $t into corpus/$t"
    rm -rf "corpus-merged/$t" && mkdir -p "corpus-merged/$t"
    # shellcheck disable=SC2086
    "$bin_dir/$t" -set_cover_merge=1 -use_counters=0 ${FUZZ_ARGS:-} "corpus-merged/$t" "corpus/$t" "corpus-new/$t" "seeds/$t"
    rm -rf "corpus/$t" "corpus-new/$t"
    mv "corpus-merged/$t" "corpus/$t"
    rmdir corpus-merged 2>/dev/null || true
    echo "corpus/$t: $(find "corpus/$t" -type f | wc -l) files"
  else
    echo "== fuzzing $t for $runs executions"
    # shellcheck disable=SC2086
    "$bin_dir/$t" -runs="$runs" -print_final_stats=1 -artifact_prefix="artifacts/$t-" \
      ${FUZZ_ARGS:-} "corpus-new/$t" "corpus/$t" "seeds/$t"
  fi
done
