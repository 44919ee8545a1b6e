"""A cancel IB never answered is sent again within the run, through the real ib_async client
against the simulated IB Gateway (``cancel_reply`` ``lost``: no answer, the order works on).

* the operator halts the strategy (the journal's trading state, as ``ml4t-live halt`` writes it):
  the runtime cancels its working limit, IB loses that cancel; a later check sends it again (the
  broker's spacing set to 0 s: due at the next bar) and IB cancels the order, within the run;
* the end-of-run ``cancel`` policy's cancel is lost: the end sends it once more and waits.

Either way the order ends Cancelled at IB and CANCELLED for the strategy, nothing is left at the
venue, and the order itself is never sent again.
"""

from __future__ import annotations

from datetime import timedelta

from ib_helpers import START, config_for
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.cancel_resends import RESEND_LIMIT, CancelResends
from ml4t_live.journal.operator_access import set_trading_state
from ml4t_live.venues.ib import IBBroker, IBFeed


class OneLimit(Strategy):
    """A limit buy far below the market on its first bar (it never fills); ``halt``: the
    operator halts the strategy right after it (another process writes the journal)."""

    def __init__(self, halt=None) -> None:
        self.halt = halt
        self.order = None

    def on_data(self, timestamp, data, context, broker):
        if self.order is None:
            self.order = broker.submit_order("AAPL", 3, order_type=OrderType.LIMIT, limit_price=50.0)
            if self.halt is not None:
                set_trading_state(next(self.halt.glob("*.journal")), "HALTED", "operator")


def run(sim, strategy, minutes, state_dir, end, resends=None):
    # no pacing (as ml4t-live runs a simulated gateway): a batch's cancel waits cancel_wait alone
    broker = IBBroker(config_for(sim, cancel_wait=0.3, max_requests_per_second=0), strategy_id="resend",
                      state_dir=state_dir)  # fmt: skip
    broker.cancel_resends = resends or CancelResends(after=0.0)  # due at the next check (the next bar)
    feed = IBFeed(config_for(sim), ["AAPL"], bar_size="1 min", end=START + timedelta(minutes=minutes))
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    try:
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
                   open_orders_at_end=end).run()  # fmt: skip
    finally:
        logger.remove(sink)
    return broker, lines


def check_cancelled_once_more(sim, strategy, broker, lines):
    cid = strategy.order.order_id
    assert sim.request_count("CancelOrder") == 2, "the lost cancel was not sent again"
    assert [(o.order_ref, o.status) for o in sim.orders] == [(cid, "Cancelled")]
    assert strategy.order.status is OrderStatus.CANCELLED and strategy.order.filled_quantity == 0
    assert broker.left_at_venue == [] and not broker.book.cancelling
    assert any(line.startswith("WARNING") and cid in line and "cancel asked again" in line for line in lines)
    assert len(sim.orders_received) == 1  # the order itself was never sent again


def test_a_halted_strategys_lost_cancel_is_sent_again_during_the_run(sim_factory, ib_log_guard, tmp_path):
    ib_log_guard.expect(r"Error 202, reqId \d+")  # IB's confirmation of the second cancel
    ib_log_guard.expect(r"trading state ACTIVE -> HALTED: operator")  # the halt, logged as an ERROR
    sim = sim_factory()
    sim.inject("cancel_reply", reply="lost")
    strategy = OneLimit(halt=tmp_path)
    broker, lines = run(sim, strategy, 6, tmp_path, "keep")  # the end of run cancels nothing
    check_cancelled_once_more(sim, strategy, broker, lines)


def test_a_lost_end_of_run_cancel_is_sent_again_before_the_run_ends(sim_factory, ib_log_guard, tmp_path):
    ib_log_guard.expect(r"Error 202, reqId \d+")
    sim = sim_factory()
    sim.inject("cancel_reply", reply="lost")
    strategy = OneLimit()
    broker, lines = run(sim, strategy, 3, tmp_path, "cancel")
    check_cancelled_once_more(sim, strategy, broker, lines)


def test_a_repeat_while_ib_is_still_cancelling_is_refused_and_ibs_confirmation_ends_it(
    sim_factory, ib_log_guard, tmp_path
):
    """The halt's cancel is confirmed late (IB still working on it, listed PendingCancel, when the
    repeats go out): IB refuses each repeat (10148 state PendingCancel); IB's confirmation settles
    the order, once. (With the simulated IB listing the order completed at once, the adapter's
    look-up after the first refusal settled it and only one repeat went out.)"""
    ib_log_guard.expect(r"Error 202, reqId \d+")
    ib_log_guard.expect(r"Error 10148, reqId \d+: .*state: PendingCancel")
    ib_log_guard.expect(r"trading state ACTIVE -> HALTED: operator")
    sim = sim_factory()
    sim.inject("cancel_reply", reply="late", seconds=0.6)  # longer than the adapter's cancel_wait
    strategy = OneLimit(halt=tmp_path)
    broker, lines = run(sim, strategy, 4, tmp_path, "cancel")  # the end waits for the answer
    cid = strategy.order.order_id
    # the halt's, then one repeat per check (every bar here) while IB lists the order PendingCancel,
    # each refused (10148); none taken as a new cancel, at most RESEND_LIMIT; not the end's
    refused = [line for line in lines if "cancel asked again" in line and cid in line and "was refused" in line]
    assert 1 <= len(refused) <= RESEND_LIMIT, lines
    assert sim.request_count("CancelOrder") == 1 + len(refused)
    assert [(o.order_ref, o.status) for o in sim.orders] == [(cid, "Cancelled")]
    assert strategy.order.status is OrderStatus.CANCELLED and broker.left_at_venue == []
    assert len(sim.orders_received) == 1


def test_the_alert_of_a_cancel_ib_holds_quotes_ibs_pending_cancel_refusal(sim_factory, ib_log_guard, tmp_path):
    """IB holds the halt's cancel (confirmed only much later, as outside regular hours): each
    repeat is refused 10148 ``state: PendingCancel``; at the ALERT (here after 2 tries) the
    operator reads IB's own answer, not only that the cancel went unconfirmed."""
    ib_log_guard.expect(r"Error 10148, reqId \d+: .*state: PendingCancel")
    ib_log_guard.expect(r"trading state ACTIVE -> HALTED: operator")
    ib_log_guard.expect(r"ALERT order \S+: the venue never confirmed its cancel")
    sim = sim_factory()
    sim.inject("cancel_reply", reply="late", seconds=600.0)  # not within the run
    strategy = OneLimit(halt=tmp_path)
    _, lines = run(sim, strategy, 6, tmp_path, "keep", CancelResends(after=0.0, limit=2))  # the ALERT after 2 tries
    cid = strategy.order.order_id
    (alert,) = [line for line in lines if line.startswith("ERROR") and f"ALERT order {cid}:" in line]
    assert f"the venue's last refusal: IB refused the cancel of {cid}: error 10148" in alert, alert
    assert "state: PendingCancel" in alert
    assert sim.request_count("CancelOrder") == 3  # the halt's and 2 repeats
