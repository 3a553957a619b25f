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
    # The rig's server certificate is signed by its own CA: trusted as a user of a private CA
    # would (the library verifies the server before it sends a token).
    env["PGSSLROOTCERT"] = e["RIG_CA_FILE"]
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
    assert minted(rig) == 1  # one for both pgbench processes: the second one's comes from the shared cache


def test_pg_dump(rig, tmp_path):
    p = run(["pg_dump", "-s", conninfo(rig)], lb_env(rig, tmp_path))
    assert p.returncode == 0, p.stderr
    assert "PostgreSQL database dump" in p.stdout


def test_sslmode_disable_is_refused_with_a_clear_error(rig, tmp_path):
    p = run(["psql", "-XAt", conninfo(rig, sslmode="disable"), "-c", "SELECT 1"], lb_env(rig, tmp_path))
    assert p.returncode != 0
    assert "without TLS" in p.stderr and "sslmode=verify-full" in p.stderr
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


def test_a_panic_while_deciding_falls_back_to_the_real_libpq(rig, tmp_path):
    """The hook panics before the real call (test failpoint): libpq runs exactly as without the
    library - here, it asks for the password nobody gave - and the process lives on."""
    env = lb_env(rig, tmp_path, LAKEBASE_TEST_PANIC="decide")
    p = run(["psql", "-XAt", "-w", conninfo(rig), "-c", "SELECT 1"], env)
    assert p.returncode == 2, p.stderr
    assert "no password supplied" in p.stderr
    assert "panicked" in p.stderr          # Rust's panic message, caught at the hook
    assert minted(rig) == 0
    # With a password, the real call goes through unchanged and logs in.
    user = rig.env()["RIG_USER"]
    token, _ = rig.fake.mint_lakebase_token(user)
    ok = run(["psql", "-XAt", "-w", conninfo(rig, user=user, sslmode="require"), "-c", "SELECT current_user"],
             dict(env, PGPASSWORD=token))
    assert (ok.returncode, ok.stdout.strip()) == (0, user), ok.stderr


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
    # A fresh shared cache: the first run's discovery is remembered there (real hosts never move).
    p = run(["psql", "-XAt", conninfo(rig), "-c", "SELECT current_user"],
            lb_env(rig, tmp_path, target=None, LAKEBASE_CACHE_DIR=tmp_path / "cache2"))
    assert p.returncode == 0, p.stderr
    assert requests(rig, PROV) == 1


def test_databricks_app_environment_needs_nothing_else(rig, tmp_path):
    """A Databricks App gets DATABRICKS_HOST, DATABRICKS_CLIENT_ID/SECRET, PG* and LAKEBASE_ENDPOINT
    from its runtime; an unmodified libpq program then just connects."""
    e = rig.env()
    env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_CLIENT_ID=e["RIG_SP_CLIENT_ID"],
                   DATABRICKS_CLIENT_SECRET=e["RIG_SP_CLIENT_SECRET"], PGHOST="localhost", PGPORT=e["PGPORT"],
                   PGDATABASE=e["PGDATABASE"], PGUSER=e["RIG_SP_USER"], PGSSLMODE="require",
                   LAKEBASE_ENDPOINT=e["RIG_ENDPOINT"], LAKEBASE_HOSTS="localhost", LD_PRELOAD=LIB,
                   # Real Lakebase certificates chain to a public CA in the system store; the rig's
                   # CA stands in for that store (SSL_CERT_FILE, as OpenSSL reads it).
                   SSL_CERT_FILE=e["RIG_CA_FILE"])
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


# --- issue 11: real programs, real service behaviour ------------------------------------------

def checks(rig):
    """How many logins the server checked (every password PostgreSQL received)."""
    c = rig.fake.stats()["checks"]
    return c["ok"] + c["failed"]


def api_requests(rig):
    return sum(rig.fake.stats()["requests"].values())


def timed(cmd, env, **kw):
    t0 = time.monotonic()
    p = run(cmd, env, **kw)
    return p, time.monotonic() - t0


def test_pg_isready_needs_no_workspace_with_the_api_down(rig, tmp_path):
    """pg_isready pings: the server asking for a password already means "accepting". With every
    workspace request hanging, the ping answers at once and nothing is minted or looked up."""
    rig.fake.add_fault({"path": "/", "action": "hang", "count": -1, "hang_ms": 30000})
    env = lb_env(rig, tmp_path, target=None)
    for args in (["-d", conninfo(rig)], ["-h", "localhost", "-p", rig.env()["PGPORT"]]):
        p, took = timed(["pg_isready"] + args, env)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "accepting connections" in p.stdout
        assert took < 2, took
    assert api_requests(rig) == 0 and minted(rig) == 0 and checks(rig) == 0


