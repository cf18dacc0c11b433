#!/usr/bin/env bash
# Headless Chromium for tests/test_html_browser.py (the HTML report opened, screenshotted, console checked).
# Debian's package; idempotent, quiet when already installed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(chromium --version 2>/dev/null || true)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q
$SUDO apt-get install -y -q chromium fonts-dejavu-core
chromium --version
