#!/usr/bin/env bash
# Fail if the shared library exports anything but the intended C API: lakebase_* and the libpq
# entry points it interposes. The interposed names are read from their one list, the HOOKED table
# in src/libpq/hooks.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=${1:-target/release/liblakebase.so}
# The table may span lines (rustfmt): take everything from `pub const HOOKED` to the closing `];`.
hooked=$(awk '/^pub const HOOKED/{f=1} f{print} f&&/\];/{exit}' src/libpq/hooks.rs | sed 's/.*= *//' | tr -d '&[]; "\n' | tr ',' '\n' | grep -v '^$')
if [ -z "$hooked" ]; then
  echo "check-exports: cannot read the HOOKED table from src/libpq/hooks.rs" >&2
  exit 1
fi
syms=$(nm -D --defined-only "$lib" | awk '{print $3}')
unexpected=$(grep -Ev '^lakebase_[A-Za-z_]+$' <<<"$syms" | grep -vxF -f <(echo "$hooked") || true)
if [ -n "$unexpected" ]; then
  echo "unexpected exported symbols in $lib:" >&2
  echo "$unexpected" >&2
  exit 1
fi
missing=$(for s in $hooked; do
  grep -qx "$s" <<<"$syms" || echo "$s"; grep -qx "lakebase_$s" <<<"$syms" || echo "lakebase_$s"; done)
if [ -n "$missing" ]; then
  echo "missing exports in $lib: $missing" >&2
  exit 1
fi
echo "$(wc -l <<<"$syms") symbols exported: lakebase_* and the $(wc -l <<<"$hooked") interposed libpq entry points"
