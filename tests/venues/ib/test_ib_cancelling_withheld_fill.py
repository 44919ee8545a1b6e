"""A cancelling order the venue works on and fills, one of its executions never reported, through
the real ib_async client against the simulated IB Gateway.

The operator halts the strategy right after its limit buy of 10 at 96 (the market at 100): the
halt's cancel and every repeat are lost (``cancel_reply`` ``lost``: the order works on), the market
falls to 95 at the 5th bar and IB fills the order in two executions of 5 (``partial_fill``), the
second never sent nor listed (``withhold_executions``) while IB's order status says Filled 10.
The cancel check then finds it unlisted; IB's look-up by orderRef says filled 10, 5 beyond its
execution: owed, its executions decide (a WARNING). It stays owed while unlisted (no later check
lists it working: ``OwedExecutions.listed_working`` leaves the debt alone) and, its execution never
coming, the reconciliation after the next one makes the missing 5 up at its limit price, once.
The real 5 count once, from their execution; book, journal and IB agree on 10.

Each bar makes the reconciliation due (its schedule runs on the real clock)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from ib_helpers import START, config_for
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus, OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.cancel_resends import CancelResends
from ml4t_live.journal.operator_access import read_only, set_trading_state
from ml4t_live.venues.ib import IBBroker, IBFeed


def falling_bars(n: int = 14, drop_at: int = 4) -> pl.DataFrame:
    """AAPL at 100, then 95 from bar ``drop_at`` on (a limit buy at 96 fills there)."""
    rows = []
    for i in range(n):
        o = 100.0 if i < drop_at else 95.0
        rows.append({"timestamp": START + timedelta(minutes=i), "asset": "AAPL", "open": o, "high": o + 0.25,
                     "low": o - 0.25, "close": o, "volume": 1000.0 + 10 * i})  # fmt: skip
    return pl.DataFrame(rows)


class LimitThenHalt(Strategy):
    """A limit buy of 10 at 96 on the first bar, then the operator halts the strategy; every bar
    makes the reconciliation due."""

    def __init__(self, folder) -> None:
        self.folder, self.order = folder, None

    def on_data(self, timestamp, data, context, broker):
        broker.own.check_soon()
        if self.order is None:
            self.order = broker.submit_order("AAPL", 10, order_type=OrderType.LIMIT, limit_price=96.0)
            set_trading_state(next(self.folder.glob("*.journal")), "HALTED", "operator")


def test_a_cancelling_order_filled_with_an_execution_withheld_counts_each_part_once(sim_factory, ib_log_guard,
                                                                                    tmp_path):  # fmt: skip
    ib_log_guard.expect(r"trading state ACTIVE -> HALTED: operator")
    ib_log_guard.expect(r"ALERT order \S+: the venue never confirmed its cancel .*found it filled")
    ib_log_guard.expect(r"ALERT order \S+ filled 5 at the venue .*its executions never came")
    sim = sim_factory(falling_bars())
    sim.inject("cancel_reply", reply="lost", count=99)
    sim.inject("partial_fill", parts=2)
    sim.inject("withhold_executions", count=1)
    # no pacing (as ml4t-live runs a simulated gateway): a lost cancel waits cancel_wait alone
    broker = IBBroker(config_for(sim, cancel_wait=0.3, max_requests_per_second=0), strategy_id="wh",
                      state_dir=tmp_path)  # fmt: skip
    broker.cancel_resends = CancelResends(after=0.0)  # a check at every bar
    strategy = LimitThenHalt(tmp_path)
    feed = IBFeed(config_for(sim), ["AAPL"], bar_size="1 min", end=START + timedelta(minutes=12))
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    try:
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
                   open_orders_at_end="keep").run()  # fmt: skip
    finally:
        logger.remove(sink)
    order = strategy.order
    cid = order.order_id
    assert [(o.order_ref, o.status) for o in sim.orders] == [(cid, "Filled")] and len(sim.orders_received) == 1
    assert sim.account.positions["AAPL"][0] == 10.0
    said = [line for line in lines if line.startswith("WARNING") and cid in line and "executions decide" in line]
    assert len(said) == 1 and "filled 10 at the venue (found by look-up), 5 of it not reported yet" in said[0], said
    made_up = [line for line in lines if line.startswith("ERROR") and cid in line and "never came" in line]
    assert len(made_up) == 1 and "filled 5 at the venue" in made_up[0] and "applied at 96.0" in made_up[0], made_up
    assert lines.index(said[0]) < lines.index(made_up[0])
    assert order.status is OrderStatus.FILLED and order.filled_quantity == 10.0
    assert not broker.book.cancelling and broker.left_at_venue == []
    journal = read_only(tmp_path / "ib-DU1234567-wh.journal")
    try:
        fills = sorted((row["quantity"], row["price"], row["exec_id"] == f"{cid}:filled-while-away")
                       for row in journal.fill_rows())  # fmt: skip
        positions = journal.positions()
    finally:
        journal.close()
    assert fills == [(5.0, 96.0, False), (5.0, 96.0, True)], fills  # the real 5 (its execution), the missing 5 made up
    assert positions == {"AAPL": 10.0}
