#!/usr/bin/env bash
# Run every test: Rust unit tests, header and export checks, C API tests (plain and ASan/UBSan),
# the rig's self-tests and the end-to-end tests against a real PostgreSQL with TLS.
# Installs what it needs first (scripts/install-deps.sh), so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

step "dependencies"
scripts/install-deps.sh

step "build"
cargo build --release --quiet

step "header is what cbindgen generates"
scripts/gen-header.sh --check

step "exported symbols"
scripts/check-exports.sh target/release/liblakebase.so

step "Rust unit tests"
cargo test --release --quiet

step "C programs"
make -s examples
build/test_capi
step "C API tests under AddressSanitizer + UBSan"
cc -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-omit-frame-pointer -Iinclude \
   tests/c/test_capi.c -Ltarget/release -Wl,-rpath,"$PWD/target/release" -llakebase -lpthread -o build/test_capi_asan
ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1 build/test_capi_asan

step "rig self-tests (fake workspace, PostgreSQL + TLS + PAM, Databricks SDK cross-check)"
python3 -m pytest -q -p no:cacheprovider tests/rig_selftest

step "end-to-end tests (liblakebase + real PostgreSQL over TLS + fake workspace)"
python3 -m pytest -q -p no:cacheprovider tests/e2e

step "language bindings (Python ctypes, Ruby FFI, Go cgo) against the real server"
scripts/test-bindings.sh
