"""The rig's HTTP(S) forward proxies (RIG_PROXY_URL open, RIG_PROXY_AUTH_URL with Basic credentials)."""

import json
import socket
import ssl
import urllib.error
import urllib.request

import pytest

from fake_workspace import FakeWorkspace

ME = "/api/2.0/preview/scim/v2/Me"


def get(url, proxies, token, ca_file=None, timeout=10):
    ctx = ssl.create_default_context(cafile=ca_file) if ca_file else None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies), urllib.request.HTTPSHandler(context=ctx))
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    with opener.open(req, timeout=timeout) as r:
        return r.status, json.loads(r.read())


def proxy_log(api):
    return api.ctl("GET", "/_fake/proxy")["requests"]


def raw(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def test_absolute_uri_http(api, rig):
    env = rig.env()
    s, me = get(rig.url + ME + "?x=1", {"http": env["RIG_PROXY_URL"]}, rig.fake.default_pat)
    assert s == 200 and me["userName"] == "alice@example.com"
    (e,) = proxy_log(api)
    host_port = rig.url.split("//")[1]
    assert (e["proxy"], e["method"], e["target"], e["url"], e["status"], e["auth"]) == (
        "open", "GET", host_port, rig.url + ME + "?x=1", "forwarded", None)
    assert e["bytes_down"] > 0 and "authorization" in e["headers"]  # the request's own headers are kept
    # the workspace saw an origin-form request
    req = api.ctl("GET", "/_fake/requests?path=" + ME)["requests"][-1]
    assert req["query"] == {"x": "1"}


def test_connect_tunnel_to_tls_workspace(api, rig):
    ws = FakeWorkspace(tls_cert=rig.tls["cert_file"], tls_key=rig.tls["key_file"]).start()
    port = ws.port
    try:
        s, me = get(ws.url + ME, {"https": rig.env()["RIG_PROXY_URL"]}, ws.default_pat, ca_file=rig.tls["ca_file"])
        assert s == 200 and me["userName"] == "alice@example.com"
    finally:
        ws.stop()
    (e,) = proxy_log(api)
    assert (e["method"], e["target"], e["status"], e["url"]) == ("CONNECT", "127.0.0.1:%d" % port, 200, None)
    assert e["bytes_up"] > 0 and e["bytes_down"] > 0


def test_proxy_authorization(api, rig):
    env = rig.env()
    assert env["RIG_PROXY_AUTH_URL"] == "http://%s:%s@127.0.0.1:%s" % (
        env["RIG_PROXY_USER"], env["RIG_PROXY_PASSWORD"], env["RIG_PROXY_AUTH_PORT"])
    bare = "http://127.0.0.1:" + env["RIG_PROXY_AUTH_PORT"]
    with pytest.raises(urllib.error.HTTPError) as ei:
        get(rig.url + ME, {"http": bare}, rig.fake.default_pat)
    assert ei.value.code == 407 and ei.value.headers["Proxy-Authenticate"] == 'Basic realm="lakebase-rig-proxy"'
    with pytest.raises(urllib.error.HTTPError) as ei:
        get(rig.url + ME, {"http": "http://rigproxy:wrong@127.0.0.1:" + env["RIG_PROXY_AUTH_PORT"]},
            rig.fake.default_pat)
    assert ei.value.code == 407
    s, me = get(rig.url + ME, {"http": env["RIG_PROXY_AUTH_URL"]}, rig.fake.default_pat)
    assert s == 200
    log = proxy_log(api)
    assert [(e["proxy"], e["auth"], e["status"]) for e in log] == [
        ("auth", "missing", 407), ("auth", "bad", 407), ("auth", "ok", "forwarded")]
    assert env["RIG_PROXY_PASSWORD"] not in json.dumps(log)
    assert all("proxy-authorization" not in e["headers"] for e in log)


def test_loopback_targets_only(api, rig):
    port = rig.proxies["open"].port
    out = raw(port, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 403 ")
    out = raw(port, b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 403 ")
    out = raw(port, b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ")
    assert [(e["target"], e["status"]) for e in proxy_log(api)] == [
        ("example.com:443", 403), ("example.com:80", 403), (None, 400)]


def test_failure_modes_and_reset(api, rig):
    port = rig.proxies["open"].port
    api.ctl("POST", "/_fake/proxy", {"mode": "bad_gateway"})
    assert raw(port, b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 502 ")
    api.ctl("POST", "/_fake/proxy", {"mode": "reset", "proxy": "open"})
    with pytest.raises(ConnectionResetError):
        raw(port, b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n")
    modes = {n: p["mode"] for n, p in api.ctl("GET", "/_fake/proxy")["proxies"].items()}
    assert modes == {"open": "reset", "auth": "bad_gateway"}
    s, b = api.call("POST", "/_fake/proxy", {"mode": "slow"})
    assert s == 400
    rig.fake.reset()
    st = api.ctl("GET", "/_fake/proxy")
    assert st["requests"] == [] and {p["mode"] for p in st["proxies"].values()} == {"normal"}
    # a target that refuses: 502
    assert raw(port, b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 502 ")
