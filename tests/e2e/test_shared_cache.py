"""The per-user shared cache (issue 15): processes of one user share one database credential,
identity and discovered target; N processes starting at once make one mint; a rejected token is
invalidated for everyone; a hostile cache directory (other owner, wide mode, symlinks, truncated or
garbage entries) is never trusted; a holder killed while holding the lock blocks nobody; two users
on one machine never read each other's entries. Everything runs against the rig (fake workspace +
real PostgreSQL with TLS), each scenario in fresh processes; each test has its own HOME and so its
own cache directory (~/.cache/lakebase). Run by scripts/test-hardening.sh."""
import json
import os
import pathlib
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import HERE, LIBDIR, ROOT, base_env, minted, requests, run_py

LIB = os.path.join(LIBDIR, "liblakebase.so")
CLI = os.path.join(LIBDIR, "lakebase")
PROV = "POST /api/2.0/database/credentials"
CRED_PATH = "/api/2.0/database/credentials"
SCIM = "GET /api/2.0/preview/scim/v2/Me"

# Two unprivileged users for the multi-user cases (no passwd entry needed for setpriv).
UID_A, UID_B = 65534, 65533


def env_pat(rig, tmp_path, **extra):
    e = rig.env()
    return base_env(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                    LAKEBASE_INSTANCE=e["RIG_INSTANCE"], FAKE_URL=e["FAKE_URL"], **extra)


def cache_dir(tmp_path):
    return tmp_path / "home" / ".cache" / "lakebase"


def password(env):
    out, _ = run_py("emit({'pw': get_password()})", env)
    return out["pw"]


