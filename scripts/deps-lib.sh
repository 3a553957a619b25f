# Shared by scripts/install-deps*.sh: idempotent installs that skip what is already present.
# Source it after setting LOG_TAG; Debian 12, root or passwordless sudo.

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "$LOG_TAG: must run as root (or have sudo)" >&2; exit 1
  fi
fi
log() { echo "$LOG_TAG: $*"; }

# apt_ensure PKG...: apt-get install the packages that are not installed (quiet unless it fails).
apt_ensure() {
  local missing=() p aptlog
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "apt packages present"
    return 0
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  aptlog=$(mktemp)
  if ! { $SUDO apt-get update -qq && \
         $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
    cat "$aptlog" >&2; rm -f "$aptlog"; exit 1
  fi
  rm -f "$aptlog"
}

# pip_ensure "MODULE..." PACKAGE...: pip install the packages into the repository's virtualenv
# (scripts/venv.sh) unless every module already imports there.
pip_ensure() {
  local modules=$1 piplog
  shift
  # shellcheck source=scripts/venv.sh
  . "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
  PY=${PYTHON:-$VIRTUAL_ENV/bin/python3}
  # shellcheck disable=SC2086
  if "$PY" -c 'import importlib.util, sys; sys.exit(0 if all(importlib.util.find_spec(m) for m in sys.argv[1:]) else 1)' \
       $modules >/dev/null 2>&1; then
    log "python packages present"
    return 0
  fi
  log "pip install $* (for $("$PY" -c 'import sys; print(sys.executable)'))"
  piplog=$(mktemp)
  if ! "$PY" -m pip install -q --disable-pip-version-check "$@" >"$piplog" 2>&1; then
    if grep -q "externally-managed-environment" "$piplog"; then
      "$PY" -m pip install -q --disable-pip-version-check --break-system-packages "$@" \
        >"$piplog" 2>&1 || { cat "$piplog" >&2; rm -f "$piplog"; exit 1; }
    else
      cat "$piplog" >&2; rm -f "$piplog"; exit 1
    fi
  fi
  rm -f "$piplog"
}
