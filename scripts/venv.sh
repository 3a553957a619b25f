# Source me: the repository's virtualenv (.venv at the root) for every Python package the scripts
# and tests need, created on first use and reused. Its bin/ goes first on PATH, so `python3` and
# `pip` in the scripts are the venv's; nothing is installed into the system's Python.
_lb_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ ! -x "$_lb_root/.venv/bin/python3" ]; then
  echo "venv: python3 -m venv .venv (the scripts' Python packages go there)"
  python3 -m venv "$_lb_root/.venv" || { echo "venv: cannot create $_lb_root/.venv (Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
export VIRTUAL_ENV="$_lb_root/.venv"
case ":$PATH:" in *":$VIRTUAL_ENV/bin:"*) ;; *) export PATH="$VIRTUAL_ENV/bin:$PATH" ;; esac
unset _lb_root