def cache_list(env):
    p = subprocess.run([CLI, "cache", "list", "--json"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout), p.stdout


def entry_files(d):
    return sorted(n for n in os.listdir(d) if n.endswith(".entry"))


def psql_preloaded(rig, env, sql="SELECT current_user"):
    e = rig.env()
    # The rig's server certificate is on a private CA: the injected token goes only to a server
    # that verifies (verify-full), so trust it.
    env = dict(env, LD_PRELOAD=LIB, LAKEBASE_HOSTS="localhost", PGSSLROOTCERT=e["RIG_CA_FILE"])
    env.pop("PGUSER", None)
    env.pop("PGPASSWORD", None)
    return subprocess.run(["psql", "-XAt", "host=localhost port=%s dbname=%s" % (e["PGPORT"], e["PGDATABASE"]), "-c", sql],
                          env=env, capture_output=True, text=True, timeout=60)


def start_together(n, code, env):
    """Start n scenario processes and release them at once: each reports ready on one pipe and
    blocks reading another, which the parent closes when all n are ready (EOF for every reader)."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    prelude = "import os\nos.write(%d, b'.')\nos.read(%d, 1)\n" % (ready_w, go_r)
    procs = [subprocess.Popen([sys.executable, "-c", "from lb import *\n" + prelude + code], env=env, pass_fds=(ready_w, go_r),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]
    os.close(ready_w)
    os.close(go_r)
    got = b""
    while len(got) < n:
        chunk = os.read(ready_r, n)
        assert chunk, "a scenario process died before the start"
        got += chunk
    os.close(go_w)
    os.close(ready_r)
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    return [json.loads(o[0].strip().splitlines()[-1]) for o in outs]


def wait_for(cond, what, timeout=30):
    """Poll a condition on the rig's state (not a timing assumption): bounded, fails with `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


# --- sharing ------------------------------------------------------------------------------------

def test_sequential_processes_share_one_mint_identity_and_target(rig, tmp_path):
    env = env_pat(rig, tmp_path)
    env.pop("LAKEBASE_INSTANCE")              # the target is discovered from the host
    for _ in range(5):
        p = psql_preloaded(rig, env)
        assert p.returncode == 0 and p.stdout.strip() == rig.env()["RIG_USER"], p.stderr
    s = rig.fake.stats()["requests"]
    assert minted(rig) == 1 and s.get(SCIM) == 1 and s.get("GET /api/2.0/database/instances") == 1, s
    listing, raw = cache_list(env)
    entries = {tuple(sorted((x.get("target") or {}).items())): x for x in listing["entries"]}
    assert listing["enabled"] and len(listing["entries"]) == 2, raw
    withtarget = entries[(("kind", "instance"), ("name", rig.env()["RIG_INSTANCE"]))]
    assert withtarget["identity"] == rig.env()["RIG_USER"] and withtarget["token"]["expires_in_seconds"] > 3000
    assert entries[()]["discovered"] == [{"host": "localhost", "kind": "instance", "name": rig.env()["RIG_INSTANCE"]}]
    assert "eyJ" not in raw, "a token in the listing: " + raw     # minted tokens are JWTs


def test_an_explicit_refresh_mints_instead_of_taking_the_shared_token(rig, tmp_path):
    """refresh() asks for a new token: another process's entry (minted before the call) is not
    the answer; the new token replaces it in the shared entry for the next process."""
    env = env_pat(rig, tmp_path)
    first = password(env)
    rig.fake.update_settings({"token_lifetime_seconds": 600})
    try:
        out, _ = run_py("""
            import time
            c = Client("")
            before = c.password()
            c.refresh()
            emit({"same_before": before == %r, "changed": c.password() != before,
                  "expires_in": c.expiry() - time.time()})
        """ % first, env)
        assert out["same_before"] and out["changed"], out
        assert out["expires_in"] < 700, out                  # the token minted by refresh()
        assert minted(rig) == 2
        assert password(env) not in (first,)                # the next process takes the new one
        assert minted(rig) == 2
    finally:
        rig.fake.update_settings({"token_lifetime_seconds": 3600})


def test_sixteen_processes_started_at_once_make_one_mint(rig, tmp_path):
    """16 processes wait on one FIFO and are released together; the mint is slow (0.5 s), so
    they all miss at once: one mints under the entry lock, the 15 others take its token."""
    rig.fake.add_fault({"path": CRED_PATH, "count": -1, "action": "delay", "delay_ms": 500})
    outs = start_together(16, "emit({'pw': get_password()})", env_pat(rig, tmp_path))
    assert len({o["pw"] for o in outs}) == 1
    assert minted(rig) == 1
    assert requests(rig, PROV) == 1


def test_a_waiter_gets_the_holders_failure_instead_of_repeating_it(rig, tmp_path):
    """The holder's mint fails (a slow 400): processes that waited for it report that failure
    instead of each making the same doomed request."""
    rig.fake.add_fault({"path": CRED_PATH, "count": -1, "status": 400, "delay_ms": 800,
                        "body": {"error_code": "INVALID_PARAMETER_VALUE", "message": "nope"}})
    code = ("try:\n    get_password(); emit({'ok': True})\n"
            "except LakebaseError as e:\n    emit({'code': e.code, 'msg': e.message})")
    outs = start_together(6, code, env_pat(rig, tmp_path))
    assert all(o.get("code") == 5 and "nope" in o["msg"] for o in outs), outs
    assert requests(rig, PROV) == 1, rig.fake.stats()


def test_cold_start_with_a_warm_entry_makes_no_request(rig, tmp_path):
    env = env_pat(rig, tmp_path)
    first = password(env)
    before = sum(rig.fake.stats()["requests"].values())
    out, _ = run_py("""
        import time
        t0 = time.perf_counter()
        pw = get_password()
        emit({"pw": pw, "ms": (time.perf_counter() - t0) * 1000})
    """, env)
    assert out["pw"] == first
    assert sum(rig.fake.stats()["requests"].values()) == before


def test_the_refresher_keeps_the_shared_entry_fresh(rig, tmp_path):
    """10-second tokens: a long-lived process renews its token at ~5 s and writes it to the shared
    entry; a process started after that takes the renewed token without a mint."""
    rig.fake.update_settings({"token_lifetime_seconds": 10})
    env = env_pat(rig, tmp_path)
    long_lived = subprocess.Popen([sys.executable, "-c", "from lb import *\n" + """
import sys, time
first = get_password()
deadline = time.monotonic() + 30
while get_password() == first and time.monotonic() < deadline:
    time.sleep(0.05)
emit({"first": first, "renewed": get_password()})
sys.stdin.read()
"""], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = long_lived.stdout.readline()
        while line.strip() == "":
            line = long_lived.stdout.readline()
        got = json.loads(line)
        assert got["first"] != got["renewed"]
        assert minted(rig) == 2
        assert password(env) == got["renewed"]
        assert minted(rig) == 2
    finally:
        long_lived.stdin.close()
        long_lived.wait(timeout=30)


# --- invalidation -------------------------------------------------------------------------------

def test_a_rejected_token_is_invalidated_for_every_process(rig, tmp_path):
    env = env_pat(rig, tmp_path)
    t1 = password(env)
    assert rig.fake.revoke() == 1
    # The next process takes t1 from the shared cache, is rejected, mints t2 and retries once.
    p = psql_preloaded(rig, env)
    assert p.returncode == 0, p.stderr
    assert minted(rig) == 2
    t2 = password(env)
    assert t2 != t1 and minted(rig) == 2
    p = psql_preloaded(rig, env)
    assert p.returncode == 0, p.stderr
    assert minted(rig) == 2, "later processes use t2"
    # Rejected again, and this time no new token can be minted: the entry drops the rejected
    # token, so the process after the outage mints at once instead of trying it first.
    rig.fake.revoke()
    rig.fake.add_fault({"path": CRED_PATH, "count": -1, "status": 403,
                        "body": {"error_code": "PERMISSION_DENIED", "message": "denied for now"}})
    p = psql_preloaded(rig, env)
    assert p.returncode != 0
    listing, _ = cache_list(env)
    assert [x["token"] for x in listing["entries"]] == [None], listing
    with rig.fake._lock:
        rig.fake.faults.clear()
    failed_before = rig.fake.stats()["checks"]["failed"]
    p = psql_preloaded(rig, env)
    assert p.returncode == 0, p.stderr
    assert rig.fake.stats()["checks"]["failed"] == failed_before, "the revoked token was not tried again"


# --- fork / exec --------------------------------------------------------------------------------

def test_fork_and_exec_children_find_the_shared_entry_and_inherit_nothing(rig, tmp_path):
    """While a thread holds the entry lock (a slow mint), the process forks and execs a child that
    keeps every inherited descriptor (posix_spawn): none of them is the cache's. Then an exec'd
    child and a forked child both get the parent's token without a mint."""
    rig.fake.add_fault({"path": CRED_PATH, "count": 1, "action": "delay", "delay_ms": 1500})
    out, _ = run_py("""
        import os, threading, json
        from hz import fake
        got = {}
        t = threading.Thread(target=lambda: got.update(pw=get_password()))
        t.start()
        while not fake("/_fake/stats")["requests"].get("POST /api/2.0/database/credentials"):
            pass
        # mid-mint: the lock file is open and locked in this process
        mine = sorted(os.readlink("/proc/self/fd/" + f) for f in os.listdir("/proc/self/fd") if os.path.exists("/proc/self/fd/" + f))
        r, w = os.pipe()
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", "ls -l /proc/$$/fd >&%d" % w], dict(os.environ))
        os.close(w)
        child_fds = os.read(r, 65536).decode()
        os.waitpid(pid, 0)
        t.join()
        import subprocess, sys
        exec_child = subprocess.run([sys.executable, "-c", "from lb import *; emit({'pw': get_password()})"],
                                    capture_output=True, text=True, env=dict(os.environ)).stdout.strip().splitlines()[-1]
        fpid = os.fork()
        if fpid == 0:
            os._exit(0 if get_password() == got["pw"] else 3)
        _, st = os.waitpid(fpid, 0)
        emit({"mine": mine, "child_fds": child_fds, "exec_same": json.loads(exec_child)["pw"] == got["pw"], "fork_status": st})
    """, env_pat(rig, tmp_path))
    assert any("lakebase" in m and m.endswith(".lock") for m in out["mine"]), out["mine"]
    assert ".cache/lakebase" not in out["child_fds"], out["child_fds"]
    assert out["exec_same"] and out["fork_status"] == 0, out
    assert minted(rig) == 1


# --- hostile cache directory --------------------------------------------------------------------

def warm_entry(rig, tmp_path, env):
    """Mint once; return (cache dir, entry path, entry bytes) and forget the fake's counters."""
    password(env)
    d = cache_dir(tmp_path)
    [name] = entry_files(d)
    return d, d / name, (d / name).read_bytes()


def test_entries_with_another_owner_a_wider_mode_or_extra_links_are_not_trusted(rig, tmp_path):
    env = env_pat(rig, tmp_path)
    d, entry, valid = warm_entry(rig, tmp_path, env)
    n = minted(rig)
    for spoil in ("owner", "mode", "link"):
        entry.unlink()
        entry.write_bytes(valid)             # a valid entry with a servable token...
        os.chmod(entry, 0o600)
        if spoil == "owner":
            os.chown(entry, UID_A, UID_A)    # ...but another user's
        elif spoil == "mode":
            os.chmod(entry, 0o644)           # ...readable by others
        else:
            os.link(entry, tmp_path / "hardlink")
        pw = password(env)
        n += 1
        assert minted(rig) == n, spoil + ": the untrusted entry was used"
        st = os.lstat(entry)
        assert (st.st_uid, stat.S_IMODE(st.st_mode), st.st_nlink) == (0, 0o600, 1), spoil + ": not replaced"
        assert password(env) == pw and minted(rig) == n, spoil + ": the replacement is used"
        if spoil == "link":
            (tmp_path / "hardlink").unlink()


def test_a_symlinked_entry_or_directory_is_never_followed_and_is_replaced(rig, tmp_path):
    env = env_pat(rig, tmp_path)
    d, entry, valid = warm_entry(rig, tmp_path, env)
    elsewhere = tmp_path / "elsewhere.entry"
    elsewhere.write_bytes(valid)
    os.chmod(elsewhere, 0o600)
    entry.unlink()
    os.symlink(elsewhere, entry)
    password(env)
    assert minted(rig) == 2, "a symlinked entry was followed"
    assert not os.path.islink(entry) and elsewhere.read_bytes() == valid
    # The directory itself a symlink (to a directory of ours with a valid entry): replaced.
    other = tmp_path / "otherdir"
    shutil.copytree(d, other)
    shutil.rmtree(d)
    os.symlink(other, d)
    password(env)
    assert minted(rig) == 3, "a symlinked cache directory was followed"
    assert os.path.isdir(d) and not os.path.islink(d) and stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert len(os.listdir(other)) == 2       # the symlink's target is untouched


def test_a_wide_cache_directory_is_narrowed(rig, tmp_path):
    env = env_pat(rig, tmp_path)
    d, _, _ = warm_entry(rig, tmp_path, env)
    os.chmod(d, 0o777)
    password(env)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700


def test_a_cache_directory_of_another_user_is_not_used(rig, tmp_path):
    env = env_pat(rig, tmp_path)
    d, _, _ = warm_entry(rig, tmp_path, env)
    os.chown(d, UID_A, UID_A)
    password(env)
    assert minted(rig) == 2, "another user's directory was used"
    p = subprocess.run([CLI, "cache", "list"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "owned by uid %d" % UID_A in p.stderr, p.stderr


@pytest.mark.parametrize("spoil", ["truncated", "garbage", "empty", "huge", "other-key"])
def test_truncated_or_garbage_entries_are_ignored_and_replaced(rig, tmp_path, spoil):
    env = env_pat(rig, tmp_path)
    d, entry, valid = warm_entry(rig, tmp_path, env)
    data = {"truncated": valid[:len(valid) // 2], "garbage": os.urandom(700), "empty": b"",
            "huge": b" " * (1 << 20) + valid,
            "other-key": valid.replace(entry.name[:8].encode(), b"00000000", 1)}[spoil]
    entry.write_bytes(data)
    env["LAKEBASE_LOG"] = "warn"
    out, p = run_py("emit({'pw': get_password()})", env)
    assert "ignoring the entry" in p.stderr, p.stderr
    assert minted(rig) == 2
    assert json.loads(entry.read_text())["v"] == 1, "the bad entry was replaced"
    assert password(env) == out["pw"] and minted(rig) == 2


# --- locks --------------------------------------------------------------------------------------

def test_a_holder_killed_while_holding_the_lock_blocks_nobody(rig, tmp_path):
    """Process A takes the entry lock and hangs in its mint; it is SIGKILLed. Process B, started
    while A still holds the lock, gets a password as soon as A is gone (the kernel releases a dead
    process's flock), long before the 20 s bounded wait."""
    rig.fake.add_fault({"path": CRED_PATH, "count": 1, "action": "hang", "hang_ms": 60000})
    env = env_pat(rig, tmp_path)
    a = subprocess.Popen([sys.executable, "-c", "from lb import *\nget_password()"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: requests(rig, PROV) == 1, "A's mint to reach the workspace")
        b = subprocess.Popen([sys.executable, "-c", "from lb import *\nimport time\nt=time.monotonic()\n"
                              "emit({'pw': get_password(), 's': time.monotonic() - t})"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # B is waiting on the lock: it has made no request of its own.
        assert b.poll() is None and requests(rig, PROV) == 1
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=10)
        out, err = b.communicate(timeout=60)
        assert b.returncode == 0, err
        got = json.loads(out.strip().splitlines()[-1])
        assert got["s"] < 10, got
        assert minted(rig) == 1              # A never got its token; B minted
    finally:
        if a.poll() is None:
            a.kill()


# --- users --------------------------------------------------------------------------------------

def as_user(uid, home, env, code):
    env = dict(env, HOME=str(home))
    p = subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups",
                        sys.executable, "-c", "from lb import *\n" + code],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1]), p


@pytest.fixture
def homes():
    """Home directories for UID_A and UID_B (outside pytest's root-only tmp_path)."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="lakebase-users-"))
    os.chmod(base, 0o755)
    out = []
    for uid in (UID_A, UID_B):
        h = base / ("home-%d" % uid)
        h.mkdir()
        os.chown(h, uid, uid)
        out.append(h)
    yield out
    shutil.rmtree(base)


def test_two_users_have_separate_caches_and_never_read_each_other(rig, tmp_path, homes):
    env = env_pat(rig, tmp_path)
    env["LAKEBASE_LOG"] = "warn"
    ha, hb = homes
    pa, _ = as_user(UID_A, ha, env, "emit({'pw': get_password()})")
    pb, _ = as_user(UID_B, hb, env, "emit({'pw': get_password()})")
    assert pa["pw"] != pb["pw"] and minted(rig) == 2
    for uid, h in ((UID_A, ha), (UID_B, hb)):
        d = h / ".cache" / "lakebase"
        st = os.stat(d)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (uid, 0o700)
        for n in os.listdir(d):
            st = os.lstat(d / n)
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (uid, 0o600), n
    # Each user again: its own entry, no mint.
    assert as_user(UID_A, ha, env, "emit({'pw': get_password()})")[0] == pa and minted(rig) == 2
    # B pointed at A's directory cannot read it (0700) and falls back to minting.
    out, p = as_user(UID_B, hb, dict(env, LAKEBASE_CACHE_DIR=str(ha / ".cache" / "lakebase")), "emit({'pw': get_password()})")
    assert out["pw"] != pa["pw"] and minted(rig) == 3
    assert "no usable shared cache directory" in p.stderr, p.stderr
    # root could read A's directory, but it is not root's: not used either.
    out, p = run_py("emit({'pw': get_password()})", dict(env, LAKEBASE_CACHE_DIR=str(ha / ".cache" / "lakebase")))
    assert out["pw"] != pa["pw"] and minted(rig) == 4
    assert "owned by uid %d" % UID_A in p.stderr, p.stderr
    # An automatic location whose parent is another user's (XDG_RUNTIME_DIR kept after su):
    # skipped for the user's own ~/.cache.
    out, _ = as_user(UID_B, hb, dict(env, XDG_RUNTIME_DIR=str(ha)), "emit({'pw': get_password()})")
    assert out == pb and minted(rig) == 4
    assert not os.path.exists(ha / "lakebase")


# --- switches and the command -------------------------------------------------------------------

def test_the_off_switch(rig, tmp_path):
    env = env_pat(rig, tmp_path, LAKEBASE_CACHE="off")
    password(env)
    password(env)
    assert minted(rig) == 2
    assert not cache_dir(tmp_path).exists()
    e = rig.env()
    opts = "host=%s token=%s instance=%s" % (e["DATABRICKS_HOST"], e["RIG_PAT"], e["RIG_INSTANCE"])
    env = env_pat(rig, tmp_path)
    for _ in range(2):
        run_py("emit({'pw': Client(%r).password()})" % (opts + " cache=off"), env)
    assert minted(rig) == 4
    out, _ = run_py("""
        try:
            Client(%r)
            emit({})
        except LakebaseError as e:
            emit({"code": e.code, "msg": e.message})
    """ % (opts + " cache=maybe"), env)
    assert out["code"] == 3 and "expected on or off" in out["msg"], out


def test_cache_list_shows_no_secret_and_clear_removes_everything(rig, tmp_path):
    env = env_pat(rig, tmp_path)
    pw = password(env)
    p = subprocess.run([CLI, "cache", "list"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "alice" not in p.stdout and "password    expires" in p.stdout, p.stdout
    _, raw = cache_list(env)
    assert pw not in p.stdout and pw not in raw and pw[:40] not in raw
    p = subprocess.run([CLI, "cache", "clear"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "removed 1 entry" in p.stdout, p.stdout
    assert os.listdir(cache_dir(tmp_path)) == []
    password(env)
    assert minted(rig) == 2
