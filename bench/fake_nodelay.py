#!/usr/bin/env python3
"""The rig's fake workspace (tests/rig/fake_workspace.py), unchanged except that its sockets set
TCP_NODELAY, for the benchmarks that do not need PostgreSQL.

Why: the fake (Python http.server) writes a response's headers and body in two writes. On a
kept-alive connection Nagle's algorithm holds the body until the client ACKs the headers, and the
client delays that ACK by up to 40 ms, so every request after the first few on a reused connection
costs ~40 ms. Clients that reuse connections (the Databricks SDK's requests.Session, liblakebase's
ureq pool) would be charged for the fake's stall; fresh-connection clients (urllib, curl) would not.

Usage: fake_nodelay.py ENV_FILE  -- serves until SIGTERM; writes ENV_FILE (shell) once listening:
FAKE_URL, RIG_PAT, RIG_SP_CLIENT_ID, RIG_SP_CLIENT_SECRET, RIG_INSTANCE.
"""
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "rig"))
import fake_workspace as fw  # noqa: E402

fw._Handler.disable_nagle_algorithm = True  # socketserver.StreamRequestHandler sets TCP_NODELAY


def main():
    env_file = sys.argv[1]
    ws = fw.FakeWorkspace()
    ws.start()
    sp = ws.default_sp
    tmp = env_file + ".tmp"
    with open(tmp, "w") as f:
        for k, v in [("FAKE_URL", ws.url), ("RIG_PAT", ws.default_pat), ("RIG_SP_CLIENT_ID", sp["client_id"]),
                     ("RIG_SP_CLIENT_SECRET", sp["secret"]), ("RIG_INSTANCE", ws.default_instance)]:
            f.write(f"export {k}='{v}'\n")
    os.replace(tmp, env_file)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *a: done.set())
    done.wait()
    ws.stop()


if __name__ == "__main__":
    main()
