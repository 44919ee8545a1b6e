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
#: ``run --calendar``: the exchange has no session left today (closed day, or after the close);
#: nothing was started. Not a failure: a scheduler treats it as success (systemd SuccessExitStatus=4)
EXIT_NO_SESSION = 4
EXIT_CODES_HELP = (
    "Exit codes: 0 ok (also after an orderly stop: Ctrl-C, SIGTERM, --stop-at, --max-bars, the "
    "--calendar session's end) · 4 --calendar: no session today (closed day, or after the close; "
    "nothing started) · "
    "1 the strategy raised (or an unexpected internal error, logged with its traceback) · "
    "2 usage or configuration "
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

def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"ml4t-live {version('ml4t-live')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:  # fmt: skip
    """Run ml4t.backtest Strategy classes unchanged in shadow, paper and live trading."""


# -- shared options ------------------------------------------------------------------------
def _preset_names() -> list[str]:
    """Every preset name ml4t.backtest accepts (its error message's list, aliases included)."""
    from ml4t.backtest import profiles

    return sorted(getattr(profiles, "_PROFILES", None) or profiles.list_profiles())


HELP = {
    "verbose": "Log at DEBUG level on stderr.",
    "quiet": "No progress; only warnings and the summary.",
    "config": "TOML file holding any of these options ([params], [backtest], [venue] tables "
    "too); flags given here win.",
    "param": "Strategy constructor argument name=value (repeatable); the value is read as a "
    "TOML literal (5, 0.5, true, [1,2]) or else as text.",
    "speed": "Replay at N times real time (default: as fast as the strategy takes the bars; "
    "demo --venue ib|alpaca: step mode, see ml4t-live sim --help).",
    "sim_speed": "Serve the bars at N times real time (default: step mode: the next bar as soon "
    "as the connected client has caught up with the last one, so a day replays in seconds and "
    "fills match the backtest).",
    "initial_cash": "Starting cash (default: the preset's, 100,000).",
    "preset": "ml4t.backtest config preset (commission, slippage, fill timing): "
    + ", ".join(_preset_names()) + " [default: default].",
    "session_dir": "Folder under which the session folder <Strategy>-<UTC start>/ is written "
    "(default ./sessions).",
    "no_session": "Write no session files.",
    "error_policy": "When the strategy raises in on_data: 'raise' stops the run, exit 1 (the "
    "default in shadow mode and replay); 'log' logs each error as one short block (the first "
    "one in full in session.log), counts it in the summary and continues with the next bar (the "
    "default against a venue, paper or live: an account is not abandoned mid-session).",
    "settle_timeout": "Seconds the fill barrier waits for in-flight orders before each bar "
    "[default: 5].",
    "retain": "Keep only the last N fills (and no finished orders) in memory; everything still "
    "goes to the session files. For long live sessions [default: keep everything].",
    "heartbeat_timeout": "Seconds without a bar or heartbeat before the feed counts as stalled "
    "(exit 3) [default: 120].",
    "stop_at": "Stop the run at HH:MM (this machine's local time, today) or at an ISO datetime "
    "with offset; an orderly stop, exit 0.",
    "max_bars": "Stop after this many bars (an orderly stop, exit 0).",
    "on_bad_bars": "Recorded bars with a missing, NaN, zero or negative price, or a repeated "
    "(timestamp, asset): refuse (default: exit 2 naming the first bad row) or drop (dropped, "
    "counted in the summary). A file with no bars is always refused.",
    "strategy_id": "The strategy's id on the venue: part of every client order id, and names its "
    "journal (one per venue, account and id). Default: <Class>_<hash of its parameters>.",
    "state_dir": "Where journals live [default: $ML4T_LIVE_STATE_DIR, else "
    "$XDG_STATE_HOME/ml4t-live, else ~/.local/state/ml4t-live].",
}

Verbose = Annotated[bool, typer.Option("--verbose", "-v", help=HELP["verbose"])]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help=HELP["quiet"])]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", "-c", help=HELP["config"], dir_okay=False)
]
Params = Annotated[list[str] | None, typer.Option("--param", "-p", help=HELP["param"], metavar="NAME=VALUE")]
Speed = Annotated[float | None, typer.Option(help=HELP["speed"], min=0.0)]
SimSpeed = Annotated[float | None, typer.Option("--speed", help=HELP["sim_speed"], min=0.0)]
InitialCash = Annotated[float | None, typer.Option(help=HELP["initial_cash"])]
Preset = Annotated[str | None, typer.Option(help=HELP["preset"])]
SessionDir = Annotated[Path | None, typer.Option(help=HELP["session_dir"], file_okay=False)]
NoSession = Annotated[
    bool | None, typer.Option("--no-session", help=HELP["no_session"], show_default=False)
]
ErrorPolicy = Annotated[str | None, typer.Option(help=HELP["error_policy"])]
SettleTimeout = Annotated[float | None, typer.Option(help=HELP["settle_timeout"])]
HeartbeatTimeout = Annotated[float | None, typer.Option(help=HELP["heartbeat_timeout"])]
Retain = Annotated[int | None, typer.Option(help=HELP["retain"], min=0)]
StopAt = Annotated[str | None, typer.Option(help=HELP["stop_at"])]
MaxBars = Annotated[int | None, typer.Option(help=HELP["max_bars"])]
OnBadBars = Annotated[str | None, typer.Option(help=HELP["on_bad_bars"])]
StrategyId = Annotated[str | None, typer.Option(help=HELP["strategy_id"])]
StateDir = Annotated[Path | None, typer.Option(help=HELP["state_dir"], file_okay=False)]

RUN_KEYS = (
    "strategy", "data", "signals", "context", "speed", "initial_cash", "preset", "session_dir",
    "no_session", "error_policy", "settle_timeout", "heartbeat_timeout", "broker", "feed",
    "host", "port", "symbols", "bar_size", "live", "confirm_live", "quiet", "verbose",
    "stop_at", "max_bars", "retain", "strategy_id", "state_dir", "open_orders_at_end",
    "on_divergence", "catch_up", "external", "adopt_positions", "report", "on_bad_bars",
    "calendar", "as_of", "end_of_day", "connect_before", "close_offset", "max_clock_skew",
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
            _strategy_failed(exc)
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


def _strategy_failed(exc: StrategyError) -> None:
    """One block: the message, the strategy's own frames (the rest collapsed). The engine logged
    the whole traceback at DEBUG (session.log)."""
    from ml4t_live.strategy_errors import strategy_block

    cause = exc.__cause__ or exc
    block = strategy_block(cause, exc.strategy_file)
    _log.error("strategy error: {}{}", exc, f"\n{block}" if block else "")
    raise typer.Exit(EXIT_STRATEGY) from None


def _fail(code: int, what: str, exc: BaseException, *, traceback: bool = False) -> None:
    """One ERROR line on stderr (and in the session log); strategy errors carry the traceback."""
    if traceback:
        _log.opt(exception=exc.__cause__ or exc).error("{}: {}", what, exc)
    else:
        _log.error("{}: {}", what, exc)
    raise typer.Exit(code) from None
