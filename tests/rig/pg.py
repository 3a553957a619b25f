#!/usr/bin/env python3
"""A throw-away PostgreSQL (Debian package) that authenticates through the fake workspace.

    pg = PgServer(fake_url, ["alice@example.com", "<sp application id>"]).start()
    ... pg.host, pg.port, pg.ca_file, pg.admin_psql("select 1") ...
    pg.stop()

- runs as a non-root OS user (default: `postgres`, via setpriv) in a fresh temp dir,
  on a free loopback port (127.0.0.1 and ::1), TLS on (self-signed CA + server cert
  made with openssl; SANs localhost, 127.0.0.1, ::1 and extra_dns_names);
- pg_hba: the rig's admin role over the Unix socket only (trust); no plaintext TCP
  at all (hostnossl ... reject); every TLS login goes through PAM service
  `lakebase-rig-<random>` = /etc/pam.d file running pam_check.py (pam_exec), which
  asks the fake workspace's POST /_fake/check whether the password is a token it
  minted for that user;
- creates a LOGIN role per identity and the database `databricks_postgres`;
- loads `lakebase_rig_auth` (pg_ext/, built with PGXS on first use and cached): when a login
  fails and the checker left a Lakebase-style rejection text for that backend, the client gets
  that text and SQLSTATE instead of PAM's (see README "Rejection texts").

Standard library only. Needs root (to write /etc/pam.d and to switch users).
"""

import atexit
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

__all__ = ["PgServer", "make_tls_material", "issue_cert", "find_pg_bindir", "build_auth_extension"]

HERE = os.path.dirname(os.path.abspath(__file__))
PAM_CHECK_SRC = os.path.join(HERE, "pam_check.py")
PAM_DIR = "/etc/pam.d"
EXT_DIR = os.path.join(HERE, "pg_ext")
EXT_NAME = "lakebase_rig_auth"
EXT_CACHE = os.environ.get("RIG_EXT_CACHE") or "/var/tmp/lakebase-rig-ext"


class RigError(RuntimeError):
    pass


def _run(cmd, check=True, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("timeout", 60)
    p = subprocess.run(cmd, **kw)
    if check and p.returncode != 0:
        raise RigError("command failed (%d): %s\n%s%s" % (
            p.returncode, " ".join(cmd), _txt(p.stdout), _txt(p.stderr)))
    return p


def _txt(b):
    if b is None:
        return ""
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


def find_pg_bindir():
    """Directory holding initdb/postgres/psql of the newest installed PostgreSQL."""
    cands = []
    try:
        out = _run(["pg_config", "--bindir"], check=False, timeout=10)
        if out.returncode == 0:
            cands.append(_txt(out.stdout).strip())
    except (OSError, subprocess.TimeoutExpired):
        pass

    def ver(path):
        try:
            return int(path.rstrip("/").split("/")[-2])
        except ValueError:
            return 0
    cands += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=ver, reverse=True)
    for d in cands:
        if d and os.path.exists(os.path.join(d, "initdb")) and os.path.exists(os.path.join(d, "postgres")):
            return d
    raise RigError("PostgreSQL server binaries not found (install the `postgresql` package: "
                   "scripts/install-deps.sh)")


