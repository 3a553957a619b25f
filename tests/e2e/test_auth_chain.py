"""End to end: every auth method of the chain, from configuration to a real PostgreSQL login.

Each scenario runs in a fresh process with a clean environment (conftest.base_env): the library
resolves the method, gets a workspace token from the fakes (fake workspace, fake `databricks` and
`az` executables, fake Azure AD / IMDS / metadata service / GitHub ID-token server, all on
127.0.0.1), mints a Lakebase password with it, and psql must log in with that password.
"""
import json
import os
import shutil

import pytest

from conftest import ROOT, base_env, psql, run_py

import fake_cloud  # tests/rig is on sys.path (conftest)

RIG_BIN = os.path.join(ROOT, "tests", "rig", "bin")
RESOURCE_ID = "/subscriptions/0f1e2d3c-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.Databricks/workspaces/lakebase"


@pytest.fixture(scope="session")
def cloud_server(rig):
    c = fake_cloud.FakeCloud(rig.fake.url).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def cloud(cloud_server):
    cloud_server.reset()
    return cloud_server


def bin_dir(tmp_path, *names, pad=True):
    """A PATH directory with copies of the fake executables; `databricks` padded past the SDKs'
    1 MiB legacy-CLI threshold unless pad=False."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for n in names:
        dst = d / n
        shutil.copy(os.path.join(RIG_BIN, n), dst)
        if n == "databricks" and pad:
            with open(dst, "a") as f:
                f.write("#" + "x" * (1024 * 1024) + "\n")
        os.chmod(dst, 0o755)
    return str(d)


def env_for(rig, tmp_path, path_dirs=(), **extra):
    e = rig.env()
    env = base_env(rig, tmp_path, LAKEBASE_INSTANCE=e["RIG_INSTANCE"], FAKE_URL=e["FAKE_URL"], **extra)
    env["PATH"] = os.pathsep.join(list(path_dirs) + ["/usr/local/bin", "/usr/bin", "/bin"])
    return env


SCENARIO = """
    try:
        c = Client(%r)
        emit({"pw": c.password(), "auth": c.auth_type(), "identity": c.identity()})
    except LakebaseError as e:
        emit({"code": NAMES[e.code], "error": e.message})
