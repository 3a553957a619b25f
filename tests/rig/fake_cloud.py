#!/usr/bin/env python3
"""Fake identity services around the fake workspace, on 127.0.0.1 (standard library only).

One HTTP server answers, like the real services:

| request | like |
|---|---|
| `POST /<tenant>/oauth2/token` (form: `grant_type=client_credentials`, `client_id`, `resource`, and `client_secret` or `client_assertion_type` + `client_assertion`) | Azure AD v1 token endpoint (`https://login.microsoftonline.com/`): point `LAKEBASE_TEST_AZURE_LOGIN_URL` here |
| `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R[&client_id=]` + `Metadata: true` | Azure IMDS (`http://169.254.169.254`): point `LAKEBASE_TEST_IMDS_URL` here |
| `GET /metadata-service/<session>` + `X-Databricks-Metadata-Version: 1`, `X-Databricks-Host` | a Databricks metadata service: `DATABRICKS_METADATA_SERVICE_URL` |
| `GET /github/idtoken?api-version=2.0&audience=A` + `Authorization: Bearer <request token>` | GitHub Actions ID tokens: `ACTIONS_ID_TOKEN_REQUEST_URL` / `_TOKEN` |
| `POST /ado/<org>/<project id>/_apis/distributedtask/hubs/<host type>/plans/<plan id>/jobs/<job id>/oidctoken?api-version=7.2-preview.1` + `Authorization: Bearer $SYSTEM_ACCESSTOKEN` | Azure DevOps pipelines' OIDC token endpoint (`{"oidcToken": JWT}`; `ado_env()` gives the SYSTEM_* variables, `ado_policy(user)` the fake workspace federation policy that accepts it) |
| `GET /_cloud/requests`, `POST /_cloud/reset` | request log (no Authorization values) / forget it |

Model Serving: `write_model_serving_token(dir, token)` / `cloud.model_serving_rotate(dir, user)` write
`<dir>/model-dependencies-oauth-token` as Databricks Model Serving mounts it
(`{"OAUTH_TOKEN": [{"oauthTokenValue": <token>}]}`, read by the SDKs' model-serving method when
IS_IN_DB_MODEL_SERVING_ENV=true and SERVING_CREDENTIALS_DIR=<dir>); `model_serving_env(dir)` gives
those variables plus DATABRICKS_MODEL_SERVING_HOST_URL.

Tokens for the workspace are minted by the fake workspace itself (`POST /_fake/mint_oauth`), so
they work against its API exactly like its own OAuth tokens. Azure AD tokens for the Azure
Databricks resource (`2ff814a6-3304-4ab8-85cb-cd0e6f879c1d`) issued to service principals require
the `X-Databricks-Azure-SP-Management-Token` header with a management-resource token of the same
principal; user tokens (az CLI) do not.

Configuration (attributes of FakeCloud, change them directly from Python):
  tenant_id                 the only tenant the AAD endpoint serves
  aad_apps                  {client_id: {"user": workspace user name, "secret": str or None,
                             "github_subject": GitHub `sub` accepted as client assertion or None,
                             "require_management": bool (default True)}}
  msi                       {"default" or client_id: workspace user name}
  metadata_service          {"host": workspace URL expected in X-Databricks-Host, "user": name}
  github                    {"request_token": str, "subject": str, "repository": str}
  ado                       {"access_token", "org", "org_id", "project_id", "plan_id", "job_id", "host_type",
                             "subject"} (Azure DevOps)
"""
import base64
import json
import os
import re
import secrets
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

AZURE_DATABRICKS_APP_ID = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
AZURE_TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
ADO_API_VERSION = "7.2-preview.1"
MODEL_SERVING_TOKEN_FILE = "model-dependencies-oauth-token"
MANAGEMENT_PREFIXES = ("https://management.core.windows.net/", "https://management.core.usgovcloudapi.net/",
                       "https://management.core.chinacloudapi.cn/")


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims):
    """An unsigned-looking JWT (RS256 header, random signature) with `claims` as payload."""
    header = {"alg": "RS256", "typ": "JWT", "kid": secrets.token_hex(8)}
    return ".".join([_b64url(json.dumps(header).encode()), _b64url(json.dumps(claims).encode()),
                     _b64url(os.urandom(256))])