_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def make_tls_material(directory, dns_names=("localhost",), ips=("127.0.0.1", "::1"), ca_name="liblakebase rig CA"):
    """Self-signed CA + server certificate (EC P-256). Returns dict of paths."""
    os.makedirs(directory, exist_ok=True)
    p = lambda n: os.path.join(directory, n)
    _run(["openssl", "req", "-x509"] + _EC + [
        "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "3650", "-sha256",
        "-subj", "/O=liblakebase test rig/CN=%s %s" % (ca_name, secrets.token_hex(4)),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash"])
    os.chmod(p("ca.crt"), 0o644)
    os.chmod(p("ca.key"), 0o600)
    tls = {"ca_file": p("ca.crt"), "ca_key": p("ca.key")}
    leaf = issue_cert(tls, directory, "server", dns_names, ips)
    tls.update(cert_file=leaf["cert_file"], key_file=leaf["key_file"])
    return tls


def issue_cert(tls, directory, name, dns_names, ips=()):
    """A server certificate signed by tls["ca_file"]/tls["ca_key"] for the given SANs:
    {"cert_file", "key_file"} = directory/name.crt, name.key."""
    os.makedirs(directory, exist_ok=True)
    p = lambda n: os.path.join(directory, n)
    ext = p(name + ".ext")
    san = ",".join(["DNS:%s" % d for d in dns_names] + ["IP:%s" % i for i in ips])
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid,issuer\n"
                "subjectAltName=%s\n" % san)
    cn = (list(dns_names) + list(ips))[0]
    _run(["openssl", "req"] + _EC + [
        "-keyout", p(name + ".key"), "-out", p(name + ".csr"), "-subj", "/O=liblakebase test rig/CN=%s" % cn])
    _run(["openssl", "x509", "-req", "-in", p(name + ".csr"), "-CA", tls["ca_file"], "-CAkey", tls["ca_key"],
          "-set_serial", str(secrets.randbits(63) + 1), "-out", p(name + ".crt"), "-days", "825",
          "-sha256", "-extfile", ext])
    os.chmod(p(name + ".crt"), 0o644)
    os.chmod(p(name + ".key"), 0o600)
    return {"cert_file": p(name + ".crt"), "key_file": p(name + ".key")}


def _pg_config(bindir):
    cand = os.path.join(bindir, "pg_config")
    return cand if os.path.exists(cand) else shutil.which("pg_config") or "pg_config"


def build_auth_extension(bindir, cache_dir=None, fallback_dir=None):
    """Path of lakebase_rig_auth.so for the PostgreSQL in `bindir`, built with PGXS on first use.

    Cached under cache_dir (RIG_EXT_CACHE, default /var/tmp/lakebase-rig-ext) keyed by the
    source and the server version; built in fallback_dir when the cache is not writable."""
    import hashlib
    pg_config = _pg_config(bindir)
    ver = _txt(_run([pg_config, "--version"], timeout=10).stdout).strip()
    inc = _txt(_run([pg_config, "--includedir-server"], timeout=10).stdout).strip()
    if not os.path.exists(os.path.join(inc, "postgres.h")):
        raise RigError("PostgreSQL server headers not found in %s: install postgresql-server-dev-%s "
                       "(scripts/install-deps.sh)" % (inc, ver.split()[-1].split(".")[0]))
    h = hashlib.sha256(ver.encode() + bindir.encode())
    for n in sorted(os.listdir(EXT_DIR)):
        if n.endswith((".c", "Makefile")):
            with open(os.path.join(EXT_DIR, n), "rb") as f:
                h.update(n.encode() + b"\0" + f.read())
    key = h.hexdigest()[:20]
    for root in (cache_dir or EXT_CACHE, fallback_dir):
        if not root:
            continue
        final = os.path.join(root, key)
        so = os.path.join(final, EXT_NAME + ".so")
        if os.path.exists(so):
            return so
        try:
            os.makedirs(root, mode=0o755, exist_ok=True)
            build = tempfile.mkdtemp(prefix="build-", dir=root)
        except OSError:
            continue
        try:
            for n in os.listdir(EXT_DIR):
                if n.endswith((".c", "Makefile")):
                    shutil.copyfile(os.path.join(EXT_DIR, n), os.path.join(build, n))
            p = _run(["make", "-s", "-C", build, "PG_CONFIG=" + pg_config, "with_llvm=no"], check=False,
                     timeout=120)
            if p.returncode != 0:
                raise RigError("building %s failed:\n%s%s" % (EXT_NAME, _txt(p.stdout), _txt(p.stderr)))
            os.chmod(build, 0o755)
            os.chmod(os.path.join(build, EXT_NAME + ".so"), 0o755)
            try:
                os.rename(build, final)
            except OSError:  # another rig won the race
                shutil.rmtree(build, ignore_errors=True)
            if os.path.exists(so):
                return so
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
    raise RigError("could not build %s (no writable cache dir)" % EXT_NAME)


def _fast_tmpdir():
    if os.environ.get("RIG_TMPDIR"):
        return os.environ["RIG_TMPDIR"]
    try:
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize >= 512 * 1024 * 1024 and os.access("/dev/shm", os.W_OK):
            return "/dev/shm"
    except OSError:
        pass
    return None


def _free_port():
    """A TCP port free on both 127.0.0.1 and ::1 (best effort; start() retries)."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if _ipv6_loopback():
            s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                s6.bind(("::1", port))
            except OSError:
                continue
            finally:
                s6.close()
        return port
    raise RigError("no free port found")


_V6 = None


def _ipv6_loopback():
    global _V6
    if _V6 is None:
        try:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                s.bind(("::1", 0))
                _V6 = True
            finally:
                s.close()
        except OSError:
            _V6 = False
    return _V6


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class PgServer(object):
    """A PostgreSQL server wired to a fake workspace through PAM. See module doc."""

    def __init__(self, fake_url, identities, database="databricks_postgres", admin_user="rigadmin",
                 os_user=None, base_dir=None, extra_dns_names=(), tls=None, fake_ca_file=None,
                 pam_service=None, keep_dir=False, die_with_parent=True, ready_timeout=30.0,
                 extra_ips=()):
        self.fake_url = fake_url.rstrip("/")
        self.identities = list(identities)
        self.database = database
        self.admin_user = admin_user
        self.euid = os.geteuid()
        if os_user is None:
            os_user = "postgres" if self.euid == 0 else pwd.getpwuid(self.euid).pw_name
        self.os_user = os_user
        self._base_dir_arg = base_dir
        self.extra_dns_names = list(extra_dns_names)
        self.extra_ips = list(extra_ips)
        self._tls_arg = tls
        self.fake_ca_file = fake_ca_file
        self.pam_service = pam_service or "lakebase-rig-%s" % secrets.token_hex(6)
        self.keep_dir = keep_dir
        self.die_with_parent = die_with_parent
        self.ready_timeout = ready_timeout
        self.host = "localhost"
        self.port = None
        self.proc = None
        self.pid = None
        self.base_dir = None
        self.pam_file = None
        self.tls = None
        self.started_seconds = None
        self._atexit = False

    # ----------------------------------------------------------- properties
    @property
    def ca_file(self):
        return self.tls["ca_file"] if self.tls else None

    @property
    def socket_dir(self):
        return os.path.join(self.base_dir, "run")

    @property
    def data_dir(self):
        return os.path.join(self.base_dir, "data")

    @property
    def log_file(self):
        return os.path.join(self.base_dir, "postgres.log")

    @property
    def pam_log_file(self):
        return os.path.join(self.base_dir, "pam_check.log")

    @property
    def reject_dir(self):
        """Where the PAM checker leaves per-backend rejection texts for lakebase_rig_auth."""
        return os.path.join(self.base_dir, "reject")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------- helpers
    def _as_user(self, cmd):
        if self.euid != 0:
            return list(cmd)
        pre = ["setpriv", "--reuid=" + self.os_user, "--regid=" + self._gid_name(), "--init-groups"]
        return pre + list(cmd)

    def _gid_name(self):
        return str(pwd.getpwnam(self.os_user).pw_gid)

    def _chown(self, path):
        if self.euid == 0:
            pw = pwd.getpwnam(self.os_user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _clean_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update({"LC_ALL": "C", "LANG": "C"})
        return env

    # ---------------------------------------------------------------- start
    def start(self):
        t0 = time.monotonic()
        if self.euid != 0 and not os.access(PAM_DIR, os.W_OK):
            raise RigError("PgServer must run as root (it writes %s/%s and switches to the `%s` user)"
                           % (PAM_DIR, self.pam_service, self.os_user))
        self.bindir = find_pg_bindir()
        self._check_pam_support()
        self.base_dir = self._base_dir_arg or tempfile.mkdtemp(prefix="lakebase-rig-pg-", dir=_fast_tmpdir())
        os.makedirs(self.base_dir, exist_ok=True)
        os.chmod(self.base_dir, 0o755)
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        try:
            self._prepare()
            self._launch()
            self._bootstrap()
        except BaseException:
            self.stop()
            raise
        self.started_seconds = time.monotonic() - t0
        return self

    def _check_pam_support(self):
        postgres = os.path.join(self.bindir, "postgres")
        out = _run(["ldd", postgres], check=False, timeout=10)
        if b"libpam" not in (out.stdout or b""):
            raise RigError("%s is not linked with libpam (PostgreSQL built without --with-pam)" % postgres)

    def _prepare(self):
        b = self.base_dir
        # TLS material
        if self._tls_arg:
            self.tls = dict(self._tls_arg)
        else:
            self.tls = make_tls_material(os.path.join(b, "tls"),
                                         dns_names=["localhost"] + self.extra_dns_names,
                                         ips=["127.0.0.1", "::1"] + self.extra_ips)
        # the server key must belong to the server's OS user
        key_copy = os.path.join(b, "server.key")
        shutil.copyfile(self.tls["key_file"], key_copy)
        os.chmod(key_copy, 0o600)
        self._chown(key_copy)
        self._server_key = key_copy
        # directories
        self.auth_extension = build_auth_extension(self.bindir, fallback_dir=os.path.join(b, "ext"))
        for d, mode in ((self.data_dir, 0o700), (self.socket_dir, 0o755), (self.reject_dir, 0o700)):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, mode)
            self._chown(d)
        for f in (self.log_file, self.pam_log_file):
            open(f, "a").close()
            os.chmod(f, 0o644)
            self._chown(f)
        # PAM checker: a private copy the server's OS user can surely read
        checker = os.path.join(b, "pam_check.py")
        shutil.copyfile(PAM_CHECK_SRC, checker)
        os.chmod(checker, 0o755)
        self.checker = checker
        self.python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        # initdb
        _run(self._as_user([os.path.join(self.bindir, "initdb"), "-D", self.data_dir, "-U", self.admin_user,
                            "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"]),
             cwd=b, env=self._clean_env(), timeout=120)
        self._write_hba()
        # PAM service
        ca_arg = ["--ca=" + self.fake_ca_file] if self.fake_ca_file else []
        ca_arg.append("--reject-dir=" + self.reject_dir)
        line = " ".join(["auth", "required", "pam_exec.so", "expose_authtok", "quiet",
                         "log=" + self.pam_log_file, self.python, checker] + ca_arg + [self.fake_url])
        self.pam_file = os.path.join(PAM_DIR, self.pam_service)
        with open(self.pam_file, "w") as f:
            f.write("# liblakebase test rig (tests/rig/pg.py); removed when the rig stops\n"
                    "%s\naccount required pam_permit.so\n" % line)
        os.chmod(self.pam_file, 0o644)
        # the checker must run as the server's OS user and reach the fake
        _run(self._as_user([self.python, checker, "--selftest"] + ca_arg + [self.fake_url]),
             cwd=b, env=self._clean_env(), timeout=30)

    def _write_hba(self):
        svc = self.pam_service
        lines = [
            "# liblakebase test rig",
            "# TYPE     DATABASE USER        ADDRESS        METHOD",
            "local      all      %s          trust" % self.admin_user,
            "local      all      all                    reject",
            "hostnossl  all      all         0.0.0.0/0      reject",
            "hostnossl  all      all         ::/0           reject",
            "hostssl    all      %s          0.0.0.0/0      reject" % self.admin_user,
            "hostssl    all      %s          ::/0           reject" % self.admin_user,
            "hostssl    all      all         127.0.0.1/32   pam pamservice=%s" % svc,
            "hostssl    all      all         ::1/128        pam pamservice=%s" % svc,
        ]
        with open(os.path.join(self.data_dir, "pg_hba.conf"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def _write_conf(self):
        listen = "127.0.0.1,::1" if _ipv6_loopback() else "127.0.0.1"
        conf = {
            "listen_addresses": listen,
            "port": self.port,
            "unix_socket_directories": self.socket_dir,
            "ssl": "on",
            "ssl_cert_file": self.tls["cert_file"],
            "ssl_key_file": self._server_key,
            "ssl_min_protocol_version": "TLSv1.2",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            # RIG_PG_MAX_CONNECTIONS: more backends for tests that open many at once (the proxy's 1,000).
            "max_connections": int(os.environ.get("RIG_PG_MAX_CONNECTIONS") or 200),
            "shared_buffers": "32MB",
            "log_connections": "on",
            "log_line_prefix": "%m [%p] %e %q%u@%d ",
            "logging_collector": "off",
            "authentication_timeout": "30s",
            "shared_preload_libraries": self.auth_extension,
            "lakebase_rig.reject_dir": self.reject_dir,
        }
        path = os.path.join(self.data_dir, "postgresql.auto.conf")
        with open(path, "w") as f:
            f.write("# written by tests/rig/pg.py\n")
            for k, v in conf.items():
                if isinstance(v, int):
                    f.write("%s = %d\n" % (k, v))
                else:
                    f.write("%s = '%s'\n" % (k, str(v).replace("'", "''")))
        self._chown(path)

    def _launch(self):
        last_err = ""
        for _attempt in range(5):
            self.port = _free_port()
            self._write_conf()
            cmd = [os.path.join(self.bindir, "postgres"), "-D", self.data_dir]
            if self.euid == 0:
                pre = ["setpriv", "--reuid=" + self.os_user, "--regid=" + self._gid_name(), "--init-groups"]
                if self.die_with_parent:
                    pre.append("--pdeathsig=SIGINT")
                cmd = pre + cmd
            log = open(self.log_file, "ab")
            try:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             cwd=self.base_dir, env=self._clean_env(), start_new_session=True)
            finally:
                log.close()
            self.pid = self.proc.pid
            ok, last_err = self._wait_ready()
            if ok:
                return
            self._kill_server()
            if "could not bind" not in last_err and "Address already in use" not in last_err:
                break
        raise RigError("PostgreSQL did not start: %s\n--- %s ---\n%s" % (
            last_err, self.log_file, self._tail(self.log_file)))

    def _wait_ready(self):
        pidfile = os.path.join(self.data_dir, "postmaster.pid")
        deadline = time.monotonic() + self.ready_timeout
        delay = 0.005
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False, "postgres exited with %s: %s" % (self.proc.returncode, self._tail(self.log_file))
            try:
                with open(pidfile) as f:
                    lines = f.read().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    return True, ""
            except (FileNotFoundError, PermissionError):
                pass
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return False, "timed out after %.0fs waiting for postgres" % self.ready_timeout

    def _tail(self, path, n=40):
        try:
            with open(path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def _bootstrap(self):
        sql = []
        for name in self.identities:
            q = _ident(name)
            sql.append("CREATE ROLE %s LOGIN;" % q)
        sql.append("CREATE DATABASE %s;" % _ident(self.database))
        self.admin_psql("\n".join(sql), database="postgres")
        grants = ["GRANT ALL ON SCHEMA public TO %s;" % _ident(n) for n in self.identities]
        grants += ["GRANT ALL ON DATABASE %s TO %s;" % (_ident(self.database), _ident(n)) for n in self.identities]
        if grants:
            self.admin_psql("\n".join(grants))

    # ------------------------------------------------------------------ API
    def psql_path(self):
        p = os.path.join(self.bindir, "psql")
        return p if os.path.exists(p) else "psql"

    def admin_psql(self, sql, database=None, check=True):
        """Run SQL as the rig's superuser over the Unix socket; returns stdout (-At format)."""
        cmd = [self.psql_path(), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir,
               "-p", str(self.port), "-U", self.admin_user, "-d", database or self.database, "-f", "-"]
        p = _run(cmd, check=False, env=self._clean_env(), timeout=60, input=sql.encode("utf-8"))
        if check and p.returncode != 0:
            raise RigError("admin_psql failed: %s" % _txt(p.stderr))
        return _txt(p.stdout)

    def add_role(self, name):
        self.admin_psql("CREATE ROLE %s LOGIN; GRANT ALL ON SCHEMA public TO %s;" % (_ident(name), _ident(name)))

    def conninfo(self, user, password=None, sslmode="require", database=None, host=None):
        parts = {"host": host or self.host, "port": self.port, "dbname": database or self.database,
                 "user": user, "sslmode": sslmode, "sslrootcert": self.ca_file, "connect_timeout": 10}
        if password is not None:
            parts["password"] = password
        return " ".join("%s=%s" % (k, _conn_quote(str(v))) for k, v in parts.items())

    def psql(self, user, password, sql="SELECT 1", sslmode="require", database=None, host=None, timeout=30):
        """Run psql over TCP as `user`; returns CompletedProcess (text)."""
        env = self._clean_env()
        env["PGPASSWORD"] = password
        env["PGCONNECT_TIMEOUT"] = "10"
        cmd = [self.psql_path(), "-X", "-At", "-w", "-v", "ON_ERROR_STOP=1",
               self.conninfo(user, None, sslmode=sslmode, database=database, host=host), "-c", sql]
        return subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)

    def env(self):
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGSSLROOTCERT": self.ca_file,
                "PGDATABASE": self.database, "PGSSLMODE": "require"}

    # ----------------------------------------------------------------- stop
    def _kill_server(self):
        pid = self.pid
        if not pid:
            return
        try:
            os.kill(pid, signal.SIGINT)  # fast shutdown
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc is not None:
                if self.proc.poll() is not None:
                    break
            elif not _pid_alive(pid):
                break
            time.sleep(0.02)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self.pid = None
        self.proc = None

    def stop(self):
        self._kill_server()
        if self.pam_file and os.path.exists(self.pam_file):
            try:
                os.unlink(self.pam_file)
            except OSError:
                pass
        self.pam_file = None
        if self.base_dir and not self.keep_dir and not self._base_dir_arg:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _ident(name):
    return '"' + name.replace('"', '""') + '"'


def _conn_quote(v):
    if v and all(c.isalnum() or c in "._-/@:" for c in v):
        return v
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="start a rig PostgreSQL against a running fake workspace")
    ap.add_argument("fake_url")
    ap.add_argument("roles", nargs="+")
    a = ap.parse_args()
    with PgServer(a.fake_url, a.roles) as pg:
        print("PGHOST=%s PGPORT=%s PGSSLROOTCERT=%s (Ctrl-C to stop)" % (pg.host, pg.port, pg.ca_file), flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
