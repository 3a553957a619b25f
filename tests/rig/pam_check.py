#!/usr/bin/python3
"""PAM helper for the rig's PostgreSQL: pam_exec.so expose_authtok runs it.

    auth required pam_exec.so expose_authtok quiet /usr/bin/python3 pam_check.py [--ca=FILE] [--reject-dir=DIR] FAKE_URL

pam_exec writes the password to stdin (NUL-terminated; possibly truncated) and
puts the login name in PAM_USER. We ask the fake workspace whether the password
is a Lakebase token it minted for that user (POST FAKE_URL/_fake/check) and exit
0 (accept) or 1 (reject). Standard library only; runs as the postgres OS user.

When the fake answers a rejection with a Lakebase-style text ({"reject": {"sqlstate",
"message"}}, setting pg_reject_mode), it is written to DIR/<parent pid> — the parent
of this process is the PostgreSQL backend doing the login — for the lakebase_rig_auth
extension to raise instead of PAM's own message.

`pam_check.py --selftest FAKE_URL` only checks that the fake answers.
"""

import json
import os
import ssl
import sys
import urllib.request


def _post(url, body, ca):
    ctx = None
    if url.startswith("https:"):
        ctx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    if body is None:
        req = urllib.request.Request(url, method="GET")
    else:
        req = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=ctx))
    with opener.open(req, timeout=10) as resp:
        return json.loads(resp.read().decode("utf-8"))


def main(argv):
    args = list(argv)
    ca = None
    reject_dir = None
    selftest = False
    while args and args[0].startswith("--"):
        a = args.pop(0)
        if a.startswith("--ca="):
            ca = a[len("--ca="):]
        elif a.startswith("--reject-dir="):
            reject_dir = a[len("--reject-dir="):]
        elif a == "--selftest":
            selftest = True
    if not args:
        sys.stderr.write("pam_check: usage: pam_check.py [--ca=FILE] [--selftest] FAKE_URL\n")
        return 2
    base = args[0].rstrip("/")
    if selftest:
        return 0 if _post(base + "/_fake/health", None, ca).get("ok") else 1
    if os.environ.get("PAM_TYPE", "auth") != "auth":
        return 0
    raw = sys.stdin.buffer.read(1 << 16)
    password = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
    user = os.environ.get("PAM_USER", "")
    try:
        res = _post(base + "/_fake/check", {"user": user, "password": password}, ca)
    except Exception as e:  # noqa: BLE001 - any failure means "reject"
        sys.stderr.write("pam_check: cannot reach fake workspace: %s\n" % e)
        return 1
    if res.get("ok") is True:
        return 0
    sys.stderr.write("pam_check: rejected %s (%d bytes): %s\n" % (user, len(password), res.get("reason")))
    rej = res.get("reject")
    if reject_dir and isinstance(rej, dict) and rej.get("message"):
        _write_reject(reject_dir, os.getppid(), rej.get("sqlstate") or "28P01", rej["message"])
    return 1


def _write_reject(directory, backend_pid, sqlstate, message):
    path = os.path.join(directory, str(backend_pid))
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("%s\n%s" % (sqlstate, message.replace("\0", "")))
        os.replace(tmp, path)
    except OSError as e:
        sys.stderr.write("pam_check: cannot write %s: %s\n" % (path, e))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
