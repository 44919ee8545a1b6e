"""A warm restart under another IB API client id than the journal's orders were placed under,
through the real ib_async client against the simulated IB Gateway.

IB lists an order only to the client id that placed it: a restart as client 7 of a journal whose
limit order works under client 1 would take it for lost while it works on. The run refuses to
start (ConfigError, the CLI's exit 2) and sends nothing; the same client id still restarts (and
cancels the order at its end); once every order ended, another client id may run the journal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ib_helpers import START, config_for
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.errors import ConfigError
from ml4t_live.journal.store import read_only
from ml4t_live.venues.ib import IBBroker, IBFeed


class OneLimit(Strategy):
    """A limit buy far below the market on its first bar (it never fills)."""

    def __init__(self) -> None:
        self.order = None

    def on_data(self, timestamp, data, context, broker):
        if self.order is None:
            self.order = broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT, limit_price=50.0)


def run(sim, strategy, minutes, state_dir, client_id, end):
    broker = IBBroker(config_for(sim, client_id=client_id, cancel_wait=0.3), strategy_id="cid", state_dir=state_dir)
    feed = IBFeed(config_for(sim, client_id=client_id + 20), ["AAPL"], bar_size="1 min",
                  end=START + timedelta(minutes=minutes))  # fmt: skip
    LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
               open_orders_at_end=end).run()  # fmt: skip
    return broker


def _sent(sim) -> tuple[int, int]:
    return sim.request_count("PlaceOrder"), sim.request_count("CancelOrder")


def test_a_restart_under_another_client_id_refuses_while_its_orders_work(sim_factory, tmp_path, ib_log_guard):
    ib_log_guard.expect(r"Error 202, reqId \d+")  # IB's confirmation of the cancel at the end
    sim = sim_factory()
    first = OneLimit()
    run(sim, first, 3, tmp_path, 1, "keep")
    cid = first.order.order_id
    assert [(o.client_id, o.status) for o in sim.orders if o.order_ref == cid] == [(1, "Submitted")]
    sent = _sent(sim)
    assert sent == (1, 0)

    with pytest.raises(ConfigError) as refused:
        run(sim, OneLimit(), 5, tmp_path, 7, "cancel")
    text = str(refused.value)
    assert "client id 1" in text and "client id 7" in text and cid in text and "Nothing was sent" in text
    assert _sent(sim) == sent, "the refused run sent something"
    assert [(o.client_id, o.status) for o in sim.orders if o.order_ref == cid] == [(1, "Submitted")]
    journal = read_only(next(tmp_path.glob("*.journal")))
    try:
        assert journal.intents()[cid]["status"] == "accepted"  # not lost
        assert journal.meta("venue_client_id") == "1"
    finally:
        journal.close()

    again = OneLimit()
    run(sim, again, 6, tmp_path, 1, "cancel")  # the same client id restarts and cancels it at its end
    assert again.order.order_id == cid and again.order.status is OrderStatus.CANCELLED
    assert [o.status for o in sim.orders if o.order_ref == cid] == ["Cancelled"]

    later = OneLimit()
    run(sim, later, 8, tmp_path, 7, "cancel")  # every order ended: another client id may run it
    journal = read_only(next(tmp_path.glob("*.journal")))
    try:
        assert journal.meta("venue_client_id") == "7"
    finally:
        journal.close()
