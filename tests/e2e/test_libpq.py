"""libpq injection end to end: unmodified psql, pgbench, pg_dump, psycopg2 and psycopg (binary
wheels, both in one process), Ruby pg, and C programs linked -llakebase -lpq, against the real
PostgreSQL + TLS server that accepts only tokens the fake workspace minted."""
import os
import subprocess
import sys
import time

import pytest

from conftest import BUILD, LIBDIR, base_env, minted, requests

LIB = os.path.join(LIBDIR, "liblakebase.so")
PROV = "POST /api/2.0/database/credentials"
AUTO = "POST /api/2.0/postgres/credentials"
ME = "GET /api/2.0/preview/scim/v2/Me"


def lb_env(rig, tmp_path, preload=True, target="instance", **extra):
    """The environment of a user who configured Databricks but gave Postgres no password."""
    e = rig.env()
    env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                   LAKEBASE_HOSTS="localhost")
    if target == "instance":
        env["LAKEBASE_INSTANCE"] = e["RIG_INSTANCE"]
    elif target == "endpoint":
        env["LAKEBASE_ENDPOINT"] = e["RIG_ENDPOINT"]
    for k in ("PGHOST", "PGPORT", "PGDATABASE"):
        env.pop(k, None)
    if preload:
        env["LD_PRELOAD"] = LIB
    env.update({k: str(v) for k, v in extra.items()})
    return env


def conninfo(rig, **kv):
    e = rig.env()
    d = {"host": "localhost", "port": e["PGPORT"], "dbname": e["PGDATABASE"]}
    d.update(kv)
    return " ".join("%s=%s" % (k, v) for k, v in d.items() if v is not None)


def run(cmd, env, **kw):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, **kw)


SSL_USER = "SELECT current_user || ' ' || ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


# --- unmodified programs through LD_PRELOAD -------------------------------------------------

def test_psql_connects_with_injected_password_user_and_tls(rig, tmp_path):
    p = run(["psql", "-XAt", conninfo(rig), "-c", SSL_USER], lb_env(rig, tmp_path))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "%s true" % rig.env()["RIG_USER"]
    # One mint and one identity lookup, although psql's PQconnectdbParams calls
    # PQconnectStartParams through the PLT: injected once per connection.
    assert requests(rig, PROV) == 1 and requests(rig, ME) == 1


def test_psql_uri_and_pg_environment(rig, tmp_path):
    e = rig.env()
    p = run(["psql", "-XAt", "postgresql://localhost:%s/%s" % (e["PGPORT"], e["PGDATABASE"]), "-c", "SELECT current_user"],
            lb_env(rig, tmp_path))
    assert p.returncode == 0 and p.stdout.strip() == e["RIG_USER"], p.stderr
    # PGHOST/PGPORT/PGDATABASE/PGUSER honoured as libpq would.
    env = lb_env(rig, tmp_path, PGHOST="localhost", PGPORT=e["PGPORT"], PGDATABASE=e["PGDATABASE"], PGUSER=e["RIG_USER"])
    p = run(["psql", "-XAt", "-c", "SELECT current_user"], env)
    assert p.returncode == 0 and p.stdout.strip() == e["RIG_USER"], p.stderr


def test_pgbench_reconnecting_every_transaction_mints_once(rig, tmp_path):
    env = lb_env(rig, tmp_path)
    p = run(["pgbench", "-i", "-q", "-s", "1", conninfo(rig)], env)
    assert p.returncode == 0, p.stderr
    p = run(["pgbench", "-C", "-S", "-t", "20", "-c", "2", conninfo(rig)], env)
    assert p.returncode == 0, p.stderr
    assert "number of failed transactions: 0" in p.stdout
    assert minted(rig) == 2  # one per pgbench process


def test_pg_dump(rig, tmp_path):
    p = run(["pg_dump", "-s", conninfo(rig)], lb_env(rig, tmp_path))
    assert p.returncode == 0, p.stderr
    assert "PostgreSQL database dump" in p.stdout


def test_sslmode_disable_is_refused_with_a_clear_error(rig, tmp_path):
    p = run(["psql", "-XAt", conninfo(rig, sslmode="disable"), "-c", "SELECT 1"], lb_env(rig, tmp_path))
    assert p.returncode != 0
    assert "without TLS" in p.stderr and "sslmode=require" in p.stderr
    assert minted(rig) == 0


