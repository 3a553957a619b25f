#!/usr/bin/env python3
"""Benchmark of the lakebase proxy against the rig (real PostgreSQL with TLS + fake workspace).

Prints one table: pgbench -S on established connections direct vs through the proxy vs through
PgBouncer (session mode, Debian's), pgbench -C direct vs proxy, the added p50 per round trip,
memory per idle connection, and mints per rotation. Run with the repo's virtualenv python
(asyncpg): .venv/bin/python bench/proxy.py [--quick] [--seconds N] [--clients N].
Targets (issue 14): >= 90 % of direct TPS and not behind PgBouncer; <= 50 us added p50;
<= 100 KiB per idle connection; 1 mint per rotation.
"""
import argparse
import asyncio
import glob
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "rig"))

import pg as rig_pg  # noqa: E402
from rig import Rig  # noqa: E402

DB = "databricks_postgres"
os.environ.setdefault("RIG_PG_MAX_CONNECTIONS", "1100")  # the 1,000 idle connections


def proxy_cmd():
    """`lakebase proxy` from the build tree (or $LAKEBASE_BIN proxy)."""
    return [os.environ.get("LAKEBASE_BIN") or os.path.join(ROOT, "target", "release", "lakebase"), "proxy"]


def clean_env(**kw):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABRICKS_", "LAKEBASE_"))}
    e.update({k: str(v) for k, v in kw.items()})
    return e


