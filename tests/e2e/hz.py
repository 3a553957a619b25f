"""Helpers for hardening scenarios (imported by scenario processes, see test_hardening.py)."""
import json
import os
import subprocess
import time
import urllib.request


def fake(path, body=None, method=None):
    """Call the fake workspace's control API at FAKE_URL."""
    m = method or ("POST" if body is not None else "GET")
    req = urllib.request.Request(os.environ["FAKE_URL"] + path, method=m,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def psql_login(user, password):
    """A new PostgreSQL login (TLS) with this password; True on success."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LD_PRELOAD", "PGPASSWORD"))}
    env["PGPASSWORD"] = password
    p = subprocess.run(["psql", "-X", "-A", "-t", "-c", "SELECT 1",
                        "host=%s port=%s dbname=%s user=%s sslmode=require" % (
                            os.environ["PGHOST"], os.environ["PGPORT"], os.environ["PGDATABASE"], user)],
                       env=env, capture_output=True, text=True, timeout=60)
    return p.returncode == 0


def timed(fn, *args):
    """(result or exception, seconds)."""
    t0 = time.monotonic()
    try:
        r = fn(*args)
    except Exception as e:  # noqa: BLE001 - the scenario reports it
        r = e
    return r, time.monotonic() - t0
