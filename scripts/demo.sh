#!/usr/bin/env bash
# The end-to-end demo on a fresh machine: install what is needed, build liblakebase, start a real
# PostgreSQL (TLS on, passwords checked against the fake workspace) and the local fake Databricks
# workspace, then open libpq connections every few seconds with passwords from
# lakebase_get_password(). Tokens live 12 s here, so you watch them rotate underneath.
set -euo pipefail
cd "$(dirname "$0")/.."
LIFETIME=${DEMO_TOKEN_LIFETIME:-12}
CONNECTIONS=${DEMO_CONNECTIONS:-6}
PAUSE=${DEMO_PAUSE:-3}

scripts/install-deps.sh --demo
# Python packages live in the repository's virtualenv (.venv), first on PATH from here on.
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
echo "==> building liblakebase and the C examples"
cargo build --release --quiet
make -s examples

dir=$(mktemp -d /tmp/lakebase-demo-XXXXXX)
trap 'python3 tests/rig/rig.py down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
echo "==> starting PostgreSQL (TLS) and the fake workspace"
python3 tests/rig/rig.py up --dir "$dir" >/dev/null
# shellcheck disable=SC1091
source "$dir/env.sh"
python3 - "$FAKE_URL" "$LIFETIME" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/_fake/config", method="POST",
                             data=json.dumps({"token_lifetime_seconds": int(sys.argv[2])}).encode(),
                             headers={"Content-Type": "application/json"})
urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req).read()
PY

export DATABRICKS_HOST="$FAKE_URL" DATABRICKS_TOKEN="$RIG_PAT" LAKEBASE_INSTANCE="$RIG_INSTANCE"
export PGUSER="$RIG_USER" PGSSLMODE=require
unset PGPASSWORD
echo "==> workspace $DATABRICKS_HOST, instance $LAKEBASE_INSTANCE, postgres $PGHOST:$PGPORT (user $PGUSER)"
echo "==> $CONNECTIONS connections, $PAUSE s apart, with ${LIFETIME}-second tokens"
build/connect_loop "$CONNECTIONS" "$PAUSE"
echo "==> the server accepted every rotated password over TLS"
