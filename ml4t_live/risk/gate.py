"""The rails in front of a broker: :class:`RiskGate`.

One object per run, on the engine thread, used the same way by the shadow broker and by a venue
broker, so a rehearsal refuses exactly what the venue run would refuse:

* ``open_bar(timestamp, data)``: the market clock moves to the bar; the bar's prices are taken
  (only when a priced limit is configured); working orders that ended since the last bar are
  released.
* ``check(...)`` before an order leaves -> a :class:`~.limits.Refusal` or None; ``track(order)``
  after it left (the gate watches the ``Order`` object it returned: fills and ends are read
  from it, no events needed); ``position(asset, quantity)`` when a fill moved a position.
* ``observe_equity(equity)`` after each bar, ``strategy_outcome(ok)`` after each ``on_data``,
  ``operator(state, reason)`` when ``ml4t-live halt`` / ``resume`` changed the journal: each
  may move the trading state (a :class:`~.state.Transition`, which the caller persists).

Time: every limit reads the *market clock*: the current bar's timestamp plus the seconds since
the bar's first order (at the end of a run: since the bar arrived, ``clock_from``; after a warm
restart that ended before a new bar, since the last replayed bar arrived in the run that journaled
it, and with an arrival the journal does not hold every price's age is unknown). Live, bars
arrive as they close (a late one is a catch-up bar and never trades), so this is the wall clock; in a replay or a step-mode rehearsal it is the recorded time, so the
order rate and data ages are those the live run would see, however fast the replay goes.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from loguru import logger
from ml4t.backtest import Order, OrderSide, OrderStatus

from ..events import UNKNOWN_ARRIVAL
from .config import RiskConfig
from .limits import PRICED, PreTradeRisk, Refusal
from .state import HALTED, REDUCING, TradingState, Transition

_log = logger.bind(component="risk")


class RiskGate:
    def __init__(self, config: RiskConfig, state: TradingState | None = None, *, resume_hint: str = "",
                 operated: bool = False) -> None:  # fmt: skip
        """``operated``: an operator can set REDUCING (a journaled venue run), so positions are
        always followed; a shadow run follows them only when a configured limit reads them."""
        self.config = config
        self.limits = PreTradeRisk(config)
        self.exposure = self.limits.exposure
        self.state = state if state is not None else TradingState(config)
        self.resume_hint = resume_hint
        self.needs_prices = any(getattr(config, name) is not None for name in PRICED)
        self._priced = self.exposure if self.needs_prices else None  # open_bar's test and its exposure
        self.loss_limits = config.max_daily_loss is not None or config.max_drawdown is not None
        self.follows_positions = operated or self.needs_prices or self.loss_limits or not config.allow_short or any(
            getattr(config, name) is not None for name in ("max_order_quantity", "max_open_orders"))  # fmt: skip
        self.refused: Counter[str] = Counter()
        self.bar_time: Any = None
        self.equity = 0.0
        self.exposure.to_seconds = self._seconds  # prices are kept with their bar's own timestamp
        self._market: float | None = 0.0  # POSIX seconds of the current bar (None: not read yet)
        self._since = time.monotonic()
        self._day: Any = None
        self._date: Any = None
        #: the equity band (floor, ceiling] where no loss limit can trip: an equity in it moves
        #: nothing (``observe_equity``'s first step; a caller on the per-bar path may test it
        #: itself and then only set ``equity`` and ``state.last_equity``)
        self.band_floor, self.band_ceiling = self._no_band()
        #: a caller that reads positions from its broker (the shadow) sets this: called by
        #: ``open_bar`` once, with the assets tracked orders filled in since the last bar
        self.refresh_positions: Callable[[set[str]], None] | None = None
        self._followed = self.exposure._followed  # the Orders ``track`` follows
        self._logged: tuple[Any, set[str]] = (None, set())  # (bar, the limits whose refusal it logged)

    # ------------------------------------------------------------------ the clock and the bar
    def now(self) -> float:
        """The market clock: the bar's time plus the seconds since the bar's first order (at
        the end of a run: since the bar arrived, see :meth:`clock_from`)."""
        if self._market is None:
            self._market, self._since = posix(self.bar_time), time.monotonic()
        return self._market + (time.monotonic() - self._since)

    def clock_from(self, received_at: float | None) -> None:
        """The market clock counts from ``received_at`` (``time.monotonic()`` when the current bar
        arrived: ``BarClosed.arrived_at``), not from the next order: the end of a run (``on_end``)
        may come long after its last bar (a stalled feed, a warm restart that ends before a new
        bar), and the prices' age must show that wait. None (a bar without an arrival time, whose
        clock is its own timestamp: a recorded source's): as it was. :data:`UNKNOWN_ARRIVAL` (a
        bar replayed from a journal that does not say when it arrived): the clock as it was, and
        no price's age is known: ``max_data_age`` refuses every order that adds risk."""
        if received_at is None or self.bar_time is None:
            return
        if received_at == UNKNOWN_ARRIVAL:
            self.limits.age_unknown = True
            return
        self._market, self._since = posix(self.bar_time), received_at

    def _seconds(self, timestamp: Any) -> float:
        if timestamp is not self.bar_time:
            return posix(timestamp)
        if self._market is None:
            self._market = posix(timestamp)
        return self._market

    def open_bar(self, timestamp: Any, data: Any = None) -> set[str] | tuple[()]:
        """The bar begins; returns the assets whose tracked orders filled since the last bar."""
        self.bar_time = timestamp
        self._market = None  # read (and the bar's own clock started) when an order needs it
        if self.loss_limits:  # the day the daily loss limit counts (a new one at a new date)
            try:
                day = timestamp.date()
            except AttributeError:  # a date, a numpy time, POSIX seconds: its label is compared
                day = timestamp
            if day != self._date:
                self._date, label = day, trading_day(timestamp)
                if label != self._day:
                    self._day, self.band_floor = label, math.inf  # a new day: its first equity is judged in full
        exposure = self._priced  # the exposure, when a limit reads prices
        if exposure is not None and data:
            try:  # an ml4t.backtest DataFeed payload: its own view of the closes
                closes = data._closes
            except AttributeError:
                closes = _closes(data)
            prev = exposure._bar  # exposure.set_prices(closes, timestamp), inlined (once per bar)
            if prev is not None and prev.keys() != closes.keys():
                exposure.set_prices(closes, timestamp)
            else:
                exposure._bar, exposure._bar_as_of, exposure._stale = closes, timestamp, True
        if not self._followed:
            return ()
        filled = self.exposure.settle()
        if filled and self.refresh_positions is not None:
            self.refresh_positions(filled)
        return filled

    # ------------------------------------------------------------------ orders
    def check(self, asset: str, side: OrderSide, quantity: float, order_type: Any, limit_price: float | None,
              stop_price: float | None, open_orders: int, parent_quantity: float = 0.0, *,
              replacing: str | None = None, now: float | None = None, at: float | None = None) -> Refusal | None:  # fmt: skip
        """None when the order may leave (its send is counted), else the Refusal (counted).
        ``now``: the market clock when the caller read it already: the shadow asks
        ``limits.admit`` itself and comes here when it said no (REDUCING, HALTED, a refusal),
        so the full checks run at once. ``at``: the market clock a venue broker read before it
        journaled the order (with the time the rate limit records for it): judged at that time."""
        one_step = now is None  # (the caller did not try limits.admit: it is tried here first)
        if now is None:
            now = self.now() if at is None else at
        state = self.state
        if one_step and replacing is None and self.limits.admit(asset, side, quantity, order_type, limit_price,
                                                                stop_price, now, self.equity, open_orders,
                                                                parent_quantity, state.state):  # fmt: skip
            return None  # (the usual order: passes, in one step)
        refusal = self.limits.evaluate(asset, side, quantity, order_type, limit_price, stop_price, now, self.equity,
                                       open_orders, state.state, state.reason, parent_quantity, replacing)  # fmt: skip
        if refusal is not None:
            if refusal.code == "halted" and self.resume_hint:
                refusal = Refusal("halted", f"{refusal.reason}; {self.resume_hint}")
            self.refused[refusal.code] += 1
        return refusal

    def bracket_room(self, asset: str, side: OrderSide, quantity: float, now: float | None = None,
                     orders: int = 3) -> Refusal | None:  # fmt: skip
        """A bracket leaves whole or not at all: None when the order rate can take its ``orders``
        (entry and exit legs) at ``now`` (the market clock the entry is judged at; read here when
        None), else the refusal of its entry (counted). Asked before the entry: an exit leg
        refused after its entry left would leave the entry unprotected. In REDUCING an entry that
        does not reduce is left to ``check`` (its refusal says REDUCING)."""
        if self.state.state == REDUCING and not self.limits.reduces(asset, side, quantity):
            return None
        too_fast = self.limits.rate.room(self.now() if now is None else now, orders)
        if too_fast is None:
            return None
        self.refused["max_orders_per_minute"] += 1
        return Refusal("max_orders_per_minute", too_fast)

    def check_change(self, order: Order, changes: dict[str, Any], *, open_orders: int,
                     entry: Order | None = None, at: float | None = None) -> Refusal | None:  # fmt: skip
        """A working order's ``update_order``: checked as the order it becomes (its unfilled
        part), replacing itself (its old quantity does not count twice). ``at``: as for ``check``."""
        return self.check(order.asset, order.side, changes.get("quantity", order.quantity) - order.filled_quantity,
                          order.order_type, changes.get("limit_price", order.limit_price),
                          changes.get("stop_price", order.stop_price), open_orders=open_orders,
                          parent_quantity=unfilled_entry(entry), replacing=order.order_id, at=at)  # fmt: skip

    def track(self, order: Order, *, contingent: bool = False) -> None:
        """``order`` left: counted as working until it ends (read from the order itself)."""
        if order.status is not OrderStatus.PENDING or not self.follows_positions:
            return
        self.exposure.follow(order, contingent)

    def changed(self, order: Order) -> None:
        """A working order was changed (``update_order`` went through): a larger unfilled
        quantity counts from now on; a smaller one from the next bar's ``settle``, which reads
        the order again. Until then the order counts as it was (fail closed): IB answers a
        change only after ``update_order`` returned, and when it refuses, the order is put back
        as IB works it at the next bar (the shadow and Alpaca follow the same rule)."""
        known = self._followed.get(order.order_id)
        if known is not None and order.quantity - order.filled_quantity > known[1]:
            self.exposure.follow(order, known[3] is None)  # (the first follow's side is kept)

    def position(self, asset: str, quantity: float, multiplier: float = 1.0) -> None:
        if not self.follows_positions:
            return
        known = self.exposure.assets.get(asset)
        if (known.quantity, known.multiplier) == (quantity, multiplier) if known else not quantity:
            return  # unchanged (most checks: the position was read again before the order)
        self.exposure.set_position(asset, quantity, multiplier)

    def log_refusal(self, code: str, message: str, *args: Any) -> None:
        """Log a refusal (the journal and the summary count every one): the first of each limit
        in a bar as a WARNING, the rest of that bar at DEBUG, so a HALTED strategy that keeps
        ordering 500 symbols writes one line per bar, not 500."""
        bar, codes = self._logged
        if bar is not self.bar_time:
            self._logged = bar, codes = self.bar_time, set()
        if code in codes:
            _log.opt(depth=1).debug(message, *args)
            return
        codes.add(code)
        _log.opt(depth=1).warning(message + " (more {} refusals this bar: DEBUG)", *args, code)

    # ------------------------------------------------------------------ the trading state
    def observe_equity(self, equity: float) -> Transition | None:
        self.equity = equity
        if self.band_floor < equity <= self.band_ceiling:  # (so finite) the day's band (a new day empties it)
            self.state.last_equity = equity  # nothing else can move (what a resume re-bases on)
            return None
        state = self.state
        if not math.isfinite(equity):
            return None
        if not self.loss_limits:
            state.last_equity = equity
            return None
        moved = state.observe_equity(equity, 0.0, day=self._day)
        self.band_floor, self.band_ceiling = _loss_floor(state), state.high_water or equity
        return moved

    def _no_band(self) -> tuple[float, float]:
        """Without a loss limit every finite equity is in the band; with one, none is until the
        next observation re-computes it."""
        return (math.inf, -math.inf) if self.loss_limits else (-math.inf, sys.float_info.max)

    def strategy_outcome(self, ok: bool) -> Transition | None:
        if ok:
            if self.state.consecutive_errors:
                self.state.strategy_ok()
            return None
        return self.state.strategy_error()

    def operator(self, state: str, reason: str) -> Transition | None:
        self.band_floor, self.band_ceiling = self._no_band()  # a resume re-bases the loss limits
        return self.state.operator(state, reason)

    @property
    def halted(self) -> bool:
        return self.state.state == HALTED

    # ------------------------------------------------------------------ reports
    def usage(self, open_orders: int | None) -> list[dict[str, Any]]:
        """Every limit with its configured value and current use (``status``, the summary);
        ``open_orders`` None: before the first bar."""
        rows = [{"limit": name, "value": value, "usage": use}
                for name, value, use in self.limits.usage(now=self.now(), equity=self.equity,
                                                          open_orders=open_orders)]  # fmt: skip
        rows += [{"limit": name, "value": value, "usage": use} for name, value, use in self.state.usage()
                 if name != "trading_state"]  # the state is the journal's own (an operator may change it)
        return rows

    def summary(self) -> dict[str, Any]:
        return {"trading_state": self.state.state, "trading_state_reason": self.state.reason,
                "num_risk_refusals": sum(self.refused.values()), "risk_refusals": dict(self.refused)}  # fmt: skip


