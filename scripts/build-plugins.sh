#!/usr/bin/env bash
# Builds the first-party plugins and the test fixture plugins as wasm32-wasip2 components.
# Each lands in build/plugins/<name>/ as <name>.wasm beside a copy of its wit/ folder, ready for
# `continuum plugin install build/plugins/<name>`.
set -euo pipefail
cd "$(dirname "$0")/.."

# name=source folder; first-party plugins, the README's example, then test fixtures.
PLUGINS=(
  text=plugins/text
  kv=plugins/kv
  json=plugins/json
  hello=examples/hello-rust
  typezoo=tests/plugins/typezoo
  misbehave=tests/plugins/misbehave
  resourceful=tests/plugins/resourceful
)

packages=()
for entry in "${PLUGINS[@]}"; do packages+=(-p "${entry%%=*}"); done
cargo build --release --target wasm32-wasip2 "${packages[@]}"

target_dir="${CARGO_TARGET_DIR:-target}"
for entry in "${PLUGINS[@]}"; do
  name="${entry%%=*}"; src="${entry#*=}"
  out="build/plugins/$name"
  rm -rf "$out" && mkdir -p "$out"
  cp "$target_dir/wasm32-wasip2/release/$name.wasm" "$out/$name.wasm"
  cp -r "$src/wit" "$out/wit"
done
echo "built ${#PLUGINS[@]} plugins into build/plugins/"
