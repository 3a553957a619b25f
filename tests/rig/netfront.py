#!/usr/bin/env python3
"""The rig's network fronts on loopback: asyncio, one thread, Python standard library only.

- ColdFront: a scale-to-zero endpoint in front of the rig's PostgreSQL. Forwards TCP bytes (TLS stays
  end to end between client and PostgreSQL) until it is suspended, by idleness (`idle_ms`) or by
  `arm()`; the next attempt starts a wake-up during which attempts are refused / reset / stalled /
  answered "the database system is starting up" (57P03) / delayed, until `wake_ms` passed or
  `wake_attempts` attempts were turned away (or `wake()`); then it forwards again.
- Impostor: a Postgres-speaking server that must never receive a token: "untrusted" (TLS with a
  self-signed certificate for localhost), "wrong_host" (TLS with a rig-CA certificate for another
  name), "plaintext" (answers N to SSLRequest). It asks for a cleartext password and records what
  it got (length, sha256, a 12-character prefix and whether it is a secret the fake issued).
- HttpProxy: an HTTP/1.1 forward proxy (CONNECT tunnels and absolute-URI requests), loopback
  targets only, optionally requiring Proxy-Authorization Basic; logs every request and tunnel.

Every front registers control paths on the fake workspace (`/_fake/cold`, `/_fake/impostors`,
`/_fake/proxy`) through rig.py; see README.md.
"""

import asyncio
import base64
import binascii
import hashlib
import ipaddress
import socket
import ssl
import struct
import threading
import time
import urllib.parse

__all__ = ["Loop", "ColdFront", "Impostor", "HttpProxy", "pg_error_message", "free_port"]

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608


def pg_error_message(code, message, severity="FATAL", routine=None):
    """A PostgreSQL ErrorResponse ('E') message."""
    fields = [b"S" + severity.encode(), b"V" + severity.encode(), b"C" + code.encode(), b"M" + message.encode()]
    if routine:
        fields.append(b"R" + routine.encode())
    payload = b"".join(f + b"\0" for f in fields) + b"\0"
    return b"E" + struct.pack("!I", len(payload) + 4) + payload


def _ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            s.bind(("::1", 0))
            return True
        finally:
            s.close()
    except OSError:
        return False


