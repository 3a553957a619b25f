#!/usr/bin/env bash
# Install each package that `make dist` built into a clean place and log in to the test rig from
# it, with nothing pointing at the build tree (no LAKEBASE_LIBRARY, no LD_LIBRARY_PATH, the
# working directory outside the checkout, and the library each process mapped checked in its
# /proc/self/maps):
#   deb     dpkg -i the three .debs (removed afterwards): pkg-config, a C program built with
#           `pkg-config --cflags --libs lakebase`, the Go module built with only the -dev package,
#           LD_PRELOAD=liblakebase.so.0 psql, lakebase exec, the man pages and completions
#   python  the wheel into a fresh virtualenv, no other package
#   ruby    the gem into a temporary GEM_HOME
#   node    the npm tarball into a temporary folder (npm install --offline)
#   php     the Composer archive from an artifact repository into a fresh project (offline)
#
#   scripts/test-packages.sh [--dist DIR] [deb python ruby node php]
# Assumes scripts/install-deps-packages.sh ran and DIR (default dist/) holds `make dist`'s output.
# The deb suite needs root (or passwordless sudo) and a machine without another liblakebase in the
# loader's path; it refuses to replace packages it did not install.
set -uo pipefail
cd "$(dirname "$0")/.."
# The suites' processes find the shared token cache (issue 15) under their own HOME: never in a
# directory the machine's session shares with other processes (XDG_RUNTIME_DIR and friends), where
# tokens of one suite, or of a rig started earlier, would be served to the next.
unset XDG_RUNTIME_DIR XDG_CACHE_HOME LAKEBASE_CACHE_DIR
ROOT=$PWD
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
DIST=$ROOT/dist
if [ "${1:-}" = "--dist" ]; then DIST=$(cd "$2" && pwd); shift 2; fi
ALL=(deb python ruby node php)
SUITES=("$@")
[ ${#SUITES[@]} -gt 0 ] || SUITES=("${ALL[@]}")
for s in "${SUITES[@]}"; do
  case " ${ALL[*]} " in *" $s "*) ;; *) echo "test-packages: unknown suite $s (${ALL[*]})" >&2; exit 64 ;; esac
