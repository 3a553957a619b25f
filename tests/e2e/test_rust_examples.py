"""The Rust examples (examples-rust/: tokio-postgres, deadpool, sqlx over lakebase-core) against
the real PostgreSQL with TLS: each logs in as the identity's role with verified TLS, and keeps
working across a token expiry (new logins get the rotated token; held connections stay open).

scripts/test.sh builds them first (`cargo build --release -p lakebase-examples`)."""
import json
import os
import subprocess

import pytest

from conftest import LIBDIR, base_env, minted

EXAMPLES = ["tokio-postgres-example", "deadpool-example", "sqlx-example"]


def example(name):
    path = os.path.join(LIBDIR, name)
    assert os.path.exists(path), "%s is not built: cargo build --release -p lakebase-examples" % path
    return path


def run_example(rig, tmp_path, name, **extra):
    e = rig.env()
    env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                   LAKEBASE_INSTANCE=e["RIG_INSTANCE"], PGSSLROOTCERT=e["RIG_CA_FILE"], PGHOST="localhost")
    env.update({k: str(v) for k, v in extra.items()})
    p = subprocess.run([example(name)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, "%s failed:\n%s" % (name, p.stderr)
    assert e["RIG_PAT"] not in p.stdout + p.stderr
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_logs_in_as_the_identity(rig, tmp_path, name):
    lines = run_example(rig, tmp_path, name)
    assert lines and all(l["current_user"] == rig.env()["RIG_USER"] for l in lines)
    assert minted(rig) == 1


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_keeps_working_across_a_token_expiry(rig, tmp_path, name):
    # 10-second tokens; the second round starts after the first token expired.
    rig.fake.update_settings({"token_lifetime_seconds": 10})
    lines = run_example(rig, tmp_path, name, LAKEBASE_EXAMPLE_ROUNDS=2, LAKEBASE_EXAMPLE_PAUSE_MS=11000)
    first = [l for l in lines if l["round"] == 1]
    second = [l for l in lines if l["round"] == 2]
    assert first and second
    assert all(l["current_user"] == rig.env()["RIG_USER"] for l in lines)
    # The second round's logins used a token minted after the first one expired.
    t1 = max(l["token_expiry_ms"] for l in first)
    assert all(l["token_serial"] > first[0]["token_serial"] for l in second if l["what"] != "held connection")
    assert min(l["token_expiry_ms"] for l in second) > t1
    if name == "deadpool-example":
        assert any(l["what"] == "held connection" for l in second), "the connection opened with the first token is still usable"
    assert minted(rig) >= 2
