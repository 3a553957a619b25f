#!/usr/bin/env bash
# Build every package into one folder (`make dist`; default dist/):
#   liblakebase0_<v>-1_<arch>.deb      the runtime library (SONAME liblakebase.so.0, ldconfig trigger)
#   liblakebase-dev_<v>-1_<arch>.deb   lakebase.h, lakebase.pc, the liblakebase.so link
#   lakebase_<v>-1_<arch>.deb          the lakebase command, its man pages and shell completions
#   lakebase-<v>-py3-none-<platform>.whl   the Python binding with the library inside
#   lakebase-<v>-<platform>.gem        the Ruby binding with the library inside
#   lakebase-<v>.tgz                   the npm package with the library in prebuilds/<platform>/
#   liblakebase-lakebase-<v>.zip       the Composer package (an artifact repository's archive)
#   SHA256SUMS
# Every artifact carries the version of Cargo.toml (scripts/version.py). The Go module is source:
# `go get` it and install liblakebase-dev (it links through `pkg-config lakebase`).
#
#   scripts/dist.sh [--out DIR] [--only deb,python,ruby,node,php]
# Needs: cargo, objcopy, gzip, python3 with setuptools and wheel (.venv, see
# scripts/install-deps-packages.sh), gem, npm. cargo-deb is pinned below and installed into
# target/tools on first use (CARGO_DEB=/path/to/cargo-deb uses another).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/venv.sh
. scripts/venv.sh

CARGO_DEB_VERSION=3.8.0
OUT=dist
ONLY=deb,python,ruby,node,php
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "usage: scripts/dist.sh [--out DIR] [--only deb,python,ruby,node,php]" >&2; exit 64 ;;
  esac
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
step() { printf '==> dist: %s\n' "$*"; }
die() { echo "dist: $*" >&2; exit 1; }

python3 scripts/version.py --check >/dev/null || { python3 scripts/version.py --check; die "versions disagree"; }
VERSION=$(python3 scripts/version.py)
MAJOR=${VERSION%%.*}
MACHINE=$(uname -m)                                    # x86_64, aarch64
case $MACHINE in x86_64) NODE_ARCH=x64 ;; aarch64) NODE_ARCH=arm64 ;; *) NODE_ARCH=$MACHINE ;; esac
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
STAGE=$ROOT/build/dist
rm -rf "$STAGE"
mkdir -p "$STAGE"

step "build and strip (make strip)"
make -s strip >/dev/null
LIB=$ROOT/build/stripped/liblakebase.so.$VERSION
[ -f "$LIB" ] || die "$LIB missing after make strip"

