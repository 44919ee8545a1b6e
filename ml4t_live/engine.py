"""LiveEngine: a blocking run loop that mirrors ``ml4t.backtest.Engine`` step for step.

``run()`` blocks on the caller's thread (the engine thread) and returns a :class:`LiveResult`.
The strategy's hooks are called positionally on this thread only::

    validate strategy  (the backtest's own up-front checks)
    broker.connect(config); feed.start()
    on_start(broker); on_prepare(broker, config)
    warm restart (venue brokers with a journal): the journaled bars through on_data, orders
        answered from the journal, never sent; then the outcomes the venue reports
    for each BarClosed from the feed (bars the replay covered are skipped):
        broker.open_bar(bar)              journaled; a catch-up bar's orders will not leave
        broker.settle(settle_timeout)     fill barrier: orders from the last bar are reconciled
        broker.begin_bar(bar)             prices -> pending exits -> position rules -> (shadow) fills
        on_data(timestamp, data, context, broker)
        broker.end_bar(bar)               MOC at the close, water marks
        equity recorded; progress reported
    broker.settle_last_bar()              orderly end: the last bar's orders settled
    on_end(broker)                        also when the run fails, then the error re-raises
    broker.finish_orders(policy)          what on_end sent settled; what is left cancelled

``stop()`` may be called from any thread; Ctrl-C in the main thread is an orderly stop.
"""

from __future__ import annotations

import gc
import signal
import threading
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from loguru import logger
from ml4t.backtest import BacktestConfig, Engine, Strategy
from ml4t.specs import LifecyclePhase

from .broker_steps import END_POLICIES
from .errors import ConfigError, SendFailed, StrategyError
from .events import BarClosed
from .failpoints import failpoint
from .feed_reading import late_as_catch_up, read_bars
from .journal import check_strategy_id, default_strategy_id
from .logs import log_failure
from .results import LiveResult, MetricsTracker, RecordKeeper
from .strategy_errors import PassedOver

_log = logger.bind(component="engine")

ErrorPolicy = Literal["raise", "log"]


@dataclass(frozen=True, slots=True)
class Progress:
    """Reported to the ``progress`` callback after every bar."""

    bars_done: int
    bars_total: int | None
    timestamp: Any
    equity: float
    orders: int
    fills: int


