"""Cross-check the fake's wire shapes against the official Python SDK (databricks-sdk from PyPI).

If the SDK accepts the fake's answers (host metadata, OIDC, credentials, SCIM Me,
instances, endpoints, errors), the shapes are right.
"""

import os

import pytest

sdk = pytest.importorskip("databricks.sdk")
from databricks.sdk import WorkspaceClient  # noqa: E402
from databricks.sdk import errors  # noqa: E402
from databricks.sdk.core import Config  # noqa: E402

from fake_workspace import parse_rfc3339  # noqa: E402


@pytest.fixture(autouse=True)
def _no_databricks_env(monkeypatch):
    for k in list(os.environ):
        if k.startswith("DATABRICKS_") or k.startswith("ARM_"):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/.databrickscfg")


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
