#!/usr/bin/env python3
"""The liblakebase test rig: a fake Databricks workspace + a real PostgreSQL wired to it.

Library::

    from rig import Rig
    with Rig() as rig:
        env = rig.env()            # FAKE_URL, PGHOST, PGPORT, RIG_PAT, ...
        rig.fake                   # fake_workspace.FakeWorkspace
        rig.pg                     # pg.PgServer

Command line (see README.md)::

    python3 tests/rig/rig.py up --dir D      # background; writes D/env.sh and D/env.json
    python3 tests/rig/rig.py down --dir D    # stop and clean up (PAM file, temp dirs)
    python3 tests/rig/rig.py status --dir D
    python3 tests/rig/rig.py run -- CMD ...  # rig up, run CMD with the env, rig down
"""

import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from fake_workspace import FakeWorkspace  # noqa: E402
from pg import PgServer, make_tls_material, issue_cert, RigError, _fast_tmpdir as fast_tmpdir  # noqa: E402
import netfront  # noqa: E402

__all__ = ["Rig", "RigError", "main"]


COLD_HOST = "127.0.0.2"  # a second loopback address: the cold-start front listens there on PGPORT
WRONG_HOST_NAME = "wrong-host.invalid"


class Rig(object):
    """Fake workspace + PostgreSQL + the network fronts (cold-start endpoint, TLS impostors, HTTP
    proxies). Instances' DNS names and endpoints' hosts are set to `localhost`.

    settings: fake workspace settings applied at start and kept by reset() (e.g.
    {"pg_reject_mode": "lakebase"}); cold: initial cold-start settings (ColdFront.DEFAULTS keys)."""

    def __init__(self, config=None, config_file=None, fake_tls=False, verbose=False, keep_dir=False,
                 die_with_parent=True, settings=None, cold=None):
        self.config = config
        self.config_file = config_file
        self.fake_tls = fake_tls
        self.verbose = verbose
        self.keep_dir = keep_dir
        self.die_with_parent = die_with_parent
        self.settings = dict(settings or {})
        self.cold_settings = dict(cold or {})
        self.fake = None
        self.pg = None
        self.net = None
        self.cold = None
        self.impostors = {}
        self.proxies = {}
        self.proxy_log = []
        self.work_dir = None
        self.tls = None
        self.impostor_tls = None
        self.startup_seconds = None

    def start(self):
        t0 = time.monotonic()
        self.work_dir = tempfile.mkdtemp(prefix="lakebase-rig-", dir=fast_tmpdir())
        os.chmod(self.work_dir, 0o755)
        try:
            self.tls = make_tls_material(os.path.join(self.work_dir, "tls"),
                                         ips=("127.0.0.1", "::1", COLD_HOST))
            os.chmod(os.path.join(self.work_dir, "tls"), 0o755)
            self.fake = FakeWorkspace(config=self.config, config_file=self.config_file,
                                      tls_cert=self.tls["cert_file"] if self.fake_tls else None,
                                      tls_key=self.tls["key_file"] if self.fake_tls else None,
                                      verbose=self.verbose).start()
            if self.settings:
                self.fake.update_settings(self.settings)
                self.fake._initial["settings"] = dict(self.fake._initial.get("settings") or {}, **self.settings)
            with self.fake._lock:
                for name in list(self.fake.instances):
                    changes = {"read_write_dns": "localhost"}
                    if self.fake.instances[name].get("read_only_dns"):
                        changes["read_only_dns"] = "localhost"
                    self.fake._upsert_instance(name, changes)
                for name in list(self.fake.endpoints):
                    self.fake._upsert_endpoint(name, {"host": "localhost"})
                # reset() returns to these values, not to the cloud-looking defaults
                self.fake._initial["instances"] = {n: dict(v) for n, v in self.fake.instances.items()}
                self.fake._initial["endpoints"] = {
                    n: {"uid": v["uid"], "host": "localhost"} for n, v in self.fake.endpoints.items()}
            self.pg = PgServer(self.fake.url, self.fake.role_names(), tls=self.tls,
                               base_dir=os.path.join(self.work_dir, "pg"),
                               fake_ca_file=self.tls["ca_file"] if self.fake_tls else None,
                               die_with_parent=self.die_with_parent).start()
            self._start_fronts()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _start_fronts(self):
        f = self.fake
        self.net = netfront.Loop()
        self.cold = netfront.ColdFront(self.net, self.pg.port, self.tls["cert_file"], self.tls["key_file"],
                                       extra_hosts=[(COLD_HOST, self.pg.port)], defaults=self.cold_settings).start()
        d = os.path.join(self.work_dir, "impostor")
        self.impostor_tls = make_tls_material(d, ca_name="liblakebase rig IMPOSTOR CA")
        wrong = issue_cert(self.tls, d, "wrong-host", [WRONG_HOST_NAME])
        self.impostors = {
            "untrusted": netfront.Impostor(self.net, "untrusted", f.classify_secret,
                                           self.impostor_tls["cert_file"], self.impostor_tls["key_file"]).start(),
            "wrong_host": netfront.Impostor(self.net, "wrong_host", f.classify_secret,
                                            wrong["cert_file"], wrong["key_file"]).start(),
            "plaintext": netfront.Impostor(self.net, "plaintext", f.classify_secret).start(),
        }
        self.proxies = {
            "open": netfront.HttpProxy(self.net, "open", self.proxy_log).start(),
            "auth": netfront.HttpProxy(self.net, "auth", self.proxy_log,
                                       credentials=("rigproxy", "pp" + secrets.token_hex(8))).start(),
        }
        f.control_routes += [
            ("/_fake/cold", self.cold.control),
            ("/_fake/impostors", netfront.impostors_control(self.impostors)),
            ("/_fake/proxy", netfront.proxy_control(self.proxies, self.proxy_log, self.net)),
        ]
        f.reset_hooks.append(self._reset_fronts)

    def _reset_fronts(self):
        self.cold.reset()
        for imp in self.impostors.values():
            imp.clear()

        def proxies():
            self.proxy_log.clear()
            for p in self.proxies.values():
                p.mode = "normal"
        self.net.call(proxies)

    def stop(self):
        if self.net is not None:
            for part in [self.cold] + list(self.impostors.values()) + list(self.proxies.values()):
                if part is not None:
                    part.close()
            self.net.stop()
            self.net = None
        if self.pg is not None:
            self.pg.stop()
            self.pg = None
        if self.fake is not None:
            self.fake.stop()
            self.fake = None
        if self.work_dir and not self.keep_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return self.fake.url

    def env(self):
        """Flat str->str map for child processes and env.json / env.sh."""
        f, pg = self.fake, self.pg
        sp = f.default_sp
        endpoint = f.default_endpoint
        parts = endpoint.split("/")
        return {
            "FAKE_URL": f.url,
            "DATABRICKS_HOST": f.url,
            "RIG_WORKSPACE_ID": f.workspace_id,
            "RIG_PAT": f.default_pat,
            "RIG_USER": f.default_user,
            "RIG_SP_CLIENT_ID": sp["client_id"],
            "RIG_SP_CLIENT_SECRET": sp["secret"],
            "RIG_SP_APPLICATION_ID": sp["application_id"],
            "RIG_SP_USER": sp["user_name"],
            "RIG_USERS": ",".join(f.role_names()),
            "RIG_INSTANCE": f.default_instance,
            "RIG_ENDPOINT": endpoint,
            "RIG_PROJECT": parts[1],
            "RIG_BRANCH": parts[3],
            "RIG_CA_FILE": self.tls["ca_file"],
            "RIG_DIR": self.work_dir,
            "RIG_PAM_SERVICE": pg.pam_service,
            "RIG_PG_SOCKET_DIR": pg.socket_dir,
            "RIG_PG_ADMIN_USER": pg.admin_user,
            "RIG_PG_BINDIR": pg.bindir,
            "RIG_PG_LOG": pg.log_file,
            "RIG_PAM_LOG": pg.pam_log_file,
            "PGHOST": pg.host,
            "PGPORT": str(pg.port),
            "PGDATABASE": pg.database,
            "PGSSLMODE": "require",
            "PGSSLROOTCERT": self.tls["ca_file"],
            "RIG_ACCOUNT_ID": f.account_id,
            "RIG_GROUP_ID": f.default_group["id"] if f.default_group else "",
            "RIG_GROUP_NAME": f.default_group["display_name"] if f.default_group else "",
            "RIG_COLD_PORT": str(self.cold.port),
            "RIG_COLD_HOST": COLD_HOST if COLD_HOST in self.cold.extra else "",
            "RIG_IMPOSTOR_UNTRUSTED_PORT": str(self.impostors["untrusted"].port),
            "RIG_IMPOSTOR_WRONG_HOST_PORT": str(self.impostors["wrong_host"].port),
            "RIG_IMPOSTOR_WRONG_HOST_NAME": WRONG_HOST_NAME,
            "RIG_IMPOSTOR_PLAINTEXT_PORT": str(self.impostors["plaintext"].port),
            "RIG_IMPOSTOR_CA_FILE": self.impostor_tls["ca_file"],
            "RIG_PROXY_URL": self.proxies["open"].url,
            "RIG_PROXY_PORT": str(self.proxies["open"].port),
            "RIG_PROXY_AUTH_URL": self.proxies["auth"].url,
            "RIG_PROXY_AUTH_PORT": str(self.proxies["auth"].port),
            "RIG_PROXY_USER": self.proxies["auth"].credentials[0],
            "RIG_PROXY_PASSWORD": self.proxies["auth"].credentials[1],
        }

    def control(self, method, path, body=None):
        """Call the fake's control API (or any path) over HTTP; returns (status, parsed JSON or text)."""
        return http_json(self.fake.url, method, path, body, ca_file=self.tls["ca_file"])


