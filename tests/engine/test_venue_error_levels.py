"""How the fill barrier shows a venue's ``VenueErrorReported``: a WARNING line, except
``over_filled`` (the chain traded more than the strategy asked), which the gateway that found it
(Alpaca's modify check) logged as an ERROR at once: the barrier shows it at DEBUG, so it is said
once, and said even by a run that fails before its next settle
(tests/venues/alpaca/test_alpaca_over_fill_said_when_found.py)."""

from __future__ import annotations

from loguru import logger

from ml4t_live.events import VenueErrorReported
from tests.engine.venue_broker_support import connected
from tests.support.fakes import FakeVenue


def test_an_over_fill_is_a_debug_line_here_and_other_venue_errors_warnings():
    venue = FakeVenue(fill_on_wait=False)
    broker = connected(venue)
    over = "the chain traded 21, 1 more than the 20 asked; check the position"
    venue.events.put(VenueErrorReported("alpaca", "over_filled", over, "t-p"))
    venue.events.put(VenueErrorReported("alpaca", "order_replace_rejected", "a replace not carried out", "t-q"))
    lines: list[tuple[str, str]] = []
    sink = logger.add(lambda m: lines.append((m.record["level"].name, m.record["message"])), level="DEBUG")
    try:
        broker.settle(0)
    finally:
        logger.remove(sink)
    said = [(level, m) for level, m in lines if " error " in m]
    assert said == [("DEBUG", f"fake error over_filled: {over}"),
                    ("WARNING", "fake error order_replace_rejected: a replace not carried out")], lines  # fmt: skip
    broker.close()
