"""What a run leaves behind: the in-memory :class:`LiveResult` and the session files.

:class:`RecordKeeper` runs on the engine thread after every bar: it takes the orders that finished
and the fills that happened since the last bar from the broker (no scans over history), writes
them (and the bar, when recording) to the session folder, and - when ``retain`` is set - lets the
broker forget them, so a long live session does not grow without bound.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from loguru import logger
from ml4t.backtest import Fill, Order, OrderStatus

from .events import BarClosed
from .logs import log_failure

_log = logger.bind(component="results")


@dataclass
class LiveResult:
    """The outcome of ``LiveEngine.run()``. ``fills``, ``rejected_orders``, ``equity_curve`` and
    ``metrics`` are named as in ``ml4t.backtest.BacktestResult``; ``orders`` (every order, final
    status) has no counterpart there."""

    fills: list[Fill]
    orders: list[Order]
    rejected_orders: list[Order]
    equity_curve: list[tuple[Any, float]]
    metrics: dict[str, Any]
    bars: int
    stopped_reason: str
    session_dir: Path | None = None
    started_at: datetime | None = None

    def __getitem__(self, key: str) -> Any:
        return self.metrics[key]


@dataclass
class MetricsTracker:
    """Running equity statistics (constant memory)."""

    initial_cash: float
    final_value: float = field(init=False)
    peak: float = field(init=False)
    max_drawdown: float = 0.0
    last_timestamp: Any = None
    strategy_errors: int = 0  # on_data errors logged and passed over (error policy "log")
    bad_bars_dropped: int = 0  # recorded bar rows dropped before the run (--on-bad-bars drop)

    def __post_init__(self) -> None:
        self.final_value = self.initial_cash
        self.peak = self.initial_cash

    def start_from(self, equity: float) -> None:
        """Measure from the account's equity at connect (a venue's, not the configured cash)."""
        self.initial_cash = self.final_value = self.peak = equity

    def observe(self, timestamp: Any, equity: float) -> None:
        self.final_value = equity
        self.last_timestamp = timestamp
        if equity > self.peak:
            self.peak = equity
        elif self.peak > 0:
            self.max_drawdown = max(self.max_drawdown, (self.peak - equity) / self.peak)


class RecordKeeper:
    """Collects orders, fills, equity and bars during a run; writes the session folder."""

    def __init__(self, writer: Any, retain: int | None) -> None:
        self.writer = writer
        self.retain = retain
        self.orders_seen = 0
        self.fills_seen = 0
        self.rejected = 0
        self.rejected_catch_up = 0  # of those: orders made on catch-up bars (never sent, by design)
        self.commission = 0.0
        self.slippage = 0.0
        self._forgotten_orders = 0  # minus the orders a warm restart re-made (see ``restarted``)
        self._equity: list[tuple[Any, float]] | deque[tuple[Any, float]] = (
            [] if retain is None else deque(maxlen=max(retain, 1))
        )

    @classmethod
    def open(
        cls,
        session_dir: str | Path | None | Literal[False],
        strategy_name: str,
        started: datetime,
        retain: int | None,
    ) -> RecordKeeper:
        if session_dir is False:
            return cls(None, retain)
        from .session import SessionWriter

        writer = (
            SessionWriter.create(None, strategy_name, started)
            if session_dir is None
            else SessionWriter.at(session_dir)
        )
        _log.info("session files: {}", writer.dir)
        return cls(writer, retain)

    def follow_feed(self, feed: Any, record_bars: bool) -> None:
        """A replay's bars are slices of a frame it holds: record them by reference to it
        (``ReplayFeed.recorded_source``; :mod:`ml4t_live.session_bars`), not row by row."""
        source = getattr(feed, "recorded_source", None)
        if self.writer is None or not record_bars or source is None:
            return
        found = source()
        if found is not None:
            self.writer.record_bars_from(*found)

    def after_bar(self, broker: Any, bar: BarClosed, equity: float, record_bar: bool) -> None:
        self._equity.append((bar.timestamp, equity))
        if self.writer is not None:
            if record_bar:
                self.writer.add_bar(bar.timestamp, bar.data, bar.context)
            if self.retain is not None:
                self.writer.add_equity([(bar.timestamp, equity)])
        self._take(broker)
        if self.writer is not None:
            self.writer.spill_if_due()

    def restarted(self, broker: Any) -> None:
        """A warm restart re-made the earlier runs' orders (they are in those runs' files): this
        run counts its own from here, as its fills and rejections."""
        self._forgotten_orders -= len(broker.orders)

    def idle(self) -> None:
        """Between bars (the engine waits, or the feed sent a heartbeat): rows buffered when the
        bars paused (the session's last bar of the day) still reach the disk within the minute."""
        if self.writer is not None:
            self.writer.spill_if_due()

    def _take(self, broker: Any) -> None:
        finished, fills = broker.take_new_records()
        self.orders_seen = len(broker.orders) + self._forgotten_orders
        for order in finished:
            if order.status is OrderStatus.REJECTED:
                self.rejected += 1
                self.rejected_catch_up += order.rejection_code == "catch_up"
        for fill in fills:
            self.commission += fill.commission
            self.slippage += abs(fill.slippage * fill.quantity)
        self.fills_seen += len(fills)
        if self.writer is not None:
            if finished:
                self.writer.add_orders(finished)
            if fills:
                self.writer.add_fills(fills)
            take_latency = getattr(broker, "take_latency", None)  # venue brokers only
            if take_latency is not None:
                self.writer.add_latency(take_latency())
        if self.retain is not None and (finished or fills):
            before = len(broker.orders)
            broker.forget_records(self.retain)
            self._forgotten_orders += before - len(broker.orders)

    def finish(
        self, broker: Any, metrics: MetricsTracker, bars: int, reason: str, started: datetime
    ) -> LiveResult:
        self._take(broker)
        orders = list(broker.orders)
        pending = [o for o in orders if o.status is OrderStatus.PENDING]
        # a venue broker knows what is still at the venue: working, or cancelled unconfirmed
        left = getattr(broker, "left_at_venue", None)
        unfinished = pending if left is None else left
        summary = {
            "initial_cash": metrics.initial_cash,
            "final_value": metrics.final_value,
            "total_return": metrics.final_value / metrics.initial_cash - 1.0
            if metrics.initial_cash
            else 0.0,
            "max_drawdown": metrics.max_drawdown,
            "num_orders": self.orders_seen,
            "num_fills": self.fills_seen,
            "num_rejected_orders": self.rejected,
            "num_rejected_catch_up": self.rejected_catch_up,
            "num_open_orders": len(unfinished),
            "num_strategy_errors": metrics.strategy_errors,
            "num_bad_bars_dropped": metrics.bad_bars_dropped,
            "total_commission": self.commission,
            "total_slippage": self.slippage,
            "bars": bars,
        }
        summary["total_return_pct"] = summary["total_return"] * 100.0
        session_dir = None
        risk = getattr(broker, "risk_summary", None)
        if risk is not None:
            summary.update(risk())
        if left is not None:
            summary["left_at_venue"] = [o.order_id for o in left]
        summary["positions"] = _positions(broker)
        if self.writer is not None:
            if unfinished:
                self.writer.add_orders(unfinished)
            if self.retain is None:
                self.writer.write_equity(list(self._equity))
            self.writer.write_summary(
                {
                    **summary,
                    "stopped_reason": reason,
                    "started_at": started,
                    "last_bar": metrics.last_timestamp,
                    "broker": getattr(broker, "mode", "?"),
                }
            )
            self.writer.close()
            session_dir = self.writer.dir
        return LiveResult(
            fills=list(broker.fills),
            orders=orders,
            rejected_orders=list(broker.rejected_orders()),
            equity_curve=list(self._equity),
            metrics=summary,
            bars=bars,
            stopped_reason=reason,
            session_dir=session_dir,
            started_at=started,
        )

    def fail(self, exc: BaseException, broker: Any, metrics: MetricsTracker, bars: int) -> None:
        """A failed run still leaves its files: what was recorded up to the failure (including
        the last bar's orders and fills, and the orders still open), and why."""
        if self.writer is None:
            return
        try:
            self._take(broker)
            self.writer.add_orders(o for o in broker.orders if o.status is OrderStatus.PENDING)
        except Exception as take_exc:  # e.g. the broker never connected: nothing to collect
            _log.debug("no orders or fills to collect after the failure: {!r}", take_exc)
        try:
            if self.retain is None:
                self.writer.write_equity(list(self._equity))
            self.writer.write_summary(
                {
                    "failed": True,
                    "error": f"{type(exc).__name__}: {exc}",
                    "bars": bars,
                    "last_bar": metrics.last_timestamp,
                    "final_value": metrics.final_value,
                    "num_orders": self.orders_seen,
                    "num_fills": self.fills_seen,
                    "num_rejected_orders": self.rejected,
                    "num_strategy_errors": metrics.strategy_errors,
                }
            )
            self.writer.close()
        except Exception as write_exc:  # reported; the original failure re-raises
            log_failure(_log, write_exc, "could not write the session files after a failure")


def _positions(broker: Any) -> dict[str, float]:
    """What the strategy holds at the end: {asset: signed quantity} (flat assets left out)."""
    try:
        held = broker.strategy_broker.positions
    except AttributeError:  # a broker without the strategy-facing surface
        return {}
    return {asset: p.quantity for asset, p in sorted(held.items()) if abs(p.quantity) > 1e-12}
