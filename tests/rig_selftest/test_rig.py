"""Self-tests of the liblakebase test rig (tests/rig): fake workspace + PostgreSQL + PAM."""

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse

import pytest

from conftest import RIG_DIR, form_post
from fake_workspace import FakeWorkspace, parse_rfc3339
from rig import http_json

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


def jwt_parts(tok):
    parts = tok.split(".")
    assert len(parts) == 3, tok[:100]
    dec = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    return dec(parts[0]), dec(parts[1])


# ------------------------------------------------------------------ discovery
def test_host_metadata_shape(api, rig):
    s, b = api.call("GET", "/.well-known/databricks-config")
    assert s == 200
    assert b["oidc_endpoint"] == rig.url + "/oidc"
    assert b["workspace_id"] == rig.fake.workspace_id and b["workspace_id"].isdigit()
    assert b["cloud"] == "AWS" and b["host_type"] == "workspace"
    assert b["token_federation_default_oidc_audiences"] == [rig.url + "/oidc/v1/token"]


def test_host_metadata_can_be_switched_off(api):
    api.ctl("POST", "/_fake/config", {"host_metadata_enabled": False})
    s, b = api.call("GET", "/.well-known/databricks-config")
    assert s == 404 and b["error_code"] == "ENDPOINT_NOT_FOUND"


def test_oidc_discovery(api, rig):
    s, b = api.call("GET", "/oidc/.well-known/oauth-authorization-server")
    assert s == 200
    assert b["token_endpoint"] == rig.url + "/oidc/v1/token"
    assert b["authorization_endpoint"] == rig.url + "/oidc/v1/authorize"
    assert b["issuer"] == rig.url + "/oidc"
    api.ctl("POST", "/_fake/config", {"oidc_discovery_enabled": False})
    assert api.call("GET", "/oidc/.well-known/oauth-authorization-server")[0] == 404


# ---------------------------------------------------------------- minting
def test_mint_database_credential_with_pat(api, rig):
    t0 = time.time()
    b = api.mint_db()
    assert set(b) == {"token", "expiration_time"}
    tok = b["token"]
    assert 800 <= len(tok) <= 1000
    header, payload = jwt_parts(tok)
    assert payload["sub"] == "alice@example.com"
    assert RFC3339.match(b["expiration_time"]), b["expiration_time"]
    exp = parse_rfc3339(b["expiration_time"]) / 1e9
    assert t0 + 3590 < exp < time.time() + 3610
    st = api.ctl("GET", "/_fake/stats")
    assert st["lakebase_tokens_minted"] == {"alice@example.com": 1}
    assert st["requests"]["POST /api/2.0/database/credentials"] == 1
    req = api.ctl("GET", "/_fake/requests?path=/api/2.0/database/credentials")["requests"][0]
    assert req["body"]["request_id"] and req["identity"] == "alice@example.com"


def test_expiration_time_formats_cycle(api):
    fracs = set()
    for _ in range(4):
        e = api.mint_db()["expiration_time"]
        m = RFC3339.match(e)
        fracs.add(len(m.group(1) or ".") - 1)
    assert fracs == {0, 3, 6, 9}


def test_mint_postgres_credential_with_pat(api, rig):
    b = api.mint_pg()
    assert set(b) == {"token", "expire_time"}
    assert RFC3339.match(b["expire_time"])
    b2 = api.mint_pg(ttl="600s")
    exp = parse_rfc3339(b2["expire_time"]) / 1e9
    assert abs(exp - (time.time() + 600)) < 30
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 900))
    b3 = api.mint_pg(expire_time=when)
    assert abs(parse_rfc3339(b3["expire_time"]) / 1e9 - (time.time() + 900)) < 30


@pytest.mark.parametrize("extra", [{"ttl": "100s"}, {"ttl": "7200s"}, {"ttl": "ten"},
                                   {"ttl": "600s", "expire_time": "2030-01-01T00:00:00Z"},
                                   {"expire_time": "2000-01-01T00:00:00Z"}])
def test_postgres_credential_lifetime_validation(api, rig, extra):
    body = {"endpoint": rig.fake.default_endpoint}
    body.update(extra)
    s, b = api.call("POST", "/api/2.0/postgres/credentials", body, token=rig.fake.default_pat)
    assert s == 400 and b["error_code"] == "INVALID_PARAMETER_VALUE"


