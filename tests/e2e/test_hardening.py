"""Hardening (issue 6): API faults and outages, fork, 64 threads, secret hygiene, TLS policy, hostile
input. Everything runs against the rig: the fake workspace (with fault injection) and a real
PostgreSQL that accepts exactly the tokens the fake minted. Scenarios run in fresh processes.

Budget: about 3 minutes. The slow parts are deliberate and bounded: one full foreground deadline
(15 s) against a hanging API, one outage that outlives a 10-second token, the stress test plain,
under ThreadSanitizer and under valgrind."""
import email.utils
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import BUILD, LIBDIR, ROOT, base_env, minted, psql, requests, run_py

sys.path.insert(0, os.path.join(ROOT, "tests", "rig"))
from rig import Rig  # noqa: E402

LIB = os.path.join(LIBDIR, "liblakebase.so")
PROV = "POST /api/2.0/database/credentials"
CRED_PATH = "/api/2.0/database/credentials"


def opts_pat(e, **extra):
    o = "host=%s token=%s instance=%s" % (e["DATABRICKS_HOST"], e["RIG_PAT"], e["RIG_INSTANCE"])
    return o + "".join(" %s=%s" % kv for kv in extra.items())


def env_pat(rig, tmp_path, **extra):
    e = rig.env()
    return base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                    LAKEBASE_INSTANCE=e["RIG_INSTANCE"], PGUSER=e["RIG_USER"], FAKE_URL=e["FAKE_URL"], **extra)


# --- C programs ---------------------------------------------------------------------------------

def cc(out, src, *flags, libpq=True):
    pq = subprocess.run(["pkg-config", "--cflags", "--libs", "libpq"], capture_output=True, text=True,
                        check=True).stdout.split() if libpq else []
    cmd = ["cc", "-g", "-O1", "-Wall", "-Wextra", "-Werror", *flags, "-I" + os.path.join(ROOT, "include"),
           os.path.join(ROOT, "tests", "c", src), "-L" + LIBDIR, "-Wl,-rpath," + LIBDIR, "-llakebase",
           *pq, "-lpthread", "-o", os.path.join(BUILD, out)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    return os.path.join(BUILD, out) if p.returncode == 0 else None, p.stderr


@pytest.fixture(scope="module")
def hprogs(c_programs):
    out = {}
    for name, src, flags in [("fork", "fork.c", []), ("stress", "stress.c", []),
                             ("test_badinput", "test_badinput.c", []),
                             ("test_badinput_asan", "test_badinput.c",
                              ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]),
                             ("stress_tsan", "stress.c", ["-fsanitize=thread"])]:
        path, err = cc(name, src, *flags)
        if path is None and name != "stress_tsan":
            raise AssertionError("building %s failed:\n%s" % (name, err))
        out[name] = path
    return out


def run(cmd, env, timeout=180, **kw):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kw)


# --- 1. HTTP faults -----------------------------------------------------------------------------

def test_retry_after_as_an_http_date_is_honoured(rig, tmp_path):
    e = rig.env()
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    rig.fake.add_fault({"path": CRED_PATH, "count": 1, "status": 429, "retry_after": when})
    t0 = time.time()
    out, _ = run_py("c = Client(%r); emit({'pw': c.password()})" % opts_pat(e), base_env(rig, tmp_path))
    took = time.time() - t0
    assert len(out["pw"]) > 512
    assert requests(rig, PROV) == 2
    assert took >= 1.5, "the HTTP-date Retry-After (about 2-3 s ahead) was not honoured: %.2f s" % took


def test_reset_close_and_503_are_retried_with_backoff(rig, tmp_path):
    e = rig.env()
    for action in ({"action": "reset"}, {"action": "close"}, {"status": 503}, {"action": "truncate"}):
        rig.fake.add_fault(dict({"path": CRED_PATH, "count": 1}, **action))
    out, _ = run_py("c = Client(%r); emit({'pw': c.password(), 'err': c.refresh_error()})" % opts_pat(e),
                    base_env(rig, tmp_path))
    assert len(out["pw"]) > 512 and out["err"] == ""
    assert requests(rig, PROV) == 5
    assert minted(rig) == 1


def test_hanging_api_fails_a_waiting_caller_within_the_foreground_deadline(rig, tmp_path):
    """Default foreground deadline: 15 s for everything a waiting caller's fetch does."""
    e = rig.env()
    rig.fake.add_fault({"path": CRED_PATH, "count": -1, "action": "hang", "hang_ms": 25000})
    out, _ = run_py("""
        import time
        from hz import timed
        c = Client(%r)
        r, took = timed(c.password)
        r2, took2 = timed(c.password)     # within the negative-cache window: no second wait
        emit({"code": getattr(r, "code", 0), "msg": str(r), "took": took, "code2": getattr(r2, "code", 0),
              "msg2": str(r2), "took2": took2})
    """ % opts_pat(e), base_env(rig, tmp_path))
    assert out["code"] == 6, out                      # LAKEBASE_NETWORK_ERROR
    assert 13.5 <= out["took"] <= 18, out
    assert "timed out" in out["msg"].lower() or "gave up" in out["msg"], out
    assert out["code2"] == 6 and out["took2"] < 1.0, out
    assert "failing fast" in out["msg2"], out


def test_other_client_errors_are_not_retried_and_carry_the_api_error(rig, tmp_path):
    e = rig.env()
    rig.fake.add_fault({"path": CRED_PATH, "count": -1, "status": 400,
                        "body": {"error_code": "INVALID_PARAMETER_VALUE", "message": "instance_names is bad"}})
    out, _ = run_py("""
        from hz import timed
        c = Client(%r)
        r, took = timed(c.password)
        r2, _ = timed(c.password)         # permanent errors are not negative-cached: asks again
        emit({"code": r.code, "msg": r.message, "took": took, "code2": r2.code})
    """ % opts_pat(e), base_env(rig, tmp_path))
    assert out["code"] == 5 and out["code2"] == 5, out
    assert "400" in out["msg"] and "INVALID_PARAMETER_VALUE" in out["msg"] and "instance_names is bad" in out["msg"]
    assert out["took"] < 2
    assert requests(rig, PROV) == 2


