#!/usr/bin/env bash
# RUSTC_WORKSPACE_WRAPPER for scripts/fuzz.sh: compiles the fuzzing copies of the core and
# node crates (feature `fuzzing`) and the fuzz crate with libFuzzer's coverage instrumentation and with
# debug assertions and overflow checks on; every other crate is compiled as usual, so the
# fuzz build reuses the release build's dependencies.
rustc=$1
shift
instrument=false
previous=""
for arg in "$@"; do
  [ "$arg" = 'feature="fuzzing"' ] && instrument=true
  if [ "$previous" = "--crate-name" ]; then
    case "$arg" in continuum_fuzz | fuzz_*) instrument=true ;; esac
  fi
  previous=$arg
done
if $instrument; then
  exec "$rustc" "$@" -Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    -Cdebug-assertions -Coverflow-checks
fi
exec "$rustc" "$@"
