"""The cold-start (scale-to-zero) front: RIG_COLD_PORT / RIG_COLD_HOST:PGPORT in front of PostgreSQL."""

import os
import socket
import struct
import subprocess
import time

import pytest

import pgwire

ALICE = "alice@example.com"


def psql(rig, token, host="127.0.0.1", port=None, timeout=3):
    # One address: where localhost resolves to ::1 and 127.0.0.1, libpq moves on to the next address
    # after a failed attempt, so one psql can make two attempts.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSWORD"] = token
    conn = "host=%s port=%s dbname=databricks_postgres user=%s sslmode=verify-full sslrootcert=%s connect_timeout=%d" % (
        host, port or rig.cold.port, ALICE, rig.pg.ca_file, timeout)
    return subprocess.run([rig.pg.psql_path(), "-X", "-At", "-w", conn, "-c", "select current_user"], env=env,
                          capture_output=True, text=True, timeout=30)


def cold(api, path="", body=None):
    return api.ctl("POST" if body is not None else "GET", "/_fake/cold" + path, body)


def test_forwards_when_warm(api, rig):
    tok = api.mint_db()["token"]
    p = psql(rig, tok)
    assert p.returncode == 0 and p.stdout.strip() == ALICE, p.stderr
    env = rig.env()
    assert env["RIG_COLD_PORT"] == str(rig.cold.port) and env["RIG_COLD_HOST"] == "127.0.0.2"
    # the second loopback address on PGPORT: verify-full works there too (the server cert lists it)
    p = psql(rig, tok, host="127.0.0.2", port=rig.pg.port)
    assert p.returncode == 0 and p.stdout.strip() == ALICE, p.stderr
    st = cold(api)
    assert st["counters"]["attempts"] == 2 and st["counters"]["forwarded"] == 2 and not st["waking"]


def test_refuse_until_woken(api, rig):
    tok = api.mint_db()["token"]
    cold(api, "/arm", {"mode": "refuse", "now": True, "wake_ms": 60000})
    p = psql(rig, tok)
    assert p.returncode == 2 and "Connection refused" in p.stderr, p.stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", rig.cold.port), timeout=2)
    assert cold(api)["waking"] is True
    cold(api, "/wake", {})
    p = psql(rig, tok)
    assert p.returncode == 0, p.stderr
    assert api.ctl("GET", "/_fake/stats")["checks"]["logins"] == {ALICE: 1}


def test_refuse_ends_after_wake_ms(api, rig):
    tok = api.mint_db()["token"]
    cold(api, "/arm", {"mode": "refuse", "now": True, "wake_ms": 300})
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", rig.cold.port), timeout=2)
    time.sleep(0.6)  # longer than wake_ms: the front listens again
    assert psql(rig, tok).returncode == 0
    assert cold(api)["counters"]["wakeups"] == 1


def test_reset_counted_attempts(api, rig):
    tok = api.mint_db()["token"]
    cold(api, "/arm", {"mode": "reset", "wake_attempts": 2, "wake_ms": None})
    for _ in range(2):
        p = psql(rig, tok)
        assert p.returncode == 2 and ("reset by peer" in p.stderr or "closed the connection" in p.stderr), p.stderr
    assert psql(rig, tok).returncode == 0
    c = cold(api)["counters"]
    assert (c["reset"], c["forwarded"], c["attempts"], c["wakeups"]) == (2, 1, 3, 1)


def test_stall_accepts_and_says_nothing(api, rig):
    cold(api, "/arm", {"mode": "stall", "wake_attempts": 1, "wake_ms": None})
    s = socket.create_connection(("127.0.0.1", rig.cold.port), timeout=5)
    s.sendall(struct.pack("!II", 8, 80877103))  # SSLRequest
    s.settimeout(0.5)
    with pytest.raises(socket.timeout):
        s.recv(1)
    s.close()
    assert cold(api)["counters"]["stalled"] == 1
    # the next attempt is served
    r = pgwire.login("127.0.0.1", rig.cold.port, ALICE, api.mint_db()["token"], sslmode="verify-full",
                     ca_file=rig.pg.ca_file)
    assert r.ready, r


def test_starting_up_57p03_over_tls(api, rig):
    tok = api.mint_db()["token"]
    cold(api, "/arm", {"mode": "starting", "wake_attempts": 2, "wake_ms": None})
    p = psql(rig, tok)
    assert p.returncode == 2 and p.stderr.strip().endswith("FATAL:  the database system is starting up"), p.stderr
    r = pgwire.login("127.0.0.1", rig.cold.port, ALICE, tok, sslmode="verify-full", ca_file=rig.pg.ca_file)
    assert r.tls and not r.password_sent
    assert (r.sqlstate, r.message, r.error["S"]) == ("57P03", "the database system is starting up", "FATAL")
    r = pgwire.login("127.0.0.1", rig.cold.port, ALICE, tok, sslmode="verify-full", ca_file=rig.pg.ca_file)
    assert r.ready and r.password_sent
    c = cold(api)["counters"]
    assert c["starting"] == 2 and c["startup_messages"] == 2 and c["forwarded"] == 1


def test_delay_holds_then_serves(api, rig):
    tok = api.mint_db()["token"]
    cold(api, "/arm", {"mode": "delay", "wake_ms": 400})
    t0 = time.monotonic()
    r = pgwire.login("127.0.0.1", rig.cold.port, ALICE, tok, sslmode="verify-full", ca_file=rig.pg.ca_file)
    assert r.ready, r
    assert time.monotonic() - t0 >= 0.4
    assert cold(api)["counters"]["delayed"] == 1


def test_idle_suspends(api, rig):
    tok = api.mint_db()["token"]
    cold(api, "", {"idle_ms": 60000, "mode": "starting", "wake_attempts": 1, "wake_ms": None})
    assert psql(rig, tok).returncode == 0  # not idle for a minute: forwarded
    cold(api, "", {"idle_ms": 100})
    time.sleep(0.3)  # longer than idle_ms with no connection: the endpoint scaled to zero
    p = psql(rig, tok)
    assert "the database system is starting up" in p.stderr, p.stderr
    # woken after one attempt; a long idle_ms again, or a slow next psql would find it suspended anew
    cold(api, "", {"idle_ms": 60000})
    assert psql(rig, tok).returncode == 0
    c = cold(api)["counters"]
    assert (c["wakeups"], c["starting"], c["forwarded"]) == (1, 1, 2)


def test_bad_settings_and_reset(api, rig):
    s, b = api.call("POST", "/_fake/cold", {"mode": "sleep"})
    assert s == 400 and "cold mode" in b["error"]
    s, b = api.call("POST", "/_fake/cold", {"colour": 1})
    assert s == 400
    cold(api, "/arm", {"mode": "refuse", "now": True, "wake_ms": 60000})
    rig.fake.reset()  # the fake's reset resets the front too
    st = cold(api)
    assert not st["waking"] and st["counters"]["attempts"] == 0 and st["settings"]["mode"] == "refuse"
    socket.create_connection(("127.0.0.1", rig.cold.port), timeout=2).close()