def test_ping_entry_points_pass_through_without_a_token(rig, tmp_path, c_programs):
    env = lb_env(rig, tmp_path, preload=False, DATABRICKS_HOST="http://127.0.0.1:1")
    for api in ("ping", "lakebase_ping"):
        p, took = timed([os.path.join(BUILD, "pqconnect"), api, conninfo(rig)], env)
        assert p.stdout.strip() == "ping 0", p.stdout + p.stderr
        assert took < 2, took
    assert checks(rig) == 0


def test_pg_dump_parallel_and_pg_restore_create_without_a_user(rig, tmp_path):
    """pg_dump -j and pg_restore -C/-j reconnect with PQpass() of their first connection as an
    explicit password and no user: the library recognises its own token (identity as user, TLS
    rules) instead of letting libpq log in as the OS user with sslmode=prefer."""
    e = rig.env()
    user = e["RIG_USER"]
    rig.pg.admin_psql('ALTER ROLE "%s" CREATEDB' % user)
    rig.pg.admin_psql("DROP DATABASE IF EXISTS lbsrc")
    rig.pg.admin_psql('CREATE DATABASE lbsrc OWNER "%s"' % user)
    rig.pg.admin_psql('CREATE TABLE public.t1 (i int); CREATE TABLE public.t2 (i int); INSERT INTO t1 VALUES (1), (2);'
                      'INSERT INTO t2 VALUES (3); ALTER TABLE t1 OWNER TO "%s"; ALTER TABLE t2 OWNER TO "%s"' % (user, user),
                      database="lbsrc")
    try:
        env = lb_env(rig, tmp_path)
        out = tmp_path / "dump"
        p = run(["pg_dump", "-Fd", "-j", "2", "-f", str(out), conninfo(rig, dbname="lbsrc")], env)
        assert p.returncode == 0, p.stderr
        rig.pg.admin_psql("DROP DATABASE lbsrc")
        # -C: connect to databricks_postgres, CREATE DATABASE lbsrc, reconnect to it; -j 2: the
        # workers reconnect too.
        p = run(["pg_restore", "-C", "-j", "2", "--no-owner", "-d", conninfo(rig), str(out)], env)
        assert p.returncode == 0, p.stderr
        p = run(["psql", "-XAt", conninfo(rig, dbname="lbsrc"), "-c", "SELECT (SELECT sum(i) FROM t1) + (SELECT sum(i) FROM t2)"], env)
        assert p.returncode == 0 and p.stdout.strip() == "6", p.stderr
        c = rig.fake.stats()["checks"]
        assert c["failed"] == 0 and c["logins"] == {user: c["ok"]}, c
        assert c["ok"] >= 6, c  # dump: 1 + 2 workers; restore: 2 + 2 workers; psql: 1
    finally:
        rig.pg.admin_psql("DROP DATABASE IF EXISTS lbsrc")
        rig.pg.admin_psql('ALTER ROLE "%s" NOCREATEDB' % user)