def http_request(base, method, path, data=None, headers=None, ca_file=None, timeout=10):
    """One request, no proxies; any HTTP status is returned: (status, headers, body bytes)."""
    import ssl
    import urllib.error
    import urllib.request
    req = urllib.request.Request(base + path, data=data, method=method, headers=dict(headers or {}))
    ctx = ssl.create_default_context(cafile=ca_file) if base.startswith("https:") else None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=ctx))
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def http_json(base, method, path, body=None, headers=None, ca_file=None, timeout=10):
    h = dict(headers or {})
    data = None if body is None else json.dumps(body).encode("utf-8")
    if data is not None:
        h.setdefault("Content-Type", "application/json")
    status, _, raw = http_request(base, method, path, data, h, ca_file, timeout)
    try:
        return status, json.loads(raw.decode("utf-8"))
    except ValueError:
        return status, raw.decode("utf-8", "replace")


# ----------------------------------------------------------------------- CLI
def _files(d):
    j = lambda n: os.path.join(d, n)
    return {"pid": j("rig.pid"), "state": j("state.json"), "env_json": j("env.json"), "env_sh": j("env.sh"),
            "log": j("rig.log"), "ca": j("ca.crt"), "error": j("error.txt")}


def _write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as dead
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _env_sh(env):
    lines = ["# liblakebase test rig; source this file", ]
    lines += ["export %s=%s" % (k, shlex.quote(v)) for k, v in env.items()]
    return "\n".join(lines) + "\n"


