"""Fake workspace strictness and the shapes of databricks-sdk 0.167 (issue 12): request_id, groups,
unified host, private link, transient-error presets, endpoint status fields, the request log."""

import base64
import json
import urllib.parse

import pytest

from conftest import form_post
from rig import http_request

ALICE = "alice@example.com"
DB_CRED = "/api/2.0/database/credentials"
PG_CRED = "/api/2.0/postgres/credentials"


def m2m(api, rig, extra=None, secret_in_form=False, path="/oidc/v1/token"):
    sp = rig.fake.default_sp
    form = {"grant_type": "client_credentials", "scope": "all-apis"}
    headers = {}
    if secret_in_form:
        form.update(client_id=sp["client_id"], client_secret=sp["secret"])
    else:
        headers["Authorization"] = "Basic " + base64.b64encode(
            ("%s:%s" % (sp["client_id"], sp["secret"])).encode()).decode()
    form.update(extra or {})
    return form_post(rig.url + path, urllib.parse.urlencode(form).encode(), headers)


# ------------------------------------------------------------------------------ request_id
def test_request_id_is_required_by_default(api, rig):
    s, b = api.call("POST", DB_CRED, {"instance_names": [rig.fake.default_instance]}, token=rig.fake.default_pat)
    assert s == 400 and b["error_code"] == "INVALID_PARAMETER_VALUE" and "request_id" in b["message"]
    s, b = api.call("POST", DB_CRED, {"instance_names": [rig.fake.default_instance], "request_id": ""},
                    token=rig.fake.default_pat)
    assert s == 400
    assert api.ctl("GET", "/_fake/stats")["lakebase_tokens_minted_total"] == 0
    api.ctl("POST", "/_fake/config", {"require_request_id": False})
    s, b = api.call("POST", DB_CRED, {"instance_names": [rig.fake.default_instance]}, token=rig.fake.default_pat)
    assert s == 200 and b["token"]


# ---------------------------------------------------------------------------------- groups
def test_default_group_and_its_role(api, rig):
    g = rig.fake.default_group
    env = rig.env()
    assert env["RIG_GROUP_ID"] == g["id"] and env["RIG_GROUP_NAME"] == g["display_name"] == "lakebase-rig-writers"
    assert g["display_name"] in env["RIG_USERS"].split(",")
    roles = rig.pg.admin_psql("select rolname from pg_roles where rolcanlogin").split()
    assert g["display_name"] in roles
    s, b = api.call("GET", "/api/2.0/preview/scim/v2/Groups/" + g["id"], token=rig.fake.default_pat)
    assert s == 200 and b["displayName"] == g["display_name"] and len(b["members"]) == 2
    s, b = api.call("GET", "/api/2.0/preview/scim/v2/Groups/999", token=rig.fake.default_pat)
    assert s == 404 and b["status"] == "404"
    me = api.call("GET", "/api/2.0/preview/scim/v2/Me", token=rig.fake.default_pat)[1]
    assert {"display": g["display_name"], "type": "direct", "value": g["id"], "$ref": "Groups/" + g["id"]} in me["groups"]


def test_m2m_assume_group(api, rig):
    g = rig.fake.default_group
    sp = rig.fake.default_sp
    s, b = m2m(api, rig, {"assume_group": g["id"]})
    assert s == 200, b
    access = b["access_token"]
    # SCIM /Me still answers the principal that authenticated ...
    assert api.call("GET", "/api/2.0/preview/scim/v2/Me", token=access)[1]["userName"] == sp["application_id"]
    # ... but Lakebase credentials minted with the token are for the group's role
    tok = api.mint_db(token=access)["token"]
    p = rig.pg.psql(g["display_name"], tok, "select current_user")
    assert p.returncode == 0 and p.stdout.strip() == g["display_name"], p.stderr
    assert rig.pg.psql(sp["application_id"], tok).returncode != 0
    tok = api.mint_pg(token=access)["token"]
    assert rig.pg.psql(g["display_name"], tok).returncode == 0
    st = api.ctl("GET", "/_fake/stats")
    assert st["lakebase_tokens_minted"] == {g["display_name"]: 2}
    assert st["checks"]["reasons"] == {"token was minted for %s" % g["display_name"]: 1}
    # the option to make /Me answer the group
    api.ctl("POST", "/_fake/config", {"me_for_assumed_group": "group"})
    me = api.call("GET", "/api/2.0/preview/scim/v2/Me", token=access)[1]
    assert me["userName"] == g["display_name"] and me["id"] == g["id"]


def test_assume_group_errors(api, rig):
    g = rig.fake.default_group
    s, b = m2m(api, rig, {"assume_group": "12345"})
    assert s == 400 and b["error"] == "invalid_request" and "does not exist" in b["error_description"]
    api.ctl("POST", "/_fake/identities", {"groups": {"777": {"display_name": "others", "members": []}}})
    s, b = m2m(api, rig, {"assume_group": "777"})
    assert s == 400 and "not a member" in b["error_description"]
    assert api.ctl("GET", "/_fake/stats")["oauth_tokens_minted"] == {}
    assert m2m(api, rig, {"assume_group": g["id"]})[0] == 200


