#!/usr/bin/env bash
# Build and test the proxy (crates/proxy): formatting, clippy, unit tests, then the client suite
# (tests/proxy) against the real PostgreSQL rig: psql, pgbench, JDBC + HikariCP, node-postgres,
# asyncpg, PHP PDO + pg_connect, pure-Python psycopg, pgx without cgo, and the edge cases.
# Installs what it needs first (scripts/install-deps-proxy.sh; scripts/install-deps.sh for the rig).
# Usage: scripts/test-proxy.sh [--no-deps] [pytest args...]
set -euo pipefail
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

deps=1
if [ "${1:-}" = "--no-deps" ]; then deps=0; shift; fi

passed=0
T0=$SECONDS
step() { printf '==> [%4ss] proxy: %s\n' "$((SECONDS - T0))" "$1"; shift; "$@"; passed=$((passed + 1)); }

if [ "$deps" = 1 ]; then
  step "dependencies (rig)" scripts/install-deps.sh
  step "dependencies (proxy clients)" scripts/install-deps-proxy.sh
fi
# fmt, clippy and the unit tests of crates/proxy run with the workspace's (scripts/test.sh); here
# only what the client suite needs: the `lakebase` command with its proxy subcommand.
step "build the lakebase command (release)" cargo build --release --quiet -p lakebase-cli

# The startup parser against libFuzzer for FUZZ_SECONDS (built as scripts/test-hardening.sh does:
# coverage flags by hand, no cargo-fuzz needed; nightly when present, else stable).
fuzz() {
  local triple toolchain=stable dir=${PROXY_FUZZ_TARGET_DIR:-$ROOT/target/fuzz-proxy}
  triple=$(rustc -vV | sed -n 's/^host: //p')
  if rustup toolchain list 2>/dev/null | grep '^nightly' >/dev/null; then toolchain=nightly; fi
  RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
  CARGO_TARGET_DIR="$dir" cargo "+$toolchain" build --quiet --release --bins --target "$triple" \
    --manifest-path crates/proxy/fuzz/Cargo.toml
  local work log
  work=$(mktemp -d "${TMPDIR:-/tmp}/proxy-fuzz.XXXXXX")
  log="$work/startup.log"
  if ! "$dir/$triple/release/startup" -max_total_time="${FUZZ_SECONDS:-20}" -max_len=10240 -timeout=10 \
       -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" "$work" crates/proxy/fuzz/seeds/startup \
       >"$log" 2>&1; then
    tail -n 30 "$log"; echo "FAILED: the startup fuzz target crashed; inputs in $work"; return 1
  fi
  echo "startup: $(sed -n 's/^stat::number_of_executed_units: *//p' "$log") executions, no crash"
  rm -rf "$work"
}
step "fuzz the startup parser (${FUZZ_SECONDS:-20}s)" fuzz
step "clients and edge cases against the rig (tests/proxy)" \
  env PSYCOPG_IMPL=python python3 -m pytest -q -p no:cacheprovider tests/proxy "$@"
printf 'proxy suites: %d passed, 0 failed\n' "$passed"