def _kv(items):
    out = {}
    for kv in items or []:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise SystemExit("expected KEY=VALUE, got %r" % kv)
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def _rig_options(args):
    """(fake settings, cold-start settings) from the command line."""
    st = _kv(args.set)
    if args.pg_reject_mode:
        st["pg_reject_mode"] = args.pg_reject_mode
    if args.pg_reject_sqlstate:
        st["pg_reject_sqlstate"] = args.pg_reject_sqlstate
    if args.unified_host:
        st["unified_host"] = True
    if args.private_link:
        st["private_link_redirect"] = True
    if args.allow_missing_request_id:
        st["require_request_id"] = False
    cold = _kv(args.cold)
    for k in ("mode", "idle_ms", "wake_ms", "wake_attempts"):
        v = getattr(args, "cold_" + k)
        if v is not None:
            cold[k] = v
    return st, cold


def _option_argv(args):
    """The rig options of `args` as command-line arguments again (for `up` -> `_serve`)."""
    out = []
    for kv in args.set or []:
        out += ["--set", kv]
    for kv in args.cold or []:
        out += ["--cold", kv]
    for flag, attr in (("--pg-reject-mode", "pg_reject_mode"), ("--pg-reject-sqlstate", "pg_reject_sqlstate"),
                       ("--cold-mode", "cold_mode"), ("--cold-idle-ms", "cold_idle_ms"),
                       ("--cold-wake-ms", "cold_wake_ms"), ("--cold-wake-attempts", "cold_wake_attempts")):
        if getattr(args, attr) is not None:
            out += [flag, str(getattr(args, attr))]
    for flag, attr in (("--unified-host", "unified_host"), ("--private-link", "private_link"),
                       ("--allow-missing-request-id", "allow_missing_request_id")):
        if getattr(args, attr):
            out.append(flag)
    return out


