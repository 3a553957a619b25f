"""Cross-check the fake's wire shapes against the official Python SDK, pinned: databricks-sdk==0.167.0
(scripts/install-deps.sh installs exactly that version).

If the SDK accepts the fake's answers (host metadata, OIDC, credentials, SCIM Me,
instances, endpoints, errors), the shapes are right; the SDK's own behaviour against the fake
(group roles, unified hosts, retries, private link, model serving, Azure DevOps, proxies) is what
liblakebase has to match.
"""

import os
import sys

import pytest

import databricks.sdk  # noqa: F401 - a missing SDK fails the suite, it is not skipped
from databricks.sdk import WorkspaceClient  # noqa: E402
from databricks.sdk import errors  # noqa: E402
from databricks.sdk.core import Config  # noqa: E402
from databricks.sdk.version import __version__ as SDK_VERSION  # noqa: E402
from google.protobuf.duration_pb2 import Duration  # noqa: E402

import fake_cloud  # noqa: E402
from fake_workspace import parse_rfc3339  # noqa: E402

PINNED_SDK_VERSION = "0.167.0"
DB_CRED = "/api/2.0/database/credentials"


@pytest.fixture(autouse=True)
def _no_databricks_env(monkeypatch):
    for k in list(os.environ):
        if k.startswith(("DATABRICKS_", "ARM_", "SYSTEM_", "ACTIONS_ID_TOKEN")) or \
                k.lower() in ("http_proxy", "https_proxy", "no_proxy", "all_proxy") or \
                k in ("IS_IN_DB_MODEL_SERVING_ENV", "IS_IN_DATABRICKS_MODEL_SERVING_ENV", "SERVING_CREDENTIALS_DIR"):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/.databrickscfg")


def test_sdk_version_is_pinned():
    sys.stderr.write("\ndatabricks-sdk %s\n" % SDK_VERSION)
    print("databricks-sdk", SDK_VERSION)
    assert SDK_VERSION == PINNED_SDK_VERSION, "scripts/install-deps.sh pins databricks-sdk==%s" % PINNED_SDK_VERSION


def pat_client(rig, token=None):
    return WorkspaceClient(config=Config(host=rig.url, token=token or rig.fake.default_pat,
                                         http_timeout_seconds=10, retry_timeout_seconds=20))


def m2m_client(rig, secret=None):
    sp = rig.fake.default_sp
    return WorkspaceClient(config=Config(host=rig.url, client_id=sp["client_id"],
                                         client_secret=secret or sp["secret"],
                                         http_timeout_seconds=10, retry_timeout_seconds=20))


def test_config_resolves_host_metadata(rig):
    w = pat_client(rig)
    assert w.config.workspace_id == rig.fake.workspace_id
    assert w.config.discovery_url == rig.url + "/oidc/.well-known/oauth-authorization-server"
    assert w.config.cloud.value == "AWS"


def test_generate_database_credential(rig):
    w = pat_client(rig)
    cred = w.database.generate_database_credential(instance_names=[rig.fake.default_instance],
                                                   request_id="b1e0e3a4-0000-4000-8000-000000000001")
    assert 800 <= len(cred.token) <= 1000
    parse_rfc3339(cred.expiration_time)
    assert rig.pg.psql("alice@example.com", cred.token, "SELECT 1").returncode == 0
    # the SDK fills request_id itself when not given
    w.database.generate_database_credential(instance_names=[rig.fake.default_instance])
    bodies = [r["body"] for r in rig.fake.request_log if r["path"] == "/api/2.0/database/credentials"]
    assert bodies[0]["request_id"] == "b1e0e3a4-0000-4000-8000-000000000001"
    assert len(bodies[1]["request_id"]) == 36
    headers = [r["headers"] for r in rig.fake.request_log if r["path"] == "/api/2.0/database/credentials"]
    assert headers[0].get("X-Databricks-Workspace-Id") in (None, rig.fake.workspace_id)
    assert "databricks-sdk-py/" in headers[0]["User-Agent"]


