"""The restart's check of a replace chain made after a modify moved the order on (a later walk).

Real alpaca-py against the simulated Alpaca, at the gateway. A first gateway places t-p (20 AAPL
limit 150, 3 fill a bar), re-prices it once 3 filled (r1 asks 17) and closes; r1 fills while no
gateway runs. A second gateway connects (r1 listed) and, before the restart's read of the chain
(``executions_since``, which hands the walked chain to ``Modifier.check_chain``), modifies the
order again: r2, its replace left pending by ``slow_replace``, its check pending. The chain is
walked again up to r2 (``WhileAway``); these tests make that walk fail, and count the pending
check's tries across the restart's check.
"""

from __future__ import annotations

from dataclasses import replace

from alpaca_helpers import config_for
from modify_support import REQUEST
from runtime_support import filling_sim, log_lines, trading_client

from ml4t_live.venues.alpaca.gateway import AlpacaGateway
from ml4t_live.venues.alpaca.modify import MAX_TRIES


def _orders(sim) -> dict[str, tuple[str, str, str]]:
    return {o["client_order_id"]: (o["status"], o["qty"], o["filled_qty"]) for o in sim.orders()}


def _gateway(sim) -> AlpacaGateway:
    return AlpacaGateway(config_for(sim, order_poll_interval=300.0), is_ours=lambda c: c.startswith("t-"))


def _modified_after_the_connect(sim, raw, first: AlpacaGateway, second: AlpacaGateway, replace_bars: int) -> str:
    """The scene of the module docstring, up to the restart's read; r2's Alpaca id."""
    first.connect()
    first.place(REQUEST)
    raw.get_clock()  # t-p fills 3
    first.modify(replace(REQUEST, limit_price=149.0, filled_quantity=3))  # r1 asks 17
    first.close()
    raw.get_clock()  # while away: r1 fills 3
    assert _orders(sim) == {"t-p": ("replaced", "20", "3"), "t-p.r1": ("partially_filled", "17", "3")}
    second.connect()
    sim.inject("slow_replace", bars=replace_bars)
    second.modify(replace(REQUEST, limit_price=148.0, filled_quantity=3))  # r2, pending
    second.asked(replace(REQUEST, limit_price=148.0, filled_quantity=3))
    return next(o["id"] for o in sim.orders() if o["client_order_id"] == "t-p.r2")


def test_a_walk_up_to_now_that_gets_no_answer_is_made_again_at_the_next_end_of_bar(tmp_path):
    """The walk up to r2 gets no answer at the restart's read (its GET fails, retries included):
    the check against the 20 asked waits for the walk, made again at the next end of bar, before
    the modifier's checks; 20 bought. Failed before: the walk was given up at once and r2's own
    check kept, sized before the restart knew what t-p had filled (r2 asked 17 where 14 were
    left): 23 bought of 20."""
    sim = filling_sim(20)
    raw = trading_client(sim)
    lines: list[str] = []
    first, second = _gateway(sim), _gateway(sim)
    try:
        with log_lines(lines):
            r2 = _modified_after_the_connect(sim, raw, first, second, replace_bars=2)
            raw.get_clock()  # r1 fills on, its replace pending
            sim.inject("order_read_error", order_id=r2, count=8)  # (two reads of r2, retries included)
            second.executions_since("t-p", 3.0, 150.0)  # the restart's read of the chain
            for _ in range(8):
                second.end_of_bar(None)  # (the walk again, the modifier's checks, then a bar on)
            orders, bought = _orders(sim), sum(f.qty for f in sim.fills())
    finally:
        second.close()
        first.close()
        sim.close()
    assert bought == 20, orders
    waits = [line for line in lines if "its check against what was last asked waits" in line]
    assert len(waits) == 2 and all(line.startswith("WARNING") for line in waits), lines
    assert any("(a modify's, its chain walked again)" in line for line in lines), lines
    assert not [line for line in lines if line.startswith(("ERROR", "CRITICAL"))], lines


