"""Exceptions carrying liblakebase's result code and its detail message (which never holds a secret)."""
from __future__ import annotations

from typing import Dict, Type

OK = 0
INVALID_ARGUMENT = 1
INSUFFICIENT_SIZE = 2
CONFIG_ERROR = 3
AUTH_ERROR = 4
API_ERROR = 5
NETWORK_ERROR = 6
INTERNAL_ERROR = 7


class LakebaseError(Exception):
    """A failed liblakebase call.

    ``str(e)`` is the library's message (auth method, HTTP status, the API's error code and message,
    what to set); ``e.code`` the ``lakebase_result`` value and ``e.code_name`` its name.
    """

    code: int = -1

    def __init__(self, message: str, code: int = -1, code_name: str = "") -> None:
        super().__init__(message)
        self.message = message
        if code != -1:
            self.code = code
        self.code_name = code_name

    def __repr__(self) -> str:
        return "%s(%r, code=%s)" % (type(self).__name__, self.message, self.code_name or self.code)


class InvalidArgumentError(LakebaseError, ValueError):
    """LAKEBASE_INVALID_ARGUMENT: malformed options (unknown key, bad quoting) or a NUL/invalid UTF-8 value."""

    code = INVALID_ARGUMENT


class ConfigError(LakebaseError):
    """LAKEBASE_CONFIG_ERROR: no host, no instance/endpoint, unknown profile, conflicting auth methods."""

    code = CONFIG_ERROR


class AuthError(LakebaseError):
    """LAKEBASE_AUTH_ERROR: the workspace rejected the credentials (HTTP 401/403, OAuth error)."""

    code = AUTH_ERROR


class ApiError(LakebaseError):
    """LAKEBASE_API_ERROR: the workspace API answered with an error (e.g. unknown instance)."""

    code = API_ERROR


class NetworkError(LakebaseError):
    """LAKEBASE_NETWORK_ERROR: the workspace could not be reached in time."""

    code = NETWORK_ERROR


class InternalError(LakebaseError):
    """LAKEBASE_INTERNAL_ERROR (or a result code this binding does not know): a bug, please report it."""

    code = INTERNAL_ERROR


class LibraryNotFoundError(LakebaseError, OSError):
    """liblakebase.so could not be loaded (see LAKEBASE_LIBRARY)."""


_BY_CODE: Dict[int, Type[LakebaseError]] = {
    INVALID_ARGUMENT: InvalidArgumentError,
    CONFIG_ERROR: ConfigError,
    AUTH_ERROR: AuthError,
    API_ERROR: ApiError,
    NETWORK_ERROR: NetworkError,
    INTERNAL_ERROR: InternalError,
}


def error_for(code: int, code_name: str, message: str) -> LakebaseError:
    cls = _BY_CODE.get(code, InternalError)
    return cls(message or code_name, code, code_name)