def test_token_lifetime_setting(api):
    api.ctl("POST", "/_fake/config", {"token_lifetime_seconds": 120})
    exp = parse_rfc3339(api.mint_db()["expiration_time"]) / 1e9
    assert abs(exp - (time.time() + 120)) < 30


def test_tokens_unique_in_first_bytes(api):
    toks = [api.mint_db()["token"] for _ in range(30)]
    assert len({t[:64] for t in toks}) == len(toks)
    assert all(800 <= len(t) <= 1000 for t in toks)


def test_unknown_instance_is_404(api, rig):
    s, b = api.call("POST", "/api/2.0/database/credentials", {"instance_names": ["nope"], "request_id": "r"},
                    token=rig.fake.default_pat)
    assert s == 404 and b == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                              "message": "Database instance 'nope' does not exist."}


def test_missing_instance_names_and_claims_is_400(api, rig):
    s, b = api.call("POST", "/api/2.0/database/credentials", {"request_id": "x"}, token=rig.fake.default_pat)
    assert s == 400 and b["error_code"] == "INVALID_PARAMETER_VALUE"
    s, b = api.call("POST", "/api/2.0/database/credentials",
                    {"claims": [{"permission_set": "READ_ONLY", "resources": [{"table_name": "c.s.t"}]}],
                     "request_id": "r"}, token=rig.fake.default_pat)
    assert s == 200 and b["token"]


def test_malformed_json_is_400(api, rig):
    s, _, b = api.raw("POST", "/api/2.0/database/credentials", b"{not json", token=rig.fake.default_pat)
    assert s == 400 and b["error_code"] == "MALFORMED_REQUEST"


def test_unknown_endpoint_is_404(api, rig):
    s, b = api.call("POST", "/api/2.0/postgres/credentials",
                    {"endpoint": "projects/test-project/branches/production/endpoints/nope"},
                    token=rig.fake.default_pat)
    assert s == 404 and b["error_code"] == "NOT_FOUND"
    s, b = api.call("POST", "/api/2.0/postgres/credentials", {}, token=rig.fake.default_pat)
    assert s == 400 and b["error_code"] == "INVALID_PARAMETER_VALUE"


def test_permission_denied_per_instance(api, rig):
    api.ctl("POST", "/_fake/instances", {"name": "locked", "allowed_users": ["someone@example.com"]})
    s, b = api.call("POST", "/api/2.0/database/credentials", {"instance_names": ["locked"], "request_id": "r"},
                    token=rig.fake.default_pat)
    assert s == 403 and b["error_code"] == "PERMISSION_DENIED"


