"""The Typer application, the options every command shares, and errors -> exit codes."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

import typer
from loguru import logger

from ml4t_live.errors import (
    BridgeError,
    ConfigError,
    Ml4tLiveError,
    StrategyError,
    VenueError,
)

_log = logger.bind(component="cli")

EXIT_OK, EXIT_STRATEGY, EXIT_CONFIG, EXIT_VENUE = 0, 1, 2, 3
EXIT_CODES_HELP = (
    "Exit codes: 0 ok (also after an orderly stop: Ctrl-C, SIGTERM, --stop-at, --max-bars) · 1 the strategy raised "
    "(or an unexpected internal error, logged with its traceback) · 2 usage or configuration "
    "error · 3 venue / connection failure (feed stalled, broker unreachable, reconciliation)."
)

app = typer.Typer(
    name="ml4t-live",
    help="Run ml4t.backtest Strategy classes unchanged in shadow, paper and live trading.\n\n"
    "Shadow mode (simulated fills on real or recorded bars) is the default; live trading is "
    "never a default. Every option can also come from a TOML file (--config); flags win.\n\n"
    "\b\nExamples:\n"
    "  ml4t-live demo\n"
    "  ml4t-live run strategy.py:MyStrategy --data bars.parquet -p fast=5 --preset realistic\n"
    "  ml4t-live run --config session.toml\n"
    "  ml4t-live replay sessions/MyStrategy-20240304T143000Z\n"
    "  ml4t-live COMMAND --help",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# -- shared options ------------------------------------------------------------------------
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level on stderr.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress; only warnings and the summary.")]
ConfigFile = Annotated[Path | None, typer.Option("--config", "-c", help="TOML file holding any of these options ([params], [backtest], [venue] tables too); flags given here win.", dir_okay=False)]  # noqa: E501
Params = Annotated[list[str] | None, typer.Option("--param", "-p", help="Strategy constructor argument name=value (repeatable); the value is read as a TOML literal (5, 0.5, true, [1,2]) or else as text.")]  # noqa: E501
Speed = Annotated[float | None, typer.Option(help="Replay at N times real time (default: as fast as possible).", min=0.0)]
InitialCash = Annotated[float | None, typer.Option(help="Starting cash (default: the preset's, 100,000).")]
Preset = Annotated[str | None, typer.Option(help="ml4t.backtest config preset: default, realistic, backtrader, zipline, lean, vectorbt, ibkr_us_stocks_fixed ...")]  # noqa: E501
SessionDir = Annotated[Path | None, typer.Option(help="Folder under which the session folder <Strategy>-<UTC start>/ is written (default ./sessions).", file_okay=False)]  # noqa: E501
NoSession = Annotated[bool | None, typer.Option("--no-session", help="Write no session files.", show_default=False)]
ErrorPolicy = Annotated[str | None, typer.Option(help="When the strategy raises in on_data: 'raise' stops the run (default for shadow/replay), 'log' logs the traceback and continues.")]  # noqa: E501
SettleTimeout = Annotated[float | None, typer.Option(help="Seconds the fill barrier waits for in-flight orders before each bar [default: 5].")]
HeartbeatTimeout = Annotated[float | None, typer.Option(help="Seconds without a bar or heartbeat before the feed counts as stalled (exit 3) [default: 120].")]  # noqa: E501

StopAt = Annotated[str | None, typer.Option(help="Stop the run at HH:MM (this machine's local time, today) or at an ISO datetime with offset; an orderly stop, exit 0.")]  # noqa: E501
MaxBars = Annotated[int | None, typer.Option(help="Stop after this many bars (an orderly stop, exit 0).")]

RUN_KEYS = (
    "strategy", "data", "signals", "context", "speed", "initial_cash", "preset", "session_dir",
    "no_session", "error_policy", "settle_timeout", "heartbeat_timeout", "broker", "feed",
    "host", "port", "symbols", "bar_size", "live", "confirm_live", "quiet", "verbose",
    "stop_at", "max_bars",
)  # fmt: skip


def _guard(command: Any) -> Any:
    """Translate the project's errors into exit codes (and one clear message on stderr)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except ConfigError as exc:  # LiveTradingRefused included
            _fail(EXIT_CONFIG, "configuration error", exc)
        except StrategyError as exc:
            _fail(EXIT_STRATEGY, "strategy error", exc, traceback=True)
        except (VenueError, BridgeError) as exc:
            _fail(EXIT_VENUE, "venue error", exc)
        except Ml4tLiveError as exc:
            _fail(EXIT_VENUE, "error", exc)
        except KeyboardInterrupt:
            _log.warning("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            _fail(EXIT_STRATEGY, "unexpected internal error", exc, traceback=True)

    return wrapper


def _fail(code: int, what: str, exc: BaseException, *, traceback: bool = False) -> None:
    """One ERROR line on stderr (and in the session log); strategy errors carry the traceback."""
    if traceback:
        _log.opt(exception=exc.__cause__ or exc).error("{}: {}", what, exc)
    else:
        _log.error("{}: {}", what, exc)
    raise typer.Exit(code) from None