"""


def attempt(env, options=""):
    out, _ = run_py(SCENARIO % options, env)
    return out


def login(rig, env, want_auth, want_user, options=""):
    """Resolve, mint, and log in to PostgreSQL with the password."""
    out = attempt(env, options)
    assert "error" not in out, out
    assert (out["auth"], out["identity"]) == (want_auth, want_user)
    p = psql(rig, want_user, out["pw"])
    assert p.returncode == 0 and p.stdout.strip() == want_user, p.stderr
    return out


def failure(env, options=""):
    out = attempt(env, options)
    assert "error" in out, "expected a failure, got a login as %s" % out.get("identity")
    return out["code"], out["error"]


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


# --- pat / basic ------------------------------------------------------------------------------

def test_basic_login(rig, tmp_path):
    e = rig.env()
    with rig.fake._lock:
        rig.fake.passwords[e["RIG_USER"]] = "correct horse:battery#staple"
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_USERNAME=e["RIG_USER"],
                  DATABRICKS_PASSWORD="correct horse:battery#staple")
    login(rig, env, "basic", e["RIG_USER"])
    env["DATABRICKS_PASSWORD"] = "wrong"
    code, msg = failure(env)
    assert code == "AUTH" and "401" in msg and "wrong" not in msg, msg


# --- databricks-cli ---------------------------------------------------------------------------

def test_databricks_cli_login_by_host(rig, tmp_path):
    e = rig.env()
    log = str(tmp_path / "cli.log")
    env = env_for(rig, tmp_path, [bin_dir(tmp_path, "databricks")], DATABRICKS_HOST=e["DATABRICKS_HOST"],
                  FAKE_DATABRICKS_CLI_USER=e["RIG_USER"], FAKE_DATABRICKS_CLI_LOG=log)
    login(rig, env, "databricks-cli", e["RIG_USER"])
    # version probe, then one token command (while resolving) whose token served the first use
    assert lines(log) == [["version"], ["auth", "token", "--host", e["DATABRICKS_HOST"], "--force-refresh"]]


def test_databricks_cli_profile_old_version_and_cli_path(rig, tmp_path):
    """A profile + CLI 0.207.1: `--profile`, no `--force-refresh`; the CLI found via DATABRICKS_CLI_PATH."""
    e = rig.env()
    log = str(tmp_path / "cli.log")
    cli = os.path.join(bin_dir(tmp_path, "databricks"), "databricks")
    env = env_for(rig, tmp_path, DATABRICKS_CONFIG_PROFILE="ws", DATABRICKS_CLI_PATH=cli,
                  FAKE_DATABRICKS_CLI_USER=e["RIG_USER"], FAKE_DATABRICKS_CLI_LOG=log,
                  FAKE_DATABRICKS_CLI_PROFILES="ws", FAKE_DATABRICKS_CLI_VERSION="0.207.1")
    with open(os.path.join(env["HOME"], ".databrickscfg"), "w") as f:
        f.write("[ws]\nhost = %s\n" % e["DATABRICKS_HOST"])
    login(rig, env, "databricks-cli", e["RIG_USER"])
    assert lines(log)[-1] == ["auth", "token", "--profile", "ws"]


def test_databricks_cli_legacy_and_not_logged_in(rig, tmp_path):
    e = rig.env()
    # SDK 0.167's rule: a small `databricks` is rejected only when it is the old Python CLI...
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "databricks").write_text("#!/usr/bin/python3\n# -*- coding: utf-8 -*-\nimport sys\n"
                                       "from databricks_cli.cli import cli\nsys.exit(cli())\n")
    os.chmod(legacy / "databricks", 0o755)
    env = env_for(rig, tmp_path, [str(legacy)], DATABRICKS_HOST=e["DATABRICKS_HOST"], FAKE_DATABRICKS_CLI_USER=e["RIG_USER"])
    code, msg = failure(env)
    assert code == "CONFIG" and "is the legacy Databricks CLI" in msg, msg
    # ...while a small wrapper or shim (here the unpadded fake) is accepted, also behind the legacy one on PATH.
    small = bin_dir(tmp_path, "databricks", pad=False)
    env = env_for(rig, tmp_path, [str(legacy), small], DATABRICKS_HOST=e["DATABRICKS_HOST"], FAKE_DATABRICKS_CLI_USER=e["RIG_USER"])
    login(rig, env, "databricks-cli", e["RIG_USER"])

    big = tmp_path / "big"
    big.mkdir()
    env = env_for(rig, big, [bin_dir(big, "databricks")], DATABRICKS_HOST=e["DATABRICKS_HOST"],
                  FAKE_DATABRICKS_CLI_USER=e["RIG_USER"], FAKE_DATABRICKS_CLI_HOSTS="https://other.cloud.databricks.com")
    code, msg = failure(env)  # in the chain: not configured, and the reason is listed
    assert code == "CONFIG" and "databricks OAuth is not configured for this host" in msg, msg
    env["DATABRICKS_AUTH_TYPE"] = "databricks-cli"
    code, msg = failure(env)  # forced: the CLI's error, naming the method
    assert code == "AUTH", msg
    assert msg.startswith("databricks-cli auth: cannot get access token: Error: cache: databricks OAuth is not configured"), msg
    assert "databricks auth login --host %s" % e["DATABRICKS_HOST"] in msg and "exit status 1" in msg, msg


# --- metadata-service -------------------------------------------------------------------------

def test_metadata_service_login(rig, tmp_path, cloud):
    e = rig.env()
    cloud.metadata_service = {"host": e["DATABRICKS_HOST"], "user": e["RIG_SP_USER"]}
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"],
                  DATABRICKS_METADATA_SERVICE_URL=cloud.url + "/metadata-service/session-1")
    login(rig, env, "metadata-service", e["RIG_SP_USER"])
    reqs = [r for r in cloud.requests if r["path"].startswith("/metadata-service/")]
    assert len(reqs) == 1
    assert reqs[0]["headers"]["X-Databricks-Metadata-Version"] == "1"
    assert reqs[0]["headers"]["X-Databricks-Host"] == e["DATABRICKS_HOST"]


# --- OIDC token federation --------------------------------------------------------------------

def federate(rig, **policy):
    with rig.fake._lock:
        rig.fake.federation_policies.append(policy)


def test_github_oidc_login_service_principal(rig, tmp_path, cloud):
    e = rig.env()
    token_endpoint = e["DATABRICKS_HOST"] + "/oidc/v1/token"
    federate(rig, issuer=fake_cloud.GITHUB_ISSUER, subject=cloud.github["subject"], audience=token_endpoint,
             user=e["RIG_SP_USER"], client_id=e["RIG_SP_CLIENT_ID"])
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_CLIENT_ID=e["RIG_SP_CLIENT_ID"],
                  ACTIONS_ID_TOKEN_REQUEST_URL=cloud.url + "/github/idtoken?api-version=2.0",
                  ACTIONS_ID_TOKEN_REQUEST_TOKEN=cloud.github["request_token"])
    login(rig, env, "github-oidc", e["RIG_SP_USER"])
    gh = [r for r in cloud.requests if r["path"] == "/github/idtoken"]
    assert len(gh) == 1 and "audience=" + token_endpoint.replace(":", "%3A").replace("/", "%2F") in gh[0]["query"]
    ex = [r for r in rig.fake.request_log if r["path"] == "/oidc/v1/token"]
    assert ex and ex[-1]["body"]["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert ex[-1]["body"]["client_id"] == e["RIG_SP_CLIENT_ID"] and "client_secret" not in ex[-1]["body"]


def test_env_oidc_login_account_wide_federation(rig, tmp_path):
    e = rig.env()
    jwt = fake_cloud.make_jwt({"iss": "https://idp.example.com", "sub": "lakebase-job", "aud": "databricks",
                               "exp": 4102444800})
    federate(rig, issuer="https://idp.example.com", subject="lakebase-job", user=e["RIG_USER"])
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_OIDC_TOKEN=jwt)
    login(rig, env, "env-oidc", e["RIG_USER"])
    # DATABRICKS_OIDC_TOKEN_ENV names another variable
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_OIDC_TOKEN_ENV="MY_JWT", MY_JWT=jwt)
    login(rig, env, "env-oidc", e["RIG_USER"])


def test_file_oidc_login_and_untrusted_token(rig, tmp_path):
    e = rig.env()
    jwt = fake_cloud.make_jwt({"iss": "https://k8s.example.com", "sub": "system:serviceaccount:app:lakebase",
                               "aud": "databricks", "exp": 4102444800})
    path = tmp_path / "token"
    path.write_text(jwt + "\n")
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_OIDC_TOKEN_FILEPATH=str(path))
    code, msg = failure(env)
    assert code == "AUTH" and "file-oidc auth: token exchange" in msg and "invalid_grant" in msg and jwt[:20] not in msg, msg
    federate(rig, issuer="https://k8s.example.com", subject="system:serviceaccount:app:lakebase", user=e["RIG_SP_USER"])
    login(rig, env, "file-oidc", e["RIG_SP_USER"])


# --- Azure ------------------------------------------------------------------------------------

def azure_env(rig, tmp_path, cloud, path_dirs=(), **extra):
    e = rig.env()
    return env_for(rig, tmp_path, path_dirs, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_AZURE_RESOURCE_ID=RESOURCE_ID,
                   LAKEBASE_TEST_AZURE_LOGIN_URL=cloud.url, LAKEBASE_TEST_IMDS_URL=cloud.url, **extra)


def test_github_oidc_azure_login(rig, tmp_path, cloud):
    e = rig.env()
    cloud.aad_apps["gh-app"] = {"user": e["RIG_SP_USER"], "github_subject": cloud.github["subject"],
                                "require_management": False}
    env = azure_env(rig, tmp_path, cloud, ARM_CLIENT_ID="gh-app", ARM_TENANT_ID=cloud.tenant_id,
                    ACTIONS_ID_TOKEN_REQUEST_URL=cloud.url + "/github/idtoken?api-version=2.0",
                    ACTIONS_ID_TOKEN_REQUEST_TOKEN=cloud.github["request_token"])
    login(rig, env, "github-oidc-azure", e["RIG_SP_USER"])
    gh = [r for r in cloud.requests if r["path"] == "/github/idtoken"]
    assert gh and gh[0]["query"].endswith("audience=api%3A%2F%2FAzureADTokenExchange")
    aad = [r for r in cloud.requests if r["path"].endswith("/oauth2/token")]
    assert aad[0]["form"]["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert aad[0]["form"]["resource"] == fake_cloud.AZURE_DATABRICKS_APP_ID


def test_azure_msi_login(rig, tmp_path, cloud):
    e = rig.env()
    cloud.msi["uami-1"] = e["RIG_SP_USER"]
    env = azure_env(rig, tmp_path, cloud, ARM_USE_MSI="true", ARM_CLIENT_ID="uami-1")
    login(rig, env, "azure-msi", e["RIG_SP_USER"])
    imds = [r for r in cloud.requests if r["path"] == "/metadata/identity/oauth2/token"]
    assert sorted(r["query"].split("resource=")[1].split("&")[0] for r in imds) == [
        fake_cloud.AZURE_DATABRICKS_APP_ID, "https%3A%2F%2Fmanagement.core.windows.net%2F"]
    assert all(r["headers"].get("Metadata") == "true" for r in imds)
    api = [r for r in rig.fake.request_log if r["path"].startswith("/api/")]
    assert all(r["headers"].get("X-Databricks-Azure-Workspace-Resource-Id") == RESOURCE_ID for r in api), api[0]["headers"]


def test_azure_client_secret_login_with_tenant_discovery(rig, tmp_path, cloud):
    e = rig.env()
    cloud.aad_apps["sp-app"] = {"user": e["RIG_SP_USER"], "secret": "azure~secret.value-1"}
    rig.fake.update_settings({"azure_tenant_id": cloud.tenant_id})
    env = azure_env(rig, tmp_path, cloud, ARM_CLIENT_ID="sp-app", ARM_CLIENT_SECRET="azure~secret.value-1")
    login(rig, env, "azure-client-secret", e["RIG_SP_USER"])
    assert [r["path"] for r in cloud.requests] == ["/%s/oauth2/token" % cloud.tenant_id] * 2
    assert any(r["path"] == "/aad/auth" for r in rig.fake.request_log)

    env["ARM_CLIENT_SECRET"] = "wrong-secret"
    code, msg = failure(env)
    assert code == "AUTH" and "azure-client-secret auth: Azure AD token request" in msg, msg
    assert "AADSTS7000215: Invalid client secret provided. See https://login.microsoftonline.com/error" in msg, msg
    assert "wrong-secret" not in msg


def test_azure_service_principal_needs_the_management_token(rig, tmp_path, cloud):
    """The fake workspace rejects an Azure SP token without its management token: the header matters."""
    e = rig.env()
    tok = cloud.mint(e["RIG_SP_USER"], azure="databricks-sp")["access_token"]
    import urllib.request, urllib.error
    req = urllib.request.Request(e["DATABRICKS_HOST"] + "/api/2.0/preview/scim/v2/Me",
                                 headers={"Authorization": "Bearer " + tok})
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=10)
    assert ei.value.code == 403


def test_azure_cli_login(rig, tmp_path, cloud):
    e = rig.env()
    log = str(tmp_path / "az.log")
    env = azure_env(rig, tmp_path, cloud, [bin_dir(tmp_path, "az")], FAKE_AZ_USER=e["RIG_USER"], FAKE_AZ_LOG=log,
                    FAKE_AZ_NO_EXPIRES_ON="1")
    login(rig, env, "azure-cli", e["RIG_USER"])
    calls = lines(log)
    assert calls[0] == ["account", "get-access-token", "--resource", fake_cloud.AZURE_DATABRICKS_APP_ID, "--output", "json",
                        "--subscription", RESOURCE_ID.split("/")[2]]
    # the user has no management-API access: that token fails and the header is left out
    assert any("https://management.core.windows.net/" in c for c in calls)

    env.pop("FAKE_AZ_USER")
    code, msg = failure(env)
    assert code == "AUTH" and "azure-cli auth: cannot get an access token" in msg and "az login" in msg, msg


# --- precedence and conflicts -----------------------------------------------------------------

def test_pat_comes_first_and_nothing_else_runs(rig, tmp_path, cloud):
    e = rig.env()
    log = str(tmp_path / "cli.log")
    env = env_for(rig, tmp_path, [bin_dir(tmp_path, "databricks", "az")], DATABRICKS_HOST=e["DATABRICKS_HOST"],
                  DATABRICKS_TOKEN=e["RIG_PAT"], FAKE_DATABRICKS_CLI_USER=e["RIG_SP_USER"], FAKE_DATABRICKS_CLI_LOG=log,
                  DATABRICKS_OIDC_TOKEN="x.y.z")
    login(rig, env, "pat", e["RIG_USER"])
    assert lines(log) == []


def test_databricks_cli_before_env_oidc_but_skipped_without_login(rig, tmp_path):
    e = rig.env()
    jwt = fake_cloud.make_jwt({"iss": "https://idp.example.com", "sub": "job", "exp": 4102444800})
    federate(rig, issuer="https://idp.example.com", subject="job", user=e["RIG_SP_USER"])
    env = env_for(rig, tmp_path, [bin_dir(tmp_path, "databricks")], DATABRICKS_HOST=e["DATABRICKS_HOST"],
                  DATABRICKS_OIDC_TOKEN=jwt, FAKE_DATABRICKS_CLI_USER=e["RIG_USER"])
    login(rig, env, "databricks-cli", e["RIG_USER"])  # logged in: the CLI comes first (Go order)
    env["FAKE_DATABRICKS_CLI_HOSTS"] = "https://elsewhere.cloud.databricks.com"
    login(rig, env, "env-oidc", e["RIG_SP_USER"])  # no login for this host: on to env-oidc


def test_conflicting_methods_need_auth_type(rig, tmp_path):
    e = rig.env()
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                  DATABRICKS_CLIENT_ID=e["RIG_SP_CLIENT_ID"], DATABRICKS_CLIENT_SECRET=e["RIG_SP_CLIENT_SECRET"])
    code, msg = failure(env)
    assert code == "CONFIG" and "more than one authorization method configured: oauth and pat" in msg, msg
    assert e["RIG_PAT"] not in msg and e["RIG_SP_CLIENT_SECRET"] not in msg
    env["DATABRICKS_AUTH_TYPE"] = "oauth-m2m"
    login(rig, env, "oauth-m2m", e["RIG_SP_USER"])
    env["DATABRICKS_AUTH_TYPE"] = "pat"
    login(rig, env, "pat", e["RIG_USER"])


def test_auth_type_forces_a_method_that_is_not_configured(rig, tmp_path):
    e = rig.env()
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                  DATABRICKS_AUTH_TYPE="azure-client-secret")
    code, msg = failure(env)
    assert code == "CONFIG" and msg.startswith("azure-client-secret auth: not configured: needs an Azure"), msg
    assert "token=***" in msg and e["RIG_PAT"] not in msg


# --- the empty environment --------------------------------------------------------------------

def test_empty_environment_says_what_to_set(rig, tmp_path):
    e = rig.env()
    env = env_for(rig, tmp_path)
    env.pop("LAKEBASE_INSTANCE")
    code, msg = failure(env)
    assert code == "CONFIG" and "DATABRICKS_HOST" in msg, msg

    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"])
    code, msg = failure(env)
    assert code == "CONFIG", msg
    assert "Set one of: DATABRICKS_TOKEN (a personal access token), DATABRICKS_CLIENT_ID + DATABRICKS_CLIENT_SECRET" in msg, msg
    assert "databricks auth login --host" in msg
    for name in ("pat", "basic", "oauth-m2m", "databricks-cli", "metadata-service", "github-oidc", "env-oidc",
                 "file-oidc", "github-oidc-azure", "azure-msi", "azure-client-secret", "azure-cli"):
        assert name + " (" in msg, (name, msg)
    assert msg.endswith("Config: host=%s, instance=%s. Env: DATABRICKS_HOST, LAKEBASE_INSTANCE" % (
        e["DATABRICKS_HOST"], e["RIG_INSTANCE"])), msg


# --- SDK 0.167: group roles, azure-devops-oidc, model-serving, external-browser ----------------

ROLE_SCENARIO = """
    try:
        c = Client(%r)
        emit({"pw": c.password(), "auth": c.auth_type(), "identity": c.identity(), "role": c.postgres_role()})
    except LakebaseError as e:
        emit({"code": NAMES[e.code], "error": e.message})
