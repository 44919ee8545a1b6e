"""Deterministic client order ids: the same decision always gets the same id.

An id is ``<strategy id>-<journal generation>-<bar>-<asset>-<b|s><seq>``: derived from the
strategy id (part of every id, so two strategies on one account never share one), the journal's
generation (a fresh journal never reuses an old journal's ids), the bar's timestamp, the asset, the
side and the sequence within the bar. A restarted process that re-makes the same decision on the
same bar produces the same id, and the venue (IB ``orderRef``, Alpaca ``client_order_id``) can
tell us it already has it. Ids are never truncated (a cut could merge two ids).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ml4t.backtest import OrderSide

#: Alpaca accepts at most 128 characters; IB's orderRef is longer.
MAX_LENGTH = 128
_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")
#: what follows the strategy prefix in a runtime id: ``<generation>-r<n>.<k>-`` (a generation has no "-")
_RUNTIME = re.compile(r"[^-]*-r\d+\.\d+-")


def sanitize(text: str, limit: int) -> str:
    return _UNSAFE.sub("_", text)[:limit] or "x"


class ClientOrderIds:
    """Makes ``<strategy>-<generation>-<bar>-<asset>-<b|s><seq>`` ids, one sequence per bar."""

    def __init__(self, strategy_id: str, generation: str) -> None:
        self.start(strategy_id, generation)
        self._bar: str = "start"
        self._seq = 0

    def start(self, strategy_id: str, generation: str) -> None:
        """The identity is known (the journal is open): ids from now on carry it."""
        self.strategy_prefix = f"{sanitize(strategy_id, 20)}-"
        self.prefix = f"{self.strategy_prefix}{sanitize(generation, 12)}-"

    def new_bar(self, timestamp: Any) -> None:
        self._bar = bar_tag(timestamp)
        self._seq = 0

    def next(self, asset: str, side: OrderSide) -> str:
        self._seq += 1
        side_tag = "b" if side is OrderSide.BUY else "s"
        cid = f"{self.prefix}{self._bar}-{sanitize(asset, 24)}-{side_tag}{self._seq}"
        if len(cid) > MAX_LENGTH:
            raise ValueError(f"client order id {cid!r} is longer than {MAX_LENGTH} characters")
        return cid

    def runtime(self, asset: str, side: OrderSide, key: tuple[int, int]) -> str:
        """An order the runtime places itself (the operator's flatten): named by its journal
        command key ``(n, -k)``, which no other command has, so never an id of the strategy's."""
        side_tag = "b" if side is OrderSide.BUY else "s"
        return f"{self.prefix}r{key[0]}.{-key[1]}-{sanitize(asset, 24)}-{side_tag}"

    def is_runtime(self, client_order_id: str) -> bool:
        """True for an order the runtime placed itself (``runtime``; any journal generation)."""
        rest = client_order_id[len(self.strategy_prefix):] if self.is_ours(client_order_id) else ""
        return _RUNTIME.match(rest) is not None

    def is_ours(self, client_order_id: str) -> bool:
        """True for an id made with this strategy id (any journal generation)."""
        return client_order_id.startswith(self.strategy_prefix)


def bar_tag(timestamp: Any) -> str:
    if isinstance(timestamp, datetime):
        return timestamp.strftime("%Y%m%dT%H%M%S")
    return sanitize(str(timestamp), 20)
