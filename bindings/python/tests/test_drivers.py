"""psycopg 3, psycopg_pool, psycopg2 and SQLAlchemy against the rig's PostgreSQL (TLS + token check)."""
from __future__ import annotations

import threading
import time
from typing import Any, List, Tuple

import psycopg
import psycopg2
import pytest
import sqlalchemy
from sqlalchemy import event, text

import lakebase
import lakebase.psycopg
import lakebase.psycopg2
import lakebase.sqlalchemy
from conftest import poll_until

SSL_SQL = "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()"


def test_psycopg_connect_over_tls(client: lakebase.Client, rig_env: dict) -> None:
    with lakebase.psycopg.connect(client=client) as conn:
        assert conn.execute(SSL_SQL).fetchone() == (rig_env["RIG_USER"], True)
        assert conn.info.password == client.password()


def test_m2m_identity_is_the_postgres_role(rig_env: dict) -> None:
    with lakebase.Client(host=rig_env["FAKE_URL"], client_id=rig_env["RIG_SP_CLIENT_ID"],
                         client_secret=rig_env["RIG_SP_CLIENT_SECRET"], instance=rig_env["RIG_INSTANCE"]) as c:
        with lakebase.psycopg.connect(client=c) as conn:
            assert conn.execute("select current_user").fetchone()[0] == rig_env["RIG_SP_USER"]


def test_wrong_pat_surfaces_auth_error_before_connecting(rig_env: dict) -> None:
    bad = "dapi" + "f" * 32
    with lakebase.Client(host=rig_env["FAKE_URL"], token=bad, instance=rig_env["RIG_INSTANCE"]) as c:
        with pytest.raises(lakebase.AuthError) as ei:
            lakebase.psycopg.connect(client=c, user=rig_env["RIG_USER"])
        assert "403" in str(ei.value) and bad not in str(ei.value)
        with pytest.raises(lakebase.AuthError):
            lakebase.psycopg2.connect(client=c, user=rig_env["RIG_USER"])
        engine = lakebase.sqlalchemy.create_engine("postgresql+psycopg2://", client=c)
        with pytest.raises(lakebase.AuthError):
            engine.connect()
        engine.dispose()


def _outlive_first_token(client: lakebase.Client, fake: Any, use_one: Any, seen: List[Tuple[float, str]]) -> None:
    """Keep using the pool (which opens new physical connections as old ones reach their lifetime)
    until a connection opened after the first token's expiry has logged in with a newer token."""
    client.refresh()  # a 10 s token from now on (short_tokens)
    first, first_expiry = client.password(), client.expiry
    assert first_expiry is not None and first_expiry - time.time() <= 11
    minted_before = fake.minted()

    def done() -> bool:
        use_one()
        return any(t > first_expiry + 0.5 and pw != first for t, pw in seen)

    poll_until(done, timeout=30, interval=0.3, what="a new physical connection after the first token expired")
    use_one()
    assert any(pw == first for _, pw in seen), "the pool's first connections used the first token"
    assert fake.minted() >= minted_before + 1
    assert client.refresh_error is None


def test_psycopg_pool_outlives_first_token(client: lakebase.Client, fake: Any, short_tokens: None,
                                           rig_env: dict) -> None:
    seen: List[Tuple[float, str]] = []
    lock = threading.Lock()

    def configure(conn: psycopg.Connection) -> None:  # runs once per new physical connection
        with lock:
            seen.append((time.time(), conn.info.password))

    with lakebase.psycopg.pool(client=client, min_size=2, max_size=4, max_lifetime=1.5, configure=configure,
                               open=False) as pool:
        pool.wait(timeout=10)

        def use_one() -> None:
            with pool.connection() as conn:
                assert conn.execute(SSL_SQL).fetchone() == (rig_env["RIG_USER"], True)

        _outlive_first_token(client, fake, use_one, seen)
        stats = pool.get_stats()
        assert stats.get("connections_errors", 0) == 0, stats
        assert stats["connections_num"] >= 4


def test_psycopg_pool_with_your_own_pool_arguments(client: lakebase.Client, rig_env: dict) -> None:
    from psycopg_pool import ConnectionPool

    with ConnectionPool("dbname=databricks_postgres", connection_class=lakebase.psycopg.connection_class(client),
                        kwargs={"application_name": "lakebase-test"}, min_size=1, open=False) as pool:
        with pool.connection() as conn:
            row = conn.execute("select current_user, current_setting('application_name')").fetchone()
            assert row == (rig_env["RIG_USER"], "lakebase-test")


def test_psycopg2_connect(client: lakebase.Client, rig_env: dict) -> None:
    conn = lakebase.psycopg2.connect("dbname=databricks_postgres", client=client, application_name="pg2")
    try:
        cur = conn.cursor()
        cur.execute(SSL_SQL)
        assert cur.fetchone() == (rig_env["RIG_USER"], True)
    finally:
        conn.close()
    # After a refresh the next connection logs in with the new token.
    old = client.password()
    client.refresh()
    conn = lakebase.psycopg2.connect(client=client)
    try:
        assert conn.info.password != old
    finally:
        conn.close()


def test_sqlalchemy_attach(client: lakebase.Client, rig_env: dict) -> None:
    engine = sqlalchemy.create_engine("postgresql+psycopg://")
    hook = lakebase.sqlalchemy.attach(engine, client)
    with engine.connect() as conn:
        assert tuple(conn.execute(text(SSL_SQL)).one()) == (rig_env["RIG_USER"], True)
    event.remove(engine, "do_connect", hook)
    engine.dispose()


def test_sqlalchemy_pool_outlives_first_token(client: lakebase.Client, fake: Any, short_tokens: None,
                                              rig_env: dict) -> None:
    engine = lakebase.sqlalchemy.create_engine("postgresql+psycopg2:///databricks_postgres", client=client,
                                               pool_size=2, pool_recycle=1)
    seen: List[Tuple[float, str]] = []

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, rec: Any) -> None:  # once per new physical connection
        seen.append((time.time(), dbapi_conn.info.password))

    def use_one() -> None:
        with engine.connect() as conn:
            assert conn.execute(text("select current_user")).scalar() == rig_env["RIG_USER"]

    try:
        _outlive_first_token(client, fake, use_one, seen)
    finally:
        engine.dispose()


def test_psycopg_async_pool(client: lakebase.Client, rig_env: dict) -> None:
    import asyncio

    from psycopg_pool import AsyncConnectionPool

    async def main() -> object:
        cls = lakebase.psycopg.connection_class(client, base=psycopg.AsyncConnection)
        async with AsyncConnectionPool("dbname=databricks_postgres", connection_class=cls, min_size=1,
                                       open=False) as pool:
            async with pool.connection() as conn:
                cur = await conn.execute(SSL_SQL)
                return await cur.fetchone()

    assert asyncio.run(main()) == (rig_env["RIG_USER"], True)
