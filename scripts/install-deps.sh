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

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "install-deps: must run as root (or have sudo)" >&2; exit 1
  fi
fi

log() { echo "install-deps: $*"; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  aptlog=$(mktemp)
  if ! { $SUDO apt-get update -qq && \
         $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
    cat "$aptlog" >&2; rm -f "$aptlog"; exit 1
  fi
  rm -f "$aptlog"
else
  log "apt packages present"
fi

# The rig runs its own server; a packaged cluster left running is harmless but not needed.
PY=${PYTHON:-python3}
need_pip=0
if ! "$PY" -c 'import importlib.util, sys; sys.exit(0 if all(importlib.util.find_spec(m) for m in sys.argv[1:]) else 1)' \
     "${PIP_MODULES[@]}" >/dev/null 2>&1; then
  need_pip=1
fi
if [ "$need_pip" -eq 1 ]; then
  log "pip install ${PIP_PACKAGES[*]} (for $($PY -c 'import sys; print(sys.executable)'))"
  piplog=$(mktemp)
  if ! "$PY" -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" >"$piplog" 2>&1; then
    if grep -q "externally-managed-environment" "$piplog"; then
      "$PY" -m pip install -q --disable-pip-version-check --break-system-packages "${PIP_PACKAGES[@]}" \
        >"$piplog" 2>&1 || { cat "$piplog" >&2; rm -f "$piplog"; exit 1; }
    else
      cat "$piplog" >&2; rm -f "$piplog"; exit 1
    fi
  fi
  rm -f "$piplog"
else
  log "python packages present"
fi

# Sanity: the rig needs a PAM-enabled postgres and pam_exec.
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bindir" ] || ! ldd "$bindir/postgres" | grep -q libpam; then
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
