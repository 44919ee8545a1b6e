"""``ml4t-live``: run ml4t.backtest strategies in shadow / paper / live mode from the command line.

Commands: ``run`` (a strategy on recorded bars or a venue feed), ``demo`` (the bundled example),
``replay`` (re-drive a strategy from a recorded session) and ``sim`` (a simulated venue).
Exit codes: 0 ok, 1 strategy error, 2 usage/config error, 3 venue/connection failure.

Layout: ``app`` (Typer app, shared options, exit codes), ``commands`` (run, demo, replay, sim,
reconcile), ``halt_resume`` (halt, resume), ``operator_commands`` (status, orders,
flatten, cancel-all), ``report_commands`` (report, parity),
``runner`` (options -> LiveEngine run), ``options`` (TOML / --param / strategy loading, pure),
``ui`` (log sinks, progress, summary), ``venues`` (the seam to the IB / Alpaca adapters).
"""

from __future__ import annotations

from . import commands as _commands  # noqa: F401  (registers the commands on the app)
from . import halt_resume as _halt_resume  # noqa: F401  (halt, resume)
from . import operator_commands as _operator_commands  # noqa: F401  (status, orders, flatten, cancel-all)
from . import report_commands as _report_commands  # noqa: F401  (report, parity)
from .app import EXIT_CODES_HELP, EXIT_CONFIG, EXIT_OK, EXIT_STRATEGY, EXIT_VENUE, app

__all__ = ["EXIT_CODES_HELP", "EXIT_CONFIG", "EXIT_OK", "EXIT_STRATEGY", "EXIT_VENUE", "app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``ml4t-live``); ``python -m ml4t_live`` calls it too."""
    app(args=argv, prog_name="ml4t-live")
