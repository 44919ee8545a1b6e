"""An over-fill the modify check finds at an end of bar is said then, as an ERROR, not only when the
engine's next settle reads its ``VenueErrorReported``: a run that fails between the two (a feed
stall, a crash after the bar) never reaches that settle, and a warm restart has no check left to
find it again. Real alpaca-py against the simulated Alpaca: the re-price's replace stays pending
(``slow_replace``) while the old order fills on, then the replacement fills too; the run fails
right after the bar whose end found the chain over-filled (the engine's ``after_bar`` point).
Failed before: no line above DEBUG named the over-fill (the venue bought 24 of the 20 asked)."""

from __future__ import annotations

import pytest
from loguru import logger
from runtime_support import BuyThenReprice, filling_sim, run_runtime

import ml4t_live.engine as engine_module


def test_an_over_fill_found_at_an_end_of_bar_is_an_error_even_if_the_run_then_fails(tmp_path, monkeypatch):
    sim = filling_sim(16, participation=0.006)
    lines: list[str] = []
    found: list[str] = []  # the check's finding, at whatever level it is logged
    sink = logger.add(lambda m: found.append(m.record["message"]), level="DEBUG",
                      filter=lambda record: "more than the 20 asked" in record["message"])  # fmt: skip

    def fail_after_the_bar_that_found_it(name: str) -> None:
        if name == "after_bar" and found:
            raise RuntimeError("the run fails right after the bar")

    monkeypatch.setattr(engine_module, "failpoint", fail_after_the_bar_that_found_it)
    try:
        sim.inject("slow_replace", bars=3)
        with pytest.raises(RuntimeError, match="right after the bar"):
            run_runtime(sim, tmp_path, 12, lines, BuyThenReprice(), strategy_id="ovf")
        bought = sum(fill.qty for fill in sim.fills())
    finally:
        logger.remove(sink)
        sim.close()
    assert bought > 20  # the chain over-filled at the venue
    said = [line for line in lines if "more than the 20 asked" in line]
    assert len(said) == 1 and said[0].startswith("ERROR "), lines
    assert f"traded {bought:g}, {bought - 20:g} more than the 20 asked" in said[0], said
