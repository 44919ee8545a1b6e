"""Exposure: the running gross sum stays equal to a fresh sum; working orders come and go."""

from __future__ import annotations

import math
import random

from ml4t.backtest import OrderSide

from ml4t_live.risk import Exposure
from ml4t_live.risk import exposure as exposure_module


def _fresh_gross(exposure: Exposure) -> float:
    return math.fsum(abs(v.quantity * (exposure.price(a) or 0.0) * v.multiplier) for a, v in exposure.assets.items())


def test_the_incremental_gross_equals_a_fresh_sum_after_many_updates():
    rng = random.Random(10)
    exposure = Exposure()
    assets = [f"S{i}" for i in range(50)]
    for step in range(3 * exposure_module.RESUM_EVERY // 2):  # crosses one exact re-sum
        asset = rng.choice(assets)
        if step % 3:
            exposure.set_price(asset, rng.uniform(1.0, 500.0), float(step))
        else:
            exposure.set_position(asset, rng.choice([-1, 1]) * rng.randint(0, 1_000), rng.choice([1.0, 50.0]))
        if step % 997 == 0:
            assert math.isclose(exposure.gross, _fresh_gross(exposure), rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(exposure.gross, _fresh_gross(exposure), rel_tol=1e-9, abs_tol=1e-6)
    for asset in assets:  # flat again: the running sum is back at zero (never below)
        exposure.set_position(asset, 0)
    assert exposure.gross == 0.0 or exposure.gross < 1e-6


def test_bad_prices_are_ignored_and_the_last_good_one_keeps_its_time():
    exposure = Exposure()
    exposure.set_position("A", 10)
    exposure.set_price("A", 100.0, 50.0)
    for bad in (float("nan"), float("inf"), 0.0, -1.0):
        exposure.set_price("A", bad, 60.0)
    view = exposure.view("A")
    assert (view.price, view.price_time) == (100.0, 50.0)
    assert exposure.gross == 1_000.0


def test_an_asset_never_seen_has_an_empty_view_that_is_not_stored():
    exposure = Exposure()
    view = exposure.view("NEW")
    assert (view.quantity, view.price, view.working_buy, view.working_sell) == (0.0, None, 0.0, 0.0)
    assert "NEW" not in exposure.assets


def test_working_orders_shrink_with_fills_and_go_when_closed():
    exposure = Exposure()
    exposure.order_working("b1", "A", OrderSide.BUY, 100)
    exposure.order_working("b1", "A", OrderSide.BUY, 100)  # the same order twice counts once
    exposure.order_working("s1", "A", OrderSide.SELL, 40)
    assert (exposure.view("A").working_buy, exposure.view("A").working_sell) == (100, 40)
    exposure.order_filled("b1", 30)
    exposure.order_filled("b1", 500)  # never below zero, whatever a venue reports
    assert exposure.view("A").working_buy == 0
    exposure.order_closed("b1")
    exposure.order_closed("s1")
    exposure.order_closed("unknown")  # an order the tracker never saw: nothing to undo
    exposure.order_filled("unknown", 5)
    assert (exposure.view("A").working_buy, exposure.view("A").working_sell, exposure.working_orders) == (0, 0, 0)


def test_a_cancelled_partial_fill_releases_only_what_was_left():
    exposure = Exposure()
    exposure.order_working("b1", "A", OrderSide.BUY, 100)
    exposure.order_working("b2", "A", OrderSide.BUY, 50)
    exposure.order_filled("b1", 60)
    exposure.order_closed("b1")
    assert exposure.view("A").working_buy == 50


def test_rebuild_starts_positions_over_and_keeps_working_orders_and_price_times():
    exposure = Exposure()
    exposure.set_position("A", 10)
    exposure.set_price("A", 100.0, 7.0)
    exposure.order_working("b1", "B", OrderSide.BUY, 5)
    exposure.rebuild({"B": (2.0, 50.0)}, {"A": 110.0, "B": 20.0, "C": float("nan")})
    assert exposure.view("A").quantity == 0 and exposure.view("A").price_time == 7.0
    assert exposure.gross == 2 * 20 * 50
    assert exposure.view("B").working_buy == 5
    assert exposure.view("C").price is None


def test_a_bar_of_prices_at_once_re_adds_the_gross_sum_once_and_bad_prices_read_as_unknown():
    exposure = Exposure()
    exposure.set_position("A", 10)
    exposure.set_position("B", -5, 2.0)
    exposure.set_prices({"A": 100.0, "B": 20.0, "C": 7.0}, as_of=60.0)
    assert exposure.gross == 10 * 100 + 5 * 20 * 2
    exposure.set_position("A", 20)  # between bars: incremental on the fresh sum
    assert exposure.gross == 20 * 100 + 5 * 20 * 2
    exposure.set_prices({"A": float("nan"), "B": 30.0}, as_of=120.0)
    view = exposure.view("A")
    assert view.price is None and view.price_time == 120.0  # unknown, not the old 100: fail closed
    assert exposure.gross == 5 * 30 * 2
    assert exposure.view("C").price_time == 60.0  # not in the last bar: its price keeps its age
