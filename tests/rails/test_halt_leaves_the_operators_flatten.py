"""HALTED cancels the strategy's working orders, never the runtime's own: the closing orders of
the operator's ``halt --flatten`` work until they fill, across bars, a restart, and a strategy
that cancels what it sees pending (a venue fake: the flatten's order rests, e.g. before the open).
Only the operator's ``cancel-all`` cancels them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import msgpack
from loguru import logger
from ml4t.backtest import OrderType, Strategy

from ml4t_live import LiveEngine
from ml4t_live.errors import VenueError
from ml4t_live.journal.operator_access import set_trading_state
from ml4t_live.protocols import OrderRequest, VenueOrder
from ml4t_live.venue_broker import VenueBroker
from tests.support.fakes import FakeVenue, ListFeed, bar

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def bars(n: int) -> list:
    return [bar(T0 + timedelta(minutes=i), {"AAA": 100.0}) for i in range(n)]


class BuyThenFlatten(Strategy):
    """Bar 1: buy 10 AAA. Bar 2 (``operate``): the operator halts and flattens (the closing order
    will rest). With ``tidy``, every bar from the third cancels every pending order it sees."""

    def __init__(self, venue: FakeVenue, operate: bool = True, tidy: bool = False, cancel_all: str = "") -> None:
        self.venue, self.operate, self.tidy, self.cancel_all = venue, operate, tidy, cancel_all
        self.n, self.cancelled, self.cancel_all_said = 0, [], None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 10)
        if self.n == 2 and self.operate:
            self.venue.fill_on_wait = False  # the flatten's order will rest
            set_trading_state(broker.own.journal.path, "HALTED", "desk: flatten", flatten=True)
        if self.tidy and self.n >= 3:
            self.cancelled += [o.order_id for o in list(broker.pending_orders) if broker.cancel_order(o.order_id)]
        if self.cancel_all and self.n == 3:  # the operator, from another terminal, while the strategy runs
            done = subprocess.run([sys.executable, "-m", "ml4t_live", "cancel-all", "--strategy-id", "fl",
                                   "--state-dir", self.cancel_all, "--yes", "--json"], capture_output=True,
                                  text=True, timeout=60, check=True)  # fmt: skip
            self.cancel_all_said = json.loads(done.stdout)


def _sells(venue: FakeVenue) -> list:
    return [r for r in venue.placed if r.side.value == "sell"]


def _run(strategy: Strategy, venue: FakeVenue, strategy_id: str, tmp_path, bars_run: int, settle: float) -> None:
    """A venue run of ``bars_run`` bars that leaves its orders working at the end (as a kill would)."""
    LiveEngine(strategy, VenueBroker(venue, strategy_id=strategy_id, state_dir=tmp_path), ListFeed(bars(bars_run)),
               session_dir=False, settle_timeout=settle, open_orders_at_end="keep").run()  # fmt: skip


def test_a_restart_halted_leaves_the_operators_flatten_working(tmp_path):
    venue = FakeVenue(fill_on_wait=True)
    _run(BuyThenFlatten(venue), venue, "rf", tmp_path, 3, 0.5)
    [sell] = _sells(venue)
    assert venue.cancelled == []
    # the process died with the closing order working at the venue; the same strategy restarts HALTED
    venue.open_orders.append(VenueOrder(sell.client_order_id, "V9", "AAA", sell.side, 10.0, 0.0,
                                        OrderType.MARKET, "open"))  # fmt: skip
    _run(BuyThenFlatten(venue, operate=False), venue, "rf", tmp_path, 5, 0.5)
    assert sell.client_order_id not in venue.cancelled
    assert len(_sells(venue)) == 1  # nothing else to close: the flatten was sent once


def test_the_strategy_cannot_cancel_the_operators_flatten(tmp_path):
    venue = FakeVenue(fill_on_wait=True)
    strategy = BuyThenFlatten(venue, tidy=True)
    _run(strategy, venue, "fl", tmp_path, 5, 0.5)
    [sell] = _sells(venue)
    assert strategy.cancelled == []
    assert sell.client_order_id not in venue.cancelled


def test_a_refused_cancel_of_the_flatten_replays_as_it_was_also_from_a_journal_that_took_it(tmp_path):
    venue = FakeVenue(fill_on_wait=True)
    first = BuyThenFlatten(venue, tidy=True)
    _run(first, venue, "fl", tmp_path, 4, 0.5)
    [sell] = _sells(venue)
    assert first.cancelled == []
    venue.open_orders.append(VenueOrder(sell.client_order_id, "V9", "AAA", sell.side, 10.0, 0.0,
                                        OrderType.MARKET, "open"))  # fmt: skip
    # the refusals are journaled answers: a warm restart replays them (no divergence)
    again = BuyThenFlatten(venue, operate=False, tidy=True)
    _run(again, venue, "fl", tmp_path, 5, 0.5)
    assert again.cancelled == [] and sell.client_order_id not in venue.cancelled
    # a journal written before the refusal existed holds the strategy's first cancel as accepted (and no
    # later one: the order was gone): a restart replays it as such
    [path] = tmp_path.glob("*.journal")
    with sqlite3.connect(path) as db:
        cancels = db.execute("SELECT rowid FROM commands WHERE kind = 'cancel' AND cid = ? ORDER BY rowid",
                             (sell.client_order_id,)).fetchall()  # fmt: skip
        db.execute("UPDATE commands SET result = ? WHERE rowid = ?", (msgpack.packb(True), cancels[0][0]))
        db.executemany("DELETE FROM commands WHERE rowid = ?", cancels[1:])
    old = BuyThenFlatten(venue, operate=False, tidy=True)
    _run(old, venue, "fl", tmp_path, 6, 0.5)
    assert old.cancelled == [sell.client_order_id]  # as the journal says it happened


def test_cancel_all_while_the_strategy_runs_also_cancels_the_flattens_order(tmp_path):
    venue = FakeVenue(fill_on_wait=True)
    strategy = BuyThenFlatten(venue, cancel_all=str(tmp_path))
    _run(strategy, venue, "fl", tmp_path, 5, 0.5)
    [sell] = _sells(venue)
    said = {row["client_order_id"]: row["outcome"] for row in strategy.cancel_all_said["orders"]}
    assert said == {sell.client_order_id: "the running strategy cancels it before its next bar"}
    assert venue.cancelled == [sell.client_order_id]  # as it said


class CancelFails(FakeVenue):
    """A venue whose every cancel fails (e.g. IB says it has no such order)."""

    def cancel(self, client_order_id: str) -> None:
        self.cancelled.append(client_order_id)
        raise VenueError("no such order")


class RestingLimitThenHalt(Strategy):
    def __init__(self) -> None:
        self.n = 0

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=50.0)
        if self.n == 2:
            set_trading_state(broker.own.journal.path, "HALTED", "desk: stop")


def test_halted_tries_a_failed_cancel_each_bar_and_warns_once(tmp_path):
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{level} {message}")
    try:
        venue = CancelFails(fill_on_wait=False)
        _run(RestingLimitThenHalt(), venue, "cf", tmp_path, 8, 0.2)
    finally:
        logger.remove(sink)
    assert len(venue.cancelled) == 6  # bars 3 to 8: halted, the cancel tried again each bar
    failed = [line.split(" ", 1)[0] for line in lines if "cancel of cf-" in line]
    assert failed == ["WARNING"] + ["DEBUG"] * 5


class CancelsTimeOut(FakeVenue):
    """The first ``fails`` cancels of each order ``stuck`` picks time out (in ``failed``);
    ``cancelled`` holds the cancels that went."""

    fails: int = 3

    def stuck(self, request: OrderRequest) -> bool:
        raise NotImplementedError

    def cancel(self, client_order_id: str) -> None:
        request = next(r for r in self.placed if r.client_order_id == client_order_id)
        if self.stuck(request) and self.failed.count(client_order_id) < self.fails:
            self.failed.append(client_order_id)
            raise VenueError("timeout")
        super().cancel(client_order_id)

    @property
    def failed(self) -> list[str]:
        return self.__dict__.setdefault("_failed", [])

    def working_sells(self) -> float:
        return sum(r.quantity for r in _sells(self) if r.client_order_id not in self.cancelled)


class CancelFailsAtFirst(CancelsTimeOut):
    """The first ``fails`` cancels of the flatten's first closing order time out; ``fails``
    large: never cancelled."""

    def stuck(self, request: OrderRequest) -> bool:
        return "-r3.1-" in request.client_order_id


class OperatorSequence(Strategy):
    """Bar 1: buy 10 AAA. Then the operator's commands, by bar: {n: [(flatten, cancel_all), ...]}."""

    def __init__(self, venue: FakeVenue, commands: dict[int, list[tuple[bool, bool]]]) -> None:
        self.venue, self.commands, self.n = venue, commands, 0

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 10)
        for flatten, cancel_all in self.commands.get(self.n, []):
            self.venue.fill_on_wait = False  # closing orders rest
            set_trading_state(broker.own.journal.path, "HALTED", "desk", flatten=flatten, cancel_all=cancel_all)