"""


def group_login(rig, env, want_auth, want_identity, options=""):
    """Resolve, mint, and log in to PostgreSQL as the group's role (the default group)."""
    g = rig.fake.default_group
    out, _ = run_py(ROLE_SCENARIO % options, env)
    assert "error" not in out, out
    assert (out["auth"], out["identity"], out["role"]) == (want_auth, want_identity, g["display_name"])
    p = psql(rig, g["display_name"], out["pw"])
    assert p.returncode == 0 and p.stdout.strip() == g["display_name"], p.stderr
    assert psql(rig, want_identity, out["pw"]).returncode != 0, "the token is the group's, not the caller's"
    return out


def token_requests(rig):
    return [r for r in rig.fake.request_log if r["path"].endswith("/v1/token")]


def test_group_id_m2m_logs_in_as_the_group_role(rig, tmp_path):
    e = rig.env()
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_CLIENT_ID=e["RIG_SP_CLIENT_ID"],
                  DATABRICKS_CLIENT_SECRET=e["RIG_SP_CLIENT_SECRET"], DATABRICKS_GROUP_ID=e["RIG_GROUP_ID"])
    group_login(rig, env, "oauth-m2m", e["RIG_SP_USER"])
    (tok,) = token_requests(rig)
    assert tok["body"]["assume_group"] == e["RIG_GROUP_ID"] and tok["body"]["grant_type"] == "client_credentials"
    # Autoscaling too, and the role comes from SCIM /Groups once.
    env["LAKEBASE_ENDPOINT"] = e["RIG_ENDPOINT"]
    del env["LAKEBASE_INSTANCE"]
    group_login(rig, env, "oauth-m2m", e["RIG_SP_USER"])
    assert rig.fake.stats()["requests"]["GET /api/2.0/preview/scim/v2/Groups/%s" % e["RIG_GROUP_ID"]] == 2


