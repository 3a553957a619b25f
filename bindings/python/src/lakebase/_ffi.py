"""Loading liblakebase and declaring the C prototypes (include/lakebase.h).

Nothing here caches passwords or reads configuration: every call goes to the library.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from typing import Callable, List, Optional

from .errors import INSUFFICIENT_SIZE, OK, LibraryNotFoundError, error_for

_P = ctypes.c_void_p
_SZ = ctypes.c_size_t
_PSZ = ctypes.POINTER(ctypes.c_size_t)
_BUF = ctypes.c_char_p  # also accepts a ctypes char array or None

#: The SONAME major version this binding speaks.
ABI_MAJOR = 0

# Functions of the form f(client, buf, buf_len, out_len).
_STRING_GETTERS = ("get_password", "identity", "postgres_role", "postgres_host", "auth_type", "refresh_error")

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_lib_path: Optional[str] = None


def _candidates() -> List[str]:
    """Where to look, in order: $LAKEBASE_LIBRARY, a copy shipped in this package, the system loader."""
    out: List[str] = []
    env = os.environ.get("LAKEBASE_LIBRARY")
    if env:
        return [env]  # explicit: no fallback that could silently load another build
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("liblakebase.so.0", "liblakebase.so"):
        p = os.path.join(here, name)
        if os.path.exists(p):
            out.append(p)
    found = ctypes.util.find_library("lakebase")
    if found:
        out.append(found)
    out.append("liblakebase.so.0")  # LD_LIBRARY_PATH, rpath, ld.so.cache
    return out


def _declare(lib: ctypes.CDLL) -> None:
    lib.lakebase_get_password.argtypes = [_BUF, _SZ, _PSZ]
    lib.lakebase_get_password.restype = ctypes.c_int
    lib.lakebase_client_new.argtypes = [ctypes.c_char_p, ctypes.POINTER(_P)]
    lib.lakebase_client_new.restype = ctypes.c_int
    lib.lakebase_client_free.argtypes = [_P]
    lib.lakebase_client_free.restype = None
    lib.lakebase_default_client.argtypes = [ctypes.POINTER(_P)]
    lib.lakebase_default_client.restype = ctypes.c_int
    for name in _STRING_GETTERS:
        f = getattr(lib, "lakebase_client_" + name)
        f.argtypes = [_P, _BUF, _SZ, _PSZ]
        f.restype = ctypes.c_int
    lib.lakebase_client_refresh.argtypes = [_P]
    lib.lakebase_client_refresh.restype = ctypes.c_int
    lib.lakebase_client_refresh_rejected.argtypes = [_P, ctypes.c_char_p]
    lib.lakebase_client_refresh_rejected.restype = ctypes.c_int
    lib.lakebase_connect_retry_delay.argtypes = [
        ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_int64, ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int64)]
    lib.lakebase_connect_retry_delay.restype = ctypes.c_int
    lib.lakebase_client_token_expiry.argtypes = [_P, ctypes.POINTER(ctypes.c_int64)]
    lib.lakebase_client_token_expiry.restype = ctypes.c_int
    lib.lakebase_last_error.argtypes = [_BUF, _SZ]
    lib.lakebase_last_error.restype = _SZ
    lib.lakebase_result_name.argtypes = [ctypes.c_int]
    lib.lakebase_result_name.restype = ctypes.c_char_p
    lib.lakebase_version.argtypes = []
    lib.lakebase_version.restype = ctypes.c_char_p


def lib() -> ctypes.CDLL:
    """The loaded library (loaded on first use, so importing lakebase never fails)."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for cand in _candidates():
            try:
                loaded = ctypes.CDLL(cand)
            except OSError as e:
                tried.append("%s (%s)" % (cand, e))
                continue
            if not hasattr(loaded, "lakebase_client_new"):
                tried.append("%s (not liblakebase)" % cand)
                continue
            _declare(loaded)
            version = bytes(loaded.lakebase_version()).decode()
            if version.split(".")[0] != str(ABI_MAJOR):
                tried.append("%s (version %s, this binding needs %d.x)" % (cand, version, ABI_MAJOR))
                continue
            _lib, _lib_path = loaded, cand
            return loaded
        raise LibraryNotFoundError(
            "liblakebase not found; set LAKEBASE_LIBRARY to the path of liblakebase.so, install it "
            "(make install) or put it on LD_LIBRARY_PATH. Tried: " + "; ".join(tried))


def library_path() -> str:
    """The file or name liblakebase was loaded from."""
    lib()
    assert _lib_path is not None
    return _lib_path


def last_error() -> str:
    """This thread's detail message for its last failed call (ctypes calls run on the caller's thread)."""
    L = lib()
    n = L.lakebase_last_error(None, 0)
    buf = ctypes.create_string_buffer(n + 1)
    L.lakebase_last_error(buf, n + 1)
    return buf.value.decode("utf-8", "replace")


def result_name(code: int) -> str:
    name: bytes = lib().lakebase_result_name(code)
    return name.decode()


def check(code: int) -> None:
    if code != OK:
        raise error_for(code, result_name(code), last_error())


def connect_retry_delay(sqlstate: Optional[str], message: Optional[str], password_asked: bool,
                        failed_attempts: int, elapsed_ms: int, connect_timeout: Optional[str]) -> Optional[int]:
    """``lakebase_connect_retry_delay``: milliseconds to wait before repeating a failed connect, or
    ``None`` to give up (the library's policy for endpoints waking from scale-to-zero)."""
    out = ctypes.c_int64(-1)

    def enc(s: Optional[str]) -> Optional[bytes]:
        return None if s is None else s.encode("utf-8", "replace")

    check(lib().lakebase_connect_retry_delay(enc(sqlstate), enc(message), 1 if password_asked else 0,
                                             max(1, failed_attempts), max(0, elapsed_ms), enc(connect_timeout),
                                             ctypes.byref(out)))
    return None if out.value < 0 else out.value


# A first guess that fits a Lakebase token (~1 KB) so a cache hit is one call; longer values are
# sized with the INSUFFICIENT_SIZE protocol.
_FIRST_GUESS = 2048


def get_string(fn: Callable[..., int], *args: object) -> str:
    """Call a (buf, buf_len, out_len) function: copy into a ctypes buffer, decode, wipe the buffer."""
    size = _FIRST_GUESS
    n = _SZ(0)
    for _ in range(8):  # the value may grow between calls (a new token); bounded
        buf = ctypes.create_string_buffer(size)
        try:
            r = fn(*(args + (buf, size, ctypes.byref(n))))
            if r == OK:
                return buf.raw[: n.value].decode("utf-8")
            if r != INSUFFICIENT_SIZE:
                check(r)
            size = n.value + 1
        finally:
            ctypes.memset(buf, 0, len(buf))
    raise error_for(7, "LAKEBASE_INTERNAL_ERROR", "value kept growing while it was being copied")