def test_a_token_handed_back_gets_the_identity_and_tls_rules(rig, tmp_path, c_programs):
    """What pg_dump does, by hand: a program reads the injected password and reconnects with it
    and no user, sslmode=prefer. The library treats its own token as injected; a password it did
    not mint is left alone."""
    code = r"""
import ctypes, sys
pq = ctypes.CDLL("libpq.so.5")
pq.PQconnectdb.restype = pq.PQpass.restype = pq.PQerrorMessage.restype = ctypes.c_void_p
for f in (pq.PQpass, pq.PQstatus, pq.PQfinish, pq.PQerrorMessage, pq.PQuser, pq.PQsslInUse):
    f.argtypes = [ctypes.c_void_p]
pq.PQuser.restype = ctypes.c_char_p
c = pq.PQconnectdb(sys.argv[1].encode())
assert pq.PQstatus(c) == 0, ctypes.string_at(pq.PQerrorMessage(c))
token = ctypes.string_at(pq.PQpass(c))
ci = ("%s password='%s' sslmode=prefer" % (sys.argv[1], token.decode())).encode()
c2 = pq.PQconnectdb(ci)
print(pq.PQstatus(c2), pq.PQuser(c2).decode(), pq.PQsslInUse(c2))
c3 = pq.PQconnectdb((sys.argv[1] + " password=not-ours sslmode=prefer").encode())
print(pq.PQstatus(c3))
"""
    # ctypes resolves libpq's own PQconnectdb, so the calls go through a C program's PLT here:
    # the python interpreter calls through ctypes -> dlsym; to reach the interposer, preload it
    # and call the default-scope symbol instead.
    code = code.replace('ctypes.CDLL("libpq.so.5")', 'ctypes.CDLL(None)')
    env = lb_env(rig, tmp_path, LD_PRELOAD=LIB + " libpq.so.5")
    p = run([sys.executable, "-c", code, conninfo(rig)], env)
    assert p.returncode == 0, p.stdout + p.stderr
    first, second = p.stdout.split("\n")[:2]
    assert first == "0 %s 1" % rig.env()["RIG_USER"], p.stdout
    assert second == "1", p.stdout  # not our token: untouched, libpq logs in as the OS user and fails
    assert minted(rig) == 1


def test_expand_dbname_follows_libpq_exactly(rig, tmp_path, c_programs):
    """PQconnectdbParams({"dbname","dbname"}, {"", "host=<lakebase> ..."}, 1): libpq expands only
    the first non-NULL dbname (""), so the second is a database name and the host is PGHOST's —
    not a Lakebase host here. No token may be minted or sent."""
    e = rig.env()
    env = lb_env(rig, tmp_path, preload=False, PGHOST="127.0.0.1", PGPORT=e["PGPORT"])
    p = run([os.path.join(BUILD, "pqconnect"), "dbname2", conninfo(rig)], env)
    assert p.stdout.startswith("fail") and "no password supplied" in p.stdout, p.stdout + p.stderr
    assert minted(rig) == 0 and checks(rig) == 0


def test_keyword_arrays_longer_than_1000_are_read_whole(rig, tmp_path, c_programs):
    p = run([os.path.join(BUILD, "pqconnect"), "long", conninfo(rig)], lb_env(rig, tmp_path, preload=False))
    assert p.stdout.strip() == "ok %s ssl=on" % rig.env()["RIG_USER"], p.stdout + p.stderr


def test_pgpass_is_honoured_with_no_databricks_configuration_and_the_workspace_down(rig, tmp_path):
    e = rig.env()
    token = rig.fake.mint_lakebase_token(e["RIG_USER"])[0]
    pgpass = tmp_path / "pgpass"
    pgpass.write_text("localhost:%s:*:%s:%s\n" % (e["PGPORT"], e["RIG_USER"], token))
    pgpass.chmod(0o600)
    # No Databricks configuration at all.
    env = lb_env(rig, tmp_path, PGPASSFILE=str(pgpass))
    for k in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "LAKEBASE_INSTANCE"):
        env.pop(k)
    p = run(["psql", "-XAt", conninfo(rig, user=e["RIG_USER"]), "-c", "SELECT current_user"], env)
    assert p.returncode == 0 and p.stdout.strip() == e["RIG_USER"], p.stderr
    # The workspace down (every request hangs): untouched and fast.
    rig.fake.add_fault({"path": "/", "action": "hang", "count": -1, "hang_ms": 30000})
    env = lb_env(rig, tmp_path, PGPASSFILE=str(pgpass), target=None)
    p, took = timed(["psql", "-XAt", conninfo(rig, user=e["RIG_USER"]), "-c", "SELECT current_user"], env)
    assert p.returncode == 0 and p.stdout.strip() == e["RIG_USER"], p.stderr
    assert took < 5, took
    assert api_requests(rig) == 0


def test_service_file_password_with_a_non_utf8_byte_is_honoured(rig, tmp_path):
    e = rig.env()
    token = rig.fake.mint_lakebase_token(e["RIG_USER"])[0]
    svc = tmp_path / "pg_service.conf"
    svc.write_bytes(b"# caf\xe9 (Latin-1)\n[lb]\nhost=localhost\nport=%s\ndbname=%s\nuser=%s\npassword=%s\nsslmode=require\n"
                    % (e["PGPORT"].encode(), e["PGDATABASE"].encode(), e["RIG_USER"].encode(), token.encode()))
    env = lb_env(rig, tmp_path, PGSERVICEFILE=str(svc), PGSYSCONFDIR=str(tmp_path))
    p = run(["psql", "-XAt", "service=lb", "-c", "SELECT current_user"], env)
    assert p.returncode == 0 and p.stdout.strip() == e["RIG_USER"], p.stderr
    assert api_requests(rig) == 0