def test_generate_postgres_credential(rig):
    w = pat_client(rig)
    for _ in range(4):  # every fractional-seconds variant parses as a protobuf Timestamp
        cred = w.postgres.generate_database_credential(endpoint=rig.fake.default_endpoint)
        assert cred.token and cred.expire_time.seconds > 0
    assert rig.pg.psql("alice@example.com", cred.token, "SELECT 1").returncode == 0


def test_current_user_instances_endpoints(rig):
    w = pat_client(rig)
    me = w.current_user.me()
    assert me.user_name == "alice@example.com" and me.active and me.emails[0].value == "alice@example.com"
    inst = w.database.get_database_instance(rig.fake.default_instance)
    assert inst.name == rig.fake.default_instance and inst.state.value == "AVAILABLE"
    assert inst.read_write_dns == "localhost" and inst.uid
    assert [i.name for i in w.database.list_database_instances()] == [rig.fake.default_instance]
    ep = w.postgres.get_endpoint(rig.fake.default_endpoint)
    assert ep.name == rig.fake.default_endpoint
    assert ep.status.hosts.host == "localhost"
    assert ep.status.current_state.value == "ACTIVE"
    assert ep.status.endpoint_type.value == "ENDPOINT_TYPE_READ_WRITE"
    eps = list(w.postgres.list_endpoints(parent="projects/test-project/branches/production"))
    assert [e.name for e in eps] == [rig.fake.default_endpoint]
    assert [p.name for p in w.postgres.list_projects()] == ["projects/test-project"]
    assert [b.name for b in w.postgres.list_branches(parent="projects/test-project")] == \
        ["projects/test-project/branches/production"]


def test_m2m_client_credentials(rig):
    w = m2m_client(rig)
    sp = rig.fake.default_sp
    assert w.current_user.me().user_name == sp["application_id"]
    cred = w.database.generate_database_credential(instance_names=[rig.fake.default_instance])
    p = rig.pg.psql(sp["application_id"], cred.token, "select current_user")
    assert p.returncode == 0 and p.stdout.strip() == sp["application_id"], p.stderr
    reqs = [r for r in rig.fake.request_log if r["path"] == "/oidc/v1/token"]
    assert reqs and reqs[0]["auth_scheme"] == "Basic"
    assert reqs[0]["body"]["grant_type"] == "client_credentials" and reqs[0]["body"]["scope"] == "all-apis"


def test_m2m_bad_secret(rig):
    with pytest.raises(Exception) as ei:
        m2m_client(rig, secret="dose-wrong").current_user.me()
    assert "invalid_client" in str(ei.value)


def test_errors_map_to_sdk_exceptions(rig):
    w = pat_client(rig)
    with pytest.raises(errors.NotFound) as ei:
        w.database.get_database_instance("nope")
    assert isinstance(ei.value, errors.ResourceDoesNotExist)
    assert "Database instance 'nope' does not exist." in str(ei.value)
    with pytest.raises(errors.NotFound, match="Database instance 'nope' does not exist."):
        w.database.generate_database_credential(instance_names=["nope"])
    with pytest.raises(errors.NotFound, match="endpoint id not found"):
        w.postgres.generate_database_credential(
            endpoint="projects/test-project/branches/production/endpoints/nope")
    with pytest.raises(errors.InvalidParameterValue):
        w.database.generate_database_credential()
    with pytest.raises(errors.PermissionDenied, match="Invalid access token."):
        pat_client(rig, token="dapi" + "0" * 32).current_user.me()


def test_sdk_retries_injected_503(rig):
    rig.fake.add_fault({"path": "/api/2.0/database/credentials", "status": 503, "retry_after": "0", "count": 1})
    w = pat_client(rig)
    cred = w.database.generate_database_credential(instance_names=[rig.fake.default_instance])
    assert cred.token
    assert rig.fake.stats()["requests"]["POST /api/2.0/database/credentials"] == 2


def test_pat_without_host_metadata(rig):
    rig.fake.update_settings({"host_metadata_enabled": False})
    w = pat_client(rig)
    assert w.current_user.me().user_name == "alice@example.com"
    assert w.database.generate_database_credential(instance_names=[rig.fake.default_instance]).token


# ------------------------------------------------------------------------ databricks-sdk 0.167
def requests_to(rig, path):
    return [r for r in rig.fake.request_log if r["path"] == path]