def test_a_walk_up_to_now_that_never_answers_is_given_up_with_an_alert(tmp_path):
    """Every walk up to r2 fails: given up at the end of bar that makes it the MAX_TRIES-th, with
    one ALERT (the ask dropped, r2's own check kept)."""
    sim = filling_sim(20)
    raw = trading_client(sim)
    lines: list[str] = []
    first, second = _gateway(sim), _gateway(sim)
    try:
        with log_lines(lines):
            r2 = _modified_after_the_connect(sim, raw, first, second, replace_bars=2)
            sim.inject("order_read_error", order_id=r2, count=1000)
            second.executions_since("t-p", 3.0, 150.0)
            for _ in range(MAX_TRIES - 1):
                second.away.walk_again(second._require())
            alerts = [line for line in lines if line.startswith("ERROR ALERT cannot walk the chain of t-p")]
            assert len(alerts) == 1 and f"{MAX_TRIES} tries" in alerts[0], lines
            assert not second.away.rewalks
    finally:
        second.close()
        first.close()
        sim.close()


def test_the_pending_checks_tries_carry_over_into_the_restarts_check(tmp_path):
    """r2's replace stays pending: its check counts a try at the modify and at each end of bar.
    The restart's check of the chain (walked again up to r2, the same replacement) is made in its
    place with its tries kept, so it is given up (the ALERT) after MAX_TRIES tries in all, not
    MAX_TRIES more. Failed with the tries not carried over (a surviving mutant of the review):
    no ALERT after the 2 ends of bar."""
    sim = filling_sim(20)
    raw = trading_client(sim)
    lines: list[str] = []
    first, second = _gateway(sim), _gateway(sim)
    try:
        with log_lines(lines):
            _modified_after_the_connect(sim, raw, first, second, replace_bars=100)  # (the modify's try: 1)
            second.modifier.check_replaces()  # 2
            second.modifier.check_replaces()  # 3
            second.executions_since("t-p", 3.0, 150.0)  # the restart's check, made at once: 4
            assert any("(a modify's, its chain walked again)" in line for line in lines), lines
            second.modifier.check_replaces()  # 5: kept
            assert not [line for line in lines if "given up after" in line], lines
            second.modifier.check_replaces()  # 6 > MAX_TRIES: given up
            given_up = [line for line in lines if "given up after" in line]
    finally:
        second.close()
        first.close()
        sim.close()
    assert MAX_TRIES == 5
    assert len(given_up) == 1 and given_up[0].startswith("ERROR ALERT"), lines


def test_a_modify_while_the_walk_waits_drops_the_restarts_ask(tmp_path):
    """The walk up to r2 gets no answer at the restart's read (the restart's ask of 20 waits for
    it); r2's replace is carried out, then the strategy grows the order to 30 (r3). That modify's
    check stands for the chain: the waiting walk and the restart's ask of 20 are dropped, and 30
    are bought (the reviewer's probe). Failed before: the walk made again at the next end of bar
    checked the chain up to r3 against the restart's 20 and cut it down: 20 bought of 30."""
    sim = filling_sim(20)
    raw = trading_client(sim)
    lines: list[str] = []
    first, second = _gateway(sim), _gateway(sim)
    try:
        with log_lines(lines):
            r2 = _modified_after_the_connect(sim, raw, first, second, replace_bars=2)
            sim.inject("order_read_error", order_id=r2, count=4)  # (one read of r2, retries included)
            second.executions_since("t-p", 3.0, 150.0)  # the restart's read: the walk to r2 fails
            assert "t-p" in second.away.rewalks, lines
            raw.get_clock()
            raw.get_clock()  # r2's replace carried out
            second.modify(replace(REQUEST, quantity=30, limit_price=148.0, filled_quantity=3))  # r3
            assert "t-p" not in second.away.rewalks, lines
            for _ in range(12):
                second.end_of_bar(None)
            orders, bought = _orders(sim), sum(f.qty for f in sim.fills())
    finally:
        second.close()
        first.close()
        sim.close()
    assert bought == 30, orders
    assert not [line for line in lines if "checked against the 20 last asked" in line], lines
    assert not [line for line in lines if line.startswith(("ERROR", "CRITICAL"))], lines
