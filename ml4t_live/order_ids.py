"""Deterministic client order ids: the same decision always gets the same id.

An id is derived from (strategy id, session id, bar timestamp, asset, side, sequence within the
bar), so a restarted process that re-makes the same decision on the same bar produces the same
id, and the venue (IB ``orderRef``, Alpaca ``client_order_id``) can tell us it already has it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ml4t.backtest import OrderSide

#: Alpaca accepts at most 128 characters; IB's orderRef is longer. Stay well below.
MAX_LENGTH = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")


def sanitize(text: str, limit: int) -> str:
    return _UNSAFE.sub("_", text)[:limit] or "x"


class ClientOrderIds:
    """Makes ``<strategy>-<session>-<bar>-<asset>-<b|s><seq>`` ids, one sequence per bar."""

    def __init__(self, strategy_id: str, session_id: str) -> None:
        self.strategy_prefix = f"{sanitize(strategy_id, 16)}-"
        self.prefix = f"{self.strategy_prefix}{sanitize(session_id, 12)}-"
        self._bar: str = "start"
        self._seq = 0

    def new_bar(self, timestamp: Any) -> None:
        self._bar = bar_tag(timestamp)
        self._seq = 0

    def next(self, asset: str, side: OrderSide) -> str:
        self._seq += 1
        side_tag = "b" if side is OrderSide.BUY else "s"
        return f"{self.prefix}{self._bar}-{sanitize(asset, 12)}-{side_tag}{self._seq}"[:MAX_LENGTH]

    def is_ours(self, client_order_id: str) -> bool:
        """True for any order this strategy placed, in this session or an earlier one."""
        return client_order_id.startswith(self.strategy_prefix)


def bar_tag(timestamp: Any) -> str:
    if isinstance(timestamp, datetime):
        return timestamp.strftime("%Y%m%dT%H%M%S")
    return sanitize(str(timestamp), 20)
