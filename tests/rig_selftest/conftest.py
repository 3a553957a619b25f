import base64
import json
import os
import sys

import pytest

RIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rig")
if RIG_DIR not in sys.path:
    sys.path.insert(0, RIG_DIR)

from rig import Rig, http_json, http_request  # noqa: E402


def pytest_terminal_summary(terminalreporter):
    """Say which databricks-sdk the cross-check ran against (shown with -q too)."""
    try:
        from databricks.sdk.version import __version__
    except ImportError:
        __version__ = "NOT INSTALLED"
    terminalreporter.write_line("rig self-tests: official SDK cross-check against databricks-sdk %s" % __version__)


@pytest.fixture(scope="session")
def rig():
    r = Rig().start()
    sys.stderr.write("\nrig up in %.2fs at %s (pg port %s)\n" % (r.startup_seconds, r.url, r.pg.port))
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(autouse=True)
def _fresh_fake(request):
    """Every test starts from the initial identities/settings with no faults, tokens or stats."""
    if "rig" in request.fixturenames:
        request.getfixturevalue("rig").fake.reset()
    yield


class Api(object):
    def __init__(self, rig):
        self.rig = rig
        self.url = rig.url

    def call(self, method, path, body=None, token=None, headers=None, timeout=10):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        return http_json(self.url, method, path, body, headers=h, timeout=timeout)

    def raw(self, method, path, data, token=None, content_type="application/json"):
        """Bytes in as given (malformed bodies too); (status, headers, parsed JSON) out."""
        h = {"Content-Type": content_type}
        if token:
            h["Authorization"] = "Bearer " + token
        status, headers, body = http_request(self.url, method, path, data, h)
        return status, headers, json.loads(body.decode())

    def ctl(self, method, path, body=None):
        status, out = http_json(self.url, method, path, body)
        assert status == 200, (status, out)
        return out

    def mint_db(self, token=None, instance=None):
        """POST /api/2.0/database/credentials (with a request_id, which the fake requires by default)."""
        s, b = self.call("POST", "/api/2.0/database/credentials",
                         {"instance_names": [instance or self.rig.fake.default_instance],
                          "request_id": "9b6b0b0e-6a70-4b34-9a0e-7d3a0f7c2b11"},
                         token=token or self.rig.fake.default_pat)
        assert s == 200, (s, b)
        return b

    def mint_pg(self, token=None, endpoint=None, **extra):
        body = {"endpoint": endpoint or self.rig.fake.default_endpoint}
        body.update(extra)
        s, b = self.call("POST", "/api/2.0/postgres/credentials", body, token=token or self.rig.fake.default_pat)
        assert s == 200, (s, b)
        return b

    def m2m_token(self, client_id=None, secret=None):
        sp = self.rig.fake.default_sp
        cred = base64.b64encode(("%s:%s" % (client_id or sp["client_id"], secret or sp["secret"])).encode()).decode()
        import urllib.parse
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "all-apis"}).encode()
        return form_post(self.url + "/oidc/v1/token", form, {"Authorization": "Basic " + cred})


def form_post(url, data, headers=None, timeout=10):
    h = dict(headers or {})
    h["Content-Type"] = "application/x-www-form-urlencoded"
    status, _, body = http_request(url, "POST", "", data, h, timeout=timeout)
    return status, json.loads(body.decode())


@pytest.fixture
def api(rig):
    return Api(rig)
