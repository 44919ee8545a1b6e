"""Orders and fills buffered as objects are written as the row-by-row conversion would write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from ml4t.backtest import BacktestConfig, DataFeed, Engine, Fill, OrderSide, Strategy

from ml4t_live.session import SessionWriter, fill_row, order_row
from tests.support.market import make_prices


class _Churn(Strategy):
    """Market, limit (some never filled), and a sell of what is not held (rejected)."""

    def __init__(self) -> None:
        self.bar = 0

    def on_data(self, timestamp, data, context, broker):
        self.bar += 1
        for asset, bar in data.items():
            if self.bar % 3 == 0:
                broker.submit_order(asset, 5)
            elif self.bar % 3 == 1:
                broker.submit_order(asset, 2, limit_price=bar["close"] * (0.5 if self.bar % 2 else 1.01))
            if self.bar == 7:
                broker.submit_order(asset, -1e9)
        if self.bar % 10 == 0:
            for order in list(broker.pending_orders):
                broker.cancel_order(order.order_id)


def _expected(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, strict=False)


@pytest.mark.parametrize("zone", [UTC, ZoneInfo("UTC"), ZoneInfo("America/New_York"), None])
def test_orders_and_fills_are_written_as_their_rows(tmp_path, zone):
    prices = make_prices(60, ["AAA", "BBB", "CCC"])
    if zone is None:
        prices = prices.with_columns(pl.col("timestamp").dt.replace_time_zone(None))
    elif zone is not UTC:
        prices = prices.with_columns(pl.col("timestamp").dt.convert_time_zone(str(zone)))
    engine = Engine(DataFeed(prices_df=prices), _Churn(), BacktestConfig(initial_cash=1e7, calendar=None))
    result = engine.run()
    orders = list(engine.broker.orders)
    assert {o.status.value for o in orders} >= {"filled", "rejected", "cancelled"}
    writer = SessionWriter.at(tmp_path, flush_rows=50)  # several parts each
    writer.add_orders(orders)
    writer.add_fills(result.fills)
    writer.close()
    for name, expected in (("orders", _expected([order_row(o) for o in orders])),
                           ("fills", _expected([fill_row(f) for f in result.fills]))):  # fmt: skip
        written = pl.read_parquet(tmp_path / f"{name}.parquet")
        assert written.height == expected.height > 50
        assert written.schema == expected.schema, name
        assert written.equals(expected), name


def test_timestamps_in_different_zones_in_one_column_are_left_to_polars(tmp_path):
    start = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    fills = [Fill("o1", "AAA", OrderSide.BUY, 1.0, 100.0, start),
             Fill("o2", "AAA", OrderSide.SELL, 1.0, 101.0, start.astimezone(timezone(timedelta(hours=-5))))]  # fmt: skip
    writer = SessionWriter.at(tmp_path)
    writer.add_fills(fills)
    writer.close()
    written = pl.read_parquet(tmp_path / "fills.parquet")
    assert written.equals(_expected([fill_row(f) for f in fills]))


def test_a_buffered_order_is_its_recorded_values_not_the_object(tmp_path):
    """The writer keeps no finished ``Order`` alive until its spill (a venue broker packs its
    finished orders; a fast replay buffers up to ``flush_rows`` of them): what it writes is
    what the order was when recorded."""
    import gc
    import weakref

    from ml4t.backtest import Order, OrderStatus

    start = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    order = Order("AAA", OrderSide.BUY, 3.0, order_id="o1", created_at=start)
    order.status, order.filled_quantity, order.filled_price, order.filled_at = (
        OrderStatus.FILLED, 3.0, 101.5, start)  # fmt: skip
    expected = _expected([order_row(order)])
    writer = SessionWriter.at(tmp_path, spill_seconds=None)
    writer.add_orders([order])
    held = weakref.ref(order)
    del order
    gc.collect()
    assert held() is None
    writer.close()
    assert pl.read_parquet(tmp_path / "orders.parquet").equals(expected)
