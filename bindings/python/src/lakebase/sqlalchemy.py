"""SQLAlchemy integration through the ``do_connect`` event: the pool asks the library for the
password every time it opens a physical connection (psycopg2 and psycopg 3 dialects alike), and
the hook opens it as the library's own connects do (one retry after a rejected cached token,
retries while the endpoint wakes from scale-to-zero).

    engine = lakebase.sqlalchemy.create_engine("postgresql+psycopg://host/databricks_postgres", client=client)
    # or, for an engine you build yourself:
    lakebase.sqlalchemy.attach(engine, client)

For an ``AsyncEngine``, attach to ``engine.sync_engine``.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import sqlalchemy
from sqlalchemy import event

from . import _params
from ._client import Client

__all__ = ["attach", "create_engine"]


def attach(engine: Any, client: Optional[Client] = None) -> Any:
    """Register a ``do_connect`` hook on ``engine`` that opens each new DBAPI connection with the
    current password (and ``user`` = the client's Postgres role, ``sslmode=verify-full`` when the URL
    has none), retried like :func:`lakebase.psycopg.connect`. The hook returns the connection, so
    ``do_connect`` handlers registered after it do not run. Returns the hook
    (``sqlalchemy.event.remove(engine, "do_connect", hook)`` detaches it)."""

    def do_connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: "dict[str, Any]") -> Any:
        dbapi = getattr(dialect, "loaded_dbapi", None) or dialect.dbapi

        def open_(params: Dict[str, Any]) -> Any:
            return dialect.connect(*cargs, **params)

        return _params.connect(client, {}, cparams, open_, (dbapi.OperationalError,))

    event.listen(engine, "do_connect", do_connect)
    return do_connect


def create_engine(url: Any, *, client: Optional[Client] = None, **kwargs: Any) -> "sqlalchemy.engine.Engine":
    """``sqlalchemy.create_engine(url, **kwargs)`` with :func:`attach` applied."""
    engine = sqlalchemy.create_engine(url, **kwargs)
    attach(engine, client)
    return engine
