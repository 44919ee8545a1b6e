"""Client-side position rules (StopLoss, TakeProfit, TrailingStop ...) for venue brokers.

The rules are ml4t.backtest's own objects; this module only feeds them the same
``PositionState`` the backtest builds and turns their verdict into an exit order. The backtest
fills a triggered exit inside the bar at the stop level; a venue can only act after the bar has
closed, so live the exit is a MARKET order that fills at the venue's next price (a documented
divergence). Water marks are updated at the end of each bar from the close, as the backtest's
default (``trail_hwm_source=CLOSE``) does.
"""

from __future__ import annotations

from typing import Any

from ml4t.backtest import Position
from ml4t.backtest.risk.types import ActionType, PositionState


class PositionRules:
    """Global and per-asset rules; ``exits`` says what to sell before ``on_data``."""

    def __init__(self) -> None:
        self.global_rules: Any = None
        self.by_asset: dict[str, Any] = {}

    def set(self, rules: Any, asset: str | None = None) -> None:
        if asset is None:
            self.global_rules = rules
        else:
            self.by_asset[asset] = rules

    def rules_for(self, asset: str) -> Any:
        return self.by_asset.get(asset, self.global_rules)

    def exits(
        self, positions: dict[str, Position], bar: dict[str, dict[str, Any]], now: Any
    ) -> list[tuple[str, float, str]]:
        """(asset, signed quantity to trade, reason) for every rule that fires on this bar."""
        out = []
        for asset, position in positions.items():
            rules = self.rules_for(asset)
            row = bar.get(asset)
            if rules is None or row is None:
                continue
            price = row.get("price", row.get("close"))
            if price is None:
                continue
            action = rules.evaluate(_state(position, price, row, now))
            if action.action == ActionType.EXIT_FULL:
                out.append((asset, -position.quantity, action.reason))
            elif action.action == ActionType.EXIT_PARTIAL and action.pct > 0:
                out.append((asset, -position.quantity * action.pct, action.reason))
        return out

    @staticmethod
    def update_water_marks(positions: dict[str, Position], bar: dict[str, dict[str, Any]]) -> None:
        for asset, position in positions.items():
            row = bar.get(asset)
            price = row.get("price", row.get("close")) if row else None
            if price is not None:
                position.update_water_marks(current_price=price)


def _state(position: Position, price: float, row: dict[str, Any], now: Any) -> PositionState:
    initial = position.initial_quantity if position.initial_quantity is not None else position.quantity
    return PositionState(
        asset=position.asset,
        side=position.side,
        entry_price=position.entry_price,
        current_price=price,
        quantity=abs(position.quantity),
        initial_quantity=abs(initial),
        unrealized_pnl=position.unrealized_pnl(price),
        unrealized_return=position.pnl_percent(price),
        bars_held=position.bars_held,
        high_water_mark=position.high_water_mark if position.high_water_mark is not None else position.entry_price,
        low_water_mark=position.low_water_mark if position.low_water_mark is not None else position.entry_price,
        bar_open=row.get("open"),
        bar_high=row.get("high"),
        bar_low=row.get("low"),
        max_favorable_excursion=position.max_favorable_excursion,
        max_adverse_excursion=position.max_adverse_excursion,
        entry_time=position.entry_time,
        current_time=now,
        context=position.context,
        multiplier=position.multiplier,
    )
