"""Clients: thin wrappers over lakebase_client handles. All caching and refreshing happens in the library."""
from __future__ import annotations

import ctypes
import hmac
import os
import re
import threading
from typing import Any, Optional, Union

from . import _ffi
from .errors import InvalidArgumentError

OptionValue = Union[str, int, float, bool, "os.PathLike[str]", None]

_KEY = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")


def quote_value(value: str) -> str:
    """Quote one value for a libpq-style options string: ``'...'`` with ``\\`` and ``'`` escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def options_string(**options: OptionValue) -> str:
    """Build the options string liblakebase parses (``key='value' ...``); ``None`` values are left out.

    Keys are not checked against a list here: the library knows them and rejects unknown ones.
    """
    parts = []
    for key, value in options.items():
        if value is None:
            continue
        if not _KEY.match(key):
            raise InvalidArgumentError("invalid option name %r" % key, 1, "LAKEBASE_INVALID_ARGUMENT")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        elif isinstance(value, os.PathLike):
            text = os.fspath(value)
        else:
            raise TypeError("option %s: expected str, int, float, bool or path, got %s" % (key, type(value).__name__))
        if "\0" in text:
            raise InvalidArgumentError("option %s contains a NUL character" % key, 1, "LAKEBASE_INVALID_ARGUMENT")
        parts.append("%s=%s" % (key, quote_value(text)))
    return " ".join(parts)


class Client:
    """A Lakebase credential client: ``Client(host=..., token=..., instance=...)``.

    Keyword arguments are the library's option keys (``host``, ``token``, ``client_id``,
    ``client_secret``, ``profile``, ``config_file``, ``auth_type``, ``instance``, ``endpoint``,
    ``ca_file``, ``http_timeout_seconds``, ...); what is not given comes from ``DATABRICKS_*`` /
    ``LAKEBASE_*`` variables and ``~/.databrickscfg``, as in the Databricks SDKs. Creating a client
    does no network I/O. Clients with the same workspace, credentials and target share one cached
    token inside the library, so creating several is cheap.

    Thread safety: one client may be used from any number of threads; ``close()`` must not race
    with other calls on it.
    """

    def __init__(self, **options: OptionValue) -> None:
        self._handle: Optional[int] = None
        self._borrowed = False
        self._close_lock = threading.Lock()
        handle = ctypes.c_void_p()
        conninfo = options_string(**options)
        _ffi.check(_ffi.lib().lakebase_client_new(conninfo.encode("utf-8"), ctypes.byref(handle)))
        self._handle = handle.value

    @classmethod
    def _borrow(cls, handle: int) -> "Client":
        self = cls.__new__(cls)
        self._handle = handle
        self._borrowed = True
        self._close_lock = threading.Lock()
        return self

    def _h(self) -> int:
        h = self._handle
        if h is None:
            raise InvalidArgumentError("this lakebase.Client is closed", 1, "LAKEBASE_INVALID_ARGUMENT")
        return h

    def password(self) -> str:
        """The current Lakebase password (an OAuth token). A cache hit is a memory read in the library;
        a miss mints a token (network). Fetch it for every new connection; do not keep it."""
        return _ffi.get_string(_ffi.lib().lakebase_client_get_password, self._h())

    def refresh(self) -> None:
        """Discard the cached token and mint a new one now. After a rejected login prefer
        :meth:`refresh_rejected`, which mints only once however many connections report it."""
        _ffi.check(_ffi.lib().lakebase_client_refresh(self._h()))

    def refresh_rejected(self, rejected: str) -> bool:
        """The server turned down a login with ``rejected`` (a password this client handed out):
        mint a new one if it is still the cached password (N concurrent reports cause one mint).
        Returns whether the client's password is now another one, i.e. worth one more login."""
        raw = rejected.encode("utf-8")
        buf = ctypes.create_string_buffer(raw, len(raw) + 1)
        try:
            _ffi.check(_ffi.lib().lakebase_client_refresh_rejected(self._h(), buf))
        finally:
            ctypes.memset(buf, 0, len(buf))
        return not hmac.compare_digest(raw, self.password().encode("utf-8"))

    @property
    def expiry(self) -> Optional[int]:
        """Expiry of the cached token in Unix seconds, or ``None`` when none is cached. No network I/O."""
        v = ctypes.c_int64(0)
        _ffi.check(_ffi.lib().lakebase_client_token_expiry(self._h(), ctypes.byref(v)))
        return v.value or None

    @property
    def identity(self) -> str:
        """The workspace user name the client authenticates as, which is its Postgres role
        (one API call the first time, then cached by the library)."""
        return _ffi.get_string(_ffi.lib().lakebase_client_identity, self._h())

    @property
    def postgres_role(self) -> str:
        """The Postgres role to log in as: the group's role when the client acts for a group
        (``group_name`` / ``group_id``), else :attr:`identity`. The driver integrations use it as the
        default user. Cached by the library after the first lookup."""
        return _ffi.get_string(_ffi.lib().lakebase_client_postgres_role, self._h())

    @property
    def postgres_host(self) -> str:
        """The Postgres host of the configured instance (``read_write_dns``) or endpoint. Cached."""
        return _ffi.get_string(_ffi.lib().lakebase_client_postgres_host, self._h())

    @property
    def auth_type(self) -> str:
        """The auth method in use: ``pat``, ``oauth-m2m``, ... No network I/O."""
        return _ffi.get_string(_ffi.lib().lakebase_client_auth_type, self._h())

    @property
    def refresh_error(self) -> Optional[str]:
        """The last token-refresh error not yet followed by a success, or ``None``."""
        return _ffi.get_string(_ffi.lib().lakebase_client_refresh_error, self._h()) or None

    def close(self) -> None:
        """Release the handle (a no-op for the default client and when already closed)."""
        if self._borrowed:
            return
        with self._close_lock:
            h, self._handle = self._handle, None
        if h is not None:
            _ffi.lib().lakebase_client_free(h)

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_handle", None) is not None and not self._borrowed:
                self.close()
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self) -> str:
        state = "closed" if self._handle is None else ("default" if self._borrowed else "open")
        return "<lakebase.Client %s>" % state


_default: Optional[Client] = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The process-wide default client (environment + ``~/.databrickscfg``), the one
    :func:`get_password` uses. Borrowed: ``close()`` on it does nothing. A configuration error is not
    remembered by the library, so fixing the environment and calling again works."""
    global _default
    if _default is not None:
        return _default
    with _default_lock:
        if _default is None:
            handle = ctypes.c_void_p()
            _ffi.check(_ffi.lib().lakebase_default_client(ctypes.byref(handle)))
            assert handle.value is not None
            _default = Client._borrow(handle.value)
        return _default


def get_password() -> str:
    """The default client's current password (configured from ``DATABRICKS_*``, ``LAKEBASE_INSTANCE``
    or ``LAKEBASE_ENDPOINT`` and ``~/.databrickscfg``)."""
    return _ffi.get_string(_ffi.lib().lakebase_get_password)


def version() -> str:
    """The loaded liblakebase's version, e.g. ``"0.1.0"``."""
    v: bytes = _ffi.lib().lakebase_version()
    return v.decode()


ClientLike = Optional[Client]


def resolve(client: ClientLike) -> Client:
    return client if client is not None else default_client()
