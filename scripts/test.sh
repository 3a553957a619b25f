#!/usr/bin/env bash
# Run every test: formatting and lints, Rust unit tests, header and export checks, C API tests
# (plain and ASan/UBSan), the benchmarks in quick mode, hardening (faults, outage, fork, threads,
# fuzzing, secrets, TLS, the shared cache), the rig's self-tests, the end-to-end tests against a real
# PostgreSQL with TLS, `lakebase proxy` with the clients it exists for, the five language bindings,
# the packages (`make dist`) installed and used as users do.
# Installs what it needs first (as root), so it works on a fresh machine. Every step prints when it
# starts (elapsed time) and how long it took; the summary at the end lists them.
set -euo pipefail
cd "$(dirname "$0")/.."
# The suites' processes find the shared token cache (issue 15) under their own HOME: never in a
# directory the machine's session shares with other processes (XDG_RUNTIME_DIR and friends), where
# tokens of one suite, or of a rig started earlier, would be served to the next.
unset XDG_RUNTIME_DIR XDG_CACHE_HOME LAKEBASE_CACHE_DIR
export CARGO_TERM_COLOR=never

passed=0
T0=$SECONDS
TIMES=()
step() {
  local name=$1 t=$SECONDS
  shift
  printf '\n==> [%02d:%02d] %s\n' $(((t - T0) / 60)) $(((t - T0) % 60)) "$name"
  "$@"
  passed=$((passed + 1))
  TIMES+=("$(printf '%5ss  %s' $((SECONDS - t)) "$name")")
  printf '    (%s s)\n' $((SECONDS - t))
}

c_api_tests() {
  make -s examples
  build/test_capi
  cc -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-omit-frame-pointer -Iinclude \
     tests/c/test_capi.c -Ltarget/release -Wl,-rpath,"$PWD/target/release" -llakebase -lpthread -o build/test_capi_asan
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1 build/test_capi_asan
}

no_async_runtime_in_c_library() {
  local tree
  tree=$(cargo tree -p lakebase -e normal --prefix none)
  if grep -E '^(tokio|clap|async-std|mio) ' <<<"$tree"; then
    echo "the C library must not depend on an async runtime or clap (see docs/architecture.md)" >&2
    return 1
  fi
  echo "cargo tree -p lakebase: $(sort -u <<<"$tree" | wc -l) crates, none of tokio/clap/mio"
}

packages() {
  scripts/install-deps-packages.sh
  make -s dist
  scripts/test-packages.sh
}

step "dependencies" scripts/install-deps.sh
# Python packages live in the repository's virtualenv (.venv), first on PATH from here on.
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
step "formatting (cargo fmt --check)" cargo fmt --all --check
step "lints (cargo clippy -D warnings, all targets; the first run checks every dependency, ~2-3 min)" cargo clippy --workspace --all-targets -- -D warnings
step "API docs of lakebase-core build without warnings" env RUSTDOCFLAGS="-D warnings" cargo doc -p lakebase-core --no-deps --quiet
step "build (library and the lakebase command; ~2 min on 2 cores the first time)" make -s build
step "build the Rust examples (tokio-postgres, deadpool, sqlx; ~2 min the first time)" cargo build --release -p lakebase-examples
step "header is what cbindgen generates" scripts/gen-header.sh --check
step "exported symbols" scripts/check-exports.sh target/release/liblakebase.so
step "result codes: every copy agrees with the header" python3 scripts/check-result-codes.py
step "versions: every manifest says Cargo.toml's" python3 scripts/version.py --check
step "the C library's dependencies: no tokio, no clap" no_async_runtime_in_c_library
step "build the Rust unit tests (the workspace in test mode)" cargo test --workspace --release --no-run
step "Rust unit tests (workspace, incl. the layer rule)" cargo test --workspace --release --quiet
step "C API tests, plain and under AddressSanitizer + UBSan" c_api_tests
step "benchmarks, quick mode (checks they still run; figures are meaningless here)" scripts/bench.sh --quick
step "hardening: faults, outage, fork, 64 threads (TSan, memcheck), fuzzing, secrets, TLS, bad input" scripts/test-hardening.sh
step "rig self-tests (fake workspace, PostgreSQL + TLS + PAM, Databricks SDK cross-check)" \
  python3 -m pytest -q -p no:cacheprovider tests/rig_selftest
step "end-to-end tests (core, auth chain, libpq injection, the lakebase command)" \
  python3 -m pytest -q -p no:cacheprovider tests/e2e --ignore=tests/e2e/test_hardening.py --ignore=tests/e2e/test_shared_cache.py
step "lakebase proxy: psql, pgbench, JDBC + HikariCP, node-postgres, asyncpg, PHP, pure-Python psycopg, pgx; edge cases" \
  scripts/test-proxy.sh
step "language bindings (Python ctypes, Ruby FFI, Go cgo, Node.js koffi, PHP FFI) against the real server" scripts/test-bindings.sh
step "packages: make dist (debs with cargo-deb, wheel, gem, npm, Composer; cargo-deb builds once, ~3 min), each installed as users do logs in" \
  packages

printf '\nstep durations:\n'
printf '  %s\n' "${TIMES[@]}"
printf '\nsuites: %d passed, 0 failed in %d min %d s\n' "$passed" $(((SECONDS - T0) / 60)) $(((SECONDS - T0) % 60))