def test_group_id_m2m_assumes_the_group(rig):
    g = rig.fake.default_group
    sp = rig.fake.default_sp
    w = WorkspaceClient(config=Config(host=rig.url, client_id=sp["client_id"], client_secret=sp["secret"],
                                      group_id=g["id"], http_timeout_seconds=10, retry_timeout_seconds=20))
    cred = w.postgres.generate_database_credential(endpoint=rig.fake.default_endpoint)
    p = rig.pg.psql(g["display_name"], cred.token, "select current_user")
    assert p.returncode == 0 and p.stdout.strip() == g["display_name"], p.stderr
    cred = w.database.generate_database_credential(instance_names=[rig.fake.default_instance])
    assert rig.pg.psql(g["display_name"], cred.token).returncode == 0
    assert rig.pg.psql(sp["application_id"], cred.token).returncode != 0
    (tok,) = requests_to(rig, "/oidc/v1/token")
    assert tok["body"]["assume_group"] == g["id"] and tok["body"]["grant_type"] == "client_credentials"
    # SCIM /Me still answers the service principal (the fake's default, README "Groups")
    assert w.current_user.me().user_name == sp["application_id"]


def test_group_id_refused_by_pat(rig):
    with pytest.raises(ValueError, match='auth type "pat" does not support group role assumption'):
        WorkspaceClient(config=Config(host=rig.url, token=rig.fake.default_pat, auth_type="pat",
                                      group_id=rig.fake.default_group["id"]))


def test_group_name_and_ttl_on_the_wire(rig):
    g = rig.fake.default_group
    w = pat_client(rig)
    cred = w.postgres.generate_database_credential(endpoint=rig.fake.default_endpoint, group_name=g["display_name"],
                                                   ttl=Duration(seconds=600))
    assert rig.pg.psql(g["display_name"], cred.token).returncode == 0
    assert abs(cred.expire_time.seconds - rig.fake.now() - 600) < 30
    (req,) = requests_to(rig, "/api/2.0/postgres/credentials")
    assert req["body"] == {"endpoint": rig.fake.default_endpoint, "group_name": g["display_name"], "ttl": "600s"}


def test_unified_host_workspace_id_header(rig):
    f = rig.fake
    f.update_settings({"unified_host": True})
    w = pat_client(rig)
    assert w.config.workspace_id == f.workspace_id
    assert w.current_user.me().user_name == "alice@example.com"
    cred = w.database.generate_database_credential(instance_names=[f.default_instance])
    assert rig.pg.psql("alice@example.com", cred.token).returncode == 0
    api = [r for r in f.request_log if r["path"].startswith("/api/")]
    assert len(api) == 2 and all(r["headers"].get("X-Databricks-Workspace-Id") == f.workspace_id for r in api)
    # M2M goes to the account-level OIDC endpoints the unified metadata names
    sp = f.default_sp
    w = WorkspaceClient(config=Config(host=rig.url, client_id=sp["client_id"], client_secret=sp["secret"],
                                      http_timeout_seconds=10, retry_timeout_seconds=20))
    assert w.config.discovery_url == rig.url + "/oidc/accounts/%s/.well-known/oauth-authorization-server" % f.account_id
    assert w.config.token_audience == f.account_id
    assert w.current_user.me().user_name == sp["application_id"]
    assert requests_to(rig, "/oidc/accounts/%s/v1/token" % f.account_id)
    # metadata without workspace_id: the SDK sends no header and the host refuses
    f.update_settings({"unified_metadata_workspace_id": False})
    with pytest.raises(errors.InvalidParameterValue, match="X-Databricks-Workspace-Id"):
        pat_client(rig).current_user.me()
    w = WorkspaceClient(config=Config(host=rig.url, token=f.default_pat, workspace_id=f.workspace_id))
    assert w.current_user.me().user_name == "alice@example.com"