def test_the_token_goes_only_to_a_server_that_verifies(rig, tmp_path):
    """Without the CA that signed the server's certificate, the default (verify-full, including
    for an explicit sslmode=require) refuses the server before the token is sent; the user's
    root certificate and verify-ca/verify-full are kept; LAKEBASE_VERIFY_SERVER=0 restores plain
    require."""
    e = rig.env()
    env = lb_env(rig, tmp_path)
    del env["PGSSLROOTCERT"]
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_text(open("/etc/ssl/certs/ca-certificates.crt").read())
    for extra in ({}, {"sslmode": "require"}, {"sslmode": "prefer"}, {"sslmode": "verify-full", "sslrootcert": str(other_ca)}):
        p = run(["psql", "-XAt", conninfo(rig, **extra), "-c", "SELECT 1"], env)
        assert p.returncode != 0 and "certificate verify failed" in p.stderr, (extra, p.stderr)
    assert checks(rig) == 0, "a token reached an unverified server"
    # The user's own root certificate (~/.postgresql/root.crt, then sslrootcert) is used.
    home = tmp_path / "home" / ".postgresql"
    home.mkdir(parents=True)
    (home / "root.crt").write_text(open(e["RIG_CA_FILE"]).read())
    for extra in ({}, {"sslmode": "require"}, {"sslmode": "verify-ca"}):
        p = run(["psql", "-XAt", conninfo(rig, **extra), "-c", SSL_USER], env)
        assert p.returncode == 0 and p.stdout.strip().endswith(" true"), (extra, p.stderr)
    (home / "root.crt").unlink()
    p = run(["psql", "-XAt", conninfo(rig, sslrootcert=e["RIG_CA_FILE"], sslmode="require"), "-c", "SELECT 1"], env)
    assert p.returncode == 0, p.stderr
    # The documented opt-out: encrypted but unverified, as plain sslmode=require.
    p = run(["psql", "-XAt", conninfo(rig), "-c", SSL_USER], dict(env, LAKEBASE_VERIFY_SERVER="0"))
    assert p.returncode == 0 and p.stdout.strip().endswith(" true"), p.stderr


def test_server_name_is_verified_not_just_the_chain(rig, tmp_path, c_programs):
    """The certificate is for localhost/127.0.0.1/::1: a name that resolves to the same server but
    is not in the certificate is refused (verify-full, not verify-ca)."""
    e = rig.env()
    env = lb_env(rig, tmp_path, LAKEBASE_HOSTS="localhost,*.localtest")
    hostaddr = conninfo(rig, host="db.localtest") + " hostaddr=127.0.0.1"
    p = run(["psql", "-XAt", hostaddr, "-c", "SELECT 1"], env)
    assert p.returncode != 0 and "does not match host name" in p.stderr, p.stderr
    assert checks(rig) == 0


def test_one_deadline_for_discovery_identity_and_mint(rig, tmp_path):
    """Every step a blocked connect waits for is slow (6 s each: instance listing, SCIM /Me, the
    mint): together they share the documented 15 s, so the connect fails by then instead of
    taking 18 s or more."""
    for path in ("/api/2.0/database/instances", "/api/2.0/preview/scim/v2/Me"):
        rig.fake.add_fault({"path": path, "action": "delay", "delay_ms": 6000, "count": -1})
    # The mint never answers (a delayed one would mint after this test, into the next one).
    rig.fake.add_fault({"path": "/api/2.0/database/credentials", "action": "hang", "hang_ms": 6000, "count": -1})
    p, took = timed(["psql", "-XAt", conninfo(rig), "-c", "SELECT 1"], lb_env(rig, tmp_path, target=None))
    assert p.returncode != 0, p.stdout
    assert 11 < took < 17.5, took
    assert "liblakebase" in p.stderr


