#!/usr/bin/env bash
# Install what the liblakebase test rig (tests/rig) and its self-tests need.
# Idempotent and quiet: apt is skipped when every package is already installed,
# pip when every module already imports. Debian 12; run as root (or with sudo).
set -euo pipefail

APT_PACKAGES=(
  postgresql postgresql-contrib libpq-dev   # server (built --with-pam), psql, libpq headers
  libpam-modules libpam-runtime             # pam_exec.so, pam_permit.so
  openssl ca-certificates pkg-config util-linux   # certificates; setpriv (util-linux)
  python3 python3-pip                       # /usr/bin/python3 runs the PAM checker
  ruby ruby-pg                              # Ruby pg through the LD_PRELOAD injection tests
)
PIP_PACKAGES=(pytest databricks-sdk "psycopg[binary]" psycopg2-binary)
PIP_MODULES=(pytest databricks.sdk psycopg psycopg2)

LOG_TAG=install-deps
# shellcheck source=scripts/deps-lib.sh
. "$(dirname "$0")/deps-lib.sh"

apt_ensure "${APT_PACKAGES[@]}"

pip_ensure "${PIP_MODULES[*]}" "${PIP_PACKAGES[@]}"

# Sanity: the rig needs a PAM-enabled postgres and pam_exec.
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bindir" ] || ! ldd "$bindir/postgres" | grep libpam >/dev/null; then
  echo "install-deps: no PAM-enabled PostgreSQL server found under /usr/lib/postgresql" >&2; exit 1
fi
found_pam_exec=0
for f in /lib/*/security/pam_exec.so /lib/security/pam_exec.so /usr/lib/*/security/pam_exec.so; do
  if [ -e "$f" ]; then found_pam_exec=1; fi
done
if [ "$found_pam_exec" -eq 0 ]; then
  echo "install-deps: pam_exec.so not found" >&2; exit 1
fi
log "ok ($bindir)"
