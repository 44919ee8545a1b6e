"""Record the payloads the parsing tests replay: ``.venv/bin/python tests/resources/alpaca/record_payloads.py``.

Drives the simulated Alpaca with the REAL alpaca-py clients in raw mode (``raw_data=True``: the
JSON exactly as received, before pydantic) and writes ``payloads.json``:

* ``rest``: account, positions, orders (filled market, open limit, replaced pair, OCO with legs,
  canceled, rejected), clock, historical bars;
* ``trade_updates``: every ``trade_updates`` message received on the websocket, in order.

The simulated venue emits Alpaca's wire format (money as strings, nanosecond ``Z`` timestamps,
explicit nulls); ``alpaca_docs_examples.json`` next to this file holds payloads transcribed from
Alpaca's documentation for the shapes a simulator might not produce.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "venues" / "alpaca"))

from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)
from alpaca.trading.stream import TradingStream
from alpaca_helpers import SESSION_OPEN, inject, minute_bars

from ml4t_live.bridge import LoopThread
from ml4t_live.sim.alpaca import SimulatedAlpaca


def main() -> None:
    sim = SimulatedAlpaca(minute_bars(10, {"AAPL": 100.0, "MSFT": 200.0}))
    sim.start()
    updates: list[dict] = []
    rejected = threading.Event()
    thread = LoopThread("alpaca", "recorder")
    stream = None
    try:
        rest = TradingClient(
            sim.key_id, sim.secret_key, url_override=sim.base_url, raw_data=True
        )
        data = StockHistoricalDataClient(
            sim.key_id, sim.secret_key, url_override=sim.base_url, raw_data=True
        )

        async def on_update(message: dict) -> None:
            updates.append(message["data"])
            if message["data"]["event"] == "rejected":
                rejected.set()

        async def begin() -> None:
            nonlocal stream
            stream = TradingStream(
                sim.key_id,
                sim.secret_key,
                url_override=sim.trade_stream_url,
                raw_data=True,
            )
            stream.subscribe_trade_updates(on_update)
            thread.spawn(stream._run_forever(), "stream")

        thread.start(begin)
        sim.wait_until(lambda state: state["trade_listeners"] == 1, 5.0)
        out: dict = {"rest": {}, "trade_updates": updates}
        gtc = TimeInForce.GTC
        out["rest"]["submit_market"] = rest.submit_order(
            MarketOrderRequest(
                symbol="AAPL",
                qty=10,
                side=OrderSide.BUY,
                time_in_force=gtc,
                client_order_id="rec-mkt",
            )
        )
        inject(sim, "partial_fill", parts=2)
        rest.submit_order(
            MarketOrderRequest(
                symbol="MSFT",
                qty=4,
                side=OrderSide.BUY,
                time_in_force=gtc,
                client_order_id="rec-part",
            )
        )
        limit = rest.submit_order(
            LimitOrderRequest(
                symbol="AAPL",
                qty=5,
                side=OrderSide.BUY,
                limit_price=50.0,
                time_in_force=gtc,
                client_order_id="rec-lim",
            )
        )
        out["rest"]["replace"] = rest.replace_order_by_id(
            limit["id"],
            ReplaceOrderRequest(qty=6, limit_price=55.0, client_order_id="rec-lim.r1"),
        )
        cancel_me = rest.submit_order(
            LimitOrderRequest(
                symbol="MSFT",
                qty=1,
                side=OrderSide.SELL,
                limit_price=999.0,
                time_in_force=gtc,
                client_order_id="rec-cxl",
            )
        )
        rest.get_clock()  # bar 0: the market orders fill
        rest.cancel_order_by_id(cancel_me["id"])
        out["rest"]["submit_oco"] = rest.submit_order(
            LimitOrderRequest(
                symbol="AAPL",
                qty=10,
                side=OrderSide.SELL,
                time_in_force=gtc,
                client_order_id="rec-oco",
                order_class=OrderClass.OCO,
                take_profit=TakeProfitRequest(limit_price=150.0),
                stop_loss=StopLossRequest(stop_price=80.0),
            )
        )
        inject(sim, "reject_next", reason="recorded rejection")
        rest.submit_order(
            MarketOrderRequest(
                symbol="AAPL",
                qty=1,
                side=OrderSide.BUY,
                time_in_force=gtc,
                client_order_id="rec-rej",
            )
        )
        out["rest"]["clock"] = rest.get_clock()  # bar 1
        if not rejected.wait(5.0):
            raise TimeoutError(
                "the recorded rejection never arrived on the trade stream"
            )
        out["rest"]["account"] = rest.get_account()
        out["rest"]["positions"] = rest.get_all_positions()
        out["rest"]["orders_all"] = rest.get_orders(
            GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True)
        )
        out["rest"]["order_by_client_id"] = rest.get_order_by_client_id("rec-part")
        out["rest"]["bars"] = data.get_stock_bars(
            StockBarsRequest(
                symbol_or_symbols=["AAPL", "MSFT"],
                timeframe=TimeFrame.Minute,
                start=SESSION_OPEN,
                end=SESSION_OPEN + timedelta(minutes=5),
            )
        )
        out["recorded_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        path = Path(__file__).with_name("payloads.json")
        path.write_text(json.dumps(out, indent=1, default=str) + "\n")
        print(f"wrote {path} ({len(updates)} trade updates)")
    finally:
        if stream is not None:

            async def stop() -> None:
                await stream.stop_ws()
                await stream.close()

            thread.close(stop)
        else:
            thread.close()
        sim.close()
        asyncio.set_event_loop(None)


if __name__ == "__main__":
    main()
