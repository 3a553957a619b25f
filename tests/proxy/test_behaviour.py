"""The proxy's behaviour at its edges: rotation, failures, bad clients, shutdown, observability."""
import asyncio
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rig"))

from conftest import DB, PROXY_CMD, admin_sql, clean_env, fake, free_port, mints, psql, wait_until  # noqa: E402
from front import Front  # noqa: E402
from pg import make_tls_material  # noqa: E402


def fatal_of(stderr):
    return stderr.split("FATAL:", 1)[-1].strip() if "FATAL" in stderr else stderr


# --- rotation -------------------------------------------------------------------------------

def test_open_connection_survives_token_expiry_and_new_ones_get_a_new_token(rig, proxy):
    import psycopg
    held = psycopg.connect(proxy.dsn(), autocommit=True)
    assert held.execute("select 1").fetchone() == (1,)
    assert mints(rig) == 1
    # Two hours later (fake clock): the cached token has expired for the server, not for the cache.
    fake(rig, "/_fake/clock", {"advance_seconds": 7200})
    assert held.execute("select 2").fetchone() == (2,), "Lakebase checks the token at login only"
    # New connections: the server rejects the expired token, the proxy mints once and retries.
    with psycopg.connect(proxy.dsn()) as c:
        assert c.execute("select current_user").fetchone() == (rig.env()["RIG_USER"],)
    assert mints(rig) == 2
    assert fake(rig, "/_fake/stats")["checks"]["reasons"].get("token expired", 0) >= 1
    m = proxy.metrics()
    assert m["lakebase_proxy_rejected_token_retries_total"] == 1
    assert m['lakebase_proxy_token_mints_total{target="test-instance"}'] == 2
    assert held.execute("select 3").fetchone() == (3,)
    held.close()


def burst(rig, proxy, n, sql="select 1"):
    """n asyncpg connections to the proxy at once, each runs `sql` once; the values."""
    import asyncpg
    user = rig.env()["RIG_USER"]

    async def one():
        c = await asyncpg.connect(host="127.0.0.1", port=proxy.port, user=user, database=DB, ssl=False)
        v = await c.fetchval(sql)
        await c.close()
        return v

    async def all_of_them():
        return await asyncio.gather(*[one() for _ in range(n)])
    return asyncio.run(all_of_them())


def test_one_mint_per_rotation_however_many_connections(rig, proxy):
    assert burst(rig, proxy, 40) == [1] * 40
    assert mints(rig) == 1, "40 concurrent first logins share one mint"
    fake(rig, "/_fake/revoke", {})  # a rotation the cache does not know about
    assert burst(rig, proxy, 40) == [1] * 40
    assert mints(rig) == 2, "40 concurrent rejections cause one refresh"


@pytest.mark.parametrize("threads", ["0", "1", "3"])
def test_runtime_threads(rig, start_proxy, threads):
    """--threads: a single-threaded runtime (1), several workers (3), or the default (0), which is
    single-threaded on a machine with at most 2 CPUs. Rotation works the same on each."""
    proxy = start_proxy(args=["--threads", threads])
    ready = [r for r in proxy.logs if r.get("msg") == "ready"][0]
    got = int(ready["threads"])
    if threads == "0":
        assert got == 1 if len(os.sched_getaffinity(0)) <= 2 else got >= 2, ready
    else:
        assert got == int(threads), ready
    assert len(set(burst(rig, proxy, 20, "select pg_backend_pid()"))) == 20, "one upstream backend per client"
    fake(rig, "/_fake/revoke", {})
    assert burst(rig, proxy, 20) == [1] * 20
    assert mints(rig) == 2, "one mint at the start, one after the rotation"


def test_a_rejection_that_persists_reaches_the_client_after_one_retry(rig, proxy):
    # The SP's role with alice's token: rejected (28000) whatever token the proxy mints.
    rc, _, err = psql(proxy.dsn(user=rig.env()["RIG_SP_USER"]), "select 1", check=False)
    assert rc != 0
    assert "PAM authentication failed" in err, err
    assert mints(rig) == 2, "the cached token plus exactly one refresh"
    assert proxy.metrics()["lakebase_proxy_login_failures_total"] == 1


