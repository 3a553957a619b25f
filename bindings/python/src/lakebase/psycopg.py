"""psycopg 3 integration: a fresh Lakebase password for every new physical connection.

    import lakebase.psycopg
    conn = lakebase.psycopg.connect("host=... dbname=databricks_postgres", client=client)
    pool = lakebase.psycopg.pool("host=... dbname=databricks_postgres", client=client, min_size=1)

or, with your own pool arguments, ``ConnectionPool(conninfo, connection_class=lakebase.psycopg.connection_class(client))``.
"""
from __future__ import annotations

from typing import Any, Optional, Type, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ._client import Client
from ._params import inject

__all__ = ["connect", "connection_class", "connect_kwargs", "pool"]

C = TypeVar("C", bound="psycopg.Connection[Any]")


def connect_kwargs(conninfo: str = "", *, client: Optional[Client] = None, **kwargs: Any) -> "dict[str, Any]":
    """``kwargs`` for ``psycopg.connect(conninfo, **kwargs)`` with a fresh password (and the client's
    identity as user, ``sslmode=require``, unless given). Call it once per connection."""
    return inject(client, conninfo_to_dict(conninfo) if conninfo else {}, kwargs)


def connection_class(client: Optional[Client] = None, base: "Optional[Type[C]]" = None) -> "Type[C]":
    """A ``psycopg.Connection`` subclass whose ``connect()`` fetches the password from ``client``
    (default: the default client). Pass it as ``connection_class=`` to ``psycopg_pool.ConnectionPool``:
    the pool calls ``connect()`` for every new physical connection, so connections opened after the
    first token expired get a new one."""
    b: Any = base if base is not None else psycopg.Connection

    class LakebaseConnection(b):  # type: ignore[misc]
        lakebase_client = client

        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
            kwargs = connect_kwargs(conninfo, client=cls.lakebase_client, **kwargs)
            return super().connect(conninfo, **kwargs)

    LakebaseConnection.__qualname__ = LakebaseConnection.__name__ = "Lakebase" + b.__name__
    return LakebaseConnection


def connect(conninfo: str = "", *, client: Optional[Client] = None, **kwargs: Any) -> "psycopg.Connection[Any]":
    """``psycopg.connect()`` with the Lakebase password (see :func:`connect_kwargs`)."""
    return psycopg.Connection.connect(conninfo, **connect_kwargs(conninfo, client=client, **kwargs))


def pool(conninfo: str = "", *, client: Optional[Client] = None, **pool_kwargs: Any) -> Any:
    """A ``psycopg_pool.ConnectionPool`` whose every new physical connection gets a fresh password.

    ``pool_kwargs`` go to ``ConnectionPool`` (``min_size``, ``max_size``, ``max_lifetime``, ``kwargs``,
    ``open``, ...). ``open`` defaults to True as in psycopg_pool 3.1 (pass ``open=False`` and use
    ``with pool:`` to avoid its warning on 3.2+)."""
    from psycopg_pool import ConnectionPool

    pool_kwargs.setdefault("open", True)
    return ConnectionPool(conninfo, connection_class=connection_class(client), **pool_kwargs)