# ------------------------------------------------------------- resources
def test_instances_and_endpoints(api, rig):
    pat = rig.fake.default_pat
    s, b = api.call("GET", "/api/2.0/database/instances/test-instance", token=pat)
    assert s == 200
    assert b["name"] == "test-instance" and b["state"] == "AVAILABLE" and b["read_write_dns"] == "localhost"
    assert b["uid"] and b["pg_version"]
    s, b = api.call("GET", "/api/2.0/database/instances", token=pat)
    assert s == 200 and [i["name"] for i in b["database_instances"]] == ["test-instance"]
    s, b = api.call("GET", "/api/2.0/database/instances/nope", token=pat)
    assert s == 404 and b["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    ep = rig.fake.default_endpoint
    s, b = api.call("GET", "/api/2.0/postgres/" + ep, token=pat)
    assert s == 200 and b["name"] == ep
    assert b["status"]["hosts"]["host"] == "localhost"
    assert b["status"]["current_state"] == "ACTIVE"
    assert b["status"]["endpoint_type"] == "ENDPOINT_TYPE_READ_WRITE"
    s, b = api.call("GET", "/api/2.0/postgres/projects/test-project/branches/production/endpoints", token=pat)
    assert s == 200 and [e["name"] for e in b["endpoints"]] == [ep]
    s, b = api.call("GET", "/api/2.0/postgres/projects", token=pat)
    assert s == 200 and b["projects"][0]["name"] == "projects/test-project"
    s, b = api.call("GET", "/api/2.0/postgres/projects/test-project/branches", token=pat)
    assert s == 200 and b["branches"][0]["name"] == "projects/test-project/branches/production"
    s, b = api.call("GET", "/api/2.0/postgres/projects/nope/branches", token=pat)
    assert s == 404 and b["error_code"] == "NOT_FOUND"


def test_pagination_and_control_instances(api, rig):
    api.ctl("POST", "/_fake/instances", {"name": "second", "state": "STARTING"})
    pat = rig.fake.default_pat
    s, b = api.call("GET", "/api/2.0/database/instances?page_size=1", token=pat)
    assert len(b["database_instances"]) == 1 and b["next_page_token"]
    s, b2 = api.call("GET", "/api/2.0/database/instances?page_size=1&page_token=" + b["next_page_token"], token=pat)
    assert [i["name"] for i in b2["database_instances"]] == ["second"] and "next_page_token" not in b2
    assert b2["database_instances"][0]["state"] == "STARTING"


def test_unknown_api_path(api, rig):
    s, b = api.call("GET", "/api/2.0/nothing/here", token=rig.fake.default_pat)
    assert s == 404 and b["error_code"] == "ENDPOINT_NOT_FOUND"


# ------------------------------------------------------------------ auth
def test_me_with_pat(api, rig):
    s, b = api.call("GET", "/api/2.0/preview/scim/v2/Me", token=rig.fake.default_pat)
    assert s == 200
    assert b["userName"] == "alice@example.com" and b["active"] is True
    assert b["emails"][0]["value"] == "alice@example.com" and b["id"] and b["displayName"]
    assert "urn:ietf:params:scim:schemas:core:2.0:User" in b["schemas"]
    s, b = api.call("GET", "/api/2.0/preview/scim/v2/Me?attributes=userName", token=rig.fake.default_pat)
    assert set(b) == {"id", "userName", "schemas"}


def test_auth_errors_look_like_the_real_workspace(api):
    s, b = api.call("GET", "/api/2.0/preview/scim/v2/Me")
    assert s == 401 and b["error_code"] == 401  # an integer, as the real service sends
    assert b["message"].startswith("Credential was not sent or was of an unsupported type for this API.")
    s, b = api.call("GET", "/api/2.0/preview/scim/v2/Me", token="dapi" + "0" * 32)
    assert s == 403 and b == {"error_code": 403, "message": "Invalid access token."}
    s, b = api.call("GET", "/api/2.0/preview/scim/v2/Me", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert s == 401


def test_m2m_client_credentials(api, rig):
    sp = rig.fake.default_sp
    s, b = api.m2m_token()
    assert s == 200, b
    assert b["token_type"] == "Bearer" and b["expires_in"] == 3600 and b["scope"] == "all-apis"
    s, me = api.call("GET", "/api/2.0/preview/scim/v2/Me", token=b["access_token"])
    assert s == 200 and me["userName"] == sp["application_id"]
    # credentials in the form instead of HTTP Basic
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "all-apis",
                                   "client_id": sp["client_id"], "client_secret": sp["secret"]}).encode()
    s, b2 = form_post(rig.url + "/oidc/v1/token", form)
    assert s == 200 and b2["access_token"] != b["access_token"]
    assert api.ctl("GET", "/_fake/stats")["oauth_tokens_minted"] == {sp["application_id"]: 2}


def test_m2m_errors(api, rig):
    s, b = api.m2m_token(secret="dose-wrong")
    assert s == 401 and b == {"error": "invalid_client", "error_description": "Client authentication failed"}
    s, b = api.m2m_token(client_id="00000000-0000-0000-0000-000000000000")
    assert s == 401 and b["error"] == "invalid_client"
    sp = rig.fake.default_sp
    cred = base64.b64encode(("%s:%s" % (sp["client_id"], sp["secret"])).encode()).decode()
    s, b = form_post(rig.url + "/oidc/v1/token", b"grant_type=client_credentials&scope=sql",
                     {"Authorization": "Basic " + cred})
    assert s == 400 and b["error"] == "invalid_scope"
    s, b = form_post(rig.url + "/oidc/v1/token", b"grant_type=password&username=a&password=b")
    assert s == 400 and b["error"] == "unsupported_grant_type"


def test_oauth_token_expiry_uses_fake_clock(api, rig):
    s, b = api.m2m_token()
    tok = b["access_token"]
    assert api.call("GET", "/api/2.0/preview/scim/v2/Me", token=tok)[0] == 200
    api.ctl("POST", "/_fake/clock", {"advance_seconds": 3601})
    s, b = api.call("GET", "/api/2.0/preview/scim/v2/Me", token=tok)
    assert s == 403 and b == {"error_code": 403, "message": "JWT has expired"}


