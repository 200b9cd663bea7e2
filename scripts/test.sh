#!/usr/bin/env bash
# Runs the whole test suite: builds the host and every plugin (including the test fixtures),
# then runs the unit and integration tests in release mode (wasmtime is too slow unoptimized).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
scripts/build-plugins.sh
cargo fmt --all -- --check
cargo build --release
cargo test --release -p continuum -p continuum-tests
