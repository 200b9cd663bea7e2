#!/usr/bin/env bash
# Coverage-guided fuzzing of the surfaces that take untrusted input (fuzz/fuzz_targets/).
#
#   scripts/fuzz.sh smoke [seconds]             every target briefly, two at a time
#                                               (default 30 s each; the test command runs this)
#   scripts/fuzz.sh campaign [seconds] [jobs]   the long campaign (default 600 s per target,
#                                               2 targets at a time), growing build/fuzz/corpus/
#
# Targets are libFuzzer binaries built on stable Rust: scripts/fuzz-rustc.sh instruments
# Continuum's own crates for coverage (dependencies are not instrumented; wasmtime fuzzes
# itself). Each starts from the seeds in fuzz/corpus/<target>/. A crash makes the run exit
# with code 1 (after the remaining targets) and leaves the input in build/fuzz/artifacts/ (reproduce: run the target binary
# on that file). A summary line per target reports executions, rate and coverage.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-smoke}
case "$mode" in
  smoke) seconds=${2:-30}; jobs=2 ;;
  campaign) seconds=${2:-600}; jobs=${3:-2} ;;
  *) echo "usage: scripts/fuzz.sh smoke [seconds] | campaign [seconds] [jobs]" >&2; exit 2 ;;
esac
TARGETS=(fuzz_alloy fuzz_reflect fuzz_grant fuzz_envelope fuzz_component fuzz_log_import)

RUSTC_WORKSPACE_WRAPPER="$PWD/scripts/fuzz-rustc.sh" cargo build --release -p continuum-fuzz --bins
bin="${CARGO_TARGET_DIR:-target}/release"
mkdir -p build/fuzz/artifacts build/fuzz/logs

run_target() {
  local target=$1 corpus
  if [ "$mode" = campaign ]; then
    corpus="build/fuzz/corpus/$target"
  else
    corpus=$(mktemp -d)
  fi
  mkdir -p "$corpus"
  local status=0
  "$bin/$target" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=8192 -print_final_stats=1 \
    -artifact_prefix="build/fuzz/artifacts/$target-" "$corpus" "fuzz/corpus/$target" \
    >"build/fuzz/logs/$target.log" 2>&1 || status=$?
  [ "$mode" = smoke ] && rm -rf "$corpus"
  local execs rate cov
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "build/fuzz/logs/$target.log" | tail -1 | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "build/fuzz/logs/$target.log" | tail -1 | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]*' "build/fuzz/logs/$target.log" | tail -1 | grep -o '[0-9]*$' || echo 0)
  if [ "$status" -ne 0 ]; then
    printf '%-16s CRASH after %s executions; see build/fuzz/logs/%s.log and build/fuzz/artifacts/\n' "$target" "$execs" "$target"
    grep -m1 -A12 -E 'panicked|ERROR: libFuzzer' "build/fuzz/logs/$target.log" || true
    return 1
  fi
  printf '%-16s %5ss  %10s executions  %7s/s  coverage %s\n' "$target" "$seconds" "$execs" "$rate" "$cov"
}

echo "fuzzing ${#TARGETS[@]} targets, ${seconds}s each, $jobs at a time"
failed=0
running=0
for target in "${TARGETS[@]}"; do
  run_target "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
rm -rf /tmp/continuum-fuzz-*
exit "$failed"
