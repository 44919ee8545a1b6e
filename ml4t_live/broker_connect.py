"""How a :class:`~ml4t_live.venue_broker.VenueBroker` connects (``VenueBroker.connect``): the
account kind is checked against the mode (a LIVE account in paper mode is refused; a paper account
runs in paper mode), the journal opens and the ids, the book and the rails start from it, and the
venue's open orders no journal explains are kept in ``foreign_orders``, left untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger
from ml4t.backtest import BacktestConfig

from .errors import LiveTradingRefused
from .journal import check_strategy_id
from .placing_client import check_placing_client
from .rails import JournaledRails
from .risk import RiskConfig

if TYPE_CHECKING:
    from .venue_broker import VenueBroker

_log = logger.bind(component="venue-broker")


def connect_broker(broker: VenueBroker, config: BacktestConfig) -> None:
    """Connect, check the account kind, and start from the venue's state (fail closed)."""
    broker.config = config
    broker.share_type = config.share_type
    sid = check_strategy_id(broker.strategy_id or "ml4t")
    broker.ids.start(sid, "connecting")  # the gateway's is_ours knows the strategy from now on
    snapshot = broker.gateway.connect()
    if snapshot.is_paper and broker.mode == "live":
        _log.warning(
            "{} account {} is a paper account: running in paper mode although live "
            "trading was allowed",
            broker.venue,
            snapshot.account_id,
        )
        broker.mode = "paper"
    if not snapshot.is_paper and broker.mode != "live":
        raise LiveTradingRefused(
            f"{broker.venue} account {snapshot.account_id} is a LIVE account but this broker "
            "is in paper mode; pass the explicit live flag (and confirm) to trade real money"
        )
    broker.snapshot = snapshot
    generation, cash = broker.own.open(broker.venue, snapshot, sid)
    check_placing_client(broker.own.journal, getattr(broker.gateway, "orders_client_id", None), broker.venue)
    broker.ids.start(sid, generation)
    floor = broker.own.journal.meta("venue_order_id_high_water")
    if floor is not None and hasattr(broker.gateway, "reserve_order_ids"):
        broker.gateway.reserve_order_ids(int(floor))  # IB ids never below the journal's mark
    broker.book.seed(cash)
    limits = RiskConfig.from_table(broker.risk_table, allow_short_default=config.allow_short_selling)
    broker.rails = JournaledRails.open(limits, broker.own.journal)
    for asset, quantity, price in broker.own.adopted_positions():
        broker.book.adopt(asset, quantity, price)
    broker.starting_equity = broker.book.equity()
    broker.risk_positions()
    journaled = broker.own.journal.intents() if snapshot.open_orders else {}
    venue_ids = {intent["venue_id"] for intent in journaled.values() if intent.get("venue_id")}
    for venue_order in snapshot.open_orders:
        cid = venue_order.client_order_id
        if cid in journaled or venue_order.venue_order_id in venue_ids:
            continue  # ours (under the venue's own client id too): the warm restart re-creates it
        broker.foreign_orders.append(venue_order)
        _log.warning(
            "{}: open order {} ({} {} {}) {}; left untouched",
            broker.venue, cid or venue_order.venue_order_id, venue_order.side.value,
            venue_order.quantity, venue_order.asset,
            "carries this strategy's id but no journal explains it (a deleted or other "
            "journal?)" if broker.ids.is_ours(cid) else "was not placed by this strategy",
        )  # fmt: skip
    _log.info(
        "{} {} account {}: venue cash {:,.2f}, equity {:,.2f}, {} positions, {} open orders; "
        "strategy {} starts from cash {:,.2f}",
        broker.venue, broker.mode, snapshot.account_id, snapshot.cash, snapshot.equity,
        len(snapshot.positions), len(snapshot.open_orders), sid, cash,
    )  # fmt: skip
