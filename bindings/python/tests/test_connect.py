"""The connect helpers behave like the library's own libpq connects: one retry after a rejected
cached token, retries while an endpoint wakes from scale-to-zero, nothing else retried; the
client's Postgres role as the default user; verified TLS by default."""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Iterator

import psycopg
import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

import lakebase
import lakebase.psycopg
import lakebase.psycopg2
import lakebase.sqlalchemy
from lakebase import _params


def _psycopg(c: lakebase.Client, kw: Dict[str, Any]) -> str:
    with lakebase.psycopg.connect(client=c, **kw) as conn:
        return str(conn.execute("select current_user").fetchone()[0])


def _psycopg_class(c: lakebase.Client, kw: Dict[str, Any]) -> str:  # what psycopg_pool calls
    with lakebase.psycopg.connection_class(c).connect("", **kw) as conn:
        return str(conn.execute("select current_user").fetchone()[0])


def _psycopg2(c: lakebase.Client, kw: Dict[str, Any]) -> str:
    conn = lakebase.psycopg2.connect(client=c, **kw)
    try:
        cur = conn.cursor()
        cur.execute("select current_user")
        return str(cur.fetchone()[0])
    finally:
        conn.close()


def _sqlalchemy(driver: str) -> Callable[[lakebase.Client, Dict[str, Any]], str]:
    def run(c: lakebase.Client, kw: Dict[str, Any]) -> str:
        engine = lakebase.sqlalchemy.create_engine("postgresql+%s://" % driver, client=c, connect_args=kw,
                                                   poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return str(conn.execute(text("select current_user")).scalar())
        finally:
            engine.dispose()
    return run


CONNECTS = {
    "psycopg": _psycopg,
    "psycopg-class": _psycopg_class,
    "psycopg2": _psycopg2,
    "sqlalchemy-psycopg": _sqlalchemy("psycopg"),
    "sqlalchemy-psycopg2": _sqlalchemy("psycopg2"),
}


@pytest.fixture(params=sorted(CONNECTS))
def connect(request: pytest.FixtureRequest) -> Callable[[lakebase.Client, Dict[str, Any]], str]:
    return CONNECTS[request.param]  # type: ignore[no-any-return]


@pytest.fixture
def fresh_client(fresh_options: Dict[str, str]) -> Iterator[lakebase.Client]:
    with lakebase.Client(**fresh_options) as c:
        yield c


# The server no longer accepts the cached token (revoked here; in the field also a token left in
# the shared cache by another process): one new token, one more login, which succeeds.
def test_a_rejected_cached_token_is_replaced_once(connect: Any, fresh_client: lakebase.Client, fake: Any,
                                                  rig_env: dict) -> None:
    old = fresh_client.password()
    assert fake("/_fake/revoke", {"token": old})["revoked"] == 1
    minted, failed = fake.minted(), fake.failed_checks()
    assert connect(fresh_client, {}) == rig_env["RIG_USER"]
    assert fake.minted() == minted + 1, "one new token"
    assert fake.failed_checks() == failed + 1, "one rejected login"
    assert fresh_client.password() != old


# A login no new token can fix (a token for another identity, in Lakebase's words) is not retried.
def test_an_identity_mismatch_is_not_retried(connect: Any, fresh_client: lakebase.Client, fake: Any,
                                             rig_env: dict) -> None:
    pw = fresh_client.password()
    fake("/_fake/config", {"pg_reject_mode": "identity"})
    try:
        minted, failed = fake.minted(), fake.failed_checks()
        with pytest.raises(Exception) as ei:
            connect(fresh_client, {"user": rig_env["RIG_SP_USER"]})
        assert "did not match the security label" in str(ei.value)
        assert pw not in str(ei.value) and pw not in repr(ei.value)
        assert fake.minted() == minted, "no new token"
        assert fake.failed_checks() == failed + 1, "one login attempt"
    finally:
        fake("/_fake/config", {"pg_reject_mode": "pam"})


def test_a_missing_database_is_not_retried(connect: Any, fresh_client: lakebase.Client, fake: Any) -> None:
    fresh_client.password()
    minted = fake.minted()
    t0 = time.monotonic()
    with pytest.raises(Exception, match="does not exist"):
        connect(fresh_client, {"dbname": "no_such_db"})
    assert time.monotonic() - t0 < 2.0, "no backoff"
    assert fake.minted() == minted


@pytest.fixture
def cold(fake: Any, rig_env: dict) -> Iterator[str]:
    """The cold-start front's host (on PGPORT): armed by each test, reset after it."""
    if not rig_env.get("RIG_COLD_HOST"):
        pytest.skip("the rig has no cold-start host")
    try:
        yield rig_env["RIG_COLD_HOST"]
    finally:
        fake("/_fake/cold/reset", {})


# An endpoint waking from scale-to-zero refuses connections, then answers "starting up": the
# connect retries with backoff within connect_timeout and logs in once it is up.
def test_a_waking_endpoint_is_retried(connect: Any, fresh_client: lakebase.Client, fake: Any, cold: str,
                                      rig_env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    fake("/_fake/cold/arm", {"mode": "refuse", "wake_ms": 1500, "now": True})
    t0 = time.monotonic()
    assert connect(fresh_client, {"host": cold, "connect_timeout": 10}) == rig_env["RIG_USER"]
    assert time.monotonic() - t0 >= 1.0, "it waited for the wake-up"
    fake("/_fake/cold/arm", {"mode": "starting", "wake_attempts": 2, "now": True})
    assert connect(fresh_client, {"host": cold, "connect_timeout": 10}) == rig_env["RIG_USER"]
    assert int(fake("/_fake/cold")["counters"]["starting"]) == 2, 'two "starting up" answers, then the login'
    # LAKEBASE_CONNECT_RETRY=0 turns retries off: the first refusal is the answer.
    monkeypatch.setenv("LAKEBASE_CONNECT_RETRY", "0")
    fake("/_fake/cold/arm", {"mode": "refuse", "wake_ms": 60000, "now": True})
    t0 = time.monotonic()
    with pytest.raises(Exception):
        connect(fresh_client, {"host": cold, "connect_timeout": 10})
    assert time.monotonic() - t0 < 2.0, "no retries"


def test_tls_modes_without_encryption_are_refused(client: lakebase.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    for mode in ("disable", "allow", "prefer"):
        with pytest.raises(lakebase.InvalidArgumentError, match="only TLS"):
            lakebase.psycopg.connect(client=client, sslmode=mode)
        with pytest.raises(lakebase.InvalidArgumentError, match="only TLS"):
            lakebase.psycopg2.connect("sslmode=%s" % mode, client=client)
        with pytest.raises(lakebase.InvalidArgumentError, match="only TLS"):
            lakebase.sqlalchemy.create_engine("postgresql+psycopg2://", client=client,
                                              connect_args={"sslmode": mode}).connect()
    monkeypatch.setenv("PGSSLMODE", "disable")
    with pytest.raises(lakebase.InvalidArgumentError, match="sslmode=disable"):
        lakebase.psycopg.connect_kwargs(client=client)


def test_defaults_verify_full_with_the_system_bundle(client: lakebase.Client, rig_env: dict,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGSSLMODE")
    kw = lakebase.psycopg.connect_kwargs("dbname=databricks_postgres", client=client)
    assert kw["sslmode"] == "verify-full" and kw["user"] == client.postgres_role == rig_env["RIG_USER"]
    assert "sslrootcert" not in kw, "PGSSLROOTCERT names the rig's CA"
    assert _psycopg(client, {}) == rig_env["RIG_USER"]
    monkeypatch.delenv("PGSSLROOTCERT")
    kw = lakebase.psycopg2.connect_kwargs(client=client)
    assert kw["sslrootcert"] in _params.CA_BUNDLES + ("system",)
    # The system roots do not include the rig's CA: the certificate check fails before any login.
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        lakebase.psycopg.connect(client=client)
    with pytest.raises(psycopg2.OperationalError, match="certificate verify failed"):
        lakebase.psycopg2.connect(client=client)
    # What is given wins; require does not check the certificate, so no roots are added.
    kw = lakebase.psycopg.connect_kwargs("user=someone sslmode=require", client=client)
    assert not {"user", "sslmode", "sslrootcert"} & set(kw)
    with lakebase.psycopg.connect(client=client, sslmode="require", user=rig_env["RIG_USER"]) as conn:
        assert conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone() == (True,)


# The default user is the client's Postgres role: its group's role when it acts for a group.
def test_the_default_user_is_the_postgres_role(fake: Any, rig_env: dict) -> None:
    if not rig_env.get("RIG_GROUP_NAME"):
        pytest.skip("the rig has no group")
    with lakebase.Client(host=rig_env["FAKE_URL"], token=fake.fresh_pat(rig_env["RIG_USER"]),
                         endpoint=rig_env["RIG_ENDPOINT"], group_name=rig_env["RIG_GROUP_NAME"]) as c:
        assert c.identity == rig_env["RIG_USER"]
        assert c.postgres_role == rig_env["RIG_GROUP_NAME"]
        for run in CONNECTS.values():
            assert run(c, {}) == rig_env["RIG_GROUP_NAME"]


def test_repr_of_the_retry_state_holds_no_password(client: lakebase.Client) -> None:
    r = _params.Reconnect(client, client.password(), None)
    assert client.password() not in repr(r)
