"""Every pre-trade limit, at and over, in shadow and against the in-memory venue: the refused
order comes back REJECTED with the limit's code and a reason naming the numbers, never reaches
the venue, and is counted in the summary."""

from __future__ import annotations

from datetime import UTC, datetime

from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.feeds.replay import ReplayFeed
from ml4t_live.shadow import ShadowBroker
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar
from tests.support.risk_probe import RISK, RiskProbe, expected, outcomes, probe_bars

START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def _refusals(strategy: RiskProbe) -> dict[str, str]:
    return {label: o.rejection_reason for label, o in strategy.orders.items() if o.rejection_code}


def test_every_limit_at_and_over_in_shadow():
    strategy = RiskProbe()
    result = LiveEngine(strategy, ShadowBroker(BacktestConfig(), risk=RISK), ReplayFeed(probe_bars(START)),
                        session_dir=False).run()  # fmt: skip
    assert outcomes(strategy) == expected()
    reasons = _refusals(strategy)
    assert reasons["notional over"] == "risk: max_order_notional: 121 x 100.00 = 12,100.00 > 12,000.00"
    assert "5.10% from the last price 100.00 > 5.00%" in reasons["collar over"]
    assert "180.0 s old > 90 s" in reasons["data age over"]
    assert "(burst)" in reasons["burst over"]
    assert result.metrics["num_risk_refusals"] == sum(code is not None for code in expected().values())
    assert result.metrics["risk_refusals"]["max_order_notional"] == 1
    refused_ids = {o.order_id for o in strategy.orders.values() if o.status is OrderStatus.REJECTED}
    assert refused_ids <= {o.order_id for o in result.rejected_orders}  # recorded as the backtest's own
    assert all(f.order_id not in refused_ids for f in result.fills)
    assert strategy.orders["reduce all"].status is OrderStatus.FILLED


def test_every_limit_at_and_over_against_the_venue():
    venue = FakeVenue(fill_on_wait=True)
    strategy = RiskProbe()
    frame = probe_bars(START)
    bars = [bar(ts, dict(zip(g["asset"], g["close"], strict=True)))
            for (ts,), g in frame.group_by("timestamp", maintain_order=True)]  # fmt: skip
    broker = VenueBroker(venue, strategy_id="probe", risk=RISK)
    result = LiveEngine(strategy, broker, ListFeed(bars), session_dir=False, settle_timeout=0.5).run()
    assert outcomes(strategy) == expected()
    refused = {o.order_id for o in strategy.orders.values() if o.rejection_code}
    sent = {r.client_order_id for r in venue.placed}
    assert not refused & sent  # a refused order never reaches the venue
    assert {o.order_id for o in strategy.orders.values() if not o.rejection_code} <= sent
    assert result.metrics["num_risk_refusals"] == len(refused)
    assert _refusals(strategy)["position over"] == (
        "risk: max_position_notional: AAA 201 x 100.00 = 20,100.00 after the order > 20,000.00")


def test_no_rails_when_asked_in_shadow():
    strategy = RiskProbe()
    LiveEngine(strategy, ShadowBroker(BacktestConfig(), risk=False), ReplayFeed(probe_bars(START)),
               session_dir=False).run()  # fmt: skip
    assert not any(code for code in outcomes(strategy).values() if code and code.startswith("max_"))


class Changer(Strategy):
    """Bar 1: a working buy limit of 10; bar 2: try to change it to 500 (over the limit), then to 20."""

    def __init__(self) -> None:
        self.n, self.answers = 0, []

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.order = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=96.0)
        if self.n == 2:
            self.answers.append(broker.update_order(self.order.order_id, quantity=500))
            self.answers.append(self.order.quantity)
            self.answers.append(broker.update_order(self.order.order_id, quantity=20))


def test_a_change_over_a_limit_is_refused_and_the_order_stays_as_it_was():
    risk = {"max_order_quantity": 100}
    shadow = Changer()
    LiveEngine(shadow, ShadowBroker(BacktestConfig(), risk=risk), ReplayFeed(probe_bars(START)),
               session_dir=False).run()  # fmt: skip
    venue = FakeVenue(fill_on_wait=True)
    at_venue = Changer()
    frame = probe_bars(START)
    bars = [bar(ts, dict(zip(g["asset"], g["close"], strict=True)))
            for (ts,), g in frame.group_by("timestamp", maintain_order=True)]  # fmt: skip
    LiveEngine(at_venue, VenueBroker(venue, strategy_id="chg", risk=risk), ListFeed(bars), session_dir=False,
               settle_timeout=0.5).run()  # fmt: skip
    assert shadow.answers == at_venue.answers == [False, 10.0, True]
    assert [r.quantity for r in venue.placed] == [10.0, 20.0]  # the refused change never reached the venue
