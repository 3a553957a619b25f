"""Fixtures for the proxy suite: one rig (real PostgreSQL with TLS + fake workspace) per session,
a fresh proxy process per test, and helpers to talk to both.

The proxy is `lakebase proxy` from target/release (scripts/test-proxy.sh builds it), or
$LAKEBASE_BIN proxy.
"""
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "rig"))

import pg as rig_pg  # noqa: E402
from rig import Rig  # noqa: E402

# `lakebase proxy` from the build tree (LAKEBASE_BIN overrides the lakebase command).
PROXY_BIN = os.environ.get("LAKEBASE_BIN") or os.path.join(ROOT, "target", "release", "lakebase")
PROXY_CMD = [PROXY_BIN, "proxy"]
# XDG_*: the shared token cache lives there, shared with every other process of this user.
SCRUB = ("DATABRICKS_", "LAKEBASE_", "ARM_", "PG", "GOOGLE_", "ACTIONS_ID_TOKEN", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME")
DB = "databricks_postgres"

# The 1,000-connection test needs more backends than the rig's default 200.
os.environ.setdefault("RIG_PG_MAX_CONNECTIONS", "1100")


def raise_nofile(need=8192):
    """The 1,000-connection test holds ~1,000 descriptors here and ~2,000 in the proxy (which raises
    its own soft limit to the hard one). Root may raise a low hard limit (a machine whose default
    is 1024) too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need and os.geteuid() == 0:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return
        except (ValueError, OSError):
            pass
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


raise_nofile()


@pytest.fixture(scope="session")
def rig():
    if not os.path.exists(PROXY_BIN):
        pytest.fail("proxy binary %s missing: run scripts/test-proxy.sh (it builds it)" % PROXY_BIN)
    r = Rig().start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(autouse=True)
def fresh_fake(rig):
    rig.fake.reset()
    yield


def fake(rig, path, body=None):
    status, out = rig.control("GET" if body is None else "POST", path, body)
    assert 200 <= status < 300, (path, status, out)
    return out


def mints(rig):
    return fake(rig, "/_fake/stats").get("lakebase_tokens_minted_total", 0)


def clean_env(rig, home, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)}
    e = rig.env()
    env.update({"HOME": str(home), "DATABRICKS_HOST": e["DATABRICKS_HOST"], "DATABRICKS_TOKEN": e["RIG_PAT"]})
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Proxy(object):
    """A running lakebase-proxy with JSON logs; ports are chosen by the proxy (--port 0)."""

    def __init__(self, rig, tmp_path, args=(), target="test-instance", upstream=None, env=None, wait=True,
                 http=True):
        self.rig = rig
        e = rig.env()
        cmd = list(PROXY_CMD)
        if target:
            cmd.append(target)
        defaults = [("--port", "0"), ("--log-format", "json"), ("--log-level", "debug"),
                    ("--upstream", upstream or "localhost:%s" % e["PGPORT"]), ("--upstream-ca", e["RIG_CA_FILE"])]
        if http:
            defaults.append(("--http-port", "0"))
        for k, v in defaults:
            if k not in args:
                cmd += [k, v]
        cmd += list(args)
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        self.env = env if env is not None else clean_env(rig, home)
        self.cmd = cmd
        self.logs = []
        self.ports = []
        self.http_port = None
        self._ready = threading.Event()
        self.proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        if wait:
            if not self._ready.wait(20):
                self.stop()
                raise AssertionError("proxy did not become ready:\n" + self.log_text())

    def _read(self):
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            try:
                rec = json.loads(line)
            except ValueError:
                rec = {"msg": line, "level": "raw"}
            self.logs.append(rec)
            if rec.get("msg") == "listening" and "address" in rec:
                self.ports.append(int(rec["address"].rsplit(":", 1)[1]))
            elif rec.get("msg") == "http listening":
                self.http_port = int(rec["address"].rsplit(":", 1)[1])
            elif rec.get("msg") == "ready":
                self._ready.set()

    def log_text(self):
        return "\n".join(json.dumps(r) for r in self.logs)

    @property
    def port(self):
        return self.ports[0]

    def dsn(self, user=None, port=None, **kw):
        parts = {"host": "127.0.0.1", "port": port or self.port, "dbname": DB,
                 "user": user if user is not None else self.rig.env()["RIG_USER"], "sslmode": "disable"}
        parts.update(kw)
        return " ".join("%s=%s" % (k, v) for k, v in parts.items())

    def http(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.http_port, path), timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self):
        status, text = self.http("/metrics")
        assert status == 200, text
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
        return out

    def wait_metric(self, name, pred, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            v = self.metrics().get(name)
            if v is not None and pred(v):
                return v
            if time.monotonic() > deadline:
                raise AssertionError("%s never satisfied the condition (last %r)" % (name, v))
            time.sleep(0.02)

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        rc = self.proc.wait(timeout)
        self._t.join(5)
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._t.join(5)


@pytest.fixture
def start_proxy(rig, tmp_path):
    started = []

    def start(*args, **kw):
        p = Proxy(rig, tmp_path, *args, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def proxy(start_proxy):
    return start_proxy()


def psql(dsn, sql, env=None, timeout=60, check=True):
    """psql -X -At; returns (rc, stdout, stderr)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if env:
        e.update(env)
    p = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql], env=e, capture_output=True,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("psql failed (%d): %s" % (p.returncode, p.stderr))
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def admin_sql(rig, sql):
    """A query as the rig's superuser over its unix socket (not through the proxy)."""
    e = rig.env()
    return psql("host=%s port=%s user=%s dbname=%s" % (e["RIG_PG_SOCKET_DIR"], e["PGPORT"], e["RIG_PG_ADMIN_USER"], DB),
                sql)[1]


def free_port(count=1):
    """The first of `count` consecutive ports free on 127.0.0.1 now.

    Drawn below the kernel's ephemeral range (ip_local_port_range starts at 32768 by default), so
    the outgoing connections of suites running in parallel do not take them between this probe
    and the proxy's bind; a test that binds them must still retry on EADDRINUSE (see
    start_proxy_on_free_ports)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - count)
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise OSError("no %d consecutive free ports" % count)


def wait_until(pred, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def run(cmd, env=None, timeout=120, cwd=None):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d)\nstdout:\n%s\nstderr:\n%s" % (cmd[0], p.returncode, p.stdout, p.stderr))
    return p.stdout


def kv(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


