#!/usr/bin/env python3
"""Side by side against one fake workspace: the official Databricks Python SDK, a raw HTTP mint, and
liblakebase's cached call (through ctypes; scripts/bench.sh adds the C-ABI figure).

Each way of getting a password is timed per call (median and mean) and the fake's /_fake/stats
gives the HTTP requests each one makes. Output: `key=value` lines (times in microseconds).

Environment: the rig's env.sh (FAKE_URL, RIG_PAT, RIG_INSTANCE, RIG_SP_CLIENT_ID/SECRET) and
LAKEBASE_LIB (path to liblakebase.so). Usage: compare.py [--calls N]
"""
import argparse
import base64
import ctypes
import json
import os
import statistics
import sys
import time
import urllib.parse
import urllib.request
import uuid

FAKE = os.environ["FAKE_URL"]
PAT = os.environ["RIG_PAT"]
INSTANCE = os.environ["RIG_INSTANCE"]
SP_ID = os.environ["RIG_SP_CLIENT_ID"]
SP_SECRET = os.environ["RIG_SP_CLIENT_SECRET"]


def control(path, body=None):
    req = urllib.request.Request(FAKE + path, method="GET" if body is None else "POST",
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def api_requests():
    """Total API requests the fake has served (control calls are not counted)."""
    return sum(control("/_fake/stats")["requests"].values())


def timed(fn, n):
    """Per-call times in microseconds (after one warm-up call) and the requests per call."""
    fn()
    before = api_requests()
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e3)
    reqs = (api_requests() - before) / n
    return statistics.median(times), statistics.fmean(times), reqs


def post_json(url, body, bearer):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + bearer})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def raw_pat_mint():
    """What a script does without an SDK: one POST with the PAT (new connection each time, as urllib)."""
    out = post_json(FAKE + "/api/2.0/database/credentials",
                    {"instance_names": [INSTANCE], "request_id": str(uuid.uuid4())}, PAT)
    assert out["token"]


def raw_m2m_mint():
    """Two steps: client-credentials token, then the mint."""
    basic = base64.b64encode(f"{urllib.parse.quote(SP_ID)}:{urllib.parse.quote(SP_SECRET)}".encode()).decode()
    req = urllib.request.Request(FAKE + "/oidc/v1/token", method="POST",
                                 data=b"grant_type=client_credentials&scope=all-apis",
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "Authorization": "Basic " + basic})
    with urllib.request.urlopen(req) as r:
        access = json.load(r)["access_token"]
    out = post_json(FAKE + "/api/2.0/database/credentials",
                    {"instance_names": [INSTANCE], "request_id": str(uuid.uuid4())}, access)
    assert out["token"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200, help="calls per HTTP method (SDK, raw)")
    ap.add_argument("--cached-calls", type=int, default=200000, help="calls of the cached ctypes path")
    args = ap.parse_args()

    for k in [k for k in os.environ if k.startswith("DATABRICKS_")]:
        del os.environ[k]  # the SDK gets everything explicitly
    control("/_fake/reset", {})

    from databricks.sdk import WorkspaceClient  # noqa: E402 (after the environment is clean)

    w = WorkspaceClient(host=FAKE, token=PAT)

    def sdk_reused():
        c = w.database.generate_database_credential(instance_names=[INSTANCE], request_id=str(uuid.uuid4()))
        assert c.token

    def sdk_new_client():
        c = WorkspaceClient(host=FAKE, token=PAT).database.generate_database_credential(
            instance_names=[INSTANCE], request_id=str(uuid.uuid4()))
        assert c.token

    results = {
        "sdk_reused": timed(sdk_reused, args.calls),
        "sdk_new_client": timed(sdk_new_client, max(args.calls // 2, 5)),
        "raw_pat": timed(raw_pat_mint, args.calls),
        "raw_m2m": timed(raw_m2m_mint, args.calls),
    }

    # liblakebase through ctypes (what a Python program without bindings would pay per call)
    os.environ.update(DATABRICKS_HOST=FAKE, DATABRICKS_TOKEN=PAT, LAKEBASE_INSTANCE=INSTANCE)
    lib = ctypes.CDLL(os.environ["LAKEBASE_LIB"])
    lib.lakebase_get_password.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
    lib.lakebase_get_password.restype = ctypes.c_int
    buf = ctypes.create_string_buffer(4096)
    n = ctypes.c_size_t()
    f = lib.lakebase_get_password
    ref = ctypes.byref(n)
    before = api_requests()
    t0 = time.perf_counter_ns()
    rc = f(buf, 4096, ref)
    first_us = (time.perf_counter_ns() - t0) / 1e3
    assert rc == 0, rc
    t0 = time.perf_counter_ns()
    for _ in range(args.cached_calls):
        f(buf, 4096, ref)
    mean_us = (time.perf_counter_ns() - t0) / 1e3 / args.cached_calls
    reqs = api_requests() - before

    for k, (med, mean, rpc) in results.items():
        print(f"{k}_p50_us={med:.1f}\n{k}_mean_us={mean:.1f}\n{k}_requests_per_call={rpc:.2f}")
    print(f"ctypes_cached_mean_us={mean_us:.3f}\nctypes_first_call_us={first_us:.1f}\n"
          f"ctypes_requests_total={reqs}\nctypes_calls={args.cached_calls + 1}")


if __name__ == "__main__":
    sys.exit(main())
