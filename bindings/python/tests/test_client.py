"""lakebase.Client, get_password and errors against the fake workspace."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import lakebase
from lakebase import _ffi


def test_version_and_library() -> None:
    assert lakebase.version().startswith("0.")
    assert "liblakebase" in lakebase.library_path()


def test_options_string_quotes_every_value() -> None:
    assert lakebase.options_string(host="h", instance=None, http_timeout_seconds=5) == \
        "host='h' http_timeout_seconds='5'"
    assert lakebase.quote_value("it's a \\ path") == "'it\\'s a \\\\ path'"
    with pytest.raises(lakebase.InvalidArgumentError):
        lakebase.options_string(**{"bad key": "x"})
    with pytest.raises(ValueError):  # InvalidArgumentError is a ValueError too
        lakebase.options_string(token="a\0b")


def test_pat_client(client: lakebase.Client, rig_env: dict) -> None:
    pw = client.password()
    assert len(pw) > 500 and pw.count(".") == 2  # JWT-shaped, opaque
    assert client.password() == pw  # cached by the library
    assert client.identity == rig_env["RIG_USER"]
    assert client.auth_type == "pat"
    assert client.refresh_error is None
    assert client.expiry is not None and client.expiry > time.time() + 60


def test_m2m_client(rig_env: dict) -> None:
    with lakebase.Client(host=rig_env["FAKE_URL"], client_id=rig_env["RIG_SP_CLIENT_ID"],
                         client_secret=rig_env["RIG_SP_CLIENT_SECRET"], endpoint=rig_env["RIG_ENDPOINT"]) as c:
        assert c.auth_type == "oauth-m2m"
        assert c.password()
        assert c.identity == rig_env["RIG_SP_USER"]


def test_expiry_is_none_before_first_password(rig_env: dict) -> None:
    # A target no other test uses, so no cache entry exists yet.
    with lakebase.Client(host=rig_env["FAKE_URL"], token=rig_env["RIG_PAT"], endpoint=rig_env["RIG_ENDPOINT"],
                         http_timeout_seconds=30) as c:
        assert c.expiry is None
        c.password()
        assert c.expiry is not None


def test_refresh_mints_a_new_token(client: lakebase.Client, fake) -> None:
    before = client.password()
    n = fake.minted()
    client.refresh()
    assert fake.minted() == n + 1
    assert client.password() != before


def test_insufficient_size_protocol(client: lakebase.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = client.password()
    monkeypatch.setattr(_ffi, "_FIRST_GUESS", 16)  # forces INSUFFICIENT_SIZE, then an exact buffer
    assert client.password() == expected
    assert client.identity.endswith("@example.com")


def test_wrong_pat_is_auth_error_without_the_token(rig_env: dict) -> None:
    bad = "dapi" + "0123456789abcdef" * 2
    with lakebase.Client(host=rig_env["FAKE_URL"], token=bad, instance=rig_env["RIG_INSTANCE"]) as c:
        with pytest.raises(lakebase.AuthError) as ei:
            c.password()
    e = ei.value
    assert isinstance(e, lakebase.LakebaseError)
    assert e.code == 4 and e.code_name == "LAKEBASE_AUTH_ERROR"
    assert "403" in str(e) and "pat" in str(e)
    assert bad not in str(e) and bad not in repr(e)


def test_missing_target_is_config_error(rig_env: dict) -> None:
    with lakebase.Client(host=rig_env["FAKE_URL"], token=rig_env["RIG_PAT"]) as c:
        with pytest.raises(lakebase.ConfigError, match="LAKEBASE_INSTANCE"):
            c.password()


def test_unknown_option_is_invalid_argument() -> None:
    with pytest.raises(lakebase.InvalidArgumentError, match='unknown option "bogus"'):
        lakebase.Client(host="https://x.cloud.databricks.com", bogus="1")


def test_unknown_instance_is_api_error(rig_env: dict) -> None:
    with lakebase.Client(host=rig_env["FAKE_URL"], token=rig_env["RIG_PAT"], instance="no-such-db") as c:
        with pytest.raises(lakebase.ApiError, match="RESOURCE_DOES_NOT_EXIST"):
            c.password()


def test_unreachable_workspace_is_network_error(rig_env: dict) -> None:
    with lakebase.Client(host="http://127.0.0.1:1", token=rig_env["RIG_PAT"], instance="x",
                         retry_timeout_seconds=1) as c:
        with pytest.raises(lakebase.NetworkError):
            c.password()


def test_quoted_values_reach_the_library(tmp_path, rig_env: dict) -> None:
    """A config file path with a quote, a backslash and a space survives the options string."""
    d = tmp_path / "it's a \\ dir"
    d.mkdir()
    cfg = d / "databrickscfg"
    cfg.write_text("[rig]\nhost = %s\ntoken = %s\n" % (rig_env["FAKE_URL"], rig_env["RIG_PAT"]))
    with lakebase.Client(config_file=cfg, profile="rig", instance=rig_env["RIG_INSTANCE"]) as c:
        assert c.identity == rig_env["RIG_USER"]
        assert c.password()


def test_close_and_context_manager(pat_options: dict) -> None:
    c = lakebase.Client(**pat_options)
    with c:
        assert not c.closed
    assert c.closed
    c.close()  # idempotent
    with pytest.raises(lakebase.InvalidArgumentError, match="closed"):
        c.password()


def test_threads_share_one_client(client: lakebase.Client) -> None:
    expected = client.password()
    got = []
    errors = []

    def worker() -> None:
        try:
            for _ in range(200):
                got.append(client.password())
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert set(got) == {expected}


def _run_child(code: str, env: dict) -> dict:
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_default_client_from_environment(rig_env: dict) -> None:
    """lakebase.get_password() in a fresh process configured only by DATABRICKS_* / LAKEBASE_* variables."""
    env = dict(os.environ, DATABRICKS_HOST=rig_env["FAKE_URL"], DATABRICKS_TOKEN=rig_env["RIG_PAT"],
               LAKEBASE_INSTANCE=rig_env["RIG_INSTANCE"])
    out = _run_child("""
        import json, lakebase, lakebase.psycopg
        pw = lakebase.get_password()
        d = lakebase.default_client()
        d.close()  # borrowed: a no-op
        with lakebase.psycopg.connect() as conn:  # user = identity, password from the default client
            user = conn.execute("select current_user").fetchone()[0]
        print(json.dumps({"len": len(pw), "identity": d.identity, "auth": d.auth_type, "user": user,
                          "same": lakebase.get_password() == pw}))
    """, env)
    assert out == {"len": out["len"], "identity": rig_env["RIG_USER"], "auth": "pat", "user": rig_env["RIG_USER"],
                   "same": True}
    assert out["len"] > 500


def test_default_client_config_error_names_what_to_set() -> None:
    out = _run_child("""
        import json, lakebase
        try:
            lakebase.get_password()
            print(json.dumps({"ok": True}))
        except lakebase.ConfigError as e:
            print(json.dumps({"type": type(e).__name__, "code": e.code, "msg": str(e)}))
    """, dict(os.environ))
    assert out["type"] == "ConfigError" and out["code"] == 3
    assert "DATABRICKS_HOST" in out["msg"] or "host" in out["msg"]


def test_library_not_found_error() -> None:
    out = _run_child("""
        import json, lakebase
        try:
            lakebase.get_password()
        except lakebase.LibraryNotFoundError as e:
            print(json.dumps({"msg": str(e), "oserror": isinstance(e, OSError)}))
    """, dict(os.environ, LAKEBASE_LIBRARY="/nonexistent/liblakebase.so"))
    assert out["oserror"] and "LAKEBASE_LIBRARY" in out["msg"]
