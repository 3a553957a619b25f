#!/usr/bin/env python3
"""A fake Databricks workspace for testing Lakebase credential clients.

Pure Python 3 standard library. Usable as a library::

    from fake_workspace import FakeWorkspace
    with FakeWorkspace() as ws:
        print(ws.url, ws.default_pat)

or as a program::

    python3 tests/rig/fake_workspace.py --port 0 --state-file /tmp/fake.json

It serves the public API shapes the official SDKs use (see README.md in this
directory for the full list, the control API under /_fake/ and the error
bodies), mints JWT-shaped Lakebase passwords bound to the caller's identity,
and can check a password for the PAM helper (pam_check.py) that the rig's
PostgreSQL uses.
"""

import argparse
import base64
import binascii
import copy
import datetime
import hashlib
import http.server
import json
import os
import re
import secrets
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import urllib.parse
import uuid

__all__ = ["FakeWorkspace", "default_config", "main"]

OAUTH_SCOPE = "all-apis"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SCIM_USER_SCHEMAS = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:extension:workspace:2.0:User",
]
ENDPOINT_RE = re.compile(r"^projects/([^/]+)/branches/([^/]+)/endpoints/([^/]+)$")

DEFAULT_SETTINGS = {
    # Lifetime of minted Lakebase passwords when the request does not ask for one.
    "token_lifetime_seconds": 3600,
    # Lifetime (expires_in) of OAuth access tokens from /oidc/v1/token.
    "oauth_token_lifetime_seconds": 3600,
    # GET /.well-known/databricks-config answers 200 (True) or 404 (False).
    "host_metadata_enabled": True,
    # GET /oidc/.well-known/oauth-authorization-server answers 200 or 404.
    "oidc_discovery_enabled": True,
    # Seconds added to the real clock for every expiry decision and timestamp.
    "clock_offset_seconds": 0,
    # Fractional seconds in expiration_time / expire_time: "cycle" rotates
    # 0, 3, 6, 9 digits per minted token; or one of 0, 3, 6, 9.
    "fractional_seconds": "cycle",
    # /_fake/check accepts a password that is a prefix of a minted token (pam_exec
    # may truncate) only when it is at least this long.
    "min_prefix_bytes": 64,
    # /oidc/v1/token requires the all-apis scope.
    "require_scope": True,
    # Reject API calls whose X-Databricks-Workspace-Id header names another workspace.
    "strict_workspace_id_header": False,
    # Smallest / largest length of a minted Lakebase password.
    "lakebase_token_min_bytes": 820,
    "lakebase_token_max_bytes": 990,
    # Keep this many requests for GET /_fake/requests.
    "request_log_size": 1000,
    # GET /aad/auth redirects to https://login.microsoftonline.com/<this>/oauth2/authorize
    # (Azure tenant discovery); None answers 404 as a non-Azure workspace does.
    "azure_tenant_id": None,
    # How the rig's PostgreSQL words a failed login (README "Rejection texts"): "pam" (PostgreSQL's
    # own PAM text, 28000), "lakebase" (the Lakebase text that fits the reason), "decode",
    # "password", "identity" (always that Lakebase text) or "custom" (pg_reject_text).
    "pg_reject_mode": "pam",
    # SQLSTATE of the Lakebase-style texts (None: 28P01).
    "pg_reject_sqlstate": None,
    # "custom" mode template; {role} = the login role, {identity} = the token's identity.
    "pg_reject_text": None,
    # {identity} when the token is not one the fake minted (None: the role).
    "pg_reject_identity": None,
    # POST /api/2.0/database/credentials without request_id answers 400 (the docs: "The request
    # fails when it is omitted").
    "require_request_id": True,
    # Unified host: account-level OIDC in host metadata, and every /api/ call needs
    # X-Databricks-Workspace-Id naming this workspace.
    "unified_host": False,
    # In unified mode, whether host metadata includes workspace_id.
    "unified_metadata_workspace_id": True,
    # Every workspace request answers 302 to /login.html?error=private-link-validation-error.
    "private_link_redirect": False,
    # GET /api/2.0/preview/scim/v2/Me with a group-assumed token: "caller" (the principal that
    # authenticated) or "group" (a user-shaped view of the group).
    "me_for_assumed_group": "caller",
    # Hostile workspace (issue 13): error bodies echo the request (headers incl. Authorization,
    # the body) as a misbehaving proxy would.
    "hostile_echo": False,
    # Mangle minted tokens on the wire (one of TOKEN_MANGLES); the fake still knows the clean one.
    "lakebase_token_mangle": None,
    "oauth_token_mangle": None,
    # Send this JSON value verbatim as expiration_time / expire_time (e.g. "9999-12-31T23:59:59Z").
    "lakebase_expiry_override": None,
    # Send this JSON value verbatim as expires_in of /oidc/v1/token (e.g. 1e300).
    "oauth_expires_in_override": None,
}

# Rejection texts of the real Lakebase service (reported in the field and in the docs).
REJECT_DECODE = 'Failed to decode token for role "{role}"'
REJECT_PASSWORD = 'password authentication failed for user "{role}"'
REJECT_IDENTITY = ('A valid oauth token was supplied but the token\'s identity "{identity}" did not match '
                   'the security label configured for role "{role}"')
REJECT_MODES = ("pam", "lakebase", "decode", "password", "identity", "custom")

# Ways to spoil a token on the wire (lakebase_token_mangle / oauth_token_mangle).
TOKEN_MANGLES = {
    "trailing_newline": lambda t: t + "\n",
    "trailing_crlf": lambda t: t + "\r\n",
    "leading_space": lambda t: " " + t,
    "inner_space": lambda t: t[:40] + " " + t[40:],
    "tab": lambda t: t[:40] + "\t" + t[40:],
    "control_byte": lambda t: t[:40] + "\x01" + t[40:],
    "nul": lambda t: t[:40] + "\x00" + t[40:],
    "del_byte": lambda t: t[:40] + "\x7f" + t[40:],
    "nonascii": lambda t: t[:40] + "\u00e9" + t[40:],
    "bom": lambda t: "\ufeff" + t,
    "ansi": lambda t: "\x1b[31m" + t + "\x1b[0m",
    "empty": lambda t: "",
}

# Fault presets: {"preset": name} fills status and body (an explicit "status"/"body" wins).
HOSTILE_MESSAGE = ("\x1b[31mred alert\x1b[0m \x1b]0;pwned title\x07\x1b]8;;https://evil.example/\x07link"
                   "\x1b]8;;\x07\n2026-01-01T00:00:00Z INFO lakebase: forged log line\r\nend")
FAULT_PRESETS = {
    # Message-matched transient errors behind statuses that look final.
    "request_limit_exceeded": (400, {"error_code": "REQUEST_LIMIT_EXCEEDED",
                                     "message": "REQUEST_LIMIT_EXCEEDED: Your request was rejected due to a "
                                                "rate limit. Please try again later."}),
    "try_again_later": (400, {"error_code": "BAD_REQUEST",
                              "message": "Please try again later or try a faster operation."}),
    "rpc_token_bucket": (400, {"error_code": "BAD_REQUEST",
                               "message": "RPC token bucket limit has been exceeded"}),
    # A load balancer's HTML in front of the workspace / token endpoint.
    "gateway_502": (502, "<html><head><title>502 Bad Gateway</title></head><body><center>"
                         "<h1>502 Bad Gateway</h1></center></body></html>\n"),
    "gateway_504": (504, "<html><head><title>504 Gateway Time-out</title></head><body><center>"
                         "<h1>504 Gateway Time-out</h1></center></body></html>\n"),
    # ANSI colour + OSC title/hyperlink escapes and newlines that forge a log line.
    "hostile_message": (400, {"error_code": "BAD_REQUEST", "message": HOSTILE_MESSAGE}),
}

# Request-log redaction: these form/JSON fields and headers never appear in /_fake/requests.
SECRET_FIELDS = ("client_secret", "subject_token", "client_assertion", "password", "refresh_token",
                 "code_verifier", "token", "access_token")
SECRET_HEADERS = ("authorization", "proxy-authorization", "x-databricks-azure-sp-management-token", "cookie")

INSTANCE_DEFAULTS = {
    "state": "AVAILABLE",
    "pg_version": "PG_VERSION_16",
    "capacity": "CU_1",
    "effective_capacity": "CU_1",
    "node_count": 1,
    "effective_node_count": 1,
    "enable_readable_secondaries": True,
    "effective_enable_readable_secondaries": True,
    "stopped": False,
    "effective_stopped": False,
    "retention_window_in_days": 7,
    "effective_retention_window_in_days": 7,
    "enable_pg_native_login": False,
    "effective_enable_pg_native_login": False,
}


def _now_ns():
    return time.time_ns()


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(s):
    s = s + "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s.encode("ascii"))


def _json_b64(obj):
    return _b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def rfc3339(ns, digits=0):
    """Format an epoch-nanoseconds value as RFC 3339 UTC ('Z')."""
    secs, frac = divmod(int(ns), 1_000_000_000)
    base = datetime.datetime.fromtimestamp(secs, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if digits <= 0:
        return base + "Z"
    return base + "." + ("%09d" % frac)[:digits] + "Z"


_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(s):
    """Parse RFC 3339 into epoch nanoseconds; raises ValueError."""
    m = _RFC3339_RE.match(s or "")
    if not m:
        raise ValueError("not an RFC 3339 timestamp: %r" % (s,))
    y, mo, d, h, mi, sec, frac, tz = m.groups()
    if tz in ("Z", "z"):
        offset = datetime.timezone.utc
    else:
        sign = 1 if tz[0] == "+" else -1
        offset = datetime.timezone(sign * datetime.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
    dt = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), tzinfo=offset)
    ns = int(dt.timestamp()) * 1_000_000_000
    if frac:
        ns += int(frac.ljust(9, "0"))
    return ns


