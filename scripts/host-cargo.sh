#!/usr/bin/env bash
# Builds or tests the host's crates (continuum, core, node, gpu and the test crate) in release,
# for scripts/setup.sh, scripts/test.sh and CI alike: one package selection, so one feature set
# and one build of every dependency.
#
#   scripts/host-cargo.sh build [--deny-warnings] [cargo args…]   the binaries
#   scripts/host-cargo.sh test [--deny-warnings] [cargo args…]    every test target, then runs them
#
# The lints: Continuum's crates are compiled by `clippy-driver` (the workspace's rustc wrapper),
# which lints them as they compile, against the release build's own dependencies. A separate
# `cargo clippy` pass would type-check all ≈ 580 dependencies a second time (5.4 min of the test
# command on a slow 2-core VM). Every build of the host goes through the same wrapper: cargo
# keeps a crate compiled under another wrapper as a separate artifact, so a plain-rustc binary
# beside linted tests would compile each of Continuum's crates twice (≈ 3.5 min of the test
# command). --deny-warnings (the test command) fails on any warning in Continuum's crates,
# including those cargo replays from an earlier compile, so set-up never fails on a lint a newer
# toolchain adds and the test command always does.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
case "$mode" in
  build | test) shift ;;
  *) echo "usage: scripts/host-cargo.sh build|test [--deny-warnings] [cargo args…]" >&2; exit 2 ;;
esac
deny=false
if [ "${1:-}" = --deny-warnings ]; then deny=true; shift; fi

# Colours only for a terminal, as cargo's own output.
format=json-diagnostic-rendered-ansi
[ -t 2 ] || format=json

packages=(-p continuum -p continuum-core -p continuum-node -p continuum-gpu -p continuum-tests)

# Runs cargo with JSON messages: prints each diagnostic as rustc renders it and, with
# --deny-warnings, fails when there was any.
compile() {
  local verdict=0 subcommand=$1
  shift
  # Extra arguments go last: after a `--` they are the test binaries'.
  cargo "$subcommand" --release "${packages[@]}" --message-format="$format" "$@" \
    | python3 -c '
import json, sys
deny = sys.argv[1] == "true"
found = 0
for line in sys.stdin:
    if not line.startswith("{"):
        sys.stdout.write(line)
        continue
    message = json.loads(line)
    if message.get("reason") != "compiler-message":
        continue
    diagnostic = message["message"]
    sys.stderr.write(diagnostic.get("rendered") or diagnostic["message"])
    if diagnostic["level"] in ("warning", "error"):
        found += 1
if deny and found:
    sys.exit(f"host-cargo: {found} warning(s) or error(s) in Continuum'"'"'s crates; the test command denies them")
' "$deny" || verdict=$?
  return "$verdict"
}

driver="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)"
[ -n "$driver" ] || { echo "host-cargo: clippy-driver not found; install it with: rustup component add clippy" >&2; exit 1; }
# The lint levels come from [workspace.lints] alone. CLIPPY_ARGS is part of each crate's
# fingerprint, so every build sets the same value and finds the others' crates up to date.
export RUSTC_WORKSPACE_WRAPPER="$driver" CLIPPY_ARGS=""

if [ "$mode" = build ]; then
  compile build "$@"
else
  # The binaries first: the suite runs them, and only their compile reports rustc's missing_docs.
  compile build
  compile test --no-run "$@"
  cargo test --release "${packages[@]}" "$@"
fi
