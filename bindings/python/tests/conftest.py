"""Fixtures: the liblakebase test rig (real PostgreSQL with TLS + fake Databricks workspace).

Uses the rig named by FAKE_URL/PGPORT/... in the environment (scripts/test-bindings.sh starts one:
``python3 tests/rig/rig.py up --dir D && . D/env.sh``), or starts one for the session.
Tests use the installed ``lakebase`` package; the library comes from LAKEBASE_LIBRARY, defaulting to
the repository's target/release build.
"""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from typing import Any, Callable, Dict, Iterator, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

if not os.environ.get("LAKEBASE_LIBRARY"):
    _built = os.path.join(REPO, "target", "release", "liblakebase.so")
    if os.path.exists(_built):
        os.environ["LAKEBASE_LIBRARY"] = _built

# Variables a test must not inherit from the machine (they would change what the library resolves).
SCRUB = ("DATABRICKS_", "LAKEBASE_", "ARM_", "GOOGLE_", "ACTIONS_ID_TOKEN", "PGUSER", "PGPASSWORD")


@pytest.fixture(scope="session")
def rig_env() -> Iterator[Dict[str, str]]:
    if os.environ.get("FAKE_URL") and os.environ.get("PGPORT"):
        yield {k: v for k, v in os.environ.items() if k.startswith(("RIG_", "PG", "FAKE_URL", "DATABRICKS_HOST"))}
        return
    sys.path.insert(0, os.path.join(REPO, "tests", "rig"))
    from rig import Rig  # type: ignore[import-not-found]

    rig = Rig().start()
    try:
        yield dict(rig.env())
    finally:
        rig.stop()


@pytest.fixture(scope="session", autouse=True)
def clean_env(rig_env: Dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    """No Databricks configuration from the machine; HOME without a ~/.databrickscfg; the rig's PG*."""
    for k in list(os.environ):
        if k.startswith(SCRUB) and k != "LAKEBASE_LIBRARY":
            del os.environ[k]
    os.environ["HOME"] = str(tmp_path_factory.mktemp("home"))
    for k in ("PGHOST", "PGPORT", "PGDATABASE", "PGSSLROOTCERT"):
        os.environ[k] = rig_env[k]
    os.environ["PGSSLMODE"] = "verify-full"


class Fake:
    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, path: str, body: Optional[Any] = None) -> Any:
        req = urllib.request.Request(
            self.url + path, method="GET" if body is None else "POST",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def minted(self) -> int:
        return int(self("/_fake/stats")["lakebase_tokens_minted_total"])

    def failed_checks(self) -> int:
        """Logins the fake turned down so far."""
        return int(self("/_fake/stats")["checks"]["failed"])

    def fresh_pat(self, user: str) -> str:
        """A new personal access token for ``user``: a client using it has a cache entry of its own."""
        pat = "dapi" + os.urandom(16).hex()
        self("/_fake/identities", {"pats": {pat: user}})
        return pat


@pytest.fixture(scope="session")
def fake(rig_env: Dict[str, str]) -> Fake:
    f = Fake(rig_env["FAKE_URL"])
    # Reset once, before this process holds any token (a reset makes the fake forget minted tokens).
    f("/_fake/reset", {})
    return f


@pytest.fixture
def short_tokens(fake: Fake) -> Iterator[None]:
    """Tokens minted from now on live 10 s (the library refreshes them ~5 s before expiry)."""
    fake("/_fake/config", {"token_lifetime_seconds": 10})
    try:
        yield
    finally:
        fake("/_fake/config", {"token_lifetime_seconds": 3600})


@pytest.fixture
def pat_options(rig_env: Dict[str, str], fake: Fake) -> Dict[str, str]:
    return {"host": rig_env["FAKE_URL"], "token": rig_env["RIG_PAT"], "instance": rig_env["RIG_INSTANCE"]}


@pytest.fixture
def fresh_options(rig_env: Dict[str, str], fake: Fake) -> Dict[str, str]:
    """Client options with a PAT of their own (a cache entry no other test shares)."""
    return {"host": rig_env["FAKE_URL"], "token": fake.fresh_pat(rig_env["RIG_USER"]), "instance": rig_env["RIG_INSTANCE"]}


@pytest.fixture
def client(pat_options: Dict[str, str]) -> Iterator[Any]:
    import lakebase

    with lakebase.Client(**pat_options) as c:
        yield c


def poll_until(cond: Callable[[], bool], timeout: float, interval: float = 0.25, what: str = "condition") -> None:
    """Bounded polling: call ``cond`` every ``interval`` s until it is true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)