def test_token_exchange_federation(api, rig):
    sp = rig.fake.default_sp
    claims = {"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/app:ref:refs/heads/main",
              "aud": rig.url + "/oidc/v1/token", "exp": int(time.time()) + 600}
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    jwt = enc({"alg": "RS256", "typ": "JWT"}) + "." + enc(claims) + ".c2ln"
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "subject_token": jwt,
            "scope": "all-apis", "client_id": sp["client_id"]}
    s, b = form_post(rig.url + "/oidc/v1/token", urllib.parse.urlencode(form).encode())
    assert s == 400 and b["error"] == "invalid_grant"
    api.ctl("POST", "/_fake/identities", {"federation_policies": [
        {"issuer": claims["iss"], "subject": claims["sub"], "user": sp["application_id"]}]})
    s, b = form_post(rig.url + "/oidc/v1/token", urllib.parse.urlencode(form).encode())
    assert s == 200, b
    assert b["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    s, me = api.call("GET", "/api/2.0/preview/scim/v2/Me", token=b["access_token"])
    assert me["userName"] == sp["application_id"]
    # an exact token registered for a user
    api.ctl("POST", "/_fake/identities", {"federated": {"opaque.jwt.value": "alice@example.com"}})
    form.update(subject_token="opaque.jwt.value")
    del form["client_id"]
    s, b = form_post(rig.url + "/oidc/v1/token", urllib.parse.urlencode(form).encode())
    assert s == 200
    assert api.call("GET", "/api/2.0/preview/scim/v2/Me", token=b["access_token"])[1]["userName"] == \
        "alice@example.com"


# --------------------------------------------------------------- postgres
def test_psql_login_with_database_token(api, rig):
    tok = api.mint_db()["token"]
    p = rig.pg.psql("alice@example.com", tok,
                    "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "alice@example.com|t"
    assert rig.pg.psql("alice@example.com", tok, "SELECT 1").stdout.strip() == "1"
    st = api.ctl("GET", "/_fake/stats")["checks"]
    assert st["logins"] == {"alice@example.com": 2}
    # pam_exec hands over at most 511 bytes of the ~900-byte password
    assert 64 <= st["last_password_length"] <= 512


def test_psql_login_with_postgres_token(api, rig):
    tok = api.mint_pg()["token"]
    p = rig.pg.psql("alice@example.com", tok, "SELECT 1")
    assert p.returncode == 0 and p.stdout.strip() == "1", p.stderr


def test_plaintext_connection_rejected(api, rig):
    tok = api.mint_db()["token"]
    p = rig.pg.psql("alice@example.com", tok, "SELECT 1", sslmode="disable")
    assert p.returncode != 0
    assert "no encryption" in p.stderr
    assert api.ctl("GET", "/_fake/stats")["checks"]["ok"] == 0


def test_forged_token_rejected(api, rig):
    tok = api.mint_db()["token"]
    forged = tok[:11] + ("A" if tok[11] != "A" else "B") + tok[12:]
    p = rig.pg.psql("alice@example.com", forged, "SELECT 1")
    assert p.returncode != 0 and "PAM authentication failed" in p.stderr
    p = rig.pg.psql("alice@example.com", rig.fake.default_pat, "SELECT 1")
    assert p.returncode != 0
    reasons = api.ctl("GET", "/_fake/stats")["checks"]["reasons"]
    assert reasons == {"unknown token": 2}


def test_token_of_another_identity_rejected(api, rig):
    tok = api.mint_db()["token"]
    p = rig.pg.psql(rig.fake.default_sp["application_id"], tok, "SELECT 1")
    assert p.returncode != 0
    assert api.ctl("GET", "/_fake/stats")["checks"]["reasons"] == {"token was minted for alice@example.com": 1}


def test_expired_token_rejected_without_sleeping(api, rig):
    tok = api.mint_db()["token"]
    api.ctl("POST", "/_fake/clock", {"advance_seconds": 3600})
    p = rig.pg.psql("alice@example.com", tok, "SELECT 1")
    assert p.returncode != 0
    assert api.ctl("GET", "/_fake/stats")["checks"]["reasons"] == {"token expired"   : 1}
    # a token minted "now" (in fake time) works
    api.ctl("POST", "/_fake/clock", {"offset_seconds": 0})
    api.ctl("POST", "/_fake/config", {"token_lifetime_seconds": 2})
    short = api.mint_db()["token"]
    assert rig.pg.psql("alice@example.com", short, "SELECT 1").returncode == 0
    api.ctl("POST", "/_fake/config", {"clock_offset_seconds": 2})
    assert rig.pg.psql("alice@example.com", short, "SELECT 1").returncode != 0


def test_two_consecutive_tokens_both_login(api, rig):
    t1 = api.mint_db()["token"]
    t2 = api.mint_db()["token"]
    assert t1 != t2
    for t in (t1, t2, t1):
        p = rig.pg.psql("alice@example.com", t, "SELECT 1")
        assert p.returncode == 0, p.stderr


def test_revoke(api, rig):
    tok = api.mint_db()["token"]
    assert api.ctl("POST", "/_fake/revoke", {})["revoked"] == 1
    assert rig.pg.psql("alice@example.com", tok, "SELECT 1").returncode != 0


def test_service_principal_end_to_end(api, rig):
    s, b = api.m2m_token()
    access = b["access_token"]
    me = api.call("GET", "/api/2.0/preview/scim/v2/Me", token=access)[1]["userName"]
    tok = api.mint_db(token=access)["token"]
    p = rig.pg.psql(me, tok, "select current_user")
    assert p.returncode == 0 and p.stdout.strip() == rig.fake.default_sp["application_id"], p.stderr
    assert api.ctl("GET", "/_fake/stats")["lakebase_tokens_minted"] == {me: 1}


def test_check_prefix_rules(api):
    tok = api.mint_db()["token"]
    ok = lambda pw, user="alice@example.com": api.ctl("POST", "/_fake/check", {"user": user, "password": pw})
    assert ok(tok)["ok"] is True
    assert ok(tok + "\x00")["ok"] is True
    assert ok(tok[:511])["ok"] is True
    assert ok(tok[:64])["ok"] is True
    assert ok(tok[:63]) == {"ok": False, "reason": "truncated token shorter than min_prefix_bytes"}
    assert ok("")["ok"] is False
    assert ok(tok, user="bob@example.com")["ok"] is False


def test_verify_full_with_psycopg(api, rig):
    psycopg = pytest.importorskip("psycopg")
    tok = api.mint_db()["token"]
    with psycopg.connect(host="localhost", port=rig.pg.port, dbname="databricks_postgres",
                         user="alice@example.com", password=tok, sslmode="verify-full",
                         sslrootcert=rig.pg.ca_file, connect_timeout=10) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="localhost", port=rig.pg.port, dbname="databricks_postgres",
                        user="alice@example.com", password="x" * 900, sslmode="require", connect_timeout=10)


def test_admin_psql(rig):
    roles = rig.pg.admin_psql("select rolname from pg_roles where rolcanlogin order by 1").split()
    assert "alice@example.com" in roles and rig.fake.default_sp["application_id"] in roles
    assert rig.pg.admin_psql("show ssl").strip() == "on"


# ----------------------------------------------------------------- faults
def test_fault_503_with_retry_after_then_success(api, rig):
    api.ctl("POST", "/_fake/faults", {"path": "/api/2.0/database/credentials", "count": 2, "status": 503,
                                       "retry_after": "1"})
    for _ in range(2):
        s, h, b = api.raw("POST", "/api/2.0/database/credentials",
                          json.dumps({"instance_names": ["test-instance"]}).encode(), token=rig.fake.default_pat)
        assert s == 503 and h["Retry-After"] == "1"
        assert b["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert api.mint_db()["token"]
    st = api.ctl("GET", "/_fake/stats")
    assert st["faults_fired"] == 2 and st["faults_pending"] == []
    assert st["requests"]["POST /api/2.0/database/credentials"] == 3


def test_fault_method_and_skip(api, rig):
    api.ctl("POST", "/_fake/faults", {"method": "POST", "path": "/api/2.0/", "skip": 1, "count": 1,
                                       "status": 429, "body": {"error_code": "REQUEST_LIMIT_EXCEEDED",
                                                               "message": "slow down"}})
    assert api.call("GET", "/api/2.0/preview/scim/v2/Me", token=rig.fake.default_pat)[0] == 200
    assert api.mint_db()["token"]  # skipped
    s, b = api.call("POST", "/api/2.0/database/credentials", {"instance_names": ["test-instance"]},
                    token=rig.fake.default_pat)
    assert s == 429 and b["message"] == "slow down"
    assert api.mint_db()["token"]


def _raw_request(rig, path, timeout=5):
    host, port = rig.url.split("//")[1].split(":")
    s = socket.create_connection((host, int(port)), timeout=timeout)
    body = json.dumps({"instance_names": ["test-instance"]})
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n%s" % (path, rig.fake.default_pat, len(body), body)).encode())
    return s


def test_fault_reset(api, rig):
    api.ctl("POST", "/_fake/faults", {"path": "/api/2.0/database/credentials", "action": "reset"})
    s = _raw_request(rig, "/api/2.0/database/credentials")
    with pytest.raises(ConnectionResetError):
        while s.recv(4096):
            pass
    s.close()
    assert api.mint_db()["token"]


def test_fault_close(api, rig):
    api.ctl("POST", "/_fake/faults", {"path": "/api/2.0/database/credentials", "action": "close"})
    s = _raw_request(rig, "/api/2.0/database/credentials")
    assert s.recv(4096) == b""
    s.close()


def test_fault_garbage(api, rig):
    api.ctl("POST", "/_fake/faults", {"path": "/api/2.0/database/credentials", "action": "garbage"})
    s, b = api.call("POST", "/api/2.0/database/credentials", {"instance_names": ["test-instance"]},
                    token=rig.fake.default_pat)
    assert s == 200 and isinstance(b, str) and "not json" in b


def test_fault_truncate(api, rig):
    api.ctl("POST", "/_fake/faults", {"path": "/api/2.0/database/credentials", "action": "truncate"})
    import http.client
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        api.call("POST", "/api/2.0/database/credentials", {"instance_names": ["test-instance"]},
                 token=rig.fake.default_pat)


def test_fault_hang_client_times_out(api, rig):
    api.ctl("POST", "/_fake/faults", {"path": "/api/2.0/postgres/credentials", "action": "hang",
                                       "hang_ms": 10000})
    t0 = time.monotonic()
    with pytest.raises((socket.timeout, TimeoutError, OSError)):
        api.call("POST", "/api/2.0/postgres/credentials", {"endpoint": rig.fake.default_endpoint},
                 token=rig.fake.default_pat, timeout=0.3)
    assert time.monotonic() - t0 < 5
    assert api.mint_pg()["token"]  # the server still answers other requests


def test_fault_oidc_token_endpoint(api):
    api.ctl("POST", "/_fake/faults", {"path": "/oidc/v1/token", "status": 503, "retry_after": "0"})
    s, b = api.m2m_token()
    assert s == 503 and b["error"] == "temporarily_unavailable"
    assert api.m2m_token()[0] == 200


def test_bad_fault_spec(rig):
    s, b = http_json(rig.url, "POST", "/_fake/faults", {"path": "/x", "action": "explode"})
    assert s == 400


# ------------------------------------------------------------- standalone
def test_fake_over_tls(rig):
    ws = FakeWorkspace(tls_cert=rig.tls["cert_file"], tls_key=rig.tls["key_file"]).start()
    try:
        assert ws.url.startswith("https://127.0.0.1:")
        s, b = http_json(ws.url, "GET", "/api/2.0/preview/scim/v2/Me",
                         headers={"Authorization": "Bearer " + ws.default_pat}, ca_file=rig.tls["ca_file"])
        assert s == 200 and b["userName"] == "alice@example.com"
        s, b = http_json(ws.url.replace("127.0.0.1", "localhost"), "GET", "/_fake/health",
                         ca_file=rig.tls["ca_file"])
        assert s == 200
    finally:
        ws.stop()


def test_fake_cli_and_config_file(tmp_path):
    cfg = {"pats": {"dapi" + "ab" * 16: "bob@example.com"},
           "instances": {"inst-a": {"read_write_dns": "db.example"}},
           "settings": {"token_lifetime_seconds": 900}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    state = tmp_path / "state.json"
    p = subprocess.Popen([sys.executable, os.path.join(RIG_DIR, "fake_workspace.py"), "--port", "0",
                          "--config", str(tmp_path / "cfg.json"), "--state-file", str(state)],
                         stdout=subprocess.PIPE, text=True)
    try:
        url = p.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        st = json.loads(state.read_text())
        assert st["url"] == url and st["default_user"] == "bob@example.com"
        s, b = http_json(url, "POST", "/api/2.0/database/credentials",
                         {"instance_names": ["inst-a"], "request_id": "r"},
                         headers={"Authorization": "Bearer " + "dapi" + "ab" * 16})
        assert s == 200
        assert abs(parse_rfc3339(b["expiration_time"]) / 1e9 - (time.time() + 900)) < 30
        s, b = http_json(url, "GET", "/api/2.0/database/instances/inst-a",
                         headers={"Authorization": "Bearer " + "dapi" + "ab" * 16})
        assert b["read_write_dns"] == "db.example"
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_rig_cli_up_down(tmp_path):
    d = tmp_path / "rigstate"
    rig_py = os.path.join(RIG_DIR, "rig.py")
    up = subprocess.run([sys.executable, rig_py, "up", "--dir", str(d), "--pg-reject-mode", "decode",
                         "--cold-mode", "starting", "--cold-wake-attempts", "1", "--set", "token_lifetime_seconds=900",
                         "--cold", "stall_hold_ms=500"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        timeout=90)
    try:
        assert up.returncode == 0, up.stderr
        env = json.loads((d / "env.json").read_text())
        for k in ("FAKE_URL", "DATABRICKS_HOST", "PGHOST", "PGPORT", "PGSSLROOTCERT", "RIG_PAT", "RIG_USER",
                  "RIG_SP_CLIENT_ID", "RIG_SP_CLIENT_SECRET", "RIG_SP_APPLICATION_ID", "RIG_INSTANCE",
                  "RIG_ENDPOINT", "RIG_USERS", "RIG_PAM_SERVICE", "RIG_ACCOUNT_ID", "RIG_GROUP_ID", "RIG_GROUP_NAME",
                  "RIG_COLD_PORT", "RIG_COLD_HOST", "RIG_IMPOSTOR_UNTRUSTED_PORT", "RIG_IMPOSTOR_WRONG_HOST_PORT",
                  "RIG_IMPOSTOR_WRONG_HOST_NAME", "RIG_IMPOSTOR_PLAINTEXT_PORT", "RIG_IMPOSTOR_CA_FILE",
                  "RIG_PROXY_URL", "RIG_PROXY_PORT", "RIG_PROXY_AUTH_URL", "RIG_PROXY_AUTH_PORT", "RIG_PROXY_USER",
                  "RIG_PROXY_PASSWORD"):
            assert env.get(k), k
        # the options given to `up`, also after a reset
        assert http_json(env["FAKE_URL"], "POST", "/_fake/reset", {})[0] == 200
        s, conf = http_json(env["FAKE_URL"], "GET", "/_fake/config")
        assert conf["pg_reject_mode"] == "decode" and conf["token_lifetime_seconds"] == 900
        s, cold = http_json(env["FAKE_URL"], "GET", "/_fake/cold")
        assert cold["settings"]["mode"] == "starting" and cold["settings"]["wake_attempts"] == 1
        assert cold["settings"]["stall_hold_ms"] == 500
        assert "export PGPORT=" in (d / "env.sh").read_text()
        assert os.path.exists("/etc/pam.d/" + env["RIG_PAM_SERVICE"])
        s, b = http_json(env["FAKE_URL"], "POST", "/api/2.0/database/credentials",
                         {"instance_names": [env["RIG_INSTANCE"]], "request_id": "r"},
                         headers={"Authorization": "Bearer " + env["RIG_PAT"]})
        assert s == 200
        penv = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        penv.update({k: v for k, v in env.items() if k.startswith("PG")})
        penv.update(PGUSER=env["RIG_USER"], PGPASSWORD=b["token"])
        p = subprocess.run(["psql", "-X", "-At", "-c", "select current_user"], env=penv,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        assert p.returncode == 0 and p.stdout.strip() == env["RIG_USER"], p.stderr
        penv["PGPASSWORD"] = "x" * 100
        p = subprocess.run(["psql", "-X", "-At", "-c", "select 1"], env=penv, capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 2 and 'FATAL:  Failed to decode token for role "%s"' % env["RIG_USER"] in p.stderr
        st = subprocess.run([sys.executable, rig_py, "status", "--dir", str(d)], stdout=subprocess.PIPE,
                            text=True, timeout=30)
        assert st.returncode == 0 and json.loads(st.stdout)["up"] is True
    finally:
        down = subprocess.run([sys.executable, rig_py, "down", "--dir", str(d)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert not os.path.exists("/etc/pam.d/" + env["RIG_PAM_SERVICE"])
    assert not (d / "env.json").exists()
    assert not os.path.exists(env["RIG_DIR"])
