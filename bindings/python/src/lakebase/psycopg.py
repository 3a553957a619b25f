"""psycopg 3 integration: a fresh Lakebase password for every new physical connection.

    import lakebase.psycopg
    conn = lakebase.psycopg.connect("host=... dbname=databricks_postgres", client=client)
    pool = lakebase.psycopg.pool("host=... dbname=databricks_postgres", client=client, min_size=1)

or, with your own pool arguments, ``ConnectionPool(conninfo, connection_class=lakebase.psycopg.connection_class(client))``.

Connections open like the library's own libpq connects: a login turned down after the password was
sent (``OperationalError.pgconn.used_password``) is retried once with a newly minted password, and
an endpoint waking from scale-to-zero is retried with backoff (see :class:`lakebase._params.Reconnect`).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Type, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from . import _params
from ._client import Client

__all__ = ["connect", "connection_class", "connect_kwargs", "pool"]

C = TypeVar("C", bound="psycopg.Connection[Any]")


def connect_kwargs(conninfo: str = "", *, client: Optional[Client] = None, **kwargs: Any) -> "dict[str, Any]":
    """``kwargs`` for ``psycopg.connect(conninfo, **kwargs)`` with a fresh password (and the client's
    Postgres role as user, ``sslmode=verify-full`` with the system CA bundle, unless given). Call it
    once per connection. Unlike :func:`connect`, a ``psycopg.connect`` with them does not retry."""
    return _params.inject(client, conninfo_to_dict(conninfo) if conninfo else {}, kwargs)


def connection_class(client: Optional[Client] = None, base: "Optional[Type[C]]" = None) -> "Type[C]":
    """A ``psycopg.Connection`` (or, with ``base=psycopg.AsyncConnection``, async) subclass whose
    ``connect()`` fetches the password from ``client`` (default: the default client) and retries as
    :func:`connect` does. Pass it as ``connection_class=`` to ``psycopg_pool.ConnectionPool``: the
    pool calls ``connect()`` for every new physical connection, so connections opened after the
    first token expired get a new one."""
    b: Any = base if base is not None else psycopg.Connection
    errors = (psycopg.OperationalError,)

    if issubclass(b, psycopg.AsyncConnection):
        class LakebaseAsyncConnection(b):  # type: ignore[misc]
            lakebase_client = client

            @classmethod
            async def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
                parent = super(LakebaseAsyncConnection, cls)
                given = conninfo_to_dict(conninfo) if conninfo else {}

                async def open_(params: Dict[str, Any]) -> Any:
                    return await parent.connect(conninfo, **params)

                return await _params.connect_async(cls.lakebase_client, given, kwargs, open_, errors)

        cls: Any = LakebaseAsyncConnection
    else:
        class LakebaseConnection(b):  # type: ignore[misc]
            lakebase_client = client

            @classmethod
            def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
                parent = super(LakebaseConnection, cls)
                given = conninfo_to_dict(conninfo) if conninfo else {}
                return _params.connect(cls.lakebase_client, given, kwargs,
                                       lambda params: parent.connect(conninfo, **params), errors)

        cls = LakebaseConnection
    cls.__qualname__ = cls.__name__ = "Lakebase" + b.__name__
    return cls  # type: ignore[no-any-return]


def connect(conninfo: str = "", *, client: Optional[Client] = None, **kwargs: Any) -> "psycopg.Connection[Any]":
    """``psycopg.connect()`` with the Lakebase password (see :func:`connect_kwargs`), retried once
    after a rejected cached token and while the endpoint wakes from scale-to-zero."""
    given = conninfo_to_dict(conninfo) if conninfo else {}
    return _params.connect(client, given, kwargs, lambda params: psycopg.Connection.connect(conninfo, **params),
                           (psycopg.OperationalError,))


def pool(conninfo: str = "", *, client: Optional[Client] = None, **pool_kwargs: Any) -> Any:
    """A ``psycopg_pool.ConnectionPool`` whose every new physical connection gets a fresh password.

    ``pool_kwargs`` go to ``ConnectionPool`` (``min_size``, ``max_size``, ``max_lifetime``, ``kwargs``,
    ``open``, ...). ``open`` defaults to True as in psycopg_pool 3.1 (pass ``open=False`` and use
    ``with pool:`` to avoid its warning on 3.2+)."""
    from psycopg_pool import ConnectionPool

    pool_kwargs.setdefault("open", True)
    return ConnectionPool(conninfo, connection_class=connection_class(client), **pool_kwargs)