def test_sslmode_prefer_is_raised_and_require_kept(rig, tmp_path):
    for mode in ("prefer", "allow", "require"):
        p = run(["psql", "-XAt", conninfo(rig, sslmode=mode), "-c", SSL_USER], lb_env(rig, tmp_path))
        assert p.returncode == 0 and p.stdout.strip().endswith(" true"), (mode, p.stderr)


def test_given_password_is_respected(rig, tmp_path):
    """A password from PGPASSWORD or the conninfo is never replaced (here a wrong one)."""
    env = lb_env(rig, tmp_path, PGPASSWORD="not-a-token")
    p = run(["psql", "-XAt", conninfo(rig), "-c", "SELECT 1"], env)
    assert p.returncode != 0 and "authentication failed" in p.stderr
    p = run(["psql", "-XAt", conninfo(rig, password="also-wrong"), "-c", "SELECT 1"], lb_env(rig, tmp_path))
    assert p.returncode != 0 and "authentication failed" in p.stderr
    assert minted(rig) == 0


def test_passfile_entry_is_respected(rig, tmp_path):
    e = rig.env()
    pgpass = tmp_path / "pgpass"
    pgpass.write_text("localhost:%s:*:%s:from-the-passfile\n" % (e["PGPORT"], e["RIG_USER"]))
    pgpass.chmod(0o600)
    env = lb_env(rig, tmp_path, PGPASSFILE=str(pgpass))
    p = run(["psql", "-XAt", conninfo(rig, user=e["RIG_USER"]), "-c", "SELECT 1"], env)
    assert p.returncode != 0 and "authentication failed" in p.stderr
    assert minted(rig) == 0
    # An entry for another user does not count.
    pgpass.write_text("localhost:*:*:somebody-else:x\n")
    p = run(["psql", "-XAt", conninfo(rig, user=e["RIG_USER"]), "-c", "SELECT 1"], env)
    assert p.returncode == 0, p.stderr


def test_non_lakebase_hosts_behave_exactly_as_without_the_library(rig, tmp_path):
    e = rig.env()
    for extra in ({}, {"PGPASSWORD": "wrong"}):
        without = run(["psql", "-XAt", conninfo(rig), "-c", "SELECT 1"], lb_env(rig, tmp_path, preload=False, LAKEBASE_HOSTS="", **extra))
        with_lib = run(["psql", "-XAt", conninfo(rig), "-c", "SELECT 1"], lb_env(rig, tmp_path, LAKEBASE_HOSTS="", **extra))
        assert (with_lib.returncode, with_lib.stdout, with_lib.stderr) == (without.returncode, without.stdout, without.stderr)
        assert with_lib.returncode != 0
    assert minted(rig) == 0 and sum(rig.fake.stats()["requests"].values()) == 0


def test_lakebase_disable(rig, tmp_path):
    p = run(["psql", "-XAt", conninfo(rig), "-c", "SELECT 1"], lb_env(rig, tmp_path, LAKEBASE_DISABLE="1"))
    assert p.returncode != 0 and "no password supplied" in p.stderr
    assert minted(rig) == 0


def test_multi_host_injects_only_when_every_host_is_lakebase(rig, tmp_path):
    e = rig.env()
    ci = conninfo(rig, host="localhost,127.0.0.1", port="%s,%s" % (e["PGPORT"], e["PGPORT"]))
    p = run(["psql", "-XAt", ci, "-c", "SELECT 1"], lb_env(rig, tmp_path))
    assert p.returncode != 0 and "no password supplied" in p.stderr
    p = run(["psql", "-XAt", ci, "-c", "SELECT current_user"], lb_env(rig, tmp_path, LAKEBASE_HOSTS="localhost,127.0.0.*"))
    assert p.returncode == 0 and p.stdout.strip() == e["RIG_USER"], p.stderr


