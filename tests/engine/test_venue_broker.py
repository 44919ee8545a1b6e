"""VenueBroker + Book against the in-memory FakeVenue: the strategy-facing surface for venues."""

from __future__ import annotations

import pytest
from ml4t.backtest import BacktestConfig, OrderSide, OrderStatus, OrderType, RebalanceConfig, TargetWeightExecutor

from ml4t_live.errors import LiveTradingRefused
from ml4t_live.events import OrderCancelled, OrderRejected
from ml4t_live.order_ids import ClientOrderIds
from ml4t_live.protocols import VenueOrder, VenuePosition
from ml4t_live.venue_broker import VenueBroker
from tests.engine.venue_broker_support import T0, connected
from tests.support.fakes import FakeVenue, bar


def test_partial_fill_leaves_the_order_pending_with_filled_quantity():
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    order = broker.submit_order("AAA", 10)
    venue.fill(venue.placed[0], 4, final=False)
    broker.settle(0)
    assert order.status is OrderStatus.PENDING and order.filled_quantity == 4
    assert broker.get_position("AAA").quantity == 4
    venue.fill(venue.placed[0], 6)
    broker.settle(0)
    assert order.status is OrderStatus.FILLED and order.filled_quantity == 10
    assert broker.get_position("AAA").quantity == 10
    assert broker.get_cash() == pytest.approx(100_000 - 10 * 100.0 - 2 * 1.0)


def test_a_duplicated_execution_is_counted_once():
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    broker.submit_order("AAA", 10)
    venue.fill(venue.placed[0], exec_id="X1")
    venue.fill(venue.placed[0], exec_id="X1")
    broker.settle(0)
    assert broker.get_position("AAA").quantity == 10
    assert len(broker.fills) == 1


def test_rejection_arrives_on_the_held_order_and_submit_does_not_raise():
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    order = broker.submit_order("AAA", 10)
    venue.events.put(OrderRejected(order.order_id, "insufficient buying power", "201"))
    broker.settle(0)
    assert order.status is OrderStatus.REJECTED
    assert order.rejection_reason == "insufficient buying power"
    assert broker.get_rejected_orders() == [order]


def test_submit_follows_the_backtest_rules():
    broker = connected(FakeVenue(fill_on_wait=False))
    assert broker.submit_order("AAA", 1e-10) is None
    assert broker.submit_order("AAA", -5).side is OrderSide.SELL
    assert broker.submit_order("AAA", -5, OrderSide.BUY).side is OrderSide.BUY
    with pytest.raises(ValueError, match="limit_price"):
        broker.submit_order("AAA", 5, order_type=OrderType.LIMIT)
    with pytest.raises(ValueError, match="finite"):
        broker.submit_order("AAA", float("nan"))
    with pytest.raises(ValueError, match="finite positive limit_price"):  # a NaN price never leaves
        broker.submit_order("AAA", 5, order_type=OrderType.LIMIT, limit_price=float("nan"))
    with pytest.raises(ValueError, match="finite positive stop_price"):
        broker.submit_order("AAA", 5, order_type=OrderType.STOP, stop_price=float("inf"))


def test_integer_shares_are_truncated_and_a_zero_order_is_rejected_without_reaching_the_venue():
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    assert broker.submit_order("AAA", 10.7).quantity == 10
    tiny = broker.submit_order("AAA", 0.4)
    assert tiny.status is OrderStatus.REJECTED and tiny.rejection_code == "quantity_rounds_to_zero"
    assert [r.quantity for r in venue.placed] == [10]


def test_cancel_is_immediate_for_the_strategy_and_sent_to_the_venue():
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    order = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=90.0)
    assert broker.cancel_order(order.order_id) is True
    assert order.status is OrderStatus.CANCELLED and broker.get_pending_orders() == []
    assert venue.cancelled == [order.order_id]
    venue.events.put(OrderCancelled(order.order_id, "cancelled at venue"))
    broker.settle(0)
    assert order.cancellation_reason == "user"
    assert broker.cancel_order(order.order_id) is False


