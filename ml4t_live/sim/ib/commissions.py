"""IB's US stock commission schedules as ml4t.backtest commission models (pure).

``ib-fixed``: USD 0.005 per share, at least USD 1.00 and at most 1% of the trade value, per
order (IB's "IBKR Pro Fixed" schedule; the regulatory and exchange fees IB passes through on
the tiered plan are included in the fixed rate).
``ib-tiered``: the first volume tier of "IBKR Pro Tiered" (up to 300,000 shares a month):
USD 0.0035 per share, at least USD 0.35, at most 1% of the trade value, per order; the
exchange, clearing and regulatory fees IB adds on top are not modelled.
``none``: zero (the default, so fills match a backtest run without commissions).

The minimum and maximum apply per ORDER, as IB charges them: a fill split into several
executions pays the order's total once (each execution pays what is still due), through
ml4t.backtest's per-order ``quote`` hook.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml4t.backtest.models import CommissionContext

from ...errors import ConfigError


@dataclass(frozen=True, slots=True)
class IBStockCommission:
    """Per share, with a per-order minimum and a cap as a fraction of the trade value."""

    per_share: float
    minimum: float
    max_fraction: float = 0.01

    def calculate(self, asset: str, quantity: float, price: float) -> float:
        return self._due(abs(quantity), abs(quantity * price))

    def quote(self, context: CommissionContext) -> float:
        shares = context.filled_quantity + abs(context.signed_quantity)
        notional = context.filled_notional + abs(
            context.signed_quantity * context.price * context.multiplier
        )
        return max(0.0, self._due(shares, notional) - context.commission_paid)

    def _due(self, shares: float, notional: float) -> float:
        if shares <= 0:
            return 0.0
        fee = max(shares * self.per_share, self.minimum)
        return round(min(fee, notional * self.max_fraction), 6)


SCHEDULES: dict[str, IBStockCommission | None] = {
    "none": None,
    "ib-fixed": IBStockCommission(per_share=0.005, minimum=1.00),
    "ib-tiered": IBStockCommission(per_share=0.0035, minimum=0.35),
}


def commission_model(name: str) -> IBStockCommission | None:
    """The model for a schedule name (None: the BacktestConfig's own commission settings)."""
    key = name.strip().lower()
    if key not in SCHEDULES:
        raise ConfigError(
            f"unknown commission schedule {name!r}; use one of {', '.join(SCHEDULES)}"
        )
    return SCHEDULES[key]