def _operate(venue: FakeVenue, commands: dict, tmp_path, n: int = 8) -> None:
    _run(OperatorSequence(venue, commands), venue, "op", tmp_path, n, 0.3)


def test_a_flatten_after_a_cancel_all_stands_although_a_cancel_of_the_earlier_one_failed(tmp_path):
    venue = CancelFailsAtFirst(fill_on_wait=True)
    _operate(venue, {2: [(True, False)], 3: [(False, True)], 5: [(True, False)]}, tmp_path)
    assert venue.failed  # the cancel-all's cancel of the first closing order failed (it stayed working)
    assert venue.working_sells() == 10.0  # the later flatten stands: the 10 held are being closed, once


def test_a_cancel_all_after_a_flatten_in_the_same_bar_withdraws_it(tmp_path):
    venue = FakeVenue(fill_on_wait=True)
    _operate(venue, {2: [(True, False), (False, True)]}, tmp_path, n=5)
    assert _sells(venue) == []  # the later word (cancel everything) stands: nothing is closed


def test_a_flatten_never_sends_more_than_a_stuck_closing_order_leaves_open(tmp_path):
    venue = CancelFailsAtFirst(fill_on_wait=True)
    venue.fails = 1_000  # the first closing order can never be cancelled: it may still fill
    _operate(venue, {2: [(True, False)], 4: [(True, False)]}, tmp_path)
    assert [(r.side.value, r.quantity) for r in _sells(venue)] == [("sell", 10.0)]  # not a second 10
    assert venue.working_sells() == 10.0


