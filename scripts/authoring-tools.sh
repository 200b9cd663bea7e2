#!/usr/bin/env bash
# Installs the guest toolchains `continuum plugin build` uses for Python and JavaScript, pinned,
# when missing: componentize-py into a virtual environment (stock Debian refuses a system-wide
# `pip install`, PEP 668), linked as ~/.local/bin/componentize-py; componentize-js (npm, global;
# under ~/.local for a non-root user — make sure ~/.local/bin is on PATH). The same environment
# holds the Python clients the tests drive the node with: the official MCP SDK (`mcp`), and
# `jsonschema` and `openapi-spec-validator` for the typed API, `cryptography` for the receipt
# verifier in docs/examples, and Playwright (its Python package only: the console tests point
# it at Debian's chromium, so no browser is downloaded).
set -euo pipefail

py_version=0.25.1
js_version=0.23.0
venv="${CONTINUUM_TOOLS_VENV:-$HOME/.local/share/continuum/tools-venv}"
python_packages=("componentize-py==$py_version" "mcp==2.3.0" "jsonschema==4.25.1" "openapi-spec-validator==0.7.2" "cryptography==50.0.2" "playwright==1.65.2")

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || { echo "error: python3 -m venv failed (apt install python3-venv)" >&2; exit 1; }
fi
stamp="$venv/.installed"
if [ "$(cat "$stamp" 2>/dev/null)" != "${python_packages[*]}" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${python_packages[@]}"
  echo "${python_packages[*]}" > "$stamp"
fi
mkdir -p "$HOME/.local/bin"
ln -sf "$venv/bin/componentize-py" "$HOME/.local/bin/componentize-py"

if ! componentize-js --version 2>/dev/null | grep -q "$js_version"; then
  command -v npm >/dev/null || { echo "error: npm is needed for componentize-js (apt install npm)" >&2; exit 1; }
  prefix=()
  [ "$(id -u)" -ne 0 ] && prefix=(--prefix "$HOME/.local")
  npm install --silent --global "${prefix[@]}" "@bytecodealliance/componentize-js@$js_version"
fi