def test_many_concurrent_connections(rig, start_proxy):
    """1,000 client connections open at once, each with its own upstream backend."""
    import asyncpg
    proxy = start_proxy(args=["--connect-timeout", "120s", "--log-level", "info"])
    user = rig.env()["RIG_USER"]
    n = 1000

    async def main():
        sem = asyncio.Semaphore(48)  # logins in flight at once (each one runs the rig's PAM check)

        async def open_one():
            async with sem:
                return await asyncpg.connect(host="127.0.0.1", port=proxy.port, user=user, database=DB, ssl=False,
                                             timeout=120)
        conns = await asyncio.gather(*[open_one() for _ in range(n)])
        try:
            opened = proxy.metrics()["lakebase_proxy_connections_open"]
            values = await asyncio.gather(*[c.fetchval("select $1::int", i) for i, c in enumerate(conns)])
            return opened, values
        finally:
            await asyncio.gather(*[c.close() for c in conns])

    opened, values = asyncio.run(main())
    assert opened == n
    assert values == list(range(n))
    assert mints(rig) == 1
    proxy.wait_metric("lakebase_proxy_connections_open", lambda v: v == 0)


# --- upstream failures ----------------------------------------------------------------------

def test_upstream_down_gives_a_clean_error_and_the_proxy_stays_up(rig, start_proxy):
    port = free_port()
    proxy = start_proxy(upstream="127.0.0.1:%d" % port, args=["--connect-timeout", "700ms"])
    for _ in range(2):
        t0 = time.monotonic()
        rc, _, err = psql(proxy.dsn(), "select 1", check=False)
        assert rc != 0
        assert "lakebase proxy: could not connect to 127.0.0.1:%d after" % port in err, err
        assert "Connection refused" in err or "refused" in err, err
        assert time.monotonic() - t0 < 5
    assert proxy.http("/liveness")[0] == 200
    m = proxy.metrics()
    assert m["lakebase_proxy_login_failures_total"] == 2
    assert m["lakebase_proxy_upstream_connect_retries_total"] >= 2


def test_waking_endpoint_is_retried_until_it_answers(rig, start_proxy):
    e = rig.env()
    front = Front(int(e["PGPORT"]), script=["close", "close", "starting_up", "starting_up"],
                  tls=(rig.tls["cert_file"], rig.tls["key_file"]))
    try:
        proxy = start_proxy(upstream="localhost:%d" % front.port)
        assert psql(proxy.dsn(), "select current_user")[1] == e["RIG_USER"]
        assert front.events[:5] == ["close", "close", "starting_up", "starting_up", "relay"]
        assert proxy.metrics()["lakebase_proxy_upstream_connect_retries_total"] == 4
    finally:
        front.stop()


def test_stalled_endpoint_fails_within_the_connect_deadline(rig, start_proxy):
    front = Front(script=[], default="stall")
    try:
        proxy = start_proxy(upstream="localhost:%d" % front.port, args=["--connect-timeout", "1500ms"])
        t0 = time.monotonic()
        rc, _, err = psql(proxy.dsn(), "select 1", check=False)
        took = time.monotonic() - t0
        assert rc != 0 and "lakebase proxy: could not connect" in err, err
        assert took < 4, took
    finally:
        front.stop()


def test_errors_that_are_not_waking_are_not_retried(rig, proxy):
    rc, _, err = psql(proxy.dsn(dbname="no_such_db"), "select 1", check=False)
    assert rc != 0 and 'database "no_such_db" does not exist' in err, err
    m = proxy.metrics()
    assert m["lakebase_proxy_upstream_connect_retries_total"] == 0
    assert m["lakebase_proxy_rejected_token_retries_total"] == 0


def test_unsupported_server_authentication_is_refused_without_sending_the_token(rig, start_proxy):
    front = Front(script=["auth_md5"], tls=(rig.tls["cert_file"], rig.tls["key_file"]))
    try:
        proxy = start_proxy(upstream="localhost:%d" % front.port)
        rc, _, err = psql(proxy.dsn(), "select 1", check=False)
        assert rc != 0 and "asked for MD5 password authentication" in err, err
        assert len(front.received) == 1, "only the StartupMessage, no password message"
    finally:
        front.stop()


