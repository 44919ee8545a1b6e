"""The rails' fast paths give the answers of the paths they shortcut (docs/performance.md, "The risk rails").

* ``OrderRate.admit(now)`` == ``refusal(now)`` and, when there is none, ``record(now)``.
* ``Exposure.order_ended(id, filled)`` == ``order_filled(id, filled)`` (when filled > 0) then
  ``order_closed(id)``.
* ``Exposure.follow(order, contingent)`` == ``order_working(id, asset, side, unfilled, contingent=...)``,
  also for an order tracked twice; then ``Exposure.settle()`` (a bar's open, read from the orders)
  == ``order_filled`` / ``order_ended`` for what each order did.
* The day each bar counts for the daily loss limit is its own date's (``trading_day``).
* ``PreTradeRisk.admit`` (the gate's one-step check of an order that is not a change) passes
  exactly the orders ``PreTradeRisk.evaluate`` passes, and records the same sends.
* The shadow's one-step refresh at a bar's open (``ShadowRails._positions``) leaves the gate with
  the backtest broker's positions, as the refresh one asset at a time did.
* ``PreTradeRisk.check`` with no new-risk limit (the safe defaults: the rate alone in ACTIVE)
  refuses exactly what the full path refuses when a new-risk limit that never binds is set.
* ``ShadowRails.submit_order`` (``gate.track`` inlined) leaves the gate following, counting and
  refusing as the rails by their definitions (``gate.track``, then ``gate.position`` asset by
  asset) do, over random replays with refusals, brackets, changes, cancels and closes.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from ml4t.backtest import (
    BacktestConfig,
    ContractSpec,
    ExecutionMode,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Strategy,
)

from ml4t_live import LiveEngine
from ml4t_live import shadow as shadow_module
from ml4t_live.risk import (
    ACTIVE,
    HALTED,
    REDUCING,
    Exposure,
    OrderRate,
    PreTradeRisk,
    RiskConfig,
)
from ml4t_live.risk.gate import unfilled_entry
from ml4t_live.shadow import ShadowBroker
from ml4t_live.shadow_rails import ShadowRails
from tests.support.fakes import ListFeed, bar

BUY, SELL = OrderSide.BUY, OrderSide.SELL


def test_admit_answers_and_records_as_refusal_then_record():
    rng = random.Random(7)
    fast, slow = OrderRate(12, 2), OrderRate(12, 2)
    now, answers = 0.0, []
    for _ in range(3_000):
        now += rng.choice((0.0, 0.01, 0.3, 0.9, 1.0, 5.0, 20.0))
        expected = slow.refusal(now)
        if expected is None:
            slow.record(now)
        got = fast.admit(now)
        assert got == expected
        assert fast.in_last_minute(now) == slow.in_last_minute(now)
        answers.append(got is None)
    assert any(answers) and not all(answers)  # both answers were exercised


def test_admit_keeping_sends_unexpired_below_the_caps_answers_as_refusal_then_record():
    """Caps above what ``admit`` keeps before it expires the window (sends pile up unexpired,
    then bursts and full minutes refuse): still the reference's answers, and a bounded deque."""
    rng = random.Random(9)
    for per_minute, per_second in ((600, 100), (3000, 500), (60, 10)):
        fast, slow = OrderRate(per_minute, per_second), OrderRate(per_minute, per_second)
        now, answers, step = 0.0, [], 0.0
        for n in range(40_000):
            if n % 200 == 0:  # phases: bursts, busy minutes, quiet spells, a gap
                step = rng.choice((0.0, 0.0005, 0.005, 0.012, 0.3))
                now += rng.choice((0.0, 0.0, 61.0))
            now += step * 2 * rng.random()
            expected = slow.refusal(now)
            if expected is None:
                slow.record(now)
            got = fast.admit(now)
            assert got == expected
            answers.append(got)
        assert fast.in_last_minute(now) == slow.in_last_minute(now)
        # every answer was exercised: sent, the burst cap, the minute's cap
        assert None in answers and {a.split(":")[0] for a in answers if a} == {
            "max_orders_per_minute (burst)", "max_orders_per_minute"}, (per_minute, set(answers))


def test_admit_without_a_limit_never_refuses_and_keeps_nothing():
    rate = OrderRate(None, None)
    assert all(rate.admit(float(t)) is None for t in range(100))
    assert rate.in_last_minute(100.0) == 0


