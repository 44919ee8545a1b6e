"""Checks a placeOrder passes before it reaches the book (pure functions), with TWS's answers:

* 321 (validation): an order without an exchange (``Stock("XXX")`` has none) is refused as
  TWS refuses it, before the contract is even looked up; ib_async treats 321 as a warning, so
  its trade shows ``ValidationError``, as with a real TWS.
* 201 (rejection) AT SUBMISSION for a buy no rebalance could fund: the order's cost at its
  limit price (market and stop orders: the last known price) exceeds both the account's buying
  power and its net liquidation value. Orders within that are left to the fill, where the
  backtest's own cash rule decides with the sells of the same bar already done (checking them
  against today's buying power at submission would reject the buys of a sell-then-buy
  rebalance that the backtest fills, and break parity). A buy that covers a short is not
  checked.
"""

from __future__ import annotations

from .decoders import PlaceOrder

MISSING_EXCHANGE = "Error validating request.-'bN' : cause - Missing order exchange"


def missing_exchange(req: PlaceOrder) -> bool:
    return not req.contract.exchange.strip()


def buying_power_problem(
    req: PlaceOrder,
    position: float,
    last_price: float | None,
    buying_power: float,
    equity: float,
) -> str | None:
    """IB's rejection reason when a buy costs more than the buying power, else None."""
    if req.action.upper() != "BUY" or position < 0 or req.quantity <= 0:
        return None
    limit = req.lmt_price if req.order_type.upper() in ("LMT", "STP LMT") else None
    price = (
        limit
        or last_price
        or (req.aux_price if req.order_type.upper() == "STP" else None)
    )
    if not price:
        return None  # nothing to price it with yet: the fill decides
    cost = req.quantity * price
    if cost <= max(buying_power, equity) + 1e-6:
        return None
    return (
        "YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR EQUITY WITH "
        f"LOAN VALUE [{equity:.2f} USD] MUST EXCEED THE INITIAL MARGIN [{cost:.2f} USD] "
        f"(buying power {buying_power:.2f} USD)"
    )
