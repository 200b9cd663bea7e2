#!/usr/bin/env bash
# Measures time to first use the way a newcomer meets it: a fresh clone of HEAD, an empty cargo
# target dir, empty crate and model-wheel download caches and a fresh data dir, then the README's two
# commands one after the other (scripts/setup.sh, then scripts/test.sh). Writes the wall-clock
# seconds of each and the slowest build units (from `cargo --timings`) to
# docs/time-to-first-use.json, which scripts/bench.sh puts in docs/benchmarks.md.
#
#   scripts/time-to-first-use.sh                      # 25–70 min on 2 cores: run it alone
#   scripts/time-to-first-use.sh --keep-target DIR    # builds in DIR (empty or missing) and keeps it
#
# Left as they are (they live outside the repository and a test may not wipe them): the
# Debian packages, the Rust toolchain and its wasm targets, and the Python/JavaScript guest
# toolchains of scripts/authoring-tools.sh; the figures record which of them were already
# there. Needs ≈ 20 GiB free under $TMPDIR. Each command's whole log and the timing pages are
# kept in build/time-to-first-use/. --keep-target leaves the build behind, e.g. to warm CI's
# target dir with the same compile.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$PWD/docs/time-to-first-use.json"
work="$(mktemp -d)"
target="$work/target"
if [ "${1:-}" = --keep-target ]; then
    target=$(realpath -m "${2:?usage: scripts/time-to-first-use.sh [--keep-target DIR]}")
    if [ -n "$(ls -A "$target" 2>/dev/null)" ]; then
        echo "time-to-first-use: $target is not empty; a first use starts from an empty target dir" >&2
        exit 2
    fi
fi

# What a fresh machine would also lack, present or not before this run.
warm=()
cold=()
note() { if eval "$2" >/dev/null 2>&1; then warm+=("$1"); else cold+=("$1"); fi; }
note "Debian packages" "command -v cmake && command -v chromium && command -v wasm-ld"
note "wasm targets" "rustup target list --installed | grep -qx wasm32-wasip2"
note "guest toolchains" "[ -x '$HOME/.local/bin/componentize-py' ] && { command -v componentize-js || [ -x '$HOME/.local/bin/componentize-js' ]; }"
KEEP="$PWD/build/time-to-first-use"
keep_logs() { # the logs and timing pages outlive the work folder
    mkdir -p "$KEEP"
    cp "$work"/*.log "$KEEP"/ 2>/dev/null || true
    cp -r "$target/cargo-timings" "$KEEP"/ 2>/dev/null || true
    echo "time-to-first-use: logs kept in $KEEP" >&2
}
trap 'keep_logs; rm -rf "$work"' EXIT

# A cargo that adds --timings to every build and test, so each leaves a per-unit profile.
mkdir -p "$work/bin"
real_cargo="$(command -v cargo)" || { echo "time-to-first-use: cargo not found (install Rust with rustup)" >&2; exit 1; }
cat > "$work/bin/cargo" <<EOF
#!/usr/bin/env bash
case "\$1" in build|test) sub=\$1; shift; exec "$real_cargo" "\$sub" --timings "\$@" ;; esac
exec "$real_cargo" "\$@"
EOF
chmod +x "$work/bin/cargo"

git clone -q "$PWD" "$work/clone"
commit="$(git -C "$work/clone" rev-parse --short HEAD)"
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
if [ "$target" = "$work/target" ]; then
    export CARGO_HOME="$work/cargo-home"
else
    # A kept build names its crates' sources by path (build scripts rerun when those vanish):
    # it needs the user's own crate cache, which is then measured as it is.
    note "crate downloads" "compgen -G '${CARGO_HOME:-$HOME/.cargo}/registry/cache/*/*.crate'"
fi
export PATH="$work/bin:$PATH" CARGO_TARGET_DIR="$target" CONTINUUM_HOME="$work/home" \
    CONTINUUM_WHEEL_CACHE="$work/wheels"

phase() { # name script: runs it in the clone, prints and records its seconds
    local started=$SECONDS
    echo "time-to-first-use: $1 ($2)"
    # Each log line carries the seconds since the command started: where its time went.
    (cd "$work/clone" && "$2") 2>&1 | while IFS= read -r line; do printf '%5d %s\n' $((SECONDS - started)) "$line"; done \
        > "$work/$1.log" || { tail -30 "$work/$1.log" >&2; echo "time-to-first-use: $2 failed" >&2; exit 1; }
    echo $((SECONDS - started)) > "$work/$1.seconds"
    echo "time-to-first-use: $1 took $(cat "$work/$1.seconds") s"
}
phase setup scripts/setup.sh
phase test scripts/test.sh

python3 - "$work" "$target" "$OUT" "$commit" "$(IFS=,; echo "${warm[*]}")" "$(IFS=,; echo "${cold[*]}")" <<'EOF'
import datetime, glob, json, os, re, sys
work, target, out, commit, warm, cold = sys.argv[1:]
units = []
for page in sorted(glob.glob(os.path.join(target, "cargo-timings", "cargo-timing-*.html"))):
    data = re.search(r"const UNIT_DATA = (\[.*?\]);\n", open(page).read(), re.S)
    units += json.loads(data.group(1)) if data else []
slowest = sorted(units, key=lambda u: -u["duration"])[:12]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
figures = {
    "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}",
    "commit": commit,
    "machine": f"{os.cpu_count()} cores ({cpu})",
    "setup_s": int(open(os.path.join(work, "setup.seconds")).read()),
    "test_after_setup_s": int(open(os.path.join(work, "test.seconds")).read()),
    "build_unit_seconds_summed": round(sum(u["duration"] for u in units)),
    "slowest_units": [{"unit": f'{u["name"]} {u["version"]} {u.get("target", "").strip()}'.strip(),
                       "mode": u.get("mode", ""), "seconds": round(u["duration"], 1)} for u in slowest],
    "warm_outside_the_clone": [w for w in warm.split(",") if w] + ["the Rust toolchain"],
    "installed_by_this_run": [c for c in cold.split(",") if c],
}
json.dump(figures, open(out, "w"), indent=1)
open(out, "a").write("\n")
print(json.dumps(figures, indent=1))
EOF
