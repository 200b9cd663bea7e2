#!/usr/bin/env bash
# Installs the guest toolchains `continuum plugin build` uses for Python and JavaScript, pinned,
# when missing: componentize-py (pip) and componentize-js (npm, global; under ~/.local for a
# non-root user — make sure ~/.local/bin is on PATH).
set -euo pipefail

py_version=0.25.1
js_version=0.23.0

if [ "$(componentize-py --version 2>/dev/null)" != "componentize-py $py_version" ]; then
  command -v pip >/dev/null || { echo "error: pip is needed for componentize-py (apt install python3-pip)" >&2; exit 1; }
  pip install --quiet --disable-pip-version-check "componentize-py==$py_version"
fi

if ! componentize-js --version 2>/dev/null | grep -q "$js_version"; then
  command -v npm >/dev/null || { echo "error: npm is needed for componentize-js (apt install npm)" >&2; exit 1; }
  prefix=()
  [ "$(id -u)" -ne 0 ] && prefix=(--prefix "$HOME/.local")
  npm install --silent --global "${prefix[@]}" "@bytecodealliance/componentize-js@$js_version"
fi
