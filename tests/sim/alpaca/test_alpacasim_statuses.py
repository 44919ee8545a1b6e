"""The simulated Alpaca's open and closed order statuses agree with what the adapter counts as
working (ml4t_live/venues/alpaca/parsing.py OPEN_STATUSES): ``done_for_day`` (Alpaca's order-status
reference: done executing for the day, no further updates until the next trading day) is open. The
simulator listed it among CLOSED_STATUSES (``GET /v2/orders?status=closed``, ``is_open`` False: a
DELETE or PATCH of it refused 422), the adapter among the working ones (seen failing so)."""

from __future__ import annotations

from datetime import UTC, datetime

from ml4t_live.sim.alpaca.records import CLOSED_STATUSES, OPEN_STATUSES, AlpacaOrder
from ml4t_live.venues.alpaca.parsing import OPEN_STATUSES as ADAPTER_OPEN


def test_the_simulators_open_and_closed_statuses_agree_with_the_adapter() -> None:
    working = {status.value for status in ADAPTER_OPEN}
    assert OPEN_STATUSES <= working, OPEN_STATUSES - working
    assert not CLOSED_STATUSES & working, CLOSED_STATUSES & working


def test_a_done_for_day_order_is_open_at_the_simulator() -> None:
    order = AlpacaOrder("id-1", "c-1", "AAPL", "buy", "limit", "gtc", datetime(2024, 3, 4, 21, tzinfo=UTC),
                        qty=1.0, limit_price=90.0, status="done_for_day")  # fmt: skip
    assert order.is_open
    assert "done_for_day" in OPEN_STATUSES and "done_for_day" not in CLOSED_STATUSES