def test_forced_refreshes_are_rate_limited(rig, tmp_path):
    """Each refresh() returns a token minted after it was called; a runaway loop of them mints
    once a second, not as fast as it spins."""
    e = rig.env()
    out, _ = run_py("""
        import time
        c = Client(%r)
        first = c.password()
        seen = [first]
        t0 = time.monotonic()
        for _ in range(3):
            c.refresh()                   # a runaway loop: at most one mint per second
            seen.append(c.password())
        emit({"distinct": len(set(seen)), "took": time.monotonic() - t0})
    """ % opts_pat(e), base_env(rig, tmp_path))
    assert out["distinct"] == 4, out
    assert out["took"] >= 1.9, out    # mints 2 and 3 each waited out the rest of a second
    assert minted(rig) == 4


# --- 2. Outage ----------------------------------------------------------------------------------

def test_outage_serves_the_cached_token_fails_fast_after_expiry_and_recovers(rig, tmp_path):
    """10-second tokens. The API goes down right after the first mint (503s, then dropped
    connections, then hangs): the cached token keeps being served (a memory read, never blocked by
    the failing refresher) and new PostgreSQL logins succeed with it; after it expires calls fail
    fast with a clear error; when the API comes back the library recovers by itself."""
    e = rig.env()
    rig.fake.update_settings({"token_lifetime_seconds": 10})
    out, _ = run_py("""
        import time
        from hz import fake, psql_login, timed
        c = Client(%r)
        pw, t0 = c.password(), time.monotonic()
        exp = c.expiry()
        fake("/_fake/faults", {"faults": [
            {"path": "%s", "count": 3, "status": 503},
            {"path": "%s", "count": 3, "action": "reset"},
            {"path": "%s", "count": -1, "action": "hang", "hang_ms": 20000}]})
        served, slowest, logins = 0, 0.0, []
        while time.time() < exp - 1.5:                      # the whole servable life of the token
            r, took = timed(c.password)
            assert r == pw, r
            served += 1
            slowest = max(slowest, took)
            if not logins or time.monotonic() - logins[-1][0] > 3:
                logins.append((time.monotonic(), psql_login("%s", r)))
            time.sleep(0.05)
        while time.time() < exp + 1:                        # past the expiry (exp is whole seconds)
            time.sleep(0.1)
        fails = [timed(c.password) for _ in range(20)]
        refresh_error = c.refresh_error()
        during = fake("/_fake/stats")["requests"].get("POST %s", 0)
        fake("/_fake/faults", method="DELETE")
        t_back = time.monotonic()
        back = None
        while time.monotonic() - t_back < 40:
            r, _ = timed(c.password)
            if isinstance(r, str):
                back = r
                break
            time.sleep(0.2)
        emit({"served": served, "slowest": slowest, "logins": [ok for _, ok in logins],
              "refresh_error": refresh_error, "requests_during": during,
              "fail_codes": [getattr(r, "code", 0) for r, _ in fails],
              "fail_times": [t for _, t in fails], "fail_msg": str(fails[-1][0]),
              "recovered_after": time.monotonic() - t_back, "back": back, "back_differs": back != pw,
              "login_after": psql_login("%s", back) if back else False})
    """ % (opts_pat(e), CRED_PATH, CRED_PATH, CRED_PATH, e["RIG_USER"], CRED_PATH, e["RIG_USER"]),
        env_pat(rig, tmp_path), timeout=180)
    assert out["served"] > 20 and out["slowest"] < 0.5, out   # hits never waited on the refresher
    assert out["logins"] and all(out["logins"]), out
    assert "503" in out["refresh_error"] or "timed out" in out["refresh_error"] or "reset" in out["refresh_error"], out
    # Bounded: the refresher backs off (a handful of requests, not a tight loop).
    assert 2 <= out["requests_during"] <= 30, out
    assert all(c in (5, 6) for c in out["fail_codes"]), out
    # Fail fast: one caller may wait for the attempt in flight; the others answer at once.
    times = sorted(out["fail_times"])
    assert times[-1] <= 20.5 and times[-3] < 1.0, times
    assert "failing fast" in out["fail_msg"] or "503" in out["fail_msg"] or "timed out" in out["fail_msg"], out
    assert out["back"] and out["back_differs"] and out["login_after"], out
    assert out["recovered_after"] < 25, out


# --- 3. Fork ------------------------------------------------------------------------------------

