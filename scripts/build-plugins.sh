#!/usr/bin/env bash
# Builds the first-party plugins and the test fixture plugins as wasm32-wasip2 components.
# Each lands in build/plugins/<name>/ as <name>.wasm beside a copy of its wit/ folder, its
# plugin.toml (version, proof suite) and a provenance.json, ready for
# `continuum plugin pack build/plugins/<name> --key <key>` or a development
# `continuum plugin install build/plugins/<name>`.
set -euo pipefail
cd "$(dirname "$0")/.."

# name=source folder; first-party plugins, the README's example, then test fixtures.
PLUGINS=(
  text=plugins/text
  kv=plugins/kv
  json=plugins/json
  llm=plugins/llm
  rag=plugins/rag
  classify=plugins/classify
  hello=examples/hello-rust
  typezoo=tests/plugins/typezoo
  misbehave=tests/adversarial/misbehave
  hostile=tests/adversarial/hostile
  resourceful=tests/plugins/resourceful
  streamy=tests/plugins/streamy
  wasi-main=tests/plugins/wasi-main
  http-hello=tests/plugins/http-hello
)

packages=()
for entry in "${PLUGINS[@]}"; do packages+=(-p "${entry%%=*}"); done
cargo build --release --target wasm32-wasip2 "${packages[@]}"

target_dir="${CARGO_TARGET_DIR:-target}"
toolchain=$(rustc --version)
commit=$(git rev-parse HEAD 2>/dev/null || true)
commit_json=${commit:+\"$commit\"}
commit_json=${commit_json:-null}
for entry in "${PLUGINS[@]}"; do
  name="${entry%%=*}"; src="${entry#*=}"
  out="build/plugins/$name"
  rm -rf "$out" && mkdir -p "$out"
  built="$target_dir/wasm32-wasip2/release/$name.wasm"
  # A library's file has underscores for hyphens (a binary's keeps its name).
  [ -f "$built" ] || built="$target_dir/wasm32-wasip2/release/${name//-/_}.wasm"
  cp "$built" "$out/$name.wasm"
  # Plain WASI components carry no WIT folder: theirs is decoded from the component.
  [ -d "$src/wit" ] && cp -r "$src/wit" "$out/wit"
  [ -f "$src/plugin.toml" ] && cp "$src/plugin.toml" "$out/plugin.toml"
  # Provenance for `continuum plugin pack`: a digest over the plugin's source files (path and
  # content, sorted), the commit, the toolchain and the build command.
  source_digest=$(cd "$src" && find . -type f -not -path './target/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
  cat > "$out/provenance.json" <<JSON
{"source-digest": "sha256:$source_digest", "commit": $commit_json, "toolchain": "$toolchain", "command": "cargo build --release --target wasm32-wasip2 -p $name"}
JSON
done

# The same `fn main` program as a WASI preview-1 core module (adapted into a component at install).
cargo build --release --target wasm32-wasip1 -p wasi-main
rm -rf build/plugins/wasi-main-p1 && mkdir -p build/plugins/wasi-main-p1
cp "$target_dir/wasm32-wasip1/release/wasi-main.wasm" build/plugins/wasi-main-p1/wasi-main-p1.wasm

# A fourth language: the C example, built by clang with Debian's wasi-libc (a preview-1 module).
rm -rf build/plugins/wc && mkdir -p build/plugins/wc
clang --target=wasm32-wasi -O2 -o build/plugins/wc/wc.wasm examples/wc-c/wc.c
cp examples/wc-c/plugin.toml build/plugins/wc/plugin.toml
echo "built ${#PLUGINS[@]} plugins, a preview-1 module and the C example into build/plugins/"
