"""A fill applied under a made-up execution id at one warm restart, then seen under Alpaca's own
execution id at the next, counts once.

Restart N cannot read the FILL activities: the part the order filled while away is applied as
``<order id>:<cumulative qty>``. The order then ends while no runtime runs; restart N+1 finds it
no longer listed and looks it up by client order id (a fresh adapter), and Alpaca's activities
now list every execution under its real id, the one restart N made up among them. Real
alpaca-py against the simulated Alpaca; the market order of 20 fills 3 a bar.
"""

from __future__ import annotations

from datetime import timedelta

from alpaca.trading.client import TradingClient
from alpaca_helpers import SESSION_OPEN, config_for, minute_bars
from loguru import logger
from ml4t.backtest import BacktestConfig, Strategy
from ml4t.backtest.execution.limits import VolumeParticipationLimit

from ml4t_live import LiveEngine
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed


class BuyOnce(Strategy):
    """10 AAPL at market on the session's second bar (the replays of the warm restarts repeat it)."""

    def on_data(self, timestamp, data, context, broker):
        if timestamp == SESSION_OPEN + timedelta(minutes=1):
            broker.submit_order("AAPL", 20)


def run(sim, state_dir, minutes, lines, **kw):
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    try:
        cfg = config_for(sim, max_request_attempts=2, **kw)
        broker = AlpacaBroker(cfg, strategy_id="twice", state_dir=state_dir)
        feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=minutes))
        LiveEngine(BuyOnce(), broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
                   open_orders_at_end="keep").run()  # fmt: skip
    finally:
        logger.remove(sink)
    return broker


def test_a_made_up_fill_then_its_real_execution_id_at_the_next_restart_counts_once(tmp_path):
    sim = SimulatedAlpaca(minute_bars(16, {"AAPL": 100.0}), config=BacktestConfig(partial_fills_allowed=True),
                          rate_limit_per_minute=None,
                          execution_limits=VolumeParticipationLimit(max_participation=0.003))  # fmt: skip
    sim.start()
    lines: list[str] = []
    try:
        clock = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url).get_clock
        first = run(sim, tmp_path, 2, [])
        (cid,) = [o["client_order_id"] for o in sim.orders()]
        assert first.book.get(cid).filled_quantity == 3
        clock()  # a bar while away: 3 more
        (away,) = sim.fills()[1:]
        sim.fail_activities(2, status=503)  # restart N cannot read them
        second = run(sim, tmp_path, 2, [])
        made_up = f"{away.order_id}:6"
        assert second.book.get(cid).filled_quantity == 12 and second.book.seen(made_up)  # (6 more in run 2)
        assert [(o["status"], o["filled_qty"]) for o in sim.orders()] == [("partially_filled", "12")]
        for _ in range(3):
            clock()  # the order ends while away: 3, 3 and 2 more
        assert [(o["status"], o["filled_qty"]) for o in sim.orders()] == [("filled", "20")]
        third = run(sim, tmp_path, 10, lines)  # restart N+1: it is not listed, it is looked up
        venue = sim.fills()
    finally:
        sim.close()
    order = third.book.get(cid)
    assert order.filled_quantity == 20  # failed before: 23 (the made-up 3 again under its real id)
    assert third.book.positions["AAPL"].quantity == 20
    assert [f.quantity for f in third.book.fills] == [v.qty for v in venue] == [3, 3, 3, 3, 3, 3, 2]
    assert third.book.seen(made_up) and not third.book.seen(away.execution_id)
    assert all(third.book.seen(v.execution_id) for v in venue[2:])  # the later ones under their real ids