def test_client_order_ids_are_deterministic_per_bar_asset_side_and_sequence():
    ids = ClientOrderIds("MyStrategy", "20240102")
    ids.new_bar(T0)
    first = [ids.next("AAA", OrderSide.BUY), ids.next("AAA", OrderSide.BUY)]
    again = ClientOrderIds("MyStrategy", "20240102")
    again.new_bar(T0)
    assert first == [again.next("AAA", OrderSide.BUY), again.next("AAA", OrderSide.BUY)]
    assert first == ["MyStrategy-20240102-20240102T143000-AAA-b1", "MyStrategy-20240102-20240102T143000-AAA-b2"]
    assert again.is_ours("MyStrategy-20231229-x") and not again.is_ours("Other-20240102-x")
    assert not again.is_ours("MyStrategyB-20240102-x")  # one id is never the prefix of another


def test_a_live_account_is_refused_in_paper_mode():
    with pytest.raises(LiveTradingRefused, match="LIVE account"):
        connected(FakeVenue(account_id="U1234567", is_paper=False))


def test_existing_positions_are_external_unless_adopting_is_asked_for(isolated_state_dir):
    venue = FakeVenue(positions={"AAA": VenuePosition("AAA", 30, 95.0)})
    broker = connected(venue)
    assert broker.get_position("AAA") is None and broker.get_cash() == 100_000.0
    broker.settle(0)  # the first look at the venue: unconfirmed
    broker.own.check_soon()
    broker.settle(0)  # the second look confirms: reported as external, never the strategy's
    assert [(d.kind, d.subject) for d in broker.own.differences] == [("external", "AAA")]
    assert broker.own.external == {"AAA": 30.0} and broker.own.trading_state == "ACTIVE"
    assert broker.flatten_all_positions() == [] and venue.placed == []
    broker.close()
    adopting = VenueBroker(FakeVenue(positions={"AAA": VenuePosition("AAA", 30, 95.0)}),
                           strategy_id="adopter", adopt_positions=True)  # fmt: skip
    adopting.connect(BacktestConfig())
    assert adopting.get_position("AAA").quantity == 30
    # the venue's cash already paid for them: cash stays, equity counts them at their cost
    assert adopting.get_cash() == pytest.approx(100_000.0)
    assert adopting.equity() == pytest.approx(100_000.0 + 30 * 95.0)
    adopting.close()


def test_open_orders_no_journal_explains_are_left_alone():
    ours = VenueOrder("demo-old-x-AAA-b1", "7", "AAA", OrderSide.BUY, 5, 0, OrderType.LIMIT, "open", 90.0)
    foreign = VenueOrder("manual-1", "8", "BBB", OrderSide.SELL, 3, 0, OrderType.LIMIT, "open", 60.0)
    venue = FakeVenue(open_orders=[ours, foreign])
    broker = connected(venue)
    assert broker.get_pending_orders() == []
    assert broker.foreign_orders == [ours, foreign]
    broker.flatten_all_positions()
    assert venue.cancelled == []


def test_target_weight_executor_runs_on_the_venue_broker():
    venue = FakeVenue(fill_on_wait=True)
    broker = connected(venue)
    data = bar(T0, {"AAA": 100.0, "BBB": 50.0}).data
    executor = TargetWeightExecutor(RebalanceConfig())
    orders = executor.execute({"AAA": 0.5, "BBB": 0.25}, data, broker)
    assert sorted((o.asset, o.quantity) for o in orders) == [("AAA", 500), ("BBB", 500)]
    assert all(o.rebalance_id == "rebalance-1" for o in orders)
    broker.settle(1.0)
    assert broker.get_position("AAA").quantity == 500
    # rebalance to flat: closes through close_position, cancelling nothing that is not pending
    orders = executor.execute({}, data, broker)
    assert sorted((o.asset, o.side) for o in orders) == [("AAA", OrderSide.SELL), ("BBB", OrderSide.SELL)]


def test_end_of_bar_tells_the_venue_the_bar_is_done():
    venue = FakeVenue()
    broker = connected(venue)
    broker.end_bar(bar(T0, {"AAA": 1.0}))
    assert venue.bars_done == [T0]