def test_group_id_env_oidc_logs_in_as_the_group_role(rig, tmp_path):
    e = rig.env()
    jwt = fake_cloud.make_jwt({"iss": "https://idp.example.com", "sub": "group-job", "aud": "databricks", "exp": 4102444800})
    federate(rig, issuer="https://idp.example.com", subject="group-job", user=e["RIG_USER"])
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_OIDC_TOKEN=jwt,
                  DATABRICKS_GROUP_ID=e["RIG_GROUP_ID"])
    group_login(rig, env, "env-oidc", e["RIG_USER"])
    (tok,) = token_requests(rig)
    assert tok["body"]["assume_group"] == e["RIG_GROUP_ID"]
    assert tok["body"]["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"


def test_group_name_autoscaling_with_a_pat(rig, tmp_path):
    e = rig.env()
    g = rig.fake.default_group
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                  LAKEBASE_ENDPOINT=e["RIG_ENDPOINT"], LAKEBASE_GROUP_NAME=g["display_name"])
    del env["LAKEBASE_INSTANCE"]
    group_login(rig, env, "pat", e["RIG_USER"])
    (req,) = [r for r in rig.fake.request_log if r["path"] == "/api/2.0/postgres/credentials"]
    assert req["body"] == {"endpoint": e["RIG_ENDPOINT"], "group_name": g["display_name"]}
    # With a Provisioned instance: a configuration error before anything is sent.
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                  LAKEBASE_GROUP_NAME=g["display_name"])
    code, msg = failure(env)
    assert code == "CONFIG" and "group_name is set, but instance" in msg, msg