def _parse_duration(s):
    """Protobuf JSON duration ('600s', '600.5s') -> seconds (float)."""
    m = re.match(r"^(-?\d+)(?:\.(\d{1,9}))?s$", s or "")
    if not m:
        raise ValueError("not a duration: %r" % (s,))
    whole = int(m.group(1))
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    return whole + (frac if whole >= 0 else -frac)


def _new_uid():
    return str(uuid.uuid4())


def default_config():
    """Fresh random default identities and resources (a new dict each call)."""
    sp_app_id = _new_uid()
    instance_uid = _new_uid()
    return {
        "workspace_id": str(1000000000000000 + secrets.randbelow(8999999999999999)),
        "account_id": _new_uid(),
        "users": {
            "alice@example.com": {"display_name": "Alice Example", "id": str(secrets.randbelow(10**15) + 10**15)},
        },
        "pats": {"dapi" + secrets.token_hex(16): "alice@example.com"},
        "service_principals": {
            sp_app_id: {
                "secret": "dose" + secrets.token_hex(16),
                "application_id": sp_app_id,
                "display_name": "lakebase-rig-sp",
                "id": str(secrets.randbelow(10**15) + 10**15),
            }
        },
        "instances": {
            "test-instance": {
                "uid": instance_uid,
                "read_write_dns": "instance-%s.database.cloud.databricks.com" % instance_uid,
                "read_only_dns": "instance-ro-%s.database.cloud.databricks.com" % instance_uid,
            }
        },
        "endpoints": {
            "projects/test-project/branches/production/endpoints/primary": {},
        },
        "groups": {
            str(secrets.randbelow(10**15) + 10**15): {
                "display_name": "lakebase-rig-writers",
                "members": ["alice@example.com", sp_app_id],
            }
        },
        "federated": {},
        "federation_policies": [],
        "settings": {},
    }


class _Fault(object):
    FIELDS = ("method", "path", "count", "skip", "action", "status", "retry_after", "body",
              "content_type", "headers", "delay_ms", "hang_ms", "preset")
    ACTIONS = ("status", "reset", "hang", "garbage", "close", "delay", "truncate")

    def __init__(self, spec, fid):
        unknown = set(spec) - set(self.FIELDS)
        if unknown:
            raise ValueError("unknown fault fields: %s" % ", ".join(sorted(unknown)))
        self.id = fid
        self.preset = spec.get("preset")
        if self.preset is not None:
            if self.preset not in FAULT_PRESETS:
                raise ValueError("fault preset must be one of %s" % "|".join(sorted(FAULT_PRESETS)))
            pstatus, pbody = FAULT_PRESETS[self.preset]
            spec = dict(spec)
            spec.setdefault("action", "status")
            spec.setdefault("status", pstatus)
            spec.setdefault("body", pbody)
            if isinstance(pbody, str):
                spec.setdefault("content_type", "text/html")
        self.method = (spec.get("method") or "").upper() or None
        self.path = spec.get("path") or "/"
        if not self.path.startswith("/"):
            raise ValueError("fault path must start with /")
        self.count = int(spec.get("count", 1))
        self.skip = int(spec.get("skip", 0))
        action = spec.get("action")
        if action is None:
            action = "status" if "status" in spec else ("delay" if spec.get("delay_ms") else "status")
        if action not in self.ACTIONS:
            raise ValueError("fault action must be one of %s" % "|".join(self.ACTIONS))
        self.action = action
        self.status = int(spec.get("status", 503))
        self.retry_after = spec.get("retry_after")
        self.body = spec.get("body")
        self.content_type = spec.get("content_type")
        self.headers = dict(spec.get("headers") or {})
        self.delay_ms = int(spec.get("delay_ms", 0) or 0)
        self.hang_ms = spec.get("hang_ms")
        self.fired = 0
        self.seen = 0

    def matches(self, method, path):
        if self.method and self.method != method:
            return False
        return path.startswith(self.path)

    def exhausted(self):
        return self.count >= 0 and self.fired >= self.count

    def to_dict(self):
        d = {k: getattr(self, k) for k in self.FIELDS}
        d.update({"id": self.id, "fired": self.fired, "seen": self.seen})
        return d


class _CloseConnection(Exception):
    """Raised inside a handler to drop the connection without (more) response bytes."""


