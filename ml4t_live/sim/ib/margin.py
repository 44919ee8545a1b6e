"""The account the simulated gateway models for IB's pre-trade check and margin numbers (pure).

IB checks every order AT SUBMISSION against the account as it would be after the order: the
initial margin of the post-trade portfolio must not exceed the equity with loan value (ELV; for
stocks, the net liquidation value). An order that fails is rejected at once with error 201 and
goes Inactive. Two account types, as IB offers them (``SimulatedIBGateway(account_type=...)``,
``ml4t-live sim ib --account-type``):

* ``margin`` (default; Reg T): initial margin 50% of each stock position's value (the backtest
  config's ``initial_margin`` when it allows leverage), maintenance 25%. Sale proceeds count once
  the sale has filled. Reg T's intraday 4:1 for pattern day traders is not modelled (the check is
  the overnight 2:1).
* ``cash``: a position needs its full value (initial margin 100%), so a buy needs the cash; market
  buys need a 5% cash cushion on top (IB's rule for market, relative and VWAP orders in a cash
  account). Settlement of sale proceeds (T+1) is not modelled: a filled sale's cash is usable.

What counts as "after the order": each asset at its worst case, the larger of the position with
every working buy filled and with every working sell filled (an order on the other side is not
credited: it may never fill), the order included. An order that does not add to its asset's
worst case (it reduces or closes a position, or is covered by the other side's working orders)
is never refused for margin. Prices: the last traded price of each asset (before the first bar,
the last history close); for an asset without any price yet, the limit or stop price of its
orders; none at all: not checked (the fill decides). What only the fill can know (the price moved, commissions) stays with the
backtest's own cash rule at the fill.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ml4t.backtest import BacktestConfig

from ...errors import ConfigError
from ...quantities import EPS as _EPS

ACCOUNT_TYPES = ("margin", "cash")
REG_T_INITIAL = 0.5
REG_T_MAINTENANCE = 0.25
CASH_CUSHION = 0.05
CUSHION_TYPES = frozenset({"MKT", "MOC", "MOO", "REL", "VWAP"})


@dataclass(frozen=True, slots=True)
class Intent:
    """An order's effect on a position: signed remaining quantity (+ buy, - sell)."""

    asset: str
    quantity: float
    order_type: str = "MKT"
    price: float | None = None  # its limit / stop price, used only when the asset has no price


@dataclass(frozen=True, slots=True)
class AccountModel:
    kind: str = "margin"
    initial: float = REG_T_INITIAL
    maintenance: float = REG_T_MAINTENANCE

    @classmethod
    def for_account(cls, kind: str, config: BacktestConfig | None = None) -> AccountModel:
        """``margin`` (Reg T, or the config's own rates when it allows leverage) or ``cash``."""
        if kind not in ACCOUNT_TYPES:
            raise ConfigError(f"account_type must be one of {', '.join(ACCOUNT_TYPES)}, got {kind!r}")
        if kind == "cash":
            return cls("cash", 1.0, 1.0)
        if config is not None and config.allow_leverage:
            return cls("margin", config.initial_margin, config.long_maintenance_margin)
        return cls()

    def gross(self, positions: Mapping[str, float], prices: Mapping[str, float]) -> float:
        return sum(abs(q) * prices.get(a, 0.0) for a, q in positions.items())

    def initial_margin(self, positions: Mapping[str, float], prices: Mapping[str, float]) -> float:
        return self.initial * self.gross(positions, prices)

    def maintenance_margin(self, positions: Mapping[str, float], prices: Mapping[str, float]) -> float:
        return self.maintenance * self.gross(positions, prices)

    def requirement_after(
        self,
        positions: Mapping[str, float],
        working: Iterable[Intent],
        order: Intent,
        prices: Mapping[str, float],
    ) -> float | None:
        """Initial margin of every asset's worst case with ``working`` and ``order`` (None: the
        order does not add to its asset's worst case, or it cannot be priced). A cash account
        adds the cushion of a market buy."""
        bounds, fallback = _bounds(positions, working)
        held = positions.get(order.asset, 0.0)
        low, high = bounds.get(order.asset, (held, held))
        new = (low, high + order.quantity) if order.quantity > 0 else (low + order.quantity, high)
        if _worst(new) <= _worst((low, high)) + _EPS:
            return None
        marks = {**fallback, **prices}
        if order.asset not in marks:
            if not order.price:
                return None
            marks[order.asset] = order.price
        bounds[order.asset] = new
        required = self.initial_margin(worst_case_of(bounds), marks)
        if self.kind == "cash" and order.quantity > 0 and order.order_type.upper() in CUSHION_TYPES:
            required += CASH_CUSHION * order.quantity * marks[order.asset]
        return required


def what_if_margins(
    model: AccountModel,
    positions: Mapping[str, float],
    order: Intent,
    prices: Mapping[str, float],
    equity: float,
) -> tuple[float, ...]:
    """whatIf's nine numbers: initial, maintenance, ELV before / change / after (the order filled
    at the mark: the ELV does not change)."""
    if order.asset not in prices and order.price:
        prices = {**prices, order.asset: order.price}
    after = {**positions, order.asset: positions.get(order.asset, 0.0) + order.quantity}
    init = (model.initial_margin(positions, prices), model.initial_margin(after, prices))
    maint = (model.maintenance_margin(positions, prices), model.maintenance_margin(after, prices))
    return (init[0], maint[0], equity, init[1] - init[0], maint[1] - maint[0], 0.0,
            init[1], maint[1], equity)  # fmt: skip


def worst_case(positions: Mapping[str, float], working: Iterable[Intent]) -> dict[str, float]:
    """Each asset's worst-case size: the larger of the position with every working buy filled
    and with every working sell filled (what the margin check charges)."""
    return worst_case_of(_bounds(positions, working)[0])


def worst_case_of(bounds: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    return {asset: _worst(b) for asset, b in bounds.items()}


def _bounds(positions: Mapping[str, float], working: Iterable[Intent]
            ) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:  # fmt: skip
    """asset -> (position with every working sell filled, with every working buy filled), and
    a working order's own limit / stop price per asset (for an asset without a price yet)."""
    bounds = {asset: (q, q) for asset, q in positions.items()}
    fallback: dict[str, float] = {}
    for w in working:
        held = positions.get(w.asset, 0.0)
        low, high = bounds.get(w.asset, (held, held))
        bounds[w.asset] = (low, high + w.quantity) if w.quantity > 0 else (low + w.quantity, high)
        if w.price:
            fallback.setdefault(w.asset, w.price)
    return bounds, fallback


def _worst(bound: tuple[float, float]) -> float:
    return max(abs(bound[0]), abs(bound[1]))


def rejection_text(equity: float, required: float) -> str:
    """IB's reason text for an order whose post-trade initial margin exceeds the ELV."""
    return (
        "YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR EQUITY WITH "
        f"LOAN VALUE [{equity:.2f} USD] MUST EXCEED THE INITIAL MARGIN [{required:.2f} USD]"
    )
