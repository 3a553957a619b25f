"""TLS impostors: Postgres servers that must never receive a token (RIG_IMPOSTOR_*_PORT)."""

import hashlib
import os
import subprocess

import pgwire

ALICE = "alice@example.com"


def psql(rig, token, port, sslmode, host="localhost"):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSWORD"] = token
    env["HOME"] = "/nonexistent"  # no ~/.postgresql/root.crt
    conn = "host=%s port=%s dbname=databricks_postgres user=%s sslmode=%s connect_timeout=5" % (
        host, port, ALICE, sslmode)
    if sslmode.startswith("verify"):
        # with an sslrootcert file present, libpq's sslmode=require verifies the CA too (like verify-ca)
        conn += " sslrootcert=" + rig.pg.ca_file
    return subprocess.run([rig.pg.psql_path(), "-X", "-At", "-w", conn, "-c", "select 1"], env=env,
                          capture_output=True, text=True, timeout=30)


def attempts(api):
    return api.ctl("GET", "/_fake/impostors")


def test_env_and_certificates(rig):
    env = rig.env()
    assert env["RIG_IMPOSTOR_WRONG_HOST_NAME"] == "wrong-host.invalid"
    for k in ("RIG_IMPOSTOR_UNTRUSTED_PORT", "RIG_IMPOSTOR_WRONG_HOST_PORT", "RIG_IMPOSTOR_PLAINTEXT_PORT"):
        assert int(env[k]) > 0 and env[k] not in (env["PGPORT"], env["RIG_COLD_PORT"])
    assert open(env["RIG_IMPOSTOR_CA_FILE"]).read() != open(env["RIG_CA_FILE"]).read()


def test_untrusted_certificate(api, rig):
    port = rig.impostors["untrusted"].port
    tok = api.mint_db()["token"]
    # verifying clients stop at the handshake: nothing is sent
    for mode in ("verify-ca", "verify-full"):
        p = psql(rig, tok, port, mode)
        assert p.returncode == 2 and "certificate verify failed" in p.stderr, p.stderr
    r = pgwire.login("localhost", port, ALICE, tok, sslmode="verify-full", ca_file=rig.pg.ca_file)
    assert not r.tls and "CERTIFICATE_VERIFY_FAILED" in r.tls_error and not r.password_sent
    got = attempts(api)
    assert got["passwords_received"] == 0 and got["tokens_received"] == 0
    assert [a["tls"] for a in got["attempts"]] == [a["tls"] for a in got["attempts"] if a["tls"].startswith(
        "handshake failed")] and len(got["attempts"]) == 3
    # sslmode=require does not verify: the impostor asks for the password and gets the token
    p = psql(rig, tok, port, "require")
    assert p.returncode == 2 and 'password authentication failed for user "%s"' % ALICE in p.stderr
    got = attempts(api)
    leak = got["attempts"][-1]
    assert got["tokens_received"] == 1 and leak["secret_kind"] == "lakebase" and leak["tls"] == "established"
    assert leak["password_sha256"] == hashlib.sha256(tok.encode()).hexdigest()
    assert leak["password_length"] == len(tok) and leak["password_prefix"] == tok[:12]
    assert leak["startup"]["user"] == ALICE and leak["startup"]["database"] == "databricks_postgres"


def test_wrong_host_name(api, rig):
    port = rig.impostors["wrong_host"].port
    tok = api.mint_db()["token"]
    p = psql(rig, tok, port, "verify-full")
    assert p.returncode == 2 and "does not match host name" in p.stderr, p.stderr
    assert attempts(api)["passwords_received"] == 0
    # the certificate is the rig CA's, so verify-ca (no name check) hands the token over
    p = psql(rig, tok, port, "verify-ca")
    assert p.returncode == 2 and "password authentication failed" in p.stderr, p.stderr
    got = attempts(api)
    assert got["tokens_received"] == 1 and got["attempts"][-1]["secret_kind"] == "lakebase"


def test_plaintext(api, rig):
    port = rig.impostors["plaintext"].port
    tok = api.mint_db()["token"]
    p = psql(rig, tok, port, "require")
    assert p.returncode == 2 and "server does not support SSL" in p.stderr, p.stderr
    assert attempts(api)["passwords_received"] == 0
    p = psql(rig, tok, port, "prefer")  # falls back to plaintext and sends the token in the clear
    assert p.returncode == 2 and "password authentication failed" in p.stderr
    got = attempts(api)
    assert got["tokens_received"] == 1
    assert got["attempts"][-1]["ssl_requested"] is True and got["attempts"][-1]["tls"] is None
    r = pgwire.login("localhost", port, ALICE, "not a secret", sslmode="disable")
    assert r.password_sent and r.sqlstate == "28P01"
    got = attempts(api)
    assert got["passwords_received"] == 2 and got["tokens_received"] == 1
    assert got["attempts"][-1]["secret_kind"] is None


def test_other_secrets_are_recognised(api, rig):
    port = rig.impostors["plaintext"].port
    for secret, kind in ((rig.fake.default_pat, "pat"), (rig.fake.default_sp["secret"], "client_secret"),
                         (api.m2m_token()[1]["access_token"], "oauth")):
        pgwire.login("localhost", port, ALICE, secret, sslmode="disable")
        assert attempts(api)["attempts"][-1]["secret_kind"] == kind


def test_clear_and_reset(api, rig):
    pgwire.login("localhost", rig.impostors["plaintext"].port, ALICE, "x", sslmode="disable")
    assert len(attempts(api)["attempts"]) == 1
    api.ctl("DELETE", "/_fake/impostors")
    assert attempts(api)["attempts"] == []
    pgwire.login("localhost", rig.impostors["plaintext"].port, ALICE, "x", sslmode="disable")
    rig.fake.reset()
    assert attempts(api)["attempts"] == []