def test_token_exchange_assume_group(api, rig):
    g = rig.fake.default_group
    api.ctl("POST", "/_fake/identities", {"federated": {"opaque.jwt.alice": ALICE}})
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": "opaque.jwt.alice",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "scope": "all-apis",
            "assume_group": g["id"]}
    s, b = form_post(rig.url + "/oidc/v1/token", urllib.parse.urlencode(form).encode())
    assert s == 200, b
    tok = api.mint_db(token=b["access_token"])["token"]
    assert rig.pg.psql(g["display_name"], tok).returncode == 0


def test_postgres_credential_group_name(api, rig):
    g = rig.fake.default_group
    b = api.mint_pg(group_name=g["display_name"], ttl="600s")
    p = rig.pg.psql(g["display_name"], b["token"], "select current_user")
    assert p.returncode == 0 and p.stdout.strip() == g["display_name"], p.stderr
    assert rig.pg.psql(ALICE, b["token"]).returncode != 0
    req = api.ctl("GET", "/_fake/requests?path=" + PG_CRED)["requests"][-1]
    assert req["body"]["group_name"] == g["display_name"] and req["body"]["ttl"] == "600s"
    s, b = api.call("POST", PG_CRED, {"endpoint": rig.fake.default_endpoint, "group_name": "nope"},
                    token=rig.fake.default_pat)
    assert s == 404 and b["error_code"] == "NOT_FOUND"
    api.ctl("POST", "/_fake/identities", {"groups": {"778": {"display_name": "closed", "members": []}}})
    s, b = api.call("POST", PG_CRED, {"endpoint": rig.fake.default_endpoint, "group_name": "closed"},
                    token=rig.fake.default_pat)
    assert s == 403 and b["error_code"] == "PERMISSION_DENIED"


def test_mint_oauth_with_group(api, rig):
    g = rig.fake.default_group
    access = api.ctl("POST", "/_fake/mint_oauth", {"user": ALICE, "group": g["display_name"]})["access_token"]
    assert rig.pg.psql(g["display_name"], api.mint_db(token=access)["token"]).returncode == 0


# ------------------------------------------------------------------------------ request log
def test_request_log_records_headers_and_form_but_no_secrets(api, rig):
    g = rig.fake.default_group
    sp = rig.fake.default_sp
    m2m(api, rig, {"assume_group": g["id"]}, secret_in_form=True)
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": "secret.jwt.value",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "scope": "all-apis"}
    form_post(rig.url + "/oidc/v1/token", urllib.parse.urlencode(form).encode())
    api.call("GET", "/api/2.0/preview/scim/v2/Me", token=rig.fake.default_pat,
             headers={"User-Agent": "liblakebase/9.9 os/linux auth/pat", "X-Databricks-Workspace-Id": "42",
                      "X-Databricks-Azure-SP-Management-Token": "mgmt-secret"})
    log = api.ctl("GET", "/_fake/requests")["requests"]
    tok_req, exch, me = log[-3:]
    assert tok_req["body"]["assume_group"] == g["id"] and tok_req["body"]["client_id"] == sp["client_id"]
    assert tok_req["body"]["client_secret"] == "<redacted %d bytes>" % len(sp["secret"])
    assert tok_req["group"] == g["display_name"]
    assert exch["body"]["subject_token"] == "<redacted 16 bytes>"
    h = {k.lower(): v for k, v in me["headers"].items()}  # urllib sends "X-databricks-workspace-id"
    assert h["user-agent"] == "liblakebase/9.9 os/linux auth/pat"
    assert h["x-databricks-workspace-id"] == "42"
    assert h["x-databricks-azure-sp-management-token"] == "<redacted>"
    dump = json.dumps(log)
    for secret in (sp["secret"], "secret.jwt.value", "mgmt-secret", rig.fake.default_pat):
        assert secret not in dump


