"""psycopg2 integration: ``lakebase.psycopg2.connect(dsn, client=client, **kwargs)``.

Every call fetches the current password from the library, so call it for every new connection
(psycopg2's pools call ``psycopg2.connect``; see the README for a pool recipe). psycopg2 does not
say whether the server asked for the password, so a rejected login is recognised by libpq's
message (a FATAL server answer other than a missing database/role, a token for another identity,
a server starting up, ...) and retried once with a newly minted password.
"""
from __future__ import annotations

from typing import Any, Optional

import psycopg2  # type: ignore[import-untyped, unused-ignore]
import psycopg2.extensions  # type: ignore[import-untyped, unused-ignore]

from . import _params
from ._client import Client

__all__ = ["connect", "connect_kwargs"]


def connect_kwargs(dsn: Optional[str] = None, *, client: Optional[Client] = None, **kwargs: Any) -> "dict[str, Any]":
    """``kwargs`` for ``psycopg2.connect(dsn, **kwargs)`` with a fresh password (and the client's
    Postgres role as user, ``sslmode=verify-full`` with the system CA bundle, unless given)."""
    return _params.inject(client, psycopg2.extensions.parse_dsn(dsn) if dsn else {}, kwargs)


def connect(dsn: Optional[str] = None, *, client: Optional[Client] = None, **kwargs: Any) -> Any:
    """``psycopg2.connect()`` with the Lakebase password, retried once after a rejected cached token
    and while the endpoint wakes from scale-to-zero. ``connection_factory``/``cursor_factory`` and
    every libpq keyword pass through."""
    given = psycopg2.extensions.parse_dsn(dsn) if dsn else {}
    return _params.connect(client, given, kwargs, lambda params: psycopg2.connect(dsn, **params),
                           (psycopg2.OperationalError,))
