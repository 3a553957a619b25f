"""End to end: the `lakebase` command (password, exec, whoami, doctor) against the fake workspace
and the rig's real PostgreSQL with TLS. Every run is a fresh process with a clean environment."""
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import LIBDIR, ROOT, base_env, minted, psql

LAKEBASE = os.path.join(LIBDIR, "lakebase")
PROV = "POST /api/2.0/database/credentials"


@pytest.fixture(scope="session", autouse=True)
def lakebase_bin():
    """The command under test; built here when missing (scripts/test.sh builds only the library)."""
    if not os.path.exists(LAKEBASE):
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "lakebase"], cwd=ROOT, check=True)
    return LAKEBASE


def fake_post(rig, path, body):
    req = urllib.request.Request(rig.env()["FAKE_URL"] + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def lb(args, env, timeout=60):
    return subprocess.run([LAKEBASE] + list(args), env=env, capture_output=True, text=True, timeout=timeout)


def pat_env(rig, tmp_path, target="instance", **extra):
    e = rig.env()
    t = {"DATABRICKS_HOST": e["DATABRICKS_HOST"], "DATABRICKS_TOKEN": e["RIG_PAT"]}
    t.update({"LAKEBASE_INSTANCE": e["RIG_INSTANCE"]} if target == "instance" else {"LAKEBASE_ENDPOINT": e["RIG_ENDPOINT"]})
    t.update(extra)
    return base_env(rig, tmp_path, **t)


def m2m_env(rig, tmp_path, **extra):
    e = rig.env()
    return base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_CLIENT_ID=e["RIG_SP_CLIENT_ID"],
                    DATABRICKS_CLIENT_SECRET=e["RIG_SP_CLIENT_SECRET"], LAKEBASE_ENDPOINT=e["RIG_ENDPOINT"], **extra)


def assert_no_secrets(rig, *texts):
    """No PAT, client secret or minted Lakebase token (not even a prefix) in any output."""
    e = rig.env()
    secrets = [e["RIG_PAT"], e["RIG_SP_CLIENT_SECRET"]] + [t[:40] for t in list(rig.fake.lakebase_tokens)]
    for text in texts:
        for s in secrets:
            assert s not in text, "a secret leaked into the output"