def test_order_ended_is_the_last_fill_then_closed():
    rng = random.Random(11)
    for _ in range(500):
        one, two = Exposure(), Exposure()
        orders = []
        for n in range(rng.randint(1, 6)):
            args = (f"o{n}", rng.choice("AB"), rng.choice((BUY, SELL)), rng.choice((1.0, 2.5, 10.0, 0.1)))
            contingent = rng.random() < 0.2
            one.order_working(*args, contingent=contingent)
            two.order_working(*args, contingent=contingent)
            orders.append(args[0])
        for oid in orders:
            if rng.random() < 0.4:  # an earlier partial fill, seen on a previous bar
                part = rng.choice((0.1, 0.5, 1.0))
                one.order_filled(oid, part)
                two.order_filled(oid, part)
        rng.shuffle(orders)
        for oid in orders + ["unknown"]:
            last = rng.choice((0.0, 0.1, 0.3, 1.0, 2.5, 7.0, 50.0))
            if last > 0:
                one.order_filled(oid, last)
            one.order_closed(oid)
            two.order_ended(oid, last)
            for asset in "AB":
                a, b = one.view(asset), two.view(asset)
                assert (a.working_buy, a.working_sell) == (b.working_buy, b.working_sell)
            assert one.working_orders == two.working_orders


def _orders(rng: random.Random, n: int):
    for _ in range(n):
        yield (rng.choice("AB"), rng.choice((BUY, SELL)), rng.choice((1.0, 5.0, 50.0, -1.0, 0.0, float("nan"))),
               rng.choice((ACTIVE, ACTIVE, REDUCING, HALTED)), rng.choice((0.0, 0.05, 0.2, 1.0)))  # fmt: skip


def test_the_defaults_fast_path_refuses_what_the_full_path_refuses():
    rng = random.Random(3)
    # the safe defaults, shorting allowed (a shadow run whose backtest allows it): the rate alone
    fast = PreTradeRisk(RiskConfig(max_orders_per_minute=30, allow_short=True))
    full = PreTradeRisk(RiskConfig(max_orders_per_minute=30, allow_short=True, max_order_quantity=1e12))
    assert not fast.judges_new_risk and full.judges_new_risk
    for risk in (fast, full):
        risk.exposure.set_position("A", 10.0)
        risk.exposure.set_position("B", -5.0)
    now, codes = 0.0, set()
    for asset, side, quantity, state, step in _orders(rng, 4_000):
        now += step
        kw = {"now": now, "equity": 1e6, "open_orders": 0, "state": state, "state_reason": "test"}
        got = fast.check(asset, side, quantity, OrderType.MARKET, **kw)
        expected = full.check(asset, side, quantity, OrderType.MARKET, **kw)
        assert got == expected
        codes.add(None if got is None else got.code)
    assert codes == {None, "max_orders_per_minute", "reducing", "halted", "invalid_quantity"}


def test_a_new_risk_refusal_gives_way_to_the_rate_limit_and_uses_no_budget():
    risk = PreTradeRisk(RiskConfig(max_orders_per_minute=6, max_order_quantity=10))
    kw = {"now": 100.0, "equity": 1e6, "open_orders": 0}
    assert risk.check("A", BUY, 1.0, **kw) is None  # the burst cap is ceil(6 / 6) = 1 per second
    assert risk.check("A", BUY, 50.0, **kw).code == "max_orders_per_minute"  # both break: the rate's
    kw["now"] = 101.5
    assert risk.check("A", BUY, 50.0, **kw).code == "max_order_quantity"
    assert risk.check("A", BUY, 1.0, **kw) is None  # the refused order used no budget


