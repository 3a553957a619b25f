#!/usr/bin/env bash
# Run every test: Rust unit tests, header and export checks, C API tests (plain and ASan/UBSan),
# the benchmarks in quick mode, hardening (faults, outage, fork, threads, fuzzing, secrets, TLS),
# the rig's self-tests, the end-to-end tests against a real PostgreSQL with TLS, and the Python,
# Ruby and Go bindings. Installs what it needs first, so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

passed=0
step() { printf '\n==> %s\n' "$1"; shift; "$@"; passed=$((passed + 1)); }

c_api_tests() {
  make -s examples
  build/test_capi
  cc -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-omit-frame-pointer -Iinclude \
     tests/c/test_capi.c -Ltarget/release -Wl,-rpath,"$PWD/target/release" -llakebase -lpthread -o build/test_capi_asan
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1 build/test_capi_asan
}

step "dependencies" scripts/install-deps.sh
step "build (library and the lakebase command)" make -s build
step "header is what cbindgen generates" scripts/gen-header.sh --check
step "exported symbols" scripts/check-exports.sh target/release/liblakebase.so
step "Rust unit tests" cargo test --release --quiet
step "C API tests, plain and under AddressSanitizer + UBSan" c_api_tests
step "benchmarks, quick mode (checks they still run; figures are meaningless here)" scripts/bench.sh --quick
step "hardening: faults, outage, fork, 64 threads (TSan, memcheck), fuzzing, secrets, TLS, bad input" scripts/test-hardening.sh
step "rig self-tests (fake workspace, PostgreSQL + TLS + PAM, Databricks SDK cross-check)" \
  python3 -m pytest -q -p no:cacheprovider tests/rig_selftest
step "end-to-end tests (core, auth chain, libpq injection, the lakebase command)" \
  python3 -m pytest -q -p no:cacheprovider tests/e2e --ignore=tests/e2e/test_hardening.py
step "language bindings (Python ctypes, Ruby FFI, Go cgo) against the real server" scripts/test-bindings.sh

printf '\nsuites: %d passed, 0 failed\n' "$passed"
