#!/usr/bin/env bash
# Install what `make dist` (scripts/dist.sh) and scripts/test-packages.sh need, on top of
# scripts/install-deps.sh and scripts/install-deps-bindings.sh (Ruby, Node and koffi in the npm
# cache, PHP and Composer). Idempotent; Debian 12, root or passwordless sudo. cargo-deb itself is
# pinned in scripts/dist.sh and built into target/tools on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG_TAG=install-deps-packages
# shellcheck source=scripts/deps-lib.sh
. "$(dirname "$0")/deps-lib.sh"

# dpkg-dev: dpkg-shlibdeps (cargo-deb's $auto dependencies) and dpkg-architecture; binutils:
# objcopy, readelf, objdump; pkgconf for the -dev package's test; python3-venv for the fresh
# virtualenv the wheel is installed into; zlib for cargo-deb's build; php-zip for Composer's
# artifact repository (the Composer package's test).
apt_ensure dpkg-dev binutils pkgconf python3-venv zlib1g-dev php-zip
# setuptools and wheel build the wheel (no build isolation: nothing is fetched while building).
pip_ensure "setuptools wheel" "setuptools>=64" "wheel>=0.40"
log "ok"