# ----------------------------------------------------------------------------- unified host
def test_unified_host(api, rig):
    f = rig.fake
    api.ctl("POST", "/_fake/config", {"unified_host": True})
    s, meta = api.call("GET", "/.well-known/databricks-config")
    assert meta == {"oidc_endpoint": rig.url + "/oidc/accounts/{account_id}", "account_id": f.account_id,
                    "workspace_id": f.workspace_id, "cloud": "AWS", "host_type": "unified",
                    "token_federation_default_oidc_audiences": [f.account_id]}
    acct = "/oidc/accounts/%s" % f.account_id
    s, disc = api.call("GET", acct + "/.well-known/oauth-authorization-server")
    assert s == 200 and disc["token_endpoint"] == rig.url + acct + "/v1/token"
    s, b = m2m(api, rig, path=acct + "/v1/token")
    assert s == 200
    access = b["access_token"]
    me = "/api/2.0/preview/scim/v2/Me"
    s, b = api.call("GET", me, token=access)
    assert s == 400 and "X-Databricks-Workspace-Id" in b["message"]
    s, b = api.call("GET", me, token=access, headers={"X-Databricks-Workspace-Id": "1"})
    assert s == 404 and b["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    s, b = api.call("GET", me, token=access, headers={"X-Databricks-Workspace-Id": f.workspace_id})
    assert s == 200 and b["userName"] == f.default_sp["application_id"]
    s, b = api.call("POST", DB_CRED, {"instance_names": [f.default_instance], "request_id": "r"},
                    token=f.default_pat)
    assert s == 400
    api.ctl("POST", "/_fake/config", {"unified_metadata_workspace_id": False})
    assert "workspace_id" not in api.call("GET", "/.well-known/databricks-config")[1]
    api.ctl("POST", "/_fake/config", {"unified_host": False})
    assert api.call("GET", acct + "/.well-known/oauth-authorization-server")[0] == 404
    assert api.call("GET", me, token=access)[0] == 200


# ----------------------------------------------------------------------------- private link
def test_private_link_redirect(api, rig):
    api.ctl("POST", "/_fake/config", {"private_link_redirect": True})
    for method, path in (("GET", "/api/2.0/preview/scim/v2/Me"), ("POST", DB_CRED), ("POST", "/oidc/v1/token"),
                         ("GET", "/.well-known/databricks-config")):
        import http.client
        host, port = rig.url.split("//")[1].split(":")
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        c.request(method, path, body=b"{}" if method == "POST" else None,
                  headers={"Authorization": "Bearer " + rig.fake.default_pat})
        r = c.getresponse()
        r.read()
        assert r.status == 302, (path, r.status)
        assert r.getheader("Location") == rig.url + "/login.html?error=private-link-validation-error"
        c.close()
    s, _, body = http_request(rig.url, "GET", "/login.html?error=private-link-validation-error")
    assert s == 200 and b"<html" in body
    assert api.ctl("GET", "/_fake/health")["ok"] is True  # control API unaffected


# ---------------------------------------------------------------------------------- presets
@pytest.mark.parametrize("preset,status,message", [
    ("request_limit_exceeded", 400, "REQUEST_LIMIT_EXCEEDED"),
    ("try_again_later", 400, "Please try again later or try a faster operation."),
    ("rpc_token_bucket", 400, "RPC token bucket limit has been exceeded"),
])
def test_message_matched_transient_presets(api, rig, preset, status, message):
    api.ctl("POST", "/_fake/faults", {"path": DB_CRED, "preset": preset})
    s, b = api.call("POST", DB_CRED, {"instance_names": [rig.fake.default_instance], "request_id": "r"},
                    token=rig.fake.default_pat)
    assert s == status and message in b["message"]
    api.ctl("POST", "/_fake/faults", {"path": DB_CRED, "preset": preset, "status": 403})
    s, b = api.call("POST", DB_CRED, {"instance_names": [rig.fake.default_instance], "request_id": "r"},
                    token=rig.fake.default_pat)
    assert s == 403 and message in b["message"]
    assert api.mint_db()["token"]


@pytest.mark.parametrize("preset,status", [("gateway_502", 502), ("gateway_504", 504)])
def test_token_endpoint_gateway_errors(api, rig, preset, status):
    api.ctl("POST", "/_fake/faults", {"path": "/oidc/v1/token", "preset": preset})
    s, h, body = http_request(rig.url, "POST", "/oidc/v1/token", b"grant_type=client_credentials",
                              {"Content-Type": "application/x-www-form-urlencoded"})
    assert s == status and h["Content-Type"] == "text/html" and b"%d" % status in body
    assert m2m(api, rig)[0] == 200


def test_bad_preset(api):
    s, b = api.call("POST", "/_fake/faults", {"path": "/", "preset": "meteor"})
    assert s == 400


# ------------------------------------------------------------------------- endpoint status
def test_endpoint_disabled_and_pending_state(api, rig):
    ep = rig.fake.default_endpoint
    api.ctl("POST", "/_fake/endpoints", {"name": ep, "disabled": True, "current_state": "IDLE",
                                         "pending_state": "ACTIVE"})
    s, b = api.call("GET", "/api/2.0/postgres/" + ep, token=rig.fake.default_pat)
    assert s == 200
    assert (b["status"]["disabled"], b["status"]["current_state"], b["status"]["pending_state"]) == \
        (True, "IDLE", "ACTIVE")
    rig.fake.reset()
    b = api.call("GET", "/api/2.0/postgres/" + ep, token=rig.fake.default_pat)[1]
    assert b["status"]["disabled"] is False and "pending_state" not in b["status"]
