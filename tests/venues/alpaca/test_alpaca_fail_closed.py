"""The Alpaca adapter fails closed on connect: an account Alpaca reports as blocked for trading, or
account state it cannot read, raises ReconciliationError saying why, and no order reaches the
venue. Through the real alpaca-py client against the simulated Alpaca (``account_state``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alpaca_helpers import SESSION_OPEN, config_for, minute_bars
from ml4t.backtest import BacktestConfig, OrderSide, Strategy

from ml4t_live import LiveEngine
from ml4t_live.errors import ConnectionFailed, ReconciliationError
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca import AlpacaBroker, AlpacaFeed
from ml4t_live.venues.alpaca.gateway import AlpacaGateway

N_BARS = 5
BLOCKING = ["trading_blocked", "account_blocked", "trade_suspended_by_user"]


def started(account_state: dict) -> SimulatedAlpaca:
    sim = SimulatedAlpaca(
        minute_bars(N_BARS, {"AAPL": 100.0}),
        rate_limit_per_minute=None,
        account_state=account_state,
    )
    sim.start()
    return sim


class BuyEveryBar(Strategy):
    def __init__(self) -> None:
        self.bars = 0

    def on_data(self, timestamp, data, context, broker):
        self.bars += 1
        broker.submit_order("AAPL", 1, OrderSide.BUY)


@pytest.mark.parametrize("flag", BLOCKING)
def test_connect_refuses_an_account_blocked_for_trading(flag):
    sim = started({flag: True})
    try:
        gw = AlpacaGateway(config_for(sim), is_ours=lambda cid: True)
        try:
            with pytest.raises(ReconciliationError) as caught:
                gw.connect()
            # a refused gateway keeps refusing: nothing can be placed through it
            with pytest.raises(ConnectionFailed, match="not connected"):
                gw.place(OrderRequest("t-1", "AAPL", OrderSide.BUY, 1))
        finally:
            gw.close()
        state = sim.state()
        orders = sim.orders()
    finally:
        sim.close()
    message = str(caught.value)
    account = message.split()[2]
    assert message == (
        f"Alpaca account {account} is blocked for trading ({flag}); refusing to start"
    )
    assert account.startswith("PA")
    assert state["trade_listeners"] == 0  # refused before the trade stream was opened
    assert orders == []


def test_the_engine_refuses_to_trade_a_blocked_account_and_sends_no_order():
    sim = started({"trading_blocked": True, "trade_suspended_by_user": True})
    strategy = BuyEveryBar()
    try:
        cfg = config_for(sim)
        broker = AlpacaBroker(cfg, strategy_id="blocked")
        feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=N_BARS))
        engine = LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False)
        with pytest.raises(ReconciliationError) as caught:
            engine.run()
        received = sim.orders_received()
        orders = sim.orders()
    finally:
        sim.close()
    assert "blocked for trading (trading_blocked, trade_suspended_by_user)" in str(caught.value)
    assert strategy.bars == 0
    assert received == [] and orders == []


def test_a_flag_that_does_not_stop_orders_does_not_stop_trading():
    """Control: transfers_blocked is reported too, but Alpaca still takes orders, so we trade."""
    sim = started({"transfers_blocked": True})
    strategy = BuyEveryBar()
    try:
        cfg = config_for(sim)
        broker = AlpacaBroker(cfg, strategy_id="transfers")
        feed = AlpacaFeed(cfg, ["AAPL"], end=SESSION_OPEN + timedelta(minutes=N_BARS))
        LiveEngine(strategy, broker, feed, config=BacktestConfig(), session_dir=False).run()
        received = sim.orders_received()
    finally:
        sim.close()
    assert strategy.bars == N_BARS
    assert len(received) == N_BARS


def test_account_state_that_cannot_be_read_is_a_reconciliation_error():
    sim = started({})
    try:
        gw = AlpacaGateway(config_for(sim, max_request_attempts=1, rate_limit_patience=0))
        try:
            gw.connect()
            sim.inject("rate_limit_storm", count=1)  # the next request (the account) gets 429
            with pytest.raises(ReconciliationError) as caught:
                gw.snapshot()
        finally:
            gw.close()
    finally:
        sim.close()
    message = str(caught.value)
    assert message.startswith("cannot read the Alpaca account state: Alpaca account failed")
    assert "HTTP 429" in message


@pytest.mark.parametrize("status", ["ACCOUNT_CLOSED", "INACTIVE", "ONBOARDING"])
def test_connect_refuses_an_account_that_is_not_active(status):
    sim = started({"status": status})
    try:
        gw = AlpacaGateway(config_for(sim), is_ours=lambda cid: True)
        try:
            with pytest.raises(ReconciliationError, match=f"is not active \\(status {status}\\)"):
                gw.connect()
        finally:
            gw.close()
        assert sim.orders() == []
    finally:
        sim.close()
