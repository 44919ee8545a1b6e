"""Opt-in: the adapter against a REAL Alpaca paper account (never run by default).

    ML4T_LIVE_PAPER=1 APCA_API_KEY_ID=... APCA_API_SECRET_KEY=... \\
        .venv/bin/python -m pytest tests/venues/alpaca/test_alpaca_paper.py -m paper

Places one far-away limit order (buy 1 AAPL at $1, DAY) and cancels it; reads one historical bar.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from alpaca_helpers import collect, of
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import OrderAccepted, OrderCancelled
from ml4t_live.protocols import OrderRequest
from ml4t_live.venues.alpaca.config import AlpacaConfig
from ml4t_live.venues.alpaca.gateway import AlpacaGateway
from ml4t_live.venues.alpaca.rest import AlpacaStockDataClient

pytestmark = [
    pytest.mark.paper,
    pytest.mark.skipif(
        os.environ.get("ML4T_LIVE_PAPER") != "1",
        reason="opt-in: set ML4T_LIVE_PAPER=1 and the APCA_API_* paper keys",
    ),
]


def test_a_paper_account_connects_takes_a_far_limit_order_and_cancels_it():
    gateway = AlpacaGateway(
        AlpacaConfig(), is_ours=lambda cid: cid.startswith("ml4t-paper-")
    )
    snapshot = gateway.connect()
    try:
        assert snapshot.is_paper and snapshot.account_id.startswith("PA")
        cid = f"ml4t-paper-{uuid4().hex[:12]}"
        gateway.place(
            OrderRequest(
                cid,
                "AAPL",
                OrderSide.BUY,
                1,
                OrderType.LIMIT,
                limit_price=1.0,
                time_in_force="day",
            )
        )
        collect(gateway.events, lambda s: bool(of(OrderAccepted, s, cid)), timeout=30)
        gateway.cancel(cid)
        collect(gateway.events, lambda s: bool(of(OrderCancelled, s, cid)), timeout=30)
    finally:
        gateway.close()


def test_historical_minute_bars_are_labelled_by_their_start():
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame

    client = AlpacaStockDataClient(AlpacaConfig())
    end = datetime.now(UTC) - timedelta(days=1)
    bars = client.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="AAPL",
            timeframe=TimeFrame.Minute,
            start=end - timedelta(days=5),
            end=end,
            feed="iex",
        )
    )
    first = bars.data["AAPL"][0]
    assert first.timestamp.second == 0 and first.timestamp.tzinfo is not None
