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

OK, INVALID_ARGUMENT, INSUFFICIENT_SIZE, CONFIG, AUTH, API, NETWORK, INTERNAL = range(8)
NAMES = ["OK", "INVALID_ARGUMENT", "INSUFFICIENT_SIZE", "CONFIG", "AUTH", "API", "NETWORK", "INTERNAL"]

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
    for name in ("get_password", "identity", "auth_type", "refresh_error"):
        f = getattr(lib, "lakebase_client_" + name)
        f.argtypes = [_P, _c, _sz, ctypes.POINTER(_sz)]
        f.restype = ctypes.c_int
    lib.lakebase_client_refresh.argtypes = [_P]
    lib.lakebase_client_refresh.restype = ctypes.c_int
    lib.lakebase_client_token_expiry.argtypes = [_P, ctypes.POINTER(ctypes.c_int64)]
    lib.lakebase_client_token_expiry.restype = ctypes.c_int
    lib.lakebase_last_error.argtypes = [_c, _sz]
    lib.lakebase_last_error.restype = _sz
    lib.lakebase_version.restype = _c
    return lib


LIB = load()


class LakebaseError(Exception):
    def __init__(self, code, message):
        Exception.__init__(self, "%s: %s" % (NAMES[code] if 0 <= code < len(NAMES) else code, message))
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

    def identity(self):
        return _string(LIB.lakebase_client_identity, self.h)

    def auth_type(self):
        return _string(LIB.lakebase_client_auth_type, self.h)

    def refresh_error(self):
        return _string(LIB.lakebase_client_refresh_error, self.h)

    def refresh(self):
        r = LIB.lakebase_client_refresh(self.h)
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