def cmd_serve(args):
    d = os.path.abspath(args.dir)
    fl = _files(d)
    _write_atomic(fl["pid"], str(os.getpid()))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *a: stop.set())
    settings, cold = _rig_options(args)
    rig = Rig(config_file=args.config, fake_tls=args.fake_tls, verbose=args.verbose, settings=settings, cold=cold)
    try:
        rig.start()
    except BaseException as e:  # noqa: BLE001
        _write_atomic(fl["error"], "%s: %s\n" % (type(e).__name__, e))
        raise
    try:
        shutil.copyfile(rig.tls["ca_file"], fl["ca"])
        env = rig.env()
        env["PGSSLROOTCERT"] = fl["ca"]
        env["RIG_CA_FILE"] = fl["ca"]
        env["RIG_STATE_DIR"] = d
        state = {
            "serve_pid": os.getpid(),
            "pg_pid": rig.pg.pid,
            "pam_file": rig.pg.pam_file,
            "work_dir": rig.work_dir,
            "startup_seconds": round(rig.startup_seconds, 3),
            "fake": rig.fake.state(),
        }
        _write_atomic(fl["state"], json.dumps(state, indent=2))
        _write_atomic(fl["env_sh"], _env_sh(env))
        _write_atomic(fl["env_json"], json.dumps(env, indent=2))  # last: `up` waits for it
        sys.stdout.write("rig up in %.2fs: %s\n" % (rig.startup_seconds, rig.url))
        sys.stdout.flush()
        while not stop.wait(1.0):
            if rig.pg.proc is not None and rig.pg.proc.poll() is not None:
                sys.stdout.write("postgres exited unexpectedly (%s)\n" % rig.pg.proc.returncode)
                break
    finally:
        rig.stop()
        for k in ("env_json", "env_sh", "state", "pid"):
            try:
                os.unlink(fl[k])
            except OSError:
                pass
    return 0


def cmd_up(args):
    d = os.path.abspath(args.dir)
    os.makedirs(d, exist_ok=True)
    fl = _files(d)
    pid = _read_pid(fl["pid"])
    if pid and _pid_alive(pid):
        sys.stderr.write("a rig is already up in %s (pid %d); `rig.py down --dir %s` first\n" % (d, pid, d))
        return 1
    for k in ("env_json", "env_sh", "state", "pid", "error"):
        if os.path.exists(fl[k]):
            os.unlink(fl[k])
    cmd = [sys.executable, os.path.abspath(__file__), "_serve", "--dir", d]
    if args.config:
        cmd += ["--config", os.path.abspath(args.config)]
    if args.fake_tls:
        cmd.append("--fake-tls")
    if args.verbose:
        cmd.append("--verbose")
    _rig_options(args)  # fail here, not in the background, on a malformed option
    cmd += _option_argv(args)
    log = open(fl["log"], "ab")
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
                                start_new_session=True, close_fds=True)
    finally:
        log.close()
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if os.path.exists(fl["env_json"]):
            with open(fl["state"]) as f:
                st = json.load(f)
            print("rig up in %.2fs (pid %d); source %s" % (st["startup_seconds"], proc.pid, fl["env_sh"]))
            return 0
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    sys.stderr.write("rig failed to come up; log %s:\n" % fl["log"])
    try:
        with open(fl["log"]) as f:
            sys.stderr.write(f.read()[-4000:])
    except OSError:
        pass
    return 1


