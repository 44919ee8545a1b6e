"""A cancel of a submit of unknown outcome whose report is not on the queue (it failed, or the
watcher is still making it).

A cancel needs no fills counted first, so it is sent to the order its look-up found, while the
order stays of unknown outcome; its acceptance, fills and end are reported, each once, when its
report works (the watcher's look-up, a cancel check's look-up by client order id, a re-sync).
Before, the cancel was refused (``BeingReported``, nothing sent): the end of a run or a halt left
the order working at Alpaca. Real alpaca-py against SimulatedAlpaca, the trade stream silent.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from alpaca_helpers import SESSION_OPEN, config_for, drain, minute_bars, of
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy
from unknown_support import (
    ATTEMPTS,
    BreakingReader,
    WatcherTick,
    looked_up_at,
    replaced_unknown,
    unknown_limit,
)

from ml4t_live import LiveEngine
from ml4t_live.errors import ConnectionFailed
from ml4t_live.events import (
    OrderAccepted,
    OrderCancelled,
    OrderLost,
    VenueErrorReported,
)
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed


def _status(sim: SimulatedAlpaca, client_order_id: str) -> str:
    (order,) = [o for o in sim.orders() if o["client_order_id"] == client_order_id]
    return order["status"]


def test_a_cancel_whose_report_raises_is_sent_and_the_order_reported_once_later(sim: SimulatedAlpaca) -> None:
    """t-a (limit 50, resting) is of unknown outcome; a cancel finds it and its report raises.
    The cancel goes out (t-a canceled at Alpaca; before: refused, BeingReported, t-a working)
    and t-a stays of unknown outcome; a cancel check's look-up whose report raises is a failed
    look-up (ConnectionFailed; before: the RuntimeError itself). Once the report works, the
    watcher reports t-a accepted and cancelled, once each; nothing more after."""
    gw = unknown_limit(sim, 50.0)
    try:
        reader = gw.stream.executions = BreakingReader(gw.stream.executions)
        drain(gw.events)
        gw.cancel("t-a")
        assert _status(sim, "t-a") == "canceled"
        assert gw.follows_unknown("t-a")
        with pytest.raises(ConnectionFailed, match="its report failed"):
            gw.lookup(["t-a"])
        seen = drain(gw.events)
        assert [e.code for e in of(VenueErrorReported, seen, "t-a")] == ["unknown_report_failed"] * 2
        assert not of(OrderAccepted, seen) and not of(OrderCancelled, seen) and not of(OrderLost, seen)
        reader.broken = False
        assert looked_up_at(gw, reader, 1) == [1]
        seen = drain(gw.events)
        assert len(of(OrderAccepted, seen, "t-a")) == 1 and len(of(OrderCancelled, seen, "t-a")) == 1
        assert not gw.follows_unknown("t-a")
        assert gw.lookup(["t-a"])["t-a"].status == "cancelled"
        gw.stream.session.call(gw.stream.resync)
        gw.stream.session.call(gw.stream.resolve_unconfirmed)
        assert drain(gw.events) == []
    finally:
        gw.close()


def test_a_cancel_while_the_watcher_reports_is_sent_and_its_end_follows_once(sim: SimulatedAlpaca) -> None:
    """The watcher holds its report of t-a (chain t-a -> t-a.r1) beyond request_timeout when a
    cancel finds it: the cancel goes to t-a.r1 (before: refused, BeingReported). The watcher's
    report (taken before the cancel: working) and the silent stream's re-sync then bring t-a
    accepted and cancelled, once each."""
    gw, r1 = replaced_unknown(sim, request_timeout=0.5)
    try:
        tick = WatcherTick(gw)
        try:
            gw.cancel("t-a")
        finally:
            tick.done()
        assert _status(sim, "t-a.r1") == "canceled"
        gw.stream.session.call(gw.stream.resync)
        gw.stream.session.call(gw.stream.resolve_unconfirmed)
        seen = drain(gw.events)
        assert len(of(OrderAccepted, seen, "t-a")) == 1 and len(of(OrderCancelled, seen, "t-a")) == 1
        assert of(OrderAccepted, seen, "t-a")[0].venue_order_id == str(r1.id)
        assert not gw.follows_unknown("t-a")
    finally:
        gw.close()


class _UnknownBuy(Strategy):
    """Buys 3 at a limit below the market on its first bar, the submit's outcome made unknown
    (answer cut, look-up unanswered, trade stream silent) and every report of it raising."""

    def __init__(self, sim: SimulatedAlpaca, broker: AlpacaBroker) -> None:
        self.sim, self.gateway, self.order = sim, broker.gateway, None

    def on_data(self, timestamp, data, context, broker):
        if self.order is None:
            self.gateway.stream.executions = BreakingReader(self.gateway.stream.executions)
            for kind, params in (("silence_trade_stream", {}), ("truncated_body", {}),
                                 ("lookup_error", {"count": ATTEMPTS})):  # fmt: skip
                self.sim.inject(kind, **params)
            self.order = broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT, limit_price=50.0)


def test_the_end_of_run_cancels_a_submit_of_unknown_outcome_whose_report_keeps_raising(tmp_path) -> None:
    """open_orders_at_end='cancel' with such an order: it is cancelled at Alpaca. Before, the
    cancel was refused (BeingReported) and the order was left working (status new); it is
    still listed as left at the venue, cancelling, since its end was never reported."""
    sim = SimulatedAlpaca(minute_bars(8, {"AAPL": 100.0}), config=BacktestConfig(), rate_limit_per_minute=None)
    sim.start()
    try:
        cfg = config_for(sim, order_poll_interval=1.0)
        broker = AlpacaBroker(cfg, strategy_id="eu", state_dir=tmp_path)
        strategy = _UnknownBuy(sim, broker)
        feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=5))
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
                   open_orders_at_end="cancel").run()  # fmt: skip
        cid = strategy.order.order_id
        assert _status(sim, cid) == "canceled"  # before: new (working)
        assert strategy.order.status is OrderStatus.CANCELLED
        assert [o.order_id for o in broker.left_at_venue] == [cid]  # (its end never reported)
    finally:
        sim.close()


def test_a_cancel_of_a_replaced_unknown_submit_whose_report_raises_cancels_the_replacement(sim: SimulatedAlpaca) -> None:
    """A review probe of 09dffa1: t-a (of unknown outcome) was replaced elsewhere by t-a.r1; its
    report raises, so the cancel is sent while it stays unknown: to t-a.r1, the order working now,
    not to the replaced t-a (a mutant sending it there: 422, t-a.r1 left working)."""
    gw, _r1 = replaced_unknown(sim)
    try:
        gw.stream.executions = BreakingReader(gw.stream.executions)
        drain(gw.events)
        gw.cancel("t-a")
        status = {o["client_order_id"]: o["status"] for o in sim.orders()}
        assert status["t-a.r1"] == "canceled", status
    finally:
        gw.close()
