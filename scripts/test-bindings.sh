#!/usr/bin/env bash
# Run the language bindings' test suites (bindings/python: pytest, bindings/ruby: minitest,
# bindings/go: go test, bindings/node: node --test, bindings/php: php-cli) against one test rig,
# each on its installed package:
#   python: pip install bindings/python into a fresh virtualenv
#   ruby:   gem build + gem install --local into a private GEM_HOME
#   go:     go test in the module, plus a separate module that uses it through a replace directive
#   node:   npm pack + npm install --offline of the tarball into a fresh folder
#   php:    the Composer package copied into a fresh project's vendor/ (composer.json autoload)
# Assumes scripts/install-deps.sh and the library build (cargo build --release --lib) already ran.
# Prints each runner's summary; exits non-zero if any suite fails.
#
#   scripts/test-bindings.sh              every suite
#   scripts/test-bindings.sh node php     only these (python ruby go node php)
set -uo pipefail
cd "$(dirname "$0")/.."
# The suites' processes find the shared token cache (issue 15) under their own HOME: never in a
# directory the machine's session shares with other processes (XDG_RUNTIME_DIR and friends), where
# tokens of one suite, or of a rig started earlier, would be served to the next.
unset XDG_RUNTIME_DIR XDG_CACHE_HOME LAKEBASE_CACHE_DIR
# Python packages live in the repository's virtualenv (.venv), first on PATH from here on.
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ROOT=$PWD
export CARGO_TERM_COLOR=never

ALL_SUITES=(python ruby go node php)
SUITES=("$@")
[ ${#SUITES[@]} -gt 0 ] || SUITES=("${ALL_SUITES[@]}")
for s in "${SUITES[@]}"; do
  case " ${ALL_SUITES[*]} " in *" $s "*) ;; *) echo "test-bindings: unknown suite $s (${ALL_SUITES[*]})" >&2; exit 64 ;; esac
done

step() { printf '\n==> %s\n' "$*"; }
die() { echo "test-bindings: $*" >&2; exit 1; }

step "dependencies"
scripts/install-deps-bindings.sh || die "installing dependencies failed"

LIBDIR=$ROOT/target/release
if [ ! -e "$LIBDIR/liblakebase.so" ]; then
  step "build (library missing)"
  cargo build --release --lib --quiet || die "cargo build failed"
