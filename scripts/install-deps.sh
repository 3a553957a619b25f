#!/usr/bin/env bash
# Install what the liblakebase test rig (tests/rig) and its self-tests need (--demo: only what
# scripts/demo.sh needs).
# Idempotent and quiet: apt is skipped when every package is already installed,
# pip when every module already imports. Debian 12; run as root (or with sudo).
set -euo pipefail

APT_PACKAGES=(
  postgresql postgresql-contrib libpq-dev   # server (built --with-pam), psql, libpq headers
  libpam-modules libpam-runtime             # pam_exec.so, pam_permit.so
  openssl ca-certificates pkg-config util-linux   # certificates; setpriv (util-linux)
  python3 python3-pip python3-venv           # /usr/bin/python3 runs the PAM checker; .venv for the tests
  make gcc                                  # the rig's PostgreSQL extension (tests/rig/pg_ext, PGXS)
)
# The official-SDK cross-check (tests/rig_selftest/test_sdk_crosscheck.py) is pinned to this version.
SDK_PIN=0.167.0
PIP_PACKAGES=(pytest "databricks-sdk==$SDK_PIN" "psycopg[binary]" psycopg2-binary)
PIP_MODULES=(pytest databricks.sdk psycopg psycopg2)

# --demo: only what scripts/demo.sh uses (the rig: PostgreSQL, PAM, TLS; no test tools).
DEMO=0
[ "${1:-}" = "--demo" ] && DEMO=1
TEST_APT_PACKAGES=(ruby ruby-pg)            # Ruby pg through the LD_PRELOAD injection tests

LOG_TAG=install-deps
# shellcheck source=scripts/deps-lib.sh
. "$(dirname "$0")/deps-lib.sh"

if [ "$DEMO" = 1 ]; then apt_ensure "${APT_PACKAGES[@]}"; else apt_ensure "${APT_PACKAGES[@]}" "${TEST_APT_PACKAGES[@]}"; fi
# Server headers + PGXS for the rig's lakebase_rig_auth extension, for the server major installed above.
pg_major=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 | awk -F/ '{print $(NF-1)}')
if [ -n "$pg_major" ]; then
  apt_ensure "postgresql-server-dev-$pg_major"
fi

# The test command's lint gates need rustfmt and clippy (rustup components).
for c in rustfmt clippy; do
  [ "$DEMO" = 1 ] && break
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    log "rustup component add $c"
    rustup component add "$c" >/dev/null 2>&1 || { echo "install-deps: cannot install the $c component" >&2; exit 1; }
  fi
done

if [ "$DEMO" = 0 ]; then
  pip_ensure "${PIP_MODULES[*]}" "${PIP_PACKAGES[@]}"
  # Another databricks-sdk version already installed: replace it with the pinned one.
  PY=${PYTHON:-python3}
  if ! "$PY" -c 'import sys, databricks.sdk.version as v; sys.exit(v.__version__ != sys.argv[1])' "$SDK_PIN" \
       >/dev/null 2>&1; then
    pip_ensure "databricks.sdk.__not_a_module__" "databricks-sdk==$SDK_PIN"  # a module that never imports: install
  fi
fi

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
if [ ! -e "$(dirname "$bindir")/lib/pgxs/src/makefiles/pgxs.mk" ]; then
  echo "install-deps: PGXS not found (postgresql-server-dev-$pg_major)" >&2; exit 1
fi
if [ "$DEMO" = 1 ]; then
  log "ok ($bindir; demo: no test tools)"
else
  log "ok ($bindir, databricks-sdk $("$PY" -c 'import databricks.sdk.version as v; print(v.__version__)'))"
fi
