#!/usr/bin/env bash
# Install what the language bindings' test suites need (bindings/python, bindings/ruby, bindings/go),
# on top of scripts/install-deps.sh. Idempotent: each step is skipped when its packages are present.
# Debian 12; run as root (or with sudo). Go itself (>= 1.25, for pgx v5.12) must already be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(ruby ruby-ffi ruby-pg ruby-minitest ruby-sequel)
PIP_PACKAGES=(pytest "psycopg[binary]" psycopg_pool psycopg2-binary SQLAlchemy)
PIP_MODULES=(pytest psycopg psycopg_pool psycopg2 sqlalchemy)

LOG_TAG=install-deps-bindings
# shellcheck source=scripts/deps-lib.sh
. "$(dirname "$0")/deps-lib.sh"

# Ruby, ruby-ffi, pg, minitest, Sequel from Debian; the Python drivers for the psycopg /
# psycopg2 / SQLAlchemy integrations.
apt_ensure "${APT_PACKAGES[@]}"
pip_ensure "${PIP_MODULES[*]}" "${PIP_PACKAGES[@]}"
PY=${PYTHON:-python3}

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