def test_c_fork_child_keeps_the_cached_token_and_logs_in(rig, tmp_path, hprogs):
    p = run([hprogs["fork"], "basic"], env_pat(rig, tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    assert minted(rig) == 1


@pytest.mark.parametrize("shared", ["off", "on"])
def test_c_fork_while_another_thread_is_mid_fetch_does_not_deadlock(rig, tmp_path, hprogs, shared):
    rig.fake.add_fault({"path": CRED_PATH, "count": 1, "action": "delay", "delay_ms": 2500})
    p = run([hprogs["fork"], "midflight"], env_pat(rig, tmp_path, LAKEBASE_CACHE=shared), timeout=90)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "midflight ok" in p.stdout
    if shared == "off":
        assert minted(rig) == 2    # the parent's slow fetch and the child's own
    else:
        assert minted(rig) == 1    # the child waits on the parent's shared-cache lock and takes its token


def test_c_fork_child_runs_its_own_refresher(rig, tmp_path, hprogs):
    rig.fake.update_settings({"token_lifetime_seconds": 10})
    p = run([hprogs["fork"], "rotation"], env_pat(rig, tmp_path), timeout=90)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "child rotated" in p.stdout


def test_c_prefork_server_workers_share_the_warmed_token(rig, tmp_path, hprogs):
    p = run([hprogs["fork"], "prefork", "8"], env_pat(rig, tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    assert minted(rig) == 1
    assert rig.fake.stats()["checks"]["ok"] >= 8


def test_python_os_fork_and_multiprocessing(rig, tmp_path):
    out, _ = run_py("""
        import multiprocessing, os
        parent = get_password()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if get_password() == parent else 3)
        _, st = os.waitpid(pid, 0)
        def work(_):
            from lb import get_password as gp
            return gp()
        with multiprocessing.get_context("fork").Pool(4) as pool:
            got = pool.map(work, range(16))
        emit({"child_status": st, "pool_same": all(g == parent for g in got), "n": len(got),
              "parent_again": get_password() == parent})
    """, env_pat(rig, tmp_path))
    assert out == {"child_status": 0, "pool_same": True, "n": 16, "parent_again": True}
    assert minted(rig) == 1


# --- 4. Threads ---------------------------------------------------------------------------------

def stress_env(rig, tmp_path):
    return env_pat(rig, tmp_path)


def test_64_threads_through_rotations_mint_exactly_once_per_rotation(rig, tmp_path, hprogs):
    rig.fake.update_settings({"token_lifetime_seconds": 10})
    p = run([hprogs["stress"], "64", "11"], stress_env(rig, tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.split("\n")
    distinct = int(lines[0].split()[1])
    prefixes = [l for l in lines[1:] if l]
    tokens = list(rig.fake.lakebase_tokens)
    assert all(any(t.startswith(pre) for t in tokens) for pre in prefixes)
    # Tokens at ~0, ~5, ~10 s: at least three rotations seen, and one mint (one request) each.
    assert distinct >= 3, p.stdout
    assert minted(rig) == distinct == requests(rig, PROV), (p.stdout, rig.fake.stats())


def test_stress_under_thread_sanitizer(rig, tmp_path, hprogs):
    """The C side (64 threads, their buffers, the library's calls) under TSan. The Rust library is
    not instrumented (that needs a nightly -Zbuild-std build of std); its internal races are
    covered by the Rust unit tests and valgrind below."""
    if not hprogs.get("stress_tsan"):
        pytest.skip("the C compiler cannot build with -fsanitize=thread")
    rig.fake.update_settings({"token_lifetime_seconds": 6})
    env = stress_env(rig, tmp_path)
    # Interceptors (memcpy, malloc) called from inside the uninstrumented library would be
    # reported as races, because TSan cannot see the library's atomics: ignore those calls.
    supp = tmp_path / "tsan.supp"
    supp.write_text("called_from_lib:liblakebase.so\n")
    env["TSAN_OPTIONS"] = "halt_on_error=1 exitcode=66 report_signal_unsafe=0 suppressions=%s" % supp
    p = run([hprogs["stress_tsan"], "64", "4"], env)
    if "FATAL: ThreadSanitizer: unexpected memory mapping" in p.stderr:
        pytest.skip("ThreadSanitizer cannot run with this kernel's address-space layout")
    assert p.returncode == 0, p.stdout + p.stderr[-4000:]
    assert "WARNING: ThreadSanitizer" not in p.stderr


def test_stress_under_valgrind_memcheck(rig, tmp_path, hprogs):
    if not shutil.which("valgrind"):
        pytest.skip("valgrind is not installed")
    rig.fake.update_settings({"token_lifetime_seconds": 6})
    p = run(["valgrind", "-q", "--error-exitcode=99", "--leak-check=no", "--track-origins=no",
             hprogs["stress"], "16", "4"], stress_env(rig, tmp_path), timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr[-4000:]


# --- 6. Secrets ---------------------------------------------------------------------------------

def test_no_secret_in_any_output_or_error_message(rig, tmp_path, c_programs):
    """LAKEBASE_LOG=debug, success and failure paths (PAT, M2M, wrong secret, wrong PAT, API errors,
    retries, network errors, libpq injection through psql): no token, client secret or PAT in
    stdout, stderr or any lakebase_last_error message."""
    e = rig.env()
    wrong_secret = "doseWRONGSECRET" + "7" * 20
    wrong_pat = "dapiWRONGPAT" + "5" * 24
    rig.fake.add_fault({"path": CRED_PATH, "count": 1, "status": 503, "retry_after": "1"})
    rig.fake.add_fault({"path": "/oidc/v1/token", "count": 1, "action": "reset"})
    m2m = "host=%s client_id=%s client_secret=%s endpoint=%s" % (
        e["DATABRICKS_HOST"], e["RIG_SP_CLIENT_ID"], e["RIG_SP_CLIENT_SECRET"], e["RIG_ENDPOINT"])
    out, proc = run_py("""
        msgs = []
        def attempt(opts, *calls):
            try:
                c = Client(opts)
                for call in calls:
                    r = getattr(c, call)()
                    print("got %%s of length %%d" %% (call, len(r) if isinstance(r, str) else 0))
            except LakebaseError as err:
                msgs.append(err.message)
                msgs.append(last_error())
        attempt(%r, "password", "identity", "refresh", "password")
        attempt(%r, "password", "identity")
        attempt(%r, "password")
        attempt(%r, "password")
        attempt(%r, "password")
        attempt(%r, "password")
        attempt("token=dapiONLYATOKEN instance=x")
        emit({"msgs": msgs})
    """ % (opts_pat(e), m2m, m2m.replace(e["RIG_SP_CLIENT_SECRET"], wrong_secret),
           opts_pat(e).replace(e["RIG_PAT"], wrong_pat),
           opts_pat(e).replace(e["RIG_INSTANCE"], "no-such-db"),
           "host=http://127.0.0.1:1 token=%s instance=x retry_timeout_seconds=1" % e["RIG_PAT"]),
        base_env(rig, tmp_path, LAKEBASE_LOG="debug"))
    texts = [proc.stdout, proc.stderr] + out["msgs"]
    assert len(out["msgs"]) >= 8, out
    assert "liblakebase debug" in proc.stderr
    # libpq injection with debug logging, success and failure.
    env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                   LAKEBASE_INSTANCE=e["RIG_INSTANCE"], LAKEBASE_HOSTS="localhost", LD_PRELOAD=LIB,
                   LAKEBASE_LOG="debug", PGSSLROOTCERT=e["RIG_CA_FILE"])
    ci = "host=localhost port=%s dbname=%s" % (e["PGPORT"], e["PGDATABASE"])
    for extra in ({}, {"DATABRICKS_TOKEN": wrong_pat}):
        p = run(["psql", "-XAt", ci, "-c", "SELECT current_user"], dict(env, **extra))
        texts += [p.stdout, p.stderr]
    assert e["RIG_USER"] in texts[-4]
    assert len(rig.fake.lakebase_tokens) >= 3 and rig.fake.oauth_tokens
    assert_no_secret(rig, texts, wrong_secret, wrong_pat, "dapiONLYATOKEN")


def rig_secrets(rig):
    """Every secret the rig knows: the PAT, the SP secret, every token the fake minted."""
    e = rig.env()
    return [e["RIG_PAT"], e["RIG_SP_CLIENT_SECRET"]] + list(rig.fake.lakebase_tokens) + list(rig.fake.oauth_tokens)


def assert_no_secret(rig, texts, *extra):
    """No secret of the rig (or `extra`) in any of `texts`, whole or a distinctive slice of it."""
    secrets = rig_secrets(rig) + [x for x in extra if x]
    for s in secrets:
        # The whole secret, and a distinctive slice of it (JWT-shaped tokens share their header).
        probes = [s] + ([s[len(s) // 2:len(s) // 2 + 24]] if len(s) > 60 else [])
        for t in texts:
            t = t if isinstance(t, str) else repr(t)
            for probe in probes:
                assert probe not in t, "a secret leaked into output: ...%s..." % t[max(0, t.find(probe) - 60):t.find(probe)]


# --- 7. TLS policy ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_rig():
    r = Rig(fake_tls=True).start()
    try:
        yield r
    finally:
        r.stop()


def test_https_workspace_on_a_private_ca(tls_rig, tmp_path):
    e = tls_rig.env()
    assert e["FAKE_URL"].startswith("https://")
    base = base_env(tls_rig, tmp_path)
    scenario = """
        try:
            c = Client(%r)
            emit({"code": 0, "pw": c.password()})
        except LakebaseError as err:
            emit({"code": err.code, "msg": err.message})
    """
    # Refused without the CA: an unknown issuer, a configuration error answered at once (issue 12).
    out, _ = run_py(scenario % (opts_pat(e) + " retry_timeout_seconds=2"), base)
    assert out["code"] == 3, out
    assert "certificate" in out["msg"].lower() or "UnknownIssuer" in out["msg"], out
    # Accepted with ca_file=, with LAKEBASE_CA_FILE, and with SSL_CERT_FILE (replaces the system store).
    out, _ = run_py(scenario % (opts_pat(e) + " ca_file=" + e["RIG_CA_FILE"]), base)
    assert out["code"] == 0, out
    assert psql(tls_rig, e["RIG_USER"], out["pw"]).returncode == 0
    out, _ = run_py(scenario % opts_pat(e), dict(base, LAKEBASE_CA_FILE=e["RIG_CA_FILE"]))
    assert out["code"] == 0, out
    out, _ = run_py(scenario % opts_pat(e), dict(base, SSL_CERT_FILE=e["RIG_CA_FILE"]))
    assert out["code"] == 0, out
    # A CA file that is not PEM is a configuration error, not a silent fallback.
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    out, _ = run_py(scenario % (opts_pat(e) + " ca_file=" + str(bad)), base)
    assert out["code"] == 3 and "PEM" in out["msg"], out


def test_plain_http_only_to_loopback(rig, tmp_path):
    e = rig.env()
    out, _ = run_py("""
        res = {}
        for host in ("http://workspace.example.com", "http://10.1.2.3:8080", "http://[fd00::1]"):
            try:
                Client("host=%%s token=dapiX instance=i" %% host).password()
                res[host] = 0
            except LakebaseError as err:
                res[host] = [err.code, "plain http" in err.message]
        res["loopback"] = len(Client(%r).password())
        emit(res)
    """ % ("host=http://localhost:%s token=%s instance=%s" % (e["FAKE_URL"].rsplit(":", 1)[1], e["RIG_PAT"],
                                                            e["RIG_INSTANCE"])), base_env(rig, tmp_path))
    assert out["http://workspace.example.com"] == [3, True], out
    assert out["http://10.1.2.3:8080"] == [3, True], out
    assert out["http://[fd00::1]"] == [3, True], out
    assert out["loopback"] > 512
    assert requests(rig, PROV) == 1


# --- 8. Bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["test_badinput", "test_badinput_asan"])
def test_hostile_arguments_to_every_export(hprogs, variant):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "LAKEBASE_", "PG"))}
    env["ASAN_OPTIONS"] = "detect_leaks=0"
    env["UBSAN_OPTIONS"] = "halt_on_error=1"
    p = run([hprogs[variant]], env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr[-4000:]
    assert "0 failed" in p.stdout


# --- 9. Hardening, round two (issue 13) ---------------------------------------------------------
# Every scenario runs with LAKEBASE_LOG=debug and ends with assert_no_secret over all it printed.

LAKEBASE_BIN = os.path.join(LIBDIR, "lakebase")
ONE_SHOT = """
    from hz import timed
    def go():
        return Client(%r).password()
    r, took = timed(go)
    emit({"code": getattr(r, "code", 0), "msg": getattr(r, "message", ""), "last": last_error() if not isinstance(r, str) else "",
          "took": took, "ok": isinstance(r, str)})
"""


def one_shot(rig, opts, env, timeout=60):
    out, p = run_py(ONE_SHOT % opts, env, timeout=timeout)
    return out, [p.stdout, p.stderr, out["msg"], out["last"]]


def m2m_opts(e, secret=None, **extra):
    o = "host=%s client_id=%s client_secret=%s instance=%s" % (
        e["DATABRICKS_HOST"], e["RIG_SP_CLIENT_ID"], secret or e["RIG_SP_CLIENT_SECRET"], e["RIG_INSTANCE"])
    return o + "".join(" %s=%s" % kv for kv in extra.items())


def total_requests(rig):
    return sum(rig.fake.stats()["requests"].values())


def test_a_stray_byte_in_a_credential_is_trimmed_or_refused_without_showing_it(rig, tmp_path):
    """A DATABRICKS_TOKEN from a CRLF file or a Kubernetes secret: surrounding whitespace is
    trimmed (as the SDKs' file parsers do); any other control or invisible byte is a config error
    naming the variable and the byte, raised before anything is sent. Before: the HTTP library's
    "invalid header 'Authorization: Bearer dapi...'" in every message, retried for 9 s."""
    e = rig.env()
    pat = e["RIG_PAT"]
    texts = []

    def env_with(token):
        env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], LAKEBASE_LOG="debug")
        env["DATABRICKS_TOKEN"] = token
        return env

    for good in (pat + "\n", pat + "\r\n", " %s\t" % pat):
        out, t = one_shot(rig, "instance=" + e["RIG_INSTANCE"], env_with(good))
        assert out["ok"], out
        texts += t
    before = total_requests(rig)
    cases = [(pat[:10] + "\r" + pat[10:], 11, "a carriage return (0x0D)"),
             (pat[:10] + "\n" + pat[10:], 11, "a line feed (0x0A)"),
             ("\ufeff" + pat, 1, "a byte-order mark (U+FEFF)"),
             (pat[:10] + "\x7f" + pat[10:], 11, "a DEL character (0x7F)"),
             (pat[:10] + "\x01" + pat[10:], 11, "a control character (0x01)"),
             (pat[:10] + "\x1b" + pat[10:], 11, "an escape character (0x1B)"),
             (pat[:10] + "\u00e9" + pat[10:], 11, "a non-ASCII character"),
             (pat[:10] + " " + pat[10:], 11, "a space"),
             (pat[:10].encode() + b"\xe9" + pat[10:].encode(), 11, "not valid UTF-8")]
    for bad, byte, what in cases:
        out, t = one_shot(rig, "instance=" + e["RIG_INSTANCE"], env_with(bad))
        texts += t
        assert out["code"] == 3, (what, out)                      # LAKEBASE_CONFIG_ERROR, not a network error
        assert "token (DATABRICKS_TOKEN): byte %d of the value is %s" % (byte, what) in out["msg"], out
        assert "Authorization" not in out["msg"] and "Bad Header" not in out["msg"], out
        assert out["took"] < 2, out                               # not retried
    assert total_requests(rig) == before, "a refused credential was sent"
    # The command and psql under LD_PRELOAD say the same, and nothing else.
    bad = pat[:10] + "\r" + pat[10:]
    env = env_with(bad)
    env["LAKEBASE_INSTANCE"] = e["RIG_INSTANCE"]
    p = run([LAKEBASE_BIN, "password"], env, timeout=60)
    assert p.returncode == 2 and "token (DATABRICKS_TOKEN): byte 11" in p.stderr, p.stderr
    texts += [p.stdout, p.stderr]
    p = run(["psql", "-XAt", "host=localhost port=%s dbname=%s" % (e["PGPORT"], e["PGDATABASE"]), "-c", "SELECT 1"],
            dict(env, LD_PRELOAD=LIB, LAKEBASE_HOSTS="localhost", PGUSER=e["RIG_USER"], PGSSLROOTCERT=e["RIG_CA_FILE"]), timeout=60)
    assert p.returncode != 0 and "DATABRICKS_TOKEN" in p.stderr and "byte 11" in p.stderr, p.stderr
    texts += [p.stdout, p.stderr]
    assert_no_secret(rig, texts, pat[10:])


def test_an_echoing_workspace_gets_no_sent_secret_into_any_message(rig, tmp_path):
    """Error bodies that echo the request (a misbehaving proxy): the PAT in `Authorization:
    Bearer`, the M2M Basic blob and the form body's subject_token come back; every one is
    replaced by *** before the text enters a message or a log."""
    import base64
    import urllib.parse
    e = rig.env()
    rig.fake.update_settings({"hostile_echo": True})
    rig.fake.add_fault({"path": CRED_PATH, "count": -1, "status": 500})
    wrong = "doseECHOWRONG" + "4" * 24
    enc = lambda s: urllib.parse.quote_plus(s)  # noqa: E731
    blob = base64.b64encode(("%s:%s" % (enc(e["RIG_SP_CLIENT_ID"]), enc(wrong))).encode()).decode()
    jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImVjaG8ifQ.eyJzdWIiOiJlY2hvLXRlc3QifQ." + "s1gn4tur3X" * 6
    cases = [opts_pat(e), m2m_opts(e, wrong),
             "host=%s client_id=%s instance=%s auth_type=env-oidc" % (e["DATABRICKS_HOST"], e["RIG_SP_CLIENT_ID"], e["RIG_INSTANCE"])]
    out, p = run_py("""
        msgs = []
        for opts in %r:
            try:
                Client(opts).password()
                msgs.append("no error")
            except LakebaseError as err:
                msgs += [err.message, last_error()]
        emit({"msgs": msgs})
    """ % (cases,), base_env(rig, tmp_path, LAKEBASE_LOG="debug", DATABRICKS_OIDC_TOKEN=jwt))
    msgs = out["msgs"]
    assert len(msgs) == 6 and "no error" not in msgs, msgs
    # The echo did reach the messages (so this test sees what it claims to), minus the secrets.
    assert all("Request was" in m for m in msgs), msgs
    assert "Bearer ***" in msgs[0] and "Basic ***" in msgs[2] and "subject_token=***" in msgs[4], msgs
    texts = msgs + [p.stdout, p.stderr]
    # The command prints the same message.
    env = pat_env_for(rig, tmp_path, LAKEBASE_LOG="debug")
    c = run([LAKEBASE_BIN, "password"], env)
    assert c.returncode == 1 and "Bearer ***" in c.stderr, c.stderr
    texts += [c.stdout, c.stderr]
    assert_no_secret(rig, texts, wrong, blob, jwt, enc(wrong))


def pat_env_for(rig, tmp_path, **extra):
    e = rig.env()
    return base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                    LAKEBASE_INSTANCE=e["RIG_INSTANCE"], **extra)


def test_control_characters_in_server_text_are_escaped(rig, tmp_path):
    """ANSI colour, OSC title and hyperlink escapes, BEL and a newline that forges a log line, in
    an API error message: escaped in the error, in the log and in the command's output."""
    from fake_workspace import HOSTILE_MESSAGE
    e = rig.env()
    rig.fake.add_fault({"path": CRED_PATH, "count": -1, "preset": "hostile_message"})
    out, texts = one_shot(rig, opts_pat(e), base_env(rig, tmp_path, LAKEBASE_LOG="debug"))
    c = run([LAKEBASE_BIN, "password"], pat_env_for(rig, tmp_path, LAKEBASE_LOG="debug"))
    texts += [c.stdout, c.stderr]
    assert out["code"] == 5 and "BAD_REQUEST" in out["msg"], out
    for msg in (out["msg"], out["last"]):
        assert not any(ch in msg for ch in "\x1b\x07\n\r"), repr(msg)
        assert "\\x1b[31mred alert\\x1b[0m \\x1b]0;pwned title\\x07" in msg, msg
        assert "\\n2026-01-01T00:00:00Z INFO lakebase: forged log line\\r\\nend" in msg, msg
    assert HOSTILE_MESSAGE not in texts[1]
    # Every line on stderr is the library's own (none forged), and no escape reaches it.
    for stderr in (texts[1], c.stderr):
        assert "\x1b" not in stderr and "\x07" not in stderr
        assert not any(l.startswith("2026-01-01T00:00:00Z") for l in stderr.splitlines()), stderr
    assert [l for l in c.stderr.splitlines() if not l.startswith("liblakebase ")] == [
        l for l in c.stderr.splitlines() if l.startswith("lakebase: ")], c.stderr
    assert_no_secret(rig, texts)


def _mangles():
    from fake_workspace import TOKEN_MANGLES
    return sorted(TOKEN_MANGLES)


@pytest.mark.parametrize("which", ["lakebase", "oauth"])
@pytest.mark.parametrize("mangle", _mangles())
def test_a_spoiled_token_from_the_server_is_refused(rig, tmp_path, which, mangle):
    """A credential response whose token is not token-shaped (a trailing newline, a space, a
    control or NUL byte, DEL, non-ASCII, a BOM, ANSI escapes, empty): a clear API error naming the
    field and byte, at once. Before: handed out as a password, or sent as a header that the HTTP
    library refused (quoting it) and retried for 9 s."""
    e = rig.env()
    rig.fake.update_settings({which + "_token_mangle": mangle})
    opts = opts_pat(e) if which == "lakebase" else m2m_opts(e)
    out, texts = one_shot(rig, opts, base_env(rig, tmp_path, LAKEBASE_LOG="debug"))
    assert out["code"] == 5, out                                 # LAKEBASE_API_ERROR
    field = "token" if which == "lakebase" else "access_token"
    if mangle == "empty":
        assert 'the response has no "%s"' % field in out["msg"], out
    else:
        assert 'the response\'s "%s" is not a usable token: byte ' % field in out["msg"], out
    assert out["took"] < 3, out
    assert "Authorization" not in out["msg"], out
    if which == "lakebase":
        assert requests(rig, PROV) == 1, "a malformed token is not retried in a loop"
    else:
        assert requests(rig, PROV) == 0, "a malformed OAuth token was sent"
    # The fake knows the clean tokens: none of them, nor the spoiled ones, may show.
    assert_no_secret(rig, texts)


def test_absurd_expiries_are_clamped_so_tokens_are_still_refreshed(rig, tmp_path):
    """expiration_time 9999-12-31 and expires_in 1e300: the token works and is taken to expire in
    at most one hour (so the refresher replaces it 40 minutes in; the schedule itself is pinned
    by the cache's frozen-clock unit test)."""
    e = rig.env()
    rig.fake.update_settings({"lakebase_expiry_override": "9999-12-31T23:59:59Z", "oauth_expires_in_override": 1e300})
    out, p = run_py("""
        import time
        from hz import psql_login
        c = Client(%r)
        pw = c.password()
        emit({"exp": c.expiry(), "now": time.time(), "login": psql_login(%r, pw)})
    """ % (m2m_opts(e), e["RIG_SP_USER"]), base_env(rig, tmp_path, LAKEBASE_LOG="debug"))
    assert out["login"], out
    assert out["now"] + 3500 <= out["exp"] <= out["now"] + 3605, out
    assert_no_secret(rig, [p.stdout, p.stderr])


def _run_limited(code, env, timeout=30):
    """A scenario with a 2 GiB address-space limit (so reading /dev/zero cannot take the machine
    down) and a hard timeout (so a FIFO cannot hang the suite)."""
    import json
    import resource
    import textwrap

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    try:
        p = subprocess.run([sys.executable, "-c", "from lb import *\n" + textwrap.dedent(code)], env=env, capture_output=True,
                           text=True, timeout=timeout, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        raise AssertionError("the scenario hung (killed after %d s)" % timeout)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1]), p


def test_hostile_files_give_a_clear_error_in_bounded_time_and_memory(rig, tmp_path):
    """A FIFO without a writer, /dev/zero and a huge file as the config file, the CA bundle
    (ca_file, SSL_CERT_FILE) and the OIDC token file. Before: a FIFO blocked forever, /dev/zero
    was read until memory ran out."""
    e = rig.env()
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    huge = tmp_path / "huge"
    with open(str(huge), "wb") as f:
        f.write(b"# padding\n" * ((2 << 20) // 10 + 1))
    huge = str(huge)
    fed = "host=%s client_id=%s instance=%s auth_type=file-oidc oidc_token_filepath=" % (e["DATABRICKS_HOST"], e["RIG_SP_CLIENT_ID"], e["RIG_INSTANCE"])
    cases = [
        ("config FIFO", "instance=x", {"DATABRICKS_CONFIG_FILE": fifo, "DATABRICKS_CONFIG_PROFILE": "p"}, (3,), "a FIFO"),
        ("config /dev/zero", "instance=x", {"DATABRICKS_CONFIG_FILE": "/dev/zero"}, (3,), "a character device"),
        ("config huge", "instance=x", {"DATABRICKS_CONFIG_FILE": huge}, (3,), "larger than the 1 MiB limit"),
        ("ca_file FIFO", opts_pat(e, ca_file=fifo), {}, (3,), "a FIFO"),
        ("ca_file /dev/zero", opts_pat(e, ca_file="/dev/zero"), {}, (3,), "a character device"),
        ("OIDC token FIFO", fed + fifo, {}, (3, 4), "a FIFO"),
        ("OIDC token /dev/zero", fed + "/dev/zero", {}, (3, 4), "a character device"),
        ("OIDC token huge", fed + huge, {}, (3, 4), "larger than the 64 KiB limit"),
    ]
    texts = []
    for name, opts, extra, codes, needle in cases:
        out, p = _run_limited(ONE_SHOT % opts, base_env(rig, tmp_path, LAKEBASE_LOG="debug", **extra))
        texts += [p.stdout, p.stderr, out["msg"]]
        assert out["code"] in codes and needle in out["msg"], (name, out)
        assert out["took"] < 5, (name, out)
    # SSL_CERT_FILE replaces the system store: unusable, it is logged and the store stays empty
    # (the fake is plain http on loopback, so the call itself succeeds).
    for bad in (fifo, "/dev/zero"):
        # (no shared cache: the password must come from the workspace, through the CA store)
        out, p = _run_limited(ONE_SHOT % opts_pat(e), base_env(rig, tmp_path, LAKEBASE_LOG="debug", SSL_CERT_FILE=bad, LAKEBASE_CACHE="off"))
        texts += [p.stdout, p.stderr]
        assert out["ok"] and out["took"] < 5, out
        assert "SSL_CERT_FILE: cannot read CA file" in p.stderr, p.stderr
    assert_no_secret(rig, texts)


PEAK_RSS = r"""
import json, resource, subprocess, sys
p = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=120)
print(json.dumps({"rc": p.returncode, "out": p.stdout, "err": p.stderr,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def test_huge_pgpass_and_service_files_are_not_read_into_memory(rig, tmp_path):
    """psql under LD_PRELOAD with a 64 MiB .pgpass / pg_service.conf (libpq reads them line by
    line): the library skips them (with a warning) instead of reading 64 MiB into memory. Measured
    as psql's peak RSS against the same login without them."""
    import json
    e = rig.env()
    big_pass = tmp_path / "pgpass"
    big_pass.write_bytes(b"#\n" * (32 << 20))
    os.chmod(str(big_pass), 0o600)
    big_svc = tmp_path / "pg_service.conf"
    big_svc.write_bytes(b"[lb]\ndbname=%s\n" % e["PGDATABASE"].encode() + b"#\n" * (32 << 20))
    env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                   LAKEBASE_INSTANCE=e["RIG_INSTANCE"], LAKEBASE_HOSTS="localhost", LD_PRELOAD=LIB,
                   PGUSER=e["RIG_USER"], LAKEBASE_LOG="warn", PGSSLROOTCERT=e["RIG_CA_FILE"])
    env.pop("PGDATABASE", None)

    def login(conninfo, **extra):
        p = run([sys.executable, "-c", PEAK_RSS, "psql", "-XAt", conninfo, "-c", "SELECT current_user"], dict(env, **extra))
        out = json.loads(p.stdout)
        assert out["rc"] == 0 and e["RIG_USER"] in out["out"], out
        return out

    ci = "host=localhost port=%s dbname=%s" % (e["PGPORT"], e["PGDATABASE"])
    base = login(ci)
    with_pass = login(ci, PGPASSFILE=str(big_pass))
    with_svc = login("host=localhost port=%s service=lb" % e["PGPORT"], PGSERVICEFILE=str(big_svc),
                     PGSYSCONFDIR=str(tmp_path / "none"))
    limit = base["maxrss_kib"] + 32 * 1024
    assert with_pass["maxrss_kib"] < limit, (base["maxrss_kib"], with_pass["maxrss_kib"])
    assert with_svc["maxrss_kib"] < limit, (base["maxrss_kib"], with_svc["maxrss_kib"])
    assert "larger than the 1 MiB limit" in with_pass["err"] and "larger than the 1 MiB limit" in with_svc["err"]
    assert_no_secret(rig, [base["err"], with_pass["err"], with_svc["err"]])


def test_a_helper_whose_grandchild_holds_the_pipe_does_not_outlive_it(rig, tmp_path):
    """A `databricks` that leaves a background process holding its stdout (telemetry, a
    daemonised child): the token is used as soon as the helper exits, and the lingering process
    is killed with the helper's process group. Before: the caller waited for the grandchild."""
    e = rig.env()
    pids = tmp_path / "pids"
    cli = tmp_path / "databricks"
    cli.write_text("#!/bin/sh\nif [ \"$1\" = auth ]; then sleep 300 & echo $! >> %s; fi\nexec %s %s \"$@\"\n%s\n" % (
        pids, sys.executable, os.path.join(ROOT, "tests", "rig", "bin", "databricks"), "#" * (1 << 20) + "x" * 100))
    os.chmod(str(cli), 0o755)
    env = base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_CLI_PATH=str(cli), FAKE_URL=e["FAKE_URL"],
                   FAKE_DATABRICKS_CLI_USER=e["RIG_USER"], LAKEBASE_LOG="debug")
    out, texts = one_shot(rig, "instance=%s auth_type=databricks-cli" % e["RIG_INSTANCE"], env, timeout=90)
    assert out["ok"] and out["took"] < 10, out
    started = pids.read_text().split()
    assert started, "the fake CLI did not start its background process"

    def running(pid):
        try:
            with open("/proc/%s/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
    deadline = time.time() + 5
    while any(running(p) for p in started) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(running(p) for p in started), "the helper's grandchild outlived it"
    assert_no_secret(rig, texts)


def test_a_refresher_thread_that_cannot_start_leaves_hits_fast_and_logs_once(rig, tmp_path):
    """Under a thread limit (RLIMIT_NPROC=1 as an unprivileged user: clone() fails), 20000 hits:
    one error line, a handful of start attempts (backed off), every hit served. Before: a failed
    clone() and an error line per hit."""
    e = rig.env()
    out, p = run_py("""
        import os, resource, threading, time
        c = Client(%r)
        if os.getuid() == 0:                 # root ignores RLIMIT_NPROC: become nobody first
            os.setgroups([]); os.setgid(65534); os.setuid(65534)
        resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))
        try:
            threading.Thread(target=lambda: None).start()
            limited = False
        except RuntimeError:
            limited = True
        first = c.password()                 # the first fetch runs in place
        t0 = time.perf_counter()
        same = all(c.password() == first for _ in range(20000))
        per_hit_us = (time.perf_counter() - t0) / 20000 * 1e6
        emit({"limited": limited, "same": same, "per_hit_us": per_hit_us})
    """ % opts_pat(e), base_env(rig, tmp_path, LAKEBASE_LOG="debug"))
    assert out["limited"], "the thread limit did not take effect"
    assert out["same"], out
    errors = [l for l in p.stderr.splitlines() if "cannot start the refresher thread" in l]
    attempts = [l for l in p.stderr.splitlines() if "refresher thread: start attempt" in l]
    assert len(errors) == 1, p.stderr[-3000:]
    assert len(attempts) <= 10, attempts
    print("refresher cannot start: %.2f us per hit over 20000 hits, %d retries" % (out["per_hit_us"], len(attempts)))
    assert_no_secret(rig, [p.stdout, p.stderr])


def test_clients_sharing_a_cache_entry_keep_their_own_timeouts(rig, tmp_path):
    """Two clients with the same credentials and database share one cache entry. Against a
    hanging API, the one with retry_timeout_seconds=2 gives up after about 2 s, although the
    entry was created by the other (default 15 s). Before: the first client's values applied."""
    e = rig.env()
    rig.fake.add_fault({"path": CRED_PATH, "count": -1, "action": "hang", "hang_ms": 30000})
    out, p = run_py("""
        from hz import timed
        patient = Client(%r)
        hasty = Client(%r)
        r, took = timed(hasty.password)
        emit({"code": getattr(r, "code", 0), "msg": getattr(r, "message", ""), "took": took})
    """ % (opts_pat(e), opts_pat(e, retry_timeout_seconds=2)), base_env(rig, tmp_path, LAKEBASE_LOG="debug"))
    assert out["code"] == 6 and 1.5 <= out["took"] < 6, out
    assert_no_secret(rig, [p.stdout, p.stderr, out["msg"]])


def test_exec_passes_secrets_by_descriptor_not_environment(rig, tmp_path):
    """`lakebase exec --options "token=... "` / `"client_secret=..."`: the program and its
    children log in through the preloaded library, but no secret is in their environment
    (/proc/self/environ); LAKEBASE_SECRETS_FD names the inherited memfd. A program that closed it
    gets a config error saying so."""
    e = rig.env()
    ci = "host=localhost port=%s dbname=%s" % (e["PGPORT"], e["PGDATABASE"])
    env = base_env(rig, tmp_path, LAKEBASE_HOSTS="localhost", LAKEBASE_LOG="debug", PGSSLROOTCERT=e["RIG_CA_FILE"])
    script = "tr '\\0' '\\n' < /proc/self/environ; echo ---; psql -XAt '%s user=%s' -c 'SELECT current_user'"
    texts = []
    for opts, user in ((opts_pat(e), e["RIG_USER"]), (m2m_opts(e), e["RIG_SP_USER"])):
        p = run([LAKEBASE_BIN, "--options", opts, "exec", "--", "sh", "-c", script % (ci, user)], env, timeout=90)
        texts += [p.stdout, p.stderr]
        assert p.returncode == 0, p.stdout + p.stderr
        environ, login = p.stdout.split("---\n", 1)
        assert login.strip() == user, p.stdout + p.stderr    # psql (a grandchild) logged in
        child = dict(l.split("=", 1) for l in environ.splitlines() if "=" in l)
        assert child["DATABRICKS_HOST"] == e["DATABRICKS_HOST"] and child["LAKEBASE_INSTANCE"] == e["RIG_INSTANCE"]
        assert "DATABRICKS_TOKEN" not in child and "DATABRICKS_CLIENT_SECRET" not in child, sorted(child)
        assert child["LAKEBASE_SECRETS_FD"].count(":") == 2, child["LAKEBASE_SECRETS_FD"]
        assert e["RIG_PAT"] not in environ and e["RIG_SP_CLIENT_SECRET"] not in environ
    # The descriptor is a sealed memfd; a program that closes it gets a clear error.
    p = run([LAKEBASE_BIN, "--options", opts_pat(e), "exec", "--", sys.executable, "-c", """
import os, sys
sys.path.insert(0, %r)
fd = int(os.environ["LAKEBASE_SECRETS_FD"].split(":")[0])
print(os.readlink("/proc/self/fd/%%d" %% fd))
os.close(fd)
from lb import Client, LakebaseError
try:
    Client("")
    print("no error")
except LakebaseError as err:
    print(err.code, err.message)
""" % os.path.join(ROOT, "tests", "e2e")], env, timeout=60)
    texts += [p.stdout, p.stderr]
    assert p.returncode == 0, p.stdout + p.stderr
    link, result = p.stdout.splitlines()[:2]
    assert link.startswith("/memfd:lakebase-exec-secrets"), link
    assert result.startswith("3 ") and "LAKEBASE_SECRETS_FD=" in result and "descriptor is closed" in result, result
    assert_no_secret(rig, texts)
