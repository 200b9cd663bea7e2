#!/usr/bin/env bash
# Runs the whole test suite: system packages, models (pinned PyPI wheels) and the Python and
# JavaScript guest toolchains (pinned componentize-py, componentize-js) when missing,
# builds the host and every plugin (including the test fixtures), then runs the unit and
# integration tests in release mode (wasmtime is too slow unoptimized).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/system-deps.sh
rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
scripts/fetch-models.sh
scripts/authoring-tools.sh
scripts/build-plugins.sh
cargo fmt --all -- --check
cargo build --release
cargo test --release -p continuum -p continuum-gpu -p continuum-tests