def jwt_claims(token):
    try:
        part = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return None


class FakeCloud(object):
    def __init__(self, workspace_url, host="127.0.0.1", port=0):
        self.workspace_url = workspace_url.rstrip("/")
        self.bind = (host, port)
        self.lock = threading.Lock()
        self.reset()
        self._server = None
        self.url = None

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.tenant_id = "rig-tenant-" + secrets.token_hex(4)
            self.aad_apps = {}
            self.msi = {}
            self.metadata_service = {}
            self.github = {"request_token": "ghs_" + secrets.token_hex(16),
                           "subject": "repo:example/lakebase-app:ref:refs/heads/main",
                           "repository": "example/lakebase-app"}
            self.ado = {"access_token": "ado" + secrets.token_hex(26), "org": "rig-org", "org_id": str(uuid.uuid4()),
                        "project_id": str(uuid.uuid4()), "plan_id": str(uuid.uuid4()), "job_id": str(uuid.uuid4()),
                        "host_type": "build", "subject": "sc://rig-org/lakebase-app/lakebase-databricks"}
            self.requests = []

    # --------------------------------------------------------------- lifecycle
    def start(self):
        self._server = ThreadingHTTPServer(self.bind, _make_handler(self))
        self._server.daemon_threads = True
        self.url = "http://%s:%d" % self._server.server_address[:2]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ----------------------------------------------------------------- helpers
    def mint(self, user, azure=None, via="fake-cloud"):
        """A workspace access token for `user` from the fake workspace's control API."""
        body = json.dumps({"user": user, "azure": azure, "via": via}).encode()
        req = urllib.request.Request(self.workspace_url + "/_fake/mint_oauth", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def ado_issuer(self):
        return "https://vstoken.dev.azure.com/" + self.ado["org_id"]

    def ado_env(self):
        """The Azure Pipelines variables the SDKs' azure-devops-oidc method reads."""
        a = self.ado
        return {"SYSTEM_ACCESSTOKEN": a["access_token"],
                "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI": "%s/ado/%s/" % (self.url, a["org"]),
                "SYSTEM_TEAMPROJECTID": a["project_id"], "SYSTEM_PLANID": a["plan_id"],
                "SYSTEM_JOBID": a["job_id"], "SYSTEM_HOSTTYPE": a["host_type"]}

    def ado_policy(self, user, client_id=None):
        """A fake workspace federation policy (POST /_fake/identities {"federation_policies": [...]})
        that accepts this pipeline's OIDC token for `user`."""
        pol = {"issuer": self.ado_issuer(), "subject": self.ado["subject"],
               "audience": AZURE_TOKEN_EXCHANGE_AUDIENCE, "user": user}
        if client_id:
            pol["client_id"] = client_id
        return pol

    def ado_token(self):
        now = int(time.time())
        return make_jwt({"iss": self.ado_issuer(), "sub": self.ado["subject"], "aud": AZURE_TOKEN_EXCHANGE_AUDIENCE,
                         "iat": now, "nbf": now, "exp": now + 600, "jti": secrets.token_hex(8)})

    def model_serving_env(self, directory):
        return {"IS_IN_DB_MODEL_SERVING_ENV": "true", "SERVING_CREDENTIALS_DIR": str(directory),
                "DATABRICKS_MODEL_SERVING_HOST_URL": self.workspace_url}

    def model_serving_rotate(self, directory, user, lifetime_seconds=None):
        """Mint a workspace OAuth token for `user` and (re)write the Model Serving token file with it."""
        body = {"user": user, "via": "model-serving"}
        if lifetime_seconds is not None:
            body["lifetime_seconds"] = lifetime_seconds
        req = urllib.request.Request(self.workspace_url + "/_fake/mint_oauth", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            tok = json.loads(r.read())["access_token"]
        write_model_serving_token(directory, tok)
        return tok

    def github_token(self, audience, subject=None):
        now = int(time.time())
        return make_jwt({"iss": GITHUB_ISSUER, "sub": subject or self.github["subject"], "aud": audience,
                         "repository": self.github["repository"], "iat": now, "nbf": now, "exp": now + 300,
                         "jti": secrets.token_hex(8)})


def write_model_serving_token(directory, token):
    """Write <directory>/model-dependencies-oauth-token atomically, in the Model Serving format."""
    os.makedirs(str(directory), exist_ok=True)
    path = os.path.join(str(directory), MODEL_SERVING_TOKEN_FILE)
    tmp = path + ".tmp.%d" % os.getpid()
    with open(tmp, "w") as f:
        json.dump({"OAUTH_TOKEN": [{"oauthTokenValue": token}]}, f)
    os.replace(tmp, path)
    return path


def _make_handler(cloud):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def _send(self, status, body):
            data = json.dumps(body).encode() if not isinstance(body, bytes) else body
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _aad_error(self, status, error, code, description):
            self._send(status, {"error": error, "error_description": "AADSTS%d: %s Trace ID: %s" % (
                code, description, secrets.token_hex(8)), "error_codes": [code],
                "error_uri": "https://login.microsoftonline.com/error?code=%d" % code})

        def _record(self, body):
            u = urllib.parse.urlsplit(self.path)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
            form = {k: v for k, v in body.items() if k not in ("client_secret", "client_assertion")}
            with cloud.lock:
                cloud.requests.append({"method": self.command, "path": u.path, "query": u.query,
                                       "headers": headers, "form": form,
                                       "auth_scheme": (self.headers.get("Authorization") or " ").split(" ")[0]})

        def do_GET(self):
            self._dispatch({})

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n).decode("utf-8", "replace")
            self._dispatch({k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()})

        def _dispatch(self, form):
            u = urllib.parse.urlsplit(self.path)
            q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
            if u.path == "/_cloud/requests":
                with cloud.lock:
                    return self._send(200, {"requests": list(cloud.requests)})
            if u.path == "/_cloud/reset":
                cloud.reset()
                return self._send(200, {"ok": True})
            self._record(form)
            try:
                if self.command == "POST" and u.path.endswith("/oauth2/token"):
                    return self._aad(u.path.split("/")[1], form)
                if self.command == "GET" and u.path == "/metadata/identity/oauth2/token":
                    return self._imds(q)
                if self.command == "GET" and u.path.startswith("/metadata-service/"):
                    return self._metadata_service()
                if self.command == "GET" and u.path == "/github/idtoken":
                    return self._github(q)
                if u.path.startswith("/ado/"):
                    return self._ado(u.path, q)
            except urllib.error.HTTPError as e:
                return self._send(500, {"error": "fake workspace said %s" % e})
            self._send(404, {"error": "not_found", "error_description": "no fake for %s %s" % (self.command, u.path)})

        # ---------------------------------------------------------------- AAD
        def _resource_token(self, user, resource, require_management=True):
            """(status, body) with a v1 token for `resource`."""
            if resource == AZURE_DATABRICKS_APP_ID:
                tok = cloud.mint(user, azure="databricks-sp" if require_management else "databricks", via="azure-ad")
            elif resource in MANAGEMENT_PREFIXES:
                tok = cloud.mint(user, azure="management", via="azure-ad")
            else:
                return None
            now = int(time.time())
            exp = int(tok["expires_on"])
            return {"token_type": "Bearer", "expires_in": str(exp - now), "ext_expires_in": str(exp - now),
                    "expires_on": str(exp), "not_before": str(now), "resource": resource,
                    "access_token": tok["access_token"]}

        def _aad(self, tenant, form):
            if tenant != cloud.tenant_id:
                return self._aad_error(400, "invalid_request", 90002, "Tenant '%s' not found." % tenant)
            if form.get("grant_type") != "client_credentials":
                return self._aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
            client_id = form.get("client_id")
            auth = self.headers.get("Authorization") or ""
            secret = form.get("client_secret")
            if auth.lower().startswith("basic "):
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                client_id = urllib.parse.unquote_plus(cid)
                secret = urllib.parse.unquote_plus(secret)
            app = cloud.aad_apps.get(client_id)
            if app is None:
                return self._aad_error(400, "unauthorized_client", 700016,
                                       "Application with identifier '%s' was not found in the directory." % client_id)
            if form.get("client_assertion"):
                if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
                    return self._aad_error(400, "invalid_request", 50027, "Invalid client assertion type.")
                c = jwt_claims(form["client_assertion"]) or {}
                ok = (app.get("github_subject") and c.get("iss") == GITHUB_ISSUER and c.get("sub") == app["github_subject"]
                      and c.get("aud") == AZURE_TOKEN_EXCHANGE_AUDIENCE and c.get("exp", 0) > time.time())
                if not ok:
                    return self._aad_error(400, "invalid_client", 70021,
                                           "No matching federated identity record found for presented assertion.")
            elif not (secret and app.get("secret") and secrets.compare_digest(secret, app["secret"])):
                return self._aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
            body = self._resource_token(app["user"], form.get("resource"), app.get("require_management", True))
            if body is None:
                return self._aad_error(400, "invalid_resource", 500011,
                                       "The resource principal named %s was not found." % form.get("resource"))
            self._send(200, body)

        # --------------------------------------------------------------- IMDS
        def _imds(self, q):
            if self.headers.get("Metadata") != "true":
                return self._send(400, {"error": "invalid_request",
                                        "error_description": "Required metadata header not specified"})
            if q.get("api-version") != "2018-02-01":
                return self._send(400, {"error": "invalid_request", "error_description": "Invalid api-version"})
            user = cloud.msi.get(q.get("client_id") or "default")
            if user is None:
                return self._send(400, {"error": "invalid_request",
                                        "error_description": "Identity not found"})
            body = self._resource_token(user, q.get("resource"))
            if body is None:
                return self._send(400, {"error": "invalid_resource", "error_description": "bad resource"})
            body["refresh_token"] = ""
            body["client_id"] = q.get("client_id") or "system-assigned"
            self._send(200, body)

        # --------------------------------------------------- metadata service
        def _metadata_service(self):
            ms = cloud.metadata_service
            if self.headers.get("X-Databricks-Metadata-Version") != "1":
                return self._send(400, {"error": "unsupported X-Databricks-Metadata-Version"})
            if not ms or self.headers.get("X-Databricks-Host") != ms.get("host"):
                return self._send(403, {"error": "X-Databricks-Host does not match this session"})
            tok = cloud.mint(ms["user"], via="metadata-service")
            self._send(200, {"access_token": tok["access_token"], "token_type": "Bearer",
                             "expires_on": int(tok["expires_on"])})

        # ------------------------------------------------------------- GitHub
        def _github(self, q):
            auth = self.headers.get("Authorization") or ""
            if auth != "Bearer " + cloud.github["request_token"]:
                return self._send(401, {"message": "Bad credentials"})
            aud = q.get("audience") or "https://github.com/" + cloud.github["repository"].split("/")[0]
            self._send(200, {"count": 1, "value": cloud.github_token(aud)})

        # ------------------------------------------------------- Azure DevOps
        def _ado(self, path, q):
            a = cloud.ado
            # Python SDK: {collection_uri}{project}; Go SDK: {collection_uri}/{project} (a double slash)
            want = "/ado/%s/%s/_apis/distributedtask/hubs/%s/plans/%s/jobs/%s/oidctoken" % (
                a["org"], a["project_id"], a["host_type"], a["plan_id"], a["job_id"])
            if re.sub("/+", "/", path) != want:
                return self._send(404, {"message": "No pipeline job at %s" % path, "typeKey": "NotFoundException"})
            if self.command != "POST":
                return self._send(405, {"message": "The requested resource does not support http method '%s'."
                                        % self.command})
            if q.get("api-version") != ADO_API_VERSION:
                return self._send(400, {"message": "The requested REST API version of %r is not supported."
                                        % q.get("api-version"), "typeKey": "VssVersionNotSupportedException"})
            if (self.headers.get("Authorization") or "") != "Bearer " + a["access_token"]:
                return self._send(401, {"message": "TF400813: The user is not authorized to access this resource.",
                                        "typeKey": "UnauthorizedRequestException"})
            self._send(200, {"oidcToken": cloud.ado_token()})

    return Handler
