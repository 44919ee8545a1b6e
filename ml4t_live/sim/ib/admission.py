"""Checks a placeOrder passes before it reaches the book (pure functions), with TWS's answers:

* 321 (validation): an order without an exchange (``Stock("XXX")`` has none) is refused as
  TWS refuses it, before the contract is even looked up; ib_async treats 321 as a warning, so
  its trade shows ``ValidationError``, as with a real TWS.
* 201 (rejection) AT SUBMISSION, IB's margin check: the initial margin of the account after the
  order (each asset at its worst case with the working orders and the order) must be below the
  equity with loan value, for the account type the gateway models (Reg T margin by default,
  or cash: see :mod:`.margin`). An order that only reduces a position is never refused. A
  sell-then-buy rebalance on a margin account passes as it does at IB: the buys' post-trade
  margin is within the equity even before the sells fill. What only the fill can know (the
  price moved) is left to the backtest's cash rule at the fill.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ..matching import SimExchange
from .decoders import PlaceOrder
from .encoders import OrderView
from .margin import AccountModel, Intent, rejection_text

MISSING_EXCHANGE = "Error validating request.-'bN' : cause - Missing order exchange"
_PRICED = ("LMT", "STP LMT", "LIT")


def missing_exchange(req: PlaceOrder) -> bool:
    return not req.contract.exchange.strip()


def intent_of(req: PlaceOrder, asset: str, filled: float = 0.0) -> Intent:
    """A placeOrder (of an order ``filled`` in part) as a signed position change."""
    return _intent(asset, req.action, max(req.quantity - filled, 0.0), req.order_type,
                   req.lmt_price, req.aux_price)  # fmt: skip


def working_intent(view: OrderView) -> Intent:
    """A working order's remaining quantity as a signed position change."""
    return _intent(view.info.symbol, view.action, view.remaining, view.order_type,
                   view.lmt_price, view.aux_price)  # fmt: skip


def _intent(asset: str, action: str, quantity: float, order_type: str,
            lmt_price: float | None, aux_price: float | None) -> Intent:  # fmt: skip
    sign = 1.0 if action.upper() == "BUY" else -1.0
    kind = order_type.upper()
    price = lmt_price if kind in _PRICED else aux_price
    return Intent(asset, sign * quantity, kind, price or lmt_price or None)


def margin_problem(
    model: AccountModel,
    order: Intent,
    positions: Mapping[str, float],
    working: Iterable[Intent],
    prices: Mapping[str, float],
    equity: float,
) -> str | None:
    """IB's rejection reason unless the equity exceeds the post-trade initial margin ("YOUR
    EQUITY WITH LOAN VALUE ... MUST EXCEED THE INITIAL MARGIN": equal is refused)."""
    required = model.requirement_after(positions, working, order, prices)
    if required is None or required < equity - 1e-6:
        return None
    return rejection_text(equity, required)


def marks(
    exchange: SimExchange, reference: Callable[[str], float | None], assets: Iterable[str]
) -> dict[str, float]:
    """Each asset's last price, else its last history close, else the position's cost (none of
    them: left out, so an order on it is not checked)."""
    held = exchange.positions
    return {a: p for a in assets
            if (p := exchange.last_price(a) or reference(a) or held.get(a, (0.0, 0.0))[1])}  # fmt: skip