def pgbench(env, *args):
    out = subprocess.run(["pgbench", "-n"] + list(args) + [DB], env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit("pgbench %s failed:\n%s%s" % (" ".join(args), out.stdout, out.stderr))
    m = re.search(r"tps = ([0-9.]+) \((?:without initial connection time|including connections establishing)\)",
                  out.stdout) or re.search(r"tps = ([0-9.]+)", out.stdout)
    if not m:
        raise SystemExit("pgbench %s printed no tps:\n%s%s" % (" ".join(args), out.stdout, out.stderr))
    return float(m.group(1)), out.stdout


def p50_us(env, n, tmp):
    """Median per-transaction latency (one SELECT round trip) from pgbench's per-transaction log."""
    for f in glob.glob(os.path.join(tmp, "lat*")):
        os.remove(f)
    subprocess.run(["pgbench", "-n", "-S", "-c", "1", "-j", "1", "-t", str(n), "-l",
                    "--log-prefix=" + os.path.join(tmp, "lat"), DB], env=env, capture_output=True, text=True,
                   check=True, timeout=600)
    lat = []
    for f in glob.glob(os.path.join(tmp, "lat*")):
        with open(f) as fh:
            lat += [int(line.split()[2]) for line in fh if line.strip()]
    lat = lat[len(lat) // 10:]  # drop the warm-up tenth
    return statistics.median(lat)


def cpu_seconds(pid):
    """utime + stime of a process so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Proc(object):
    def __init__(self, cmd, env, ready, log):
        self.log = open(log, "w+")
        self.p = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while True:
            self.log.seek(0)
            text = self.log.read()
            if ready in text:
                self.text = text
                return
            if self.p.poll() is not None or time.time() > deadline:
                self.p.kill()
                self.p.wait()
                raise SystemExit("%s did not start:\n%s" % (cmd[0], text))
            time.sleep(0.05)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def start_pgbouncer(rig, token, tmp):
    exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    e = rig.env()
    d = tempfile.mkdtemp(prefix="bouncer-", dir=tmp)
    port = rig_pg._free_port() if hasattr(rig_pg, "_free_port") else 6432
    os.chmod(d, 0o755)
    conf = os.path.join(d, "pgbouncer.ini")
    with open(conf, "w") as f:
        f.write("[databases]\n%s = host=localhost port=%s dbname=%s user=%s password=%s\n" %
                (DB, e["PGPORT"], DB, e["RIG_USER"], token))
        f.write("[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\nauth_type = trust\n"
                "auth_file = %s/users.txt\npool_mode = session\nmax_client_conn = 2000\n"
                "default_pool_size = 200\nserver_tls_sslmode = verify-full\nserver_tls_ca_file = %s\n"
                "unix_socket_dir =\nlogfile = %s/pgbouncer.log\nignore_startup_parameters = extra_float_digits\n"
                % (port, d, e["RIG_CA_FILE"], d))
    with open(os.path.join(d, "users.txt"), "w") as f:
        f.write('"%s" ""\n' % e["RIG_USER"])
    os.chmod(tmp, 0o711)
    for n in os.listdir(d):
        os.chmod(os.path.join(d, n), 0o600)  # the ini holds a token
    if os.geteuid() == 0:
        # pgbouncer refuses to run as root: it runs as postgres, which must read these and write its log
        for n in [d] + [os.path.join(d, n) for n in os.listdir(d)]:
            shutil.chown(n, "postgres")
    cmd = [exe, conf]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"] + cmd
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "pgbouncer.stderr"), "w"))
    env = clean_env(PGHOST="127.0.0.1", PGPORT=port, PGUSER=e["RIG_USER"], PGSSLMODE="disable")
    deadline = time.time() + 20
    while subprocess.run(["psql", "-X", "-Atc", "select 1", DB], env=env, capture_output=True).returncode != 0:
        if p.poll() is not None or time.time() > deadline:
            log = open(os.path.join(d, "pgbouncer.log")).read() if os.path.exists(os.path.join(d, "pgbouncer.log")) else ""
            err = open(os.path.join(tmp, "pgbouncer.stderr")).read()
            p.kill()
            p.wait()
            raise SystemExit("pgbouncer did not start:\n" + log + err)
        time.sleep(0.1)
    return p, env


async def idle_connections(port, user, n):
    import asyncpg
    sem = asyncio.Semaphore(48)

    async def one():
        async with sem:
            return await asyncpg.connect(host="127.0.0.1", port=port, user=user, database=DB, ssl=False, timeout=120)
    return await asyncio.gather(*[one() for _ in range(n)])


async def close_all(conns):
    await asyncio.gather(*[c.close() for c in conns])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="short runs (checks the script works; figures meaningless)")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--kv", action="store_true", help="print key=value lines (for scripts/bench.sh) instead of a table")
    a = ap.parse_args()
    secs = 2 if a.quick else a.seconds
    idle_n = 100 if a.quick else a.idle
    lat_n = 2000 if a.quick else 20000
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    rows = []
    with Rig() as rig:
        e = rig.env()
        tmp = tempfile.mkdtemp(prefix="proxy-bench-")
        home = os.path.join(tmp, "home")
        os.mkdir(home)
        # Direct: TLS with a token minted by the fake (what a libpq client with the library sends).
        status, minted = rig.control("POST", "/_fake/mint", {"user": e["RIG_USER"]})
        token = minted["token"]
        direct = clean_env(PGHOST="localhost", PGPORT=e["PGPORT"], PGUSER=e["RIG_USER"], PGPASSWORD=token,
                           PGSSLMODE="verify-full", PGSSLROOTCERT=e["RIG_CA_FILE"])
        subprocess.run(["pgbench", "-i", "-q", "-s", "10", DB], env=direct, capture_output=True, check=True, timeout=600)
        penv = clean_env(HOME=home, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"])
        sockdir = os.path.join(tmp, "sock")
        proxy = Proc(proxy_cmd() + [e["RIG_INSTANCE"], "--port", "0", "--unix-socket", sockdir, "--upstream", "localhost:" + e["PGPORT"],
                      "--upstream-ca", e["RIG_CA_FILE"], "--log-format", "json", "--connect-timeout", "120s"] + os.environ.get("PROXY_BENCH_ARGS", "").split(),
                     penv, '"msg":"ready"', os.path.join(tmp, "proxy.log"))
        pport = int(re.search(r'"address":"127\.0\.0\.1:(\d+)"', proxy.text).group(1))
        via = clean_env(PGHOST="127.0.0.1", PGPORT=pport, PGUSER=e["RIG_USER"], PGSSLMODE="disable")
        via_unix = clean_env(PGHOST=sockdir, PGPORT=pport, PGUSER=e["RIG_USER"])
        bouncer = None
        try:
            bouncer, benv = start_pgbouncer(rig, token, tmp)
            rig.control("DELETE", "/_fake/requests")
            m0 = rig.control("GET", "/_fake/stats")[1]["lakebase_tokens_minted_total"]
            c, j = str(a.clients), "2"
            # Warm up each path once, then measure.
            for env in (direct, via, via_unix, benv):
                pgbench(env, "-S", "-c", c, "-j", j, "-T", "1")
            t_direct, _ = pgbench(direct, "-S", "-c", c, "-j", j, "-T", str(secs))
            cpu0 = cpu_seconds(proxy.p.pid)
            t_proxy, _ = pgbench(via, "-S", "-c", c, "-j", j, "-T", str(secs))
            cpu_us = 1e6 * (cpu_seconds(proxy.p.pid) - cpu0) / (t_proxy * secs)
            t_bouncer, _ = pgbench(benv, "-S", "-c", c, "-j", j, "-T", str(secs))
            t_unix, _ = pgbench(via_unix, "-S", "-c", c, "-j", j, "-T", str(secs))
            rows.append(("pgbench -S -c %s, established: direct (TLS)" % c, "%.0f tps" % t_direct, "100 %"))
            rows.append(("pgbench -S -c %s, established: lakebase proxy" % c, "%.0f tps" % t_proxy,
                         "%.0f %% of direct, %.0f %% of PgBouncer" % (100 * t_proxy / t_direct, 100 * t_proxy / t_bouncer)))
            rows.append(("lakebase proxy CPU per transaction (user + system)", "%.1f us" % cpu_us,
                         "%.0f %% of one core" % (cpu_us * t_proxy / 1e4)))
            rows.append(("pgbench -S -c %s, established: lakebase proxy, unix socket" % c, "%.0f tps" % t_unix,
                         "%.0f %% of direct" % (100 * t_unix / t_direct)))
            rows.append(("pgbench -S -c %s, established: PgBouncer session mode" % c, "%.0f tps" % t_bouncer,
                         "%.0f %% of direct" % (100 * t_bouncer / t_direct)))
            bouncer.send_signal(signal.SIGTERM)  # frees its server connections for the idle test
            bouncer.wait(10)
            cc = "4"
            t_dc, _ = pgbench(direct, "-S", "-C", "-c", cc, "-j", j, "-T", str(secs))
            t_pc, _ = pgbench(via, "-S", "-C", "-c", cc, "-j", j, "-T", str(secs))
            rows.append(("pgbench -S -C -c %s (connect per transaction): direct" % cc, "%.0f tps" % t_dc, "100 %"))
            rows.append(("pgbench -S -C -c %s (connect per transaction): lakebase proxy" % cc, "%.0f tps" % t_pc,
                         "%.0f %% of direct" % (100 * t_pc / t_dc)))
            d50 = p50_us(direct, lat_n, tmp)
            p50 = p50_us(via, lat_n, tmp)
            rows.append(("p50 per round trip (pgbench -S -c 1, %d transactions)" % lat_n,
                         "direct %.0f us, proxy %.0f us" % (d50, p50), "added %+.0f us" % (p50 - d50)))
            m1 = rig.control("GET", "/_fake/stats")[1]["lakebase_tokens_minted_total"]

            # Memory: RSS of the proxy before and with idle_n idle connections.
            base = rss_kib(proxy.p.pid)
            loop = asyncio.new_event_loop()
            conns = loop.run_until_complete(idle_connections(pport, e["RIG_USER"], idle_n))
            time.sleep(0.5)
            held = rss_kib(proxy.p.pid)
            rows.append(("memory per idle connection (%d idle, proxy RSS delta)" % idle_n,
                         "%.1f KiB" % ((held - base) / idle_n), "RSS %d -> %d KiB" % (base, held)))
            loop.run_until_complete(close_all(conns))
            # Rotation: the server stops accepting the cached token; 100 new logins at once.
            rig.control("POST", "/_fake/revoke", {})
            before = rig.control("GET", "/_fake/stats")[1]["lakebase_tokens_minted_total"]
            more = loop.run_until_complete(idle_connections(pport, e["RIG_USER"], 100))
            after = rig.control("GET", "/_fake/stats")[1]["lakebase_tokens_minted_total"]
            loop.run_until_complete(close_all(more))
            loop.close()
            rows.append(("mints per rotation (100 concurrent logins after revocation)", "%d" % (after - before),
                         "%d mint(s) for every benchmark connection before it" % (m1 - m0)))
            kv = {"direct_tps": t_direct, "proxy_tps": t_proxy, "proxy_cpu_us": cpu_us, "proxy_unix_tps": t_unix, "bouncer_tps": t_bouncer, "direct_connect_tps": t_dc,
                  "proxy_connect_tps": t_pc, "direct_p50_us": d50, "proxy_p50_us": p50, "idle_kib": (held - base) / idle_n,
                  "idle_n": idle_n, "rotation_mints": after - before, "bench_mints": m1 - m0}
        finally:
            if bouncer is not None and bouncer.poll() is None:
                bouncer.send_signal(signal.SIGTERM)
                bouncer.wait(10)
            proxy.stop()
            shutil.rmtree(tmp, ignore_errors=True)

    if a.kv:
        for k, v in kv.items():
            print("%s=%s" % (k, ("%.3f" % v) if isinstance(v, float) else v))
        return
    w = max(len(r[0]) for r in rows)
    print("| %s | %s | %s |" % ("proxy benchmark".ljust(w), "figure", "relative"))
    print("|%s|---|---|" % ("-" * (w + 2)))
    for r in rows:
        print("| %s | %s | %s |" % (r[0].ljust(w), r[1], r[2]))


if __name__ == "__main__":
    main()
