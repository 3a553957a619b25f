"""psycopg2 integration: ``lakebase.psycopg2.connect(dsn, client=client, **kwargs)``.

Every call fetches the current password from the library, so call it for every new connection
(psycopg2's pools call ``psycopg2.connect``; see the README for a pool recipe).
"""
from __future__ import annotations

from typing import Any, Optional

import psycopg2  # type: ignore[import-untyped, unused-ignore]
import psycopg2.extensions  # type: ignore[import-untyped, unused-ignore]

from ._client import Client
from ._params import inject

__all__ = ["connect", "connect_kwargs"]


def connect_kwargs(dsn: Optional[str] = None, *, client: Optional[Client] = None, **kwargs: Any) -> "dict[str, Any]":
    """``kwargs`` for ``psycopg2.connect(dsn, **kwargs)`` with a fresh password (and the client's
    identity as user, ``sslmode=require``, unless given)."""
    return inject(client, psycopg2.extensions.parse_dsn(dsn) if dsn else {}, kwargs)


def connect(dsn: Optional[str] = None, *, client: Optional[Client] = None, **kwargs: Any) -> Any:
    """``psycopg2.connect()`` with the Lakebase password. ``connection_factory``/``cursor_factory``
    and every libpq keyword pass through."""
    return psycopg2.connect(dsn, **connect_kwargs(dsn, client=client, **kwargs))