def test_post_read_timeout_is_not_retried(rig):
    f = rig.fake
    w = WorkspaceClient(config=Config(host=rig.url, token=f.default_pat, http_timeout_seconds=2,
                                      retry_timeout_seconds=30))
    f.add_fault({"method": "POST", "path": DB_CRED, "action": "delay", "delay_ms": 6000, "count": 1})
    with pytest.raises(Exception) as ei:
        w.database.generate_database_credential(instance_names=[f.default_instance])
    assert "timed out" in str(ei.value).lower() or "timeout" in type(ei.value).__name__.lower(), repr(ei.value)
    assert f.stats()["requests"]["POST " + DB_CRED] == 1
    # a GET that times out is retried
    path = "/api/2.0/database/instances/" + f.default_instance
    f.add_fault({"method": "GET", "path": path, "action": "delay", "delay_ms": 6000, "count": 1})
    assert w.database.get_database_instance(f.default_instance).name == f.default_instance
    assert f.stats()["requests"]["GET " + path] == 2


@pytest.mark.parametrize("preset,retried", [("try_again_later", True), ("rpc_token_bucket", True),
                                            ("request_limit_exceeded", False)])
def test_message_matched_retries(rig, preset, retried):
    f = rig.fake
    f.add_fault({"method": "POST", "path": DB_CRED, "preset": preset, "count": 1})
    w = pat_client(rig)
    if retried:
        assert w.database.generate_database_credential(instance_names=[f.default_instance]).token
        assert f.stats()["requests"]["POST " + DB_CRED] == 2
    else:  # the Python SDK matches messages only; REQUEST_LIMIT_EXCEEDED behind a 400 is final for it
        with pytest.raises(errors.TooManyRequests):
            w.database.generate_database_credential(instance_names=[f.default_instance])
        assert f.stats()["requests"]["POST " + DB_CRED] == 1


def test_oauth_token_endpoint_502_is_an_error_for_the_python_sdk(rig):
    f = rig.fake
    f.add_fault({"path": "/oidc/v1/token", "preset": "gateway_502", "count": 1})
    with pytest.raises(Exception, match="502"):
        m2m_client(rig).current_user.me()
    assert f.stats()["requests"]["POST /oidc/v1/token"] == 1


def test_private_link_redirect(rig):
    rig.fake.update_settings({"private_link_redirect": True})
    with pytest.raises(errors.PrivateLinkValidationError, match="AWS PrivateLink"):
        pat_client(rig).current_user.me()


def test_request_id_required(rig):
    rig.fake.update_settings({"require_request_id": True})
    w = pat_client(rig)
    w.database.generate_database_credential(instance_names=[rig.fake.default_instance])
    assert len(requests_to(rig, DB_CRED)[0]["body"]["request_id"]) == 36
    with pytest.raises(errors.InvalidParameterValue, match="request_id"):
        w.api_client.do("POST", DB_CRED, body={"instance_names": [rig.fake.default_instance]})


def test_model_serving_auth(rig, monkeypatch, tmp_path):
    cloud = fake_cloud.FakeCloud(rig.url)  # only its file helper: no server needed
    cloud.model_serving_rotate(tmp_path, "alice@example.com")
    for k, v in cloud.model_serving_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    w = WorkspaceClient(config=Config(http_timeout_seconds=10, retry_timeout_seconds=20))
    assert w.config.auth_type == "model-serving" and w.config.host == rig.url
    assert w.current_user.me().user_name == "alice@example.com"


