"""Real clients that cannot use libpq injection, through the proxy against the rig's PostgreSQL."""
import asyncio
import os
import signal
import subprocess
import threading

import pytest

from conftest import DB, HERE, admin_sql, kv, mints, psql, run, wait_until


def test_psql_with_tls_disabled_and_preferred(rig, proxy):
    user = rig.env()["RIG_USER"]
    assert psql(proxy.dsn(), "select current_user, 1 + 1")[1] == "%s|2" % user
    # sslmode=prefer: the proxy answers the SSLRequest with 'N' on loopback and libpq goes on in clear.
    assert psql(proxy.dsn(sslmode="prefer"), "select current_user")[1] == user
    # A password the client sends is ignored (the proxy never asks for one).
    assert psql(proxy.dsn(password="not-a-token"), "select 3")[1] == "3"
    assert mints(rig) == 1


def test_pgbench_init_select_only_and_reconnecting(rig, proxy):
    env = {"PGHOST": "127.0.0.1", "PGPORT": str(proxy.port), "PGUSER": rig.env()["RIG_USER"], "PGSSLMODE": "disable"}
    e = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    e.update(env)
    run(["pgbench", "-i", "-q", "-s", "1", DB], env=e)
    out = run(["pgbench", "-n", "-S", "-c", "4", "-j", "2", "-t", "200", DB], env=e)
    assert "number of failed transactions: 0" in out, out
    assert "number of transactions actually processed: 800/800" in out, out
    out = run(["pgbench", "-n", "-S", "-C", "-c", "2", "-j", "2", "-t", "20", DB], env=e)
    assert "number of transactions actually processed: 40/40" in out, out
    assert mints(rig) == 1, "one token for every connection"


def test_psycopg_pure_python_with_cancel(rig, proxy):
    import psycopg
    assert psycopg.pq.__impl__ == "python", "the test must run the pure-Python psycopg"
    with psycopg.connect(proxy.dsn()) as c:
        assert c.execute("select current_user, %s::int + 1", (41,)).fetchone() == (rig.env()["RIG_USER"], 42)
        t = threading.Timer(0.3, c.cancel_safe)
        t.start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("select pg_sleep(30)")
        t.join()
        c.rollback()
        assert c.execute("select 5").fetchone() == (5,)
    assert proxy.metrics()["lakebase_proxy_cancel_requests_forwarded_total"] == 1


def test_asyncpg(rig, proxy):
    import asyncpg

    async def main():
        c = await asyncpg.connect(host="127.0.0.1", port=proxy.port, user=rig.env()["RIG_USER"], database=DB, ssl=False)
        try:
            row = await c.fetchrow("select current_user as u, $1::int + 1 as n", 41)
            # asyncpg's cancel: a CancelRequest when the timeout expires.
            with pytest.raises(asyncio.TimeoutError):
                await c.execute("select pg_sleep(30)", timeout=0.3)
            after = await c.fetchval("select 9")
            return row["u"], row["n"], after
        finally:
            await c.close()

    assert asyncio.run(main()) == (rig.env()["RIG_USER"], 42, 9)
    proxy.wait_metric("lakebase_proxy_cancel_requests_forwarded_total", lambda v: v == 1)


def test_node_postgres(rig, proxy):
    out = run(["node", os.path.join(HERE, "node", "client.js"), "127.0.0.1", str(proxy.port), rig.env()["RIG_USER"], DB])
    assert kv(out) == {"user": rig.env()["RIG_USER"], "sum": "42", "rows": "50000", "pool": str(sum(range(20)))}


def test_php_pdo_and_pg_connect(rig, proxy):
    out = run(["php", os.path.join(HERE, "php", "client.php"), "127.0.0.1", str(proxy.port), rig.env()["RIG_USER"], DB])
    u = rig.env()["RIG_USER"]
    assert kv(out) == {"pdo_user": u, "pdo_sum": "42", "pg_user": u, "pg_product": "42"}


def test_jdbc_hikaricp_with_statement_cancel(rig, proxy):
    jdbc = os.path.join(HERE, "jdbc")
    cp_file = os.path.join(jdbc, "classpath.txt")
    assert os.path.exists(cp_file), "run scripts/install-deps-proxy.sh (resolves pgjdbc and HikariCP)"
    cp = open(cp_file).read().strip()
    out = run(["java", "-cp", cp, os.path.join(jdbc, "ProxyJdbc.java"), "127.0.0.1", str(proxy.port),
               rig.env()["RIG_USER"], DB], timeout=180)
    r = kv(out)
    assert r["user"] == rig.env()["RIG_USER"]
    assert r["sum"] == str(sum(range(1, 21)))
    assert r["cancel"] == "57014", out
    assert int(r["cancel_ms"]) < 10000
    assert r["after_cancel"] == "7"
    assert mints(rig) == 1


def test_pgx_without_cgo(rig, proxy, tmp_path):
    exe = str(tmp_path / "pgx-client")
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod", GOPROXY="off")
    run(["go", "build", "-o", exe, "."], env=env, cwd=os.path.join(HERE, "pgx"), timeout=300)
    # Really without cgo: a static binary with no libpq or libc.
    ldd = subprocess.run(["ldd", exe], capture_output=True, text=True)
    assert "not a dynamic executable" in (ldd.stdout + ldd.stderr), ldd.stdout
    dsn = "postgres://%s@127.0.0.1:%d/%s?sslmode=disable" % (rig.env()["RIG_USER"].replace("@", "%40"), proxy.port, DB)
    before = proxy.metrics().get("lakebase_proxy_cancel_requests_forwarded_total") or 0
    r = kv(run([exe, dsn]))
    assert r["user"] == rig.env()["RIG_USER"] and r["sum"] == "42"
    assert r["cancel"] in ("57014", "timeout")
    assert int(r["cancel_ms"]) < 10000
    # pgx sends a CancelRequest when the deadline passes and may send another while it waits for
    # the query to end (a slow machine): at least one reached the server through the proxy.
    proxy.wait_metric("lakebase_proxy_cancel_requests_forwarded_total", lambda v: v >= before + 1)


def test_psql_cancel_request_like_ctrl_c(rig, proxy):
    """psql's ^C is PQcancel: a CancelRequest on a new connection with the backend key."""
    p = subprocess.Popen(["psql", "-X", "-At", proxy.dsn(), "-c", "select pg_sleep(31)"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("PG")})
    running = "select count(*) from pg_stat_activity where query = 'select pg_sleep(31)' and state = 'active'"
    wait_until(lambda: admin_sql(rig, running) == "1", what="the query to start")
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=10)
    assert "canceling statement due to user request" in err, err
