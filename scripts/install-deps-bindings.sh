#!/usr/bin/env bash
# Install what the language bindings' test suites need (bindings/python, bindings/ruby, bindings/go,
# bindings/node, bindings/php), on top of scripts/install-deps.sh. Idempotent: each step is skipped
# when its packages are present. Debian 12; run as root (or with sudo). Go itself (>= 1.25, for
# pgx v5.12) must already be installed; Node.js comes from apt when no node (>= 18) is on PATH.
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
# Node.js (Debian's nodejs + npm when there is none) and the npm packages of bindings/node (koffi,
# pg, typescript for the type check) from its lock file into its own node_modules; npm ci also
# fills the npm cache, from which the tests install the packed package offline.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_ensure nodejs npm
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  echo "install-deps-bindings: node $(node --version) is too old (bindings/node needs >= 18)" >&2; exit 1
fi
if (cd bindings/node && npm ls --all --silent >/dev/null 2>&1 &&
    node -e 'for (const m of ["koffi", "pg", "typescript"]) require.resolve(m)' >/dev/null 2>&1); then
  log "npm packages present (bindings/node)"
else
  log "npm ci (bindings/node)"
  # No install scripts: koffi loads its prebuilt binary from @koromix/koffi-<platform>.
  (cd bindings/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
# The suites (and scripts/test-packages.sh) install the packed package offline into a fresh folder:
# npm then resolves koffi, its prebuilt binary for this platform (@koromix/koffi-<platform>-<arch>,
# an optional dependency) and pg from the cache's package documents, which `npm ci` does not
# store. One install into a scratch folder puts them there.
NODE_DEPS=$(node -p 'const p = require("./bindings/node/package-lock.json").packages;
  ["koffi", "pg"].map((m) => m + "@" + p["node_modules/" + m].version).join(" ")')
NODE_SCRATCH=$(mktemp -d)
if (cd "$NODE_SCRATCH" && echo '{"private": true}' > package.json &&
    # shellcheck disable=SC2086
    npm install --offline --ignore-scripts --no-audit --no-fund --loglevel=error $NODE_DEPS >/dev/null 2>&1 &&
    [ -d node_modules/@koromix ]); then
  log "npm cache holds $NODE_DEPS"
else
  log "npm cache: $NODE_DEPS"
  # shellcheck disable=SC2086
  (cd "$NODE_SCRATCH" && rm -rf node_modules package-lock.json &&
    npm install --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error $NODE_DEPS >/dev/null)
fi
rm -rf "$NODE_SCRATCH"

# PHP: the CLI with FFI (php8.2-common), pdo_pgsql and pgsql (php8.2-pgsql), opcache (preload),
# php-cgi, a non-CLI SAPI where ffi.enable=preload restricts FFI as under php-fpm, and Composer
# (the tests install the package from a path repository, offline).
apt_ensure php-cli php-pgsql php-cgi composer
if ! php -r 'exit(extension_loaded("ffi") && extension_loaded("pdo_pgsql") && extension_loaded("pgsql") ? 0 : 1);'; then
  echo "install-deps-bindings: php lacks ffi, pdo_pgsql or pgsql" >&2; exit 1
fi

log "ok (ruby $(ruby -e 'print RUBY_VERSION'), $(go version | awk '{print $3}'), python $("$PY" -c 'import platform; print(platform.python_version())'), node $(node --version), php $(php -r 'echo PHP_VERSION;'))"
