"""What the driver integrations share: the connection parameters (a fresh password for every new
physical connection, the client's Postgres role as the default user, verified TLS) and the connect
loop that behaves like the library's own libpq connects (one retry after a rejected cached token,
retries while an endpoint wakes from scale-to-zero)."""
from __future__ import annotations

import asyncio
import os
import re
import time
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Tuple, Type, TypeVar

from . import _ffi
from ._client import Client, resolve
from .errors import InvalidArgumentError, LakebaseError

T = TypeVar("T")

#: The system CA bundles tried for ``sslrootcert`` (Debian/Ubuntu, RHEL/Fedora, Alpine/macOS); when
#: none exists, ``sslrootcert=system`` (libpq >= 16: the system's trusted roots).
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")

#: The sslmode values that may carry the password: TLS is always used.
TLS_MODES = ("require", "verify-ca", "verify-full")

# Server answers after the password that no new password changes: a missing database or role, a
# token for another identity, a server starting or shutting down, no free connection slot, a role
# that may not log in, TLS trouble, an ended connection.
_NOT_THE_PASSWORD = re.compile(
    r"does not exist|did not match the security label|starting up|shutting down|not yet accepting|in recovery|"
    r"too many (connections|clients)|remaining connection slots|no pg_hba\.conf entry|not permitted to log in|"
    r"SSL|terminating connection", re.IGNORECASE)
_FATAL = re.compile(r"FATAL:\s+(.*)", re.DOTALL)
_FATAL_SQLSTATE = re.compile(r"FATAL:\s+([0-9A-Z]{5}):")