def test_position_rules_exit_through_the_venue_and_trail_on_closes():
    from ml4t.backtest import RuleChain, StopLoss, TrailingStop

    venue = FakeVenue(fill_on_wait=True)
    broker = connected(venue)
    broker.set_position_rules(RuleChain([StopLoss(0.05), TrailingStop(0.03)]))
    broker.submit_order("AAA", 10)
    broker.settle(1.0)  # filled at 100
    for price in (104.0, 110.0):  # the close trails the high-water mark up to 110
        broker.begin_bar(bar(T0, {"AAA": price}))
        broker.end_bar(bar(T0, {"AAA": price}))
    assert broker.get_position("AAA").high_water_mark == 110.0
    assert len(venue.placed) == 1
    broker.begin_bar(bar(T0, {"AAA": 106.0}))  # 3.6% below 110: the trailing stop fires
    exit_request = venue.placed[-1]
    assert (exit_request.side, exit_request.quantity) == (OrderSide.SELL, 10)
    broker.begin_bar(bar(T0, {"AAA": 105.0}))  # already exiting: no second exit order
    assert len(venue.placed) == 2
    broker.settle(1.0)
    assert broker.get_position("AAA") is None


def test_bracket_exits_are_live_at_once_and_share_an_oca_group():
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    entry, tp, sl = broker.submit_bracket("AAA", 10.6, take_profit=110.0, stop_loss=95.0)
    assert [(r.side, r.quantity, r.order_type) for r in venue.placed] == [
        (OrderSide.BUY, 10, OrderType.MARKET),
        (OrderSide.SELL, 10, OrderType.LIMIT),
        (OrderSide.SELL, 10, OrderType.STOP),
    ]
    assert venue.placed[0].oca_group is None
    assert venue.placed[1].oca_group == venue.placed[2].oca_group == f"oca-{entry.order_id}"
    assert all(r.parent_client_order_id is None for r in venue.placed)  # not held: backtest semantics
    assert tp.parent_id == sl.parent_id == entry.order_id
    assert (tp.limit_price, sl.stop_price) == (110.0, 95.0)
    broker.update_order(sl.order_id, stop_price=96.0)
    assert venue.placed[-1].oca_group == f"oca-{entry.order_id}" and venue.placed[-1].stop_price == 96.0


def test_inverted_bracket_prices_warn_like_the_backtest():
    broker = connected(FakeVenue(fill_on_wait=False))
    with pytest.warns(UserWarning, match="take_profit"):
        broker.submit_bracket("AAA", 10, take_profit=90.0, stop_loss=80.0)


def test_the_barrier_stops_waiting_once_a_market_order_is_partly_filled():
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    order = broker.submit_order("AAA", 10)
    venue.fill(venue.placed[0], 4, final=False)
    assert broker.settle(5.0) == 0  # returns at once: nothing left to wait for
    assert venue.events.waits == []
    assert order.status is OrderStatus.PENDING and order.filled_quantity == 4


def test_allowing_live_on_a_paper_account_runs_in_paper_mode():
    broker = VenueBroker(FakeVenue(account_id="DU42", is_paper=True), mode="live")
    broker.connect(BacktestConfig())
    assert broker.mode == "paper"


def test_after_a_disconnect_the_next_bar_waits_for_the_reconnect():
    from ml4t_live.events import BrokerDisconnected, BrokerReconnected

    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    venue.events.put(BrokerDisconnected("fake", "socket closed"))
    venue.events.on_wait = lambda: venue.events.put(BrokerReconnected("fake"))
    assert broker.settle(0.0) == 0
    assert venue.events.waits, "settle returned without waiting for the reconnect"


def test_a_venue_that_does_not_come_back_stops_the_run_with_a_clear_error():
    from ml4t_live.errors import ConnectionFailed
    from ml4t_live.events import BrokerDisconnected

    venue = FakeVenue(fill_on_wait=False)
    broker = VenueBroker(venue, strategy_id="demo", reconnect_timeout=0.3)
    broker.connect(BacktestConfig())
    venue.events.put(BrokerDisconnected("fake", "socket closed"))
    with pytest.raises(ConnectionFailed, match="did not reconnect within 0.3s"):
        broker.settle(1.0)


