#!/usr/bin/env bash
# Regenerate include/lakebase.h with the pinned cbindgen, or check it (--check) and fail on a diff.
set -euo pipefail
CBINDGEN_VERSION=0.29.4
cd "$(dirname "$0")/.."
if ! command -v cbindgen >/dev/null || [ "$(cbindgen --version | awk '{print $2}')" != "$CBINDGEN_VERSION" ]; then
  echo "installing cbindgen $CBINDGEN_VERSION (cargo install, once: ~2 min on 2 cores)" >&2
  cargo install cbindgen --version "$CBINDGEN_VERSION" --locked
fi
out=$(mktemp)
cfg=$(mktemp)
trap 'rm -f "$out" "$cfg"' EXIT
# LAKEBASE_VERSION_MAJOR comes from the one version, Cargo's.
major=$(sed -n 's/^version = "\([0-9]*\)\..*"/\1/p' Cargo.toml | head -n1)
[ -n "$major" ] || { echo "gen-header: no version in Cargo.toml" >&2; exit 1; }
sed "s/@VERSION_MAJOR@/$major/" cbindgen.toml > "$cfg"
cbindgen --quiet --config "$cfg" --crate lakebase --output "$out" .
if [ "${1:-}" = "--check" ]; then
  if ! diff -u include/lakebase.h "$out"; then
    echo "include/lakebase.h is stale: run scripts/gen-header.sh and commit the result" >&2
    exit 1
  fi
  echo "include/lakebase.h is up to date"
else
  cp "$out" include/lakebase.h
  echo "wrote include/lakebase.h"
fi
