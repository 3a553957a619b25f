#!/usr/bin/env bash
# Run the three language bindings' test suites (bindings/python: pytest, bindings/ruby: minitest,
# bindings/go: go test) against one test rig, each on its installed package:
#   python: pip install bindings/python into a fresh virtualenv
#   ruby:   gem build + gem install --local into a private GEM_HOME
#   go:     go test in the module, plus a separate module that uses it through a replace directive
# Assumes scripts/install-deps.sh and the library build (cargo build --release --lib) already ran.
# Prints each runner's summary; exits non-zero if any suite fails.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never

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

declare -A RESULT SUMMARY SECONDS_TAKEN
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
  export CGO_CFLAGS="-I$ROOT/include"
  export CGO_LDFLAGS="-L$LIBDIR -Wl,-rpath,$LIBDIR"
  (cd bindings/go && go vet ./... && go test -p 1 -count=1 -v ./... > "$WORK/go-test.log" 2>&1)
  local rc=$?
  # Per-test lines and the runner's closing lines, without the full -v output.
  grep -E '^(--- |ok |FAIL|PASS$|panic:|\s+\S+_test\.go:[0-9]+:)' "$WORK/go-test.log" | grep -v -- '--- PASS' || true
  echo "$(grep -c -- '--- PASS' "$WORK/go-test.log") tests passed, $(grep -c -- '--- FAIL' "$WORK/go-test.log") failed"
  [ $rc -eq 0 ] || { tail -50 "$WORK/go-test.log"; return $rc; }

  echo "go build -tags lakebase_pkgconfig (flags from pkg-config lakebase)"
  mkdir -p "$WORK/pkgconfig"
  sed -e "s|@PREFIX@|$ROOT|" -e "s|@LIBDIR@|$LIBDIR|" -e "s|@INCLUDEDIR@|$ROOT/include|" -e "s|@VERSION@|0|" \
    lakebase.pc.in > "$WORK/pkgconfig/lakebase.pc"
  (cd bindings/go && env -u CGO_CFLAGS -u CGO_LDFLAGS PKG_CONFIG_PATH="$WORK/pkgconfig" \
    go build -tags lakebase_pkgconfig ./...) || return 1

  echo "a separate module using lakebase-go through a replace directive"
  local app=$WORK/goapp
  mkdir -p "$app"
  cat > "$app/main.go" <<'GO'
package main

import (
	"context"
	"fmt"
	"os"

	lakebase "github.com/liblakebase/lakebase-go"
	"github.com/liblakebase/lakebase-go/lakebasepgx"
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
    go mod edit -require=github.com/liblakebase/lakebase-go@v0.0.0 \
                -replace=github.com/liblakebase/lakebase-go="$ROOT/bindings/go" &&
    go mod tidy >/dev/null 2>&1 && go build -o app . &&
    DATABRICKS_TOKEN=$RIG_PAT LAKEBASE_INSTANCE=$RIG_INSTANCE PGSSLMODE=verify-full ./app) || return 1
}

step "python (pytest)"
run_suite python "$WORK/python.log" python_suite
step "ruby (minitest)"
run_suite ruby "$WORK/ruby.log" ruby_suite
step "go (go test)"
run_suite go "$WORK/go.log" go_suite

SUMMARY[python]=$(grep -E '^[0-9]+ (passed|failed)|[0-9]+ (passed|failed).* in [0-9.]+s' "$WORK/python.log" | tail -1)
SUMMARY[ruby]=$(grep -E '^[0-9]+ runs, ' "$WORK/ruby.log" | tail -1)
SUMMARY[go]=$(grep -E '^[0-9]+ tests passed' "$WORK/go.log" | tail -1)

step "summary"
failed=0
for s in python ruby go; do
  if [ "${RESULT[$s]}" -eq 0 ]; then status=ok; else status=FAILED; failed=1; fi
  printf '%-7s %-7s %4ss  %s\n' "$s" "$status" "${SECONDS_TAKEN[$s]}" "${SUMMARY[$s]:-(no summary)}"
done
exit $failed
