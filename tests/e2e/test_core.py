"""End to end: liblakebase against the fake workspace and a real PostgreSQL that checks every
password over TLS. Each scenario runs in a fresh process."""
import os
import subprocess
import time

import pytest

from conftest import base_env, minted, psql, requests, run_py
from lb import AUTH

PROV = "POST /api/2.0/database/credentials"
AUTO = "POST /api/2.0/postgres/credentials"


def run_c(prog, env):
    return subprocess.run([prog, "SELECT current_user"], env=env, capture_output=True, text=True, timeout=120)


# --- the C example: lakebase_get_password() + a real libpq query over TLS -----------------------

def test_c_example_pat_provisioned(rig, tmp_path, c_programs):
    e = rig.env()
    env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                   LAKEBASE_INSTANCE=e["RIG_INSTANCE"], PGUSER=e["RIG_USER"])
    p = run_c(c_programs["get_password"], env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [e["RIG_USER"], "ssl=on"]
    assert requests(rig, PROV) == 1 and requests(rig, AUTO) == 0
    assert minted(rig) == 1


def test_c_example_m2m_autoscaling(rig, tmp_path, c_programs):
    e = rig.env()
    env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_CLIENT_ID=e["RIG_SP_CLIENT_ID"],
                   DATABRICKS_CLIENT_SECRET=e["RIG_SP_CLIENT_SECRET"], LAKEBASE_ENDPOINT=e["RIG_ENDPOINT"],
                   PGUSER=e["RIG_SP_USER"])
    p = run_c(c_programs["get_password"], env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [e["RIG_SP_USER"], "ssl=on"]
    st = rig.fake.stats()["requests"]
    assert st.get(AUTO) == 1 and st.get(PROV, 0) == 0
    assert st.get("POST /oidc/v1/token") == 1
    assert st.get("GET /.well-known/databricks-config") == 1


def test_m2m_falls_back_to_oidc_discovery_without_host_metadata(rig, tmp_path, c_programs):
    e = rig.env()
    rig.fake.update_settings({"host_metadata_enabled": False})
    env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_CLIENT_ID=e["RIG_SP_CLIENT_ID"],
                   DATABRICKS_CLIENT_SECRET=e["RIG_SP_CLIENT_SECRET"], LAKEBASE_INSTANCE=e["RIG_INSTANCE"],
                   PGUSER=e["RIG_SP_USER"])
    p = run_c(c_programs["get_password"], env)
    assert p.returncode == 0, p.stderr
    assert requests(rig, "GET /oidc/.well-known/oauth-authorization-server") == 1