def test_azure_devops_oidc(rig, monkeypatch):
    cloud = fake_cloud.FakeCloud(rig.url).start()
    try:
        sp = rig.fake.default_sp
        rig.fake.federation_policies.append(cloud.ado_policy(sp["application_id"], client_id=sp["client_id"]))
        for k, v in cloud.ado_env().items():
            monkeypatch.setenv(k, v)
        w = WorkspaceClient(config=Config(host=rig.url, client_id=sp["client_id"], auth_type="azure-devops-oidc",
                                          http_timeout_seconds=10, retry_timeout_seconds=20))
        assert w.current_user.me().user_name == sp["application_id"]
        ado = [r for r in cloud.requests if r["path"].startswith("/ado/")]  # the SDK asks twice: probe + token
        assert ado and all(r["method"] == "POST" and r["query"] == "api-version=7.2-preview.1" for r in ado)
        (ex,) = requests_to(rig, "/oidc/v1/token")
        assert ex["body"]["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
        assert ex["body"]["client_id"] == sp["client_id"]
    finally:
        cloud.stop()


def test_http_proxy_and_no_proxy(rig, monkeypatch):
    env = rig.env()
    monkeypatch.setenv("HTTP_PROXY", env["RIG_PROXY_URL"])
    assert pat_client(rig).current_user.me().user_name == "alice@example.com"
    log = rig.control("GET", "/_fake/proxy")[1]["requests"]
    assert [e["url"] for e in log] == [rig.url + "/.well-known/databricks-config",
                                       rig.url + "/api/2.0/preview/scim/v2/Me"]
    rig.control("DELETE", "/_fake/proxy")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert pat_client(rig).current_user.me().user_name == "alice@example.com"
    assert rig.control("GET", "/_fake/proxy")[1]["requests"] == []
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.setenv("HTTP_PROXY", env["RIG_PROXY_AUTH_URL"])
    assert pat_client(rig).current_user.me().user_name == "alice@example.com"
    log = rig.control("GET", "/_fake/proxy")[1]["requests"]
    assert log and {(e["proxy"], e["auth"]) for e in log} == {("auth", "ok")}


# ------------------------------------------------- liblakebase side by side with the pinned SDK
# The same fake, the same settings: what liblakebase sends must have the SDK's shape. The library
# under test is target/release/liblakebase.so (scripts/test.sh builds it before these tests) or
# LAKEBASE_LIBRARY; it runs in a fresh interpreter per scenario through tests/e2e/lb.py.
import json as _json  # noqa: E402
import subprocess  # noqa: E402
import textwrap  # noqa: E402

E2E_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e")


def lakebase(rig, options, **env):
    """Run liblakebase (password, identity, role, auth type); returns its JSON answer."""
    code = textwrap.dedent("""
        from lb import *
        try:
            c = Client(%r)
            emit({"pw": c.password(), "identity": c.identity(), "role": c.postgres_role(), "auth": c.auth_type()})
        except LakebaseError as e:
            emit({"code": NAMES[e.code], "error": e.message})
    """) % options
    child = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "LAKEBASE_", "ARM_", "SYSTEM_"))}
    child.update({"PYTHONPATH": E2E_DIR, "HOME": "/nonexistent", "DATABRICKS_CONFIG_FILE": "/nonexistent/.databrickscfg"})
    child.update(env)
    if os.environ.get("LAKEBASE_LIBRARY"):
        child["LAKEBASE_LIBRARY"] = os.environ["LAKEBASE_LIBRARY"]
    p = subprocess.run([sys.executable, "-c", code], env=child, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return _json.loads(p.stdout.strip().splitlines()[-1])


def split_log(rig, run_sdk, run_lib, path):
    """Requests to `path`: (the SDK's, liblakebase's)."""
    rig.fake.request_log.clear()
    run_sdk()
    sdk = requests_to(rig, path)
    rig.fake.request_log.clear()
    run_lib()
    return sdk, requests_to(rig, path)


def test_parity_assume_group_on_the_m2m_token_request(rig):
    f, g, sp = rig.fake, rig.fake.default_group, rig.fake.default_sp
    out = {}

    def sdk():
        w = WorkspaceClient(config=Config(host=rig.url, client_id=sp["client_id"], client_secret=sp["secret"], group_id=g["id"]))
        out["sdk"] = w.database.generate_database_credential(instance_names=[f.default_instance]).token

    def lib():
        out["lib"] = lakebase(rig, "host=%s client_id=%s client_secret=%s instance=%s group_id=%s" % (
            rig.url, sp["client_id"], sp["secret"], f.default_instance, g["id"]))

    (s,), (ours,) = split_log(rig, sdk, lib, "/oidc/v1/token")
    assert ours["auth_scheme"] == s["auth_scheme"] == "Basic"
    assert ours["body"] == s["body"] == {"grant_type": "client_credentials", "scope": "all-apis", "assume_group": g["id"]}
    assert out["lib"]["role"] == g["display_name"], out["lib"]
    for pw in (out["sdk"], out["lib"]["pw"]):
        assert rig.pg.psql(g["display_name"], pw).returncode == 0


def test_parity_group_name_on_the_postgres_credential(rig):
    f, g = rig.fake, rig.fake.default_group
    out = {}

    def sdk():
        pat_client(rig).postgres.generate_database_credential(endpoint=f.default_endpoint, group_name=g["display_name"])

    def lib():
        out["lib"] = lakebase(rig, "host=%s token=%s endpoint=%s group_name=%s" % (rig.url, f.default_pat, f.default_endpoint, g["display_name"]))

    (s,), (ours,) = split_log(rig, sdk, lib, "/api/2.0/postgres/credentials")
    assert ours["body"] == s["body"] == {"endpoint": f.default_endpoint, "group_name": g["display_name"]}
    assert out["lib"]["role"] == g["display_name"] and rig.pg.psql(g["display_name"], out["lib"]["pw"]).returncode == 0


def test_parity_group_refusal_message(rig):
    with pytest.raises(ValueError) as ei:
        WorkspaceClient(config=Config(host=rig.url, token=rig.fake.default_pat, auth_type="pat", group_id="1"))
    want = 'auth type "pat" does not support group role assumption. Use Databricks OAuth authentication'
    assert want in str(ei.value)
    ours = lakebase(rig, "host=%s token=%s auth_type=pat group_id=1 instance=x" % (rig.url, rig.fake.default_pat))
    assert ours.get("code") == "CONFIG" and want in ours["error"], ours


def test_parity_request_id_user_agent_and_unified_host_header(rig):
    f = rig.fake
    f.update_settings({"unified_host": True})
    out = {}

    def sdk():
        pat_client(rig).database.generate_database_credential(instance_names=[f.default_instance])

    def lib():
        out["lib"] = lakebase(rig, "host=%s token=%s instance=%s" % (rig.url, f.default_pat, f.default_instance))

    sdk_reqs, lib_reqs = split_log(rig, sdk, lib, DB_CRED)
    (s,) = sdk_reqs
    ours = [r for r in lib_reqs if r["status"] == 200]
    assert len(ours) == 1 and "pw" in out["lib"], (lib_reqs, out)
    (o,) = ours
    assert o["headers"]["X-Databricks-Workspace-Id"] == s["headers"]["X-Databricks-Workspace-Id"] == f.workspace_id
    assert set(o["body"]) == set(s["body"]) == {"instance_names", "request_id"}
    assert len(o["body"]["request_id"]) == len(s["body"]["request_id"]) == 36
    pairs = lambda ua: dict(p.split("/", 1) for p in ua.split() if "/" in p)  # noqa: E731
    sp_, op = pairs(s["headers"]["User-Agent"]), pairs(o["headers"]["User-Agent"])
    assert (op["os"], op["auth"]) == (sp_["os"], sp_["auth"]) == ("linux", "pat"), (s["headers"]["User-Agent"], o["headers"]["User-Agent"])
    assert "liblakebase" in op


def test_parity_private_link_explanation(rig):
    rig.fake.update_settings({"private_link_redirect": True})
    with pytest.raises(errors.PrivateLinkValidationError) as ei:
        pat_client(rig).current_user.me()
    ours = lakebase(rig, "host=%s token=%s instance=x" % (rig.url, rig.fake.default_pat))
    assert ours.get("code") == "AUTH", ours
    assert str(ei.value) in ours["error"], (str(ei.value), ours["error"])


@pytest.mark.parametrize("preset", ["try_again_later", "rpc_token_bucket", "request_limit_exceeded"])
def test_parity_message_matched_retries(rig, preset):
    """liblakebase retries the union of the SDKs' messages: databricks-sdk-py's (retried by the
    SDK above, test_message_matched_retries) and the Go SDK's REQUEST_LIMIT_EXCEEDED, which the
    Python SDK leaves alone."""
    f = rig.fake
    f.add_fault({"method": "POST", "path": DB_CRED, "preset": preset, "count": 1})
    ours = lakebase(rig, "host=%s token=%s instance=%s" % (rig.url, f.default_pat, f.default_instance))
    assert "pw" in ours and f.stats()["requests"]["POST " + DB_CRED] == 2, ours
