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
  cp "$target_dir/wasm32-wasip2/release/$name.wasm" "$out/$name.wasm"
  cp -r "$src/wit" "$out/wit"
  [ -f "$src/plugin.toml" ] && cp "$src/plugin.toml" "$out/plugin.toml"
  # Provenance for `continuum plugin pack`: a digest over the plugin's source files (path and
  # content, sorted), the commit, the toolchain and the build command.
  source_digest=$(cd "$src" && find . -type f -not -path './target/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
  cat > "$out/provenance.json" <<JSON
{"source-digest": "sha256:$source_digest", "commit": $commit_json, "toolchain": "$toolchain", "command": "cargo build --release --target wasm32-wasip2 -p $name"}
JSON
done
echo "built ${#PLUGINS[@]} plugins into build/plugins/"