@pytest.mark.parametrize("case", ["untrusted_ca", "wrong_host_name"])
def test_tls_impostor_never_receives_the_token(rig, start_proxy, tmp_path, case):
    if case == "untrusted_ca":
        tls = make_tls_material(str(tmp_path / "impostor"))  # localhost, but another CA
        extra_ca = rig.tls["ca_file"]
    else:
        tls = make_tls_material(str(tmp_path / "impostor"), dns_names=("db.example.invalid",), ips=())
        extra_ca = tls["ca_file"]  # trusted CA, certificate for another name
    front = Front(script=["impostor"], tls=(tls["cert_file"], tls["key_file"]))
    try:
        e = rig.env()
        cmd_env = clean_env(rig, tmp_path / "home")
        proxy = start_proxy(upstream="localhost:%d" % front.port, env=cmd_env,
                            args=["--upstream-ca", extra_ca])
        rc, _, err = psql(proxy.dsn(), "select 1", check=False)
        assert rc != 0 and "TLS with localhost:%d failed" % front.port in err, err
        assert ("UnknownIssuer" in err) if case == "untrusted_ca" else ("not valid for name" in err), err
        assert front.received == [], "the impostor got application data"
        assert e["RIG_PAT"] not in proxy.log_text()
    finally:
        front.stop()


# --- bad clients ----------------------------------------------------------------------------

def raw(proxy, data, read=True, timeout=10):
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    try:
        if data:
            s.sendall(data)
        if not read:
            return s
        out = b""
        while True:
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                break
            if not d:
                break
            out += d
        return out
    finally:
        if read:
            s.close()


def startup(params, version=196608):
    body = struct.pack("!I", version) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def sqlstate(resp):
    assert resp[:1] == b"E", resp
    fields = resp[5:].split(b"\0")
    return next(f[1:].decode() for f in fields if f[:1] == b"C")


@pytest.mark.parametrize("name,data,code", [
    ("huge length", struct.pack("!I", 0x7FFFFFFF) + b"\0\0\0\0", "08P01"),
    ("tiny length", struct.pack("!I", 4), "08P01"),
    ("unterminated parameters", struct.pack("!II", 15, 196608) + b"user\0ab", "08P01"),
    ("protocol 2", startup([("user", "u")], version=131072), "0A000"),
    ("ssl twice", struct.pack("!II", 8, 80877103) * 2, "08P01"),
    ("non-UTF-8 user", struct.pack("!II", 17, 196608) + b"user\0\xff\xfe\0\0", "08P01"),
])
def test_malformed_startup_packets_get_an_error(rig, proxy, name, data, code):
    resp = raw(proxy, data)
    if name == "ssl twice":
        assert resp[:1] == b"N", resp
        resp = resp[1:]
    assert sqlstate(resp) == code, (name, resp)
    assert psql(proxy.dsn(), "select 1")[1] == "1", "the proxy still serves"


def test_slow_startup_is_cut_off(rig, start_proxy):
    proxy = start_proxy(args=["--client-startup-timeout", "500ms"])
    for partial in (b"", struct.pack("!I", 40) + b"\0\3\0\0user"):
        s = raw(proxy, partial, read=False)
        t0 = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - t0 < 5
        s.close()
    assert proxy.metrics()["lakebase_proxy_startup_errors_total"] >= 2
    assert psql(proxy.dsn(), "select 1")[1] == "1"


def test_unknown_cancel_keys_are_ignored(rig, proxy):
    assert raw(proxy, struct.pack("!IIII", 16, 80877102, 1234, 5678)) == b""
    assert proxy.metrics()["lakebase_proxy_cancel_requests_forwarded_total"] == 0


