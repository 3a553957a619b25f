"""Fake cloud additions: the Azure DevOps OIDC token endpoint and the Model Serving token file."""

import json
import os
import urllib.parse

import pytest

import fake_cloud
from conftest import form_post
from rig import http_request

ALICE = "alice@example.com"
ME = "/api/2.0/preview/scim/v2/Me"


@pytest.fixture
def cloud(rig):
    c = fake_cloud.FakeCloud(rig.url).start()
    try:
        yield c
    finally:
        c.stop()


def ado_url(env, sep=""):
    return "%s%s%s/_apis/distributedtask/hubs/%s/plans/%s/jobs/%s/oidctoken" % (
        env["SYSTEM_TEAMFOUNDATIONCOLLECTIONURI"], sep, env["SYSTEM_TEAMPROJECTID"], env["SYSTEM_HOSTTYPE"],
        env["SYSTEM_PLANID"], env["SYSTEM_JOBID"])


def ado_post(url, token, query="?api-version=7.2-preview.1", method="POST"):
    """As the SDKs call it: POST, empty body, Bearer $SYSTEM_ACCESSTOKEN."""
    s, _, body = http_request(url + query, method, "", b"" if method == "POST" else None,
                              {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    return s, json.loads(body)


def test_azure_devops_oidc_token(api, rig, cloud):
    env = cloud.ado_env()
    assert env["SYSTEM_TEAMFOUNDATIONCOLLECTIONURI"] == cloud.url + "/ado/rig-org/"
    s, b = ado_post(ado_url(env), env["SYSTEM_ACCESSTOKEN"])
    assert s == 200 and set(b) == {"oidcToken"}
    claims = fake_cloud.jwt_claims(b["oidcToken"])
    assert claims["aud"] == "api://AzureADTokenExchange" and claims["iss"] == cloud.ado_issuer()
    assert claims["sub"] == cloud.ado["subject"]
    # the Go SDK joins collection URI and project with another "/": accepted too
    assert ado_post(ado_url(env, "/"), env["SYSTEM_ACCESSTOKEN"])[0] == 200
    assert ado_post(ado_url(env), "wrong")[0] == 401
    assert ado_post(ado_url(env), env["SYSTEM_ACCESSTOKEN"], query="?api-version=7.1")[0] == 400
    assert ado_post(ado_url(env), env["SYSTEM_ACCESSTOKEN"], method="GET")[0] == 405
    assert ado_post(ado_url(env).replace(env["SYSTEM_JOBID"], "other-job"), env["SYSTEM_ACCESSTOKEN"])[0] == 404
    req = [r for r in cloud.requests if r["path"].startswith("/ado/")][0]
    assert req["method"] == "POST" and req["auth_scheme"] == "Bearer" and "authorization" not in \
        {k.lower() for k in req["headers"]}
    # the fake workspace's federation accepts it once the policy is registered
    sp = rig.fake.default_sp
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": b["oidcToken"],
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "scope": "all-apis",
            "client_id": sp["client_id"]}
    assert form_post(rig.url + "/oidc/v1/token", urllib.parse.urlencode(form).encode())[0] == 400
    api.ctl("POST", "/_fake/identities", {"federation_policies": [cloud.ado_policy(sp["application_id"],
                                                                                   client_id=sp["client_id"])]})
    s, tok = form_post(rig.url + "/oidc/v1/token", urllib.parse.urlencode(form).encode())
    assert s == 200, tok
    assert api.call("GET", ME, token=tok["access_token"])[1]["userName"] == sp["application_id"]


def test_model_serving_token_file(api, rig, cloud, tmp_path):
    d = tmp_path / "serving-creds"
    tok1 = cloud.model_serving_rotate(d, ALICE)
    path = d / fake_cloud.MODEL_SERVING_TOKEN_FILE
    assert json.loads(path.read_text()) == {"OAUTH_TOKEN": [{"oauthTokenValue": tok1}]}
    assert api.call("GET", ME, token=tok1)[1]["userName"] == ALICE
    tok2 = cloud.model_serving_rotate(d, ALICE, lifetime_seconds=600)
    assert tok2 != tok1 and json.loads(path.read_text())["OAUTH_TOKEN"][0]["oauthTokenValue"] == tok2
    assert [n for n in os.listdir(d)] == [fake_cloud.MODEL_SERVING_TOKEN_FILE]  # no temp files left
    env = cloud.model_serving_env(d)
    assert env == {"IS_IN_DB_MODEL_SERVING_ENV": "true", "SERVING_CREDENTIALS_DIR": str(d),
                   "DATABRICKS_MODEL_SERVING_HOST_URL": rig.url}
    # the shorter-lived token expires first (fake clock), the old one is still valid until its own expiry
    api.ctl("POST", "/_fake/clock", {"advance_seconds": 601})
    assert api.call("GET", ME, token=tok2)[0] == 403
    assert api.call("GET", ME, token=tok1)[0] == 200
    assert api.ctl("GET", "/_fake/stats")["oauth_tokens_minted"] == {ALICE: 2}
