"""Conformance of `ml4t-live sim ib` with IB clients the project does not pin, each in its own venv.

Creates (once) isolated venvs under --venvs (default /tmp/ml4t-sim-conformance) with pip:
``insync`` (ib_insync 0.9.86, offers server versions 157..176), ``ibapi`` (nautilus-ibapi
10.46.1, IB's official client, offers 100..225) and ``ibapi981`` (IB's ibapi 9.81, offers
100..157); ib_async runs from the project's own venv.
For each client and each server version it offers within 157..178, it starts
``ml4t-live sim ib --port 0 --history 2 --commission ib-fixed`` (step mode, bundled demo bars),
runs the client script with that version as the client's maximum, and prints one line per
run plus every failed check. The ibapi clients also offer 100..150, which must be refused with
an error 503 they read. Exit code 0 only when every check of every run passed.

    .venv/bin/python scripts/sim_conformance_ib.py                       # all clients, all versions
    .venv/bin/python scripts/sim_conformance_ib.py --clients ibapi --versions 157,166,178

The project's pins are untouched: the extra clients live only in the venvs made here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLIENTS = {  # name -> (venv dir or None for this interpreter, pip spec, versions, script, args)
    "ib_async": (None, None, range(157, 179), "insync_style_client.py", ["--lib", "ib_async"]),
    "ib_insync": ("insync", "ib_insync==0.9.86", range(157, 177), "insync_style_client.py",
                  ["--lib", "ib_insync"]),
    "ibapi": ("ibapi", "nautilus-ibapi==10.46.1 protobuf", range(157, 179), "ibapi_client.py", []),
    "ibapi981": ("ibapi981", "ibapi==9.81.1.post1", range(157, 158), "ibapi_client.py", []),
}  # fmt: skip
_LISTENING = re.compile(r"listening on [\d.]+:(\d+) .*symbols ([A-Z,]+)")


def ensure_venv(root: Path, name: str, spec: str) -> Path:
    venv = root / name
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # nautilus-ibapi imports google.protobuf without declaring it
        subprocess.run([str(python), "-m", "pip", "install", "-q", *spec.split()], check=True)
    return python


def start_sim() -> tuple[subprocess.Popen[str], int, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", "import sys; from ml4t_live.cli import main; sys.exit(main())",
           "sim", "ib", "--port", "0", "--history", "2",
           "--commission", "ib-fixed"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the announce line: where it listens, which symbols
    m = _LISTENING.search(line)
    if m is None:
        proc.terminate()
        proc.wait(10)
        raise RuntimeError(f"the simulator did not announce its port: {line!r}")
    return proc, int(m.group(1)), m.group(2).split(",")[0]


def run_one(python: str, script: str, args: list[str], version: int) -> dict:
    sim, port, symbol = start_sim()
    try:
        cmd = [python, str(HERE / "sim_conformance" / script), *args, "--port", str(port),
               "--max-version", str(version), "--symbol", symbol]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        try:
            return json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            return {"checks": [["client ran", False, (out.stderr or out.stdout)[-400:]]]}
    finally:
        sim.terminate()
        sim.wait(10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--venvs", type=Path, default=Path("/tmp/ml4t-sim-conformance"))
    p.add_argument("--clients", default=",".join(CLIENTS))
    p.add_argument("--versions", default="", help="comma-separated; default: every one offered")
    a = p.parse_args()
    wanted = {int(v) for v in a.versions.split(",") if v}
    failed = 0
    for name in a.clients.split(","):
        venv, spec, versions, script, args = CLIENTS[name]
        python = sys.executable if venv is None else str(ensure_venv(a.venvs, venv, spec))
        refusal = [150] if script == "ibapi_client.py" else []  # a range below 157: refused
        for version in [v for v in [*refusal, *versions] if not wanted or v in wanted]:
            started = time.perf_counter()
            report = run_one(python, script, args, version)
            bad = [c for c in report["checks"] if not c[1]]
            failed += bool(bad)
            print(f"{name:10s} v{version}  {len(report['checks']) - len(bad):2d}/"
                  f"{len(report['checks']):2d} checks  {time.perf_counter() - started:4.1f}s")  # fmt: skip
            for check in bad:
                print(f"    FAILED {check[0]}: {check[2]}")
    print("all passed" if not failed else f"{failed} run(s) with failures")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
