"""A strategy whose live-vs-backtest differences are known by construction (tests/reports)."""

from ml4t.backtest import Strategy
from ml4t.backtest.risk import StopLoss


class KnownDifferences(Strategy):
    """Scripted by the bar's minute (not by fills), so every live/backtest difference is known."""

    def __init__(self):
        self.first = None

    def on_start(self, broker):
        broker.set_position_rules(StopLoss(pct=0.02), asset="AAPL")

    def on_data(self, timestamp, data, context, broker):
        self.first = self.first or timestamp
        minute = int((timestamp - self.first).total_seconds() // 60)
        if minute == 0:
            broker.submit_order("MSFT", 10)   # the venue rejects it
            broker.submit_order("AAPL", 10)   # stopped out at minute 5
        elif minute == 2:
            broker.submit_order("MSFT", 5)    # on a catch-up bar (IB) / filled (Alpaca)
        elif minute == 7:
            broker.submit_order("MSFT", 10)   # partially filled when the run ends


class BuysOnMinutes(Strategy):
    """Buys 1 MSFT on minutes 1, 3 and 4 of the session (an outage makes 3 and 4 catch-up bars)."""

    def __init__(self):
        self.first = None

    def on_data(self, timestamp, data, context, broker):
        self.first = self.first or timestamp
        if int((timestamp - self.first).total_seconds() // 60) in (1, 3, 4):
            broker.submit_order("MSFT", 1)