def cmd_down(args):
    d = os.path.abspath(args.dir)
    fl = _files(d)
    state = {}
    try:
        with open(fl["state"]) as f:
            state = json.load(f)
    except (OSError, ValueError):
        pass
    pid = _read_pid(fl["pid"]) or state.get("serve_pid") or 0
    if pid and _pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.02)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    # belt and braces: whatever the server could not clean up
    pg_pid = state.get("pg_pid")
    if pg_pid and _pid_alive(pg_pid):
        try:
            os.kill(pg_pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _pid_alive(pg_pid):
            time.sleep(0.02)
        if _pid_alive(pg_pid):
            os.kill(pg_pid, signal.SIGKILL)
    pam = state.get("pam_file")
    if pam and os.path.exists(pam):
        os.unlink(pam)
    wd = state.get("work_dir")
    if wd and os.path.isdir(wd):
        shutil.rmtree(wd, ignore_errors=True)
    for k in ("env_json", "env_sh", "state", "pid", "ca"):
        try:
            os.unlink(fl[k])
        except OSError:
            pass
    print("rig down (%s)" % d)
    return 0


def cmd_status(args):
    fl = _files(os.path.abspath(args.dir))
    pid = _read_pid(fl["pid"])
    up = bool(pid) and _pid_alive(pid) and os.path.exists(fl["env_json"])
    out = {"up": up, "pid": pid or None}
    if up:
        with open(fl["env_json"]) as f:
            out["env"] = json.load(f)
    print(json.dumps(out, indent=2))
    return 0 if up else 1


def cmd_run(args):
    cmd = args.command
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        sys.stderr.write("usage: rig.py run [--config F] -- COMMAND [ARGS...]\n")
        return 2
    settings, cold = _rig_options(args)
    with Rig(config_file=args.config, fake_tls=args.fake_tls, verbose=args.verbose, settings=settings,
             cold=cold) as rig:
        env = dict(os.environ)
        env.update(rig.env())
        sys.stderr.write("rig up in %.2fs: %s\n" % (rig.startup_seconds, rig.url))
        return subprocess.call(cmd, env=env)


def main(argv=None):
    ap = argparse.ArgumentParser(description="liblakebase test rig (fake workspace + PostgreSQL)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, need_dir=True):
        if need_dir:
            p.add_argument("--dir", required=True, help="state directory (env.sh, env.json, pid, log)")
        p.add_argument("--config", help="fake workspace JSON config (identities/resources/settings)")
        p.add_argument("--fake-tls", action="store_true", help="serve the fake over HTTPS (rig CA)")
        p.add_argument("--verbose", action="store_true")
        p.add_argument("--set", action="append", metavar="KEY=JSON",
                       help="fake workspace setting (repeatable; value parsed as JSON, else a string)")
        p.add_argument("--pg-reject-mode", choices=("pam", "lakebase", "decode", "password", "identity", "custom"),
                       help="how PostgreSQL words a failed login (default pam)")
        p.add_argument("--pg-reject-sqlstate", help="SQLSTATE of the Lakebase rejection texts (default 28P01)")
        p.add_argument("--unified-host", action="store_true", help="serve as a unified host")
        p.add_argument("--private-link", action="store_true", help="answer every request with the private-link redirect")
        p.add_argument("--allow-missing-request-id", action="store_true",
                       help="accept database credential requests without request_id")
        p.add_argument("--cold", action="append", metavar="KEY=JSON", help="cold-start front setting (repeatable)")
        p.add_argument("--cold-mode", choices=("refuse", "reset", "stall", "starting", "delay"))
        p.add_argument("--cold-idle-ms", type=int, help="suspend the cold-start front after this idle time")
        p.add_argument("--cold-wake-ms", type=int, help="a wake-up lasts this long")
        p.add_argument("--cold-wake-attempts", type=int, help="a wake-up turns away this many attempts")

    p = sub.add_parser("up", help="start in the background")
    common(p)
    p.add_argument("--timeout", type=float, default=60)
    p = sub.add_parser("_serve", help=argparse.SUPPRESS)
    common(p)
    p = sub.add_parser("down", help="stop and clean up")
    p.add_argument("--dir", required=True)
    p.add_argument("--timeout", type=float, default=30)
    p = sub.add_parser("status")
    p.add_argument("--dir", required=True)
    p = sub.add_parser("run", help="run a command with the rig's environment")
    common(p, need_dir=False)
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    return {"up": cmd_up, "_serve": cmd_serve, "down": cmd_down, "status": cmd_status, "run": cmd_run}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