def test_follow_and_settle_count_an_order_as_order_working_filled_and_ended_do():
    rng = random.Random(5)
    for _ in range(300):
        one, two, orders = Exposure(), Exposure(), []
        for n in range(rng.randint(1, 6)):
            order = Order(asset=rng.choice("AB"), side=rng.choice((BUY, SELL)),
                          quantity=rng.choice((1.0, 2.5, 10.0)), order_id=f"o{n}")  # fmt: skip
            order.filled_quantity = rng.choice((0.0, 0.0, 0.5, 1.0))  # an order that filled in part at once
            contingent = rng.random() < 0.2
            one.order_working(order.order_id, order.asset, order.side, order.quantity - order.filled_quantity,
                              contingent=contingent)  # fmt: skip
            two.follow(order, contingent)
            orders.append(order)
        for order in rng.sample(orders, k=len(orders) // 2):  # tracked again (a change): counts once
            one.order_working(order.order_id, order.asset, order.side, order.quantity, contingent=False)
            two.follow(order, False)
        seen = {order.order_id: order.filled_quantity for order in orders}
        for order in orders:
            assert one.remaining(order.order_id, order.asset, order.side) == \
                two.remaining(order.order_id, order.asset, order.side)  # fmt: skip
        for asset in "AB":
            a, b = one.view(asset), two.view(asset)
            assert (a.working_buy, a.working_sell) == (b.working_buy, b.working_sell)
        for order in orders:  # a bar's open: some fill in part, some end (with a last fill or not)
            fill = rng.choice((0.0, 0.5))
            order.filled_quantity += fill
            ends = rng.random() < 0.6
            if ends:
                order.status = rng.choice((OrderStatus.FILLED, OrderStatus.CANCELLED))
                one.order_ended(order.order_id, fill)
            elif fill:
                one.order_filled(order.order_id, fill)
        filled = two.settle()
        assert filled == {o.asset for o in orders if o.filled_quantity != seen[o.order_id]}
        assert one.working_orders == two.working_orders
        for asset in "AB":
            a, b = one.view(asset), two.view(asset)
            assert (a.working_buy, a.working_sell) == pytest.approx((b.working_buy, b.working_sell))
        for order in orders:
            if order.status is OrderStatus.PENDING:
                order.status = OrderStatus.CANCELLED
                one.order_ended(order.order_id)
        assert two.settle() == set()
        assert one.working_orders == two.working_orders == 0
        for asset in "AB":
            a, b = one.view(asset), two.view(asset)
            assert (a.working_buy, a.working_sell) == (b.working_buy, b.working_sell)


class _RandomTrader(Strategy):
    """Each bar a few random buys and sells on three assets; in each ``on_data`` (after the bar's
    open refreshed the gate) the gate's positions are read against the backtest broker's."""

    def __init__(self, shadow: ShadowBroker) -> None:
        self.shadow, self.rng, self.compared, self.held = shadow, random.Random(9), 0, 0

    def on_data(self, timestamp, data, context, broker):
        positions, gate = self.shadow.strategy_broker.positions, self.shadow.rails.gate
        for asset in data:
            held = positions.get(asset)
            view = gate.exposure.assets.get(asset)
            assert (view.quantity if view else 0.0) == (held.quantity if held else 0.0)
            self.compared += 1
            self.held += held is not None
        for _ in range(self.rng.randint(0, 3)):
            asset = self.rng.choice(sorted(data))
            broker.submit_order(asset, self.rng.choice((-7.0, -3.0, 2.0, 5.0, 10.0)))


def test_the_one_step_refresh_keeps_the_gates_positions_equal_to_the_brokers():
    loose = {"max_order_notional": 1e12, "max_position_notional": 1e12, "max_gross_exposure": 1e3,
             "max_order_quantity": 1e9, "max_open_orders": 10_000, "price_collar": 0.5, "max_data_age": "1d",
             "max_orders_per_minute": 1_000_000, "allow_short": True}  # fmt: skip
    rng, start = random.Random(4), datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    bars = [bar(start + timedelta(minutes=n), {a: 100.0 + rng.uniform(-5, 5) for a in ("A", "B", "C")})
            for n in range(200)]  # fmt: skip
    shadow = ShadowBroker(BacktestConfig(initial_cash=1e9, calendar=None), risk=loose)
    strategy = _RandomTrader(shadow)
    result = LiveEngine(strategy, shadow, ListFeed(bars), session_dir=False).run()
    assert strategy.compared == 600 and strategy.held > 100  # positions were held, and compared each bar
    assert len(result.fills) > 100 and result.metrics["num_risk_refusals"] == 0  # (the backtest refuses shorts)


def _random_config(rng: random.Random) -> RiskConfig:
    """Each limit absent or set (tight enough to bind now and then)."""
    table = {"max_order_notional": rng.choice((None, 500.0, 5_000.0)),
             "max_order_quantity": rng.choice((None, 5.0, 50.0)),
             "max_position_notional": rng.choice((None, 1_000.0, 8_000.0)),
             "max_gross_exposure": rng.choice((None, 0.5, 2.0)),
             "max_open_orders": rng.choice((None, 2, 5)),
             "price_collar": rng.choice((None, 0.02, 0.1)),
             "max_data_age": rng.choice((None, "30s", "5m")),
             "max_orders_per_minute": rng.choice((None, 6, 60)),
             "allow_short": rng.random() < 0.5}  # fmt: skip
    return RiskConfig.from_table({k: v for k, v in table.items() if v is not None})


def _move_exposure(rng: random.Random, n: int, *exposures: Exposure) -> None:
    """The same random positions, working orders and prices into each of ``exposures``."""
    for asset in "AB":
        if rng.random() < 0.5:
            position = rng.choice((-20.0, -3.0, 0.0, 4.0, 30.0)), rng.choice((1.0, 1.0, 10.0))
            for exposure in exposures:
                exposure.set_position(asset, *position)
        for side in (BUY, SELL):
            if rng.random() < 0.3:
                working = f"w{n}{asset}{side.value}", asset, side, rng.choice((1.0, 10.0)), rng.random() < 0.2
                for exposure in exposures:
                    exposure.order_working(*working[:4], contingent=working[4])
    if rng.random() < 0.5:
        bar_prices = {a: rng.choice((95.0, 100.0, float("nan"), 0.0, None)) for a in "AB" if rng.random() < 0.8}
        as_of = rng.choice((1_000.0, 960.0))
        for exposure in exposures:
            exposure.set_prices(bar_prices, as_of)
    if rng.random() < 0.2:
        for exposure in exposures:
            exposure.set_price("A", 101.0, 700.0)  # a kept price (an older bar's), with its own time


def test_admit_passes_exactly_what_evaluate_passes_and_records_the_same_sends():
    """``PreTradeRisk.admit`` (the gate's per-order path, then ``evaluate`` for the why when it
    says no) against ``evaluate`` alone, order after order on the same limits and state: the
    same answers, the same sends recorded; in ACTIVE ``admit`` says yes exactly when
    ``evaluate`` passes. New risk and reducing orders, bracket legs (``parent_quantity``),
    invalid quantities, every trading state, and a clock that steps back."""
    rng = random.Random(21)
    answers, passed = set(), 0
    for _ in range(3_000):
        config = _random_config(rng)
        fast, full = PreTradeRisk(config), PreTradeRisk(config)
        now = 1_000.0
        for n in range(rng.randint(1, 12)):
            if rng.random() < 0.5:
                _move_exposure(rng, n, fast.exposure, full.exposure)
            now += rng.choice((0.0, 0.0, 0.01, 0.3, 5.0, 30.0, -2.0))  # the clock steps back now and then
            asset, side = rng.choice("AB"), rng.choice((BUY, SELL))
            quantity = rng.choice((1.0, 3.0, 4.0, 10.0, 20.0, 60.0))
            if rng.random() < 0.05:
                quantity = rng.choice((0.0, -1.0, float("nan"), float("inf")))
            order_type = rng.choice((OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT))
            limit_price = rng.choice((None, 99.0, 120.0))  # also on a type that does not use it
            stop_price = rng.choice((None, 101.0, 80.0))
            equity, open_orders = rng.choice((1e4, 1e5, 0.0)), rng.choice((0, 1, 2, 4, 5))
            parent = rng.choice((0.0, 0.0, 0.0, 5.0, -5.0))  # a bracket leg's live entry
            state = rng.choice((ACTIVE,) * 8 + (REDUCING, HALTED))
            args = (asset, side, quantity, order_type, limit_price, stop_price, now, equity, open_orders)
            expected = full.evaluate(*args, state, "test", parent, None)
            admitted = fast.admit(*args, parent, state)
            got = None if admitted else fast.evaluate(*args, state, "test", parent, None)
            assert got == expected, (args, parent, state, config)
            if state == ACTIVE:
                assert admitted == (expected is None), (args, parent, config)
            else:
                assert not admitted
            assert (fast.rate._sent, fast.rate._last) == (full.rate._sent, full.rate._last)
            answers.add(None if expected is None else expected.code)
            passed += admitted
    assert passed > 2_500
    assert answers == {None, "max_open_orders", "max_order_quantity", "allow_short", "max_data_age", "price_collar",
                       "no_price", "max_order_notional", "max_position_notional", "max_gross_exposure",
                       "max_orders_per_minute", "reducing", "halted", "invalid_quantity"}


def test_each_bar_counts_on_the_day_its_own_date_gives():
    """The day the daily loss limit counts for each bar (``RiskGate.open_bar``, then the
    equity) is the one ``trading_day`` gives it: across midnights, DST changes, zones, naive and
    aware bars, dates, and bars that move back."""
    from zoneinfo import ZoneInfo

    from ml4t_live.risk import RiskGate
    from ml4t_live.risk.gate import trading_day

    rng = random.Random(17)
    gate = RiskGate(RiskConfig.from_table({"max_daily_loss": 1_000.0}))
    zones = (UTC, ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo"), None)
    checked = days = 0
    for start in (datetime(2024, 3, 9, 20, 0), datetime(2024, 11, 2, 21, 30), datetime(2024, 12, 31, 22, 0)):
        for zone in zones:
            at = start.replace(tzinfo=zone)
            for _ in range(300):
                at += timedelta(minutes=rng.choice((1, 7, 45, 180, -30)))
                bar_time = at if rng.random() < 0.9 else at.date()
                gate.open_bar(bar_time)
                gate.observe_equity(1e6)
                expected = trading_day(bar_time)
                assert gate.state.day == expected, (bar_time, gate.state.day, expected)
                checked += 1
            days += 1
    assert checked == 3_600 and days == 12


def test_each_bar_counts_on_its_own_day_when_the_tzinfo_changes():
    """Bars parsed from ISO strings (a fixed-offset tzinfo per bar, the offset changing at DST),
    bars of two zones in turn, a numpy bar among datetimes: each bar's day is its own date's
    (a reviewer's case against a per-day bounds shortcut, since removed: bounds built with one
    bar's offset put 2024-03-11 00:30-04:00 on the 10th)."""
    from datetime import timezone
    from zoneinfo import ZoneInfo

    import numpy as np

    from ml4t_live.risk import RiskGate
    from ml4t_live.risk.gate import trading_day

    new_york = ZoneInfo("America/New_York")
    iso = []  # every 30 minutes across the spring DST change, each with its own offset object
    at = datetime(2024, 3, 9, 20, 0, tzinfo=UTC)
    for _ in range(120):
        local = at.astimezone(new_york)
        iso.append(datetime.fromisoformat(local.isoformat()))
        at += timedelta(minutes=30)
    mixed = [datetime(2024, 1, 2, 12, tzinfo=UTC), datetime(2024, 1, 1, 22, tzinfo=new_york),
             datetime(2024, 1, 2, 3, tzinfo=UTC), datetime(2024, 1, 2, 23, 30, tzinfo=timezone(timedelta(hours=-5)))]  # fmt: skip
    numpy_among = [datetime(2024, 1, 2, 12), np.datetime64("2024-01-03T12:00"), datetime(2024, 1, 3, 23, 59)]
    for bars in (iso, mixed, numpy_among):
        gate = RiskGate(RiskConfig.from_table({"max_daily_loss": 1_000.0}))
        for bar_time in bars:
            gate.open_bar(bar_time)
            gate.observe_equity(1e6)
            assert gate.state.day == trading_day(bar_time), (bar_time, gate.state.day)
    assert {b.utcoffset() for b in iso} == {timedelta(hours=-5), timedelta(hours=-4)}  # the change is in it


class _ExpireAtEveryCall:
    """The order-rate limit's definition, kept simple: the window expired at every call, by
    that call's clock; a send recorded at the latest time seen."""

    def __init__(self, per_minute: int, per_second: int) -> None:
        self.per_minute, self.per_second, self.sent, self.last = per_minute, per_second, [], float("-inf")

    def admit(self, now: float) -> bool:
        while self.sent and self.sent[0] <= now - 60.0:
            self.sent.pop(0)
        in_second = sum(1 for t in self.sent if t > now - 1.0)
        if in_second >= self.per_second or len(self.sent) >= self.per_minute:
            return False
        self.last = max(self.last, now)
        self.sent.append(self.last)
        return True


def test_admit_answers_as_the_window_expired_at_every_order_also_when_the_clock_steps_back():
    """A clock that steps back (NTP, a bar whose clock starts before the last order's), a NaN
    clock: ``admit`` sends exactly what expiring the window at every order would send."""
    rng = random.Random(5)
    for per_minute, per_second in ((2, 2), (12, 2), (600, 100), (60, 10)):
        fast, reference = OrderRate(per_minute, per_second), _ExpireAtEveryCall(per_minute, per_second)
        now, sent = 0.0, []
        for _ in range(8_000):
            now = max(now + rng.choice((0.0, 0.002, 0.01, 0.4, 2.0, 30.0, 61.0, -0.5, -3.0, -40.0)), 0.0)
            clock = float("nan") if rng.random() < 0.01 else now
            expected = reference.admit(clock)
            assert (fast.admit(clock) is None) == expected, (per_minute, clock)
            sent.append(expected)
        assert any(sent) and not all(sent)
    assert _minimal_case() == [True, True, True]


def _minimal_case() -> list[bool]:
    """A reviewer's case: sends at 0 and 61, then the clock steps back to 59.5: the send at 0
    left the minute when the one at 61 went, so a third goes too."""
    rate = OrderRate(2, None)
    return [rate.admit(t) is None for t in (0.0, 61.0, 59.5)]


class _DefinitionRails(ShadowRails):
    """The shadow rails by their definitions: every order checked, then ``gate.track`` and
    ``gate.position`` (no inlined follow, no one-step refresh)."""

    def submit_order(self, asset, quantity, side=None, order_type=OrderType.MARKET, limit_price=None,
                     stop_price=None, trail_amount=None, _options=None):  # fmt: skip
        kind = type(quantity)
        if not (kind is float or kind is int or (kind is not bool and isinstance(quantity, int | float))) \
                or not 1e-9 < abs(quantity) < math.inf:  # fmt: skip
            return self._submit(asset, quantity, side, order_type, limit_price, stop_price, trail_amount, _options)
        if side is None:
            side = BUY if quantity >= 0 else SELL
        size, bracket, entry = abs(float(quantity)), self._bracket, None
        if bracket:
            entry = bracket[0]
            if entry.order_id in self._refused_ids:
                return self._refuse(asset, side, size, order_type, limit_price, stop_price, trail_amount,
                                    "bracket_entry_refused", f"its bracket entry {entry.order_id} was refused "
                                    f"({entry.rejection_reason})")  # fmt: skip
        refusal = (self.gate.bracket_room(asset, side, size)
                   if bracket is not None and not bracket and not self.gate.halted else None)
        if refusal is None:
            refusal = self.gate.check(asset, side, size, order_type, limit_price, stop_price,
                                      open_orders=len(self.broker.pending_orders), parent_quantity=unfilled_entry(entry))  # fmt: skip
        if refusal is not None:
            order = self._refuse(asset, side, size, order_type, limit_price, stop_price, trail_amount,
                                 refusal.code, refusal.reason)  # fmt: skip
        else:
            order = self._submit(asset, quantity, side, order_type, limit_price, stop_price, trail_amount, _options)
            if order is not None:
                self.gate.track(order, contingent=entry is not None)
                if order.filled_quantity:
                    self._position(asset)
        if bracket is not None and not bracket and order is not None:
            bracket.append(order)
        return order

    def _positions(self, assets):
        for asset in assets:
            self._position(asset)


class _BusyTrader(Strategy):
    """Each bar a few random actions on three assets: orders of each type and size (new risk,
    reducing, through zero, refused by a limit or the rate), brackets, changes, cancels and
    closes. After each action the gate's state is recorded: what it follows and counts."""

    def __init__(self, shadow: ShadowBroker) -> None:
        self.shadow, self.rng, self.seen = shadow, random.Random(13), []

    def record(self, what, answer) -> None:
        gate = self.shadow.rails.gate
        exposure = gate.exposure
        if isinstance(answer, Order):
            answer = (answer.order_id, answer.status, answer.rejection_reason)
        self.seen.append((what, answer, dict(gate.refused), len(gate.limits.rate._sent),
                          {a: (v.quantity, v.multiplier, v.working_buy, v.working_sell) for a, v in exposure.assets.items()},
                          {i: (left, filled, view is None) for i, (_, left, filled, view) in exposure._followed.items()}))  # fmt: skip

    def on_data(self, timestamp, data, context, broker):
        rng, assets = self.rng, sorted(data)
        self.record("bar", None)
        for _ in range(rng.randint(0, 4)):
            asset, act = rng.choice(assets), rng.random()
            price = data[asset]["close"]
            if act < 0.45:
                kind = rng.choice((OrderType.MARKET, OrderType.MARKET, OrderType.LIMIT, OrderType.STOP))
                prices = {"limit_price": price * rng.choice((0.9, 0.99, 1.01))} if kind is OrderType.LIMIT else \
                    {"stop_price": price * rng.choice((0.9, 1.01, 1.2))} if kind is OrderType.STOP else {}  # fmt: skip
                quantity = rng.choice((-15.0, -7.0, -3.0, 2.0, 5, 10.0, 14.0))
                self.record("order", broker.submit_order(asset, quantity, order_type=kind, **prices))
            elif act < 0.6:
                legs = broker.submit_bracket(asset, rng.choice((3.0, 8.0, 13.0)), take_profit=price * 1.05,
                                             stop_loss=price * 0.95)  # fmt: skip
                self.record("bracket", None if legs is None else tuple(o.order_id for o in legs))
            elif act < 0.75 and broker.pending_orders:
                order = rng.choice(broker.pending_orders)
                self.record("change", broker.update_order(order.order_id, quantity=rng.choice((1.0, 6.0, 20.0))))
            elif act < 0.85 and broker.pending_orders:
                self.record("cancel", broker.cancel_order(rng.choice(broker.pending_orders).order_id))
            else:
                self.record("close", broker.close_position(asset))


def _busy_run(same_bar: bool) -> list:
    limits = {"max_order_quantity": 14, "max_position_notional": 2_500.0, "max_open_orders": 6,
              "max_orders_per_minute": 30, "price_collar": 0.15, "max_gross_exposure": 0.5, "max_data_age": "1m",
              "allow_short": False}  # fmt: skip
    rng, start = random.Random(4), datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    bars = [bar(start + timedelta(seconds=7 * n), {a: 100.0 + rng.uniform(-8, 8) for a in ("A", "B", "C")})
            for n in range(200)]  # (7 s apart: no send is ever exactly a minute old)  # fmt: skip
    config = BacktestConfig(initial_cash=1e4, calendar=None)
    if same_bar:  # a market order fills in submit_order: the position is read at once
        config = BacktestConfig(initial_cash=1e4, calendar=None, execution_mode=ExecutionMode.SAME_BAR,
                                immediate_fill=True)  # fmt: skip
    shadow = ShadowBroker(config, risk=limits, contract_specs={"C": ContractSpec("C", multiplier=2.0)})
    strategy = _BusyTrader(shadow)
    LiveEngine(strategy, shadow, ListFeed(bars), session_dir=False).run()
    return strategy.seen


@pytest.mark.parametrize("same_bar", [False, True], ids=["next_bar", "same_bar"])
def test_the_inlined_follow_keeps_the_gate_as_track_and_position_do(monkeypatch, same_bar):
    """``ShadowRails.submit_order`` (``gate.track`` inlined, the pending count read without the
    property) and its one-step refresh at each bar's open, against the rails by their
    definitions: after every order, bracket, change, cancel and close the gate follows, counts
    and refuses the same (orders filled at the next open, or at once)."""
    fast = _busy_run(same_bar)
    monkeypatch.setattr(shadow_module, "ShadowRails", _DefinitionRails)
    reference = _busy_run(same_bar)
    assert len(fast) == len(reference) > 500
    for got, expected in zip(fast, reference, strict=True):
        assert got == expected
    assert {"max_order_quantity", "max_position_notional", "allow_short", "max_gross_exposure", "price_collar",
            "max_orders_per_minute", "bracket_entry_refused"} <= set(fast[-1][2])  # fmt: skip
    assert same_bar or "max_open_orders" in fast[-1][2]
    answers = [seen[1][1] for seen in fast if seen[0] == "order"]
    assert answers.count(OrderStatus.PENDING) >= 45 and (answers.count(OrderStatus.FILLED) > 50) == same_bar
    assert any(seen[0] == "change" and seen[1] for seen in fast)
    assert any(view_is_none for seen in fast for _, _, view_is_none in seen[5].values())  # exit legs followed
