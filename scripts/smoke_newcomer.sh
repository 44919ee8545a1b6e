#!/usr/bin/env bash
# A newcomer's first hour, scripted: clone this repository into a temp folder and, with a fresh
# HOME and no PYENV_ROOT, run the README's two commands, then `ml4t-live --version`, the demo, a
# run, a replay of that run and a run on bad input. One line per step: ok / FAIL, seconds, detail.
#
#   scripts/smoke_newcomer.sh             # ./scripts/test runs a quick slice (tests/test_public_api.py)
#   SMOKE_FULL_TESTS=1 scripts/smoke_newcomer.sh   # ./scripts/test runs the whole suite
#
# The first ./scripts/demo creates .venv and pip-installs every dependency (a few minutes). Exit
# status: the number of failed steps. The temp folders are removed unless SMOKE_KEEP=1.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
home="$tmp/home"
clone="$tmp/ml4t-live"
mkdir -p "$home"
failed=0
[ "${SMOKE_KEEP:-0}" = 1 ] || trap 'rm -rf "$tmp"' EXIT

# step NAME EXPECTED_EXIT GREP_FOR COMMAND...: runs COMMAND in the clone as a newcomer would
step() {
  local name=$1 expect=$2 want=$3
  shift 3
  local start=$SECONDS out rc detail
  out=$(cd "$clone" && env -u PYENV_ROOT -u PYTHONPATH -u VIRTUAL_ENV -u ML4T_LIVE_STATE_DIR -u XDG_STATE_HOME \
        HOME="$home" "$@" 2>&1)
  rc=$?
  detail=$(printf '%s\n' "$out" | grep -m1 -E -- "$want" || true)
  if [ "$rc" = "$expect" ] && [ -n "$detail" ]; then
    printf 'ok    %-28s %4ss  exit %s: %s\n' "$name" $((SECONDS - start)) "$rc" "$(echo "$detail" | sed 's/^ *//' | cut -c1-150)"
  else
    failed=$((failed + 1))
    printf 'FAIL  %-28s %4ss  exit %s (expected %s; looked for /%s/); last lines:\n' "$name" $((SECONDS - start)) "$rc" "$expect" "$want"
    printf '%s\n' "$out" | tail -15 | sed 's/^/        /'
  fi
  printf '%s\n' "$out" >"$tmp/$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' _).log"
}

branch=$(git -C "$repo" rev-parse --abbrev-ref HEAD)
start=$SECONDS
if git clone -q --branch "$branch" "$repo" "$clone" 2>"$tmp/clone.log"; then
  printf 'ok    %-28s %4ss  %s at %s (branch %s), HOME=%s, PYENV_ROOT unset\n' "clone" $((SECONDS - start)) \
    "$clone" "$(git -C "$clone" rev-parse --short HEAD)" "$branch" "$home"
else
  echo "FAIL  clone: $(cat "$tmp/clone.log")"
  exit 1
fi

step "./scripts/demo" 0 "^DemoMomentum: 780 bars" ./scripts/demo -q
if [ "${SMOKE_FULL_TESTS:-0}" = 1 ]; then
  step "./scripts/test (whole suite)" 0 "passed" ./scripts/test -q
else
  step "./scripts/test (a slice)" 0 "passed" ./scripts/test -q tests/test_public_api.py
fi
step "ml4t-live --version" 0 "^ml4t-live [0-9]" .venv/bin/ml4t-live --version
step "ml4t-live demo" 0 "^DemoMomentum: 780 bars" .venv/bin/ml4t-live demo -q --session-dir "$tmp/sessions/demo"
step "ml4t-live run" 0 "^DemoMomentum: 780 bars" .venv/bin/ml4t-live run examples/demo_strategy.py:DemoMomentum \
  --data ml4t_live/data/demo_bars.parquet -p fast=5 -p slow=20 -q --session-dir "$tmp/sessions/run"
session=$(ls -d "$tmp"/sessions/run/DemoMomentum-* 2>/dev/null | head -1)
step "ml4t-live replay" 0 "^DemoMomentum: 780 bars" .venv/bin/ml4t-live replay "${session:-no-session-folder}" -q \
  --session-dir "$tmp/sessions/replay"
# bad input: the bundled bars as CSV with one NaN close
(cd "$clone" && "$clone/.venv/bin/python" - "$tmp/bad.csv" <<'EOF'
import sys
import polars as pl
bars = pl.read_parquet("ml4t_live/data/demo_bars.parquet")
close = bars["close"].to_list()
close[100] = float("nan")
bars.with_columns(pl.Series("close", close)).write_csv(sys.argv[1])
EOF
) 2>/dev/null
step "ml4t-live run (bad bars)" 2 "configuration error: bad bar in .* row 101 \(line 102\): close is NaN" \
  .venv/bin/ml4t-live run examples/demo_strategy.py:DemoMomentum --data "$tmp/bad.csv" -q --session-dir "$tmp/sessions/bad"
if [ -e "$tmp/sessions/bad" ]; then
  failed=$((failed + 1))
  echo "FAIL  the refused run left a session folder behind: $(ls "$tmp/sessions/bad")"
fi

if [ "${SMOKE_KEEP:-0}" = 1 ]; then logs="kept in $tmp"; else logs="removed; SMOKE_KEEP=1 keeps them"; fi
echo "smoke_newcomer: $failed step(s) failed (each step's output: $logs)"
exit "$failed"
