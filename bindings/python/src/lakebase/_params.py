"""Connection parameters shared by the driver integrations: a fresh password for every new
physical connection, the client's identity as the default user, TLS required by default."""
from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional

from ._client import Client, resolve


def inject(client: Optional[Client], given: Mapping[str, Any], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Return ``kwargs`` plus ``password`` (always fresh from the library), ``user`` (the client's
    identity, unless a user is given in ``given``/``kwargs`` or ``PGUSER``) and ``sslmode=require``
    (unless given or ``PGSSLMODE`` is set: Lakebase accepts only TLS).

    ``given`` holds the parameters already present in a DSN/conninfo string, parsed by the driver.
    """
    c = resolve(client)
    out = dict(kwargs)
    out["password"] = c.password()
    if not _has("user", given, out) and not os.environ.get("PGUSER"):
        out["user"] = c.identity
    if not _has("sslmode", given, out) and not os.environ.get("PGSSLMODE"):
        out["sslmode"] = "require"
    return out


def _has(key: str, given: Mapping[str, Any], kwargs: Mapping[str, Any]) -> bool:
    return kwargs.get(key) not in (None, "") or given.get(key) not in (None, "")