fi
[ -e "$LIBDIR/liblakebase.so.0" ] || ln -sf liblakebase.so "$LIBDIR/liblakebase.so.0"
export LAKEBASE_LIBRARY=$LIBDIR/liblakebase.so
# Each suite's process resets the fake workspace once at its start (the fake then forgets every
# token): a token left in the per-user shared cache by the suite before would be unknown to it.
# The shared cache has its own suite (tests/e2e/test_shared_cache.py).
export LAKEBASE_CACHE=off

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lakebase-bindings.XXXXXX")
RIG=$WORK/rig
cleanup() {
  python3 tests/rig/rig.py down --dir "$RIG" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "test rig"
python3 tests/rig/rig.py up --dir "$RIG" || die "the rig did not start"
# shellcheck disable=SC1091
. "$RIG/env.sh"

declare -A RESULT SECONDS_TAKEN
run_suite() { # name, log file, command...
  local name=$1 logf=$2
  shift 2
  local t0=$SECONDS
  "$@" 2>&1 | tee "$logf"
  local rc=${PIPESTATUS[0]}
  SECONDS_TAKEN[$name]=$((SECONDS - t0))
  RESULT[$name]=$rc
}

# --- Python -------------------------------------------------------------------------------------
python_suite() {
  local venv=$WORK/venv src=$WORK/python-src
  cp -r bindings/python "$src"          # build outside the checkout (pip builds in the source tree)
  rm -rf "$src/tests" "$src/build" "$src"/src/*.egg-info
  echo "pip install bindings/python (into a fresh virtualenv)"
  # pip >= 22.3 can install into a pip-less venv (saves seeding pip); else a venv with its own pip.
  if python3 -m venv --system-site-packages --without-pip "$venv" &&
     python3 -m pip --python "$venv/bin/python" --version >/dev/null 2>&1; then
    python3 -m pip --python "$venv/bin/python" install -q --disable-pip-version-check "$src" || return 1
  else
    rm -rf "$venv"
    python3 -m venv --system-site-packages "$venv" || return 1
    "$venv/bin/pip" install -q --disable-pip-version-check "$src" || return 1
  fi
  # The drivers (psycopg, psycopg2, SQLAlchemy) come from the repository's virtualenv, where
  # scripts/install-deps-bindings.sh put them: a .pth makes them visible, the package stays here.
  "$venv/bin/python" -c 'import site, sys; open(site.getsitepackages()[0] + "/lakebase-test-deps.pth", "w").write(sys.argv[1] + "\n")' \
    "$("$VIRTUAL_ENV/bin/python3" -c 'import site; print(site.getsitepackages()[0])')" || return 1
  local where
  where=$(cd "$WORK" && "$venv/bin/python" -c 'import lakebase; print(lakebase.__file__)') || return 1
  case $where in "$venv"/*) ;; *) echo "lakebase imported from $where, not the virtualenv"; return 1 ;; esac
  (cd bindings/python && "$venv/bin/python" -m pytest -p no:cacheprovider -q tests)
}

# --- Ruby ---------------------------------------------------------------------------------------
ruby_suite() {
  GEM_HOME=$WORK/gems
  GEM_PATH=$WORK/gems:$(ruby -e 'print Gem.default_path.join(":")')
  export GEM_HOME GEM_PATH
  echo "gem build lakebase.gemspec && gem install --local"
  (cd bindings/ruby && gem build -q lakebase.gemspec -o "$WORK/lakebase.gem" >/dev/null 2>&1) || return 1
  gem install --local --no-document "$WORK/lakebase.gem" || return 1
  local where
  where=$(cd "$WORK" && ruby -e 'require "lakebase"; print $LOADED_FEATURES.grep(%r{/lakebase\.rb\z}).first') || return 1
  case $where in "$WORK/gems"/*) ;; *) echo "lakebase loaded from $where, not the installed gem"; return 1 ;; esac
  (cd bindings/ruby && ruby -Itest -e 'ARGV.each { |f| require File.expand_path(f) }' test/test_*.rb)
}

# --- Go -----------------------------------------------------------------------------------------
go_suite() {
  # The module links through `pkg-config lakebase` (as with the liblakebase-dev package): a .pc
  # for the build tree, and an rpath so the test binaries find the library there.
  mkdir -p "$WORK/pkgconfig"
  sed -e "s|@PREFIX@|$ROOT|" -e "s|@LIBDIR@|$LIBDIR|" -e "s|@INCLUDEDIR@|$ROOT/include|" -e "s|@VERSION@|0|" \
    lakebase.pc.in > "$WORK/pkgconfig/lakebase.pc"
  export PKG_CONFIG_PATH=$WORK/pkgconfig
  export CGO_LDFLAGS="-Wl,-rpath,$LIBDIR"
  (cd bindings/go && go vet ./... && go test -p 1 -count=1 -v ./... > "$WORK/go-test.log" 2>&1)
  local rc=$?
  # Per-test lines and the runner's closing lines, without the full -v output.
  grep -E '^(--- |ok |FAIL|PASS$|panic:|\s+\S+_test\.go:[0-9]+:)' "$WORK/go-test.log" | grep -v -- '--- PASS' || true
  echo "$(grep -c -- '--- PASS' "$WORK/go-test.log") tests passed, $(grep -c -- '--- FAIL' "$WORK/go-test.log") failed"
  [ $rc -eq 0 ] || { tail -50 "$WORK/go-test.log"; return $rc; }

  echo "go build -tags lakebase_nopkgconfig (plain -llakebase, flags from CGO_CFLAGS/CGO_LDFLAGS)"
  (cd bindings/go && env -u PKG_CONFIG_PATH CGO_CFLAGS="-I$ROOT/include" CGO_LDFLAGS="-L$LIBDIR -Wl,-rpath,$LIBDIR" \
    go build -tags lakebase_nopkgconfig ./...) || return 1

  echo "a separate module using the Go module through a replace directive"
  local app=$WORK/goapp
  mkdir -p "$app"
  cat > "$app/main.go" <<'GO'
package main

import (
	"context"
	"fmt"
	"os"

	lakebase "github.com/liblakebase/liblakebase/bindings/go"
	"github.com/liblakebase/liblakebase/bindings/go/lakebasepgx"
)

func main() {
	ctx := context.Background()
	user := os.Getenv("RIG_USER")
	pool, err := lakebasepgx.NewPool(ctx, nil, "dbname=databricks_postgres user='"+user+"'") // default client, PG* env
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	defer pool.Close()
	var who string
	if err := pool.QueryRow(ctx, "select current_user::text").Scan(&who); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Printf("liblakebase %s: connected as %s\n", lakebase.Version(), who)
}
GO
  (cd "$app" && go mod init example.com/goapp >/dev/null 2>&1 &&
    go mod edit -require=github.com/liblakebase/liblakebase/bindings/go@v0.0.0 \
                -replace=github.com/liblakebase/liblakebase/bindings/go="$ROOT/bindings/go" &&
    go mod tidy >/dev/null 2>&1 && go build -o app . &&
    DATABRICKS_TOKEN=$RIG_PAT LAKEBASE_INSTANCE=$RIG_INSTANCE PGSSLMODE=verify-full ./app) || return 1
}

# --- Node.js ------------------------------------------------------------------------------------
node_suite() {
  local app=$WORK/node-app tgz pgver where
  echo "npm pack bindings/node && npm install --offline <tarball> (into a fresh folder)"
  tgz=$(cd bindings/node && npm pack --silent --pack-destination "$WORK") || return 1
  pgver=$(node -p 'require("./bindings/node/node_modules/pg/package.json").version') || return 1
  mkdir -p "$app"
  (cd "$app" && echo '{"name": "lakebase-node-app", "private": true}' > package.json &&
    npm install --offline --ignore-scripts --no-audit --no-fund --loglevel=error "$WORK/$tgz" "pg@$pgver") ||
    { echo "(the npm cache lacks a package: run scripts/install-deps-bindings.sh)"; return 1; }
  where=$(cd "$WORK" && node -p 'require.resolve("lakebase", { paths: [process.argv[1]] })' "$app") || return 1
  case $where in "$app"/node_modules/lakebase/*) ;; *) echo "lakebase resolved to $where, not the installed copy"; return 1 ;; esac
  (cd bindings/node && LAKEBASE_NODE_PACKAGE=$app/node_modules/lakebase \
    node --test --test-concurrency=1 --test-reporter=spec test/*.test.js)
}

# --- PHP ----------------------------------------------------------------------------------------
php_suite() {
  local app=$WORK/php-app where
  export COMPOSER_HOME=$WORK/composer COMPOSER_DISABLE_NETWORK=1 COMPOSER_ALLOW_SUPERUSER=1 COMPOSER_NO_INTERACTION=1
  echo "composer validate; composer install of bindings/php from a path repository (offline, into a fresh project)"
  (cd bindings/php && composer validate --strict --no-check-publish --quiet) || { echo "composer.json does not validate"; return 1; }
  mkdir -p "$app"
  cat > "$app/composer.json" <<JSON
{
  "name": "lakebase/php-app",
  "require": { "liblakebase/lakebase": "0.1.0" },
  "repositories": [
    { "type": "path", "url": "$ROOT/bindings/php", "options": { "symlink": false, "versions": { "liblakebase/lakebase": "0.1.0" } } },
    { "packagist.org": false }
  ]
}
JSON
  (cd "$app" && composer install --no-progress --quiet) || return 1
  where=$(cd "$WORK" && php -r 'require $argv[1]; echo (new ReflectionClass(Lakebase\Client::class))->getFileName();' "$app/vendor/autoload.php") || return 1
  case $where in "$app"/vendor/liblakebase/lakebase/src/*) ;; *) echo "Lakebase\Client loaded from $where, not the installed copy"; return 1 ;; esac
  LAKEBASE_PHP_AUTOLOAD=$app/vendor/autoload.php php bindings/php/tests/run.php
}

declare -A TITLE=([python]="python (pytest)" [ruby]="ruby (minitest)" [go]="go (go test)"
                  [node]="node (node --test)" [php]="php (php-cli)")
for s in "${SUITES[@]}"; do
  step "${TITLE[$s]}"
  run_suite "$s" "$WORK/$s.log" "${s}_suite"
done

summary_of() { # suite -> its runner's closing line
  local logf=$WORK/$1.log
  case $1 in
    python) grep -E '^[0-9]+ (passed|failed)|[0-9]+ (passed|failed).* in [0-9.]+s' "$logf" | tail -1 ;;
    ruby) grep -E '^[0-9]+ runs, ' "$logf" | tail -1 ;;
    go) grep -E '^[0-9]+ tests passed' "$logf" | tail -1 ;;
    node) awk 'NF == 3 && $2 == "pass" { p = $3 } NF == 3 && $2 == "fail" { f = $3 }
               END { if (p != "") print p " passed, " f " failed" }' "$logf" ;;
    php) grep -E '^[0-9]+ tests, [0-9]+ passed' "$logf" | tail -1 ;;
  esac
}

step "summary"
failed=0
for s in "${SUITES[@]}"; do
  if [ "${RESULT[$s]}" -eq 0 ]; then status=ok; else status=FAILED; failed=1; fi
  summary=$(summary_of "$s")
  printf '%-7s %-7s %4ss  %s\n' "$s" "$status" "${SECONDS_TAKEN[$s]}" "${summary:-(no summary)}"
done
exit $failed
