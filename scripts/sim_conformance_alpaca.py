#!/usr/bin/env python
"""Conformance of ``ml4t-live sim alpaca`` with two Alpaca clients the simulator was not built from.

    .venv/bin/python scripts/sim_conformance_alpaca.py              # both clients + reproducibility
    .venv/bin/python scripts/sim_conformance_alpaca.py --client legacy
    .venv/bin/python scripts/sim_conformance_alpaca.py --venv /tmp/ml4t-ata --json

* ``alpaca-py`` (the project's pin) runs from this interpreter: ``scripts/sim_conformance/alpaca_py_client.py``.
* ``alpaca-trade-api`` 3.2 (Alpaca's legacy official SDK) runs in an isolated venv this script
  makes with pip (default ``/tmp/ml4t-alpaca-trade-api``, reused when it already holds 3.2.0), so
  the project's own pins stay as they are: ``scripts/sim_conformance/alpaca_trade_api_client.py``.

Each client runs the same scenario against a fresh ``python -m ml4t_live sim alpaca --history 10``
(step mode) over recorded bars this script writes: AAPL and MSFT (MSFT = 4 x AAPL), 40 minutes on
2024-03-04 and 20 on 2024-03-05 from 09:30 New York; AAPL's mid rises 100 -> 112 (bars 0-24),
falls to 96 (bar 44) and rises again; open = mid, high/low = mid +/- 0.4, close = mid + 0.1. The
first 10 bars are history. Checks: history, every order type's life cycle (market, limit, stop,
stop_limit, trailing_stop, bracket, oco, oto, replace, cancel, cancel-all, close), both
websockets, latest / snapshot market data, malformed parameters, duplicate ids, rate-limit headers.

Reproducibility: the alpaca-py scenario runs twice more against fresh simulators started with
different ``PYTHONHASHSEED`` values; the fills (client order id, side, qty, price, time) must match.
Paced mode: a simulator at ``--speed 600`` fills a market order from a client that never
subscribed to anything (the clock runs from the simulator's start).

Exit code 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = Path(__file__).resolve().parent / "sim_conformance"
LEGACY = "alpaca-trade-api==3.2.0"
HISTORY, DAY1, DAY2 = 10, 40, 20
START_TIMEOUT = 60.0
CLIENT_TIMEOUT = 300.0


def write_bars(folder: Path) -> Path:
    """The recorded bars described in the module docstring, as CSV."""
    rows = ["timestamp,symbol,open,high,low,close,volume"]
    starts = [datetime(2024, 3, 4, 14, 30, tzinfo=UTC), datetime(2024, 3, 5, 14, 30, tzinfo=UTC)]
    stamps = [starts[0] + timedelta(minutes=i) for i in range(DAY1)]
    stamps += [starts[1] + timedelta(minutes=i) for i in range(DAY2)]
    for i, ts in enumerate(stamps):
        mid = 100 + i * 0.5 if i <= 24 else (112 - (i - 24) * 0.8 if i <= 44 else 96 + (i - 44) * 0.5)
        for symbol, scale in (("AAPL", 1), ("MSFT", 4)):
            m = round(mid * scale, 4)
            rows.append(f"{ts.isoformat()},{symbol},{m},{m + 0.4},{m - 0.4},{m + 0.1},{1000 + i}")
    path = folder / "bars.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def ensure_legacy_venv(venv: Path, python: str) -> Path:
    """A venv holding alpaca-trade-api 3.2.0 (made with pip unless it already has it)."""
    interpreter = venv / "bin" / "python"
    probe = [str(interpreter), "-c", "import alpaca_trade_api, sys; sys.exit(alpaca_trade_api.__version__ != '3.2.0')"]
    if interpreter.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return interpreter
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(interpreter), "-m", "pip", "install", "-q", LEGACY], check=True)
    return interpreter


class Simulator:
    """``python -m ml4t_live sim alpaca`` in a subprocess (keys from the environment)."""

    def __init__(self, bars: Path, extra: list[str], hash_seed: str = "0") -> None:
        self.env = {**os.environ, "APCA_API_KEY_ID": "PKCONFORMANCE0000001", "PYTHONHASHSEED": hash_seed,
                    "APCA_API_SECRET_KEY": "conformance-secret-conformance-secret-00", "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ml4t_live", "sim", "alpaca", "--data", str(bars), "--port", "0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env, cwd=bars.parent,
        )
        self.url = self._await_banner()

    def _await_banner(self) -> str:
        seen = b""
        deadline = time.monotonic() + START_TIMEOUT
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while (match := re.search(rb"listening on (http://127\.0\.0\.1:\d+)", seen)) is None:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise RuntimeError(f"the simulator did not start within {START_TIMEOUT}s: {seen.decode()}")
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise RuntimeError(f"the simulator exited: {seen.decode()}")
                seen += chunk
        return match.group(1).decode()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def run_client(python: str, script: Path, sim: Simulator, extra_env: dict[str, str] | None = None) -> dict:
    """Run one client script; its JSON lines -> {"checks": [...], "fills": [...], "stderr": ...}."""
    env = {**sim.env, "SIM_URL": sim.url, "APCA_API_BASE_URL": sim.url, "APCA_API_DATA_URL": sim.url, "SIM_HISTORY": str(HISTORY), "SIM_REPLAY": str(DAY1 + DAY2 - HISTORY),
           **(extra_env or {})}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([python, str(script)], capture_output=True, text=True, env=env, timeout=CLIENT_TIMEOUT,
                          check=False)
    checks, fills = [], None
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            item = json.loads(line)
            if "check" in item:
                checks.append(item)
            elif "fills" in item:
                fills = item["fills"]
    if done.returncode != 0 and not any(not c["ok"] for c in checks):
        checks.append({"check": "client ran to the end", "ok": False, "detail": done.stderr[-1500:]})
    return {"checks": checks, "fills": fills}


def scenario(label: str, python: str, script: Path, bars: Path, extra: list[str], seed: str = "0",
             env: dict[str, str] | None = None) -> dict:
    sim = Simulator(bars, extra, seed)
    try:
        started = time.monotonic()
        result = run_client(python, script, sim, env)
        result["seconds"] = round(time.monotonic() - started, 2)
    finally:
        sim.close()
    result["client"] = label
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", choices=("alpaca-py", "legacy", "all"), default="all")
    parser.add_argument("--venv", type=Path, default=Path("/tmp/ml4t-alpaca-trade-api"))
    parser.add_argument("--python", default=sys.executable, help="interpreter for the legacy venv")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    history = ["--history", str(HISTORY)]
    results = []
    with tempfile.TemporaryDirectory(prefix="ml4t-conformance-") as folder:
        bars = write_bars(Path(folder))
        if args.client in ("alpaca-py", "all"):
            script = CLIENTS / "alpaca_py_client.py"
            results.append(scenario("alpaca-py", sys.executable, script, bars, history))
            again = [scenario("alpaca-py", sys.executable, script, bars, history, seed) for seed in ("1", "2")]
            same = results[-1]["fills"] is not None and all(r["fills"] == results[-1]["fills"] for r in again)
            results.append({"client": "alpaca-py", "fills": None, "checks": [{
                "check": "reproducible: 3 runs (PYTHONHASHSEED 0, 1, 2) give the same fills", "ok": same,
                "detail": f"{len(results[-1]['fills'] or [])} fills"}]})
            paced = scenario("alpaca-py", sys.executable, script, bars, ["--speed", "600"], env={"SIM_PACED": "1"})
            results.append(paced)
        if args.client in ("legacy", "all"):
            python = str(ensure_legacy_venv(args.venv, args.python))
            results.append(scenario("alpaca-trade-api 3.2", python, CLIENTS / "alpaca_trade_api_client.py", bars, history))
    rows = [(r["client"], c) for r in results for c in r["checks"]]
    if args.json:
        print(json.dumps([{"client": client, **check} for client, check in rows], indent=1))
    else:
        for client, check in rows:
            mark = "ok  " if check["ok"] else "FAIL"
            print(f"{mark} {client:22} {check['check']}" + ("" if check["ok"] else f"  <- {check['detail']}"))
        passed = sum(c["ok"] for _, c in rows)
        print(f"{passed}/{len(rows)} checks passed")
    return 0 if rows and all(c["ok"] for _, c in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
