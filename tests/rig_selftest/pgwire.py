"""A minimal PostgreSQL wire client for the rig's self-tests (raw sockets + ssl, standard library).

login() does what libpq does up to ReadyForQuery and reports every field of an ErrorResponse, so
tests can assert SQLSTATEs that libpq's connection error text does not show.
"""

import socket
import ssl
import struct

SSL_REQUEST = 80877103


class Result(object):
    def __init__(self):
        self.tls = False
        self.tls_error = None
        self.auth_requests = []  # authentication codes the server sent (3 = cleartext, 0 = ok)
        self.password_sent = False
        self.error = None  # {"S": "FATAL", "C": "28P01", "M": "...", ...}
        self.ready = False
        self.peer_cert = None

    @property
    def sqlstate(self):
        return (self.error or {}).get("C")

    @property
    def message(self):
        return (self.error or {}).get("M")

    def __repr__(self):
        return "Result(tls=%r, auth=%r, password_sent=%r, error=%r, ready=%r, tls_error=%r)" % (
            self.tls, self.auth_requests, self.password_sent, self.error, self.ready, self.tls_error)


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    return buf


def parse_error(payload):
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[part[:1].decode()] = part[1:].decode("utf-8", "replace")
    return fields


def login(host, port, user, password, sslmode="require", ca_file=None, server_hostname=None,
          database="databricks_postgres", timeout=10):
    """Connect like libpq with this sslmode (disable / require / verify-ca / verify-full) and send
    `password` when asked for a cleartext one. Returns a Result; raises OSError on transport errors."""
    res = Result()
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    try:
        if sslmode != "disable":
            sock.sendall(struct.pack("!II", 8, SSL_REQUEST))
            answer = _recv_exact(sock, 1)
            if answer == b"S":
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                if sslmode in ("verify-ca", "verify-full"):
                    ctx.load_verify_locations(ca_file)
                    ctx.check_hostname = sslmode == "verify-full"
                else:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                try:
                    sock = ctx.wrap_socket(sock, server_hostname=server_hostname or host)
                except ssl.SSLError as e:
                    res.tls_error = e.reason or str(e)
                    return res
                res.tls = True
                res.peer_cert = sock.getpeercert(binary_form=True)
            elif sslmode in ("require", "verify-ca", "verify-full"):
                res.tls_error = "server does not support SSL, but SSL was required"
                return res
        params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
        sock.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
        while True:
            head = _recv_exact(sock, 5)
            kind, length = head[:1], struct.unpack("!I", head[1:])[0]
            body = _recv_exact(sock, length - 4)
            if kind == b"R":
                code = struct.unpack("!I", body[:4])[0]
                res.auth_requests.append(code)
                if code == 3:
                    pw = password.encode() + b"\0"
                    sock.sendall(b"p" + struct.pack("!I", 4 + len(pw)) + pw)
                    res.password_sent = True
                elif code != 0:
                    raise RuntimeError("unexpected authentication request %d" % code)
            elif kind == b"E":
                res.error = parse_error(body)
                return res
            elif kind == b"Z":
                res.ready = True
                return res
    finally:
        sock.close()
