#!/usr/bin/env bash
# Regenerate include/lakebase.h with the pinned cbindgen, or check it (--check) and fail on a diff.
set -euo pipefail
CBINDGEN_VERSION=0.29.4
cd "$(dirname "$0")/.."
if ! command -v cbindgen >/dev/null || [ "$(cbindgen --version | awk '{print $2}')" != "$CBINDGEN_VERSION" ]; then
  echo "installing cbindgen $CBINDGEN_VERSION" >&2
  cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --quiet
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cbindgen --quiet --config cbindgen.toml --crate lakebase --output "$out" .
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
