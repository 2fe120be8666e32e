#!/usr/bin/env bash
# Make sure headless Chromium is installed for the browser test of the /ops page
# (tests/integration/test_ops_page.py). Installs Debian's `chromium` package when
# /usr/bin/chromium is missing, without its desktop recommends (udev, upower, printing)
# but with the fonts it recommends, so screenshots have text. Runs `apt-get update` only
# if the install fails without it. Run as root (CI does).
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ ! -x "$CHROMIUM" ]]; then
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "ensure-chromium: $CHROMIUM is missing; run this script as root to install it" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    install=(apt-get install -y --no-install-recommends chromium fonts-liberation fonts-dejavu-core)
    echo "ensure-chromium: installing Debian's chromium package"
    if ! "${install[@]}"; then
        echo "ensure-chromium: install failed; updating the package lists and trying again"
        apt-get update
        "${install[@]}"
    fi
fi

if [[ ! -x "$CHROMIUM" ]]; then
    echo "ensure-chromium: $CHROMIUM is still missing after the install" >&2
    exit 1
fi

# The Debian launcher prints shell noise on some machines; keep only the version line.
"$CHROMIUM" --version 2>/dev/null
