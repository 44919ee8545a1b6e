"""The terms a replace chain read at a warm restart stands for: what the strategy asked of the order.

A modify is journaled once Alpaca answered its PATCH; a process killed in between (``kill -9``
after ``PATCH /v2/orders/{id}``) leaves a chain whose working replacement carries the new terms
while the runtime's book, rebuilt from the journal, holds the old ones. The replay makes the
change again on the bar the crash interrupted, where it is refused (what the order filled while
away is not read yet: :meth:`~ml4t_live.restart_reads.AwayReads.change_refusal`); that refused
change is the crashed one's ask when the strategy is deterministic.

:func:`chain_ask` picks the ask the restart's check of the chain is made against
(:meth:`~.modify.Modifier.check_chain`): the chain asks the order's total (the fills of the orders
before its working replacement plus that one's ``qty``) at the replacement's prices, plus what an
old order filled between a modify's read and its replace (a race only adds). So an ask fits the
chain when its prices are the chain's and its quantity is at most the chain's total; of the book's
terms and the refused change's, the one that fits with the larger quantity is taken (the other
one, had it been sent, leaves a larger race than the difference). When neither fits, Alpaca's
terms are taken as they stand: the chain's total and prices (a change made before the crash that
the replay did not make again; what raced with it, if anything, cannot be told apart from its ask).
Pure; engine thread.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...protocols import OrderRequest
from ...quantities import EPS as _EPS
from .parsing import num


def chain_total(chain: list[Any]) -> float | None:
    """What ``chain`` asks in all: the fills of its orders before the last, plus the last's ``qty``."""
    qty = num(chain[-1].qty)
    return None if qty is None else sum(num(o.filled_qty) or 0.0 for o in chain[:-1]) + qty


def _same_price(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= _EPS)


def _fits(ask: OrderRequest, total: float, limit: float | None, stop: float | None) -> bool:
    return (ask.quantity <= total + _EPS and _same_price(ask.limit_price, limit)
            and _same_price(ask.stop_price, stop))  # fmt: skip


def chain_ask(chain: list[Any], asked: OrderRequest, refused: OrderRequest | None) -> OrderRequest:
    """The ask ``chain`` (walked at a warm restart, its last order working) stands for: ``asked``
    (the book's terms), ``refused`` (the change the replay made again and was refused, if any), or
    Alpaca's terms; see the module docstring. ``asked`` itself when the chain's total is unknown."""
    total = chain_total(chain)
    if total is None:
        return asked
    limit, stop = num(chain[-1].limit_price), num(chain[-1].stop_price)
    fitting = [ask for ask in (asked, refused) if ask is not None and _fits(ask, total, limit, stop)]
    if fitting:
        return max(fitting, key=lambda ask: ask.quantity)
    return replace(asked, quantity=total, limit_price=limit, stop_price=stop)


def same_terms(a: OrderRequest, b: OrderRequest) -> bool:
    """Whether ``a`` and ``b`` ask the same quantity at the same prices."""
    return (abs(a.quantity - b.quantity) <= _EPS and _same_price(a.limit_price, b.limit_price)
            and _same_price(a.stop_price, b.stop_price))  # fmt: skip
