#!/usr/bin/env bash
# Fail if the shared library exports anything but the intended C API.
set -euo pipefail
lib=${1:-target/release/liblakebase.so}
unexpected=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -Ev '^lakebase_[a-z_]+$' || true)
if [ -n "$unexpected" ]; then
  echo "unexpected exported symbols in $lib:" >&2
  echo "$unexpected" >&2
  exit 1
fi
echo "$(nm -D --defined-only "$lib" | wc -l) symbols exported, all lakebase_*"