def test_client_vanishing_mid_query_cancels_it_upstream(rig, proxy):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    p = subprocess.Popen(["psql", "-X", proxy.dsn(), "-c", "select pg_sleep(60)"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    running = "select count(*) from pg_stat_activity where query = 'select pg_sleep(60)' and state = 'active'"
    wait_until(lambda: admin_sql(rig, running) == "1", what="the query to start")
    p.kill()
    p.wait()
    wait_until(lambda: admin_sql(rig, running) == "0", timeout=10, what="the upstream query to stop")
    proxy.wait_metric("lakebase_proxy_connections_open", lambda v: v == 0)
    assert psql(proxy.dsn(), "select 1")[1] == "1"


def test_max_connections(rig, start_proxy):
    import psycopg
    proxy = start_proxy(args=["--max-connections", "2"])
    a = psycopg.connect(proxy.dsn())
    b = psycopg.connect(proxy.dsn())
    assert proxy.http("/readiness")[0] == 503
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(proxy.dsn())
    assert "too many connections" in str(ei.value)
    a.close()
    proxy.wait_metric("lakebase_proxy_connections_open", lambda v: v == 1)
    assert proxy.http("/readiness")[0] == 200
    with psycopg.connect(proxy.dsn()) as c:
        assert c.execute("select 1").fetchone() == (1,)
    b.close()
    assert proxy.metrics()["lakebase_proxy_connections_refused_total"] == 1


# --- listeners ------------------------------------------------------------------------------

def test_unix_socket_is_private(rig, start_proxy, tmp_path):
    d = tmp_path / "sock"
    port = free_port()
    proxy = start_proxy(args=["--unix-socket", str(d), "--unix-socket-only", "--port", str(port)])
    path = d / (".s.PGSQL.%d" % port)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    dsn = "host=%s port=%d dbname=%s user=%s" % (d, port, DB, rig.env()["RIG_USER"])
    assert psql(dsn, "select current_user")[1] == rig.env()["RIG_USER"]
    assert proxy.ports == [], "no TCP listener with --unix-socket-only"
    proxy.signal(signal.SIGTERM)
    assert proxy.wait(10) == 0
    assert not path.exists(), "the socket file is removed at exit"


def test_tls_offered_to_clients_with_a_certificate(rig, start_proxy):
    proxy = start_proxy(args=["--tls-cert", rig.tls["cert_file"], "--tls-key", rig.tls["key_file"]])
    dsn = proxy.dsn(host="localhost", sslmode="verify-full", sslrootcert=rig.tls["ca_file"])
    assert psql(dsn, "select ssl from pg_stat_ssl where pid = pg_backend_pid()")[1] == "t"
    import psycopg
    with psycopg.connect(dsn) as c:
        assert c.pgconn.ssl_in_use


def test_non_loopback_needs_an_explicit_flag(rig, tmp_path):
    p = subprocess.run(PROXY_CMD + ["test-instance", "--address", "0.0.0.0", "--port", "0"],
                       env=clean_env(rig, tmp_path), capture_output=True, text=True, timeout=20)
    assert p.returncode == 1
    assert "not a loopback address" in p.stderr and "--allow-non-loopback" in p.stderr


def test_several_targets_listen_on_consecutive_ports(rig, start_proxy):
    e = rig.env()
    for attempt in range(5):
        # Another suite's process may bind base or base + 1 between the probe and the proxy's bind
        # (CI saw it once); the proxy then exits with "Address already in use", and we draw again.
        base = free_port(count=2)
        before = mints(rig)
        try:
            proxy = start_proxy(target=None, args=["--port", str(base), e["RIG_INSTANCE"], e["RIG_ENDPOINT"]])
            break
        except AssertionError as err:
            if "Address already in use" not in str(err) or attempt == 4:
                raise
    assert proxy.ports == [base, base + 1]
    for port in proxy.ports:
        assert psql(proxy.dsn(port=port), "select current_user")[1] == e["RIG_USER"]
    assert mints(rig) - before == 2, "one token per target"


# --- shutdown -------------------------------------------------------------------------------

def test_sigterm_drains_open_connections(rig, start_proxy):
    import psycopg
    proxy = start_proxy(args=["--max-sigterm-delay", "20s"])
    held = psycopg.connect(proxy.dsn(), autocommit=True)
    proxy.signal(signal.SIGTERM)
    wait_until(lambda: any(r.get("msg") == "shutting down" for r in proxy.logs), what="shutdown to begin")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(proxy.dsn(), connect_timeout=5)
    assert proxy.proc.poll() is None, "still draining"
    assert held.execute("select 42").fetchone() == (42,)
    t0 = time.monotonic()
    held.close()
    assert proxy.wait(10) == 0
    assert time.monotonic() - t0 < 5, "exits as soon as the last connection ends"


def test_sigterm_delay_bounds_the_drain(rig, start_proxy):
    import psycopg
    proxy = start_proxy(args=["--max-sigterm-delay", "300ms"])
    held = psycopg.connect(proxy.dsn(), autocommit=True)
    t0 = time.monotonic()
    proxy.signal(signal.SIGTERM)
    assert proxy.wait(10) == 0
    assert time.monotonic() - t0 < 5
    with pytest.raises(psycopg.OperationalError):
        held.execute("select 1")
    held.close()


# --- observability and the connection test ------------------------------------------------

def test_health_and_metrics(rig, proxy):
    assert proxy.http("/startup") == (200, "ok\n")
    assert proxy.http("/liveness") == (200, "ok\n")
    assert proxy.http("/readiness") == (200, "ok\n")
    assert proxy.http("/nope")[0] == 404
    psql(proxy.dsn(), "select repeat('x', 100000)")
    m = proxy.wait_metric("lakebase_proxy_connections_open", lambda v: v == 0) is not None and proxy.metrics()
    assert m["lakebase_proxy_connections_total"] == 1
    assert m["lakebase_proxy_client_bytes_sent_total"] > 100000
    assert m["lakebase_proxy_client_bytes_received_total"] > 20
    assert m['lakebase_proxy_token_mints_total{target="test-instance"}'] == 1
    assert m['lakebase_proxy_token_refresh_errors_total{target="test-instance"}'] == 0
    assert abs(m['lakebase_proxy_token_expiry_timestamp_seconds{target="test-instance"}'] - (time.time() + 3600)) < 120
    assert m["lakebase_proxy_upstream_connect_seconds_count"] == 1
    assert m['lakebase_proxy_upstream_connect_seconds_bucket{le="+Inf"}'] == 1
    assert m["lakebase_proxy_login_failures_total"] == 0
    assert m["lakebase_proxy_ready"] == 1


def connection_test(rig, tmp_path, *args, upstream=None):
    e = rig.env()
    cmd = PROXY_CMD + ["--run-connection-test", "--upstream", upstream or "localhost:%s" % e["PGPORT"],
           "--upstream-ca", e["RIG_CA_FILE"], "--connect-timeout", "1s"] + list(args)
    return subprocess.run(cmd, env=clean_env(rig, tmp_path), capture_output=True, text=True, timeout=60)


def test_run_connection_test_exit_codes(rig, tmp_path):
    p = connection_test(rig, tmp_path, "test-instance")
    assert p.returncode == 0, p.stderr
    assert "connection test passed" in p.stderr and rig.env()["RIG_USER"] in p.stderr
    assert mints(rig) == 1
    p = connection_test(rig, tmp_path, "test-instance", upstream="127.0.0.1:%d" % free_port())
    assert p.returncode == 1 and "could not connect" in p.stderr, p.stderr
    p = connection_test(rig, tmp_path, "no-such-instance")
    assert p.returncode == 1 and "does not exist" in p.stderr, p.stderr
    p = connection_test(rig, tmp_path, "test-instance", "--connection-test-database", "nope")
    assert p.returncode == 1 and 'database "nope" does not exist' in p.stderr, p.stderr
    for out in (p.stdout, p.stderr):
        assert rig.env()["RIG_PAT"] not in out


def test_no_target_configured_is_a_clear_error(rig, tmp_path):
    p = subprocess.run(PROXY_CMD + ["--port", "0"], env=clean_env(rig, tmp_path), capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 1 and "LAKEBASE_INSTANCE" in p.stderr, p.stderr


def test_no_secret_in_logs(rig, proxy):
    import psycopg
    with psycopg.connect(proxy.dsn()) as c:
        c.execute("select 1")
    tokens = fake(rig, "/_fake/tokens")
    assert tokens, "a token was minted"
    text = proxy.log_text()
    for t in (tokens if isinstance(tokens, list) else tokens.get("tokens", [])):
        prefix = t.get("token_prefix") or t.get("prefix") or t.get("token", "")[:40]
        assert prefix and prefix[:40] not in text
    assert rig.env()["RIG_PAT"] not in text


def test_workspace_errors_reach_the_client_as_an_error_response(rig, proxy):
    fake(rig, "/_fake/faults", {"path": "/api/2.0/database/credentials", "status": 403, "count": -1,
                                "body": {"error_code": "PERMISSION_DENIED", "message": "no access to test-instance"}})
    rc, _, err = psql(proxy.dsn(), "select 1", check=False)
    assert rc != 0
    assert "lakebase proxy: could not get a password" in err and "no access to test-instance" in err, err
    assert proxy.http("/liveness")[0] == 200
    fake(rig, "/_fake/faults/clear", {})
    assert psql(proxy.dsn(), "select 1")[1] == "1", "recovers once the workspace answers"
    assert proxy.metrics()['lakebase_proxy_token_refresh_errors_total{target="test-instance"}'] >= 1


@pytest.mark.parametrize("forged", [False, True])
def test_scram_sha_256_upstream(rig, tmp_path, forged):
    """SCRAM-SHA-256 with the real token (captured by the fixture's first, cleartext round), and a
    server whose final signature is forged."""
    front = Front(script=["capture", "scram_forged" if forged else "scram"],
                  tls=(rig.tls["cert_file"], rig.tls["key_file"]))
    try:
        p = connection_test(rig, tmp_path, "test-instance", upstream="localhost:%d" % front.port)
        assert front.password and front.password.startswith(b"ey"), "the fixture captured the token"
        assert len(front.scram) == 1
        first, final = front.scram[0]
        assert first.startswith("n,,n=,r="), first  # no channel binding, and saying so
        assert final.startswith("c=biws,r="), final
        if forged:
            assert p.returncode == 1 and "server's signature did not verify" in p.stderr, p.stderr
        else:
            assert p.returncode == 0, p.stderr
    finally:
        front.stop()


def read_messages_until_ready(s):
    """Backend messages (type, body) up to ReadyForQuery or an error."""
    buf, out = b"", []
    while True:
        while len(buf) >= 5 and len(buf) >= 1 + struct.unpack("!I", buf[1:5])[0]:
            n = 1 + struct.unpack("!I", buf[1:5])[0]
            out.append((buf[:1], buf[5:n]))
            buf = buf[n:]
            if out[-1][0] in (b"Z", b"E"):
                return out
        d = s.recv(65536)
        if not d:
            return out
        buf += d


@pytest.mark.parametrize("request_code", [80877104, 80877103], ids=["gssenc", "ssl"])
def test_encryption_requests_are_declined_then_the_login_proceeds(rig, proxy, request_code):
    s = raw(proxy, struct.pack("!II", 8, request_code), read=False)
    try:
        assert s.recv(1) == b"N"
        s.sendall(startup([("user", rig.env()["RIG_USER"]), ("database", DB)]))
        msgs = read_messages_until_ready(s)
        types = [t for t, _ in msgs]
        assert types[0] == b"R" and msgs[0][1] == struct.pack("!I", 0), "AuthenticationOk first"
        assert types[-1] == b"Z" and b"S" in types
        keys = [b for t, b in msgs if t == b"K"]
        assert len(keys) == 1 and len(keys[0]) == 8, "the proxy's own 4-byte cancel key"
    finally:
        s.close()


def test_newer_protocol_minor_versions_are_negotiated_by_the_server(rig, proxy):
    """A 3.2 StartupMessage goes upstream as is; the server's NegotiateProtocolVersion (PostgreSQL
    before 18) reaches the client before AuthenticationOk."""
    s = raw(proxy, startup([("user", rig.env()["RIG_USER"]), ("database", DB)], version=196610), read=False)
    try:
        msgs = read_messages_until_ready(s)
        types = [t for t, _ in msgs]
        assert types[-1] == b"Z", msgs
        params = dict(b.split(b"\0")[:2] for t, b in msgs if t == b"S")
        if int(params[b"server_version"].split(b".")[0]) < 18:
            assert b"v" in types and types.index(b"v") < types.index(b"R"), types
            assert struct.unpack("!I", msgs[types.index(b"v")][1][:4])[0] == 196608
    finally:
        s.close()
