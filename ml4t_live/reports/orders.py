"""Orders and fills as plain records, and the one-to-one matching of live and backtest orders.

A decision is identified by what the strategy did, not by ids (the venue's client order ids and
the backtest's ``ORD-n`` differ): the bar it was made on (``created_at``), the asset, the side,
and its place among that bar's orders for the asset and side (the trailing sequence number of
both id schemes). Orders with the same key are paired in that order; what is left over on either
side is a decision only one run made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..quantities import EPS

_SEQ = re.compile(r"(\d+)$")


@dataclass
class OrderRecord:
    """One order with its fills summed up."""

    order_id: str
    asset: str
    side: str
    created_at: Any
    quantity: float
    status: str
    order_type: str = "market"
    limit_price: float | None = None
    stop_price: float | None = None
    rejection_reason: str | None = None
    rejection_code: str | None = None
    filled: float = 0.0
    notional: float = 0.0
    commission: float = 0.0
    fill_times: list[Any] = field(default_factory=list)
    exit_reason: str = ""
    #: (timestamp, quantity, price) of each fill
    parts: list[tuple[Any, float, float]] = field(default_factory=list)

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "buy" else -1.0

    @property
    def price(self) -> float | None:
        """Volume-weighted fill price (None when nothing filled)."""
        return self.notional / self.filled if self.filled > EPS else None

    @property
    def first_fill(self) -> Any:
        return self.fill_times[0] if self.fill_times else None

    @property
    def last_fill(self) -> Any:
        return self.fill_times[-1] if self.fill_times else None

    @property
    def key(self) -> tuple[Any, str, str]:
        return (self.created_at, self.asset, self.side)

    @property
    def seq(self) -> int:
        found = _SEQ.search(self.order_id)
        return int(found.group(1)) if found else 0


def _value(row: dict[str, Any], name: str, default: Any = None) -> Any:
    value = row.get(name, default)
    return default if value is None else value


def order_records(orders: pl.DataFrame, fills: pl.DataFrame) -> list[OrderRecord]:
    """One record per order id (the last row written wins: an order recorded again after a late
    fill), with its fills; fills of an order missing from ``orders`` get a record of their own."""
    records: dict[str, OrderRecord] = {}
    if orders.height:
        for row in orders.unique(subset="order_id", keep="last", maintain_order=True).iter_rows(named=True):
            records[row["order_id"]] = OrderRecord(
                order_id=str(row["order_id"]), asset=str(row["asset"]), side=str(row["side"]),
                created_at=row.get("created_at"), quantity=float(_value(row, "quantity", 0.0)),
                status=str(_value(row, "status", "")), order_type=str(_value(row, "order_type", "market")),
                limit_price=row.get("limit_price"), stop_price=row.get("stop_price"),
                rejection_reason=row.get("rejection_reason"), rejection_code=row.get("rejection_code"),
            )  # fmt: skip
    if fills.height:
        for row in fills.sort("timestamp", maintain_order=True).iter_rows(named=True):
            oid = str(row["order_id"])
            record = records.get(oid)
            if record is None:
                record = records[oid] = OrderRecord(oid, str(row["asset"]), str(row["side"]),
                                                    row["timestamp"], 0.0, "filled")  # fmt: skip
            quantity = float(row["quantity"])
            record.filled += quantity
            record.notional += quantity * float(row["price"])
            record.commission += float(_value(row, "commission", 0.0))
            record.fill_times.append(row["timestamp"])
            record.parts.append((row["timestamp"], quantity, float(row["price"])))
            record.exit_reason = record.exit_reason or str(_value(row, "exit_reason", ""))
    return list(records.values())


@dataclass
class Matched:
    """Live and backtest orders paired one to one, and the decisions only one side made."""

    pairs: list[tuple[OrderRecord, OrderRecord]]
    live_only: list[OrderRecord]
    backtest_only: list[OrderRecord]


def match_orders(live: list[OrderRecord], backtest: list[OrderRecord]) -> Matched:
    """Pair orders by (bar, asset, side) and their sequence within it."""
    groups: dict[tuple, tuple[list[OrderRecord], list[OrderRecord]]] = {}
    for side, records in ((0, live), (1, backtest)):
        for record in records:
            groups.setdefault(_hashable(record.key), ([], []))[side].append(record)
    pairs, live_only, backtest_only = [], [], []
    for left, right in groups.values():
        left.sort(key=lambda r: r.seq)
        right.sort(key=lambda r: r.seq)
        pairs.extend(zip(left, right, strict=False))
        live_only.extend(left[len(right):])
        backtest_only.extend(right[len(left):])
    pairs.sort(key=lambda p: (_sortable(p[1].created_at), p[1].seq))
    live_only.sort(key=lambda r: (_sortable(r.created_at), r.seq))
    backtest_only.sort(key=lambda r: (_sortable(r.created_at), r.seq))
    return Matched(pairs, live_only, backtest_only)


def _hashable(key: tuple) -> tuple:
    created, asset, side = key
    return (None if created is None else str(created), asset, side)


def _sortable(value: Any) -> str:
    return "" if value is None else str(value)