def test_discovery_is_single_flight_and_its_failure_is_cached(rig, tmp_path, c_programs):
    """pgbench with 4 threads connecting at once and no target configured: one instance listing."""
    env = lb_env(rig, tmp_path, target=None)
    rig.fake.add_fault({"path": "/api/2.0/database/instances", "action": "delay", "delay_ms": 500, "count": -1})
    p = run(["pgbench", "-n", "-c", "4", "-j", "4", "-t", "1", "-f", "/dev/stdin", conninfo(rig)], env, input="SELECT 1;\n")
    assert p.returncode == 0 and "number of failed transactions: 0" in p.stdout, p.stdout + p.stderr
    assert requests(rig, "GET /api/2.0/database/instances") == 1
    # A host no database has: three connects in a row, one lookup (the failure is cached briefly).
    rig.fake.reset()
    e = rig.env()
    from rig import http_json
    http_json(e["FAKE_URL"], "POST", "/_fake/instances", {"name": e["RIG_INSTANCE"], "read_write_dns": "elsewhere.example",
                                                         "read_only_dns": None})
    http_json(e["FAKE_URL"], "POST", "/_fake/endpoints", {"name": e["RIG_ENDPOINT"], "host": "ep-other.example"})
    proc = subprocess.run([os.path.join(BUILD, "pqconnect"), "connectdb", conninfo(rig), "3"], input="\n\n",
                          env=lb_env(rig, tmp_path, preload=False, target=None), capture_output=True, text=True, timeout=60)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3 and all("no Lakebase instance or endpoint" in l for l in lines), proc.stdout
    assert requests(rig, "GET /api/2.0/database/instances") == 1


# --- the real service's rejection texts (rig: pg_reject_mode) ---------------------------------

