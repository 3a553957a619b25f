#!/usr/bin/env python3
"""The per-user shared cache across processes (issue 15), against the rig with every workspace
request delayed by --delay-ms (a workspace that far away):

  seq_*    sequential `psql -c 'select 1'` processes, interleaved in pairs: PGPASSWORD (a token minted
           beforehand) and LD_PRELOAD with an empty shared cache at the start. Mints and workspace
           requests of the first --runs preloaded processes; wall-time difference per pair over
           --pairs pairs (a login costs ~100-200 ms with +-50 ms of noise on a busy machine, so
           the difference needs more pairs than the mint count); then --off-runs preloaded
           processes with LAKEBASE_CACHE=off (what every process paid before).
  burst_*  --burst processes of `hotpath cold` released at once (a pipe barrier) on an empty shared
           cache: mints, requests, slowest first password.
  warm_*   --warm sequential `hotpath cold` processes on the warm entry: first password (ms), requests.

Environment: the rig's env.sh, LAKEBASE_LIB (liblakebase.so), HOTPATH (bench/hotpath binary),
SHARED_DIR (a scratch directory). Output: key=value lines for scripts/bench.sh.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid

FAKE = os.environ["FAKE_URL"]


def control(path, body=None, method=None):
    req = urllib.request.Request(FAKE + path, method=method or ("GET" if body is None else "POST"),
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def stats():
    s = control("/_fake/stats")
    return s["lakebase_tokens_minted_total"], sum(s["requests"].values())


def delay(ms):
    control("/_fake/faults", method="DELETE")
    if ms:
        control("/_fake/faults", {"path": "/", "action": "delay", "delay_ms": ms, "count": -1})


def base_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LD_PRELOAD", "PGPASSWORD", "PGUSER", "LAKEBASE_", "DATABRICKS_", "XDG_"))}
    env.update(DATABRICKS_HOST=FAKE, DATABRICKS_TOKEN=os.environ["RIG_PAT"], LAKEBASE_INSTANCE=os.environ["RIG_INSTANCE"],
               LAKEBASE_HOSTS="localhost", PGHOST="localhost")
    return env


def timed_run(argv, env):
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ms = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        sys.exit("shared.py: %s failed: %s" % (argv[0], p.stderr.strip()))
    return ms, p.stdout


def mint_token():
    req = urllib.request.Request(FAKE + "/api/2.0/database/credentials", method="POST",
                                 data=json.dumps({"instance_names": [os.environ["RIG_INSTANCE"]],
                                                  "request_id": str(uuid.uuid4())}).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + os.environ["RIG_PAT"]})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["token"]


def together(n, argv, env):
    """Start n processes of argv, each blocked until all n are ready, then release them at once."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    wrapper = ["/bin/sh", "-c", 'printf . >&%d; read x <&%d; exec "$@"' % (ready_w, go_r), "sh"] + argv
    procs = [subprocess.Popen(wrapper, env=env, pass_fds=(ready_w, go_r), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    os.close(ready_w)
    os.close(go_r)
    got = b""
    while len(got) < n:
        chunk = os.read(ready_r, n)
        if not chunk:
            sys.exit("shared.py: a burst process died before the start")
        got += chunk
    os.close(go_w)
    os.close(ready_r)
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        if p.returncode != 0:
            sys.exit("shared.py: burst process failed: " + err.strip())
        outs.append(out)
    return outs


def first_ms(out):
    return float(next(l.split("=", 1)[1] for l in out.splitlines() if l.startswith("first_ms=")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=60)
    ap.add_argument("--off-runs", type=int, default=5)
    ap.add_argument("--burst", type=int, default=16)
    ap.add_argument("--warm", type=int, default=20)
    ap.add_argument("--delay-ms", type=int, default=100)
    args = ap.parse_args()
    lib, hotpath, scratch = os.environ["LAKEBASE_LIB"], os.environ["HOTPATH"], os.environ["SHARED_DIR"]
    psql = ["psql", "-X", "-A", "-t", "-c", "select 1"]

    control("/_fake/reset", {})
    token = mint_token()
    pw_env = dict(base_env(), PGPASSWORD=token, PGUSER=os.environ["RIG_USER"])
    lb_env = dict(base_env(), LD_PRELOAD=lib, LAKEBASE_CACHE_DIR=os.path.join(scratch, "seq"))
    off_env = dict(base_env(), LD_PRELOAD=lib, LAKEBASE_CACHE="off")
    os.makedirs(scratch, exist_ok=True)
    timed_run(psql, pw_env)                    # warm the page cache and PostgreSQL
    delay(args.delay_ms)

    m0, r0 = stats()
    t_pw, t_lb = [], []
    for i in range(max(args.pairs, args.runs)):
        t_pw.append(timed_run(psql, pw_env)[0])
        t_lb.append(timed_run(psql, lb_env)[0])
        if i + 1 == args.runs:
            m1, r1 = stats()
    m_all, _ = stats()
    m1b, r1b = stats()
    t_off = [timed_run(psql, off_env)[0] for _ in range(args.off_runs)]
    m2, r2 = stats()
    rest = [b - a for a, b in zip(t_pw[1:], t_lb[1:])] or [0.0]
    print("seq_runs=%d\nseq_pairs=%d\nseq_pw_ms=%.1f\nseq_lb_ms=%.1f\nseq_lb_first_ms=%.1f\nseq_delta_median_ms=%.1f\n"
          "seq_delta_mean_ms=%.1f\nseq_delta_min_ms=%.1f\nseq_delta_all_mean_ms=%.1f\nseq_mints=%d\nseq_requests=%d\n"
          "seq_mints_all=%d\nseq_off_runs=%d\nseq_off_ms=%.1f\nseq_off_mints=%d\nseq_off_requests=%d"
          % (args.runs, len(t_pw), statistics.median(t_pw), statistics.median(t_lb[1:] or t_lb), t_lb[0],
             statistics.median(rest), statistics.fmean(rest), min(t_lb[1:] or t_lb) - min(t_pw),
             statistics.fmean(b - a for a, b in zip(t_pw[:args.runs], t_lb[:args.runs])), m1 - m0, r1 - r0,
             m_all - m0, args.off_runs, statistics.median(t_off), m2 - m1b, r2 - r1b))

    burst_env = dict(base_env(), LAKEBASE_CACHE_DIR=os.path.join(scratch, "burst"))
    m0, r0 = stats()
    outs = together(args.burst, [hotpath, "cold"], burst_env)
    m1, r1 = stats()
    firsts = [first_ms(o) for o in outs]
    print("burst_n=%d\nburst_mints=%d\nburst_requests=%d\nburst_slowest_ms=%.1f"
          % (args.burst, m1 - m0, r1 - r0, max(firsts)))

    m0, r0 = stats()
    warm = sorted(first_ms(timed_run([hotpath, "cold"], burst_env)[1]) for _ in range(args.warm))
    m1, r1 = stats()
    print("warm_runs=%d\nwarm_first_ms=%.3f\nwarm_first_max_ms=%.3f\nwarm_requests=%d\nwarm_mints=%d"
          % (args.warm, statistics.median(warm), warm[-1], r1 - r0, m1 - m0))
    delay(0)


if __name__ == "__main__":
    main()