class UpdateAfterResume(Strategy):
    """Bar 1: buy 10; bar 2: halt --flatten (the closing order rests); bar 3: resume; bar 4: the
    strategy tries to change the flatten's order."""

    def __init__(self, venue: FakeVenue) -> None:
        self.venue, self.n, self.changed = venue, 0, None

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        path = broker.own.journal.path
        if self.n == 1:
            broker.submit_order("AAA", 10)
        if self.n == 2:
            self.venue.fill_on_wait = False
            set_trading_state(path, "HALTED", "desk", flatten=True)
        if self.n == 3:
            set_trading_state(path, "ACTIVE", "desk: go on")
        if self.n == 4:
            [order] = [o for o in broker.pending_orders if o.side.value == "sell"]
            self.changed = broker.update_order(order.order_id, quantity=5)


def test_after_a_resume_the_strategy_still_cannot_change_the_flattens_order(tmp_path):
    venue = FakeVenue(fill_on_wait=True)
    strategy = UpdateAfterResume(venue)
    _run(strategy, venue, "up", tmp_path, 5, 0.3)
    assert strategy.changed is False
    assert [(r.side.value, r.quantity) for r in _sells(venue)] == [("sell", 10.0)]  # no change reached the venue


class TakeProfitCancelFails(CancelsTimeOut):
    """The first two cancels of any LIMIT order time out."""

    fails = 2

    def stuck(self, request: OrderRequest) -> bool:
        return request.order_type is OrderType.LIMIT


class BuyTakeProfitThenFlatten(Strategy):
    """Bar 1: buy 10 AAA; bar 2: a take-profit (limit sell 10 at 150, far away); bar 3: the
    operator's halt --flatten."""

    def __init__(self) -> None:
        self.n = 0

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        if self.n == 1:
            broker.submit_order("AAA", 10)
        if self.n == 2:
            broker.submit_order("AAA", -10, order_type=OrderType.LIMIT, limit_price=150.0)
        if self.n == 3:
            set_trading_state(broker.own.journal.path, "HALTED", "desk", flatten=True)


def test_a_flatten_closes_the_position_whatever_the_strategys_stuck_take_profit_may_do(tmp_path):
    venue = TakeProfitCancelFails(fill_on_wait=True)
    _run(BuyTakeProfitThenFlatten(), venue, "tp", tmp_path, 6, 0.3)
    market = [(r.side.value, r.quantity) for r in venue.placed if r.order_type is OrderType.MARKET]
    assert market == [("buy", 10.0), ("sell", 10.0)]  # the flatten closed the 10 held
    assert getattr(venue.positions.get("AAA"), "quantity", 0.0) == 0.0  # flat at the venue
