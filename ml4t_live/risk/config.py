"""The ``[risk]`` table of a session file: :class:`RiskConfig`.

Every key is optional. A key that is absent means *no limit*, except these safe defaults:

============================  ===========================================================
``max_orders_per_minute``     **3,000** (a burst cap of 500 in any second). A guard against a
                              strategy stuck in a loop inside one ``on_data``, not a pace:
                              a 500-asset rebalance in one bar still leaves, so a replay
                              without a ``[risk]`` table fills as the backtest does unless a
                              bar sends more than 500 orders. Set your own number (e.g. 60)
                              for a strategy that should never send many.
``max_strategy_errors``       **5** consecutive ``on_data`` errors -> HALTED. Under
                              ``error_policy = "log"`` a strategy that keeps raising has a
                              half-updated state that must not keep trading; it stays
                              running (warm) so ``ml4t-live resume`` continues after a look.
``allow_short``               **the backtest config's** ``allow_short_selling`` (False unless
                              the user set it), passed by the caller as
                              ``allow_short_default``: a strategy that never shorted in its
                              backtest must not start shorting live because of a bug.
============================  ===========================================================

A user's typo must never be silently ignored: an unknown key, a wrong type, a zero or
negative value is a :class:`~ml4t_live.errors.ConfigError` naming the key and the accepted
form. ``-`` and ``_`` are interchangeable in key names, as in the rest of the session file.

The per-second burst cap is derived: ``ceil(max_orders_per_minute / 6)`` orders in any one
second (a minute's budget cannot be spent in less than ten seconds).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ml4t_live.errors import ConfigError

DEFAULT_MAX_ORDERS_PER_MINUTE = 3_000
DEFAULT_MAX_STRATEGY_ERRORS = 5

_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_DURATION_FORM = (
    'seconds (a positive number, e.g. 90) or text like "90s", "2m", "1h", "1h30m" (units s, m, h, d)'
)


def parse_duration(value: Any, key: str = "duration") -> float:
    """``90`` / ``90.0`` / ``"90s"`` / ``"2m"`` / ``"1h30m"`` -> seconds (> 0)."""
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be {_DURATION_FORM}, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text and _DURATION_PART.sub("", text).strip() == "" and _DURATION_PART.search(text):
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
        else:
            try:
                seconds = float(text)
            except ValueError:
                raise ConfigError(f"{key} must be {_DURATION_FORM}, got {value!r}") from None
    else:
        raise ConfigError(f"{key} must be {_DURATION_FORM}, got {type(value).__name__} {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{key} must be {_DURATION_FORM} greater than zero, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """The pre-trade limits and trading-state triggers (None = no limit)."""

    max_order_notional: float | None = None  # per order, account currency
    max_order_quantity: float | None = None  # per order, shares / contracts / coins
    max_position_notional: float | None = None  # per asset, after the order
    max_gross_exposure: float | None = None  # x equity, after the order
    max_open_orders: int | None = None
    max_orders_per_minute: int | None = DEFAULT_MAX_ORDERS_PER_MINUTE
    price_collar: float | None = None  # |limit or stop - last| / last
    max_daily_loss: float | None = None  # account currency -> REDUCING
    max_drawdown: float | None = None  # fraction of the high-water equity -> REDUCING
    max_data_age: float | None = None  # seconds
    max_strategy_errors: int | None = DEFAULT_MAX_STRATEGY_ERRORS  # consecutive -> HALTED
    allow_short: bool = False

    @property
    def max_orders_per_second(self) -> int | None:
        """The burst cap: ``ceil(max_orders_per_minute / 6)``."""
        per_minute = self.max_orders_per_minute
        return None if per_minute is None else math.ceil(per_minute / 6)

    @classmethod
    def from_table(
        cls, table: Mapping[str, Any] | RiskConfig | None, *, allow_short_default: bool = False, where: str = "[risk]"
    ) -> RiskConfig:
        """Read a TOML ``[risk]`` table; every problem is a ConfigError naming the key. A
        RiskConfig given instead of a table is taken as it is."""
        if isinstance(table, RiskConfig):
            return table
        if table is None:
            table = {}
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table of limits, got {type(table).__name__}")
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {"allow_short": bool(allow_short_default)}
        spelled: dict[str, Any] = {}
        for raw_key, value in table.items():
            key = str(raw_key).replace("-", "_")
            if key not in known:
                raise ConfigError(
                    f"unknown key {raw_key!r} in {where}; known keys: {', '.join(sorted(known))}"
                )
            if key in spelled:  # "-" and "_" are one key: which of the two values was meant?
                raise ConfigError(f"{where} {key} is given twice, as {spelled[key]!r} and {raw_key!r}; keep one")
            spelled[key] = raw_key
            values[key] = _READERS[key](f"{where} {key}", value)
        return cls(**values)

    def describe(self) -> list[tuple[str, str]]:
        """(key, limit as text) for every key, ``"none"`` where there is no limit."""
        rows = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                text = "none"
            elif f.name == "max_orders_per_minute":
                text = f"{value} (burst {self.max_orders_per_second}/s)"
            elif f.name == "max_data_age":
                text = f"{value:g}s"
            else:
                text = str(value).lower() if isinstance(value, bool) else f"{value:,g}"
            rows.append((f.name, text))
        return rows


# -- readers: (label, value) -> checked value ----------------------------------------------
def _positive_number(label: str, value: Any) -> float:
    form = "a number greater than zero"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{label} must be {form}, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{label} must be {form}, got {value!r}")
    return float(value)


def _positive_int(label: str, value: Any) -> int:
    form = "a whole number greater than zero"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{label} must be {form}, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ConfigError(f"{label} must be {form}, got {value!r}")
    return value


def _fraction(label: str, value: Any) -> float:
    form = "a fraction in (0, 1], e.g. 0.05 for 5%"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{label} must be {form}, got {type(value).__name__} {value!r}")
    if not 0 < value <= 1:
        raise ConfigError(f"{label} must be {form}, got {value!r}")
    return float(value)


def _boolean(label: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{label} must be true or false, got {type(value).__name__} {value!r}")
    return value


_READERS = {
    "max_order_notional": _positive_number,
    "max_order_quantity": _positive_number,
    "max_position_notional": _positive_number,
    "max_gross_exposure": _positive_number,
    "max_open_orders": _positive_int,
    "max_orders_per_minute": _positive_int,
    "price_collar": _fraction,
    "max_daily_loss": _positive_number,
    "max_drawdown": _fraction,
    "max_data_age": lambda label, value: parse_duration(value, label),
    "max_strategy_errors": _positive_int,
    "allow_short": _boolean,
}
