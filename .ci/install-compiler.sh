#!/usr/bin/env bash
# A C/C++ compiler (and Python's headers) for torch.compile's CPU backend: the compiled recipes (compile,
# compile-encoder, compile-bf16) and int8-inductor build their kernels with it, and their tests skip without one.
# Debian's packages; idempotent, quiet when already installed.  Without apt-get it says so and leaves them to skip
# (.ci/run then fails on those skips: CI must run them).
set -euo pipefail
has_headers() { python3 -c "import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))"; }
pkgs=()
command -v g++ >/dev/null 2>&1 && command -v gcc >/dev/null 2>&1 || pkgs+=(g++)
has_headers || pkgs+=(python3-dev)
if [ ${#pkgs[@]} -eq 0 ]; then
    echo "C++ compiler already installed: $(g++ --version | head -1)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install ${pkgs[*]} by hand; without them the compiled recipes' tests skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q
$SUDO apt-get install -y -q "${pkgs[@]}"
g++ --version | head -1
