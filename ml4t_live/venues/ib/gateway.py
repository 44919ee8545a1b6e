"""IBGateway: the synchronous VenueGateway for Interactive Brokers (engine-thread facade).

Every method is one blocking call through the bridge to the ``ml4t-ib-session`` loop thread, where
an :class:`~ml4t_live.venues.ib.session.IBSession` owns the ``ib_async.IB`` and an
:class:`~ml4t_live.venues.ib.orders.OrderTracker` turns its callbacks into events on
:attr:`events`.

Connect: ib_async's startup sync (positions, open orders, completed orders, executions, account
values) -> the account is checked (paper accounts start with ``DU``; a live one needs
``IBConfig.allow_live`` *and* ``confirm_live(account) is True``, asked on the caller's thread) ->
our open orders are adopted by ``orderRef``, foreign ones reported -> :class:`AccountSnapshot`.

Disconnect: ``BrokerDisconnected`` -> reconnect with backoff -> resync (missed executions replayed
once, vanished orders reported as ``OrderLost``, never re-sent) -> ``BrokerReconnected``.

Order ids never go below what this client already used (IB-05: a restarted gateway can roll
``nextValidId`` back): :meth:`IBGateway.reserve_order_ids` sets a floor (the journal's high-water
mark, before or after ``connect``) and :attr:`IBGateway.order_id_high_water` reads the largest id
used; each (re)connect starts at ``max(nextValidId, high-water + 1)``.

Orders IB never answers are looked up by orderRef and reported ``OrderLost`` (IB-09);
``cancel`` raises :class:`~ml4t_live.errors.CancelRefused` when IB refuses it (10147 / 10148) or
the order filled first (see :mod:`~.orders`); ``cancel_many`` cancels many orders at once (all
written first, the waits overlapping) and returns each one's outcome.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from typing import Any

from loguru import logger

from ...bridge import LoopState, LoopThread
from ...errors import (
    BridgeClosed,
    BridgeError,
    ConnectionFailed,
    LiveTradingRefused,
    ReconciliationError,
    VenueError,
)
from ...events import BrokerDisconnected, BrokerReconnected
from ...protocols import AccountSnapshot, OrderRequest, VenueOrder
from .config import IBConfig
from .inflight import LOOKUP_ROUNDS
from .orders import OrderTracker
from .outcomes import queue_seconds
from .parsing import is_paper_account, venue_order_from_trade
from .session import CONNECTIVITY_LOST, IBSession

_log = logger.bind(component="ib.gateway")


class IBGateway:
    """VenueGateway over one IB API connection (client id ``IBConfig.client_id``)."""

    venue = "ib"

    def __init__(self, config: IBConfig | None = None) -> None:
        self.config = config or IBConfig()
        self._loop = LoopThread("ib", "session")
        self._session: IBSession | None = None
        self._orders: OrderTracker | None = None
        self.account = ""
        self._degraded = False  # IB reported 1100 (socket up, IB's own link down)
        # an end_of_bar fell into a disconnect: send it after the reconnect
        self._caught_up_owed = False
        self._order_id_floor = 0  # reserved before connect; the session keeps it afterwards

    @property
    def orders_client_id(self) -> int:
        """The API client id this gateway places orders under (IB shows an order only to it)."""
        return self.config.client_id

    @property
    def events(self) -> Any:
        return self._loop.events

    @property
    def loop(self) -> LoopThread:
        return self._loop

    # ------------------------------------------------------------------ life cycle
    def connect(self) -> AccountSnapshot:
        self._loop.start(self._setup)
        try:
            accounts = self._call(
                self._session_().connect(), self.config.connect_timeout * 3
            )
            account = self._choose_account(accounts)
            if not is_paper_account(account):
                self._check_live(account)
            snapshot = self._call(self._start_trading(account))
        except BaseException:
            self.close()
            raise
        _log.info(
            "connected to IB account {} ({}): {} positions, {} open orders, {} executions today",
            account,
            "paper" if snapshot.is_paper else "LIVE",
            len(snapshot.positions),
            len(snapshot.open_orders),
            len(snapshot.executions),
        )
        return snapshot

    async def _setup(self) -> None:
        session = IBSession(
            self.config, self._loop, client_id=self.config.client_id, role="broker"
        )
        session.note_order_id(self._order_id_floor)
        self._session = session
        self._orders = OrderTracker(session)
        session.on_lost.append(self._lost)
        session.on_restored.append(self._restored)
        session.on_connectivity.append(self._connectivity)

    def _choose_account(self, accounts: list[str]) -> str:
        wanted = self.config.account
        if wanted:
            if wanted not in accounts:
                raise ReconciliationError(
                    f"IB manages accounts {accounts}, not the configured account {wanted!r}"
                )
            return wanted
        if len(accounts) != 1:
            raise ReconciliationError(
                f"IB manages {len(accounts)} accounts {accounts}; set IBConfig.account to choose one"
            )
        return accounts[0]

    def _check_live(self, account: str) -> None:
        if not self.config.allow_live:
            raise LiveTradingRefused(
                f"IB account {account} is a LIVE (real-money) account (paper accounts start with "
                "'DU'); pass allow_live=True and a confirm_live callback to trade it"
            )
        confirm = self.config.confirm_live
        if confirm is None or confirm(account) is not True:
            raise LiveTradingRefused(
                f"live trading on IB account {account} was not confirmed"
            )
        _log.warning("LIVE trading confirmed on IB account {}", account)

    async def _start_trading(self, account: str) -> AccountSnapshot:
        self._session_().account = account
        self.account = account
        return self._orders_().snapshot(account)

    def _lost(self, reason: str) -> None:
        self._session_().put(BrokerDisconnected("ib", reason))

    async def _restored(self) -> None:
        session = self._session_()
        self._degraded = session.degraded = False  # a fresh connection: no 1100 pending on it
        accounts = session.ib.managedAccounts()
        if self.account not in accounts:
            session.put(
                BrokerDisconnected(
                    "ib",
                    f"after reconnect IB manages {accounts}, not {self.account}; not trading",
                )
            )
            await session.close()
            return
        replayed = self._orders_().resync()
        _log.info(
            "resynchronised after reconnect; {} missed execution(s) replayed", replayed
        )
        session.put(BrokerReconnected("ib"))
        if self._caught_up_owed:  # the engine finished a bar while we were away
            self._caught_up_owed = False
            await self._orders_().end_of_bar(self.config.request_timeout)

    def _connectivity(self, code: int, message: str) -> None:
        """1100: IB itself lost its link (the socket stays up); 1101/1102: it is back."""
        session = self._session_()
        if code == CONNECTIVITY_LOST:
            session.degraded = True
            if not self._degraded:
                self._degraded = True
                session.put(
                    BrokerDisconnected(
                        "ib", f"IB connectivity lost ({code}): {message}"
                    )
                )
        elif self._degraded:
            self._degraded = session.degraded = False
            replayed = self._orders_().resync()
            _log.info(
                "IB connectivity restored ({}); {} missed execution(s) replayed",
                code,
                replayed,
            )
            session.put(BrokerReconnected("ib"))

    # ------------------------------------------------------------------ order ids
    def reserve_order_ids(self, floor: int) -> None:
        """IB order ids up to ``floor`` were used (e.g. the journal's high-water mark): every
        later order id, also after a reconnect to a restarted gateway, is above it."""
        self._order_id_floor = max(self._order_id_floor, int(floor))
        if self._session is not None and self._loop.state is LoopState.RUNNING:
            session, floor = self._session, self._order_id_floor
            self._call(lambda: session.reserve_order_ids(floor))

    @property
    def order_id_high_water(self) -> int:
        """The largest IB order id this client used: placed, seen at the venue, or reserved."""
        if self._session is not None:
            session = self._session
            try:
                self._order_id_floor = self._call(lambda: session.order_id_high_water)
            except BridgeClosed:  # closed: the last value read stands
                pass
        return self._order_id_floor

    # ------------------------------------------------------------------ VenueGateway
    def snapshot(self) -> AccountSnapshot:
        return self._call(self._snapshot())

    async def _snapshot(self) -> AccountSnapshot:
        """The account now: a reqPositions round trip first, so every position update IB sent
        before it (e.g. after a fill already reported) is applied; unknown is never empty."""
        session = self._session_()
        session.require_connected("snapshot")
        try:
            await asyncio.wait_for(session.ib.reqPositionsAsync(), self.config.request_timeout)
        except (ConnectionError, TimeoutError) as exc:
            raise ConnectionFailed(
                f"IB did not answer the positions request ({exc!r}); the account is unknown"
            ) from exc
        return self._orders_().snapshot(self.account)

    def settle_point(self) -> None:
        """A round trip on the order connection that does not move a step-mode venue on (a
        reqPositions, not the reqCurrentTime of ``end_of_bar``): every order event IB wrote
        before answering it (a fill at the bar's open, written before the bar went out on the
        feed's own connection) is on :attr:`events` when this returns."""
        self._call(self._settle_point())

    async def _settle_point(self) -> None:
        session = self._session_()
        session.require_connected("settle point")
        try:
            await asyncio.wait_for(session.ib.reqPositionsAsync(), self.config.request_timeout)
        except (ConnectionError, TimeoutError) as exc:
            raise ConnectionFailed(f"IB did not answer a positions request ({exc!r})") from exc

    def lookup(self, client_order_ids: Iterable[str]) -> dict[str, VenueOrder]:
        """Where IB has these client order ids (open orders, completed orders, executions, by
        orderRef): ids IB does not know are absent; ConnectionFailed when the look-up cannot be
        completed (unknown is not empty): one round answers for every id or for none, so never
        LookupIncomplete (see :class:`~ml4t_live.protocols.VenueGateway`). Found orders are taken
        over (see OrderTracker)."""
        ids = list(client_order_ids)
        return self._call(self._orders_().lookup(ids), 3 * self.config.request_timeout + 1.0)

    def follows_unknown(self, client_order_id: str) -> bool:
        """True while the in-flight checks (:mod:`.inflight`) look this order up themselves (its
        placeOrder was written, IB has said nothing yet): the broker leaves it to them."""
        return self._call(self._follows(client_order_id))

    async def _follows(self, client_order_id: str) -> bool:
        return self._orders_().follows(client_order_id)

    def all_open_orders(self) -> list[VenueOrder]:
        """Every API client's open orders on the account (``reqAllOpenOrders``), for read-only
        operator tools that connect with a client id of their own (orders without an orderRef,
        e.g. placed in TWS, come back with an empty client order id)."""
        return self._call(self._all_open_orders())

    async def _all_open_orders(self) -> list[VenueOrder]:
        session = self._session_()
        session.require_connected("open orders")
        try:
            timeout = self.config.request_timeout
            async with asyncio.timeout(timeout), session.order_lists as lists:
                trades = await lists.fetch("openOrders", session.ib.reqAllOpenOrdersAsync, timeout)
        except (ConnectionError, TimeoutError) as exc:
            raise ConnectionFailed(f"IB did not answer the open orders request ({exc!r})") from exc
        return [_any_venue_order(t) for t in trades if not t.isDone()]

    def place(self, request: OrderRequest) -> None:
        self._call(self._orders_().place(request))

    def modify(self, request: OrderRequest) -> None:
        self._call(self._orders_().modify(request))

    def cancel(self, client_order_id: str) -> None:
        """Raises CancelRefused when IB refuses (10147 / 10148 / 161) or the order filled first;
        a fill that won is on :attr:`events` before that. Bounded: ``cancel_wait`` plus, after a
        refusal, one look-up by orderRef (three requests of ``request_timeout`` at most)."""
        self._call(self._orders_().cancel(client_order_id), self._cancel_bound())

    def cancel_many(self, client_order_ids: list[str]) -> dict[str, Exception | None]:
        """Cancel these orders in one bridge call: all the cancels are written first and IB's
        answers awaited together (about one ``cancel_wait`` for all, not one each); the refused
        ones take one look-up by orderRef together. Per order: None (IB took the cancel) or what
        :meth:`cancel` would have raised; CancelUnsure for an order whose cancel raised a bug
        (logged as an ERROR with its type; the other orders' answers stand). Bounded as one
        :meth:`cancel`; a batch that fails as a whole (not connected, the bridge timed out or
        closed) gives every order that error: its cancel failed, it may still work at IB."""
        ids = list(dict.fromkeys(client_order_ids))
        if not ids:
            return {}
        try:
            bound = self._cancel_bound() + queue_seconds(self.config.max_requests_per_second)(len(ids))
            return self._call(self._orders_().cancel_many(ids), bound)
        except (VenueError, BridgeError) as exc:
            return dict.fromkeys(ids, exc)

    def _cancel_bound(self) -> float:
        """A cancel (or a batch of them) waits at most ``cancel_wait`` for the answers, then, if
        refused, one look-up by orderRef (its wait for its turn included, see
        :meth:`~.inflight.InFlightMonitor.lookup`)."""
        cfg = self.config
        return min(cfg.cancel_wait, cfg.request_timeout) + LOOKUP_ROUNDS * cfg.request_timeout + 1.0

    def end_of_bar(self, timestamp: Any) -> None:
        self._call(self._end_of_bar())

    async def _end_of_bar(self) -> None:
        sent = await self._orders_().end_of_bar(self.config.request_timeout)
        self._caught_up_owed = not sent

    def close(self) -> None:
        self._loop.close(self._shutdown, timeout=self.config.request_timeout)

    async def _shutdown(self) -> None:
        if self._orders is not None:
            self._orders.detach()
        if self._session is not None:
            self._order_id_floor = max(self._order_id_floor, self._session.order_id_high_water)
            await self._session.close()

    # ------------------------------------------------------------------ helpers
    def _call(self, coro: Any, timeout: float | None = None) -> Any:
        return self._loop.call(coro, timeout or self.config.request_timeout + 1.0)

    def _session_(self) -> IBSession:
        if self._session is None:
            raise ConnectionFailed("IBGateway is not connected; call connect() first")
        return self._session

    def _orders_(self) -> OrderTracker:
        if self._orders is None:
            raise ConnectionFailed("IBGateway is not connected; call connect() first")
        return self._orders


def _any_venue_order(trade: Any) -> VenueOrder:
    """The VenueOrder of any open IB order; one without an orderRef gets an empty client id."""
    found = venue_order_from_trade(trade)
    if found is not None:
        return found
    tagged = dataclasses.replace(trade, order=dataclasses.replace(trade.order, orderRef="-"))
    return dataclasses.replace(venue_order_from_trade(tagged), client_order_id="")
