#!/usr/bin/env python3
"""The project's version: one place ([workspace.package] version in Cargo.toml), copied into every
manifest that has to spell it.

    scripts/version.py            print it (e.g. 0.1.0)
    scripts/version.py --check    exit 1, naming each file, if a manifest disagrees (CI runs this)
    scripts/version.py --set X.Y.Z  write X.Y.Z into Cargo.toml and every manifest below

Composer and Go take their versions from git tags (vX.Y.Z); `make dist` writes the version into
the Composer archive's composer.json, so every artifact carries the same one.
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?$")

# (file, regex whose group 1 is the version). Each must match exactly the given number of times.
PLACES = [
    ("Cargo.toml", r'(?m)^\[workspace\.package\]\nversion = "([^"]+)"', 1),
    ("Cargo.toml", r'lakebase-core = \{ path = "crates/core", version = "([^"]+)" \}', 1),
    ("Cargo.toml", r'depends = "liblakebase0 \(= ([^"]+?)-1\)"', 1),
    ("crates/cli/Cargo.toml", r'depends = "\$auto, liblakebase0 \(= ([^"]+?)-1\)"', 1),
    ("bindings/python/pyproject.toml", r'(?m)^version = "([^"]+)"', 1),
    ("bindings/python/src/lakebase/__init__.py", r'(?m)^__version__ = "([^"]+)"', 1),
    ("bindings/ruby/lib/lakebase/version.rb", r'VERSION = "([^"]+)"', 1),
    ("bindings/node/package.json", r'(?m)^  "version": "([^"]+)"', 1),
    ("bindings/node/package-lock.json", r'(?m)^  "version": "([^"]+)"', 1),
    ("bindings/node/package-lock.json", r'(?m)^      "name": "lakebase",\n      "version": "([^"]+)"', 1),
]


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def version():
    m = re.search(PLACES[0][1], read("Cargo.toml"))
    if not m:
        sys.exit("version.py: no [workspace.package] version in Cargo.toml")
    return m.group(1)


def found(rel, pattern):
    return [m.group(1) for m in re.finditer(pattern, read(rel))]


def check():
    want = version()
    bad = []
    for rel, pattern, count in PLACES:
        got = found(rel, pattern)
        if len(got) != count:
            bad.append("%s: expected %d version field(s) matching %s, found %d" % (rel, count, pattern, len(got)))
        elif any(v != want for v in got):
            bad.append("%s: version %s, Cargo.toml says %s" % (rel, ", ".join(got), want))
    # The Node lockfile must stay valid JSON after --set.
    json.loads(read("bindings/node/package-lock.json"))
    return bad


def set_version(new):
    if not SEMVER.match(new):
        sys.exit("version.py: %r is not a version like 1.2.3" % new)
    for rel, pattern, _ in PLACES:
        text = read(rel)
        out, n = re.subn(pattern, lambda m: m.group(0)[: m.start(1) - m.start(0)] + new + m.group(0)[m.end(1) - m.start(0):], text)
        if n == 0:
            sys.exit("version.py: %s: no version field matching %s" % (rel, pattern))
        tmp = os.path.join(ROOT, rel + ".tmp~")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(out)
        os.replace(tmp, os.path.join(ROOT, rel))


def main(argv):
    if argv == []:
        print(version())
    elif argv == ["--check"]:
        bad = check()
        for b in bad:
            print("version.py: " + b, file=sys.stderr)
        if bad:
            print("version.py: run scripts/version.py --set %s (or the new version) to bring them in line" % version(), file=sys.stderr)
            return 1
        print("version.py: every manifest says %s" % version())
    elif len(argv) == 2 and argv[0] == "--set":
        set_version(argv[1])
        print("version.py: set %s (Cargo.lock follows at the next cargo build)" % argv[1])
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
