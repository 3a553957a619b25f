"""Hostile workspace (issue 13): echoed requests in error bodies, spoiled tokens, absurd expiries,
escape sequences in messages."""

import base64
import json
import urllib.parse

import pytest

from conftest import form_post
from fake_workspace import HOSTILE_MESSAGE, TOKEN_MANGLES
from rig import http_request

ALICE = "alice@example.com"
DB_CRED = "/api/2.0/database/credentials"


def raw_post(rig, path, body, headers):
    s, h, data = http_request(rig.url, "POST", path, body, headers)
    return s, h, data


def test_error_bodies_echo_the_request(api, rig):
    pat = rig.fake.default_pat
    api.ctl("POST", "/_fake/config", {"hostile_echo": True})
    api.ctl("POST", "/_fake/faults", {"path": DB_CRED, "status": 500})
    s, _, data = raw_post(rig, DB_CRED, json.dumps({"instance_names": ["x"], "request_id": "r"}).encode(),
                          {"Authorization": "Bearer " + pat, "Content-Type": "application/json"})
    body = json.loads(data)
    assert s == 500 and body["error_code"] == "INTERNAL_ERROR"
    assert "Authorization: Bearer " + pat in body["message"] and '"request_id": "r"' in body["message"]
    # the M2M Basic blob and a form body with the secret
    sp = rig.fake.default_sp
    basic = base64.b64encode(("%s:%s" % (sp["client_id"], "dose-wrong")).encode()).decode()
    s, b = form_post(rig.url + "/oidc/v1/token", b"grant_type=client_credentials&scope=all-apis",
                     {"Authorization": "Basic " + basic})
    assert s == 401 and b["error"] == "invalid_client" and "Authorization: Basic " + basic in b["error_description"]
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "sql", "client_id": sp["client_id"],
                                   "client_secret": sp["secret"]}).encode()
    s, b = form_post(rig.url + "/oidc/v1/token", form)
    assert s == 400 and "client_secret=" + sp["secret"] in b["error_description"]
    # a successful call is not touched, nor the control API
    assert "Request was" not in json.dumps(api.mint_db())
    assert api.call("POST", "/_fake/faults", {"action": "explode"})[1]["error"].startswith("ValueError")


@pytest.mark.parametrize("mangle", sorted(TOKEN_MANGLES))
def test_lakebase_token_mangles(api, rig, mangle):
    api.ctl("POST", "/_fake/config", {"lakebase_token_mangle": mangle})
    sent = api.mint_db()["token"]
    clean = [t for t in rig.fake.lakebase_tokens][-1]
    assert sent == TOKEN_MANGLES[mangle](clean) and sent != clean
    assert rig.pg.psql(ALICE, clean).returncode == 0  # the fake still knows the clean token
    pg = api.mint_pg()["token"]
    assert pg == TOKEN_MANGLES[mangle]([t for t in rig.fake.lakebase_tokens][-1])


def test_oauth_token_mangle(api, rig):
    api.ctl("POST", "/_fake/config", {"oauth_token_mangle": "trailing_crlf"})
    s, b = api.m2m_token()
    assert s == 200 and b["access_token"].endswith("\r\n")
    s, me = api.call("GET", "/api/2.0/preview/scim/v2/Me", token=b["access_token"].strip())
    assert s == 200 and me["userName"] == rig.fake.default_sp["application_id"]
    s, _ = api.call("POST", "/_fake/config", {"oauth_token_mangle": "rot13"})
    assert s == 400


def test_absurd_expiries(api, rig):
    api.ctl("POST", "/_fake/config", {"lakebase_expiry_override": "9999-12-31T23:59:59Z",
                                      "oauth_expires_in_override": 1e300})
    b = api.mint_db()
    assert b["expiration_time"] == "9999-12-31T23:59:59Z"
    assert api.mint_pg()["expire_time"] == "9999-12-31T23:59:59Z"
    sp = rig.fake.default_sp
    basic = base64.b64encode(("%s:%s" % (sp["client_id"], sp["secret"])).encode()).decode()
    s, _, raw = http_request(rig.url, "POST", "/oidc/v1/token", b"grant_type=client_credentials&scope=all-apis",
                             {"Authorization": "Basic " + basic, "Content-Type": "application/x-www-form-urlencoded"})
    assert s == 200 and b'"expires_in": 1e+300' in raw
    access = json.loads(raw)["access_token"]
    # the fake's own clock still expires both after the real lifetime
    api.ctl("POST", "/_fake/clock", {"advance_seconds": 3601})
    assert rig.pg.psql(ALICE, b["token"]).returncode != 0
    s, e = api.call("GET", "/api/2.0/preview/scim/v2/Me", token=access)
    assert s == 403 and e["message"] == "JWT has expired"
    api.ctl("POST", "/_fake/config", {"lakebase_expiry_override": "not a time", "oauth_expires_in_override": "3600"})
    assert api.mint_db()["expiration_time"] == "not a time"
    assert api.m2m_token()[1]["expires_in"] == "3600"


def test_hostile_message_preset(api, rig):
    api.ctl("POST", "/_fake/faults", {"path": DB_CRED, "preset": "hostile_message"})
    s, _, raw = raw_post(rig, DB_CRED, json.dumps({"instance_names": ["x"], "request_id": "r"}).encode(),
                         {"Authorization": "Bearer " + rig.fake.default_pat, "Content-Type": "application/json"})
    msg = json.loads(raw)["message"]
    assert s == 400 and msg == HOSTILE_MESSAGE
    for needle in ("\x1b[31m", "\x1b]0;", "\x07", "\n2026-01-01T00:00:00Z INFO", "\r\n"):
        assert needle in msg
