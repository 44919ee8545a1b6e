"""The per-order limits' current use, for ``status``: :func:`limit_usage`, which
:meth:`~.limits.PreTradeRisk.usage` calls with what it reads.

A report, read once per commit (not per order): it may read every asset's view.
"""

from __future__ import annotations

from .config import RiskConfig
from .exposure import Exposure
from .rate import OrderRate

#: the limits that are not per order (the trading state's, shown by ``TradingState.usage``)
_NOT_PER_ORDER = ("max_daily_loss", "max_drawdown", "max_strategy_errors")


def limit_usage(config: RiskConfig, exposure: Exposure, rate: OrderRate, age_unknown: bool, *, now: float,
                equity: float, open_orders: int | None) -> list[tuple[str, str, str]]:  # fmt: skip
    """(limit, configured, current use) for every per-order limit, for ``status``;
    ``open_orders`` None: before the run's first bar (the limits configured, no use yet).
    ``age_unknown``: no price's age is known (:attr:`~.limits.PreTradeRisk.age_unknown`)."""
    c = config
    if open_orders is None:
        return [(name, text, "no bar yet") for name, text in c.describe() if name not in _NOT_PER_ORDER]
    if c.max_gross_exposure is None:
        ratio = "not followed (no limit)"  # prices are kept only for the priced limits
    else:
        gross = exposure.gross
        ratio = f"{gross / equity:.2f}x ({gross:,.2f})" if equity > 0 else f"({gross:,.2f}, equity {equity:,.2f})"
    current = {"max_open_orders": str(open_orders),
               "max_orders_per_minute": f"{rate.in_last_minute(now)} in the last 60 s",
               "max_gross_exposure": ratio}  # fmt: skip
    if c.max_position_notional is not None:
        current["max_position_notional"] = _largest_position(exposure)
    if c.max_data_age is not None:
        current["max_data_age"] = _oldest_price(exposure, age_unknown, now)
    return [(name, text, current.get(name, "per order")) for name, text in c.describe()
            if name not in _NOT_PER_ORDER]  # fmt: skip


def _largest_position(exposure: Exposure) -> str:
    """The largest position's notional now (the limit's use; a report, once per commit: it
    reads every asset's view)."""
    largest, unpriced = None, []
    for asset, view in exposure.assets.items():
        if not view.quantity:
            continue
        price = exposure.price(asset)
        if price is None:
            unpriced.append(asset)
            continue
        notional = abs(view.quantity * price * view.multiplier)
        if largest is None or notional > largest[1]:
            largest = (asset, notional)
    text = f"largest {largest[0]} {largest[1]:,.2f}" if largest else "no priced position"
    return text + (f"; no price for {', '.join(sorted(unpriced))}" if unpriced else "")


def _oldest_price(exposure: Exposure, age_unknown: bool, now: float) -> str:
    """How old the prices of what the strategy holds or has working are now: the oldest
    of them, and any without a price time (a report, once per commit: it reads those
    assets' price times; each distinct time is converted once). Holding nothing: the age of
    the last bar's prices."""
    if age_unknown:
        return "unknown (the last bar's arrival was not journaled)"
    seconds = {}
    oldest, unknown = None, []
    for asset in sorted(exposure.assets):
        view = exposure.assets[asset]
        if not (view.quantity or view.working_buy or view.working_sell):
            continue
        bar = exposure._bar
        as_of = exposure._bar_as_of if bar is not None and asset in bar else exposure.price_times.get(asset)
        if as_of is None:
            unknown.append(asset)
            continue
        key = id(as_of)
        if key not in seconds:
            seconds[key] = exposure.to_seconds(as_of)
        if oldest is None or seconds[key] < oldest[1]:
            oldest = (asset, seconds[key])
    missing = f"no price time for {', '.join(unknown)}"
    if oldest is not None:
        return f"oldest held {oldest[0]} {max(now - oldest[1], 0.0):,.1f} s" + (f"; {missing}" if unknown else "")
    if unknown:
        return missing
    if exposure._bar_as_of is not None:
        return f"last bar {max(now - exposure.to_seconds(exposure._bar_as_of), 0.0):,.1f} s"
    return "no price yet"
