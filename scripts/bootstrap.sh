#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv with Python >= 3.12.
# Used by scripts/demo and scripts/test; safe to run again (reinstalls only when pyproject.toml changed).
#
# The interpreter: $PYTHON when set (PYTHON=/path/to/python3.12 ./scripts/demo), else the first
# Python >= 3.12 among python3.12 ... python3.14 and python3 on the PATH, then pyenv's installs
# (under $PYENV_ROOT, `pyenv root`, the folder the pyenv command lives in - so a pyenv on the PATH
# is found without PYENV_ROOT - and ~/.pyenv). `bootstrap.sh --find-python` only prints it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
looked=()

is_312() {  # is "$1" a Python >= 3.12?
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

pyenv_roots() {  # candidate pyenv roots, one a line (some may not exist)
  [ -n "${PYENV_ROOT:-}" ] && echo "$PYENV_ROOT"
  if command -v pyenv >/dev/null 2>&1; then
    pyenv root 2>/dev/null || true
    local exe
    exe=$(readlink -f "$(command -v pyenv)" 2>/dev/null) && dirname "$(dirname "$exe")"  # <root>/libexec/pyenv
  fi
  echo "$HOME/.pyenv"
}

find_python() {
  local c root v
  for c in python3.12 python3.13 python3.14 python3; do
    if command -v "$c" >/dev/null 2>&1; then
      is_312 "$c" && { command -v "$c"; return 0; }
      looked+=("$(command -v "$c") ($("$c" -V 2>&1 || echo "does not run"))")
    fi
  done
  while read -r root; do
    [ -d "$root/versions" ] || continue
    for v in $(ls "$root/versions" | grep -E '^3\.(1[2-9]|[2-9][0-9])' | sort -V); do
      is_312 "$root/versions/$v/bin/python3" && { echo "$root/versions/$v/bin/python3"; return 0; }
    done
    looked+=("pyenv versions under $root ($(ls "$root/versions" | tr '\n' ' ' | sed 's/ $//'))")
  done < <(pyenv_roots | awk '!seen[$0]++')
  [ -n "${PYENV_ROOT:-}" ] || command -v pyenv >/dev/null 2>&1 || [ -d "$HOME/.pyenv" ] ||
    looked+=("pyenv: not on the PATH, PYENV_ROOT unset, no ~/.pyenv")
  return 1
}

choose_python() {
  if [ -n "${PYTHON:-}" ]; then
    if ! is_312 "$PYTHON"; then
      echo "bootstrap: PYTHON=$PYTHON is not a Python >= 3.12 ($("$PYTHON" -V 2>&1 || echo "it does not run")); name a Python 3.12 or newer." >&2
      exit 2
    fi
    echo "$PYTHON"
    return 0
  fi
  if ! find_python; then
    {
      echo "bootstrap: ml4t-live needs Python >= 3.12 and none was found."
      echo "  looked at: python3.12 ... python3.14 and python3 on the PATH, and pyenv's installs"
      for item in "${looked[@]}"; do echo "    - $item"; done
      echo "  what to do: name an interpreter, e.g.  PYTHON=/path/to/python3.12 ./scripts/demo  (or ./scripts/test)"
      echo "              or install one (pyenv install 3.12, uv python install 3.12, or your system's python3.12 package)"
    } >&2
    exit 2
  fi
}

if [ "${1:-}" = "--find-python" ]; then
  choose_python
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  py=$(choose_python)
  echo "bootstrap: creating .venv with $("$py" -V 2>&1) ($py)" >&2
  "$py" -m venv "$venv"
fi
stamp="$venv/.ml4t-live-installed"
want=$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing ml4t-live and its test tools into .venv (first run takes a minute)" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[test]"
  echo "$want" >"$stamp"
fi
