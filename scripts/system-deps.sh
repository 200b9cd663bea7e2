#!/usr/bin/env bash
# Installs the system packages the native build needs, when missing: cmake, clang and
# libclang-dev (llama-cpp-2 builds llama.cpp and generates its bindings), unzip (model wheels);
# and for the C example (a plain WASI program): wasi-libc, lld (wasm-ld) and clang's wasm32
# runtime (the package named after the installed clang's major version); libfaketime for a
# test peer with a skewed clock; iproute2 and nftables for the tests' network namespaces;
# chromium for the web console's browser tests.
set -euo pipefail

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
updated=""
install() {
  [ $# -eq 0 ] && return 0
  echo "installing system packages: $*"
  if ! command -v apt-get >/dev/null; then
    echo "error: install $* with your package manager (needed to build llama.cpp and the C example)" >&2
    exit 1
  fi
  [ -n "$updated" ] || { $sudo apt-get update -qq; updated=1; }
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v clang >/dev/null || missing+=(clang)
command -v unzip >/dev/null || missing+=(unzip)
compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null || compgen -G "/usr/lib/*/libclang*.so*" >/dev/null || missing+=(libclang-dev)
[ -f /usr/include/wasm32-wasi/stdio.h ] || missing+=(wasi-libc)
command -v wasm-ld >/dev/null || compgen -G "/usr/bin/wasm-ld*" >/dev/null || missing+=(lld)
# The market tests run a peer whose clock is hours off (libfaketime), as a skewed machine would be.
compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" >/dev/null || missing+=(libfaketime)
# The discovery tests build their own networks: namespaces and veth pairs (iproute2), NAT (nftables).
command -v ip >/dev/null || missing+=(iproute2)
command -v nft >/dev/null || missing+=(nftables)
# The console tests drive a real browser: Debian's headless-capable Chromium.
[ -x /usr/bin/chromium ] || missing+=(chromium)
install "${missing[@]}"

clang_major=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
compgen -G "/usr/lib/llvm-$clang_major/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a" >/dev/null \
  || install "libclang-rt-$clang_major-dev-wasm32"