def _bind(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        s.bind((host, port))
    except OSError:
        s.close()
        raise
    return s


def free_port(hosts=("127.0.0.1", "::1")):
    """Sockets bound (explicitly, so the port survives a listen shutdown) to one port free on every host."""
    hosts = [h for h in hosts if ":" not in h or _ipv6_loopback()]
    for _ in range(50):
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        socks = []
        try:
            for h in hosts:
                socks.append(_bind(h, port))
        except OSError:
            for s in socks:
                s.close()
            continue
        return port, socks
    raise OSError("no free port")


class Loop(object):
    """An asyncio event loop in a daemon thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="rig-netfront", daemon=True)
        self._thread.start()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, fn, *args, timeout=10):
        """Run fn(*args) (a plain function or a coroutine function) on the loop; return its result."""
        async def wrapper():
            r = fn(*args)
            if asyncio.iscoroutine(r):
                r = await r
            return r
        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def stop(self):
        if not self.loop.is_running():
            return

        async def cancel_all():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(10)
        except Exception:  # noqa: BLE001 - best effort at shutdown
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


class _Listener(object):
    """Accept loops over explicitly bound sockets; pause() makes the port refuse (ECONNREFUSED)
    while keeping it bound, resume() listens again."""

    def __init__(self, loop, socks, on_accept):
        self.loop = loop
        self.socks = socks
        self.on_accept = on_accept
        self.tasks = []
        self.conn_tasks = set()
        self.paused = False

    def start(self):
        for s in self.socks:
            s.listen(128)
            s.setblocking(False)
        self.tasks = [self.loop.create_task(self._accept(s)) for s in self.socks]

    async def _accept(self, lsock):
        while True:
            try:
                conn, _ = await self.loop.sock_accept(lsock)
            except asyncio.CancelledError:
                raise
            except OSError:
                await asyncio.sleep(0.01)
                continue
            conn.setblocking(False)
            t = self.loop.create_task(self._serve(conn))
            self.conn_tasks.add(t)  # the loop keeps only weak references to tasks
            t.add_done_callback(self.conn_tasks.discard)

    async def _serve(self, conn):
        reader = asyncio.StreamReader(limit=1 << 16)
        done = self.loop.create_future()

        def connected(r, w):
            done.set_result(w)
        protocol = asyncio.StreamReaderProtocol(reader, connected)
        try:
            await self.loop.connect_accepted_socket(lambda: protocol, conn)
            writer = await done
        except OSError:
            conn.close()
            return
        try:
            await self.on_accept(reader, writer)
        except (asyncio.CancelledError, GeneratorExit):
            _abort(writer)
            raise
        except Exception:  # noqa: BLE001 - one broken connection must not stop the front
            _abort(writer)

    def pause(self):
        if self.paused:
            return
        self.paused = True
        for t in self.tasks:
            t.cancel()
        self.tasks = []
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def resume(self):
        if not self.paused:
            return
        self.paused = False
        for s in self.socks:
            s.listen(128)
        self.tasks = [self.loop.create_task(self._accept(s)) for s in self.socks]

    def close(self):
        for t in self.tasks + list(self.conn_tasks):
            t.cancel()
        for s in self.socks:
            s.close()


def _abort(writer, rst=False):
    try:
        if rst:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    except (OSError, AttributeError, RuntimeError):
        pass


async def _close(writer):
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 2)
    except (OSError, asyncio.TimeoutError, ssl.SSLError, RuntimeError):
        pass


async def _pipe(reader, writer, counter=None, key=None):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if counter is not None:
                counter[key] = counter.get(key, 0) + len(data)
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError, ssl.SSLError, RuntimeError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            pass


async def _relay(r1, w1, r2, w2, counter=None):
    await asyncio.gather(_pipe(r1, w2, counter, "bytes_up"), _pipe(r2, w1, counter, "bytes_down"))
    await _close(w1)
    await _close(w2)


# --------------------------------------------------------------------------------------- cold
class _Server(object):
    """A rig server on the shared loop: its sockets (`self._socks`, bound at construction) are
    served by a `_Listener` calling `self._on_accept`; `_started` runs on the loop right after."""

    listener = None

    def start(self):
        def go():
            self.listener = _Listener(asyncio.get_running_loop(), self._socks, self._on_accept)
            self.listener.start()
            self._started()
        self.L.call(go)
        return self

    def _started(self):
        pass

    def close(self):
        try:
            self.L.call(lambda: self.listener and self.listener.close())
        except Exception:  # noqa: BLE001
            pass


class ColdFront(_Server):
    """Scale-to-zero endpoint in front of PostgreSQL (see module doc and README "Cold start")."""

    MODES = ("refuse", "reset", "stall", "starting", "delay")
    DEFAULTS = {"mode": "refuse", "idle_ms": None, "wake_ms": 1000, "wake_attempts": None, "stall_hold_ms": 60000}

    def __init__(self, loop, target_port, tls_cert, tls_key, extra_hosts=(), defaults=None):
        self.L = loop
        self.defaults = dict(self.DEFAULTS)
        self._configure_into(self.defaults, defaults)
        self.target_port = target_port
        self.ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ssl_ctx.load_cert_chain(tls_cert, tls_key)
        self.port, socks = free_port()
        self.extra = {}  # host -> port of additional listeners (e.g. 127.0.0.2:PGPORT)
        for host, port in extra_hosts:
            try:
                socks.append(_bind(host, port))
                self.extra[host] = port
            except OSError:
                pass
        self._socks = socks
        self.listener = None
        self.open = 0  # live forwarded connections (not reset by reset())
        self._reset_state()

    def _reset_state(self):
        self.settings = dict(self.defaults)
        self.suspended = False
        self.waking = False
        self.wake_started = None
        self.cold_seen = 0
        self.last_activity = time.monotonic()
        self.counters = {"attempts": 0, "forwarded": 0, "wakeups": 0, "refused": 0, "reset": 0, "stalled": 0,
                         "starting": 0, "delayed": 0, "startup_messages": 0}
        self._timer = None
        self._awake = None
        self._stalled = set()

    def _started(self):
        self._awake = asyncio.Event()
        self._awake.set()

    # ------------------------------------------------------------------ control (loop thread)
    def _configure(self, changes):
        self._configure_into(self.settings, changes)

    def _configure_into(self, settings, changes):
        changes = dict(changes or {})
        unknown = set(changes) - set(self.DEFAULTS)
        if unknown:
            raise ValueError("unknown cold settings: %s" % ", ".join(sorted(unknown)))
        if "mode" in changes and changes["mode"] not in self.MODES:
            raise ValueError("cold mode must be one of %s" % "|".join(self.MODES))
        for k in ("idle_ms", "wake_ms", "wake_attempts", "stall_hold_ms"):
            if changes.get(k) is not None:
                changes[k] = int(changes[k])
                if changes[k] < 0:
                    raise ValueError("%s must be >= 0" % k)
        settings.update(changes)

    def _begin_wake(self):
        self.suspended = False
        self.waking = True
        self.wake_started = time.monotonic()
        self.cold_seen = 0
        self.counters["wakeups"] += 1
        self._awake = asyncio.Event()
        if self.settings["mode"] == "refuse":
            self.listener.pause()
        if self.settings["wake_ms"] is not None:
            self._timer = asyncio.get_running_loop().call_later(self.settings["wake_ms"] / 1000.0, self._end_wake)

    def _end_wake(self):
        self.waking = False
        self.suspended = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.listener.resume()
        if self._awake is not None:
            self._awake.set()
        self.last_activity = time.monotonic()

    def state(self):
        return {"port": self.port, "hosts": dict(self.extra), "settings": dict(self.settings),
                "suspended": self.suspended, "waking": self.waking, "open_connections": self.open,
                "counters": dict(self.counters)}

    def control(self, method, path, query, body):
        """Control API handler for /_fake/cold[/arm|/wake|/reset] (called from the fake's threads)."""
        def on_loop():
            if path == "/_fake/cold" and method == "GET":
                return 200, self.state()
            if method != "POST":
                return 405, {"error": "use GET or POST"}
            if path == "/_fake/cold":
                self._configure(body)
                return 200, self.state()
            if path == "/_fake/cold/arm":
                b = dict(body or {})
                now = bool(b.pop("now", False))
                self._configure(b)
                if self.waking:
                    self._end_wake()
                self.suspended = True
                if now:
                    self._begin_wake()
                return 200, self.state()
            if path == "/_fake/cold/wake":
                if self.waking or self.suspended:
                    self._end_wake()
                return 200, self.state()
            if path == "/_fake/cold/reset":
                self._reset_all()
                return 200, self.state()
            return 404, {"error": "unknown cold path %s" % path}
        return self.L.call(on_loop)

    def _reset_all(self):
        if self._timer is not None:
            self._timer.cancel()
        if self.listener is not None:
            self.listener.resume()
        if self._awake is not None:
            self._awake.set()
        for w in list(self._stalled):
            _abort(w)
        self._reset_state()
        self._awake = asyncio.Event()
        self._awake.set()

    def reset(self):
        self.L.call(self._reset_all)

    # ------------------------------------------------------------------------- connections
    async def _on_accept(self, reader, writer):
        now = time.monotonic()
        c = self.counters
        c["attempts"] += 1
        idle = self.settings["idle_ms"]
        if (not self.waking and not self.suspended and idle is not None and self.open == 0
                and (now - self.last_activity) * 1000.0 >= idle):
            self.suspended = True
        self.last_activity = now
        if self.suspended and not self.waking:
            self._begin_wake()
        if self.waking:
            self.cold_seen += 1
            mode = self.settings["mode"]
            limit = self.settings["wake_attempts"]
            if limit is not None and self.cold_seen >= limit:
                self._end_wake()
            return await self._cold(mode, reader, writer)
        return await self._forward(reader, writer)

    async def _forward(self, reader, writer):
        self.counters["forwarded"] += 1
        self.open += 1
        try:
            try:
                ur, uw = await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError:
                _abort(writer)
                return
            await _relay(reader, writer, ur, uw)
        finally:
            self.open -= 1
            self.last_activity = time.monotonic()

    async def _cold(self, mode, reader, writer):
        c = self.counters
        if mode in ("refuse", "reset"):
            # refuse: the attempt that starts the wake-up was already accepted; it is reset, the port
            # refuses the next ones until the window ends.
            c["refused" if mode == "refuse" else "reset"] += 1
            _abort(writer, rst=True)
            return
        if mode == "stall":
            c["stalled"] += 1
            self._stalled.add(writer)
            try:
                async def drain_until_eof():
                    while await reader.read(65536):
                        pass
                await asyncio.wait_for(drain_until_eof(), self.settings["stall_hold_ms"] / 1000.0)
            except (asyncio.TimeoutError, OSError):
                pass
            finally:
                self._stalled.discard(writer)
            _abort(writer)
            return
        if mode == "delay":
            c["delayed"] += 1
            await self._awake.wait()
            return await self._forward(reader, writer)
        # starting: speak the protocol up to the startup packet, then 57P03
        c["starting"] += 1
        try:
            while True:
                hdr = await asyncio.wait_for(reader.readexactly(8), 10)
                length, code = struct.unpack("!II", hdr)
                if length < 8 or length > 10000:
                    break
                if code == SSL_REQUEST:
                    writer.write(b"S")
                    await writer.drain()
                    await writer.start_tls(self.ssl_ctx)
                    continue
                if code == GSSENC_REQUEST:
                    writer.write(b"N")
                    await writer.drain()
                    continue
                if code == CANCEL_REQUEST:
                    break
                await asyncio.wait_for(reader.readexactly(length - 8), 10)
                c["startup_messages"] += 1
                writer.write(pg_error_message("57P03", "the database system is starting up",
                                              routine="ProcessStartupPacket"))
                await writer.drain()
                break
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError, ssl.SSLError):
            pass
        await _close(writer)


# ------------------------------------------------------------------------------------ impostor
class Impostor(_Server):
    """A Postgres server that asks for a cleartext password and records what it receives."""

    KINDS = ("untrusted", "wrong_host", "plaintext")

    def __init__(self, loop, kind, classify, cert=None, key=None):
        assert kind in self.KINDS
        self.L = loop
        self.kind = kind
        self.classify = classify  # password -> secret kind or None (FakeWorkspace.classify_secret)
        self.ssl_ctx = None
        if cert:
            self.ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ssl_ctx.load_cert_chain(cert, key)
        self.port, self._socks = free_port()
        self.attempts = []
        self.listener = None

    async def _on_accept(self, reader, writer):
        rec = {"impostor": self.kind, "port": self.port, "time": time.time(), "ssl_requested": False,
               "tls": None, "startup": None, "password_received": False}
        self.attempts.append(rec)
        try:
            while True:
                hdr = await asyncio.wait_for(reader.readexactly(8), 10)
                length, code = struct.unpack("!II", hdr)
                if length < 8 or length > 10000:
                    return
                if code == SSL_REQUEST:
                    rec["ssl_requested"] = True
                    if self.ssl_ctx is None:
                        writer.write(b"N")
                        await writer.drain()
                        continue
                    writer.write(b"S")
                    await writer.drain()
                    try:
                        await writer.start_tls(self.ssl_ctx)
                    except (ssl.SSLError, OSError, ConnectionError) as e:
                        rec["tls"] = "handshake failed: %s" % (getattr(e, "reason", None) or type(e).__name__)
                        return
                    rec["tls"] = "established"
                    continue
                if code == GSSENC_REQUEST:
                    writer.write(b"N")
                    await writer.drain()
                    continue
                if code != PROTOCOL_3:
                    return
                raw = await asyncio.wait_for(reader.readexactly(length - 8), 10)
                parts = raw.split(b"\0")
                params = {}
                for i in range(0, len(parts) - 1, 2):
                    if parts[i]:
                        params[parts[i].decode("utf-8", "replace")] = parts[i + 1].decode("utf-8", "replace")
                rec["startup"] = params
                writer.write(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
                await writer.drain()
                t = await asyncio.wait_for(reader.readexactly(5), 10)
                mlen = struct.unpack("!I", t[1:5])[0]
                body = await asyncio.wait_for(reader.readexactly(max(0, mlen - 4)), 10) if mlen <= 100000 else b""
                if t[:1] == b"p":
                    pw = body.split(b"\0", 1)[0]
                    text = pw.decode("utf-8", "replace")
                    rec.update(password_received=True, password_length=len(pw),
                               password_sha256=hashlib.sha256(pw).hexdigest(), password_prefix=text[:12],
                               secret_kind=self.classify(text))
                user = params.get("user", "")
                writer.write(pg_error_message("28P01", 'password authentication failed for user "%s"' % user,
                                              routine="auth_failed"))
                await writer.drain()
                return
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError, ssl.SSLError):
            return
        finally:
            await _close(writer)

    def clear(self):
        self.L.call(self.attempts.clear)

    def snapshot(self):
        return self.L.call(lambda: [dict(a) for a in self.attempts])


def impostors_control(impostors):
    """Control handler for /_fake/impostors over {kind: Impostor}."""
    def handler(method, path, query, body):
        if method == "DELETE" or (method == "POST" and path == "/_fake/impostors/clear"):
            for imp in impostors.values():
                imp.clear()
            return 200, {"attempts": [], "tokens_received": 0}
        attempts = []
        for imp in impostors.values():
            attempts += imp.snapshot()
        attempts.sort(key=lambda a: a["time"])
        return 200, {"impostors": {k: {"port": v.port} for k, v in impostors.items()},
                     "attempts": attempts,
                     "passwords_received": sum(1 for a in attempts if a["password_received"]),
                     "tokens_received": sum(1 for a in attempts if a.get("secret_kind"))}
    return handler


# --------------------------------------------------------------------------------------- proxy
def _is_loopback(host):
    h = host.strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _split_hostport(s, default_port):
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = s.rpartition(":") if s.count(":") == 1 else (s, "", "")
    return host, int(port) if port else default_port


class HttpProxy(_Server):
    """HTTP/1.1 forward proxy on loopback (CONNECT + absolute-URI), see module doc."""

    MODES = ("normal", "reset", "bad_gateway", "require_auth")

    def __init__(self, loop, name, log, credentials=None):
        self.L = loop
        self.name = name
        self.log = log  # shared list
        self.credentials = credentials  # (user, password) or None
        self.mode = "normal"
        self.port, self._socks = free_port(("127.0.0.1",))
        self.listener = None

    @property
    def url(self):
        if self.credentials:
            u, p = self.credentials
            return "http://%s:%s@127.0.0.1:%d" % (urllib.parse.quote(u, safe=""), urllib.parse.quote(p, safe=""),
                                                   self.port)
        return "http://127.0.0.1:%d" % self.port

    async def _reply(self, writer, status, reason, extra=(), body=b""):
        head = "HTTP/1.1 %d %s\r\n" % (status, reason)
        for k, v in extra:
            head += "%s: %s\r\n" % (k, v)
        head += "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        writer.write(head.encode("latin-1") + body)
        try:
            await writer.drain()
        except OSError:
            pass
        await _close(writer)

    def _auth_state(self, headers):
        value = headers.get("proxy-authorization")
        if value is None:
            return "missing"
        scheme, _, b64 = value.partition(" ")
        if scheme.lower() != "basic" or not self.credentials:
            return "bad"
        try:
            user, _, pw = base64.b64decode(b64.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return "bad"
        return "ok" if (user, pw) == tuple(self.credentials) else "bad"

    async def _on_accept(self, reader, writer):
        entry = {"proxy": self.name, "time": time.time(), "method": None, "target": None, "url": None,
                 "auth": None, "status": None, "bytes_up": 0, "bytes_down": 0}
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, OSError):
            _abort(writer)
            return
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            return await self._reply(writer, 400, "Bad Request")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        entry.update(method=method, headers={k: v for k, v in headers.items() if k != "proxy-authorization"})
        self.log.append(entry)
        if self.mode == "reset":
            entry["status"] = "reset"
            _abort(writer, rst=True)
            return
        if self.mode == "bad_gateway":
            entry["status"] = 502
            return await self._reply(writer, 502, "Bad Gateway")
        if self.credentials or self.mode == "require_auth":
            entry["auth"] = self._auth_state(headers)
            if entry["auth"] != "ok":
                entry["status"] = 407
                return await self._reply(writer, 407, "Proxy Authentication Required",
                                         [("Proxy-Authenticate", 'Basic realm="lakebase-rig-proxy"')])
        if method.upper() == "CONNECT":
            host, port = _split_hostport(target, 443)
            entry["target"] = "%s:%d" % (host, port)
            if not _is_loopback(host):
                entry["status"] = 403
                return await self._reply(writer, 403, "Forbidden", body=b"the rig proxy reaches loopback only\n")
            try:
                ur, uw = await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), port), 10)
            except (OSError, asyncio.TimeoutError):
                entry["status"] = 502
                return await self._reply(writer, 502, "Bad Gateway")
            entry["status"] = 200
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            return await _relay(reader, writer, ur, uw, entry)
        u = urllib.parse.urlsplit(target)
        if u.scheme != "http" or not u.hostname:
            entry["status"] = 400
            return await self._reply(writer, 400, "Bad Request", body=b"absolute http:// URI or CONNECT expected\n")
        host = u.hostname
        port = u.port or 80
        entry.update(target="%s:%d" % (host, port), url=target)
        if not _is_loopback(host):
            entry["status"] = 403
            return await self._reply(writer, 403, "Forbidden", body=b"the rig proxy reaches loopback only\n")
        try:
            ur, uw = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        except (OSError, asyncio.TimeoutError):
            entry["status"] = 502
            return await self._reply(writer, 502, "Bad Gateway")
        entry["status"] = "forwarded"
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        out = ["%s %s %s" % (method, path, version)]
        for line in lines[1:]:
            if not line or ":" not in line:
                continue
            k = line.split(":", 1)[0].strip().lower()
            if k in ("proxy-authorization", "proxy-connection", "connection", "keep-alive"):
                continue
            out.append(line)
        out.append("Connection: close")
        uw.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        await uw.drain()
        return await _relay(reader, writer, ur, uw, entry)


def proxy_control(proxies, log, loop):
    """Control handler for /_fake/proxy over {name: HttpProxy}."""
    def handler(method, path, query, body):
        def on_loop():
            if method == "DELETE":
                log.clear()
                return 200, {"requests": []}
            if method == "POST":
                mode = (body or {}).get("mode", "normal")
                if mode not in HttpProxy.MODES:
                    raise ValueError("proxy mode must be one of %s" % "|".join(HttpProxy.MODES))
                names = [body["proxy"]] if (body or {}).get("proxy") else list(proxies)
                for n in names:
                    proxies[n].mode = mode
            return 200, {"proxies": {n: {"port": p.port, "mode": p.mode, "auth": bool(p.credentials)}
                                     for n, p in proxies.items()},
                         "requests": [dict(e) for e in log]}
        return loop.call(on_loop)
    return handler
