"""One scenario, end to end: start its simulator, run ``ml4t-live run`` (a subprocess, as an
operator would; ``ML4T_LIVE_FAILPOINT`` to kill it at a point), restart it, then score it.

A :class:`Scenario` is a row of the table: the venue, the strategy's plan, the faults armed
before / between the runs, and its :class:`Run` steps. ``script`` replaces the default "run the
steps in order" for scenarios that need two processes at once.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from .score import Check, RunRecord, read_journal, read_view, score
from .world import ALPACA_START, IB_START, AlpacaWorld, IBWorld, World, make_bars

STRATEGY_ID = "fs"
HERE = Path(__file__).parent


@dataclass
class Run:
    max_bars: int
    failpoint: str | None = None
    expect: tuple[int, ...] = (0,)
    budget: float = 45.0
    extra: tuple[str, ...] = ()
    before: Callable[[World], None] | None = None  # faults / foreign trades before this run
    label: str = ""


@dataclass
class Scenario:
    name: str
    venue: str  # "ib" | "alpaca"
    ref: str  # catalogue id(s)
    what: str
    plan: str
    runs: list[Run]
    bars: int = 12
    days: int = 1
    faults: list[dict[str, Any]] = field(default_factory=list)  # armed when the simulator starts
    speed: float | None = None
    expect_reason: str | None = None
    fast: bool = False
    script: Callable[[Context], None] | None = None
    expect_fired: tuple[str, ...] = ()  # fault kinds the simulator must log as fired (else ERROR)
    config: str = ""  # TOML passed with --config (e.g. a [venue] table)
    warmup: int = 0  # IB: bars the simulator serves as history only
    participation: float | None = None  # orders fill in parts over bars: this share of a bar's volume a bar


@dataclass
class Result:
    scenario: Scenario
    checks: dict[str, Check]
    seconds: float
    runs: list[RunRecord]
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and all(c.ok for c in self.checks.values())


class Context:
    """What a scenario's runs share: the simulator, the folder, the command."""

    def __init__(self, scenario: Scenario, world: World, folder: Path) -> None:
        self.scenario, self.world, self.folder = scenario, world, folder
        self.state = folder / "state"
        self.view = folder / "strategy_view.json"
        self.records: list[RunRecord] = []

    def command(self, run: Run) -> list[str]:
        return [sys.executable, "-m", "ml4t_live", "run", f"{self.folder / 'scripted_strategy.py'}:Scripted",
                *self.world.cli_args(), "--symbols", "AAPL,MSFT", "--max-bars", str(run.max_bars),
                "--no-session", "--strategy-id", STRATEGY_ID, "--state-dir", str(self.state),
                "-p", f"plan={self.scenario.plan}", "-p", f"view={self.view}", "-q", *self._config(), *run.extra]  # fmt: skip

    def _config(self) -> list[str]:
        if not self.scenario.config:
            return []
        path = self.folder / "scenario.toml"
        path.write_text(self.scenario.config)
        return ["--config", str(path)]

    def env(self, run: Run) -> dict[str, str]:
        env = self.world.env()
        env.pop("ML4T_LIVE_FAILPOINT", None)
        env["PYTHONFAULTHANDLER"] = "1"
        if run.failpoint:
            env["ML4T_LIVE_FAILPOINT"] = run.failpoint
        return env

    def start(self, run: Run) -> tuple[subprocess.Popen, float]:
        if self.records and self.scenario.speed is None:
            self.world.advance()  # the previous process is gone: wall time moves the venue on
        if run.before is not None:
            run.before(self.world)
        proc = subprocess.Popen(self.command(run), cwd=self.folder, env=self.env(run), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        return proc, time.monotonic()

    def finish(self, run: Run, proc: subprocess.Popen, started: float) -> RunRecord:
        try:
            out, _ = proc.communicate(timeout=run.budget + 15)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:  # over budget: SIGABRT makes faulthandler print every stack
            proc.send_signal(signal.SIGABRT)
            try:
                out, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate(timeout=15)
            code = None
        label = run.label or (f"run{len(self.records) + 1}" + (f"[{run.failpoint}]" if run.failpoint else ""))
        record = RunRecord(label, code, time.monotonic() - started, out or "", run.expect, run.budget)
        (self.folder / f"output-{len(self.records) + 1}.txt").write_text(out or "")
        self.records.append(record)
        return record

    def run(self, run: Run) -> RunRecord:
        return self.finish(run, *self.start(run))


def _world(s: Scenario, folder: Path) -> World:
    if s.venue == "ib":
        path = folder / "bars.parquet"
        make_bars(IB_START, s.bars, s.days).write_parquet(path)
        return IBWorld(path, speed=s.speed, faults=s.faults or None, warmup=s.warmup, participation=s.participation)
    return AlpacaWorld(make_bars(ALPACA_START, s.bars, s.days), speed=s.speed, faults=s.faults or None,
                       participation=s.participation)  # fmt: skip


def _fault_log(record: dict) -> bool:
    """The simulators' "fault <kind> ..." / "fault injected: <kind> ..." lines (this process)."""
    return str(record["extra"].get("component", "")).startswith("sim") and record["message"].startswith("fault")


def _fired(message: str) -> list[str]:
    """Kinds a simulator log line says were fired (``used:<kind>``: an Alpaca submit / look-up
    fault an actual request consumed)."""
    if m := re.match(r"fault: answering POST /v2/orders with (\w+)", message):
        return [f"used:{m.group(1)}"]
    if message.startswith("fault: answering a lookup"):
        return ["used:lookup_error"]
    m = re.match(r"fault (?:injected: )?(\w+)", message)
    return [m.group(1)] if m else []


def execute(s: Scenario, keep: Path | None = None) -> Result:
    folder = Path(tempfile.mkdtemp(prefix=f"fault-{s.name}-"))
    shutil.copy(HERE / "scripted_strategy.py", folder / "scripted_strategy.py")
    started = time.monotonic()
    world: World | None = None
    ctx: Context | None = None
    fired: list[str] = []
    sink = logger.add(lambda m: fired.extend(_fired(m.record["message"])), level="INFO", filter=_fault_log,
                      format="{message}")  # fmt: skip
    try:
        world = _world(s, folder)
        ctx = Context(s, world, folder)
        if s.script is not None:
            s.script(ctx)
        else:
            for run in s.runs:
                ctx.run(run)
        missing = sorted(set(s.expect_fired) - set(fired))
        if missing:
            raise RuntimeError(f"armed fault(s) {missing} never fired (fired: {sorted(set(fired))})")
        checks = score(read_journal(ctx.state), world.view(), read_view(ctx.view), ctx.records,
                       STRATEGY_ID, s.expect_reason)  # fmt: skip
        return Result(s, checks, time.monotonic() - started, ctx.records)
    except Exception as exc:  # noqa: BLE001 - a scenario that cannot run is an ERROR on the board, with its cause
        return Result(s, {}, time.monotonic() - started, ctx.records if ctx else [], f"{type(exc).__name__}: {exc}")
    finally:
        logger.remove(sink)
        if world is not None:
            world.close()
        if keep is not None:
            shutil.copytree(folder, keep / s.name, dirs_exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