def test_group_id_is_refused_by_methods_that_cannot_assume_a_group(rig, tmp_path):
    e = rig.env()
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_TOKEN=e["RIG_PAT"],
                  DATABRICKS_GROUP_ID=e["RIG_GROUP_ID"])
    code, msg = failure(env)  # the chain: pat steps aside, nothing else is configured
    assert code == "CONFIG" and "pat (group_id is set and this method cannot assume a group" in msg, msg
    assert e["RIG_PAT"] not in msg
    env["DATABRICKS_AUTH_TYPE"] = "pat"
    code, msg = failure(env)  # named: the SDK's message
    assert code == "CONFIG", msg
    assert msg.startswith('pat auth: auth type "pat" does not support group role assumption. Use Databricks OAuth authentication'), msg
    assert rig.fake.stats()["requests"] == {}, "nothing was sent"


def test_azure_devops_oidc_login(rig, tmp_path, cloud):
    e = rig.env()
    federate(rig, **cloud.ado_policy(e["RIG_SP_USER"], client_id=e["RIG_SP_CLIENT_ID"]))
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_CLIENT_ID=e["RIG_SP_CLIENT_ID"],
                  **cloud.ado_env())
    login(rig, env, "azure-devops-oidc", e["RIG_SP_USER"])
    ado = [r for r in cloud.requests if r["path"].startswith("/ado/")]
    assert len(ado) == 1 and ado[0]["method"] == "POST" and ado[0]["query"] == "api-version=7.2-preview.1"
    (ex,) = token_requests(rig)
    assert ex["body"]["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert ex["body"]["client_id"] == e["RIG_SP_CLIENT_ID"] and "client_secret" not in ex["body"]
    # A wrong pipeline token: an auth error naming the method, the token never shown.
    env["SYSTEM_ACCESSTOKEN"] = "ado-wrong-" + "9" * 20
    code, msg = failure(env)
    assert code == "AUTH" and "Azure DevOps OIDC token request" in msg and "9" * 20 not in msg, msg


def test_model_serving_login(rig, tmp_path, cloud):
    e = rig.env()
    creds = tmp_path / "serving-creds"
    cloud.model_serving_rotate(creds, e["RIG_USER"])
    env = env_for(rig, tmp_path, **cloud.model_serving_env(creds))  # no DATABRICKS_HOST: the serving host
    out = login(rig, env, "model-serving", e["RIG_USER"])
    assert out["pw"]
    # Not in Model Serving: not configured.
    env["IS_IN_DB_MODEL_SERVING_ENV"] = "false"
    code, msg = failure(env)
    assert code == "CONFIG" and "model-serving (needs Databricks Model Serving" in msg, msg


def test_external_browser_points_to_the_cli_login(rig, tmp_path):
    e = rig.env()
    env = env_for(rig, tmp_path, DATABRICKS_HOST=e["DATABRICKS_HOST"], DATABRICKS_AUTH_TYPE="external-browser")
    code, msg = failure(env)
    assert code == "CONFIG", msg
    assert msg.startswith("external-browser auth: liblakebase cannot run an interactive browser login"), msg
    assert "databricks auth login" in msg and "auth_type=databricks-cli" in msg
