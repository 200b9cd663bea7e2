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
# The workspace lints (missing_docs, clippy's defaults) with warnings denied, tests included.
cargo clippy --release -p continuum -p continuum-core -p continuum-node -p continuum-gpu -p continuum-tests \
    --all-targets -- -D warnings
# One feature set for the binary and the tests (the test crate's dependencies unify features),
# so the heavy dependencies are compiled once.
cargo build --release -p continuum -p continuum-core -p continuum-node -p continuum-gpu -p continuum-tests
cargo test --release -p continuum -p continuum-core -p continuum-node -p continuum-gpu -p continuum-tests
scripts/fuzz.sh smoke 30