class FakeWorkspace(object):
    """A fake Databricks workspace HTTP server.

    config: dict in the shape of default_config() (each top-level section given
    replaces the default section), or config_file: a JSON file with that shape.
    """

    def __init__(self, host="127.0.0.1", port=0, config=None, config_file=None,
                 tls_cert=None, tls_key=None, verbose=False):
        cfg = default_config()
        if config_file:
            with open(config_file) as f:
                cfg.update(json.load(f))
        if config:
            cfg.update(copy.deepcopy(config))
        self._initial = copy.deepcopy(cfg)
        self.bind_host = host
        self.bind_port = port
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.verbose = verbose
        self._lock = threading.RLock()
        self._stop_event = threading.Event()
        self._server = None
        self._thread = None
        self.url = None
        # Other rig parts (cold-start front, impostors, proxy) add control paths and reset hooks:
        # control_routes: [(path prefix, handler(method, path, query, body) -> (status, JSON))].
        self.control_routes = []
        self.reset_hooks = []
        self._load(cfg)

    # ------------------------------------------------------------------ state
    def _load(self, cfg):
        with self._lock:
            cfg = copy.deepcopy(cfg)
            self.workspace_id = str(cfg.get("workspace_id"))
            self.account_id = cfg.get("account_id")
            self.settings = dict(DEFAULT_SETTINGS)
            self.settings.update(cfg.get("settings") or {})
            self.users = {}
            for name, info in (cfg.get("users") or {}).items():
                self._add_user(name, info or {})
            self.pats = {}
            for tok, name in (cfg.get("pats") or {}).items():
                self.pats[tok] = name
                if name not in self.users:
                    self._add_user(name, {})
            self.service_principals = {}
            for client_id, info in (cfg.get("service_principals") or {}).items():
                self._add_sp(client_id, info or {})
            self.instances = {}
            for name, info in (cfg.get("instances") or {}).items():
                self._upsert_instance(name, info or {})
            self.endpoints = {}
            for name, info in (cfg.get("endpoints") or {}).items():
                self._upsert_endpoint(name, info or {})
            self.groups = {}
            for gid, info in (cfg.get("groups") or {}).items():
                self._add_group(gid, info or {})
            self.federated = dict(cfg.get("federated") or {})
            self.federation_policies = list(cfg.get("federation_policies") or [])
            self.passwords = dict(cfg.get("passwords") or {})  # user name -> password (basic auth)
            self._reset_runtime()

    def _reset_runtime(self):
        self.lakebase_tokens = {}  # token -> record
        self.oauth_tokens = {}  # access token -> record
        self.faults = []
        self._fault_seq = 0
        self._mint_seq = 0
        self.request_counts = {}
        self.minted_per_identity = {}
        self.oauth_minted_per_identity = {}
        self.check_stats = {"ok": 0, "failed": 0, "reasons": {}, "logins": {}, "last_user": None,
                            "last_password_length": None, "last_reason": None}
        self.request_log = []
        self.faults_fired = 0

    def _add_user(self, name, info):
        self.users[name] = {
            "kind": "user",
            "user_name": name,
            "id": str(info.get("id") or (secrets.randbelow(10**15) + 10**15)),
            "display_name": info.get("display_name") or name.split("@")[0].title(),
            "active": info.get("active", True),
        }

    def _add_sp(self, client_id, info):
        app_id = info.get("application_id") or client_id
        self.service_principals[client_id] = {
            "kind": "service_principal",
            "client_id": client_id,
            "secret": info.get("secret") or ("dose" + secrets.token_hex(16)),
            "application_id": app_id,
            "user_name": app_id,
            "id": str(info.get("id") or (secrets.randbelow(10**15) + 10**15)),
            "display_name": info.get("display_name") or "service-principal-" + app_id[:8],
            "active": info.get("active", True),
        }

    def _add_group(self, gid, info):
        gid = str(gid)
        self.groups[gid] = {
            "kind": "group",
            "id": gid,
            "user_name": info.get("display_name") or "group-" + gid,  # its Postgres role
            "display_name": info.get("display_name") or "group-" + gid,
            "members": list(info.get("members") or []),
        }

    def group_by_name(self, display_name):
        for g in self.groups.values():
            if g["display_name"] == display_name:
                return g
        return None

    def _identity_by_name(self, user_name):
        if user_name in self.users:
            return self.users[user_name]
        for sp in self.service_principals.values():
            if sp["user_name"] == user_name or sp["client_id"] == user_name:
                return sp
        return None

    def _upsert_instance(self, name, info):
        inst = self.instances.get(name)
        if inst is None:
            uid = info.get("uid") or _new_uid()
            inst = dict(INSTANCE_DEFAULTS)
            inst.update({
                "name": name,
                "uid": uid,
                "creator": next(iter(self.users), "admin@example.com"),
                "creation_time": rfc3339(_now_ns()),
                "read_write_dns": "instance-%s.database.cloud.databricks.com" % uid,
            })
        for k, v in info.items():
            if v is None:
                inst.pop(k, None)
            else:
                inst[k] = v
        inst["name"] = name
        self.instances[name] = inst
        return inst

    def _upsert_endpoint(self, name, info):
        m = ENDPOINT_RE.match(name)
        if not m:
            raise ValueError("endpoint name must be projects/P/branches/B/endpoints/E: %r" % (name,))
        project, branch, endpoint_id = m.groups()
        ep = self.endpoints.get(name)
        if ep is None:
            uid = info.get("uid") or ("ep-" + "-".join([secrets.token_hex(4), secrets.token_hex(4)]))
            ep = {
                "name": name,
                "parent": "projects/%s/branches/%s" % (project, branch),
                "uid": uid,
                "create_time": rfc3339(_now_ns()),
                "update_time": rfc3339(_now_ns()),
                "status": {
                    "endpoint_type": "ENDPOINT_TYPE_READ_WRITE",
                    "current_state": "ACTIVE",
                    "disabled": False,
                    "autoscaling_limit_min_cu": 0.5,
                    "autoscaling_limit_max_cu": 2,
                    "suspend_timeout_duration": "300s",
                    "settings": {},
                    "hosts": {"host": "%s.database.us-east-1.cloud.databricks.com" % uid},
                },
                "project_pg_version": 16,
            }
        status = ep["status"]
        for k, v in info.items():
            if k == "uid":
                ep["uid"] = v
            elif k == "host":
                status.setdefault("hosts", {})["host"] = v
            elif k in ("read_only_host", "read_write_pooled_host", "read_only_pooled_host"):
                status.setdefault("hosts", {})[k] = v
            elif k in ("allowed_users",):
                ep[k] = v
            elif k == "status" and isinstance(v, dict):
                status.update(v)
            else:
                status[k] = v
        self.endpoints[name] = ep
        return ep

    # ------------------------------------------------------------- lifecycle
    def start(self):
        handler = _make_handler(self)
        server = _Server((self.bind_host, self.bind_port), handler)
        if self.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
            server.ssl_context = ctx
        self._server = server
        host, port = server.server_address[:2]
        scheme = "https" if self.tls_cert else "http"
        self.url = "%s://%s:%d" % (scheme, host, port)
        self._stop_event.clear()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-workspace", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop_event.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1] if self._server else None

    # ------------------------------------------------------------ defaults
    @property
    def default_pat(self):
        return next(iter(self.pats))

    @property
    def default_user(self):
        return self.pats[self.default_pat]

    @property
    def default_sp(self):
        return next(iter(self.service_principals.values()))

    @property
    def default_instance(self):
        return next(iter(self.instances))

    @property
    def default_endpoint(self):
        return next(iter(self.endpoints))

    def role_names(self):
        """Every identity's Postgres role name (userName)."""
        names = list(self.users)
        names += [sp["user_name"] for sp in self.service_principals.values()]
        names += [g["user_name"] for g in self.groups.values() if g["user_name"] not in names]
        return names

    @property
    def default_group(self):
        return next(iter(self.groups.values()), None)

    # ----------------------------------------------------------------- clock
    def now_ns(self):
        return _now_ns() + int(float(self.settings.get("clock_offset_seconds", 0)) * 1e9)

    def now(self):
        return self.now_ns() / 1e9

    # ------------------------------------------------------- token minting
    def _frac_digits(self):
        mode = self.settings.get("fractional_seconds", "cycle")
        if mode == "cycle":
            return (0, 3, 6, 9)[self._mint_seq % 4]
        if mode in (None, "none"):
            return 0
        return int(mode)

    def mint_lakebase_token(self, identity_name, lifetime_seconds=None, kind="database", resources=None):
        """Mint a Lakebase password for identity_name (its Postgres role). Returns (token, record)."""
        with self._lock:
            self._mint_seq += 1
            lifetime = float(lifetime_seconds if lifetime_seconds is not None
                             else self.settings["token_lifetime_seconds"])
            iat_ns = self.now_ns()
            exp_ns = iat_ns + int(lifetime * 1e9)
            jti = _new_uid()
            header = {"kid": secrets.token_hex(20), "typ": "JWT", "alg": "RS256"}
            payload = {
                "jti": jti,
                "sub": identity_name,
                "iss": (self.url or "http://fake") + "/oidc",
                "aud": ["lakebase"],
                "iat": iat_ns // 10**9,
                "nbf": iat_ns // 10**9,
                "exp": exp_ns // 10**9,
                "scope": "postgres",
                "databricks_workspace_id": self.workspace_id,
                "lakebase": {"kind": kind, "resources": list(resources or [])},
            }
            target = self.settings["lakebase_token_min_bytes"] + secrets.randbelow(
                max(1, self.settings["lakebase_token_max_bytes"] - self.settings["lakebase_token_min_bytes"]))
            sig = _b64url(os.urandom(256))  # 342 chars, like RS256
            base = _json_b64(header) + "." + _json_b64(payload) + "." + sig
            token = base
            if len(base) < target:
                # pad the payload with an opaque claim; payload JSON is base64'd (x4/3)
                pad = _b64url(os.urandom(target))
                n = max(0, (target - len(base)) * 3 // 4 - 10)
                for _ in range(8):
                    payload["ctx"] = pad[:n]
                    token = _json_b64(header) + "." + _json_b64(payload) + "." + sig
                    diff = target - len(token)
                    if abs(diff) <= 3:
                        break
                    n = max(0, n + diff * 3 // 4)
            rec = {
                "jti": jti,
                "user": identity_name,
                "kind": kind,
                "resources": list(resources or []),
                "iat_ns": iat_ns,
                "exp_ns": exp_ns,
                "revoked": False,
                "seq": self._mint_seq,
            }
            self.lakebase_tokens[token] = rec
            self.minted_per_identity[identity_name] = self.minted_per_identity.get(identity_name, 0) + 1
            return token, rec

    def mint_oauth_token(self, identity, client_id=None, scope=OAUTH_SCOPE, via="client_credentials",
                         lifetime_seconds=None, azure=None, group=None):
        """Mint a workspace access token. azure: None (a Databricks OAuth token), "databricks" (an
        Azure AD token for Azure Databricks), "databricks-sp" (the same, for a service principal:
        API calls must also carry X-Databricks-Azure-SP-Management-Token) or "management" (an
        Azure AD token for the management API: only valid in that header)."""
        with self._lock:
            lifetime = int(lifetime_seconds if lifetime_seconds is not None
                           else self.settings["oauth_token_lifetime_seconds"])
            iat = self.now_ns() // 10**9
            payload = {
                "client_id": client_id or identity["user_name"],
                "scope": scope,
                "sub": identity["user_name"],
                "iss": (self.url or "http://fake") + "/oidc",
                "aud": self.account_id if self.settings.get("unified_host") else self.workspace_id,
                "iat": iat,
                "exp": iat + lifetime,
                "jti": _new_uid(),
            }
            header = {"kid": hashlib.sha256(self.workspace_id.encode()).hexdigest()[:40], "typ": "at+jwt",
                      "alg": "RS256"}
            if group is not None:
                payload["assumed_group"] = group["id"]
            token = _json_b64(header) + "." + _json_b64(payload) + "." + _b64url(os.urandom(256))
            self.oauth_tokens[token] = {
                "group": group["id"] if group is not None else None,
                "user": identity["user_name"],
                "exp_ns": (iat + lifetime) * 10**9,
                "revoked": False,
                "via": via,
                "scope": scope,
                "azure": azure,
            }
            name = identity["user_name"]
            self.oauth_minted_per_identity[name] = self.oauth_minted_per_identity.get(name, 0) + 1
            return token, lifetime

    def check_password(self, user, password):
        """(ok, reason) for a Postgres login attempt (user, password)."""
        ok, reason, _ = self._check(user, password)
        return ok, reason

    def rejection(self, user, reason, token_identity=None):
        """The Lakebase-style text for a failed login under pg_reject_mode: None ("pam") or
        {"sqlstate", "message", "mode"}."""
        with self._lock:
            mode = self.settings.get("pg_reject_mode") or "pam"
            if mode not in REJECT_MODES:
                raise ValueError("pg_reject_mode must be one of %s" % "|".join(REJECT_MODES))
            if mode == "pam":
                return None
            if mode == "lakebase":
                if token_identity is not None and reason.startswith("token was minted for "):
                    tmpl = REJECT_IDENTITY
                elif reason in ("token expired", "token revoked"):
                    tmpl = REJECT_PASSWORD
                else:
                    tmpl = REJECT_DECODE
            else:
                tmpl = {"decode": REJECT_DECODE, "password": REJECT_PASSWORD, "identity": REJECT_IDENTITY,
                        "custom": self.settings.get("pg_reject_text") or REJECT_DECODE}[mode]
            identity = token_identity or self.settings.get("pg_reject_identity") or user
            msg = tmpl.replace("{role}", user or "").replace("{identity}", identity or "")
            return {"sqlstate": self.settings.get("pg_reject_sqlstate") or "28P01", "message": msg, "mode": mode}

    def classify_secret(self, value):
        """What a received password/bearer is: "lakebase" (a minted Lakebase token or a >= 64-byte
        prefix of one), "pat", "oauth" (an access token the fake minted), "client_secret" or None."""
        with self._lock:
            v = (value or "").split("\x00", 1)[0].rstrip("\r\n")
            if not v:
                return None
            if v in self.lakebase_tokens or (len(v) >= 64 and any(t.startswith(v) for t in self.lakebase_tokens)):
                return "lakebase"
            if v in self.pats:
                return "pat"
            if v in self.oauth_tokens:
                return "oauth"
            if any(sp["secret"] == v for sp in self.service_principals.values()):
                return "client_secret"
            return None

    def _check(self, user, password):
        """(ok, reason, identity the token was minted for or None)."""
        with self._lock:
            pw = (password or "").split("\x00", 1)[0].rstrip("\r\n")
            self.check_stats["last_password_length"] = len(pw)
            self.check_stats["last_user"] = user
            rec = self.lakebase_tokens.get(pw)
            if rec is None:
                if not pw:
                    return self._check_result(user, False, "empty password") + (None,)
                matches = [r for t, r in self.lakebase_tokens.items() if t.startswith(pw)]
                if not matches:
                    return self._check_result(user, False, "unknown token") + (None,)
                if len(pw) < int(self.settings["min_prefix_bytes"]):
                    return self._check_result(user, False, "truncated token shorter than min_prefix_bytes") + (None,)
                if len(matches) > 1:
                    return self._check_result(user, False, "ambiguous token prefix") + (None,)
                rec = matches[0]
            who = rec["user"]
            if rec["revoked"]:
                return self._check_result(user, False, "token revoked") + (who,)
            if self.now_ns() >= rec["exp_ns"]:
                return self._check_result(user, False, "token expired") + (who,)
            if rec["user"] != user:
                return self._check_result(user, False, "token was minted for %s" % rec["user"]) + (who,)
            return self._check_result(user, True, "ok") + (who,)

    def _check_result(self, user, ok, reason):
        cs = self.check_stats
        cs["last_reason"] = reason
        if ok:
            cs["ok"] += 1
            cs["logins"][user] = cs["logins"].get(user, 0) + 1
        else:
            cs["failed"] += 1
            cs["reasons"][reason] = cs["reasons"].get(reason, 0) + 1
        return ok, reason

    def revoke(self, user=None, token=None):
        with self._lock:
            n = 0
            for t, rec in self.lakebase_tokens.items():
                if (user is None or rec["user"] == user) and (token is None or t == token) and not rec["revoked"]:
                    rec["revoked"] = True
                    n += 1
            return n

    def add_fault(self, spec):
        with self._lock:
            self._fault_seq += 1
            f = _Fault(spec, self._fault_seq)
            self.faults.append(f)
            return f.to_dict()

    def update_settings(self, changes):
        with self._lock:
            changes = dict(changes)
            if "advance_clock_seconds" in changes:
                self.settings["clock_offset_seconds"] = float(self.settings.get("clock_offset_seconds", 0)) + \
                    float(changes.pop("advance_clock_seconds"))
            for k in ("workspace_id", "account_id"):
                if k in changes:
                    setattr(self, k, str(changes.pop(k)))
            unknown = set(changes) - set(DEFAULT_SETTINGS)
            if unknown:
                raise ValueError("unknown settings: %s" % ", ".join(sorted(unknown)))
            if changes.get("pg_reject_mode", "pam") not in REJECT_MODES:
                raise ValueError("pg_reject_mode must be one of %s" % "|".join(REJECT_MODES))
            for k in ("lakebase_token_mangle", "oauth_token_mangle"):
                if changes.get(k) is not None and changes[k] not in TOKEN_MANGLES:
                    raise ValueError("%s must be one of %s" % (k, "|".join(sorted(TOKEN_MANGLES))))
            sq = changes.get("pg_reject_sqlstate")
            if sq is not None and not re.match(r"^[0-9A-Z]{5}$", str(sq)):
                raise ValueError("pg_reject_sqlstate must be 5 characters [0-9A-Z]")
            if changes.get("me_for_assumed_group", "caller") not in ("caller", "group"):
                raise ValueError("me_for_assumed_group must be caller|group")
            self.settings.update(changes)
            return self.public_settings()

    def public_settings(self):
        d = dict(self.settings)
        d["workspace_id"] = self.workspace_id
        d["account_id"] = self.account_id
        return d

    def reset(self):
        """Back to the initial identities, resources and settings; forget tokens, faults, stats
        (and reset the rig parts that registered a reset hook)."""
        self._load(self._initial)
        for hook in list(self.reset_hooks):
            hook()

    def stats(self):
        with self._lock:
            return {
                "requests": dict(self.request_counts),
                "lakebase_tokens_minted": dict(self.minted_per_identity),
                "lakebase_tokens_minted_total": sum(self.minted_per_identity.values()),
                "oauth_tokens_minted": dict(self.oauth_minted_per_identity),
                "checks": copy.deepcopy(self.check_stats),
                "faults_fired": self.faults_fired,
                "faults_pending": [f.to_dict() for f in self.faults if not f.exhausted()],
            }

    def state(self):
        with self._lock:
            return {
                "url": self.url,
                "pid": os.getpid(),
                "workspace_id": self.workspace_id,
                "account_id": self.account_id,
                "users": copy.deepcopy(self.users),
                "pats": dict(self.pats),
                "service_principals": copy.deepcopy(self.service_principals),
                "instances": copy.deepcopy(self.instances),
                "endpoints": {k: self._endpoint_view(v) for k, v in self.endpoints.items()},
                "federated": dict(self.federated),
                "federation_policies": list(self.federation_policies),
                "groups": copy.deepcopy(self.groups),
                "settings": self.public_settings(),
                "default_pat": self.default_pat if self.pats else None,
                "default_user": self.default_user if self.pats else None,
                "default_sp_client_id": self.default_sp["client_id"] if self.service_principals else None,
                "default_sp_secret": self.default_sp["secret"] if self.service_principals else None,
                "default_sp_application_id": self.default_sp["application_id"] if self.service_principals else None,
                "default_instance": self.default_instance if self.instances else None,
                "default_endpoint": self.default_endpoint if self.endpoints else None,
            }

    def _endpoint_view(self, ep):
        d = copy.deepcopy(ep)
        d.pop("allowed_users", None)
        d.pop("project_pg_version", None)
        d["endpoint_id"] = d["name"].rsplit("/", 1)[1]
        return d

    def _instance_view(self, inst):
        d = copy.deepcopy(inst)
        d.pop("allowed_users", None)
        return d


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    ssl_context = None
    request_queue_size = 64

    def finish_request(self, request, client_address):
        if self.ssl_context is not None:
            try:
                request.settimeout(10)
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                try:
                    request.close()
                except OSError:
                    pass
                return
        self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request, client_address):
        # Quiet: clients that vanish (timeouts, resets) are expected in fault tests.
        pass


def _make_handler(ws):
    class Handler(_Handler):
        fake = ws
    return Handler


class _Handler(http.server.BaseHTTPRequestHandler):
    # Headers and body go out in separate writes: without this, Nagle + delayed ACK stall
    # every response on a kept-alive connection by ~40 ms.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server_version = "databricks"
    sys_version = ""
    fake = None  # type: FakeWorkspace
    timeout = 60

    def log_message(self, fmt, *args):
        if self.fake.verbose:
            sys.stderr.write("fake-workspace: %s\n" % (fmt % args))

    # -------------------------------------------------------------- plumbing
    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status, body=b"", content_type="application/json", headers=None):
        if status >= 400 and getattr(self, "_workspace_request", False) and self.fake.settings.get("hostile_echo"):
            body = self._echo_request(body)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
        elif isinstance(body, str):
            body = body.encode("utf-8")
        self._status = status
        if not getattr(self, "_logged", True):
            # Log before answering: a client that reads the log right after the response must see it.
            self._log_request(self._log_path)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _echo_request(self, body):
        """A misbehaving proxy's error page: the request as received, Authorization and body included."""
        lines = ["%s %s %s" % (self.command, self.path, self.request_version)]
        lines += ["%s: %s" % (k, v) for k, v in self.headers.items()]
        echo = "Request was: " + "\r\n".join(lines) + "\r\n\r\n" + self.raw_body.decode("utf-8", "replace")
        if isinstance(body, (bytes, bytearray)):
            body = body.decode("utf-8", "replace")
        if isinstance(body, str):
            try:
                body = json.loads(body) if body else ""
            except ValueError:
                pass
        if isinstance(body, dict):
            body = dict(body)
            key = "message" if "message" in body or "error_description" not in body else "error_description"
            body[key] = "%s %s" % (body.get(key) or "", echo)
            return body
        return "%s\n%s" % (body, echo)

    def _api_headers(self, extra=None):
        h = {"X-Databricks-Org-Id": self.fake.workspace_id, "X-Request-Id": _new_uid(),
             "Cache-Control": "no-cache, no-store, must-revalidate"}
        h.update(extra or {})
        return h

    def _api_error(self, status, error_code, message, extra_headers=None):
        self._send(status, {"error_code": error_code, "message": message},
                   headers=self._api_headers(extra_headers))

    def _oauth_error(self, status, error, description, extra_headers=None):
        h = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        h.update(extra_headers or {})
        self._send(status, {"error": error, "error_description": description}, headers=h)

    def _drop(self, rst):
        """Close the socket without an HTTP response (RST if rst)."""
        import io
        sock = self.connection
        try:
            if rst:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            # The file objects hold references to the socket: close them first so
            # that sock.close() really closes the descriptor (and sends the RST).
            for f in (self.rfile, self.wfile):
                try:
                    f.close()
                except (OSError, ValueError):
                    pass
            self.wfile = io.BytesIO()
            sock.close()
        except OSError:
            pass
        raise _CloseConnection()

    # ------------------------------------------------------------- dispatch
    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except _CloseConnection:
            self.close_connection = True
        except (ConnectionError, socket.timeout, ssl.SSLError, OSError):
            self.close_connection = True

    def _dispatch(self):
        fake = self.fake
        if fake._stop_event.is_set():  # a kept-alive connection outliving stop()
            self._drop(rst=False)
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        self.query = urllib.parse.parse_qs(parsed.query)
        self._status = None
        self._logged = True  # control calls are not logged
        self.raw_body = self._read_body()
        self._identity = None
        self._group = None
        self._workspace_request = False
        if path.startswith("/_fake/"):
            return self._control(path)
        self._workspace_request = True
        key = "%s %s" % (self.command, path)
        with fake._lock:
            fake.request_counts[key] = fake.request_counts.get(key, 0) + 1
            fault = None
            for f in fake.faults:
                if f.exhausted() or not f.matches(self.command, path):
                    continue
                f.seen += 1
                if f.seen <= f.skip:
                    continue
                f.fired += 1
                fake.faults_fired += 1
                fault = f
                break
        self._logged = False
        self._log_path = path
        try:
            if fault is not None and self._apply_fault(fault, path):
                return
            if fake.settings.get("private_link_redirect") and path != "/login.html":
                return self._send(302, b"", content_type="text/html", headers={
                    "Location": self._base_url() + "/login.html?error=private-link-validation-error"})
            self._route(path)
        finally:
            if not self._logged:  # dropped connections, hangs: nothing was sent
                self._log_request(path)

    def _log_request(self, path):
        self._logged = True
        fake = self.fake
        body = None
        if self.raw_body:
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            try:
                if ctype == "application/x-www-form-urlencoded":
                    body = {k: v[0] if len(v) == 1 else v
                            for k, v in urllib.parse.parse_qs(self.raw_body.decode("utf-8"),
                                                              keep_blank_values=True).items()}
                else:
                    body = json.loads(self.raw_body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                body = "<%d bytes, not JSON or a form>" % len(self.raw_body)
            if isinstance(body, dict):
                body = {k: ("<redacted %d bytes>" % len(v) if k in SECRET_FIELDS and isinstance(v, str) else v)
                        for k, v in body.items()}
        auth = self.headers.get("Authorization") or ""
        entry = {
            "time": time.time(),
            "method": self.command,
            "path": path,
            "query": {k: v[0] if len(v) == 1 else v for k, v in self.query.items()},
            "status": self._status,
            "identity": self._identity,
            "group": self._group["display_name"] if self._group else None,
            "auth_scheme": auth.split(" ", 1)[0] if auth else None,
            "headers": {k: ("<redacted>" if k.lower() in SECRET_HEADERS else v) for k, v in self.headers.items()
                        if k.lower() != "authorization"},
            "body": body,
        }
        with fake._lock:
            fake.request_log.append(entry)
            excess = len(fake.request_log) - int(fake.settings.get("request_log_size", 1000))
            if excess > 0:
                del fake.request_log[:excess]

    def _apply_fault(self, f, path):
        """Returns True when the fault produced the whole outcome."""
        if f.delay_ms:
            if self.fake._stop_event.wait(f.delay_ms / 1000.0):
                self._drop(rst=False)
        if f.action == "delay":
            return False
        if f.action == "reset":
            self._drop(rst=True)
        if f.action == "close":
            self._drop(rst=False)
        if f.action == "hang":
            timeout = None if f.hang_ms is None else float(f.hang_ms) / 1000.0
            self.fake._stop_event.wait(timeout)
            self._drop(rst=False)
        headers = dict(f.headers)
        if f.retry_after is not None:
            headers["Retry-After"] = str(f.retry_after)
        if f.action == "garbage":
            body = f.body if f.body is not None else "<html><body>upstream returned garbage {{not json</body></html>"
            self._send(200, body, content_type=f.content_type or "text/html", headers=headers)
            return True
        if f.action == "truncate":
            body = (f.body if f.body is not None else '{"token": "truncated-response').encode("utf-8")
            self._status = 200
            self.send_response(200)
            self.send_header("Content-Type", f.content_type or "application/json")
            self.send_header("Content-Length", str(len(body) + 100))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self._drop(rst=False)
        # status
        status = f.status
        if f.body is not None:
            body = f.body if not isinstance(f.body, (dict, list)) else json.dumps(f.body)
            ctype = f.content_type or "application/json"
        elif path.startswith("/oidc/"):
            body = json.dumps({"error": "temporarily_unavailable" if status >= 500 else "invalid_request",
                               "error_description": "Injected fault (HTTP %d)" % status})
            ctype = "application/json"
        else:
            code = {429: "REQUEST_LIMIT_EXCEEDED", 500: "INTERNAL_ERROR", 502: "BAD_GATEWAY",
                    503: "TEMPORARILY_UNAVAILABLE", 504: "DEADLINE_EXCEEDED", 400: "BAD_REQUEST",
                    401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}.get(status, "UNKNOWN")
            msg = {429: "Too many requests. Please wait a moment and try again.",
                   503: "The service is temporarily unavailable. Please try again later."}.get(
                       status, "Injected fault (HTTP %d)" % status)
            body = json.dumps({"error_code": code, "message": msg})
            ctype = "application/json"
        self._send(status, body, content_type=ctype, headers=self._api_headers(headers))
        return True

    # --------------------------------------------------------------- routing
    def _base_url(self):
        return self.fake.url

    def _route(self, path):
        m = self.command
        if path == "/.well-known/databricks-config" and m == "GET":
            return self._host_metadata()
        if path == "/oidc/.well-known/oauth-authorization-server" and m == "GET":
            return self._oidc_discovery()
        if path == "/oidc/v1/token":
            if m != "POST":
                return self._oauth_error(405, "invalid_request", "Method not allowed")
            return self._oidc_token()
        if path == "/oidc/jwks.json" and m == "GET":
            return self._send(200, {"keys": []})
        acct = "/oidc/accounts/%s" % self.fake.account_id
        if self.fake.settings.get("unified_host") and path.startswith(acct + "/"):
            if path == acct + "/.well-known/oauth-authorization-server" and m == "GET":
                return self._oidc_discovery(acct)
            if path == acct + "/v1/token":
                if m != "POST":
                    return self._oauth_error(405, "invalid_request", "Method not allowed")
                return self._oidc_token()
        if path == "/login.html" and m in ("GET", "HEAD"):
            return self._send(200, "<!doctype html><html><head><title>Databricks - Sign In</title></head>"
                                   "<body><div id=\"login-page\"></div></body></html>\n", content_type="text/html")
        if path == "/aad/auth" and m == "GET":
            tenant = self.fake.settings.get("azure_tenant_id")
            if not tenant:
                return self._not_found(path)
            return self._send(302, b"", content_type="text/html", headers={
                "Location": "https://login.microsoftonline.com/%s/oauth2/authorize?response_type=code"
                            "&client_id=2ff814a6-3304-4ab8-85cb-cd0e6f879c1d" % tenant})
        if path.startswith("/api/"):
            if self.fake.settings.get("unified_host") and not self._unified_routing_ok():
                return
            ident = self._authenticate()
            if ident is None:
                return
            return self._api(path, ident)
        return self._not_found(path)

    def _not_found(self, path):
        self._api_error(404, "ENDPOINT_NOT_FOUND", "No API found for '%s %s'" % (self.command, path))

    def _unified_routing_ok(self):
        wsid = (self.headers.get("X-Databricks-Workspace-Id") or "").strip()
        if not wsid:
            self._api_error(400, "INVALID_PARAMETER_VALUE",
                            "This is a unified host: workspace API requests need the X-Databricks-Workspace-Id "
                            "header")
            return False
        if wsid != self.fake.workspace_id:
            self._api_error(404, "RESOURCE_DOES_NOT_EXIST", "Workspace %s does not exist on this host." % wsid)
            return False
        return True

    def _host_metadata(self):
        fake = self.fake
        if not fake.settings["host_metadata_enabled"]:
            return self._not_found("/.well-known/databricks-config")
        base = self._base_url()
        if fake.settings.get("unified_host"):
            meta = {
                "oidc_endpoint": base + "/oidc/accounts/{account_id}",
                "account_id": fake.account_id,
                "cloud": "AWS",
                "host_type": "unified",
                "token_federation_default_oidc_audiences": [fake.account_id],
            }
            if fake.settings.get("unified_metadata_workspace_id", True):
                meta["workspace_id"] = fake.workspace_id
            return self._send(200, meta)
        self._send(200, {
            "oidc_endpoint": base + "/oidc",
            "account_id": fake.account_id,
            "workspace_id": fake.workspace_id,
            "cloud": "AWS",
            "host_type": "workspace",
            "token_federation_default_oidc_audiences": [base + "/oidc/v1/token"],
        })

    def _oidc_discovery(self, prefix="/oidc"):
        if not self.fake.settings["oidc_discovery_enabled"]:
            return self._not_found(prefix + "/.well-known/oauth-authorization-server")
        base = self._base_url() + prefix
        self._send(200, {
            "issuer": base,
            "authorization_endpoint": base + "/v1/authorize",
            "token_endpoint": base + "/v1/token",
            "jwks_uri": base + "/jwks.json",
            "response_types_supported": ["code", "id_token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token",
                                      TOKEN_EXCHANGE_GRANT],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["all-apis", "email", "offline_access", "openid", "profile", "sql"],
            "claims_supported": ["iss", "sub", "aud", "iat", "exp", "jti", "name", "family_name",
                                 "given_name", "preferred_username"],
            "request_uri_parameter_supported": False,
        })

    # ------------------------------------------------------------------ OIDC
    def _oidc_token(self):
        fake = self.fake
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return self._oauth_error(400, "invalid_request",
                                     "Content-Type must be application/x-www-form-urlencoded")
        try:
            form = {k: v[0] for k, v in urllib.parse.parse_qs(self.raw_body.decode("utf-8"),
                                                               keep_blank_values=True).items()}
        except UnicodeDecodeError:
            return self._oauth_error(400, "invalid_request", "Malformed request body")
        grant = form.get("grant_type")
        if not grant:
            return self._oauth_error(400, "invalid_request", "Missing grant_type")
        scopes = (form.get("scope") or "").split()
        if grant == "client_credentials":
            client_id, secret = self._client_credentials(form)
            with fake._lock:
                sp = fake.service_principals.get(client_id) if client_id else None
                ok = sp is not None and secret is not None and secrets.compare_digest(sp["secret"], secret)
            if not ok:
                return self._oauth_error(401, "invalid_client", "Client authentication failed",
                                         {"WWW-Authenticate": 'Basic realm="oidc"'})
            if fake.settings["require_scope"] and OAUTH_SCOPE not in scopes:
                return self._oauth_error(400, "invalid_scope",
                                         "The requested scope is invalid, unknown, or malformed: %r"
                                         % (form.get("scope") or "",))
            ident = sp
        elif grant == TOKEN_EXCHANGE_GRANT:
            subject = form.get("subject_token")
            stype = form.get("subject_token_type")
            if not subject:
                return self._oauth_error(400, "invalid_request", "Missing subject_token")
            if stype != JWT_TOKEN_TYPE:
                return self._oauth_error(400, "invalid_request",
                                         "Unsupported subject_token_type: %r" % (stype,))
            if fake.settings["require_scope"] and OAUTH_SCOPE not in scopes:
                return self._oauth_error(400, "invalid_scope",
                                         "The requested scope is invalid, unknown, or malformed: %r"
                                         % (form.get("scope") or "",))
            ident, err = self._federated_identity(subject, form.get("client_id"))
            if ident is None:
                return self._oauth_error(400, "invalid_grant", err)
        else:
            return self._oauth_error(400, "unsupported_grant_type",
                                     "Unsupported grant_type: %r" % (grant,))
        group = None
        gid = form.get("assume_group")
        if gid is not None:
            with fake._lock:
                group = fake.groups.get(gid.strip())
            if group is None:
                return self._oauth_error(400, "invalid_request", "Group %r does not exist" % (gid,))
            if ident["user_name"] not in group["members"]:
                return self._oauth_error(400, "invalid_request",
                                         "The caller is not a member of group %r" % (gid,))
        token, lifetime = fake.mint_oauth_token(ident, client_id=ident.get("client_id"),
                                                scope=" ".join(scopes) or OAUTH_SCOPE, via=grant, group=group)
        self._identity = ident["user_name"]
        self._group = group
        mangle = fake.settings.get("oauth_token_mangle")
        override = fake.settings.get("oauth_expires_in_override")
        body = {"access_token": TOKEN_MANGLES[mangle](token) if mangle else token, "token_type": "Bearer",
                "expires_in": lifetime if override is None else override,
                "scope": " ".join(scopes) or OAUTH_SCOPE}
        if grant == TOKEN_EXCHANGE_GRANT:
            body["issued_token_type"] = ACCESS_TOKEN_TYPE
        self._send(200, body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _client_credentials(self, form):
        auth = self.headers.get("Authorization") or ""
        if auth[:6].lower() == "basic ":
            try:
                raw = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                return None, None
            cid, sep, sec = raw.partition(":")
            if not sep:
                return None, None
            # RFC 6749 2.3.1: form-urlencoded before base64 (Go does; Python requests does not).
            fake = self.fake
            if cid not in fake.service_principals:
                cid = urllib.parse.unquote_plus(cid)
            sp = fake.service_principals.get(cid)
            if sp is not None and sp["secret"] != sec:
                sec = urllib.parse.unquote_plus(sec)
            return cid, sec
        return form.get("client_id"), form.get("client_secret")

    def _federated_identity(self, subject, client_id):
        fake = self.fake
        with fake._lock:
            name = fake.federated.get(subject)
            if isinstance(name, dict):
                want_client = name.get("client_id")
                name = name.get("user") or name.get("user_name")
            else:
                want_client = None
            claims = None
            parts = subject.split(".")
            if len(parts) == 3:
                try:
                    claims = json.loads(_b64url_decode(parts[1]).decode("utf-8"))
                except (ValueError, UnicodeDecodeError, binascii.Error):
                    claims = None
            if name is None and claims is not None:
                for pol in fake.federation_policies:
                    if pol.get("issuer") not in (None, claims.get("iss")):
                        continue
                    if pol.get("subject") not in (None, claims.get("sub")):
                        continue
                    aud = claims.get("aud")
                    auds = aud if isinstance(aud, list) else [aud]
                    if pol.get("audience") is not None and pol.get("audience") not in auds:
                        continue
                    name = pol.get("user") or pol.get("user_name")
                    want_client = pol.get("client_id")
                    break
            if name is None:
                return None, "The subject token is not trusted by any federation policy"
            if claims is not None and isinstance(claims.get("exp"), (int, float)) and \
                    claims["exp"] <= fake.now():
                return None, "The subject token has expired"
            if client_id and want_client and client_id != want_client:
                return None, "The subject token is not valid for client_id %r" % (client_id,)
            ident = fake._identity_by_name(name)
            if ident is None:
                return None, "Federated identity %r is unknown" % (name,)
            if client_id and ident["kind"] == "service_principal" and client_id not in (
                    ident["client_id"], ident["application_id"]):
                return None, "The subject token is not valid for client_id %r" % (client_id,)
            return ident, None

    # ------------------------------------------------------------------ auth
    def _authenticate(self):
        fake = self.fake
        auth = self.headers.get("Authorization") or ""
        scheme, _, tok = auth.partition(" ")
        tok = tok.strip()
        if scheme.lower() == "basic" and tok:
            return self._authenticate_basic(tok)
        if scheme.lower() != "bearer" or not tok:
            self._api_error(401, 401, "Credential was not sent or was of an unsupported type for this API. "
                                      "[ReqId: %s]" % _new_uid())
            return None
        with fake._lock:
            name = fake.pats.get(tok)
            if name is not None:
                ident = fake._identity_by_name(name)
            else:
                rec = fake.oauth_tokens.get(tok)
                if rec is None or rec["revoked"] or rec.get("azure") == "management":
                    ident = None
                elif fake.now_ns() >= rec["exp_ns"]:
                    self._api_error(403, 403, "JWT has expired",
                                    {"X-Databricks-Reason-Phrase": "JWT has expired"})
                    return None
                else:
                    ident = fake._identity_by_name(rec["user"])
                    if rec.get("group"):
                        self._group = fake.groups.get(rec["group"])
                    if rec.get("azure") == "databricks-sp":
                        problem = self._azure_management_problem(rec["user"])
                        if problem:
                            self._api_error(403, 403, problem)
                            return None
        if ident is None or not ident.get("active", True):
            self._api_error(403, 403, "Invalid access token.",
                            {"X-Databricks-Reason-Phrase": "Invalid access token."})
            return None
        wsid = self.headers.get("X-Databricks-Workspace-Id")
        if wsid and fake.settings["strict_workspace_id_header"] and wsid != fake.workspace_id:
            self._api_error(400, "INVALID_PARAMETER_VALUE",
                            "Workspace ID %s in header X-Databricks-Workspace-Id does not match this "
                            "workspace" % wsid)
            return None
        self._identity = ident["user_name"]
        return ident

    def _authenticate_basic(self, b64):
        fake = self.fake
        try:
            user, sep, pw = base64.b64decode(b64, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            user, sep, pw = "", "", ""
        with fake._lock:
            want = fake.passwords.get(user) if sep else None
            ok = want is not None and secrets.compare_digest(want, pw)
            ident = fake._identity_by_name(user) if ok else None
        if ident is None:
            self._api_error(401, 401, "Invalid username or password.")
            return None
        self._identity = ident["user_name"]
        return ident

    def _azure_management_problem(self, user):
        """Why an Azure service principal's call lacks a valid management token, or None."""
        mgmt = (self.headers.get("X-Databricks-Azure-SP-Management-Token") or "").strip()
        if not mgmt:
            return "Azure service principal token without X-Databricks-Azure-SP-Management-Token"
        rec = self.fake.oauth_tokens.get(mgmt)
        if rec is None or rec.get("azure") != "management" or rec["user"] != user:
            return "Invalid Azure management token"
        if self.fake.now_ns() >= rec["exp_ns"]:
            return "Azure management token has expired"
        return None

    # ------------------------------------------------------------------- API
    def _json_body(self):
        if not self.raw_body.strip():
            return {}
        try:
            body = json.loads(self.raw_body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            self._api_error(400, "MALFORMED_REQUEST", "Could not parse request object: %s" % e)
            return None
        if not isinstance(body, dict):
            self._api_error(400, "MALFORMED_REQUEST", "Could not parse request object: expected a JSON object")
            return None
        return body

    def _api(self, path, ident):
        m = self.command
        if path == "/api/2.0/database/credentials" and m == "POST":
            return self._database_credentials(ident)
        if path == "/api/2.0/postgres/credentials" and m == "POST":
            return self._postgres_credentials(ident)
        if path == "/api/2.0/database/instances" and m == "GET":
            return self._list_instances()
        if path.startswith("/api/2.0/database/instances/") and m == "GET":
            return self._get_instance(urllib.parse.unquote(path[len("/api/2.0/database/instances/"):]))
        if path == "/api/2.0/preview/scim/v2/Me" and m == "GET":
            return self._me(ident)
        if path.startswith("/api/2.0/preview/scim/v2/Groups/") and m == "GET":
            return self._scim_group(urllib.parse.unquote(path[len("/api/2.0/preview/scim/v2/Groups/"):]))
        if path.startswith("/api/2.0/postgres/") and m == "GET":
            return self._postgres_get(urllib.parse.unquote(path[len("/api/2.0/postgres/"):]))
        return self._not_found(path)

    def _database_credentials(self, ident):
        fake = self.fake
        body = self._json_body()
        if body is None:
            return
        names = body.get("instance_names") or []
        claims = body.get("claims") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return self._api_error(400, "INVALID_PARAMETER_VALUE", "instance_names must be a list of strings")
        if not names and not claims:
            return self._api_error(400, "INVALID_PARAMETER_VALUE",
                                   "At least one of instance_names or claims must be specified.")
        for c in claims:
            ps = (c or {}).get("permission_set")
            if ps not in (None, "READ_ONLY"):
                return self._api_error(400, "INVALID_PARAMETER_VALUE",
                                       "Invalid permission_set: %r" % (ps,))
        if fake.settings.get("require_request_id") and not body.get("request_id"):
            return self._api_error(400, "INVALID_PARAMETER_VALUE",
                                   "Field 'request_id' is required, expected non-default value (not \"\")!")
        with fake._lock:
            for n in names:
                inst = fake.instances.get(n)
                if inst is None:
                    return self._api_error(404, "RESOURCE_DOES_NOT_EXIST",
                                           "Database instance '%s' does not exist." % n)
                allowed = inst.get("allowed_users")
                if allowed is not None and ident["user_name"] not in allowed:
                    return self._api_error(403, "PERMISSION_DENIED",
                                           "User does not have permission to access database instance '%s'."
                                           % n)
            role = self._group["user_name"] if self._group else ident["user_name"]
            token, rec = fake.mint_lakebase_token(role, kind="database", resources=names)
            exp = rfc3339(rec["exp_ns"], fake._frac_digits())
        self._send(200, self._credential_body(token, "expiration_time", exp), headers=self._api_headers())

    def _credential_body(self, token, exp_key, exp):
        st = self.fake.settings
        mangle = st.get("lakebase_token_mangle")
        return {"token": TOKEN_MANGLES[mangle](token) if mangle else token,
                exp_key: exp if st.get("lakebase_expiry_override") is None else st["lakebase_expiry_override"]}

    def _postgres_credentials(self, ident):
        fake = self.fake
        body = self._json_body()
        if body is None:
            return
        name = body.get("endpoint") or ""
        if not name:
            return self._api_error(400, "INVALID_PARAMETER_VALUE",
                                   "Field 'endpoint' is required, expected non-default value (not \"\")!")
        if not ENDPOINT_RE.match(name):
            return self._api_error(400, "INVALID_PARAMETER_VALUE",
                                   "Invalid endpoint name '%s': expected "
                                   "projects/{project_id}/branches/{branch_id}/endpoints/{endpoint_id}" % name)
        lifetime = None
        if body.get("ttl") is not None and body.get("expire_time") is not None:
            return self._api_error(400, "INVALID_PARAMETER_VALUE", "Only one of ttl and expire_time may be set.")
        if body.get("ttl") is not None:
            try:
                lifetime = _parse_duration(body["ttl"])
            except (ValueError, TypeError):
                return self._api_error(400, "INVALID_PARAMETER_VALUE", "Invalid ttl: %r" % (body["ttl"],))
            if not 300 <= lifetime <= 3600:
                return self._api_error(400, "INVALID_PARAMETER_VALUE",
                                       "ttl must be at least 300 seconds and at most 3600 seconds.")
        if body.get("expire_time") is not None:
            try:
                exp_ns = parse_rfc3339(body["expire_time"])
            except (ValueError, TypeError):
                return self._api_error(400, "INVALID_PARAMETER_VALUE",
                                       "Invalid expire_time: %r" % (body["expire_time"],))
            lifetime = (exp_ns - fake.now_ns()) / 1e9
            if not 295 <= lifetime <= 3605:
                return self._api_error(400, "INVALID_PARAMETER_VALUE",
                                       "expire_time must be at least 300 seconds and at most 1 hour from now.")
        with fake._lock:
            ep = fake.endpoints.get(name)
            if ep is None:
                return self._api_error(404, "NOT_FOUND", "endpoint id not found [TraceId: %s]" % _new_uid())
            allowed = ep.get("allowed_users")
            if allowed is not None and ident["user_name"] not in allowed:
                return self._api_error(403, "PERMISSION_DENIED",
                                       "User does not have permission to access endpoint '%s'." % name)
            role = self._group["user_name"] if self._group else ident["user_name"]
            gname = body.get("group_name")
            if gname is not None:
                group = fake.group_by_name(gname) if isinstance(gname, str) else None
                if group is None:
                    return self._api_error(404, "NOT_FOUND", "group %r not found [TraceId: %s]" % (gname, _new_uid()))
                if ident["user_name"] not in group["members"]:
                    return self._api_error(403, "PERMISSION_DENIED",
                                           "The caller is not a member of group '%s'." % gname)
                role = group["user_name"]
            token, rec = fake.mint_lakebase_token(role, lifetime_seconds=lifetime, kind="postgres", resources=[name])
            exp = rfc3339(rec["exp_ns"], fake._frac_digits())
        self._send(200, self._credential_body(token, "expire_time", exp), headers=self._api_headers())

    def _page(self, items, key):
        try:
            size = int((self.query.get("page_size") or ["0"])[0])
            start = int((self.query.get("page_token") or ["0"])[0] or 0)
        except ValueError:
            return self._api_error(400, "INVALID_PARAMETER_VALUE", "Invalid page_size or page_token")
        if size <= 0:
            size = 100
        page = items[start:start + size]
        out = {key: page}
        if start + size < len(items):
            out["next_page_token"] = str(start + size)
        self._send(200, out, headers=self._api_headers())

    def _list_instances(self):
        with self.fake._lock:
            items = [self.fake._instance_view(i) for i in self.fake.instances.values()]
        self._page(items, "database_instances")

    def _get_instance(self, name):
        with self.fake._lock:
            inst = self.fake.instances.get(name)
            view = self.fake._instance_view(inst) if inst else None
        if view is None:
            return self._api_error(404, "RESOURCE_DOES_NOT_EXIST", "Database instance '%s' does not exist." % name)
        self._send(200, view, headers=self._api_headers())

    def _postgres_get(self, rest):
        fake = self.fake
        parts = [p for p in rest.split("/") if p != ""]
        with fake._lock:
            eps = [fake._endpoint_view(e) for e in fake.endpoints.values()]
            pg_versions = {e["name"]: e.get("project_pg_version", 16) for e in fake.endpoints.values()}
        projects = {}
        branches = {}
        for e in eps:
            p, b, _ = ENDPOINT_RE.match(e["name"]).groups()
            projects.setdefault(p, pg_versions[e["name"]])
            branches.setdefault((p, b), [])
            branches[(p, b)].append(e)

        def project_view(p):
            return {"name": "projects/" + p, "uid": _stable_uid("project/" + p),
                    "create_time": "2026-01-01T00:00:00Z", "update_time": "2026-01-01T00:00:00Z",
                    "status": {"display_name": p, "pg_version": projects[p],
                               "owner": next(iter(fake.users), ""),
                               "default_branch": "projects/%s/branches/%s" % (
                                   p, sorted(b for (pp, b) in branches if pp == p)[0]),
                               "enable_pg_native_login": False}}

        def branch_view(p, b):
            return {"name": "projects/%s/branches/%s" % (p, b), "parent": "projects/" + p,
                    "uid": "br-" + _stable_uid("branch/%s/%s" % (p, b))[:20],
                    "create_time": "2026-01-01T00:00:00Z", "update_time": "2026-01-01T00:00:00Z",
                    "status": {"current_state": "READY", "default": b == "production", "is_protected": False,
                               "logical_size_bytes": 0}}

        nf = lambda kind: self._api_error(404, "NOT_FOUND", "%s id not found [TraceId: %s]" % (kind, _new_uid()))
        if parts == ["projects"]:
            return self._page([project_view(p) for p in sorted(projects)], "projects")
        if len(parts) < 2 or parts[0] != "projects":
            return self._not_found("/api/2.0/postgres/" + rest)
        p = parts[1]
        if p not in projects:
            return nf("project")
        if len(parts) == 2:
            return self._send(200, project_view(p), headers=self._api_headers())
        if parts[2] != "branches":
            return self._not_found("/api/2.0/postgres/" + rest)
        if len(parts) == 3:
            return self._page([branch_view(p, b) for (pp, b) in sorted(branches) if pp == p], "branches")
        b = parts[3]
        if (p, b) not in branches:
            return nf("branch")
        if len(parts) == 4:
            return self._send(200, branch_view(p, b), headers=self._api_headers())
        if parts[4] != "endpoints":
            return self._not_found("/api/2.0/postgres/" + rest)
        if len(parts) == 5:
            return self._page(sorted(branches[(p, b)], key=lambda e: e["name"]), "endpoints")
        if len(parts) == 6:
            for e in branches[(p, b)]:
                if e["endpoint_id"] == parts[5]:
                    return self._send(200, e, headers=self._api_headers())
            return nf("endpoint")
        return self._not_found("/api/2.0/postgres/" + rest)

    def _scim_group(self, gid):
        with self.fake._lock:
            g = copy.deepcopy(self.fake.groups.get(gid))
            members = []
            for name in (g or {}).get("members", []):
                m = self.fake._identity_by_name(name)
                if m is not None:
                    members.append({"display": m["display_name"], "value": m["id"],
                                    "$ref": ("Users/" if m["kind"] == "user" else "ServicePrincipals/") + m["id"]})
        if g is None:
            return self._send(404, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                                    "detail": "Group with id %s not found." % gid, "status": "404"},
                              content_type="application/scim+json", headers=self._api_headers())
        self._send(200, {"id": g["id"], "displayName": g["display_name"], "members": members,
                         "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]},
                   content_type="application/scim+json", headers=self._api_headers())

    def _me(self, ident):
        fake = self.fake
        if self._group is not None and fake.settings.get("me_for_assumed_group") == "group":
            g = self._group
            ident = {"kind": "group", "id": g["id"], "user_name": g["user_name"], "display_name": g["display_name"],
                     "active": True}
        with fake._lock:
            groups = [{"display": "users", "type": "direct", "value": "1", "$ref": "Groups/1"}]
            groups += [{"display": g["display_name"], "type": "direct", "value": g["id"], "$ref": "Groups/" + g["id"]}
                       for g in fake.groups.values() if ident["user_name"] in g["members"]]
        user = {
            "id": ident["id"],
            "userName": ident["user_name"],
            "displayName": ident["display_name"],
            "active": ident.get("active", True),
            "schemas": SCIM_USER_SCHEMAS,
            "groups": groups,
        }
        if ident["kind"] == "user":
            user["emails"] = [{"type": "work", "value": ident["user_name"], "primary": True}]
            first, _, last = ident["display_name"].partition(" ")
            user["name"] = {"givenName": first, "familyName": last}
        elif ident["kind"] == "service_principal":
            user["externalId"] = ident["application_id"]
        attrs = (self.query.get("attributes") or [""])[0]
        if attrs:
            keep = set(a.strip() for a in attrs.split(",") if a.strip()) | {"id", "schemas"}
            user = {k: v for k, v in user.items() if k in keep}
        excluded = (self.query.get("excludedAttributes") or [""])[0]
        for a in excluded.split(","):
            if a.strip() and a.strip() not in ("id", "schemas"):
                user.pop(a.strip(), None)
        self._send(200, user, content_type="application/scim+json",
                   headers=self._api_headers({"X-Databricks-Org-Id": fake.workspace_id}))

    # --------------------------------------------------------------- control
    def _control(self, path):
        fake = self.fake
        m = self.command
        try:
            body = json.loads(self.raw_body.decode("utf-8")) if self.raw_body.strip() else {}
        except (ValueError, UnicodeDecodeError) as e:
            return self._send(400, {"error": "bad JSON: %s" % e})
        try:
            if path == "/_fake/health":
                return self._send(200, {"ok": True, "url": fake.url})
            if path == "/_fake/state" and m == "GET":
                return self._send(200, fake.state())
            if path == "/_fake/config":
                if m == "POST":
                    return self._send(200, fake.update_settings(body))
                return self._send(200, fake.public_settings())
            if path == "/_fake/clock":
                if m == "POST":
                    changes = {}
                    if "offset_seconds" in body:
                        changes["clock_offset_seconds"] = body["offset_seconds"]
                    if "advance_seconds" in body:
                        changes["advance_clock_seconds"] = body["advance_seconds"]
                    fake.update_settings(changes)
                ns = fake.now_ns()
                return self._send(200, {"now": ns / 1e9, "now_rfc3339": rfc3339(ns, 6),
                                        "offset_seconds": fake.settings["clock_offset_seconds"]})
            if path == "/_fake/faults":
                if m == "POST":
                    specs = body.get("faults") if "faults" in body else [body]
                    return self._send(200, {"faults": [fake.add_fault(s) for s in specs]})
                if m == "DELETE":
                    with fake._lock:
                        fake.faults = []
                    return self._send(200, {"faults": []})
                with fake._lock:
                    return self._send(200, {"faults": [f.to_dict() for f in fake.faults]})
            if path == "/_fake/faults/clear" and m == "POST":
                with fake._lock:
                    fake.faults = []
                return self._send(200, {"faults": []})
            if path == "/_fake/stats":
                return self._send(200, fake.stats())
            if path == "/_fake/reset" and m == "POST":
                fake.reset()
                return self._send(200, {"ok": True})
            if path == "/_fake/check" and m == "POST":
                ok, reason, who = fake._check(body.get("user"), body.get("password"))
                out = {"ok": ok, "reason": reason}
                if not ok:
                    rej = fake.rejection(body.get("user") or "", reason, who)
                    if rej is not None:
                        out["reject"] = rej
                return self._send(200, out)
            if path == "/_fake/revoke" and m == "POST":
                n = fake.revoke(user=body.get("user"), token=body.get("token"))
                return self._send(200, {"revoked": n})
            if path == "/_fake/tokens" and m == "GET":
                with fake._lock:
                    now = fake.now_ns()
                    toks = [{"prefix": t[:80], "length": len(t), "user": r["user"], "kind": r["kind"],
                             "resources": r["resources"], "expires_at": rfc3339(r["exp_ns"], 6),
                             "expired": now >= r["exp_ns"], "revoked": r["revoked"], "seq": r["seq"]}
                            for t, r in fake.lakebase_tokens.items()]
                return self._send(200, {"tokens": sorted(toks, key=lambda x: x["seq"])})
            if path == "/_fake/mint_oauth" and m == "POST":
                with fake._lock:
                    ident = fake._identity_by_name(body["user"])
                if ident is None:
                    return self._send(400, {"error": "unknown identity %r" % (body["user"],)})
                group = None
                if body.get("group") is not None:
                    with fake._lock:
                        group = fake.groups.get(str(body["group"])) or fake.group_by_name(body["group"])
                    if group is None:
                        return self._send(400, {"error": "unknown group %r" % (body["group"],)})
                tok, lifetime = fake.mint_oauth_token(
                    ident, client_id=body.get("client_id"), scope=body.get("scope", OAUTH_SCOPE),
                    via=body.get("via", "control"), lifetime_seconds=body.get("lifetime_seconds"),
                    azure=body.get("azure"), group=group)
                return self._send(200, {"access_token": tok, "token_type": "Bearer", "expires_in": lifetime,
                                        "expires_on": int(fake.now()) + int(lifetime)})
            if path == "/_fake/mint" and m == "POST":
                tok, rec = fake.mint_lakebase_token(body["user"], lifetime_seconds=body.get("lifetime_seconds"),
                                                    kind=body.get("kind", "database"))
                return self._send(200, {"token": tok, "expiration_time": rfc3339(rec["exp_ns"], 6)})
            if path == "/_fake/requests":
                if m == "DELETE":
                    with fake._lock:
                        fake.request_log = []
                    return self._send(200, {"requests": []})
                prefix = (self.query.get("path") or [""])[0]
                method = (self.query.get("method") or [""])[0].upper()
                with fake._lock:
                    log = [e for e in fake.request_log if e["path"].startswith(prefix)
                           and (not method or e["method"] == method)]
                return self._send(200, {"requests": log})
            if path == "/_fake/instances" and m == "POST":
                name = body.pop("name")
                with fake._lock:
                    inst = fake._upsert_instance(name, body)
                return self._send(200, inst)
            if path.startswith("/_fake/instances/") and m == "DELETE":
                with fake._lock:
                    fake.instances.pop(urllib.parse.unquote(path[len("/_fake/instances/"):]), None)
                return self._send(200, {"ok": True})
            if path == "/_fake/endpoints" and m == "POST":
                name = body.pop("name")
                with fake._lock:
                    ep = fake._upsert_endpoint(name, body)
                return self._send(200, fake._endpoint_view(ep))
            if path.startswith("/_fake/endpoints/") and m == "DELETE":
                with fake._lock:
                    fake.endpoints.pop(urllib.parse.unquote(path[len("/_fake/endpoints/"):]), None)
                return self._send(200, {"ok": True})
            if path == "/_fake/identities" and m == "POST":
                with fake._lock:
                    for name, info in (body.get("users") or {}).items():
                        fake._add_user(name, info or {})
                    for tok, name in (body.get("pats") or {}).items():
                        fake.pats[tok] = name
                        if fake._identity_by_name(name) is None:
                            fake._add_user(name, {})
                    for cid, info in (body.get("service_principals") or {}).items():
                        fake._add_sp(cid, info or {})
                    for tok, who in (body.get("federated") or {}).items():
                        fake.federated[tok] = who
                    fake.federation_policies.extend(body.get("federation_policies") or [])
                    fake.passwords.update(body.get("passwords") or {})
                    for gid, info in (body.get("groups") or {}).items():
                        fake._add_group(gid, info or {})
                    for tok in body.get("remove_pats") or []:
                        fake.pats.pop(tok, None)
                return self._send(200, {"ok": True})
            for prefix, handler in list(fake.control_routes):
                if path == prefix or path.startswith(prefix + "/"):
                    status, out = handler(m, path, {k: v[0] for k, v in self.query.items()}, body)
                    return self._send(status, out)
        except (ValueError, KeyError, TypeError) as e:
            return self._send(400, {"error": "%s: %s" % (type(e).__name__, e)})
        return self._send(404, {"error": "unknown control path %s %s" % (m, path)})


def _stable_uid(seed):
    return str(uuid.UUID(hashlib.sha256(seed.encode()).hexdigest()[:32]))


def _write_atomic(path, data):
    tmp = path + ".tmp.%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake Databricks workspace (Lakebase credential APIs)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--config", help="JSON file with identities/resources/settings (see README)")
    ap.add_argument("--state-file", help="write url, identities and resources here (JSON) once listening")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    ws = FakeWorkspace(host=args.host, port=args.port, config_file=args.config,
                       tls_cert=args.tls_cert, tls_key=args.tls_key, verbose=args.verbose)
    ws.start()
    if args.state_file:
        _write_atomic(args.state_file, json.dumps(ws.state(), indent=2))
    print(ws.url, flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *a: done.set())
    while not done.wait(3600):
        pass
    ws.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