def _loss_floor(state: TradingState) -> float:
    """The equity above which neither loss limit can trip today (a conservative bound: at or
    below it the full check runs)."""
    c, floor = state.config, -math.inf
    if c.max_daily_loss is not None and state.day_start_equity is not None:
        floor = max(floor, state.day_start_equity - c.max_daily_loss)
    if c.max_drawdown is not None and state.high_water:
        floor = max(floor, state.high_water * (1.0 - c.max_drawdown))
    return floor


def unfilled_entry(entry: Order | None) -> float:
    """What a bracket's entry still adds to the position its exit legs close (signed): its
    unfilled part while it works (what filled is in the position already), else nothing."""
    if entry is None or entry.status is not OrderStatus.PENDING:
        return 0.0
    left = entry.quantity - entry.filled_quantity
    return left if entry.side is OrderSide.BUY else -left


def posix(timestamp: Any) -> float:
    """A bar timestamp as POSIX seconds (naive = UTC; a date = its midnight UTC)."""
    if isinstance(timestamp, datetime):
        zone = timestamp.tzinfo
        if zone is None:
            return (timestamp - _EPOCH).total_seconds()
        if type(timestamp) is datetime and type(zone) in _ZONE_TYPES:  # (pandas times, other zones: below)
            epoch = _EPOCHS.get(zone)
            if epoch is None:
                epoch = _fixed_epoch(zone)
            if epoch is not False:  # a fixed offset: same-zone subtraction reads no offset (half the time)
                return (timestamp - epoch).total_seconds()
        return timestamp.timestamp()
    if isinstance(timestamp, date):  # a daily bar: its midnight, UTC
        return (datetime(timestamp.year, timestamp.month, timestamp.day) - _EPOCH).total_seconds()
    if isinstance(timestamp, int | float):
        return float(timestamp)
    to_py = getattr(timestamp, "astype", None)  # numpy datetime64
    if to_py is not None:
        return float(timestamp.astype("datetime64[ns]").astype("int64")) / 1e9
    raise TypeError(f"cannot read a market time from {type(timestamp).__name__} {timestamp!r}")


