"""An OCO exit pair working at a warm restart: its stop leg stays the strategy's stop-loss.

The adapter sends a bracket's two exits as one Alpaca ``oco`` order: the take-profit under our
client order id, the stop-loss as its leg, under a client order id Alpaca chooses (the gateway
aliases it at submit). A restarted gateway's tracker starts empty: it reported the leg as a
foreign order (its fills ignored), and the restart's look-up of the stop-loss by our id (which
Alpaca does not know) declared it lost; now the look-up finds it by the Alpaca id the journal
recorded for it. Real alpaca-py against the simulated Alpaca; the
price falls a dollar a bar, so the stop-loss triggers a few bars on.
"""

from __future__ import annotations

from datetime import timedelta

from alpaca.trading.client import TradingClient
from alpaca_helpers import SESSION_OPEN, config_for, minute_bars
from loguru import logger
from ml4t.backtest import BacktestConfig, OrderStatus, Strategy

from ml4t_live import LiveEngine
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed


class OneBracket(Strategy):
    """A bracket on the session's second bar: 10 AAPL at market, take-profit 120, stop-loss 94
    (the replay of a warm restart repeats it)."""

    def __init__(self) -> None:
        self.bracket = None

    def on_data(self, timestamp, data, context, broker):
        if timestamp == SESSION_OPEN + timedelta(minutes=1):
            self.bracket = broker.submit_bracket("AAPL", 10, take_profit=120.0, stop_loss=94.0)


def run(sim, state_dir, minutes, lines, strategy):
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level="INFO")
    try:
        cfg = config_for(sim)
        broker = AlpacaBroker(cfg, strategy_id="oco", state_dir=state_dir)
        feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=minutes))
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False, settle_timeout=0.5,
                   open_orders_at_end="keep").run()  # fmt: skip
    finally:
        logger.remove(sink)
    return broker


def restarted(tmp_path, bars_away):
    """Run 1 ends with the bracket's entry filled and its exits working as one Alpaca OCO; after
    ``bars_away`` bars while away (4: the stop-loss fills then), run 2 restarts warm and runs on
    (the stop-loss fills in it if it has not). (run 2's broker, its strategy, Alpaca's fills, run 2's log)"""
    sim = SimulatedAlpaca(minute_bars(16, {"AAPL": 100.0}, step=-1.0), config=BacktestConfig(),
                          rate_limit_per_minute=None)  # fmt: skip
    sim.start()
    lines: list[str] = []
    strategy = OneBracket()
    try:
        run(sim, tmp_path, 3, [], OneBracket())
        pair = [(o["order_class"], o["type"], o["status"]) for o in sim.orders() if o["order_class"] == "oco"]
        assert pair == [("oco", "limit", "new"), ("oco", "stop", "new")]
        for _ in range(bars_away):
            TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url).get_clock()
        second = run(sim, tmp_path, 9, lines, strategy)
        venue = sim.fills()
        final = [(o["type"], o["status"]) for o in sim.orders() if o["order_class"] == "oco"]
    finally:
        sim.close()
    assert final == [("limit", "canceled"), ("stop", "filled")]
    return second, strategy, venue, lines


def check_the_stop_loss_filled_once(second, strategy, venue, lines):
    entry, tp, sl = strategy.bracket
    # failed before: the stop-loss was declared lost (REJECTED) and its fill never applied
    assert (entry.status, tp.status, sl.status) == (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.FILLED)
    assert sl.filled_quantity == 10 and "AAPL" not in second.book.positions
    (stop_fill,) = [v for v in venue if v.side == "sell"]
    assert second.book.seen(stop_fill.execution_id)  # under Alpaca's execution id
    assert [(f.order_id, f.quantity, f.price) for f in second.book.fills if f.order_id == sl.order_id] == [
        (sl.order_id, 10, stop_fill.price)]  # fmt: skip
    noise = ("is lost", "foreign", "not placed by this strategy", "HALTED", "looks missing")
    assert not [line for line in lines if any(n in line for n in noise)], lines


def test_the_stop_leg_of_an_oco_working_at_a_restart_stays_the_strategys_and_fills(tmp_path):
    check_the_stop_loss_filled_once(*restarted(tmp_path, bars_away=0))


def test_the_stop_leg_of_an_oco_that_filled_while_away_is_applied_once(tmp_path):
    check_the_stop_loss_filled_once(*restarted(tmp_path, bars_away=4))
