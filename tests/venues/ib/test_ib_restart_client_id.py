"""A warm restart under another IB API client id than the journal's orders were placed under,
through the real ib_async client against the simulated IB Gateway.

IB lists an order only to the client id that placed it: a restart as client 7 of a journal whose
limit order works under client 1 would take it for lost while it works on. The run refuses to
start (ConfigError, the CLI's exit 2) and sends nothing; the same client id still restarts (and
cancels the order at its end); once every order ended (a lost one counts), another client id may run the journal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ib_helpers import START, OneLimit, config_for
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus

from ml4t_live import LiveEngine
from ml4t_live.errors import ConfigError
from ml4t_live.journal.operator_access import read_only
from ml4t_live.venues.ib import IBBroker, IBFeed


def run(sim, strategy, minutes, state_dir, client_id, end, **config):
    broker = IBBroker(config_for(sim, client_id=client_id, cancel_wait=0.3, **config), strategy_id="cid",
                      state_dir=state_dir)  # fmt: skip
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
    assert "IB API client id 1" in text and "client id 7" in text and cid in text and "Nothing was sent" in text
    assert "cancel-all --client-id 1" in text and "ml4t-live resume --strategy-id cid" in text
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


def test_a_lost_order_does_not_bar_another_client_id(sim_factory, tmp_path, ib_log_guard):
    """IB never placed the order (black-holed): it was looked up under client id 1, not found and
    declared lost. Its intent stays 'lost' for good, so it counts as ended for a change of client
    id (a WARNING names it and the one client id that could still cancel it)."""
    ib_log_guard.expect(r"is LOST: IB never answered")
    ib_log_guard.expect(r"ALERT order \S+ is lost")
    ib_log_guard.expect(r"Error 10147, reqId \d+")  # the cancel sent for the lost order: IB never had it
    sim = sim_factory()
    sim.inject("black_hole_next", count=1)
    first = OneLimit()
    run(sim, first, 4, tmp_path, 1, "cancel", inflight_check_interval=0.2, inflight_checks=2)
    cid = first.order.order_id
    journal = read_only(next(tmp_path.glob("*.journal")))
    try:
        assert journal.intents()[cid]["status"] == "lost"
    finally:
        journal.close()
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING",
                      filter=lambda r: r["extra"].get("component") == "ownership")  # fmt: skip
    try:
        run(sim, OneLimit(), 6, tmp_path, 7, "cancel")
    finally:
        logger.remove(sink)
    journal = read_only(next(tmp_path.glob("*.journal")))
    try:
        assert journal.meta("venue_client_id") == "7"
    finally:
        journal.close()
    (lost,) = [w for w in warnings if "declared lost" in w]
    assert cid in lost and "IB client id 1" in lost and "only client id 1 can see or cancel it" in lost