done
step() { printf '\n==> %s\n' "$*"; }
die() { echo "test-packages: $*" >&2; exit 1; }
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
VERSION=$(python3 scripts/version.py)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lakebase-packages.XXXXXX")
RIG=$WORK/rig
DEBS_INSTALLED=0
cleanup() {
  if [ "$DEBS_INSTALLED" = 1 ]; then
    $SUDO dpkg -r lakebase liblakebase-dev liblakebase0 >/dev/null 2>&1 || echo "test-packages: dpkg -r failed" >&2
  fi
  python3 "$ROOT/tests/rig/rig.py" down --dir "$RIG" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

python3 tests/rig/rig.py up --dir "$RIG" >/dev/null || die "the rig did not start"
# shellcheck disable=SC1091
. "$RIG/env.sh"
# What a user's process has: the workspace settings, no path into this checkout.
unset LAKEBASE_LIBRARY LD_LIBRARY_PATH LD_PRELOAD PKG_CONFIG_PATH
export DATABRICKS_TOKEN=$RIG_PAT LAKEBASE_INSTANCE=$RIG_INSTANCE LAKEBASE_CACHE=off PGUSER=$RIG_USER
# The rig's PostgreSQL listens on localhost, not on the instance's own host name: the injected
# library sends the token there only when told it is the database's host.
export LAKEBASE_HOSTS=localhost
# A fresh HOME (no ~/.databrickscfg, no shared cache of an earlier run); the package managers'
# caches stay where install-deps filled them (the npm packages come from there, offline).
export npm_config_cache=${npm_config_cache:-$HOME/.npm}
if command -v go >/dev/null 2>&1; then
  GOMODCACHE=$(go env GOMODCACHE) GOCACHE=$(go env GOCACHE)
  export GOMODCACHE GOCACHE GOPROXY=off GOFLAGS=-mod=mod
fi
export HOME=$WORK/home
mkdir -p "$HOME"
cd "$WORK" || exit 1

# The path of the liblakebase a process mapped, from the line it printed: "liblakebase=<path>".
mapped() { sed -n 's/^liblakebase=//p' <<<"$1" | head -n1; }
expect_under() { # what, path, prefix (compared after resolving symlinks: /lib is /usr/lib on merged-/usr)
  local real prefix
  real=$(realpath -m -- "${2:-/nonexistent}")
  prefix=$(realpath -m -- "$3")
  case $real in "$prefix"/*) echo "ok: $1 loaded $2" ;; *) echo "FAIL: $1 loaded '$2', not a file under $3"; return 1 ;; esac
}
# Log in with a password on stdin's first line; prints the role.
login_with() { PGPASSWORD=$(head -n1) psql -X -At -c "select current_user" 2>&1; }
# The output of a program that printed a password, then "version=<v>" and "liblakebase=<path>" (the
# library it mapped): that library is under prefix and of this version, and the password logs in.
# Never prints the output (it holds the password).
check_output() { # what, output, prefix
  local role
  expect_under "$1" "$(mapped "$2")" "$3" || return 1
  grep -qx "version=$VERSION" <<<"$2" || { echo "FAIL: $1: the library it loaded is not version $VERSION"; return 1; }
  role=$(login_with <<<"$2")
  [ "$role" = "$RIG_USER" ] || { echo "FAIL: $1: the login with its password: $role"; return 1; }
  echo "ok: $1 gives a password that logs in as $role"
}

declare -A RESULT
run() {
  local s=$1
  step "$s"
  "${s}_suite"
  RESULT[$s]=$?
}

deb_suite() {
  local debs=("$DIST"/liblakebase0_"$VERSION"-1_*.deb "$DIST"/liblakebase-dev_"$VERSION"-1_*.deb "$DIST"/lakebase_"$VERSION"-1_*.deb)
  for d in "${debs[@]}"; do [ -f "$d" ] || { echo "FAIL: $d missing (make dist)"; return 1; }; done
  if dpkg-query -W -f '${Status}' liblakebase0 2>/dev/null | grep -q installed; then
    echo "FAIL: liblakebase0 is installed already; not replacing a package this suite did not install"; return 1
  fi
  if ldconfig -p | grep -q 'liblakebase\.so\.0 '; then
    echo "FAIL: another liblakebase.so.0 is in the loader's cache: $(ldconfig -p | grep liblakebase)"; return 1
  fi
  $SUDO dpkg -i "${debs[@]}" >/dev/null || { echo "FAIL: dpkg -i"; return 1; }
  DEBS_INSTALLED=1
  local multiarch libdir out
  multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
  libdir=/usr/lib/$multiarch
  # The runtime package: the SONAME link, in the loader's cache through the ldconfig trigger.
  [ "$(readlink "$libdir/liblakebase.so.0")" = "liblakebase.so.$VERSION" ] || { echo "FAIL: $libdir/liblakebase.so.0 is not a link to liblakebase.so.$VERSION"; return 1; }
  out=$(ldconfig -p | sed -n 's/^\s*liblakebase\.so\.0 (.*) => //p')
  [ -n "$out" ] && [ "$(realpath -- "$out")" = "$(realpath -- "$libdir/liblakebase.so.$VERSION")" ] ||
    { echo "FAIL: ldconfig does not know liblakebase.so.0 (ldconfig -p: '$out')"; return 1; }
  echo "ok: liblakebase0 installs $libdir/liblakebase.so.$VERSION, ldconfig knows liblakebase.so.0"
  # -dev: pkg-config and a C program built with nothing but its flags (-L is implied by the
  # multiarch directory, so only -llakebase; pkg-config's trailing space trimmed).
  # shellcheck disable=SC2116,SC2086
  out=$(pkg-config --libs lakebase) && out=$(echo $out) && [ "$out" = "-llakebase" ] || { echo "FAIL: pkg-config --libs lakebase: '$out'"; return 1; }
  [ "$(pkg-config --modversion lakebase)" = "$VERSION" ] || { echo "FAIL: pkg-config --modversion"; return 1; }
  cat > get_password.c <<'C'
#include <lakebase.h>
#include <stdio.h>
int main(void) {
    char buf[4096];
    size_t len = 0;
    lakebase_result r = lakebase_get_password(buf, sizeof buf, &len);
    if (r != LAKEBASE_OK) {
        char err[512];
        lakebase_last_error(err, sizeof err);
        fprintf(stderr, "%s: %s\n", lakebase_result_name(r), err);
        return 1;
    }
    printf("%s\nversion=%s\n", buf, lakebase_version());
    FILE *m = fopen("/proc/self/maps", "r");
    char line[1024];
    while (m && fgets(line, sizeof line, m)) {
        char *p = strstr(line, "/liblakebase");
        if (p) { while (p > line && p[-1] != ' ') p--; printf("liblakebase=%s", p); break; }
    }
    return 0;
}
C
  sed -i 's|#include <stdio.h>|#include <stdio.h>\n#include <string.h>|' get_password.c
  # shellcheck disable=SC2046
  cc -Wall -Werror get_password.c $(pkg-config --cflags --libs lakebase) -o get_password || { echo "FAIL: cc with pkg-config"; return 1; }
  local role
  out=$(./get_password) || { echo "FAIL: get_password"; return 1; }
  check_output "a C program built with \$(pkg-config --cflags --libs lakebase)" "$out" "$libdir" || return 1
  # Go: the module with nothing but the -dev package (#cgo pkg-config: lakebase), no CGO_* flags.
  mkdir -p goapp
  cat > goapp/main.go <<'GO'
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	lakebase "github.com/liblakebase/liblakebase/bindings/go"
)

func main() {
	pw, err := lakebase.Password(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(pw)
	fmt.Println("version=" + lakebase.Version())
	maps, _ := os.ReadFile("/proc/self/maps")
	for _, l := range strings.Split(string(maps), "\n") {
		if strings.Contains(l, "/liblakebase") {
			f := strings.Fields(l)
			fmt.Println("liblakebase=" + f[len(f)-1])
			break
		}
	}
}
GO
  (cd goapp && go mod init example.com/goapp >/dev/null 2>&1 &&
    go mod edit -require=github.com/liblakebase/liblakebase/bindings/go@v0.0.0 \
                -replace=github.com/liblakebase/liblakebase/bindings/go="$ROOT/bindings/go" &&
    go mod tidy >/dev/null 2>&1 && env -u CGO_CFLAGS -u CGO_LDFLAGS go build -o app .) ||
    { echo "FAIL: go build against the -dev package (pkg-config lakebase)"; return 1; }
  out=$(goapp/app) || { echo "FAIL: the Go program"; return 1; }
  check_output "a Go program built with only liblakebase-dev (#cgo pkg-config: lakebase)" "$out" "$libdir" || return 1
  # LD_PRELOAD by SONAME, and the command's exec finding the packaged library by itself.
  role=$(LD_PRELOAD=liblakebase.so.0 psql -X -At -c "select current_user" 2>&1)
  [ "$role" = "$RIG_USER" ] || { echo "FAIL: LD_PRELOAD=liblakebase.so.0 psql: $role"; return 1; }
  echo "ok: LD_PRELOAD=liblakebase.so.0 psql logs in as $role"
  [ "$(command -v lakebase)" = /usr/bin/lakebase ] || { echo "FAIL: lakebase is $(command -v lakebase)"; return 1; }
  lakebase --version | grep -q "$VERSION" || { echo "FAIL: lakebase --version"; return 1; }
  role=$(lakebase exec -- psql -X -At -c "select current_user" 2>&1)
  [ "$role" = "$RIG_USER" ] || { echo "FAIL: lakebase exec -- psql: $role"; return 1; }
  out=$(lakebase exec -- sh -c 'echo "$LD_PRELOAD"')
  [ "$out" = "$libdir/liblakebase.so.0" ] || { echo "FAIL: lakebase exec preloads '$out'"; return 1; }
  role=$(lakebase password | login_with)
  [ "$role" = "$RIG_USER" ] || { echo "FAIL: lakebase password: $role"; return 1; }
  echo "ok: /usr/bin/lakebase: exec preloads $out, password logs in"
  for f in /usr/share/man/man1/lakebase.1.gz /usr/share/man/man1/lakebase-exec.1.gz /usr/share/man/man1/lakebase-proxy.1.gz \
           /usr/share/bash-completion/completions/lakebase /usr/share/zsh/vendor-completions/_lakebase \
           /usr/share/fish/vendor_completions.d/lakebase.fish /usr/include/lakebase.h; do
    [ -s "$f" ] || { echo "FAIL: $f missing"; return 1; }
  done
  zcat /usr/share/man/man1/lakebase-proxy.1.gz | grep -q '^\.TH LAKEBASE-PROXY 1 .*"lakebase '"$VERSION"'"' || { echo "FAIL: lakebase-proxy.1 is not a man page"; return 1; }
  bash -c '. /usr/share/bash-completion/completions/lakebase && COMP_WORDS=(lakebase wh) COMP_CWORD=1 && _lakebase lakebase wh lakebase && printf "%s\n" "${COMPREPLY[@]}"' | grep -qx whoami ||
    { echo "FAIL: bash completion does not complete 'lakebase wh' to whoami"; return 1; }
  echo "ok: man pages, bash/zsh/fish completions (bash completes 'lakebase wh' to whoami)"
  $SUDO dpkg -r lakebase liblakebase-dev liblakebase0 >/dev/null || { echo "FAIL: dpkg -r"; return 1; }
  DEBS_INSTALLED=0
  if ldconfig -p | grep -q liblakebase || [ -e "$libdir/liblakebase.so.0" ] || [ -e /usr/bin/lakebase ]; then
    echo "FAIL: files or the loader cache entry left after dpkg -r"; return 1
  fi
  echo "ok: dpkg -r removes every file and the loader cache entry"
}

python_suite() {
  local whl venv out
  whl=$(ls "$DIST"/lakebase-"$VERSION"-py3-none-*.whl 2>/dev/null | head -n1)
  [ -n "$whl" ] || { echo "FAIL: no wheel in $DIST"; return 1; }
  case $whl in *-manylinux_2_*_"$(uname -m)".whl|*-linux_"$(uname -m)".whl) ;; *) echo "FAIL: platform tag of $whl"; return 1 ;; esac
  venv=$WORK/venv
  /usr/bin/python3 -m venv "$venv" || return 1
  "$venv/bin/python" -m pip install -q --no-index --disable-pip-version-check "$whl" || { echo "FAIL: pip install $whl"; return 1; }
  echo "ok: pip install $(basename "$whl") into a fresh virtualenv (no index)"
  out=$("$venv/bin/python" - <<'PY'
import lakebase
c = lakebase.Client()
print(c.password())
print("version=" + lakebase.version())
for line in open("/proc/self/maps"):
    if "/liblakebase" in line:
        print("liblakebase=" + line.split()[-1])
        break
PY
) || { echo "FAIL: import lakebase: $(tail -n +2 <<<"$out")"; return 1; }
  check_output "the wheel's client" "$out" "$venv/lib"
}

ruby_suite() {
  local gemf out
  gemf=$(ls "$DIST"/lakebase-"$VERSION"-*.gem 2>/dev/null | head -n1)
  [ -n "$gemf" ] || { echo "FAIL: no gem in $DIST"; return 1; }
  export GEM_HOME=$WORK/gems
  # ruby-ffi comes from the system (Debian's ruby-ffi); the gem goes into the temporary GEM_HOME.
  GEM_PATH=$WORK/gems:$(ruby -e 'print Gem.default_path.join(":")')
  export GEM_PATH
  gem install --local --no-document "$gemf" >/dev/null || { echo "FAIL: gem install $gemf"; return 1; }
  echo "ok: gem install $(basename "$gemf") into a temporary GEM_HOME"
  out=$(ruby -e '
    require "lakebase"
    puts Lakebase.password
    puts "version=#{Lakebase.library_version}"
    line = File.readlines("/proc/self/maps").find { |l| l.include?("/liblakebase") }
    puts "liblakebase=#{line.split.last}"' 2>&1) || { echo "FAIL: require lakebase: $(tail -n +2 <<<"$out")"; return 1; }
  check_output "the gem's client" "$out" "$GEM_HOME/gems"
}

node_suite() {
  local tgz app out
  tgz=$DIST/lakebase-$VERSION.tgz
  [ -f "$tgz" ] || { echo "FAIL: $tgz missing"; return 1; }
  app=$WORK/node-app
  mkdir -p "$app"
  (cd "$app" && echo '{"name": "lakebase-node-app", "private": true}' > package.json &&
    npm install --offline --ignore-scripts --no-audit --no-fund --loglevel=error "$tgz" >/dev/null) ||
    { echo "FAIL: npm install --offline $tgz (run scripts/install-deps-bindings.sh for koffi in the npm cache)"; return 1; }
  echo "ok: npm install $(basename "$tgz") into a fresh folder (offline)"
  out=$(cd "$app" && node -e '
    const lakebase = require("lakebase");
    const c = new lakebase.Client();
    c.password().then((pw) => {
    console.log(pw);
    console.log("version=" + lakebase.version());
    const line = require("fs").readFileSync("/proc/self/maps", "utf8").split("\n").find((l) => l.includes("/liblakebase"));
    console.log("liblakebase=" + line.trim().split(/\s+/).pop());
    c.close(); });' 2>&1) || { echo "FAIL: require(lakebase): $(tail -n +2 <<<"$out")"; return 1; }
  check_output "the npm package's client" "$out" "$app/node_modules/lakebase"
}

php_suite() {
  local zip app out
  zip=$DIST/liblakebase-lakebase-$VERSION.zip
  [ -f "$zip" ] || { echo "FAIL: $zip missing"; return 1; }
  app=$WORK/php-app
  mkdir -p "$app/artifacts"
  cp "$zip" "$app/artifacts/"
  cat > "$app/composer.json" <<JSON
{
  "name": "lakebase/php-app",
  "require": { "liblakebase/lakebase": "$VERSION" },
  "repositories": [ { "type": "artifact", "url": "artifacts/" }, { "packagist.org": false } ]
}
JSON
  (cd "$app" && COMPOSER_HOME=$WORK/composer COMPOSER_DISABLE_NETWORK=1 COMPOSER_ALLOW_SUPERUSER=1 COMPOSER_NO_INTERACTION=1 \
    composer install --no-progress --quiet) || { echo "FAIL: composer install from the artifact repository"; return 1; }
  echo "ok: composer install liblakebase/lakebase $VERSION from an artifact repository (offline)"
  out=$(cd "$app" && php -d ffi.enable=1 -r '
    require "vendor/autoload.php";
    $c = Lakebase\Client::default();
    echo $c->password(), "\n";
    echo "version=", Lakebase\Client::libraryVersion(), "\n";
    foreach (file("/proc/self/maps") as $l) { if (str_contains($l, "/liblakebase")) { echo "liblakebase=", trim(substr($l, strrpos($l, " "))), "\n"; break; } }' 2>&1) ||
    { echo "FAIL: php: $(tail -n +2 <<<"$out")"; return 1; }
  check_output "the Composer package's client" "$out" "$app/vendor/liblakebase/lakebase"
}

for s in "${SUITES[@]}"; do run "$s"; done
step "summary"
failed=0
for s in "${SUITES[@]}"; do
  if [ "${RESULT[$s]}" -eq 0 ]; then echo "$s ok"; else echo "$s FAILED"; failed=1; fi
done
exit $failed
