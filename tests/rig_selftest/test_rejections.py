"""Lakebase rejection texts raised by the real PostgreSQL (lakebase_rig_auth + pg_reject_mode)."""

import pytest

import pgwire

ALICE = "alice@example.com"
DECODE = 'Failed to decode token for role "{role}"'
PASSWORD = 'password authentication failed for user "{role}"'
IDENTITY = ('A valid oauth token was supplied but the token\'s identity "{identity}" did not match the security '
            'label configured for role "{role}"')


def fatal_line(stderr):
    """psql's error up to the FATAL text, e.g. 'FATAL:  Failed to decode token for role "x"'."""
    assert "FATAL:  " in stderr, stderr
    return stderr.split("FATAL:  ", 1)[1].strip()


def raw(rig, user, password):
    return pgwire.login("localhost", rig.pg.port, user, password, sslmode="verify-full", ca_file=rig.pg.ca_file)


def test_default_is_postgres_pam_text(api, rig):
    p = rig.pg.psql(ALICE, "x" * 900)
    assert p.returncode == 2 and fatal_line(p.stderr) == 'PAM authentication failed for user "%s"' % ALICE
    r = raw(rig, ALICE, "x" * 900)
    assert r.sqlstate == "28000" and r.message == 'PAM authentication failed for user "%s"' % ALICE


@pytest.mark.parametrize("mode,template", [("decode", DECODE), ("password", PASSWORD), ("identity", IDENTITY)])
def test_fixed_modes_word_every_failure(api, rig, mode, template):
    api.ctl("POST", "/_fake/config", {"pg_reject_mode": mode})
    sp = rig.fake.default_sp["application_id"]
    alice_token = api.mint_db()["token"]
    # a garbage password, and alice's real token presented for the service principal's role
    p = rig.pg.psql(ALICE, "x" * 900)
    assert fatal_line(p.stderr) == template.format(role=ALICE, identity=ALICE)
    p = rig.pg.psql(sp, alice_token)
    assert fatal_line(p.stderr) == template.format(role=sp, identity=ALICE)
    r = raw(rig, sp, alice_token)
    assert r.password_sent and r.sqlstate == "28P01"
    assert r.message == template.format(role=sp, identity=ALICE)
    # PostgreSQL still decides: the right token still logs in
    p = rig.pg.psql(ALICE, alice_token, "select current_user")
    assert p.returncode == 0 and p.stdout.strip() == ALICE, p.stderr


def test_lakebase_mode_picks_the_text_for_the_reason(api, rig):
    api.ctl("POST", "/_fake/config", {"pg_reject_mode": "lakebase"})
    sp = rig.fake.default_sp["application_id"]
    tok = api.mint_db()["token"]
    assert fatal_line(rig.pg.psql(ALICE, "not-a-token").stderr) == DECODE.format(role=ALICE)
    assert fatal_line(rig.pg.psql(sp, tok).stderr) == IDENTITY.format(role=sp, identity=ALICE)
    api.ctl("POST", "/_fake/clock", {"advance_seconds": 3600})
    assert fatal_line(rig.pg.psql(ALICE, tok).stderr) == PASSWORD.format(role=ALICE)
    reasons = api.ctl("GET", "/_fake/stats")["checks"]["reasons"]
    assert reasons == {"unknown token": 1, "token was minted for alice@example.com": 1, "token expired": 1}


def test_sqlstate_custom_text_and_switching_back(api, rig):
    api.ctl("POST", "/_fake/config", {"pg_reject_mode": "custom", "pg_reject_sqlstate": "28000",
                                      "pg_reject_text": "role {role} refused token of {identity}"})
    r = raw(rig, ALICE, "y" * 100)
    assert (r.sqlstate, r.message) == ("28000", "role %s refused token of %s" % (ALICE, ALICE))
    api.ctl("POST", "/_fake/config", {"pg_reject_mode": "identity", "pg_reject_identity": "someone@example.com",
                                      "pg_reject_sqlstate": None})
    r = raw(rig, ALICE, "y" * 100)
    assert r.sqlstate == "28P01" and r.message == IDENTITY.format(role=ALICE, identity="someone@example.com")
    api.ctl("POST", "/_fake/config", {"pg_reject_mode": "pam"})
    assert raw(rig, ALICE, "y" * 100).sqlstate == "28000"


def test_check_endpoint_reports_the_text(api, rig):
    api.ctl("POST", "/_fake/config", {"pg_reject_mode": "decode"})
    out = api.ctl("POST", "/_fake/check", {"user": "bob", "password": "nope"})
    assert out == {"ok": False, "reason": "unknown token",
                   "reject": {"sqlstate": "28P01", "message": DECODE.format(role="bob"), "mode": "decode"}}
    s, b = api.call("POST", "/_fake/config", {"pg_reject_mode": "loud"})
    assert s == 400 and "pg_reject_mode" in b["error"]
    s, b = api.call("POST", "/_fake/config", {"pg_reject_sqlstate": "28p01"})
    assert s == 400


def test_plaintext_and_admin_paths_untouched(api, rig):
    api.ctl("POST", "/_fake/config", {"pg_reject_mode": "decode"})
    p = rig.pg.psql(ALICE, "x", sslmode="disable")
    assert p.returncode == 2 and "no encryption" in p.stderr
    assert rig.pg.admin_psql("select 1").strip() == "1"


def test_reset_returns_to_pam(api, rig):
    api.ctl("POST", "/_fake/config", {"pg_reject_mode": "decode"})
    rig.fake.reset()
    assert raw(rig, ALICE, "z" * 80).sqlstate == "28000"