def test_psycopg2_and_psycopg3_wheels_in_one_process(rig, tmp_path):
    """Each wheel bundles its own libpq (different versions, RTLD_LOCAL): each call must reach the
    caller's own copy. psycopg 3 connects with PQconnectStart/PQconnectPoll, also async."""
    code = """
import asyncio, psycopg2, psycopg
ci = %r
c2 = psycopg2.connect(ci)
cur = c2.cursor(); cur.execute("SELECT current_user"); u2 = cur.fetchone()[0]
c3 = psycopg.connect(ci)
u3 = c3.execute("SELECT current_user").fetchone()[0]
async def main():
    a = await psycopg.AsyncConnection.connect(ci)
    return (await (await a.execute("SELECT current_user")).fetchone())[0]
ua = asyncio.run(main())
print(u2, u3, ua, psycopg2.__libpq_version__, psycopg.pq.version(), psycopg.pq.__impl__)
""" % conninfo(rig)
    p = run([sys.executable, "-c", code], lb_env(rig, tmp_path))
    assert p.returncode == 0, p.stderr
    u2, u3, ua, v2, v3, impl = p.stdout.split()
    user = rig.env()["RIG_USER"]
    assert (u2, u3, ua, impl) == (user, user, user, "binary")
    assert v2 != v3, "expected two different bundled libpq versions"
    assert minted(rig) == 1


def test_ruby_pg_which_fills_every_keyword_from_conndefaults(rig, tmp_path):
    e = rig.env()
    code = ('require "pg"; c = PG.connect(host: "localhost", port: %s, dbname: "%s"); '
            'puts c.exec("SELECT current_user").getvalue(0, 0); puts c.ssl_in_use?' % (e["PGPORT"], e["PGDATABASE"]))
    p = run(["ruby", "-e", code], lb_env(rig, tmp_path))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [e["RIG_USER"], "true"]


# --- programs linked -llakebase -lpq ---------------------------------------------------------

@pytest.mark.parametrize("api", ["connectdb", "params", "setdblogin", "start",
                                 "lakebase_connectdb", "lakebase_params", "lakebase_start"])
def test_every_entry_point_linked_ahead_of_libpq(rig, tmp_path, c_programs, api):
    p = run([os.path.join(BUILD, "pqconnect"), api, conninfo(rig)], lb_env(rig, tmp_path, preload=False))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == "ok %s ssl=on" % rig.env()["RIG_USER"]
    assert requests(rig, PROV) == 1 and requests(rig, ME) == 1


def test_ping(rig, tmp_path, c_programs):
    for api in ("ping", "lakebase_ping"):
        p = run([os.path.join(BUILD, "pqconnect"), api, conninfo(rig)], lb_env(rig, tmp_path, preload=False))
        assert p.stdout.strip() == "ping 0", p.stdout + p.stderr


def test_wrappers_inject_for_any_host_interposers_only_for_lakebase_hosts(rig, tmp_path, c_programs):
    env = lb_env(rig, tmp_path, preload=False, LAKEBASE_HOSTS="")
    p = run([os.path.join(BUILD, "pqconnect"), "connectdb", conninfo(rig)], env)
    assert p.stdout.startswith("fail") and "no password supplied" in p.stdout
    p = run([os.path.join(BUILD, "pqconnect"), "lakebase_connectdb", conninfo(rig)], env)
    assert p.returncode == 0 and p.stdout.startswith("ok"), p.stdout + p.stderr


def test_example_connect(rig, tmp_path, c_programs):
    p = run([os.path.join(BUILD, "connect"), conninfo(rig)], lb_env(rig, tmp_path, preload=False, LAKEBASE_HOSTS=""))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("connected as %s over TLS" % rig.env()["RIG_USER"])


def test_injection_failure_gives_a_failed_connection_with_the_reason(rig, tmp_path, c_programs):
    env = lb_env(rig, tmp_path, preload=False, DATABRICKS_TOKEN="dapiWRONG" + "0" * 24)
    p = run([os.path.join(BUILD, "pqconnect"), "connectdb", conninfo(rig)], env)
    assert p.returncode == 1
    assert "liblakebase" in p.stdout and "403" in p.stdout and "dapiWRONG" not in p.stdout + p.stderr