def checks(stdout):
    """{check name: mark} from doctor's output lines like `[ok]   tls: ...`."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("["):
            mark, rest = line.split("]", 1)
            out[rest.strip().split(":", 1)[0]] = mark[1:]
    return out


# --- password ---------------------------------------------------------------------------------

def test_password_prints_only_the_password_and_it_logs_in(rig, tmp_path):
    e = rig.env()
    p = lb(["password"], pat_env(rig, tmp_path))
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert p.stdout.endswith("\n") and p.stdout.count("\n") == 1
    pw = p.stdout.strip()
    assert len(pw) > 512 and minted(rig) == 1
    q = psql(rig, e["RIG_USER"], pw)
    assert q.returncode == 0 and q.stdout.strip() == e["RIG_USER"], q.stderr


def test_password_with_options_and_profile(rig, tmp_path):
    """--options (libpq syntax) and --profile select the configuration, M2M + Autoscaling here."""
    e = rig.env()
    env = base_env(rig, tmp_path)
    with open(os.path.join(env["HOME"], ".databrickscfg"), "w") as f:
        f.write("[sp]\nhost = %s\nclient_id = %s\nclient_secret = %s\n"
                % (e["DATABRICKS_HOST"], e["RIG_SP_CLIENT_ID"], e["RIG_SP_CLIENT_SECRET"]))
    p = lb(["--profile", "sp", "password", "--options", "endpoint='%s'" % e["RIG_ENDPOINT"]], env)
    assert p.returncode == 0, p.stderr
    assert psql(rig, e["RIG_SP_USER"], p.stdout.strip()).returncode == 0
    assert rig.fake.stats()["requests"].get("POST /api/2.0/postgres/credentials") == 1


@pytest.mark.parametrize("args", [
    ["bogus"],
    ["password", "extra"],
    ["password", "--json"],
    ["whoami", "--bad"],
    ["exec"],
    ["--options"],
    ["--options", "no-equals-sign", "password"],
    ["--profile"],
    ["help", "nope"],
])
def test_usage_errors_exit_2(rig, tmp_path, args):
    p = lb(args, pat_env(rig, tmp_path))
    assert p.returncode == 2, (args, p.stdout, p.stderr)
    assert p.stdout == ""
    assert p.stderr.startswith("lakebase: ") and "--help" in p.stderr
    assert minted(rig) == 0


def test_help_and_version(rig, tmp_path):
    env = base_env(rig, tmp_path)
    for args in (["--help"], [], ["help"], ["password", "--help"], ["exec", "-h"], ["help", "whoami"],
                 ["doctor", "--help"]):
        p = lb(args, env)
        assert p.returncode == 0 and "Usage:" in p.stdout and p.stderr == "", args
    assert "exec [global options] [--] <program>" in lb(["exec", "--help"], env).stdout
    p = lb(["--version"], env)
    assert p.returncode == 0 and p.stdout.startswith("lakebase ") and p.stdout.strip().split()[1][0].isdigit()


ALL = (["password"], ["whoami"], ["exec", "--", "true"])


@pytest.mark.parametrize("case, extra, expect, commands", [
    ("no host", {"DATABRICKS_TOKEN": "dapi" + "0" * 32, "LAKEBASE_INSTANCE": "x"}, "host", ALL),
    # exec without a target is fine (the library discovers it from the host); whoami shows no database.
    ("no target", {"DATABRICKS_HOST": "http://127.0.0.1:1", "DATABRICKS_TOKEN": "dapi" + "0" * 32}, "LAKEBASE_INSTANCE",
     (["password"],)),
    ("two auth methods", {"DATABRICKS_HOST": "http://127.0.0.1:1", "DATABRICKS_TOKEN": "dapi" + "0" * 32,
                          "DATABRICKS_CLIENT_ID": "x", "DATABRICKS_CLIENT_SECRET": "y", "LAKEBASE_INSTANCE": "x"},
     "more than one authorization method", ALL),
    ("bad endpoint", {"DATABRICKS_HOST": "http://127.0.0.1:1", "DATABRICKS_TOKEN": "dapi" + "0" * 32,
                      "LAKEBASE_ENDPOINT": "my-endpoint"}, "projects/<project>", ALL),
    ("unknown auth type", {"DATABRICKS_HOST": "http://127.0.0.1:1", "DATABRICKS_TOKEN": "dapi" + "0" * 32,
                           "DATABRICKS_AUTH_TYPE": "nope", "LAKEBASE_INSTANCE": "x"}, "nope", ALL),
])
def test_config_errors_exit_2_with_the_reason(rig, tmp_path, case, extra, expect, commands):
    env = base_env(rig, tmp_path, **extra)
    for cmd in commands:
        p = lb(cmd, env)
        assert p.returncode == 2, (case, cmd, p.stderr)
        assert p.stderr.startswith("lakebase: ") and expect in p.stderr, (case, cmd, p.stderr)
        assert "0" * 32 not in p.stderr and p.stdout == ""


def test_unknown_profile_is_a_config_error(rig, tmp_path):
    e = rig.env()
    env = base_env(rig, tmp_path)
    with open(os.path.join(env["HOME"], ".databrickscfg"), "w") as f:
        f.write("[dev]\nhost = %s\ntoken = %s\ninstance = %s\n" % (e["DATABRICKS_HOST"], e["RIG_PAT"], e["RIG_INSTANCE"]))
    p = lb(["-p", "nope", "password"], env)
    assert p.returncode == 2 and "nope" in p.stderr
    assert_no_secrets(rig, p.stdout, p.stderr)
    assert lb(["-p", "dev", "password"], env).returncode == 0


def test_wrong_pat_exits_1_and_never_shows_it(rig, tmp_path):
    bad = "dapi" + "f00d" * 8
    env = pat_env(rig, tmp_path, DATABRICKS_TOKEN=bad)
    for cmd in (["password"], ["whoami"], ["whoami", "--json"]):
        p = lb(cmd, env)
        assert p.returncode == 1, (cmd, p.stderr)
        assert p.stdout == ""
        assert p.stderr.startswith("lakebase: ") and "403" in p.stderr and "pat" in p.stderr
        assert bad not in p.stderr and "f00d" not in p.stderr


def test_unknown_instance_exits_1(rig, tmp_path):
    p = lb(["password"], pat_env(rig, tmp_path, LAKEBASE_INSTANCE="no-such-db"))
    assert p.returncode == 1 and "no-such-db" in p.stderr and "404" in p.stderr


def test_unreachable_workspace_exits_1(rig, tmp_path):
    env = base_env(rig, tmp_path, DATABRICKS_TOKEN="dapi" + "0" * 32, LAKEBASE_INSTANCE="x")
    p = lb(["password", "--options", "host=http://127.0.0.1:1 retry_timeout_seconds=1"], env)
    assert p.returncode == 1 and "127.0.0.1" in p.stderr


# --- whoami -----------------------------------------------------------------------------------

def test_whoami_text(rig, tmp_path):
    e = rig.env()
    p = lb(["whoami"], pat_env(rig, tmp_path))
    assert p.returncode == 0, p.stderr
    lines = dict(l.split(":", 1) for l in p.stdout.splitlines())
    lines = {k: v.strip() for k, v in lines.items()}
    assert lines["Identity"] == e["RIG_USER"] and lines["Role"] == e["RIG_USER"]
    assert lines["Auth"] == "pat (from DATABRICKS_TOKEN)"
    assert lines["Workspace"] == e["DATABRICKS_HOST"]
    assert lines["Database"] == 'instance "%s" (AVAILABLE)' % e["RIG_INSTANCE"]
    assert lines["Host"] == "localhost"
    assert lines["Token"].startswith("expires ") and lines["Token"].endswith(("(in 59 min)", "(in 60 min)"))
    assert minted(rig) == 1
    assert_no_secrets(rig, p.stdout, p.stderr)


def test_whoami_json_m2m_endpoint(rig, tmp_path):
    e = rig.env()
    p = lb(["whoami", "--json"], m2m_env(rig, tmp_path))
    assert p.returncode == 0, p.stderr
    v = json.loads(p.stdout)
    assert v["identity"] == v["postgres_role"] == e["RIG_SP_USER"]
    assert v["auth_type"] == "oauth-m2m" and v["auth_source"] == "DATABRICKS_CLIENT_ID"
    assert v["workspace_host"] == e["DATABRICKS_HOST"]
    assert v["target"] == {"kind": "endpoint", "name": e["RIG_ENDPOINT"], "host": "localhost", "state": "ACTIVE"}
    assert 3500 <= v["token_expires_in_seconds"] <= 3600
    exp = time.mktime(time.strptime(v["token_expires_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(exp - (time.time() + v["token_expires_in_seconds"])) < 30
    assert "token" not in v and "password" not in v
    assert_no_secrets(rig, p.stdout, p.stderr)


def test_whoami_without_a_database(rig, tmp_path):
    """No LAKEBASE_INSTANCE/ENDPOINT: whoami still answers who you are, and mints nothing."""
    e = rig.env()
    env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"])
    p = lb(["whoami"], env)
    assert p.returncode == 0, p.stderr
    assert e["RIG_USER"] in p.stdout and "none configured" in p.stdout and "Token:" not in p.stdout
    v = json.loads(lb(["whoami", "--json"], env).stdout)
    assert v["identity"] == e["RIG_USER"] and v["target"] is None and v["token_expires_at"] is None
    assert minted(rig) == 0


# --- doctor -----------------------------------------------------------------------------------

def doctor(rig, env):
    p = lb(["doctor"], env, timeout=120)
    assert_no_secrets(rig, p.stdout, p.stderr)
    return p, checks(p.stdout)


def test_doctor_all_ok_pat_instance(rig, tmp_path):
    e = rig.env()
    # Debug logging on: nothing secret on stderr either (doctor() checks both streams).
    p, c = doctor(rig, pat_env(rig, tmp_path, PGSSLROOTCERT=e["PGSSLROOTCERT"], PGSSLMODE="verify-full",
                               LAKEBASE_LOG="debug"))
    assert p.returncode == 0, p.stdout
    assert set(c.values()) == {"ok"}, p.stdout
    for name in ("config", "auth", "identity", "database", "password", "host", "sslmode", "user", "dns", "tcp", "tls", "login"):
        assert name in c, (name, p.stdout)
    assert "certificate verified for localhost" in p.stdout
    assert 'logged in as "%s" to database "databricks_postgres"' % e["RIG_USER"] in p.stdout
    assert "DATABRICKS_TOKEN" in p.stdout and "oauth-m2m" in p.stdout  # why the other methods were skipped
    assert p.stdout.rstrip().endswith("All checks passed.")
    assert rig.fake.stats()["checks"]["ok"] == 1  # a real login happened, checked by the server


def test_doctor_sends_no_token_to_a_server_that_does_not_verify(rig, tmp_path):
    """Without the CA of the server's certificate the doctor, like the library, does not send the
    token: tls fails and the login is skipped. LAKEBASE_VERIFY_SERVER=0 (the library's opt-out)
    makes it a warning and the login runs over unverified TLS, as plain sslmode=require does."""
    e = rig.env()
    p, c = doctor(rig, m2m_env(rig, tmp_path))
    assert p.returncode == 1, p.stdout
    assert c["tls"] == "fail" and "NOT verified" in p.stdout and "PGSSLROOTCERT" in p.stdout
    assert c["login"] == "skip" and "no token was sent" in p.stdout
    assert rig.fake.stats()["checks"]["ok"] + rig.fake.stats()["checks"]["failed"] == 0
    p, c = doctor(rig, m2m_env(rig, tmp_path, LAKEBASE_VERIFY_SERVER="0"))
    assert p.returncode == 0, p.stdout
    assert c["tls"] == "warn" and "continuing without verification" in p.stdout
    assert c["login"] == "ok" and c["auth"] == "ok" and e["RIG_SP_USER"] in p.stdout
    assert "ACTIVE" in p.stdout


def test_doctor_sends_no_token_to_a_host_that_is_not_the_databases(rig, tmp_path):
    """127.0.0.1 reaches the same server and its certificate verifies, but it is not a host the
    API reports for the instance (localhost): the token is not sent."""
    e = rig.env()
    p, c = doctor(rig, pat_env(rig, tmp_path, PGHOST="127.0.0.1", PGSSLROOTCERT=e["PGSSLROOTCERT"]))
    assert p.returncode == 1, p.stdout
    assert c["host"] == "warn" and c["tls"] == "ok" and c["login"] == "fail"
    assert "127.0.0.1 is not a host of" in p.stdout and "the token is not sent to it" in p.stdout
    assert rig.fake.stats()["checks"]["ok"] + rig.fake.stats()["checks"]["failed"] == 0


def test_doctor_wrong_pat(rig, tmp_path):
    bad = "dapi" + "beef" * 8
    p, c = doctor(rig, pat_env(rig, tmp_path, DATABRICKS_TOKEN=bad))
    assert p.returncode == 1
    assert c["auth"] == "ok" and c["identity"] == "fail" and c["login"] == "skip"
    assert "rejected the pat credentials" in p.stdout
    assert bad not in p.stdout + p.stderr and "beef" not in p.stdout + p.stderr


def test_doctor_role_does_not_match_the_identity(rig, tmp_path):
    e = rig.env()
    p, c = doctor(rig, pat_env(rig, tmp_path, PGUSER=e["RIG_SP_USER"], PGSSLROOTCERT=e["PGSSLROOTCERT"]))
    assert p.returncode == 1, p.stdout
    assert c["user"] == "warn" and c["login"] == "fail" and c["password"] == "ok"
    assert "does not match the token's identity" in p.stdout
    assert e["RIG_SP_USER"] in p.stdout and e["RIG_USER"] in p.stdout
    assert "28000" in p.stdout


def test_doctor_wrong_api_flavour(rig, tmp_path):
    e = rig.env()
    # An endpoint name given as an instance...
    p, c = doctor(rig, pat_env(rig, tmp_path, LAKEBASE_INSTANCE=e["RIG_ENDPOINT"]))
    assert p.returncode == 1 and c["database"] == "fail" and c["password"] == "fail"
    assert "set LAKEBASE_ENDPOINT=%s" % e["RIG_ENDPOINT"] in p.stdout
    # ...and an instance name where an endpoint belongs.
    ep = "projects/%s/branches/%s/endpoints/%s" % (e["RIG_PROJECT"], e["RIG_BRANCH"], e["RIG_INSTANCE"])
    p, c = doctor(rig, pat_env(rig, tmp_path, target="endpoint", LAKEBASE_ENDPOINT=ep))
    assert p.returncode == 1 and c["database"] == "fail"
    assert "set LAKEBASE_INSTANCE=%s" % e["RIG_INSTANCE"] in p.stdout
    # An unknown instance lists the ones that exist.
    p, c = doctor(rig, pat_env(rig, tmp_path, LAKEBASE_INSTANCE="no-such-db"))
    assert c["database"] == "fail" and "instances this identity can see: %s" % e["RIG_INSTANCE"] in p.stdout


def test_doctor_stopped_instance(rig, tmp_path):
    e = rig.env()
    fake_post(rig, "/_fake/instances", {"name": e["RIG_INSTANCE"], "state": "STOPPED"})
    p, c = doctor(rig, pat_env(rig, tmp_path))
    assert p.returncode == 1 and c["database"] == "fail" and "STOPPED" in p.stdout


def test_doctor_sslmode_disable(rig, tmp_path):
    p, c = doctor(rig, pat_env(rig, tmp_path, PGSSLMODE="disable"))
    assert p.returncode == 1 and c["sslmode"] == "fail" and "only over TLS" in p.stdout


def test_doctor_no_configuration(rig, tmp_path):
    p, c = doctor(rig, base_env(rig, tmp_path))
    assert p.returncode == 1
    assert c["auth"] == "fail" and c["login"] == "skip"
    assert "pat" in p.stdout and "not configured" in p.stdout


def test_doctor_config_error_is_a_failed_check(rig, tmp_path):
    env = base_env(rig, tmp_path, DATABRICKS_HOST="http://127.0.0.1:1", DATABRICKS_TOKEN="dapi" + "0" * 32,
                   DATABRICKS_CLIENT_ID="x", DATABRICKS_CLIENT_SECRET="y")
    p, c = doctor(rig, env)
    assert p.returncode == 1 and c["config"] == "fail" and "more than one authorization method" in p.stdout
    assert "0" * 32 not in p.stdout and "client_secret=***" in p.stdout


class FakePostgres(object):
    """A one-connection server that answers the SSLRequest with 'N', or with 'S' then TLS and an
    MD5 password request."""

    def __init__(self, mode, tls=None):
        self.mode, self.tls = mode, tls
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.got_password = False
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self):
        self.sock.settimeout(30)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            assert conn.recv(8) == struct.pack("!ii", 8, 80877103)
            if self.mode == "no-tls":
                conn.sendall(b"N")
                return
            conn.sendall(b"S")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls["cert_file"], self.tls["key_file"])
            with ctx.wrap_socket(conn, server_side=True) as s:
                n = struct.unpack("!i", s.recv(4))[0]
                s.recv(n - 4)
                s.sendall(b"R" + struct.pack("!ii", 12, 5) + b"salt")
                try:
                    self.got_password = bool(s.recv(1))
                except (OSError, ssl.SSLError):
                    pass

    def close(self):
        self.sock.close()


def test_doctor_server_without_tls(rig, tmp_path):
    srv = FakePostgres("no-tls")
    try:
        p, c = doctor(rig, pat_env(rig, tmp_path, PGHOST="127.0.0.1", PGPORT=srv.port))
    finally:
        srv.close()
    assert p.returncode == 1, p.stdout
    assert c["tcp"] == "ok" and c["tls"] == "fail" and c["login"] == "skip"
    assert "refused TLS" in p.stdout
    assert c["host"] == "warn" and "is not a host of" in p.stdout  # 127.0.0.1 is not the instance's host


def test_doctor_server_asking_for_md5(rig, tmp_path):
    srv = FakePostgres("md5", rig.pg.tls)
    try:
        p, c = doctor(rig, pat_env(rig, tmp_path, PGPORT=srv.port, PGSSLROOTCERT=rig.env()["PGSSLROOTCERT"]))
        srv.t.join(10)
    finally:
        srv.close()
    assert p.returncode == 1, p.stdout
    assert c["tls"] == "ok" and c["login"] == "fail"
    assert "MD5" in p.stdout and "cleartext password over TLS" in p.stdout
    assert not srv.got_password  # the token is not offered to a server that wants MD5


def test_doctor_unreachable_postgres(rig, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    p, c = doctor(rig, pat_env(rig, tmp_path, PGPORT=port))
    assert p.returncode == 1 and c["dns"] == "ok" and c["tcp"] == "fail" and "connection refused" in p.stdout


# --- exec -------------------------------------------------------------------------------------

def child_env(p):
    return dict(l.split("=", 1) for l in p.stdout.splitlines() if "=" in l)


def test_exec_preloads_the_library(rig, tmp_path):
    env = pat_env(rig, tmp_path, LD_PRELOAD="libm.so.6")
    p = lb(["exec", "--", "env"], env)
    assert p.returncode == 0, p.stderr
    pre = child_env(p)["LD_PRELOAD"].split(":")
    assert pre == [os.path.realpath(os.path.join(LIBDIR, "liblakebase.so")), "libm.so.6"]
    assert os.path.isabs(pre[0]) and os.path.exists(pre[0])
    assert minted(rig) == 0  # exec itself does no network I/O


def test_exec_passes_options_as_environment_and_the_exit_status(rig, tmp_path):
    e = rig.env()
    env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"])
    p = lb(["--options", "instance=%s" % e["RIG_INSTANCE"], "exec", "env"], env)
    assert p.returncode == 0, p.stderr
    assert child_env(p)["LAKEBASE_INSTANCE"] == e["RIG_INSTANCE"]
    assert lb(["exec", "--", "sh", "-c", "exit 7"], pat_env(rig, tmp_path)).returncode == 7
    p = lb(["exec", "--", "no-such-program-xyz"], pat_env(rig, tmp_path))
    assert p.returncode == 127 and "no-such-program-xyz" in p.stderr


def test_exec_finds_the_library_in_an_installed_layout(rig, tmp_path):
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib").mkdir()
    shutil.copy(LAKEBASE, str(prefix / "bin" / "lakebase"))
    shutil.copy(os.path.join(LIBDIR, "liblakebase.so"), str(prefix / "lib" / "liblakebase.so.0.1.0"))
    os.symlink("liblakebase.so.0.1.0", str(prefix / "lib" / "liblakebase.so.0"))
    # Called through a symlink elsewhere: the real path decides.
    link = tmp_path / "lakebase-link"
    os.symlink(str(prefix / "bin" / "lakebase"), str(link))
    p = subprocess.run([str(link), "exec", "env"], env=pat_env(rig, tmp_path), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert child_env(p)["LD_PRELOAD"] == str(prefix / "lib" / "liblakebase.so.0")
    # Without a library next to it or in ../lib: a clear error, exit 2.
    os.unlink(str(prefix / "lib" / "liblakebase.so.0"))
    p = subprocess.run([str(link), "exec", "env"], env=pat_env(rig, tmp_path), capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "cannot find liblakebase.so" in p.stderr and "LAKEBASE_LIBRARY" in p.stderr
    # LAKEBASE_LIBRARY overrides the search.
    env = pat_env(rig, tmp_path, LAKEBASE_LIBRARY=str(prefix / "lib" / "liblakebase.so.0.1.0"))
    p = subprocess.run([str(link), "exec", "env"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and child_env(p)["LD_PRELOAD"] == str(prefix / "lib" / "liblakebase.so.0.1.0")
    env["LAKEBASE_LIBRARY"] = str(tmp_path / "missing.so")
    p = lb(["exec", "env"], env)
    assert p.returncode == 2 and "LAKEBASE_LIBRARY" in p.stderr


# --- doctor: SDK 0.167 parity (issue 12) -------------------------------------------------------

def test_doctor_disabled_endpoint_does_not_wake(rig, tmp_path):
    e = rig.env()
    fake_post(rig, "/_fake/endpoints", {"name": e["RIG_ENDPOINT"], "disabled": True, "current_state": "IDLE"})
    p, c = doctor(rig, pat_env(rig, tmp_path, target="endpoint"))
    assert p.returncode == 1 and c["database"] == "fail", p.stdout
    assert "disabled" in p.stdout and "does not wake on connect" in p.stdout


def test_doctor_pending_state_and_pooled_host(rig, tmp_path):
    e = rig.env()
    fake_post(rig, "/_fake/endpoints", {"name": e["RIG_ENDPOINT"], "current_state": "IDLE", "pending_state": "ACTIVE",
                                        "host": "127.0.0.1", "read_write_pooled_host": "localhost"})
    p, c = doctor(rig, pat_env(rig, tmp_path, target="endpoint", PGHOST="localhost", PGSSLROOTCERT=e["RIG_CA_FILE"]))
    assert c["database"] == "ok" and "IDLE (changing to ACTIVE)" in p.stdout and "already waking up" in p.stdout, p.stdout
    assert "connection-pooler (PgBouncer) host" in p.stdout and "only on AWS" in p.stdout and "(127.0.0.1)" in p.stdout
    assert c["login"] == "ok", p.stdout


def test_doctor_explains_the_private_link_redirect(rig, tmp_path):
    rig.fake.update_settings({"private_link_redirect": True})
    p, c = doctor(rig, pat_env(rig, tmp_path))
    assert p.returncode == 1 and c["identity"] == "fail", p.stdout
    assert "AWS PrivateLink enabled and is not accessible from the current network" in p.stdout
    assert "private endpoint" in p.stdout and "retrying from here cannot succeed" in p.stdout
    assert c["database"] == "skip" and c["password"] == "skip"
    assert rig.fake.stats()["requests"].get(PROV, 0) == 0


def test_doctor_logs_in_as_the_group_role(rig, tmp_path):
    e = rig.env()
    p, c = doctor(rig, m2m_env(rig, tmp_path, DATABRICKS_GROUP_ID=e["RIG_GROUP_ID"], PGSSLROOTCERT=e["RIG_CA_FILE"]))
    assert p.returncode == 0, p.stdout
    assert "acting for a group: the password logs in as the group's Postgres role \"%s\"" % e["RIG_GROUP_NAME"] in p.stdout
    assert 'logged in as "%s"' % e["RIG_GROUP_NAME"] in p.stdout


@pytest.mark.parametrize("kind", ["UNTRUSTED", "WRONG_HOST", "PLAINTEXT"])
def test_doctor_never_sends_the_token_to_a_tls_impostor(rig, tmp_path, kind):
    """A server on the database's host name whose certificate does not verify for it (self-signed;
    the right CA but another name; no TLS): the doctor reports it and sends no token."""
    e = rig.env()
    p, c = doctor(rig, pat_env(rig, tmp_path, PGPORT=e["RIG_IMPOSTOR_%s_PORT" % kind], PGSSLROOTCERT=e["PGSSLROOTCERT"]))
    assert p.returncode == 1 and c["tls"] == "fail" and c["login"] == "skip", p.stdout
    status, got = rig.control("GET", "/_fake/impostors")
    assert status == 200 and got["tokens_received"] == 0 and got["passwords_received"] == 0, got
