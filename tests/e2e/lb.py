"""Minimal ctypes access to liblakebase for the end-to-end tests.

Each test runs its scenario in a fresh Python subprocess (see conftest.run_py), so every scenario
starts with an empty process-wide cache and default client, as a real program does.
"""
import ctypes
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB_PATH = os.environ.get("LAKEBASE_LIBRARY") or os.path.join(ROOT, "target", "release", "liblakebase.so")


_c = ctypes.c_char_p
_sz = ctypes.c_size_t
_P = ctypes.c_void_p


def load(path=LIB_PATH):
    lib = ctypes.CDLL(path)
    lib.lakebase_get_password.argtypes = [_c, _sz, ctypes.POINTER(_sz)]
    lib.lakebase_get_password.restype = ctypes.c_int
    lib.lakebase_client_new.argtypes = [_c, ctypes.POINTER(_P)]
    lib.lakebase_client_new.restype = ctypes.c_int
    lib.lakebase_client_free.argtypes = [_P]
    lib.lakebase_client_free.restype = None
    lib.lakebase_default_client.argtypes = [ctypes.POINTER(_P)]
    lib.lakebase_default_client.restype = ctypes.c_int
    for name in ("get_password", "try_get_password", "identity", "postgres_role", "auth_type", "refresh_error"):
        f = getattr(lib, "lakebase_client_" + name)
        f.argtypes = [_P, _c, _sz, ctypes.POINTER(_sz)]
        f.restype = ctypes.c_int
    lib.lakebase_client_refresh.argtypes = [_P]
    lib.lakebase_client_refresh.restype = ctypes.c_int
    lib.lakebase_client_refresh_rejected.argtypes = [_P, _c]
    lib.lakebase_client_refresh_rejected.restype = ctypes.c_int
    lib.lakebase_client_token_expiry.argtypes = [_P, ctypes.POINTER(ctypes.c_int64)]
    lib.lakebase_client_token_expiry.restype = ctypes.c_int
    lib.lakebase_last_error.argtypes = [_c, _sz]
    lib.lakebase_last_error.restype = _sz
    lib.lakebase_version.restype = _c
    return lib


LIB = load()


def _result_codes():
    """The result codes, read from the library itself (lakebase_result_name): their one source."""
    LIB.lakebase_result_name.argtypes = [ctypes.c_int]
    LIB.lakebase_result_name.restype = _c
    codes = {}
    for value in range(64):
        name = LIB.lakebase_result_name(value).decode()
        if name != "LAKEBASE_UNKNOWN_RESULT":
            codes[name[len("LAKEBASE_"):].replace("_ERROR", "")] = value
    return codes


CODES = _result_codes()
OK, INVALID_ARGUMENT, INSUFFICIENT_SIZE = CODES["OK"], CODES["INVALID_ARGUMENT"], CODES["INSUFFICIENT_SIZE"]
CONFIG, AUTH, API, NETWORK, INTERNAL = CODES["CONFIG"], CODES["AUTH"], CODES["API"], CODES["NETWORK"], CODES["INTERNAL"]
WOULD_BLOCK = CODES["WOULD_BLOCK"]
NAMES = {v: k for k, v in CODES.items()}


class LakebaseError(Exception):
    def __init__(self, code, message):
        Exception.__init__(self, "%s: %s" % (NAMES.get(code, code), message))
        self.code = code
        self.message = message


def last_error():
    n = LIB.lakebase_last_error(None, 0)
    buf = ctypes.create_string_buffer(n + 1)
    LIB.lakebase_last_error(buf, n + 1)
    return buf.value.decode()


def _string(fn, *args):
    """Call a (buf, buf_len, out_len) function the way C users should: size, then copy."""
    n = _sz(0)
    r = fn(*(args + (None, 0, ctypes.byref(n))))
    if r == OK:
        return ""
    if r != INSUFFICIENT_SIZE:
        raise LakebaseError(r, last_error())
    buf = ctypes.create_string_buffer(n.value + 1)
    r = fn(*(args + (buf, n.value + 1, ctypes.byref(n))))
    if r != OK:
        raise LakebaseError(r, last_error())
    assert len(buf.value) == n.value
    return buf.value.decode()


def get_password():
    return _string(LIB.lakebase_get_password)


class Client(object):
    def __init__(self, options=""):
        h = _P()
        r = LIB.lakebase_client_new(options.encode() if isinstance(options, str) else options, ctypes.byref(h))
        if r != OK:
            raise LakebaseError(r, last_error())
        self.h = h

    def password(self):
        return _string(LIB.lakebase_client_get_password, self.h)

    def try_password(self):
        """The non-blocking read: the password, or None (LAKEBASE_WOULD_BLOCK)."""
        buf = ctypes.create_string_buffer(4096)
        n = _sz(0)
        r = LIB.lakebase_client_try_get_password(self.h, buf, 4096, ctypes.byref(n))
        if r == WOULD_BLOCK:
            return None
        if r != OK:
            raise LakebaseError(r, last_error())
        return buf.value.decode()

    def identity(self):
        return _string(LIB.lakebase_client_identity, self.h)

    def postgres_role(self):
        return _string(LIB.lakebase_client_postgres_role, self.h)

    def auth_type(self):
        return _string(LIB.lakebase_client_auth_type, self.h)

    def refresh_error(self):
        return _string(LIB.lakebase_client_refresh_error, self.h)

    def refresh(self):
        r = LIB.lakebase_client_refresh(self.h)
        if r != OK:
            raise LakebaseError(r, last_error())

    def refresh_rejected(self, password):
        r = LIB.lakebase_client_refresh_rejected(self.h, password.encode())
        if r != OK:
            raise LakebaseError(r, last_error())

    def expiry(self):
        v = ctypes.c_int64(-1)
        r = LIB.lakebase_client_token_expiry(self.h, ctypes.byref(v))
        if r != OK:
            raise LakebaseError(r, last_error())
        return v.value

    def free(self):
        LIB.lakebase_client_free(self.h)
        self.h = None


def emit(obj):
    """Print the scenario's result as the last line of stdout."""
    sys.stdout.write("\n" + json.dumps(obj) + "\n")
    sys.stdout.flush()
