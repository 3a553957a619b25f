import json
import os
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "rig"))

from rig import Rig  # noqa: E402

BUILD = os.path.join(ROOT, "build")
LIBDIR = os.path.join(ROOT, "target", "release")

# Variables a scenario must not inherit from the machine running the tests. XDG_*: the shared
# cache lives under the scenario's own HOME (a fake reset forgets tokens another test cached).
SCRUB = ("DATABRICKS_", "LAKEBASE_", "ARM_", "PG", "GOOGLE_", "ACTIONS_ID_TOKEN", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME")


@pytest.fixture(scope="session")
def rig():
    r = Rig().start()
    # A reset in the middle of a test makes the fake forget every token: what the test's processes
    # cached on disk is then a world that no longer exists. Each reset starts a new cache
    # directory (base_env), as a new machine would.
    reset = r.fake.reset

    def reset_and_forget(*a, **kw):
        r.fake_generation += 1
        return reset(*a, **kw)

    r.fake_generation = 0
    r.fake.reset = reset_and_forget
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(autouse=True)
def fresh_fake(rig):
    rig.fake.reset()
    rig.fake_generation = 0
    yield


def base_env(rig, tmp_path, **extra):
    """A clean environment: HOME without a ~/.databrickscfg, the rig's Postgres, no Databricks vars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    e = rig.env()
    env.update({
        "HOME": str(home),
        "PGHOST": e["PGHOST"],
        "PGPORT": e["PGPORT"],
        "PGDATABASE": e["PGDATABASE"],
        "PYTHONPATH": HERE,
    })
    if getattr(rig, "fake_generation", 0):
        env["LAKEBASE_CACHE_DIR"] = str(home / ".cache" / ("lakebase-after-reset-%d" % rig.fake_generation))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_py(code, env, timeout=120):
    """Run a scenario in a fresh interpreter; return the JSON it emitted last."""
    p = subprocess.run([sys.executable, "-c", "from lb import *\n" + textwrap.dedent(code)],
                       env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("scenario failed (%d)\nstdout:\n%s\nstderr:\n%s" % (p.returncode, p.stdout, p.stderr))
    return json.loads(p.stdout.strip().splitlines()[-1]), p


def psql(rig, user, password, sql="SELECT current_user", sslmode="require"):
    e = rig.env()
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)}
    env["PGPASSWORD"] = password
    return subprocess.run(
        ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
         "host=%s port=%s dbname=%s user=%s sslmode=%s" % (e["PGHOST"], e["PGPORT"], e["PGDATABASE"], user, sslmode),
         "-c", sql],
        env=env, capture_output=True, text=True, timeout=60)


def minted(rig):
    return rig.fake.stats()["lakebase_tokens_minted_total"]


def requests(rig, key):
    return rig.fake.stats()["requests"].get(key, 0)


@pytest.fixture(scope="session")
def c_programs():
    """Build the C example and C tests against the in-tree library."""
    os.makedirs(BUILD, exist_ok=True)
    subprocess.run(["make", "-s", "-C", ROOT, "examples"], check=True)
    return {"get_password": os.path.join(BUILD, "get_password")}
