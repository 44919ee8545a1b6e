"""The per-order checks: :class:`PreTradeRisk`.

``check(...)`` runs on the engine thread before an order's intent is journaled and returns
``None`` (the order may leave; its send time is recorded for the rate limit) or a
:class:`Refusal` whose ``code`` is the limit's name and whose ``reason`` names the limit and the
numbers, e.g. ``max_order_notional: 150 x 200.00 = 30,000.00 > 25,000.00``. It is O(1): it
reads one asset's view and the running gross exposure from :class:`~.exposure.Exposure`, and the
rate limit's bounded list of send times; it never scans past orders, fills or positions.
The per-order path is ``admit(...)``: the same checks as bare comparisons in one step, True
(the send recorded) exactly when ``check`` would pass the order, in ACTIVE and not a change;
on False the caller asks ``check`` / ``evaluate`` for the answer and its reason.
What ``status`` shows of the limits' use (``usage``) is :func:`.limit_usage.limit_usage`.

**Reducing orders.** An order *reduces* when it is on the opposite side of the position it
acts on and its quantity is at most that position (the position is the asset's, plus
``parent_quantity`` for the exit leg of a bracket whose entry is live). Working orders are not
counted here: an exit is never blocked because the strategy's own stop is also working. A
reducing order passes in REDUCING and is exempt from every size, price, exposure and data
limit (a risk manager never blocks an exit; without a price it still goes). It is still
counted by, and subject to, the order-rate limit: that limit bounds the message flow to the
venue whatever the orders do, and a refusal by it only delays an exit to the next bar.

**Through zero.** An order on the opposite side that is *larger* than the position (long 100,
sell 150) opens new risk: in REDUCING it is refused (the reason says the most that closes), in
ACTIVE it is checked as new risk on its whole quantity (order limits) and on the position it
leaves (position, exposure and short limits).

**New risk** is checked against the worst case: the position after this order *and* every
working order on the same side of the same asset fills. Order notional and position notional
use the highest of the last price and the order's limit / stop prices (a buy limit above the
market fills at the market, a stop fills beyond its trigger); only the prices the order type
uses count (a MARKET order's stray ``limit_price`` is ignored, as the venue ignores it).

"At" a limit passes; over it is refused (beyond 1e-9 relative floating-point noise). When a
price-based limit is configured and no price is known (no bar yet for the asset, no limit or
stop price) new risk is refused: fail closed. HALTED refuses every order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ml4t.backtest import OrderSide, OrderType

from ..quantities import EPS as _EPS
from .config import RiskConfig
from .exposure import AssetView, Exposure
from .limit_usage import limit_usage
from .rate import OrderRate
from .state import ACTIVE, HALTED, REDUCING, STATES, TOLERANCE

_NONE = AssetView()  # an asset with no position and no working order (never changed)
_LIMIT_TYPES = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
_STOP_TYPES = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})
_LIMIT, _STOP, _STOP_LIMIT = OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT
_BUY = OrderSide.BUY
_INF = math.inf
#: the limits that read a price (or its age)
PRICED = ("max_order_notional", "max_position_notional", "max_gross_exposure", "price_collar", "max_data_age")


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str  # the limit's name: "max_order_notional", "reducing", "halted", ...
    reason: str

    def as_tuple(self) -> tuple[str, str]:
        return self.code, self.reason


class PreTradeRisk:
    """Checks orders against a :class:`RiskConfig`; fed by the caller through ``exposure``."""

    def __init__(self, config: RiskConfig, exposure: Exposure | None = None) -> None:
        self.config = config
        self.exposure = exposure if exposure is not None else Exposure()
        self.rate = OrderRate(config.max_orders_per_minute, config.max_orders_per_second)
        self.caps = _Caps(config)
        c = config
        #: a limit that reads new risk is configured (else an ACTIVE order meets the rate limit only)
        self.judges_new_risk = not c.allow_short or any(getattr(c, name) is not None for name in (
            "max_open_orders", "max_order_quantity", *PRICED))  # fmt: skip
        self._priced_limits = any(getattr(c, name) is not None for name in PRICED)
        self._notional_limits = any(getattr(c, name) is not None for name in PRICED[:3])
        self._allow_short = c.allow_short
        self._data_age = c.max_data_age is not None
        #: no price's age is known (the end of a run whose last bar was replayed from a journal
        #: that does not say when it arrived): ``max_data_age`` refuses every order adding risk
        self.age_unknown = False
        self._collar = c.price_collar is not None
        self._gross_limit = c.max_gross_exposure is not None

    def usage(self, *, now: float, equity: float, open_orders: int | None) -> list[tuple[str, str, str]]:
        """(limit, configured, current use) for every per-order limit (:func:`.limit_usage.limit_usage`)."""
        return limit_usage(self.config, self.exposure, self.rate, self.age_unknown, now=now, equity=equity,
                           open_orders=open_orders)  # fmt: skip

    def check(
        self,
        asset: str,
        side: OrderSide,
        quantity: float,
        order_type: OrderType = OrderType.MARKET,
        limit_price: float | None = None,
        stop_price: float | None = None,
        *,
        now: float,
        equity: float,
        open_orders: int,
        state: str = ACTIVE,
        state_reason: str = "",
        parent_quantity: float = 0.0,
        replacing: str | None = None,
    ) -> Refusal | None:
        """None when the order may leave (its send is then counted), else the Refusal.

        ``now``: POSIX seconds (the rate window, the data age). ``equity``: the equity of the
        last mark (once per bar is enough). ``open_orders``: the strategy's working orders now.
        ``parent_quantity``: for an exit leg of a bracket, the entry's signed quantity (0 when
        the entry was refused: the leg is then judged on the position alone). ``replacing``: the
        id of the working order a change (``update_order``) replaces; pass the changed order's
        new quantity and prices: its old remaining quantity is not counted as working, and it
        adds no open order (a change is still a message: it counts for the rate limit)."""
        return self.evaluate(asset, side, quantity, order_type, limit_price, stop_price, now, equity, open_orders,
                             state, state_reason, parent_quantity, replacing)  # fmt: skip

    def evaluate(self, asset: str, side: OrderSide, quantity: float, order_type: OrderType,
                 limit_price: float | None, stop_price: float | None, now: float, equity: float, open_orders: int,
                 state: str, state_reason: str, parent_quantity: float, replacing: str | None) -> Refusal | None:  # fmt: skip
        """:meth:`check` with every argument given in order (no keyword matching): the definition
        of every answer, which :meth:`admit` shortcuts for the orders that pass."""
        if state != ACTIVE:
            if state not in STATES:
                raise ValueError(f"trading state must be one of {', '.join(STATES)}, got {state!r}")
            if state == HALTED:
                return Refusal("halted", f"trading is HALTED ({state_reason or 'no reason given'}): no order leaves")
        if not 0 < quantity < math.inf:  # NaN, infinite, zero, negative
            return Refusal("invalid_quantity", f"quantity must be a positive number, got {quantity!r}")
        # The rate limit is judged first (its refusal wins), but it only records a send when
        # every other check passed: ``OrderRate.admit`` checks and records in one step, after the others;
        # when another check refuses, the rate limit's own refusal (if any) is returned instead.
        if state == ACTIVE and not self.judges_new_risk:  # the safe defaults: the rate alone
            too_fast = self.rate.admit(now)
            return None if too_fast is None else Refusal("max_orders_per_minute", too_fast)
        view = self.exposure.assets.get(asset) or _NONE  # prices are read only by the priced limits
        base = view.quantity + parent_quantity
        signed = quantity if side is OrderSide.BUY else -quantity
        if not (base * signed < 0 and quantity <= abs(base) + _EPS):  # new risk (not reducing)
            if order_type not in _LIMIT_TYPES:
                limit_price = None
            if order_type not in _STOP_TYPES:
                stop_price = None
            refusal = self._new_risk(asset, side, quantity, limit_price, stop_price, view, base, signed, now, equity,
                                     open_orders, state, state_reason, replacing)  # fmt: skip
            if refusal is not None:
                too_fast = self.rate.refusal(now)
                return refusal if too_fast is None else Refusal("max_orders_per_minute", too_fast)
        too_fast = self.rate.admit(now)
        return None if too_fast is None else Refusal("max_orders_per_minute", too_fast)

    def admit(self, asset: str, side: OrderSide, quantity: float, order_type: OrderType, limit_price: float | None,
              stop_price: float | None, now: float, equity: float, open_orders: int, parent_quantity: float,
              state: str) -> bool:  # fmt: skip
        """The per-order path (the gate's): True when :meth:`evaluate` returns None for the order
        (not a change), its send then recorded as there; False, with nothing recorded, when it
        would refuse (and in any state but ACTIVE): the caller asks ``evaluate`` why. In one step:
        the checks of ``_new_risk`` and ``_priced`` as bare comparisons, then ``OrderRate.admit``
        (``tests/risk/test_risk_fast_paths.py`` holds the two to the same answers and sends)."""
        if state != ACTIVE or not (quantity > 0 and quantity < _INF):
            return False
        if self.judges_new_risk:
            view = self.exposure.assets.get(asset) or _NONE
            base = view.quantity + parent_quantity
            signed = quantity if side is _BUY else -quantity
            if not (base * signed < 0 and quantity <= abs(base) + _EPS):  # new risk (not reducing)
                caps = self.caps
                if open_orders + 1 > caps.max_open_orders or quantity > caps.max_order_quantity:
                    return False
                if side is _BUY:
                    after = base + view.working_buy + signed
                    covered = after
                else:
                    after = base - view.working_sell + signed
                    covered = after + view.working_buy
                if covered < -_EPS and not self._allow_short:
                    return False
                if self._priced_limits:
                    exposure = self.exposure
                    bar = exposure._bar  # exposure.price(asset) and price_time(asset), inlined
                    if bar is not None and asset in bar:
                        last, as_of = bar[asset], exposure._bar_as_of
                        if last is None:
                            last = exposure.prices.get(asset)
                    else:
                        last, as_of = exposure.prices.get(asset), exposure.price_times.get(asset)
                    if last is not None and not (last > 0 and last < _INF):
                        last = None
                    if self._data_age and (as_of is None or now - exposure.to_seconds(as_of) > caps.max_data_age
                                           or self.age_unknown):  # fmt: skip
                        return False
                    ref = last  # the highest of the last, limit and stop prices
                    if limit_price is not None or stop_price is not None:  # (not a market order)
                        if limit_price is not None and order_type is not _LIMIT and order_type is not _STOP_LIMIT:
                            limit_price = None  # a price the order type does not use is ignored
                        if stop_price is not None and order_type is not _STOP and order_type is not _STOP_LIMIT:
                            stop_price = None
                        if self._collar and (limit_price is not None or stop_price is not None):
                            if last is None:
                                return False
                            if limit_price is not None and abs(limit_price - last) / last > caps.price_collar:
                                return False
                            if stop_price is not None and abs(stop_price - last) / last > caps.price_collar:
                                return False
                        if limit_price is not None and (ref is None or limit_price > ref):
                            ref = limit_price
                        if stop_price is not None and (ref is None or stop_price > ref):
                            ref = stop_price
                    if self._notional_limits:
                        if ref is None:
                            return False
                        mult = view.multiplier
                        if quantity * ref * mult > caps.max_order_notional:
                            return False
                        position_after = abs(after) * ref * mult
                        if position_after > caps.max_position_notional:
                            return False
                        if self._gross_limit:
                            if exposure._stale:  # exposure.gross, inlined
                                exposure._resum()
                            gross = max(exposure._gross, 0.0) - abs(view.quantity * (last or 0.0) * mult) + \
                                position_after  # fmt: skip
                            if equity <= 0 or gross / equity > caps.max_gross_exposure:
                                return False
        rate = self.rate  # rate.admit(now), inlined (once per order)
        if rate.per_minute is not None:
            sent = rate._sent
            if len(sent) >= rate._full and rate.refusal(now) is not None:
                return False
            last_sent = rate._last
            if now > last_sent:
                rate._last = last_sent = now
            sent.append(last_sent)
        return True

    def reduces(self, asset: str, side: OrderSide, quantity: float, parent_quantity: float = 0.0) -> bool:
        """The order reduces the asset's position (plus ``parent_quantity``): opposite side, at most
        the position (the test :meth:`evaluate` makes)."""
        base = (self.exposure.assets.get(asset) or _NONE).quantity + parent_quantity
        signed = quantity if side is OrderSide.BUY else -quantity
        return base * signed < 0 and quantity <= abs(base) + _EPS

    # ------------------------------------------------------------------ new risk
    def _new_risk(self, asset: str, side: OrderSide, quantity: float, limit_price: float | None,
                  stop_price: float | None, view: AssetView, base: float, signed: float, now: float,
                  equity: float, open_orders: int, state: str, state_reason: str,
                  replacing: str | None) -> Refusal | None:  # fmt: skip
        c, caps = self.config, self.caps  # an absent limit's cap is infinite: its test never refuses
        if state == REDUCING:
            return Refusal("reducing", _reducing_reason(asset, side, quantity, base, state_reason))
        if replacing is None and open_orders + 1 > caps.max_open_orders:
            return Refusal("max_open_orders", f"max_open_orders: {open_orders} working + this one = "
                           f"{open_orders + 1} > {c.max_open_orders}")  # fmt: skip
        if quantity > caps.max_order_quantity:
            return Refusal("max_order_quantity", f"max_order_quantity: {quantity:,g} > {c.max_order_quantity:,g}")
        working = view.working_buy if side is OrderSide.BUY else -view.working_sell
        if replacing is not None:  # the order being changed is replaced, not added to
            mine = self.exposure.remaining(replacing, asset, side)
            working -= mine if side is OrderSide.BUY else -mine
        after = base + working + signed  # the worst case: every same-side working order fills too
        # a sell counts the working buys of the same asset as filled: a protective stop placed with
        # its (not yet filled) entry is not a short; the sells already working count in full
        covered = after + (view.working_buy if side is OrderSide.SELL else 0.0)
        if not c.allow_short and covered < -_EPS:
            pending = f" and {-working:,g} working" if working else ""
            return Refusal("allow_short", f"allow_short is false: {asset} position {base:,g}{pending} "
                           f"- {quantity:,g} would be {covered:,g} (short)")  # fmt: skip
        if not self._priced_limits:
            return None
        return self._priced(asset, quantity, limit_price, stop_price, view, after, now, equity)

    def _priced(self, asset: str, quantity: float, limit_price: float | None, stop_price: float | None,
                view: AssetView, after: float, now: float, equity: float) -> Refusal | None:  # fmt: skip
        c, caps, exposure = self.config, self.caps, self.exposure
        last = exposure.price(asset)
        if c.max_data_age is not None:
            if self.age_unknown:
                return Refusal("max_data_age", f"max_data_age: the age of the last {asset} price is unknown (the "
                               "run's last bar was replayed from a journal that does not say when it arrived): "
                               "no new risk")  # fmt: skip
            price_time = exposure.price_time(asset)
            if price_time is None:
                return Refusal("max_data_age", f"max_data_age: no price time for {asset} yet: no new risk")
            age = now - price_time
            if age > caps.max_data_age:
                return Refusal("max_data_age", f"max_data_age: the last {asset} price is {age:,.1f} s old "
                               f"> {c.max_data_age:,g} s: no new risk on stale prices")  # fmt: skip
        if (limit_price is not None or stop_price is not None) and c.price_collar is not None:
            for name, price in (("limit", limit_price), ("stop", stop_price)):
                if price is None:
                    continue
                if last is None:
                    return Refusal("price_collar", f"price_collar: no last price for {asset} to check the "
                                   f"{name} price {price:,.2f} against")  # fmt: skip
                away = abs(price - last) / last
                if away > caps.price_collar:
                    return Refusal("price_collar", f"price_collar: {name} {price:,.2f} is {away:.2%} from the "
                                   f"last price {last:,.2f} > {c.price_collar:.2%}")  # fmt: skip
        if not self._notional_limits:
            return None
        ref = last  # the highest of the last, limit and stop prices
        if limit_price is not None and (ref is None or limit_price > ref):
            ref = limit_price
        if stop_price is not None and (ref is None or stop_price > ref):
            ref = stop_price
        if ref is None:
            return Refusal("no_price", f"no price for {asset} yet (no bar, no limit or stop price): "
                           "the notional limits cannot be checked, so no new risk")  # fmt: skip
        mult = view.multiplier
        notional = quantity * ref * mult
        if notional > caps.max_order_notional:
            return Refusal("max_order_notional", f"max_order_notional: {quantity:,g} x {ref:,.2f}{_times(mult)} = "
                           f"{notional:,.2f} > {c.max_order_notional:,.2f}")  # fmt: skip
        position_after = abs(after) * ref * mult
        if position_after > caps.max_position_notional:
            return Refusal("max_position_notional", f"max_position_notional: {asset} {after:,g} x {ref:,.2f}"
                           f"{_times(mult)} = {position_after:,.2f} after the order > "
                           f"{c.max_position_notional:,.2f}")  # fmt: skip
        if c.max_gross_exposure is not None:
            # exposure.notional(asset), with the price read above
            gross = exposure.gross - abs(view.quantity * (last or 0.0) * mult) + position_after
            if equity <= 0:
                return Refusal("max_gross_exposure", f"max_gross_exposure: equity is {equity:,.2f}: no new exposure")
            ratio = gross / equity
            if ratio > caps.max_gross_exposure:
                return Refusal("max_gross_exposure", f"max_gross_exposure: gross {gross:,.2f} after the order / "
                               f"equity {equity:,.2f} = {ratio:.2f}x > {c.max_gross_exposure:g}x")  # fmt: skip
        return None


class _Caps:
    """Each limit plus its floating-point tolerance (``state.exceeds``), computed once: a check
    compares with ``>`` only. An absent limit is infinite (its test never refuses)."""

    def __init__(self, config: RiskConfig) -> None:
        for name in ("max_order_quantity", "max_order_notional", "max_position_notional", "max_gross_exposure",
                     "price_collar", "max_data_age"):  # fmt: skip
            limit = getattr(config, name)
            setattr(self, name, math.inf if limit is None else limit + TOLERANCE * max(1.0, abs(limit)))
        # a count: compared exactly
        self.max_open_orders = math.inf if config.max_open_orders is None else config.max_open_orders


def _times(multiplier: float) -> str:
    return f" x {multiplier:,g}" if multiplier != 1 else ""


def _reducing_reason(asset: str, side: OrderSide, quantity: float, base: float, state_reason: str) -> str:
    why = f" ({state_reason})" if state_reason else ""
    head = f"trading is REDUCING{why}: only orders that reduce a position leave; "
    if base == 0:
        return head + f"{asset} is flat, so a {side.value} of {quantity:,g} opens a position"
    if (base > 0) == (side is OrderSide.BUY):
        return head + f"a {side.value} of {quantity:,g} would increase the {asset} position of {base:,g}"
    return head + (f"a {side.value} of {quantity:,g} would take the {asset} position of {base:,g} through "
                   f"zero to {base + (quantity if side is OrderSide.BUY else -quantity):,g}; "
                   f"at most {abs(base):,g} closes it")  # fmt: skip
