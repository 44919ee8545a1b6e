#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv with Python >= 3.12.
# Used by scripts/demo and scripts/test; safe to run again (reinstalls only when pyproject.toml changed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"

find_python() {
  local candidates=(python3.12 python3.13 python3.14)
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E "^3\.1[2-9]" | sort -V); do
      candidates+=("$(pyenv root)/versions/$v/bin/python3")
    done
  fi
  for c in "${candidates[@]}"; do
    if "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
      echo "$c"; return 0
    fi
  done
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  py=$(find_python) || { echo "ml4t-live needs Python >= 3.12 (python3.12 or a pyenv 3.12 install); none found." >&2; exit 2; }
  echo "bootstrap: creating .venv with $("$py" -V 2>&1)" >&2
  "$py" -m venv "$venv"
fi
stamp="$venv/.ml4t-live-installed"
want=$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing ml4t-live and its test tools into .venv (first run takes a minute)" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[test]"
  echo "$want" >"$stamp"
fi