def trading_day(timestamp: Any) -> Any:
    """The day a bar belongs to for the daily loss limit: its own calendar date (the exchange's
    local date for a zone-aware time)."""
    if isinstance(timestamp, datetime):
        return timestamp.date().isoformat()
    if isinstance(timestamp, date):
        return timestamp.isoformat()
    return trading_day_of(timestamp)


def trading_day_of(timestamp: Any) -> str:
    """The UTC date of a timestamp that is not a datetime (numpy, POSIX seconds)."""
    return datetime.fromtimestamp(posix(timestamp), UTC).date().isoformat()


_EPOCH = datetime(1970, 1, 1)
#: zone -> the POSIX epoch as a time in that zone when the zone's offset never changes, else False
_EPOCHS: dict[Any, Any] = {}
#: the zone types ``posix`` looks up in ``_EPOCHS`` (hashable; others, e.g. dateutil's, are not all)
_ZONE_TYPES = frozenset({timezone, ZoneInfo})
_UTC_KEYS = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"})


def _fixed_epoch(zone: Any) -> Any:
    """The POSIX epoch in ``zone`` when ``zone`` has one offset at every instant (a
    ``datetime.timezone``, or a zoneinfo name of UTC), else False; remembered per zone object."""
    fixed = type(zone) is timezone or zone.key in _UTC_KEYS
    epoch = datetime.fromtimestamp(0, zone) if fixed else False
    if len(_EPOCHS) < 64:  # zone objects are few (one made per bar is not kept)
        _EPOCHS[zone] = epoch
    return epoch


def _closes(data: Any) -> dict[str, float]:
    cached = getattr(data, "_closes", None)  # an ml4t.backtest DataFeed payload
    if cached is not None:
        return cached
    return {asset: row.get("close", row.get("price")) for asset, row in data.items()
            if row.get("close", row.get("price")) is not None}  # fmt: skip