class LiveEngine:
    """Run an unchanged ``ml4t.backtest.Strategy`` against a live (or replayed) feed and a broker."""

    def __init__(
        self,
        strategy: Strategy,
        broker: Any,
        feed: Any,
        *,
        config: BacktestConfig | None = None,
        settle_timeout: float = 5.0,
        error_policy: ErrorPolicy | None = None,
        heartbeat_timeout: float = 120.0,
        session_dir: str | Path | None | Literal[False] = None,
        progress: Any = None,
        record_bars: bool = True,
        retain: int | None = None,
        strategy_id: str | None = None,
        open_orders_at_end: str = "cancel",
        on_strategy_error: Any = None,
    ) -> None:
        Engine._validate_strategy_lifecycle(strategy)
        if error_policy not in (None, "raise", "log"):
            raise ConfigError(f"error_policy must be 'raise' or 'log' (got {error_policy!r})")
        if settle_timeout < 0 or heartbeat_timeout <= 0:
            raise ConfigError("settle_timeout must be >= 0 and heartbeat_timeout > 0 seconds")
        if retain is not None and retain < 0:
            raise ConfigError("retain must be None (keep everything) or a count >= 0")
        if open_orders_at_end not in END_POLICIES:
            raise ConfigError(f"open_orders_at_end must be one of {', '.join(END_POLICIES)} "
                              f"(got {open_orders_at_end!r})")  # fmt: skip
        if open_orders_at_end == "flatten" and not hasattr(broker, "finish_orders"):
            raise ConfigError("open_orders_at_end='flatten' needs a venue broker (ib or alpaca); "
                              "shadow mode has no orders at a venue to flatten")  # fmt: skip
        self.strategy = strategy
        self.broker = broker
        self.feed = feed
        base = config if config is not None else getattr(broker, "config", None)
        self.config = deepcopy(base or BacktestConfig()).merge_feed_spec(
            getattr(feed, "feed_spec", None)
        )
        if self.config.enforce_sessions:
            raise ConfigError(
                "enforce_sessions=True is not supported by LiveEngine yet: filter the bars to "
                "trading sessions before replaying, or set enforce_sessions=False"
            )
        self.settle_timeout = settle_timeout
        self.error_policy: ErrorPolicy = error_policy or (
            "raise" if getattr(broker, "mode", "shadow") == "shadow" else "log"
        )
        self.heartbeat_timeout = heartbeat_timeout
        self.session_dir = session_dir
        self.progress = progress
        self.record_bars = record_bars
        self.retain = retain
        self.open_orders_at_end = open_orders_at_end
        self.on_strategy_error = on_strategy_error  # told each error the 'log' policy passes over
        if hasattr(broker, "use_feed"):  # a shadow journal is named after its feed
            broker.use_feed(feed)
        if hasattr(broker, "strategy_id"):
            if strategy_id is not None:
                broker.strategy_id = check_strategy_id(strategy_id)
            elif broker.strategy_id is None:
                broker.strategy_id = default_strategy_id(strategy)
        self._stop = threading.Event()
        self._stop_reason = "end of data"
        self._has_run = False
        self._ended = False
        self._errors = PassedOver(strategy)
        self._replaying = False  # a warm restart re-lives journaled bars: their errors were counted and told
        self._outcome = getattr(broker, "strategy_outcome", None)

    # ------------------------------------------------------------------ control
    def stop(self, reason: str = "stop requested") -> None:
        """Ask the run to finish after the current bar (thread-safe; idempotent)."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    # ------------------------------------------------------------------ run
    def run(self) -> LiveResult:
        if self._has_run:
            raise RuntimeError("LiveEngine is single-use: create a new engine for another run")
        self._has_run = True
        started = datetime.now(UTC)
        records = RecordKeeper.open(
            self.session_dir, type(self.strategy).__name__, started, self.retain
        )
        if self.retain is not None:
            _log.info(
                "keeping the last {} fills in memory; finished orders and older fills go to "
                "the session files only",
                self.retain,
            )
        restore_sigint = self._install_sigint()
        restore_gc = _fewer_collections()
        metrics = self._metrics = MetricsTracker(self.config.initial_cash)
        metrics.bad_bars_dropped = getattr(self.feed, "bad_rows_dropped", 0)
        bars = 0
        started_hooks = False
        try:
            self.broker.connect(self.config)
            self._journal_session("session_opened", records.writer.dir if records.writer else None)
            starting = getattr(self.broker, "starting_equity", None)
            if starting is not None:
                metrics.start_from(starting)
            self.feed.start()
            records.follow_feed(self.feed, self.record_bars)
            sb = self.broker.strategy_broker
            begin_replay = getattr(self.broker, "begin_warm_restart", None)
            restarting = bool(begin_replay and begin_replay())
            started_hooks = True
            self._call(LifecyclePhase.RUN_START, self.strategy.on_start, sb, fatal=True)
            self._call(
                LifecyclePhase.CAUSAL_INITIALIZATION,
                self.strategy.on_prepare,
                sb,
                self.config,
                fatal=True,
            )
            replayed_to = self._warm_restart(sb) if restarting else None
            if restarting:
                metrics.start_from(self.broker.mark(replayed_to, 0))
                records.restarted(self.broker)
            for bar in self._bars(records.idle):
                if replayed_to is not None and _not_after(bar.timestamp, replayed_to):
                    _log.debug("bar {} was replayed from the journal: skipped", bar.timestamp)
                    continue
                self._step(late_as_catch_up(self.feed, bar), sb)
                failpoint("after_bar")
                equity = self.broker.mark(bar.timestamp, bars)
                bars += 1
                metrics.observe(bar.timestamp, equity)
                metrics.strategy_errors = self._errors.count
                records.after_bar(self.broker, bar, equity, self.record_bars)
                if self.progress is not None:
                    self.progress(
                        Progress(
                            bars,
                            getattr(self.feed, "bars_total", None),
                            bar.timestamp,
                            equity,
                            records.orders_seen,
                            records.fills_seen,
                        )
                    )
            settle_last = getattr(self.broker, "settle_last_bar", None)
            if settle_last is not None:
                settle_last(self.settle_timeout)
            self._ended = True
            self._call(LifecyclePhase.RUN_END, self.strategy.on_end, sb, fatal=True)
            finish = getattr(self.broker, "finish_orders", None)
            if finish is not None:
                finish(self.open_orders_at_end, self.settle_timeout)
            self.strategy._validate_completed_run()
            self.broker.validate_completed_run(bars)
            self._journal_session("session_closed", self._replayed_file)
        except BaseException as exc:
            if started_hooks:
                self._end_after_failure(exc)
            records.fail(exc, self.broker, metrics, bars)
            self._journal_session("session_closed", self._replayed_file)
            raise
        finally:
            restore_sigint()
            restore_gc()
            self._close_venues()
        result = records.finish(self.broker, metrics, bars, self._stop_reason, started)
        _log.info(
            "run finished after {} bars ({}): {} orders, {} fills, final equity {:,.2f}",
            bars,
            self._stop_reason,
            result.metrics["num_orders"],
            result.metrics["num_fills"],
            result.metrics["final_value"],
        )
        return result

    @property
    def _replayed_file(self) -> bool:
        """A recorded source (a replay) whose run ended in any way the engine saw: a shadow
        journal's next run starts afresh (only a process that died restarts warm)."""
        return hasattr(self.feed, "source_id")

    def _journal_session(self, hook: str, *args: Any) -> None:
        """Tell a journaled broker which session folder this run writes (and when it is
        complete): a killed run's folder is completed from the journal by the next run."""
        call = getattr(self.broker, hook, None)
        if call is not None:
            call(*args)

    def _warm_restart(self, sb: Any) -> Any:
        """Replay the journal through the strategy (orders answered from the journal, never
        sent); returns the last replayed bar's timestamp."""
        last = None
        self._replaying = True
        try:
            for n, bar in self.broker.replay_bars():
                self.broker.open_bar(bar, n)
                self._on_bar(bar, sb)
                last = bar.timestamp
        finally:
            self._replaying = False
        self.broker.end_warm_restart()
        return last

    def _step(self, bar: BarClosed, sb: Any) -> None:
        open_bar = getattr(self.broker, "open_bar", None)
        if open_bar is not None:
            open_bar(bar)
        unsettled = self.broker.settle(self.settle_timeout)
        if unsettled:
            _log.warning(
                "fill barrier: {} order(s) still in flight after {:.1f}s before bar {}; "
                "the strategy sees them as pending",
                unsettled,
                self.settle_timeout,
                bar.timestamp,
            )
        self._on_bar(bar, sb)

    def _on_bar(self, bar: BarClosed, sb: Any) -> None:
        self.broker.begin_bar(bar)
        ok = self._call(
            LifecyclePhase.MARKET_EVENT,
            self.strategy.on_data,
            bar.timestamp,
            bar.data,
            bar.context,
            sb,
            timestamp=bar.timestamp,
        )
        if self._outcome is not None:
            self._outcome(ok)  # the rails: a run of strategy errors halts its trading
        self.broker.end_bar(bar)

    def _bars(self, idle: Any):
        """Bars from the feed (:func:`~ml4t_live.feed_reading.read_bars`) until it ends, the run is
        stopped, or the feed stalls; the feed's end gives the stop reason."""
        reason = yield from read_bars(self.feed, self.heartbeat_timeout, self._stop, idle)
        if reason is not None:
            self._stop_reason = reason

    def _call(self, phase: LifecyclePhase, hook: Any, *args: Any, fatal: bool = False,
              timestamp: Any = None) -> bool:  # fmt: skip
        """Call a strategy hook; False when it raised and the error policy let the run go on."""
        try:
            self.broker.invoke(phase, hook, *args)
        except Exception as exc:
            name = getattr(hook, "__name__", str(hook))
            where = f" at {timestamp}" if timestamp is not None else ""
            if (fatal or self.error_policy == "raise") and not (self._replaying and isinstance(exc, SendFailed)):
                self._errors.log_fatal(exc, name)
                raise StrategyError(
                    f"{type(self.strategy).__name__}.{name} raised {type(exc).__name__}{where}: {exc}",
                    hook=name,
                    timestamp=timestamp,
                    strategy_file=self._errors.strategy_file,
                ) from exc
            if self._replaying:  # the first run logged, counted and told it (an alert once, not at every restart)
                _log.info("replayed bar{}: {}.{} raised {} again, as in the run that journaled it", where,
                          type(self.strategy).__name__, name, type(exc).__name__)  # fmt: skip
                return False
            self._errors.log(exc, name, where)
            if self.on_strategy_error is not None:
                self.on_strategy_error(f"{type(self.strategy).__name__}.{name} raised {type(exc).__name__}{where}: {exc}")
            return False
        return True

    def _end_after_failure(self, exc: BaseException) -> None:
        """``on_end`` also runs when the run fails; its own failure is logged, not raised."""
        # a strategy error is reported once, by whoever catches it (the CLI prints one block)
        report = _log.debug if isinstance(exc, StrategyError) else _log.error
        report("run failed: {}: {}", type(exc).__name__, exc)
        if self._ended:
            return
        self._ended = True
        try:
            self.broker.invoke(LifecyclePhase.RUN_END, self.strategy.on_end, self.broker.strategy_broker)
        except Exception as end_exc:
            log_failure(_log, end_exc, "on_end raised while handling the failure")

    def _close_venues(self) -> None:
        """Feeds first, then brokers (each closes its own loop threads)."""
        for part in (self.feed, self.broker):
            try:
                part.close()
            except Exception as exc:  # reported; the other part must still close
                log_failure(_log, exc, "closing {} failed", type(part).__name__)

    def _install_sigint(self):
        """Ctrl-C (main thread only) becomes an orderly stop; a second Ctrl-C interrupts."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGINT)

        def on_sigint(signum, frame):
            if self._stop.is_set():
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            _log.warning("Ctrl-C: finishing the current bar, then stopping (Ctrl-C again to abort)")
            self.stop("interrupted (Ctrl-C)")

        signal.signal(signal.SIGINT, on_sigint)
        return lambda: signal.signal(signal.SIGINT, previous)


#: the cyclic garbage collector's first threshold during a run (CPython's default is 700)
GC_THRESHOLD = 20_000


def _fewer_collections():
    """During ``run()`` the garbage collector starts a collection after ``GC_THRESHOLD``
    allocations instead of 700: each bar allocates thousands of short-lived objects, and the
    collections they caused scanned the run's growing order and fill records again and again
    (about a tenth of a 100-asset replay's time, docs/performance.md). Restored when the run
    returns."""
    previous = gc.get_threshold()
    if previous[0] == 0 or previous[0] >= GC_THRESHOLD:  # disabled, or the application's own
        return lambda: None
    gc.set_threshold(GC_THRESHOLD, *previous[1:])
    return lambda: gc.set_threshold(*previous)


def _not_after(timestamp: Any, last: Any) -> bool:
    """``timestamp <= last`` (a bar the replay already gave the strategy); False when the two
    cannot be compared."""
    try:
        return bool(timestamp <= last)
    except TypeError:
        return False
