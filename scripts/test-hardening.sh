#!/usr/bin/env bash
# Hardening tests (issue 6), called by scripts/test.sh after scripts/install-deps.sh:
#   1. fuzzing: every cargo-fuzz target in fuzz/ runs for FUZZ_SECONDS (default 30) after replaying
#      fuzz/regressions/; a crash fails the run and leaves the input in $FUZZ_WORK/artifacts;
#   2. tests/e2e/test_hardening.py: API faults and outages, fork, 64 threads (plain, ThreadSanitizer,
#      valgrind), secrets in logs and errors, TLS policy, hostile input (plain and ASan/UBSan);
#   3. tests/e2e/test_shared_cache.py: the per-user shared cache across processes (one mint for N
#      processes, rejection shared, fork/exec), hostile cache directories, a holder killed with the
#      lock, two users on one machine (setpriv; needs root).
# Installs what it needs: a nightly toolchain for the fuzz build (libFuzzer coverage
# instrumentation, as `cargo fuzz build` does it; cargo-fuzz itself is not required) and valgrind.
# Budget: about 6 minutes once the fuzz build is cached (in FUZZ_TARGET_DIR: target/fuzz of the
# build tree, ~0.7 GB; `cargo clean` or `rm -rf target/fuzz` removes it). Corpora live in a
# temporary directory that is removed after the run (kept only when a target crashes).
set -euo pipefail
cd "$(dirname "$0")/.."
# The suites' processes find the shared token cache (issue 15) under their own HOME: never in a
# directory the machine's session shares with other processes (XDG_RUNTIME_DIR and friends), where
# tokens of one suite, or of a rig started earlier, would be served to the next.
unset XDG_RUNTIME_DIR XDG_CACHE_HOME LAKEBASE_CACHE_DIR
# Python packages live in the repository's virtualenv (.venv), first on PATH from here on.
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
export CARGO_TERM_COLOR=never
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/target/fuzz}
FUZZ_WORK=${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/lakebase-fuzz.XXXXXX")}
TRIPLE=x86_64-unknown-linux-gnu

T0=$SECONDS
step() { printf '\n==> [%4ss] %s\n' "$((SECONDS - T0))" "$*"; }

step "hardening: tools"
if ! command -v valgrind >/dev/null; then
    echo "installing valgrind (apt)"
    if [ "$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq valgrind) >/dev/null; fi
fi
toolchain=nightly
if ! rustup toolchain list | grep '^nightly' >/dev/null; then
    echo "installing a nightly Rust toolchain for the fuzz build (rustup, minimal profile; ~1 min, once)"
    rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || toolchain=""
fi
if [ -z "$toolchain" ]; then
    # -Cpasses=sancov-module and the llvm-args are stable flags; only sanitizers need nightly.
    echo "no nightly toolchain could be installed: building the fuzz targets with stable"
    toolchain=stable
fi

step "hardening: build"
cargo build --release --lib --quiet
cargo build --release --quiet -p lakebase-cli    # the `lakebase` command (exec, password)

step "hardening: fuzz targets (libFuzzer, ${FUZZ_SECONDS}s each, toolchain $toolchain; building them takes ~2-3 min the first time, into $FUZZ_TARGET_DIR)"
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
CARGO_TARGET_DIR="$FUZZ_TARGET_DIR" \
    cargo "+$toolchain" build --quiet --release --bins --target "$TRIPLE" --manifest-path fuzz/Cargo.toml
bins="$FUZZ_TARGET_DIR/$TRIPLE/release"
mkdir -p "$FUZZ_WORK/artifacts"
for target in options databrickscfg api_json conninfo; do
    bin="$bins/$target"
    if [ -d "fuzz/regressions/$target" ] && [ -n "$(ls -A "fuzz/regressions/$target")" ]; then
        "$bin" -runs=0 "fuzz/regressions/$target"/* >/dev/null 2>&1 || {
            echo "FAILED: a regression input of $target crashes again"; exit 1; }
    fi
    mkdir -p "$FUZZ_WORK/corpus/$target"
    log="$FUZZ_WORK/$target.log"
    if ! "$bin" -max_total_time="$FUZZ_SECONDS" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$FUZZ_WORK/artifacts/$target-" \
            "$FUZZ_WORK/corpus/$target" "fuzz/seeds/$target" >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "FAILED: fuzz target $target crashed; reproduce with: $bin $FUZZ_WORK/artifacts/$target-*"
        echo "        then add the input to fuzz/regressions/$target/ and a unit test (see fuzz/regressions/README.md)"
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    echo "$target: $runs executions in ${FUZZ_SECONDS}s ($((runs / FUZZ_SECONDS))/s), $cov, no crash [$((SECONDS - T0))s]"
done
rm -rf "$FUZZ_WORK"

step "hardening: end-to-end (faults, outage, fork, threads + TSan + valgrind, secrets, TLS, bad input)"
python3 -m pytest -q -p no:cacheprovider tests/e2e/test_hardening.py

step "hardening: shared cache (processes, hostile directories, killed lock holder, two users)"
python3 -m pytest -q -p no:cacheprovider tests/e2e/test_shared_cache.py