def test_a_cancel_the_venue_refuses_leaves_the_order_pending():
    from ml4t_live.errors import ConnectionFailed

    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    order = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=90.0)
    venue.raise_on["cancel"] = ConnectionFailed("not connected")
    assert broker.cancel_order(order.order_id) is False
    assert order.status is OrderStatus.PENDING and broker.get_pending_orders() == [order]


def test_an_update_the_venue_refuses_leaves_the_order_unchanged_and_quantities_are_whole():
    from ml4t_live.errors import VenueError

    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    order = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=90.0)
    venue.raise_on["modify"] = VenueError("cannot express that change")
    assert broker.update_order(order.order_id, limit_price=91.0) is False
    assert order.limit_price == 90.0
    assert broker.update_order(order.order_id, quantity=7.9, limit_price=92.0) is True
    assert (order.quantity, order.limit_price) == (7, 92.0)
    assert (venue.placed[-1].quantity, venue.placed[-1].limit_price) == (7, 92.0)


def test_an_order_whose_placement_timed_out_stays_pending_and_is_never_resent():
    from ml4t_live.errors import BridgeTimeout

    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    venue.raise_on["place"] = BridgeTimeout("placeOrder did not finish")
    order = broker.submit_order("AAA", 10)
    assert order.status is OrderStatus.PENDING
    assert broker.settle(5.0) == 0 and venue.events.waits == []  # not waited for bar after bar
    request = replace_request(order)
    venue.fill(request)  # the venue had it after all: its fill still lands on the order
    broker.settle(0)
    assert order.status is OrderStatus.FILLED and broker.get_position("AAA").quantity == 10


def test_a_fill_racing_a_cancel_finds_its_order_even_after_records_were_forgotten():
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    order = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=90.0)
    broker.cancel_order(order.order_id)
    broker.take_new_records()
    broker.forget_records(0)
    venue.fill(venue.placed[0])
    broker.settle(0)
    assert order.status is OrderStatus.FILLED and order.filled_quantity == 10


def replace_request(order):
    from ml4t_live.protocols import OrderRequest

    return OrderRequest(order.order_id, order.asset, order.side, order.quantity)


def test_venue_fills_carry_the_exit_reason_as_the_backtests_do():
    from ml4t.backtest import StopLoss

    venue = FakeVenue(fill_on_wait=True)
    broker = connected(venue)
    broker.set_position_rules(StopLoss(0.05))
    broker.submit_order("AAA", 10)
    broker.settle(1.0)  # an entry: no exit reason
    broker.begin_bar(bar(T0, {"AAA": 94.0}))  # 6% below the entry: the stop fires
    broker.settle(1.0)
    broker.submit_order("BBB", 5)
    broker.settle(1.0)
    broker.submit_order("BBB", -5)  # the strategy's own exit
    broker.settle(1.0)
    reasons = [(f.asset, f.side, f.exit_reason) for f in broker.fills]
    assert reasons == [("AAA", OrderSide.BUY, ""), ("AAA", OrderSide.SELL, "stop_loss"),
                       ("BBB", OrderSide.BUY, ""), ("BBB", OrderSide.SELL, "signal")]  # fmt: skip
    assert broker.fills[1].exit_reason_detail.startswith("stop_loss")


def test_a_change_of_a_partly_filled_order_tells_the_venue_what_the_book_says_filled():
    """The request a modify hands the venue carries the book's filled quantity (journal-backed):
    a venue whose replacement is a new order for what is left (Alpaca) subtracts at least that,
    also when its own current order carries fewer fills (a replacement adopted after a restart)."""
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    order = broker.submit_order("AAA", 10, order_type=OrderType.LIMIT, limit_price=90.0)
    assert venue.placed[0].filled_quantity == 0
    venue.fill(venue.placed[0], 4, final=False)
    broker.settle(0)
    assert order.filled_quantity == 4
    assert broker.update_order(order.order_id, limit_price=91.0) is True
    assert (venue.placed[-1].quantity, venue.placed[-1].filled_quantity) == (10, 4)