# --- Debian packages ------------------------------------------------------------------------
if want deb; then
  step "Debian packages (cargo-deb $CARGO_DEB_VERSION)"
  if [ -n "${CARGO_DEB:-}" ]; then
    "$CARGO_DEB" --version | grep -q " $CARGO_DEB_VERSION" || die "CARGO_DEB=$CARGO_DEB is not cargo-deb $CARGO_DEB_VERSION"
  else
    CARGO_DEB=$ROOT/target/tools/bin/cargo-deb
    if ! "$CARGO_DEB" --version 2>/dev/null | grep -q " $CARGO_DEB_VERSION"; then
      step "install cargo-deb $CARGO_DEB_VERSION into target/tools (once per target/)"
      cargo install --quiet cargo-deb --version "$CARGO_DEB_VERSION" --locked --root "$ROOT/target/tools"
    fi
  fi
  MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
  D=$ROOT/build/deb
  rm -rf "$D"
  mkdir -p "$D/lib" "$D/dev/lib" "$D/cli/man" "$D/cli/completions"
  install -m 0755 "$LIB" "$D/lib/liblakebase.so.$VERSION"
  ln -s "liblakebase.so.$VERSION" "$D/lib/liblakebase.so.$MAJOR"
  ln -s "liblakebase.so.$MAJOR" "$D/dev/lib/liblakebase.so"
  sed -e 's|@PREFIX@|/usr|' -e "s|@LIBDIR@|/usr/lib/$MULTIARCH|" -e 's|@INCLUDEDIR@|/usr/include|' \
      -e "s|@VERSION@|$VERSION|" lakebase.pc.in > "$D/dev/lakebase.pc"
  install -m 0755 build/stripped/lakebase "$D/cli/lakebase"
  "$D/cli/lakebase" __generate-docs "$D/cli/gen" >/dev/null
  for page in "$D"/cli/gen/man/*.1; do gzip -9n < "$page" > "$D/cli/man/$(basename "$page").gz"; done
  cp "$D"/cli/gen/completions/* "$D/cli/completions/"
  for args in "--multiarch=same" "--multiarch=same --variant dev" "-p lakebase-cli"; do
    # shellcheck disable=SC2086
    "$CARGO_DEB" --no-build --no-strip --quiet $args --output "$OUT" >/dev/null
  done
fi

# --- Python wheel ---------------------------------------------------------------------------
# A platform wheel: a ctypes binding works with any Python 3, so py3-none, and the platform tag
# says which glibc the bundled library needs (manylinux_2_<n> from its highest GLIBC_ symbol
# version, when it links only libraries the manylinux policy allows; linux_<machine> otherwise).
platform_tag() {
  local needed glibc
  needed=$(readelf -d "$LIB" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
  for n in $needed; do
    case $n in libc.so.6|libm.so.6|libgcc_s.so.1|libpthread.so.0|libdl.so.2|librt.so.1|ld-linux*) ;; *) echo "linux_$MACHINE"; return ;; esac
  done
  glibc=$(objdump -T "$LIB" | grep -o 'GLIBC_2\.[0-9]*' | sort -t. -k2 -n -u | tail -n1)
  echo "manylinux_2_${glibc#GLIBC_2.}_$MACHINE"
}
if want python; then
  step "Python wheel"
  P=$STAGE/python
  cp -r bindings/python "$P"
  rm -rf "$P/tests" "$P/build" "$P"/src/*.egg-info "$P"/src/lakebase/liblakebase.so*
  install -m 0755 "$LIB" "$P/src/lakebase/liblakebase.so.$MAJOR"
  # The library makes this a binary distribution: platlib, a platform tag (retagged below).
  cat > "$P/setup.py" <<'EOF'
from setuptools import Distribution, setup


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(distclass=BinaryDistribution)
EOF
  python3 -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$STAGE/wheel" "$P"
  whl=$(ls "$STAGE"/wheel/lakebase-"$VERSION"-*.whl)
  python3 -m wheel tags --remove --python-tag py3 --abi-tag none --platform-tag "$(platform_tag)" "$whl" >/dev/null
  rm -f "$OUT"/lakebase-*.whl
  mv "$STAGE"/wheel/lakebase-"$VERSION"-py3-none-*.whl "$OUT/"
fi

# --- Ruby gem -------------------------------------------------------------------------------
if want ruby; then
  step "Ruby gem"
  R=$STAGE/ruby
  cp -r bindings/ruby "$R"
  rm -rf "$R/test" "$R"/*.gem
  mkdir -p "$R/lib/lakebase/native/linux-$MACHINE"
  install -m 0755 "$LIB" "$R/lib/lakebase/native/linux-$MACHINE/liblakebase.so.$MAJOR"
  (cd "$R" && gem build lakebase.gemspec >/dev/null)
  rm -f "$OUT"/lakebase-*.gem
  mv "$R"/lakebase-"$VERSION"-*.gem "$OUT/"
fi

# --- npm package ----------------------------------------------------------------------------
if want node; then
  step "npm package"
  N=$STAGE/node
  mkdir -p "$N"
  (cd bindings/node && cp -r package.json README.md index.d.ts index.mjs lib "$N/")
  mkdir -p "$N/prebuilds/linux-$NODE_ARCH"
  install -m 0755 "$LIB" "$N/prebuilds/linux-$NODE_ARCH/liblakebase.so.$MAJOR"
  rm -f "$OUT"/lakebase-*.tgz
  (cd "$N" && npm pack --silent --pack-destination "$OUT" >/dev/null)
fi

# --- Composer package -----------------------------------------------------------------------
if want php; then
  step "Composer package"
  C=$STAGE/php
  mkdir -p "$C"
  (cd bindings/php && cp -r composer.json README.md autoload.php preload.php lakebase.h src "$C/")
  mkdir -p "$C/lib/linux-$MACHINE"
  install -m 0755 "$LIB" "$C/lib/linux-$MACHINE/liblakebase.so.$MAJOR"
  rm -f "$OUT"/liblakebase-lakebase-*.zip
  python3 - "$C" "$OUT/liblakebase-lakebase-$VERSION.zip" "$VERSION" <<'EOF'
import json, os, sys, zipfile
src, dest, version = sys.argv[1:]
meta = json.load(open(os.path.join(src, "composer.json")))
meta["version"] = version  # an artifact repository reads the version from the archive
tmp = dest + ".tmp~"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("composer.json", json.dumps(meta, indent=4) + "\n")
    for d, _, files in sorted(os.walk(src)):
        for f in sorted(files):
            path = os.path.join(d, f)
            rel = os.path.relpath(path, src)
            if rel == "composer.json":
                continue
            info = zipfile.ZipInfo.from_file(path, rel)
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as fh:
                z.writestr(info, fh.read())
os.replace(tmp, dest)
EOF
fi

(cd "$OUT" && rm -f SHA256SUMS && sha256sum -- *.deb *.whl *.gem *.tgz *.zip 2>/dev/null > SHA256SUMS.tmp~ || true; mv SHA256SUMS.tmp~ SHA256SUMS)
step "$(cd "$OUT" && ls | grep -v SHA256SUMS | tr '\n' ' ')in $OUT (version $VERSION)"
