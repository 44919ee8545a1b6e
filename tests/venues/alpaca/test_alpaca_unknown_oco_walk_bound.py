"""An OCO exit pair of unknown outcome that the trade stream reported, whose walks for its stop leg
keep getting no answer: one ALERT at ``unknown_order_lookups`` failed walks, from which it is walked
at every ``unknown_order_lookups``-th tick only (then ever less often: the schedule's own test is
test_alpaca_unknown_walk_backoff.py), never declared lost, and found when a walk succeeds.

test_alpaca_unknown_oco_leg.py's scenario (real alpaca-py against SimulatedAlpaca; the watcher's
tick called on the stream's loop). Failed before: such a pair was walked at every watchdog tick
with no bound and no ALERT (its stop leg unfollowed, its updates dropped as foreign, silently).
"""

from __future__ import annotations

from alpaca_helpers import drain, inject, of
from runtime_support import log_lines
from unknown_support import ATTEMPTS, unknown_oco

from ml4t_live.events import OrderAccepted, OrderLost
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.gateway import AlpacaGateway
from ml4t_live.venues.alpaca.unknown import MOST_TICKS_APART


def _alerts(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("ERROR ALERT") and "t-tp" in line]


def test_a_streamed_oco_whose_walks_fail_is_alerted_once_then_walked_less_often(
    sim: SimulatedAlpaca, gw: AlpacaGateway
) -> None:
    leg_id = unknown_oco(sim, gw, silent=False)
    limit = gw.config.unknown_order_lookups
    tick = gw.stream.resolve_unconfirmed
    with log_lines([]) as lines:
        inject(sim, "lookup_error", count=ATTEMPTS * (limit + 1))
        for _ in range(limit - 1):
            gw.stream.session.call(tick)
        assert not _alerts(lines)
        gw.stream.session.call(tick)
        (alert,) = _alerts(lines)
        assert "t-sl" in alert and "check it at Alpaca" in alert and f"every {limit} ticks" in alert
        assert f"at most every {max(limit, MOST_TICKS_APART)} ticks" in alert, alert  # the schedule's cap
        assert f"less often once {2 * limit} walks failed" in alert, alert
        for _ in range(limit - 1):  # resting from the ALERT's walk on (spacing: every limit-th tick)
            gw.stream.session.call(tick)
        gw.stream.session.call(tick)  # one more failed walk: no second ALERT, it rests again
        for _ in range(limit - 1):  # resting: not walked (the venue would answer now)
            gw.stream.session.call(tick)
            assert not of(OrderAccepted, drain(gw.events), "t-sl")
        gw.stream.session.call(tick)
        assert [e.venue_order_id for e in of(OrderAccepted, drain(gw.events), "t-sl")] == [leg_id]
    assert len(_alerts(lines)) == 1
    assert not of(OrderLost, drain(gw.events), "t-sl") and not gw.follows_unknown("t-tp")
