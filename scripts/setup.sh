#!/usr/bin/env bash
# Sets everything up and runs the main job end to end: toolchain target, host build, plugin
# builds, plugin install into the data dir ($CONTINUUM_HOME, else ~/.local/share/continuum),
# a tour of commands, and the call-overhead benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "toolchain: wasm32-wasip2 target"
rustup target add wasm32-wasip2

step "build the host (release)"
cargo build --release
continuum=${CARGO_TARGET_DIR:-target}/release/continuum

step "build the plugins (components for wasm32-wasip2)"
scripts/build-plugins.sh

step "install the first-party plugins"
for p in text kv json; do
  "$continuum" plugin install "build/plugins/$p" --replace
done

step "what can I call?"
"$continuum" commands

step "generated help: continuum run text/summarize --help"
"$continuum" run text/summarize --help

step "run commands"
set -x
"$continuum" run text/summarize --text @README.md --max-words 40
"$continuum" run text/stats --text @README.md --top 3
"$continuum" run text/find --text "Rust, rust and RUST" --pattern rust --options ignore-case
"$continuum" run kv/put --key greeting --value '{"text": "hello"}'
"$continuum" run kv/get --key greeting
"$continuum" run kv/incr --key runs
"$continuum" run json/query --document '{"plugins": [{"name": "text"}]}' --path 'plugins[0].name'
# Composition: json/map calls text/convert-case once per item, as the same caller.
"$continuum" run json/map --command text/convert-case --field text --items "hello world" --items "grid of commands" --extra '{"to": "kebab"}'
# Bad input is refused before the plugin runs, with the path of the bad value.
"$continuum" run text/stats --text hi --top -1 || true
set +x

step "benchmark: raw wasmtime vs the reflected call"
"$continuum" bench --iterations 5000
