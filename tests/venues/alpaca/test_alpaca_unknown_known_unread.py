"""An Alpaca submit of unknown outcome known to exist (its report failed once, or a listing showed
it) whose look-ups then get no answer (by client order id and by its Alpaca id), through the real
alpaca-py client against the simulated Alpaca: never declared lost, looked up ever less often, and
said: an ERROR ALERT when the misses reach ``unknown_order_lookups`` and again at twice that.
A review probe of 89954b6: with one failed report the look-ups came at every tick for good (the
rest was of the failed reports, 1, not of the misses), with no line after the first WARNING."""

from __future__ import annotations

from alpaca_helpers import drain, inject, of
from loguru import logger
from unknown_support import BreakingReader, asked_at, looked_up_at, unknown_limit

from ml4t_live.events import OrderLost
from ml4t_live.sim.alpaca import SimulatedAlpaca


def test_a_found_submit_whose_report_failed_once_then_cannot_be_read_backs_off_and_alerts(sim: SimulatedAlpaca) -> None:
    gw = unknown_limit(sim, 50.0, max_request_attempts=1, unknown_order_lookups=5)
    alerts: list[str] = []
    sink = logger.add(lambda m: alerts.append(m.record["message"]), level="ERROR",
                      filter=lambda r: "could not read it" in r["message"])  # fmt: skip
    try:
        reader = gw.stream.executions = BreakingReader(gw.stream.executions)
        assert len(looked_up_at(gw, reader, 4)) == 1  # found once, its report raised
        assert gw.stream.unknown.failed_reports("t-a") == 1
        reader.broken = False
        inject(sim, "lookup_error", count=1000)
        (venue_id,) = [o["id"] for o in sim.orders() if o["client_order_id"] == "t-a"]
        inject(sim, "order_read_error", count=1000, order_id=venue_id)
        gw.snapshot()  # a listing shows it too
        at = asked_at(sim, gw, 60)
        assert not of(OrderLost, drain(gw.events)) and gw.follows_unknown("t-a")
    finally:
        logger.remove(sink)
        gw.close()
    gaps = [b - a for a, b in zip(at, at[1:], strict=False)]
    assert gaps == sorted(gaps) and gaps[-1] >= 6, at  # ever less often (failed before: every tick)
    assert len(alerts) == 2 and all("t-a" in a and "never declared lost" in a for a in alerts), alerts
    assert "5 look-ups in a row" in alerts[0] and "10 look-ups in a row" in alerts[1], alerts
