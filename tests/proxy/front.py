"""A scriptable TCP front for the upstream side of the proxy, started by the tests themselves.

Each accepted connection takes the next action from `script` (then `default`):
  relay        pipe bytes to the real PostgreSQL (the proxy's TLS goes end to end)
  close        accept and close at once (a waking endpoint that drops connections)
  stall        accept and never answer (a waking endpoint that hangs)
  starting_up  TLS with `tls` (cert, key), read the StartupMessage, answer FATAL 57P03
  auth_md5     TLS, read the StartupMessage, ask for an MD5 password
  impostor     TLS with `tls`; record any application data the proxy sends (it must send none)
  capture      TLS, ask for a cleartext password, keep it in `password`, answer FATAL 57P03
               (retryable), so that the next action can check SCRAM with the real token
  scram        TLS, SCRAM-SHA-256 against `password` (RFC 5802/7677 server side), then a greeting
               (AuthenticationOk, ParameterStatus, BackendKeyData, ReadyForQuery) and wait for EOF
  scram_forged the same, but the final server signature is wrong (the proxy must refuse it)
Records what happened per connection in `events`.
"""
import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct
import threading


def error_response(code, message):
    body = b"SFATAL\0VFATAL\0C" + code.encode() + b"\0M" + message.encode() + b"\0\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


def read_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def read_message(s):
    typ = read_exact(s, 1)
    n = struct.unpack("!I", read_exact(s, 4))[0]
    return typ, read_exact(s, n - 4)


def read_startup(s):
    n = struct.unpack("!I", read_exact(s, 4))[0]
    return read_exact(s, n - 4)


class Front(object):
    def __init__(self, upstream_port=None, script=(), default="relay", tls=None):
        self.upstream_port = upstream_port
        self.script = list(script)
        self.default = default
        self.tls = tls
        self.events = []
        self.received = []  # application bytes received over TLS by impostor/auth modes
        self.password = None
        self.scram = []  # (client-first, client-final) per SCRAM exchange
        self._lock = threading.Lock()
        self._socks = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._t = threading.Thread(target=self._accept, daemon=True)
        self._t.start()

    def _next(self):
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def _accept(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self._socks.append(c)
            threading.Thread(target=self._serve, args=(c, self._next()), daemon=True).start()

    def _tls(self, c):
        req = read_exact(c, 8)
        assert struct.unpack("!II", req)[1] == 80877103, "expected an SSLRequest"
        c.sendall(b"S")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.tls[0], self.tls[1])
        return ctx.wrap_socket(c, server_side=True)

    def _serve(self, c, action):
        with self._lock:
            self.events.append(action)
        try:
            if action == "close":
                c.close()
            elif action == "stall":
                return  # kept open in self._socks until stop()
            elif action == "relay":
                u = socket.create_connection(("127.0.0.1", self.upstream_port))
                self._socks.append(u)
                threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()
                self._pipe(c, u)
            elif action in ("capture", "scram", "scram_forged"):
                t = self._tls(c)
                try:
                    read_startup(t)
                    if action == "capture":
                        t.sendall(b"R" + struct.pack("!II", 8, 3))
                        typ, body = read_message(t)
                        assert typ == b"p"
                        self.password = body.rstrip(b"\0")
                        t.sendall(error_response("57P03", "the database system is starting up"))
                    else:
                        self._scram(t, forged=action == "scram_forged")
                finally:
                    t.close()
            elif action in ("starting_up", "auth_md5", "impostor"):
                try:
                    t = self._tls(c)
                except (ssl.SSLError, OSError, EOFError) as e:
                    with self._lock:
                        self.events.append("handshake_failed: %s" % e)
                    return
                try:
                    startup = read_startup(t)
                    with self._lock:
                        self.received.append(startup)
                    if action == "starting_up":
                        t.sendall(error_response("57P03", "the database system is starting up"))
                    elif action == "auth_md5":
                        t.sendall(b"R" + struct.pack("!II", 12, 5) + b"salt")
                        while True:
                            d = t.recv(4096)
                            if not d:
                                break
                            with self._lock:
                                self.received.append(d)
                    else:
                        t.sendall(b"R" + struct.pack("!II", 8, 3))
                        while True:
                            d = t.recv(4096)
                            if not d:
                                break
                            with self._lock:
                                self.received.append(d)
                except (OSError, EOFError):
                    pass
                finally:
                    t.close()
        except (OSError, EOFError):
            pass

    def _scram(self, t, forged):
        mech = b"SCRAM-SHA-256"
        t.sendall(b"R" + struct.pack("!II", 4 + 4 + len(mech) + 2, 10) + mech + b"\0\0")
        typ, body = read_message(t)
        assert typ == b"p" and body.startswith(mech + b"\0"), body
        first = body[len(mech) + 5:].decode()
        gs2, bare = first[:3], first[3:]
        cnonce = dict(kv.split("=", 1) for kv in bare.split(","))["r"]
        salt, iters = os.urandom(16), 4096
        server_first = "r=%s%s,s=%s,i=%d" % (cnonce, base64.b64encode(os.urandom(18)).decode(),
                                            base64.b64encode(salt).decode(), iters)
        t.sendall(b"R" + struct.pack("!II", 8 + len(server_first), 11) + server_first.encode())
        typ, body = read_message(t)
        final = body.decode()
        self.scram.append((first, final))
        without_proof, proof = final.rsplit(",p=", 1)
        auth = ("%s,%s,%s" % (bare, server_first, without_proof)).encode()
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iters)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        sig = hmac.new(stored, auth, hashlib.sha256).digest()
        expected = bytes(a ^ b for a, b in zip(client_key, sig))
        if gs2 != "n,," or not hmac.compare_digest(base64.b64decode(proof), expected):
            t.sendall(error_response("28P01", "password authentication failed for user"))
            return
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        server_sig = hmac.new(server_key, auth, hashlib.sha256).digest()
        if forged:
            server_sig = bytes(32)
        v = b"v=" + base64.b64encode(server_sig)
        t.sendall(b"R" + struct.pack("!II", 8 + len(v), 12) + v)
        ps = b"server_version\x0015.0\0"
        t.sendall(b"R" + struct.pack("!II", 8, 0) + b"S" + struct.pack("!I", 4 + len(ps)) + ps
                  + b"K" + struct.pack("!III", 12, 4242, 77) + b"Z" + struct.pack("!I", 5) + b"I")
        while t.recv(4096):
            pass

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass
