#!/usr/bin/env bash
# Install what the proxy's test suite (tests/proxy) and benchmark (bench/proxy.py) need, on top of
# scripts/install-deps.sh (PostgreSQL, psql, pgbench, the rig). Idempotent: each step is skipped when
# what it installs is present. Debian 12; run as root (or with sudo). Needs Java 17 + Maven, Node and
# Go (>= 1.23) already on the machine (as scripts/install-deps-bindings.sh does for Go).
#   apt:   PHP CLI with pdo_pgsql/pgsql, PgBouncer (benchmark), libpq5 (pure-Python psycopg)
#   pip:   .venv at the repo root: pytest, asyncpg, psycopg (pure Python, uses the system libpq)
#   npm:   pg (node-postgres, pure JS) into tests/proxy/node
#   Maven: pgjdbc + HikariCP (tests/proxy/jdbc/pom.xml); the tests then run offline
#   Go:    pgx v5 (pure Go, CGO_ENABLED=0) for tests/proxy/pgx
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

APT_PACKAGES=(php-cli php-pgsql pgbouncer libpq5 python3-venv openjdk-17-jdk-headless maven nodejs npm)
LOG_TAG=install-deps-proxy
# shellcheck source=scripts/deps-lib.sh
. "$(dirname "$0")/deps-lib.sh"

# Tools that may have come with the machine from elsewhere (e.g. a newer Node or Java) count as present.
need=()
for p in "${APT_PACKAGES[@]}"; do
  case $p in
    openjdk-17-jdk-headless) command -v javac >/dev/null 2>&1 && continue ;;
    maven) command -v mvn >/dev/null 2>&1 && continue ;;
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  need+=("$p")
done
apt_ensure "${need[@]}"
# Debian starts a pgbouncer service on install; the benchmark runs its own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet pgbouncer 2>/dev/null; then
  $SUDO systemctl disable --now pgbouncer >/dev/null 2>&1 || true
fi

# Python: the repository's virtualenv (scripts/venv.sh), shared with the other suites.
pip_ensure "pytest asyncpg psycopg" pytest asyncpg psycopg
# The proxy tests run pure-Python psycopg (it loads the system libpq through ctypes) even where
# psycopg[binary] is installed for the injection tests: PSYCOPG_IMPL=python selects it.
PSYCOPG_IMPL=python "$VIRTUAL_ENV/bin/python3" -c 'import psycopg; assert psycopg.pq.__impl__ == "python", psycopg.pq.__impl__' \
  || { echo "$LOG_TAG: pure-Python psycopg does not load (is libpq5 installed?)" >&2; exit 1; }

# node-postgres.
if [ -f tests/proxy/node/node_modules/pg/package.json ]; then
  log "npm packages present"
else
  log "npm install (tests/proxy/node)"
  (cd tests/proxy/node && npm install --no-audit --no-fund --silent)
fi

# pgjdbc + HikariCP: resolve into the local Maven repository and write the class path the tests use.
if [ -s tests/proxy/jdbc/classpath.txt ] && \
   (cd tests/proxy/jdbc && mvn -o -q -B dependency:build-classpath -Dmdep.outputFile=classpath.txt >/dev/null 2>&1); then
  log "maven artifacts present"
else
  log "mvn dependency:build-classpath (tests/proxy/jdbc)"
  (cd tests/proxy/jdbc && mvn -q -B dependency:build-classpath -Dmdep.outputFile=classpath.txt)
fi

# pgx.
if ! command -v go >/dev/null 2>&1; then
  echo "$LOG_TAG: go not found (needed for the pgx client)" >&2; exit 1
fi
if (cd tests/proxy/pgx && CGO_ENABLED=0 GOFLAGS=-mod=mod GOPROXY=off go build -o /dev/null . >/dev/null 2>&1); then
  log "go modules present"
else
  log "go mod download (tests/proxy/pgx)"
  (cd tests/proxy/pgx && go mod download)
fi

log "ok (php $(php -r 'echo PHP_VERSION;'), pgbouncer $(pgbouncer --version 2>/dev/null | head -1 | awk '{print $NF}'), node $(node --version), $(go version | awk '{print $3}'))"