def inject(client: Optional[Client], given: Mapping[str, Any], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Return ``kwargs`` plus ``password`` (always fresh from the library), ``user`` (the client's
    Postgres role, unless a user is given in ``given``/``kwargs`` or ``PGUSER``), ``sslmode=verify-full``
    (unless given or ``PGSSLMODE`` is set; ``disable``, ``allow`` and ``prefer`` are refused: the
    password must not travel in clear text) and, for ``verify-ca``/``verify-full``, ``sslrootcert``
    = the system CA bundle (unless given or ``PGSSLROOTCERT`` is set).

    ``given`` holds the parameters already present in a DSN/conninfo string, parsed by the driver.
    Raises :class:`InvalidArgumentError` for a refused sslmode.
    """
    c = resolve(client)
    out = dict(kwargs)
    mode = _get("sslmode", given, out) or os.environ.get("PGSSLMODE") or "verify-full"
    if mode not in TLS_MODES:
        raise InvalidArgumentError(
            "sslmode=%s is not allowed: Lakebase accepts only TLS, and the password must not be sent without it "
            "(use require, verify-ca or verify-full)" % mode, 1, "LAKEBASE_INVALID_ARGUMENT")
    if not _has("sslmode", given, out) and not os.environ.get("PGSSLMODE"):
        out["sslmode"] = mode
    if mode != "require" and not _has("sslrootcert", given, out) and not os.environ.get("PGSSLROOTCERT"):
        out["sslrootcert"] = system_bundle()
    if not _has("user", given, out) and not os.environ.get("PGUSER"):
        out["user"] = c.postgres_role
    out["password"] = c.password()
    return out


def system_bundle() -> str:
    """The first of :data:`CA_BUNDLES` that exists, else ``"system"`` (libpq >= 16)."""
    for f in CA_BUNDLES:
        if os.path.isfile(f):
            return f
    return "system"


class Reconnect:
    """The state of one logical connect: decides after each failed attempt whether to try again,
    with which password and after how long, as the library's own connects do.

    * A login the server turned down after the password was sent, with the password the client
      handed out, is retried once: ``Client.refresh_rejected`` (mints only if that password is still
      cached; concurrent rejections cause one mint), then the client's new password.
    * A transport failure (refused, reset, timed out) or "the database system is starting up"
      (57P03) is retried with the delay ``lakebase_connect_retry_delay`` gives (an endpoint waking
      from scale-to-zero; budget ``LAKEBASE_CONNECT_RETRY``, else ``connect_timeout``, else 10 s).
    * Nothing else: a missing database or role, a token for another identity, TLS failures.
    """

    def __init__(self, client: Client, password: str, connect_timeout: Optional[str]) -> None:
        self.client = client
        self.password = password
        self._connect_timeout = connect_timeout
        self._start = time.monotonic()
        self._failed = 0
        self._renewed = False

    def __repr__(self) -> str:
        return "<lakebase Reconnect failed=%d renewed=%s>" % (self._failed, self._renewed)

    def after(self, error: BaseException) -> Optional[float]:
        """Seconds to wait before the next attempt (0: at once, with :attr:`password` renewed), or
        ``None``: give up and raise ``error``."""
        self._failed += 1
        rejected, password_asked, sqlstate = classify(error)
        message = str(error)
        if rejected:
            if self._renewed:
                return None
            self._renewed = True
            try:
                if not self.client.refresh_rejected(self.password):
                    return None
                self.password = self.client.password()
            except LakebaseError:
                return None  # the driver's error says what the server refused
            return 0.0
        elapsed_ms = int((time.monotonic() - self._start) * 1000)
        try:
            delay = _ffi.connect_retry_delay(sqlstate, message, password_asked, self._failed, elapsed_ms,
                                             self._connect_timeout)
        except LakebaseError:
            return None
        return None if delay is None else delay / 1000.0


def classify(error: BaseException) -> Tuple[bool, bool, Optional[str]]:
    """(the login was rejected with the password, the server asked for the password, SQLSTATE) of
    a failed connect. psycopg 3 tells whether the password was used (``OperationalError.pgconn``);
    for drivers that say nothing (psycopg2) libpq's message decides: a FATAL server answer that is
    not one of those no new password changes."""
    message = str(error)
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if not sqlstate:
        m = _FATAL_SQLSTATE.search(message)
        sqlstate = m.group(1) if m else None
    pgconn = getattr(error, "pgconn", None)
    if pgconn is not None and hasattr(pgconn, "used_password"):
        asked = bool(pgconn.used_password)
        rejected = asked and (sqlstate is None or sqlstate.startswith("28")) and not _NOT_THE_PASSWORD.search(message)
        return rejected, asked, sqlstate
    m = _FATAL.search(message)
    rejected = m is not None and not _NOT_THE_PASSWORD.search(m.group(1))
    return rejected, rejected, sqlstate


def connect_timeout(given: Mapping[str, Any], params: Mapping[str, Any]) -> Optional[str]:
    """The connection's ``connect_timeout`` (as libpq reads it: given, else ``PGCONNECT_TIMEOUT``)."""
    v = _get("connect_timeout", given, params) or os.environ.get("PGCONNECT_TIMEOUT")
    return None if v in (None, "") else str(v)


def connect(client: Optional[Client], given: Mapping[str, Any], kwargs: Dict[str, Any],
            open_: Callable[[Dict[str, Any]], T], errors: Tuple[Type[BaseException], ...]) -> T:
    """Open a connection with ``open_(params)`` (``params`` = :func:`inject`'s), retried as
    :class:`Reconnect` says on the driver's ``errors``; the last error is raised as the driver's."""
    c = resolve(client)
    params = inject(c, given, kwargs)
    state = Reconnect(c, params["password"], connect_timeout(given, params))
    while True:
        try:
            return open_(params)
        except errors as e:
            delay = state.after(e)
            if delay is None:
                raise
        params["password"] = state.password
        if delay > 0:
            time.sleep(delay)


async def connect_async(client: Optional[Client], given: Mapping[str, Any], kwargs: Dict[str, Any],
                        open_: Callable[[Dict[str, Any]], Awaitable[T]],
                        errors: Tuple[Type[BaseException], ...]) -> T:
    """:func:`connect` for an asyncio driver: waits with ``asyncio.sleep``. (The password and the
    one renewal after a rejection are fetched synchronously: a memory read on a cache hit.)"""
    c = resolve(client)
    params = inject(c, given, kwargs)
    state = Reconnect(c, params["password"], connect_timeout(given, params))
    while True:
        try:
            return await open_(params)
        except errors as e:
            delay = state.after(e)
            if delay is None:
                raise
        params["password"] = state.password
        if delay > 0:
            await asyncio.sleep(delay)


def _get(key: str, given: Mapping[str, Any], kwargs: Mapping[str, Any]) -> Optional[str]:
    for src in (kwargs, given):
        v = src.get(key)
        if v not in (None, ""):
            return str(v)
    return None


def _has(key: str, given: Mapping[str, Any], kwargs: Mapping[str, Any]) -> bool:
    return _get(key, given, kwargs) is not None
