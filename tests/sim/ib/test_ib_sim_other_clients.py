"""IB clients the project does not pin, against the simulated gateway: ib_insync 0.9.86, IB's
official ibapi 10.46 (nautilus-ibapi) and 9.81, each from its own venv made by
``scripts/sim_conformance_ib.py`` (under /tmp/ml4t-sim-conformance). A client whose venv is not
there is skipped (run the script once to make them); ib_async, the project's pin, is covered at
every version by test_ib_sim_versions.py. Each run is the client's whole checklist
(scripts/sim_conformance/*.py): handshake, history, every order type, fills with commissions,
cancels, 201 / 321 / 200, the other requests' answers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ml4t_live.examples import demo_bars_path

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ROOT / "scripts" / "sim_conformance"
VENVS = Path("/tmp/ml4t-sim-conformance")
RUNS = [  # (venv, client script, extra args, server version the client offers at most)
    ("insync", "insync_style_client.py", ["--lib", "ib_insync"], 176),
    ("insync", "insync_style_client.py", ["--lib", "ib_insync"], 157),
    ("ibapi", "ibapi_client.py", [], 178),
    ("ibapi", "ibapi_client.py", [], 163),
    ("ibapi", "ibapi_client.py", [], 150),  # refused with a 503 the client reads
    ("ibapi981", "ibapi_client.py", [], 157),
]


@pytest.mark.parametrize(("venv", "script", "args", "version"), RUNS)
def test_other_ib_clients_pass_their_checklist(gateway_factory, venv, script, args, version):
    python = VENVS / venv / "bin" / "python"
    if not python.exists():
        pytest.skip(f"{python} is missing: run scripts/sim_conformance_ib.py --clients ... once")
    gw = gateway_factory(demo_bars_path(), history=2, commission="ib-fixed")
    cmd = [str(python), str(SCRIPTS / script), *args, "--port", str(gw.port),
           "--max-version", str(version), "--symbol", "AAPL"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=90, env={"PATH": "/usr/bin:/bin"})
    report = json.loads(out.stdout.strip().splitlines()[-1])
    failed = [c for c in report["checks"] if not c[1]]
    assert report["checks"] and not failed, f"{venv} v{version}: {failed}\n{out.stderr[-800:]}"