def test_c_example_profile_file(rig, tmp_path, c_programs):
    """A ~/.databrickscfg with [__settings__] default_profile, quotes and an inline comment."""
    e = rig.env()
    env = base_env(rig, tmp_path, PGUSER=e["RIG_USER"])
    cfg = os.path.join(env["HOME"], ".databrickscfg")
    with open(cfg, "w") as f:
        f.write("[__settings__]\ndefault_profile = lakebase\n\n"
                "[DEFAULT]\nhost = https://wrong.cloud.databricks.com\ntoken = dapiWRONG\n\n"
                "[lakebase]\nhost = %s\ntoken = \"%s\" # the rig's PAT\ninstance = %s\n"
                % (e["DATABRICKS_HOST"], e["RIG_PAT"], e["RIG_INSTANCE"]))
    p = run_c(c_programs["get_password"], env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[0] == e["RIG_USER"]
    # DATABRICKS_CONFIG_PROFILE picks a section explicitly; a missing one is a config error.
    env["DATABRICKS_CONFIG_PROFILE"] = "nope"
    p = run_c(c_programs["get_password"], env)
    assert p.returncode == 1
    assert "LAKEBASE_CONFIG_ERROR" in p.stderr and "nope" in p.stderr and e["RIG_PAT"] not in p.stderr


def test_c_api_contract_tests(c_programs):
    """tests/c/test_capi.c: NULLs, buffers, malformed options, unknown profile, secret hygiene."""
    p = subprocess.run([os.path.join(os.path.dirname(c_programs["get_password"]), "test_capi")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "0 failed" in p.stdout


# --- client handles --------------------------------------------------------------------------

def opts_pat(e, target="instance"):
    t = e["RIG_INSTANCE"] if target == "instance" else e["RIG_ENDPOINT"]
    return "host=%s token=%s %s='%s'" % (e["DATABRICKS_HOST"], e["RIG_PAT"], target, t)


def opts_m2m(e, target="instance"):
    t = e["RIG_INSTANCE"] if target == "instance" else e["RIG_ENDPOINT"]
    return "host=%s client_id=%s client_secret=%s %s='%s'" % (
        e["DATABRICKS_HOST"], e["RIG_SP_CLIENT_ID"], e["RIG_SP_CLIENT_SECRET"], target, t)


def test_client_introspection_and_real_login(rig, tmp_path):
    e = rig.env()
    out, _ = run_py("""
        import time
        c = Client(%r)
        assert c.expiry() == 0          # nothing cached, no network
        pw = c.password()
        import ctypes
        LIB.lakebase_client_postgres_host.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
        host = ctypes.create_string_buffer(256)
        n = ctypes.c_size_t(0)
        assert LIB.lakebase_client_postgres_host(c.h, host, 256, ctypes.byref(n)) == 0
        emit({"pw": pw, "again": c.password(), "expiry": c.expiry(), "now": time.time(), "host": host.value.decode(),
              "identity": c.identity(), "auth": c.auth_type(), "err": c.refresh_error()})
    """ % opts_pat(e), base_env(rig, tmp_path))
    assert out["pw"] == out["again"] and len(out["pw"]) > 512
    assert 3500 < out["expiry"] - out["now"] <= 3601
    assert (out["identity"], out["auth"], out["err"], out["host"]) == (e["RIG_USER"], "pat", "", "localhost")
    assert minted(rig) == 1
    p = psql(rig, e["RIG_USER"], out["pw"])
    assert p.returncode == 0 and p.stdout.strip() == e["RIG_USER"], p.stderr


def test_m2m_identity_is_the_service_principal(rig, tmp_path):
    e = rig.env()
    out, _ = run_py("""
        c = Client(%r)
        emit({"pw": c.password(), "identity": c.identity(), "auth": c.auth_type()})
    """ % opts_m2m(e, "endpoint"), base_env(rig, tmp_path))
    assert out["identity"] == e["RIG_SP_USER"] and out["auth"] == "oauth-m2m"
    assert psql(rig, e["RIG_SP_USER"], out["pw"]).returncode == 0


def test_insufficient_size_writes_nothing(rig, tmp_path):
    e = rig.env()
    out, _ = run_py("""
        import ctypes
        c = Client(%r)
        n = ctypes.c_size_t(0)
        buf = ctypes.create_string_buffer(b"X" * 15, 16)
        r1 = LIB.lakebase_client_get_password(c.h, buf, 16, ctypes.byref(n))
        untouched = buf.raw == b"X" * 15 + b"\\0"
        need = n.value
        # Exactly the length is still too small: the NUL needs a byte.
        exact = ctypes.create_string_buffer(need)
        r2 = LIB.lakebase_client_get_password(c.h, exact, need, ctypes.byref(n))
        big = ctypes.create_string_buffer(need + 1)
        r3 = LIB.lakebase_client_get_password(c.h, big, need + 1, ctypes.byref(n))
        emit({"r": [r1, r2, r3], "untouched": untouched, "need": need, "len": n.value,
              "pw_len": len(big.value), "nul": big.raw[need] == 0})
    """ % opts_pat(e), base_env(rig, tmp_path))
    assert out["r"] == [2, 2, 0]
    assert out["untouched"] and out["nul"]
    assert out["need"] == out["len"] == out["pw_len"] > 512


def test_clients_with_the_same_settings_share_one_token(rig, tmp_path):
    e = rig.env()
    env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                   LAKEBASE_INSTANCE=e["RIG_INSTANCE"])
    out, _ = run_py("""
        a = Client("")                      # environment defaults
        b = Client(%r)                      # the same settings, spelled as options
        # Other credentials (auth_type picks M2M although DATABRICKS_TOKEN is set): never the same token.
        m2m = Client(%r + " auth_type=oauth-m2m")
        d = get_password()                  # the process-wide default client
        emit({"a": a.password(), "b": b.password(), "d": d, "m2m": m2m.password()})
    """ % (opts_pat(e), opts_m2m(e)), env)
    assert out["a"] == out["b"] == out["d"]
    assert out["m2m"] != out["a"]
    assert rig.fake.stats()["lakebase_tokens_minted"] == {e["RIG_USER"]: 1, e["RIG_SP_USER"]: 1}


def test_single_flight_under_32_threads(rig, tmp_path):
    e = rig.env()
    # Slow the mint down so all 32 threads arrive while it is in flight.
    rig.fake.add_fault({"method": "POST", "path": "/api/2.0/database/credentials", "count": 1,
                        "action": "delay", "delay_ms": 300})
    out, _ = run_py("""
        import threading
        c = Client(%r)
        gate = threading.Barrier(32)
        got = []
        def worker():
            gate.wait()
            got.append(c.password())
        ts = [threading.Thread(target=worker) for _ in range(32)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        emit({"distinct": len(set(got)), "n": len(got)})
    """ % opts_pat(e), base_env(rig, tmp_path))
    assert out == {"distinct": 1, "n": 32}
    assert requests(rig, PROV) == 1


def test_non_blocking_read_starts_one_background_fetch(rig, tmp_path):
    """lakebase_client_try_get_password never waits for the network: a miss says WOULD_BLOCK at
    once and starts one fetch (however many readers poll), which a blocking call joins."""
    e = rig.env()
    rig.fake.add_fault({"method": "POST", "path": "/api/2.0/database/credentials", "count": 1,
                        "action": "delay", "delay_ms": 1500})
    out, _ = run_py("""
        import time
        c = Client(%r)
        t0 = time.monotonic()
        misses = [c.try_password() for _ in range(50)]
        miss_s = time.monotonic() - t0
        blocking = c.password()             # joins the fetch in flight
        hit = c.try_password()
        emit({"misses": misses, "miss_s": miss_s, "same": hit == blocking})
    """ % opts_pat(e), base_env(rig, tmp_path))
    assert out["misses"] == [None] * 50
    assert out["miss_s"] < 1.0, "50 non-blocking misses waited for the delayed mint"
    assert out["same"]
    assert requests(rig, PROV) == 1


def test_non_blocking_read_reports_a_failed_background_fetch(rig, tmp_path):
    e = rig.env()
    out, _ = run_py("""
        import time
        c = Client("host=%s token=dapi-wrong instance=%s")
        first = c.try_password()
        # Poll as an event loop would until the background fetch has an answer (bounded).
        code, again, deadline = None, None, time.monotonic() + 10
        while code is None and time.monotonic() < deadline:
            try:
                again = c.try_password()
                time.sleep(0.01)
            except LakebaseError as x:
                code, again = x.code, x.message
        emit({"first": first, "code": code, "secret_free": "dapi-wrong" not in str(again)})
    """ % (e["DATABRICKS_HOST"], e["RIG_INSTANCE"]), base_env(rig, tmp_path))
    assert out["first"] is None
    assert out["code"] == AUTH
    assert out["secret_free"]


def test_refresh_rejected_mints_once_however_many_report_the_same_token(rig, tmp_path):
    """lakebase_client_refresh_rejected: a rejected token that is still cached is replaced once;
    reports of a token already replaced, from any number of threads, mint nothing more."""
    e = rig.env()
    out, _ = run_py("""
        import threading, time
        c = Client(%r)
        first = c.password()
        c.refresh_rejected(first)           # still cached: one new mint
        second = c.password()
        c.refresh_rejected(first)           # stale report: nothing to do
        time.sleep(1.1)                     # past the forced-refresh rate limit (1 per second)
        gate = threading.Barrier(40)
        def report():
            gate.wait()
            c.refresh_rejected(second)      # 40 connections rejected with the same token
        ts = [threading.Thread(target=report) for _ in range(40)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        third = c.password()
        emit({"distinct": len({first, second, third})})
    """ % opts_pat(e), base_env(rig, tmp_path))
    assert out == {"distinct": 3}
    assert requests(rig, PROV) == 3


def test_tokens_rotate_before_expiry_and_logins_work_after_the_first_expired(rig, tmp_path):
    """10-second tokens: the background refresher replaces the token while it is still valid, and
    a login made after the first token expired succeeds with the rotated one."""
    e = rig.env()
    rig.fake.update_settings({"token_lifetime_seconds": 10})
    out, _ = run_py("""
        import time
        c = Client(%r)
        first, exp1 = c.password(), c.expiry()
        # Wait (bounded) for the background refresher: no calls to get_password meanwhile.
        deadline = time.time() + 30
        while c.expiry() == exp1 and time.time() < deadline:
            time.sleep(0.05)
        rotated_at, exp2 = time.time(), c.expiry()
        # Keep using the password until the first token is certainly expired.
        while time.time() < exp1 + 1 and time.time() < deadline:
            c.password()
            time.sleep(0.05)
        emit({"first": first, "exp1": exp1, "exp2": exp2, "rotated_at": rotated_at,
              "second": c.password(), "now": time.time()})
    """ % opts_pat(e), base_env(rig, tmp_path))
    assert out["exp2"] > out["exp1"], "no rotation"
    assert out["rotated_at"] < out["exp1"], "rotated only after expiry"
    assert out["second"] != out["first"] and out["now"] > out["exp1"]
    # The server refuses the expired token and accepts the rotated one.
    assert psql(rig, e["RIG_USER"], out["first"]).returncode != 0
    p = psql(rig, e["RIG_USER"], out["second"])
    assert p.returncode == 0, p.stderr


# --- errors ----------------------------------------------------------------------------------

def expect_error(rig, tmp_path, options, env_extra=None):
    out, _ = run_py("""
        try:
            c = Client(%r)
            c.password()
            emit({"code": 0})
        except LakebaseError as err:
            emit({"code": err.code, "msg": err.message, "last": last_error()})
    """ % options, base_env(rig, tmp_path, **(env_extra or {})))
    return out


def test_wrong_client_secret_is_an_auth_error(rig, tmp_path):
    e = rig.env()
    bad = "doseWRONG" + "0" * 24
    out = expect_error(rig, tmp_path, "host=%s client_id=%s client_secret=%s instance=%s" % (
        e["DATABRICKS_HOST"], e["RIG_SP_CLIENT_ID"], bad, e["RIG_INSTANCE"]))
    assert out["code"] == 4, out
    assert "oauth-m2m" in out["msg"] and "invalid_client" in out["msg"] and "401" in out["msg"]
    assert bad not in out["msg"] and out["msg"] == out["last"]


def test_wrong_pat_is_an_auth_error(rig, tmp_path):
    e = rig.env()
    out = expect_error(rig, tmp_path, "host=%s token=dapiNOPE%s instance=%s" % (
        e["DATABRICKS_HOST"], "0" * 24, e["RIG_INSTANCE"]))
    assert out["code"] == 4, out
    assert "pat" in out["msg"] and "dapiNOPE" not in out["msg"]


def test_unknown_instance_is_an_api_error_with_the_api_message(rig, tmp_path):
    e = rig.env()
    out = expect_error(rig, tmp_path, "host=%s token=%s instance=no-such-db" % (e["DATABRICKS_HOST"], e["RIG_PAT"]))
    assert out["code"] == 5, out
    assert "404" in out["msg"] and "RESOURCE_DOES_NOT_EXIST" in out["msg"] and "no-such-db" in out["msg"]


def test_throttling_is_retried_honouring_retry_after(rig, tmp_path):
    e = rig.env()
    rig.fake.add_fault({"path": "/api/2.0/database/credentials", "count": 1, "status": 429, "retry_after": "1"})
    rig.fake.add_fault({"path": "/api/2.0/database/credentials", "count": 1, "status": 503})
    t0 = time.time()
    out, _ = run_py("c = Client(%r); emit({'pw': c.password()})" % opts_pat(e), base_env(rig, tmp_path))
    assert len(out["pw"]) > 512
    assert requests(rig, PROV) == 3
    assert time.time() - t0 >= 1.0


def test_unreachable_workspace_is_a_network_error(rig, tmp_path):
    out = expect_error(rig, tmp_path, "host=http://127.0.0.1:1 token=dapi%s instance=x retry_timeout_seconds=1" % ("0" * 32))
    assert out["code"] == 6, out
    assert "127.0.0.1" in out["msg"]


def test_garbage_body_is_an_api_error(rig, tmp_path):
    e = rig.env()
    rig.fake.add_fault({"path": "/api/2.0/database/credentials", "count": 1, "action": "garbage"})
    out = expect_error(rig, tmp_path, opts_pat(e))
    assert out["code"] == 5, out
    assert "not valid JSON" in out["msg"]


# --- SDK 0.167 parity: requests, retries, host metadata, proxies (issue 12) -------------------

def api_log(rig, path=None):
    return [r for r in rig.fake.request_log if r["path"].startswith(path or "/api/")]


def header(r, name):
    return next((v for k, v in r["headers"].items() if k.lower() == name.lower()), None)


def test_user_agent_and_request_id_like_the_sdks(rig, tmp_path):
    import re
    e = rig.env()
    out, _ = run_py("c = Client(%r); emit({'pw': c.password(), 'id': c.identity()})" % opts_pat(e),
                    base_env(rig, tmp_path, DATABRICKS_SDK_UPSTREAM="terraform", DATABRICKS_SDK_UPSTREAM_VERSION="1.9.0"))
    for r in api_log(rig):
        ua = header(r, "User-Agent")
        assert re.match(r"^liblakebase/\d+\.\d+\.\d+\S* os/linux auth/pat upstream/terraform upstream-version/1\.9\.0$", ua), ua
    (mint,) = api_log(rig, "/api/2.0/database/credentials")
    assert re.match(r"^[0-9a-f-]{36}$", mint["body"]["request_id"]), mint["body"]  # the rig refuses a mint without one


def test_unified_host_gets_the_workspace_id_header_from_host_metadata(rig, tmp_path):
    e = rig.env()
    rig.fake.update_settings({"unified_host": True})
    out, _ = run_py("c = Client(%r); emit({'pw': c.password(), 'id': c.identity()})" % opts_pat(e), base_env(rig, tmp_path))
    assert out["id"] == e["RIG_USER"]
    assert psql(rig, e["RIG_USER"], out["pw"]).returncode == 0
    ok = [r for r in api_log(rig) if r["status"] == 200]
    assert len(ok) == 2 and all(header(r, "X-Databricks-Workspace-Id") == e["RIG_WORKSPACE_ID"] for r in ok), ok
    # A call refused for lack of the header (sent before the metadata arrived) was sent once more.
    assert all(r["status"] == 400 and header(r, "X-Databricks-Workspace-Id") is None for r in api_log(rig) if r["status"] != 200)
    assert requests(rig, "GET /.well-known/databricks-config") == 1
    assert minted(rig) == 1

    # M2M: the account-level OIDC endpoints the unified metadata names, metadata read once.
    rig.fake.reset()
    rig.fake.update_settings({"unified_host": True})
    out, _ = run_py("c = Client(%r); emit({'pw': c.password(), 'id': c.identity()})" % opts_m2m(e, "endpoint"), base_env(rig, tmp_path))
    assert out["id"] == e["RIG_SP_USER"] and psql(rig, e["RIG_SP_USER"], out["pw"]).returncode == 0
    assert requests(rig, "POST /oidc/accounts/%s/v1/token" % e["RIG_ACCOUNT_ID"]) == 1
    assert requests(rig, "GET /.well-known/databricks-config") == 1
    assert all(header(r, "X-Databricks-Workspace-Id") == e["RIG_WORKSPACE_ID"] for r in api_log(rig)), "M2M knows it before the first call"


def test_private_link_redirect_fails_at_once_with_the_sdks_explanation(rig, tmp_path):
    e = rig.env()
    rig.fake.update_settings({"private_link_redirect": True})
    t0 = time.time()
    out = expect_error(rig, tmp_path, opts_pat(e))
    assert out["code"] == AUTH, out
    assert "PRIVATE_LINK_VALIDATION_ERROR" in out["msg"] and "AWS PrivateLink enabled and is not accessible" in out["msg"], out
    assert time.time() - t0 < 5 and requests(rig, PROV) == 1, "not retried"


def test_token_endpoint_gateway_errors_are_retried(rig, tmp_path):
    e = rig.env()
    rig.fake.add_fault({"path": "/oidc/v1/token", "preset": "gateway_502", "count": 1})
    rig.fake.add_fault({"path": "/oidc/v1/token", "preset": "gateway_504", "count": 1})
    out, _ = run_py("c = Client(%r); emit({'pw': c.password()})" % opts_m2m(e), base_env(rig, tmp_path))
    assert psql(rig, e["RIG_SP_USER"], out["pw"]).returncode == 0
    assert requests(rig, "POST /oidc/v1/token") == 3


@pytest.mark.parametrize("preset", ["try_again_later", "rpc_token_bucket", "request_limit_exceeded"])
def test_message_matched_transient_errors_are_retried(rig, tmp_path, preset):
    e = rig.env()
    rig.fake.add_fault({"method": "POST", "path": "/api/2.0/database/credentials", "preset": preset, "count": 1})
    out, _ = run_py("c = Client(%r); emit({'pw': c.password()})" % opts_pat(e), base_env(rig, tmp_path))
    assert psql(rig, e["RIG_USER"], out["pw"]).returncode == 0
    assert requests(rig, PROV) == 2


def test_a_mint_whose_response_timed_out_is_sent_again(rig, tmp_path):
    """The documented policy (crates/core/src/http/retry.rs): unlike databricks-sdk-py 0.167, a
    credential mint is repeated after a read timeout; the duplicate is one unused short-lived token."""
    e = rig.env()
    # An attempt may take connect (10 s) + read (http_timeout_seconds) together: answer later than that.
    rig.fake.add_fault({"method": "POST", "path": "/api/2.0/database/credentials", "action": "delay", "delay_ms": 12500, "count": 1})
    opts = opts_pat(e) + " http_timeout_seconds=1 retry_timeout_seconds=40"
    out, _ = run_py("c = Client(%r); emit({'pw': c.password()})" % opts, base_env(rig, tmp_path), timeout=120)
    assert psql(rig, e["RIG_USER"], out["pw"]).returncode == 0
    assert requests(rig, PROV) == 2
    # The delayed first request enters the fake's log only once its (unread) answer is written.
    deadline = time.time() + 10
    while len(api_log(rig, "/api/2.0/database/credentials")) < 2 and time.time() < deadline:
        time.sleep(0.1)
    a, b = api_log(rig, "/api/2.0/database/credentials")
    assert a["body"]["request_id"] == b["body"]["request_id"], "the same request, repeated"


def proxy_log(r):
    return r.control("GET", "/_fake/proxy")[1]["requests"]


def test_http_proxy_no_proxy_and_loopback_through_the_rigs_proxy(rig, tmp_path):
    e = rig.env()
    # Every process makes its own requests here: no shared cache between them.
    script = "c = Client(%r); emit({'pw': c.password()})" % opts_pat(e)
    # Loopback is never proxied...
    run_py(script, base_env(rig, tmp_path, LAKEBASE_CACHE="off", HTTP_PROXY=e["RIG_PROXY_AUTH_URL"]))
    assert proxy_log(rig) == []
    # ...unless a test asks for it: then every request goes through the proxy, with its credentials.
    out, _ = run_py(script, base_env(rig, tmp_path, LAKEBASE_CACHE="off", HTTP_PROXY=e["RIG_PROXY_AUTH_URL"], LAKEBASE_TEST_PROXY_LOOPBACK="1"))
    assert psql(rig, e["RIG_USER"], out["pw"]).returncode == 0
    log = proxy_log(rig)
    assert {(x["proxy"], x["auth"], x["status"]) for x in log} == {("auth", "ok", "forwarded")}, log
    assert e["FAKE_URL"] + "/api/2.0/database/credentials" in [x["url"] for x in log]
    rig.control("DELETE", "/_fake/proxy")
    run_py(script, base_env(rig, tmp_path, LAKEBASE_CACHE="off", HTTP_PROXY=e["RIG_PROXY_AUTH_URL"], NO_PROXY="127.0.0.1", LAKEBASE_TEST_PROXY_LOOPBACK="1"))
    assert proxy_log(rig) == []
    # Wrong proxy credentials: a clear error without them.
    bad = e["RIG_PROXY_AUTH_URL"].replace(e["RIG_PROXY_PASSWORD"], "wrong-proxy-pw")
    out = expect_error(rig, tmp_path, opts_pat(e), {"HTTP_PROXY": bad, "LAKEBASE_TEST_PROXY_LOOPBACK": "1", "LAKEBASE_CACHE": "off"})
    assert out["code"] != 0 and "407" in out["msg"] and "wrong-proxy-pw" not in out["msg"], out


def test_https_proxy_connect_tunnel_to_a_tls_workspace(tmp_path):
    """HTTPS_PROXY: CONNECT through the rig's proxy, TLS end to end to a workspace served over HTTPS."""
    from rig import Rig
    with Rig(fake_tls=True) as tls_rig:
        e = tls_rig.env()
        assert e["DATABRICKS_HOST"].startswith("https://")
        env = base_env(tls_rig, tmp_path, HTTPS_PROXY=e["RIG_PROXY_AUTH_URL"], LAKEBASE_TEST_PROXY_LOOPBACK="1",
                       LAKEBASE_CA_FILE=e["RIG_CA_FILE"])
        out, _ = run_py("c = Client(%r); emit({'pw': c.password(), 'id': c.identity()})" % opts_pat(e), env)
        assert out["id"] == e["RIG_USER"]
        assert psql(tls_rig, e["RIG_USER"], out["pw"]).returncode == 0
        log = proxy_log(tls_rig)
        assert log and {(x["method"], x["auth"], x["status"]) for x in log} == {("CONNECT", "ok", 200)}, log
        host = e["DATABRICKS_HOST"].split("://", 1)[1]
        assert {x["target"] for x in log} == {host}
        # The TLS policy is unchanged: without the rig's CA the workspace's certificate does not verify.
        del env["LAKEBASE_CA_FILE"]
        out = expect_error(tls_rig, tmp_path, opts_pat(e), {"HTTPS_PROXY": e["RIG_PROXY_AUTH_URL"], "LAKEBASE_TEST_PROXY_LOOPBACK": "1"})
        assert out["code"] == 3 and "unknown issuer" in out["msg"], out