@pytest.mark.parametrize("mode", ["decode", "password", "identity", "lakebase"])
def test_rejected_cached_token_is_retried_whatever_the_lakebase_text(rig, tmp_path, c_programs, mode):
    """The server words the rejection as real Lakebase does (`Failed to decode token for role`,
    `password authentication failed for user`, the identity-mismatch text), with no SQLSTATE in
    libpq's message: the retry is decided on facts (a cached token was sent, the server asked for
    it, the login failed), so every wording gets one new token and a successful login."""
    rig.fake.update_settings({"pg_reject_mode": mode})
    for api in ("params", "lakebase_params"):
        rig.fake.reset()
        rig.fake.update_settings({"pg_reject_mode": mode})
        proc = subprocess.Popen([os.path.join(BUILD, "pqconnect"), api, conninfo(rig), "2"],
                                env=lb_env(rig, tmp_path, preload=False, LAKEBASE_LOG="info"), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = proc.stdout.readline()
        assert first.startswith("ok"), first
        rig.fake.revoke()
        out, err = proc.communicate("next\n", timeout=60)
        assert out.strip() == "ok %s ssl=on" % rig.env()["RIG_USER"], out + err
        assert minted(rig) == 2, (err, rig.fake.stats())
        c = rig.fake.stats()["checks"]
        assert c["failed"] == 1 and c["ok"] == 2, c


def test_a_rejected_fresh_token_is_not_retried(rig, tmp_path, c_programs):
    """A token minted for this very connect that is refused (here: a role the token is not for,
    worded as Lakebase's identity mismatch) is not retried: one mint, one login attempt."""
    rig.fake.update_settings({"pg_reject_mode": "identity"})
    e = rig.env()
    p = run([os.path.join(BUILD, "pqconnect"), "connectdb", conninfo(rig, user=e["RIG_SP_USER"])], lb_env(rig, tmp_path, preload=False))
    assert p.stdout.startswith("fail") and "did not match the security label" in p.stdout, p.stdout
    assert minted(rig) == 1 and rig.fake.stats()["checks"]["failed"] == 1


# --- waking endpoints (rig: the cold-start front) ---------------------------------------------

def control(rig, method, path, body=None):
    status, out = rig.control(method, path, body)
    assert status == 200, (path, status, out)
    return out


def cold(rig, path="", body=None):
    return control(rig, "POST" if body is not None else "GET", "/_fake/cold" + path, body)


def cold_env(rig, tmp_path, **extra):
    return lb_env(rig, tmp_path, preload=False, LAKEBASE_HOSTS="127.0.0.1", **extra)


def cold_ci(rig, **kv):
    # One address (127.0.0.1): libpq tries every address of a name, which would double the attempts.
    return conninfo(rig, host="127.0.0.1", port=rig.env()["RIG_COLD_PORT"], **kv)


def pqconnect(rig, env, api="connectdb", ci=None):
    t0 = time.monotonic()
    p = run([os.path.join(BUILD, "pqconnect"), api, ci or cold_ci(rig)], env)
    return p, time.monotonic() - t0


@pytest.mark.parametrize("api", ["connectdb", "lakebase_connectdb"])
def test_waking_endpoint_refusing_connections_is_retried(rig, tmp_path, c_programs, api):
    cold(rig, "/arm", {"mode": "refuse", "wake_ms": 1500, "now": True})
    p, took = pqconnect(rig, cold_env(rig, tmp_path), api)
    assert p.stdout.strip() == "ok %s ssl=on" % rig.env()["RIG_USER"], p.stdout + p.stderr
    assert 1.2 < took < 6, took
    st = cold(rig)
    assert st["counters"]["forwarded"] == 1 and st["counters"]["wakeups"] == 1, st


@pytest.mark.parametrize("mode", ["reset", "starting"])
def test_waking_endpoint_resetting_or_starting_up_is_retried(rig, tmp_path, c_programs, mode):
    """Connections reset, or answered `57P03 the database system is starting up`, three times."""
    cold(rig, "/arm", {"mode": mode, "wake_attempts": 3, "wake_ms": None})
    p, took = pqconnect(rig, cold_env(rig, tmp_path))
    assert p.stdout.strip() == "ok %s ssl=on" % rig.env()["RIG_USER"], p.stdout + p.stderr
    st = cold(rig)
    assert st["counters"]["attempts"] == 4 and st["counters"]["forwarded"] == 1, st
    assert minted(rig) == 1 and rig.fake.stats()["checks"]["ok"] == 1


def test_waking_endpoint_that_stalls_is_retried_after_an_attempt_timeout(rig, tmp_path, c_programs):
    """Accepted and never answered: with no connect_timeout set each attempt gets a third of the
    10 s budget (4 s), then the next attempt finds the endpoint awake."""
    cold(rig, "/arm", {"mode": "stall", "wake_ms": 1000})
    p, took = pqconnect(rig, cold_env(rig, tmp_path))
    assert p.stdout.strip() == "ok %s ssl=on" % rig.env()["RIG_USER"], p.stdout + p.stderr
    assert 3.5 < took < 9, took
    assert cold(rig)["counters"]["stalled"] == 1


def test_psql_through_a_waking_endpoint(rig, tmp_path):
    cold(rig, "/arm", {"mode": "starting", "wake_ms": 1200, "now": True})
    env = lb_env(rig, tmp_path, LAKEBASE_HOSTS="127.0.0.1")
    p = run(["psql", "-XAt", cold_ci(rig), "-c", "SELECT current_user"], env)
    assert p.returncode == 0 and p.stdout.strip() == rig.env()["RIG_USER"], p.stderr
    assert cold(rig)["counters"]["starting"] >= 1


def test_waking_retries_end_within_the_budget(rig, tmp_path, c_programs):
    """An endpoint that does not wake: the connect gives up within connect_timeout (here 3 s),
    LAKEBASE_CONNECT_RETRY wins over it, and LAKEBASE_CONNECT_RETRY=0 turns retries off."""
    cold(rig, "/arm", {"mode": "refuse", "wake_ms": None, "now": True})
    p, took = pqconnect(rig, cold_env(rig, tmp_path), ci=cold_ci(rig, connect_timeout=3))
    assert p.stdout.startswith("fail") and "Connection refused" in p.stdout, p.stdout
    assert 1.5 < took < 4, took  # 250 + 500 + 1000 ms of backoff, then the next pause would pass 3 s
    p, took = pqconnect(rig, cold_env(rig, tmp_path, LAKEBASE_CONNECT_RETRY="2"), ci=cold_ci(rig, connect_timeout=30))
    assert p.stdout.startswith("fail") and 0.6 < took < 3, (p.stdout, took)
    p, took = pqconnect(rig, cold_env(rig, tmp_path, LAKEBASE_CONNECT_RETRY="0"))
    assert p.stdout.startswith("fail") and took < 1.5, (p.stdout, took)


def test_authentication_and_missing_database_are_never_retried_as_waking(rig, tmp_path, c_programs):
    e = rig.env()
    # Warm endpoint; a database that does not exist: one attempt, at once.
    p, took = pqconnect(rig, cold_env(rig, tmp_path), ci=cold_ci(rig, dbname="no_such_db"))
    assert p.stdout.startswith("fail") and "does not exist" in p.stdout, p.stdout
    assert took < 2 and cold(rig)["counters"]["attempts"] == 1, (took, cold(rig))
    # The token refused for another role: no waking retry either.
    rig.fake.reset()
    p, took = pqconnect(rig, cold_env(rig, tmp_path), ci=cold_ci(rig, user=e["RIG_SP_USER"]))
    assert p.stdout.startswith("fail"), p.stdout
    assert took < 2 and cold(rig)["counters"]["attempts"] == 1, (took, cold(rig))


# --- TLS impostors: the token goes only to a verified server -----------------------------------

def impostors(rig):
    return control(rig, "GET", "/_fake/impostors")


@pytest.mark.parametrize("kind", ["UNTRUSTED", "WRONG_HOST", "PLAINTEXT"])
def test_a_tls_impostor_never_receives_the_token(rig, tmp_path, c_programs, kind):
    """An impostor on the path (self-signed certificate, a certificate for another name from the
    right CA, no TLS at all), reached with the sslmodes every Databricks snippet uses."""
    e = rig.env()
    port = e["RIG_IMPOSTOR_%s_PORT" % kind]
    env = lb_env(rig, tmp_path)
    for mode in (None, "require", "prefer", "allow"):
        p = run(["psql", "-XAt", conninfo(rig, port=port, sslmode=mode), "-c", "SELECT 1"], env)
        assert p.returncode != 0, (mode, p.stdout)
    for api in ("connectdb", "lakebase_connectdb"):
        p = run([os.path.join(BUILD, "pqconnect"), api, conninfo(rig, port=port, sslmode="require")], lb_env(rig, tmp_path, preload=False))
        assert p.stdout.startswith("fail"), p.stdout
    got = impostors(rig)
    assert got["tokens_received"] == 0 and got["passwords_received"] == 0, got["attempts"]


def test_the_opt_out_restores_plain_require(rig, tmp_path):
    """LAKEBASE_VERIFY_SERVER=0 is plain sslmode=require: encrypted, unverified — the untrusted
    impostor gets the token (which is why it is not the default); a plaintext server still not."""
    e = rig.env()
    env = lb_env(rig, tmp_path, LAKEBASE_VERIFY_SERVER="0")
    del env["PGSSLROOTCERT"]  # with a root certificate libpq's require checks the chain (verify-ca)
    run(["psql", "-XAt", conninfo(rig, port=e["RIG_IMPOSTOR_UNTRUSTED_PORT"]), "-c", "SELECT 1"], env)
    run(["psql", "-XAt", conninfo(rig, port=e["RIG_IMPOSTOR_PLAINTEXT_PORT"]), "-c", "SELECT 1"], env)
    got = impostors(rig)
    kinds = [a["impostor"] for a in got["attempts"] if a["password_received"]]
    assert kinds == ["untrusted"] and got["tokens_received"] == 1, got["attempts"]


def test_system_ca_store_for_every_libpq_version_in_one_process(rig, tmp_path):
    """No root certificate of the user's: the system store is used — `sslrootcert=system` for the
    wheels' libpq >= 16, the bundle file for the system libpq 15 (psql) — here with the rig's CA
    standing in for the store (SSL_CERT_FILE, which OpenSSL reads in both cases)."""
    code = """
import psycopg2, psycopg
ci = %r
c2 = psycopg2.connect(ci)
cur = c2.cursor(); cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"); s2 = cur.fetchone()[0]
c3 = psycopg.connect(ci)
s3 = c3.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
print(s2, s3, psycopg2.__libpq_version__ >= 160000 or psycopg.pq.version() >= 160000)
""" % conninfo(rig, sslmode="require")
    env = lb_env(rig, tmp_path, SSL_CERT_FILE=rig.env()["RIG_CA_FILE"])
    del env["PGSSLROOTCERT"]
    p = run([sys.executable, "-c", code], env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["True", "True", "True"], p.stdout
    p = run(["psql", "-XAt", conninfo(rig), "-c", SSL_USER], env)
    assert p.returncode == 0 and p.stdout.strip().endswith(" true"), p.stderr
    # And without it the store does not trust the rig's CA: refused before the token is sent.
    del env["SSL_CERT_FILE"]
    p = run([sys.executable, "-c", code], env)
    assert p.returncode != 0 and "certificate verify failed" in p.stderr, p.stderr
    assert rig.fake.stats()["checks"]["failed"] == 0
