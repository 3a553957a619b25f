"""SQLAlchemy integration through the ``do_connect`` event: the pool asks the library for the
password every time it opens a physical connection (psycopg2 and psycopg 3 dialects alike).

    engine = lakebase.sqlalchemy.create_engine("postgresql+psycopg://host/databricks_postgres", client=client)
    # or, for an engine you build yourself:
    lakebase.sqlalchemy.attach(engine, client)

For an ``AsyncEngine``, attach to ``engine.sync_engine``.
"""
from __future__ import annotations

from typing import Any, Optional

import sqlalchemy
from sqlalchemy import event

from ._client import Client
from ._params import inject

__all__ = ["attach", "create_engine"]


def attach(engine: Any, client: Optional[Client] = None) -> Any:
    """Register a ``do_connect`` hook on ``engine`` that sets ``password`` (and ``user`` from the
    client's identity and ``sslmode=require`` when the URL has none) for each new connection.
    Returns the hook (``sqlalchemy.event.remove(engine, "do_connect", hook)`` detaches it)."""

    def do_connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: "dict[str, Any]") -> None:
        cparams.update(inject(client, {}, cparams))

    event.listen(engine, "do_connect", do_connect)
    return do_connect


def create_engine(url: Any, *, client: Optional[Client] = None, **kwargs: Any) -> "sqlalchemy.engine.Engine":
    """``sqlalchemy.create_engine(url, **kwargs)`` with :func:`attach` applied."""
    engine = sqlalchemy.create_engine(url, **kwargs)
    attach(engine, client)
    return engine
