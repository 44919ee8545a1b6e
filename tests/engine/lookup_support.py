"""Shared set-up for the engine's look-up tests: an order of unknown outcome declared lost, and a
venue that filled an order whose executions never reach the client, run with a reconciliation
due every bar. Built on the harnesses of unknown_outcome_support.py, cancel_support.py and cancel_venues.py
(FakeVenue is the remote side)."""

from __future__ import annotations

from dataclasses import dataclass

from ml4t.backtest import OrderSide, OrderStatus, OrderType

from ml4t_live.cancel_resends import CancelResends
from ml4t_live.events import OrderFilled
from ml4t_live.protocols import VenueOrder, VenuePosition
from ml4t_live.venue_broker import VenueBroker
from tests.engine.cancel_support import HaltedLimits, drive
from tests.engine.cancel_venues import LooksUp
from tests.engine.fake_clock import Clock
from tests.engine.unknown_outcome_support import WHEN, UnknownVenue, at, start


def working(cid: str) -> VenueOrder:
    """The venue's view of ``cid`` (the unknown-outcome limit buy of 10 at 99.0): open, nothing filled."""
    return VenueOrder(cid, "V1", "AAA", OrderSide.BUY, 10, 0, OrderType.LIMIT, "open", 99.0)


def declared_lost(clock: Clock, **kw):
    """An order of unknown outcome that two spaced look-ups miss: lost, at t = 10 s."""
    venue = UnknownVenue(reached=True, fill_on_wait=False, **kw)
    broker, order = start(venue, clock, misses=2)
    at(broker, clock, 5.0)
    at(broker, clock, 10.0)
    assert order.status is OrderStatus.REJECTED and order.rejection_code == "lost"
    return venue, broker, order


@dataclass
class FilledSilently(LooksUp):
    """LooksUp ("filled, no executions"): the venue filled the order (its position moved) but its
    executions never reach the client. ``late``: they do come, at the next bar's drain after the
    first look-up (a slow stream)."""

    answer: str | None = "filled, no executions"
    late: bool = False

    def lookup(self, cids):
        if not self.looked_up:
            for cid in cids:
                request = next(r for r in self.placed if r.client_order_id == cid)
                self.positions["AAA"] = VenuePosition("AAA", request.quantity, 90.0)
                if self.late:
                    self.events.put(OrderFilled(cid, "E-late", "AAA", request.side, request.quantity, 89.5, WHEN,
                                                1.0, request.quantity))  # fmt: skip
        return super().lookup(cids)


class Reconciling(HaltedLimits):
    """HaltedLimits whose every bar (30 s of the fake clock) makes the reconciliation due, as 30 s
    would (its schedule, ``reconcile_every`` / ``RECHECK``, runs on the real clock)."""

    def on_data(self, timestamp, data, context, broker):
        broker.own.check_soon()
        super().on_data(timestamp, data, context, broker)


def run_reconciling(venue, tmp_path, bars=70):
    """``bars`` bars of :class:`Reconciling` through a broker journaled in ``tmp_path`` that resends
    cancels on the venue's clock: (the strategy, the broker, the log lines)."""
    strategy = Reconciling(tmp_path / "fake-DU0001-cr.journal", venue.clock, 1)
    broker = VenueBroker(venue, strategy_id="cr", state_dir=tmp_path)
    broker.cancel_resends = CancelResends(clock=venue.clock)
    return strategy, broker, drive(strategy, broker, bars, "keep")
