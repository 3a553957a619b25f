#!/usr/bin/env bash
# Fail if the shared library exports anything but the intended C API: lakebase_* and the libpq
# entry points it interposes (the HOOKED table in src/ffi/libpq.rs).
set -euo pipefail
lib=${1:-target/release/liblakebase.so}
hooked='^(PQconnectdb|PQconnectdbParams|PQconnectStart|PQconnectStartParams|PQsetdbLogin|PQping|PQpingParams)$'
syms=$(nm -D --defined-only "$lib" | awk '{print $3}')
unexpected=$(echo "$syms" | grep -Ev '^lakebase_[A-Za-z_]+$' | grep -Ev "$hooked" || true)
if [ -n "$unexpected" ]; then
  echo "unexpected exported symbols in $lib:" >&2
  echo "$unexpected" >&2
  exit 1
fi
missing=$(for s in PQconnectdb PQconnectdbParams PQconnectStart PQconnectStartParams PQsetdbLogin PQping PQpingParams; do
  grep -qx "$s" <<<"$syms" || echo "$s"; grep -qx "lakebase_$s" <<<"$syms" || echo "lakebase_$s"; done)
if [ -n "$missing" ]; then
  echo "missing exports in $lib: $missing" >&2
  exit 1
fi
echo "$(echo "$syms" | wc -l) symbols exported: lakebase_* and the 7 interposed libpq entry points"
