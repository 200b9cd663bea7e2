#!/usr/bin/env bash
# Sets everything up and runs the main job end to end: toolchain target, host build, plugin
# builds, signed alloys of the first-party plugins installed into the data dir
# ($CONTINUUM_HOME, else ~/.local/share/continuum), a tour of commands, and the call-overhead
# benchmark.
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

step "sign the first-party plugins: key, trust, pack (runs each proof suite), install"
# The publisher key lives in the data dir; trusting it lets its alloys install without overrides,
# and pre-approves the host capabilities first-party plugins use (each import is a capability).
"$continuum" key list | grep -q '^first-party ' || "$continuum" key generate first-party
publisher=$("$continuum" key export first-party)
"$continuum" trust list | grep -q "$publisher" || \
  "$continuum" trust add "$publisher" --name first-party --approve host:log,host:store,host:commands,host:events
mkdir -p build/alloys
for p in text kv json; do
  "$continuum" plugin pack "build/plugins/$p" --key first-party -o "build/alloys/$p.alloy"
  if "$continuum" plugin list | grep -q "^$p "; then
    # Re-running setup re-installs the same version, possibly rebuilt: allow it explicitly.
    "$continuum" plugin upgrade "build/alloys/$p.alloy" --allow-downgrade
  else
    "$continuum" plugin install "build/alloys/$p.alloy"
  fi
done
"$continuum" plugin verify build/alloys/text.alloy
"$continuum" plugin inspect text

step "what can I call?"
"$continuum" commands

step "generated help: continuum run text/summarize --help"
"$continuum" run text/summarize --help

step "run commands"
set -x
"$continuum" run text/summarize --text @examples/data/grid.txt --max-words 45
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

step "grants: who may call what"
# A caller identified by a key sees only public commands until the owner grants it more.
"$continuum" key list | grep -q '^demo-caller ' || "$continuum" key generate demo-caller >/dev/null
caller=$("$continuum" key export demo-caller)
"$continuum" commands --as "$caller"
token=$("$continuum" grant issue --to "$caller" --cap kv/get --cap kv/incr --expires 1h)
show() { echo "+ continuum $*" | sed "s/$token/\$token/"; "$continuum" "$@"; }
show commands --as "$token"
show run --as "$token" kv/incr --key runs
show run --as "$token" kv/delete --key runs || true   # owner-only, never granted
show grant revoke "$caller"
show run --as "$token" kv/get --key runs || true      # revoked

step "the event log: every call above is recorded, chained and signed"
"$continuum" events tail -n 6
"$continuum" events verify
"$continuum" usage --by command

step "benchmark: raw wasmtime vs the reflected call, grants, the event log"
"$continuum" bench --iterations 5000
