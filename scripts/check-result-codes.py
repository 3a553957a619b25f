#!/usr/bin/env python3
"""Every copy of the result codes agrees with their one source, the lakebase_result enum of the
generated header (include/lakebase.h, from src/ffi/mod.rs).

Runtime-FFI bindings (Python ctypes, Ruby FFI, Node koffi, PHP FFI) and the Go binding's typed
constants cannot include the header, so they carry a copy: this check reads each copy and fails on
a wrong value, or on a name the header does not have. A binding may lack codes added after it
(it then reports them by number); LAKEBASE_WOULD_BLOCK is only returned by the non-blocking call.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def norm(name):
    """LAKEBASE_CONFIG_ERROR, CONFIG_ERROR, CodeConfig, ConfigError -> 'config'."""
    n = re.sub(r"^(LAKEBASE_|Code)", "", name)
    n = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", n).lower().replace("_", "")
    return re.sub(r"error$", "", n) or n


def header_codes():
    text = open(os.path.join(ROOT, "include", "lakebase.h")).read()
    body = re.search(r"typedef enum \{([^}]*)\} lakebase_result;", text, re.S)
    if not body:
        sys.exit("check-result-codes: no lakebase_result enum in include/lakebase.h")
    codes = {norm(n): int(v) for n, v in re.findall(r"\b(LAKEBASE_[A-Z_]+) = (\d+)", body.group(1))}
    if len(codes) < 8:
        sys.exit("check-result-codes: the header enum looks truncated: %r" % codes)
    return codes


# (file, regex with groups (name, value)) for every hand-kept copy.
COPIES = [
    ("bindings/python/src/lakebase/errors.py", r"^([A-Z_]+) = (\d+)$"),
    ("bindings/ruby/lib/lakebase/native.rb", r"^\s+([A-Z_]+) = (\d+)$"),
    ("bindings/ruby/lib/lakebase/errors.rb", r"class (\w+)Error < Error; CODE = (\d+); end"),
    ("bindings/go/errors.go", r"^\s+(Code\w+)\s+Code = (\d+)$"),
    ("bindings/node/lib/errors.js", r"^\s+([A-Z_]+): (\d+),?$"),
    ("bindings/php/src/LakebaseException.php", r"public const ([A-Z_]+) = (\d+);"),
]
NOT_CODES = {"abimajor", "firstguess"}


# Hand-kept C declarations (PHP FFI cannot read the generated header): every function they declare
# must exist in the header.
DECLARATIONS = ["bindings/php/lakebase.h", "bindings/php/src/Native.php"]


def check_declarations(failures):
    header = open(os.path.join(ROOT, "include", "lakebase.h")).read()
    exported = set(re.findall(r"\b(lakebase_\w+)\s*\(", header))
    n = 0
    for rel in DECLARATIONS:
        path = os.path.join(ROOT, rel)
        if not os.path.exists(path):
            continue
        for name in re.findall(r"^\s*(?:const\s+)?\w+\s*\*?\s*(lakebase_\w+)\s*\(", open(path).read(), re.M):
            n += 1
            if name not in exported:
                failures.append("%s: declares %s, which include/lakebase.h does not have" % (rel, name))
    return n


def main():
    codes = header_codes()
    failures, checked = [], 0
    for rel, pattern in COPIES:
        path = os.path.join(ROOT, rel)
        if not os.path.exists(path):
            continue
        found = re.findall(pattern, open(path).read(), re.M)
        for name, value in found:
            key = norm(name)
            if key in NOT_CODES:
                continue
            checked += 1
            if key not in codes:
                failures.append("%s: %s is not a result code of the header" % (rel, name))
            elif codes[key] != int(value):
                failures.append("%s: %s = %s, but the header says %d" % (rel, name, value, codes[key]))
    declared = check_declarations(failures)
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)
    print("result codes: %d copies in the bindings agree with include/lakebase.h (%d codes); %d hand-kept C declarations exist in it"
          % (checked, len(codes), declared))


if __name__ == "__main__":
    main()
