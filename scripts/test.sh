#!/usr/bin/env bash
# Runs the whole test suite: system packages, models (pinned PyPI wheels) and the Python and
# JavaScript guest toolchains (pinned componentize-py, componentize-js) when missing,
# builds the host and every plugin (including the test fixtures), then runs the unit and
# integration tests in release mode (wasmtime is too slow unoptimized), then a fuzz smoke:
# every fuzz target for 30 s (scripts/fuzz.sh; the long campaign is `scripts/fuzz.sh campaign`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/system-deps.sh
rustup target add wasm32-wasip2 wasm32-wasip1 >/dev/null 2>&1 || rustup target add wasm32-wasip2 wasm32-wasip1
rustup component add clippy >/dev/null 2>&1 || rustup component add clippy
scripts/fetch-models.sh
scripts/authoring-tools.sh
scripts/build-plugins.sh
cargo fmt --all -- --check
# Builds the binaries and every test target, with the workspace lints (missing_docs, clippy's
# defaults) checked as Continuum's crates compile and warnings denied, then runs the tests.
scripts/host-cargo.sh test --deny-warnings
scripts/fuzz.sh smoke 30
