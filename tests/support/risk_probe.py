"""One strategy that walks every pre-trade limit: an order at (or just under) each limit, which
leaves, and one just over it, which is refused with that limit's code. The same probe runs in
shadow, against the in-memory venue and through each simulated venue with its real client.
(``OneBracket``: the bracket the order-rate tests send, in shadow and through IB.)

Prices are constant (100) so every number below is exact: the account has 100,000 and no
commission, market orders fill at the next bar's open. CCC trades only on the first two bars
(its price then ages). Each step names the limit it exercises; ``None`` = the order leaves.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from ml4t.backtest import OrderSide, OrderType, Strategy

RISK = {
    "max_order_quantity": 200,
    "max_order_notional": 12_000,
    "max_position_notional": 20_000,
    "max_gross_exposure": 0.3,
    "max_open_orders": 2,
    "max_orders_per_minute": 60,  # burst: ceil(60 / 6) = 10 in any second
    "price_collar": 0.05,
    "max_data_age": "90s",
    "allow_short": False,
}
N_BARS = 8

BUY, SELL = OrderSide.BUY, OrderSide.SELL
LMT = OrderType.LIMIT
#: bar -> [(label, asset, side, quantity, limit price or None, expected refusal code or None)]
STEPS = {
    1: [("qty+notional at", "AAA", BUY, 120, None, None),            # 12,000 = max_order_notional
        ("notional over", "AAA", BUY, 121, None, "max_order_notional"),
        ("quantity over", "AAA", BUY, 201, None, "max_order_quantity")],
    2: [("working limit", "BBB", BUY, 100, 96.0, None),               # 4% away, does not fill
        ("collar over", "BBB", BUY, 1, 94.9, "price_collar"),        # 5.1% away
        ("collar at", "BBB", BUY, 1, 95.0, None),                    # 5% away
        ("open orders over", "CCC", BUY, 1, None, "max_open_orders")],  # 2 working + 1
    3: [("position under", "AAA", BUY, 70, None, None),              # 120 + 70 = 190 -> 19,000
        ("position over", "AAA", BUY, 11, None, "max_position_notional")],  # 201 -> 20,100
    4: [("gross under", "BBB", BUY, 109, None, None),                # 19,000 + 10,900 = 29,900
        ("gross over", "BBB", BUY, 2, None, "max_gross_exposure")],  # 19,000 + 11,100 > 30,000
    5: [("data age over", "CCC", BUY, 1, None, "max_data_age"),      # CCC's price is 3 minutes old
        ("short over", "AAA", SELL, 191, None, "allow_short"),       # 190 - 191 = -1
        ("reduce all", "AAA", SELL, 190, None, None)],               # reducing: exempt
    6: [(f"burst {i}", "BBB", SELL, 1, None, None) for i in range(1, 11)]
       + [("burst over", "BBB", SELL, 1, None, "max_orders_per_minute")],  # the 11th in one second
}  # fmt: skip


def probe_bars(start: datetime, *, ccc_ages: bool = True) -> pl.DataFrame:
    """``ccc_ages=False``: CCC has a bar every minute too (IB streams a bar for every subscribed
    symbol each interval, traded or not, so a price there does not age while the feed is up)."""
    rows = []
    for i in range(N_BARS):
        ts = start + timedelta(minutes=i)
        for asset in ("AAA", "BBB", "CCC") if i < 2 or not ccc_ages else ("AAA", "BBB"):
            rows.append({"timestamp": ts, "asset": asset, "open": 100.0, "high": 100.0, "low": 100.0,
                         "close": 100.0, "volume": 1_000_000.0})  # fmt: skip
    return pl.DataFrame(rows)


class RiskProbe(Strategy):
    def __init__(self) -> None:
        self.n = 0
        self.orders: dict[str, object] = {}

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 3:  # the two working BBB limits go: the open-order count is back at 0
            for label in ("working limit", "collar at"):
                broker.cancel_order(self.orders[label].order_id)
        for label, asset, side, quantity, limit, _ in STEPS.get(self.n, []):
            kind = {"order_type": LMT, "limit_price": limit} if limit is not None else {}
            self.orders[label] = broker.submit_order(asset, quantity, side, **kind)


class OneBracket(Strategy):
    """One bracket on the first bar (a market entry with its take-profit and stop-loss)."""

    def __init__(self) -> None:
        self.n = 0
        self.bracket = None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            self.bracket = broker.submit_bracket("AAA", 10, take_profit=104.0, stop_loss=97.0)


def outcomes(strategy: RiskProbe) -> dict[str, str | None]:
    """label -> the refusal code (None when the order left)."""
    result = {}
    for label, order in strategy.orders.items():
        result[label] = order.rejection_code if order.rejection_code else None
    return result


def expected(*, ccc_ages: bool = True) -> dict[str, str | None]:
    codes = {label: code for steps in STEPS.values() for label, *_, code in steps}
    if not ccc_ages:  # a fresh CCC price: the order is judged on the other limits, and passes them
        codes["data age over"] = None
    return codes