def test_rejected_cached_token_is_refreshed_and_retried_once(rig, tmp_path, c_programs):
    """The server stops accepting the cached token (revoked): the next blocking connect mints a
    new token and retries once, transparently."""
    proc = subprocess.Popen([os.path.join(BUILD, "pqconnect"), "params", conninfo(rig), "2"],
                            env=lb_env(rig, tmp_path, preload=False), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    assert first.startswith("ok"), first
    rig.fake.revoke()
    out, err = proc.communicate("next\n", timeout=60)
    assert out.strip().startswith("ok"), out + err
    assert minted(rig) == 2


def test_connection_after_the_first_token_expired(rig, tmp_path, c_programs):
    """Short-lived tokens: a long-running program connects again after its first token expired."""
    rig.fake.update_settings({"token_lifetime_seconds": 6})
    proc = subprocess.Popen([os.path.join(BUILD, "pqconnect"), "connectdb", conninfo(rig), "2"],
                            env=lb_env(rig, tmp_path, preload=False), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("ok")
    first_token_expiry = time.time() + 6
    while time.time() < first_token_expiry + 0.5:  # let the first token expire (bounded)
        time.sleep(0.1)
    out, err = proc.communicate("next\n", timeout=60)
    assert out.strip().startswith("ok"), out + err
    assert minted(rig) >= 2


# --- target discovery and platform environments ------------------------------------------------

def test_target_discovered_from_the_host(rig, tmp_path):
    """No LAKEBASE_INSTANCE/ENDPOINT: the host is matched against instances and endpoints."""
    e = rig.env()
    # Only the Autoscaling endpoint answers on "localhost" now.
    from rig import http_json
    status, _ = http_json(e["FAKE_URL"], "POST", "/_fake/instances",
                          {"name": e["RIG_INSTANCE"], "read_write_dns": "elsewhere.example", "read_only_dns": None})
    assert status == 200
    p = run(["psql", "-XAt", conninfo(rig), "-c", "SELECT current_user"], lb_env(rig, tmp_path, target=None))
    assert p.returncode == 0, p.stderr
    assert requests(rig, AUTO) == 1 and requests(rig, PROV) == 0
    # And the other way round: the instance's read-only host.
    http_json(e["FAKE_URL"], "POST", "/_fake/instances", {"name": e["RIG_INSTANCE"], "read_only_dns": "localhost"})
    http_json(e["FAKE_URL"], "POST", "/_fake/endpoints", {"name": e["RIG_ENDPOINT"], "host": "ep-other.example"})
    p = run(["psql", "-XAt", conninfo(rig), "-c", "SELECT current_user"], lb_env(rig, tmp_path, target=None))
    assert p.returncode == 0, p.stderr
    assert requests(rig, PROV) == 1


def test_databricks_app_environment_needs_nothing_else(rig, tmp_path):
    """A Databricks App gets DATABRICKS_HOST, DATABRICKS_CLIENT_ID/SECRET, PG* and LAKEBASE_ENDPOINT
    from its runtime; an unmodified libpq program then just connects."""
    e = rig.env()
    env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_CLIENT_ID=e["RIG_SP_CLIENT_ID"],
                   DATABRICKS_CLIENT_SECRET=e["RIG_SP_CLIENT_SECRET"], PGHOST="localhost", PGPORT=e["PGPORT"],
                   PGDATABASE=e["PGDATABASE"], PGUSER=e["RIG_SP_USER"], PGSSLMODE="require",
                   LAKEBASE_ENDPOINT=e["RIG_ENDPOINT"], LAKEBASE_HOSTS="localhost", LD_PRELOAD=LIB)
    p = run(["psql", "-XAt", "-c", "SELECT current_user"], env)
    assert p.returncode == 0 and p.stdout.strip() == e["RIG_SP_USER"], p.stderr
    # The same through `lakebase exec`, which does the preloading itself.
    del env["LD_PRELOAD"]
    p = run([os.path.join(LIBDIR, "lakebase"), "exec", "--", "psql", "-XAt", "-c", "SELECT current_user"], env)
    assert p.returncode == 0 and p.stdout.strip() == e["RIG_SP_USER"], p.stderr


# --- programs that do not use libpq ----------------------------------------------------------

def test_no_effect_on_programs_without_libpq(rig, tmp_path):
    env = lb_env(rig, tmp_path)
    assert run(["true"], env).returncode == 0
    p = run(["sh", "-c", "echo hello"], env)
    assert p.stdout == "hello\n"
    # No thread is started: a preloaded process that never calls libpq has exactly one.
    proc = subprocess.Popen(["sleep", "30"], env=env)
    try:
        maps = ""
        for _ in range(500):  # until the dynamic loader has mapped us (bounded)
            maps = open("/proc/%d/maps" % proc.pid).read()
            if "liblakebase.so" in maps and "/sleep" in maps:
                break
            time.sleep(0.01)
        assert "liblakebase.so" in maps
        assert len(os.listdir("/proc/%d/task" % proc.pid)) == 1
    finally:
        proc.kill()
        proc.wait()
    assert sum(rig.fake.stats()["requests"].values()) == 0
