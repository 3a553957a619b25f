"""Rotating Databricks Lakebase OAuth passwords for Python Postgres drivers.

A thin ctypes binding of liblakebase: the library caches and refreshes tokens and resolves
configuration exactly like the Databricks SDKs; this package only calls it.

    import lakebase
    password = lakebase.get_password()                 # default client: DATABRICKS_* / LAKEBASE_* env, ~/.databrickscfg
    with lakebase.Client(profile="prod", instance="my-db") as client:
        client.password(), client.expiry, client.identity

Driver integrations: :mod:`lakebase.psycopg` (psycopg 3 + psycopg_pool), :mod:`lakebase.psycopg2`,
:mod:`lakebase.sqlalchemy`.
"""
from ._client import Client, default_client, get_password, options_string, quote_value, version
from ._ffi import library_path
from .errors import (
    ApiError,
    AuthError,
    ConfigError,
    InternalError,
    InvalidArgumentError,
    LakebaseError,
    LibraryNotFoundError,
    NetworkError,
)

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthError",
    "Client",
    "ConfigError",
    "InternalError",
    "InvalidArgumentError",
    "LakebaseError",
    "LibraryNotFoundError",
    "NetworkError",
    "default_client",
    "get_password",
    "library_path",
    "options_string",
    "quote_value",
    "version",
]
