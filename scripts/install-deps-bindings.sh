#!/usr/bin/env bash
# Install what the language bindings' test suites need (bindings/python, bindings/ruby, bindings/go),
# on top of scripts/install-deps.sh. Idempotent: each step is skipped when its packages are present.
# Debian 12; run as root (or with sudo). Go itself (>= 1.25, for pgx v5.12) must already be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(ruby ruby-ffi ruby-pg ruby-minitest ruby-sequel)
PIP_PACKAGES=(pytest "psycopg[binary]" psycopg_pool psycopg2-binary SQLAlchemy)
PIP_MODULES=(pytest psycopg psycopg_pool psycopg2 sqlalchemy)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "install-deps-bindings: must run as root (or have sudo)" >&2; exit 1
  fi
fi
log() { echo "install-deps-bindings: $*"; }

# Ruby, ruby-ffi, pg, minitest, Sequel from Debian.
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

# Python drivers for the psycopg / psycopg2 / SQLAlchemy integrations.
PY=${PYTHON:-python3}
if "$PY" -c 'import importlib.util, sys; sys.exit(0 if all(importlib.util.find_spec(m) for m in sys.argv[1:]) else 1)' \
     "${PIP_MODULES[@]}" >/dev/null 2>&1; then
  log "python packages present"
else
  log "pip install ${PIP_PACKAGES[*]}"
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
fi

# Go modules (pgx v5 and its dependencies) into the module cache.
if ! command -v go >/dev/null 2>&1; then
  echo "install-deps-bindings: go not found (Go >= 1.25 is needed for bindings/go)" >&2; exit 1
fi
if (cd bindings/go && GOFLAGS=-mod=mod GOPROXY=off go list -deps -test ./... >/dev/null 2>&1); then
  log "go modules present"
else
  log "go mod download (bindings/go)"
  (cd bindings/go && go mod download)
fi
log "ok (ruby $(ruby -e 'print RUBY_VERSION'), $(go version | awk '{print $3}'), python $("$PY" -c 'import platform; print(platform.python_version())'))"
