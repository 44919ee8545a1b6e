"""A modify waiting for the watcher's report of a submit of unknown outcome, whose report raises.

The watcher's claim is released at once (the submit stays of unknown outcome), so the modify's
wait returns before ``request_timeout``: it is refused (``BeingReported``, nothing sent) with a
message saying the report failed. Before, the message said the order was "still being reported
(after 5s)", neither of which was true. Real alpaca-py against SimulatedAlpaca.
"""

from __future__ import annotations

import threading
from typing import Any

from unknown_support import (
    WAIT,
    HeldOnLoop,
    limit,
    ours,
    replaced_unknown,
)

from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.unknown import BeingReported


class _HeldThenRaises(HeldOnLoop):
    """The watcher's read, held until released, then raising: a report that breaks."""

    def for_view(self, client: Any, order: Any, *, adopting: bool = False) -> Any:
        out = super().for_view(client, order, adopting=adopting)
        if threading.current_thread().name.startswith("ml4t-alpaca-trade"):
            raise RuntimeError("a report that breaks")
        return out


def test_a_modify_whose_wait_ends_with_the_watchers_report_failing_says_so(sim: SimulatedAlpaca) -> None:
    gw, _ = replaced_unknown(sim)
    try:
        held = gw.stream.executions = _HeldThenRaises(gw.stream.executions)
        watcher = threading.Thread(target=lambda: gw.stream.session.call(gw.stream.resolve_unconfirmed),
                                   name="test-watcher-tick")  # fmt: skip
        watcher.start()
        assert held.inside.wait(WAIT), "the watcher never reported t-a"
        refused: list[BaseException] = []

        def modify() -> None:
            try:
                gw.modify(limit(52.0))
            except BeingReported as exc:
                refused.append(exc)

        engine = threading.Thread(target=modify, name="test-engine-modify")
        engine.start()
        try:
            assert gw.stream.unknown.waiting.wait(WAIT), "the modify did not wait for the watcher's report"
        finally:
            held.release.set()  # the watcher's report raises: its claim is released
            engine.join(WAIT + 10)
            watcher.join(WAIT + 10)
        assert not engine.is_alive() and not watcher.is_alive()
        (exc,) = refused
        assert "its report failed" in str(exc) and "still being reported" not in str(exc), exc
        assert ours(sim) == []  # nothing sent
        assert gw.follows_unknown("t-a")
    finally:
        gw.close()
