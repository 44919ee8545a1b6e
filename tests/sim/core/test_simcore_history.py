"""``sim --history``: bars or a duration of recorded time, parsed and counted (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ml4t_live.errors import ConfigError
from ml4t_live.sim.history import history_count, parse_history

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
STAMPS = [T0 + timedelta(minutes=i) for i in range(5)] + [T0 + timedelta(days=1, minutes=i) for i in range(5)]


@pytest.mark.parametrize(("value", "parsed"), [
    (None, 0), (7, 7), ("7", 7), (" 7 bars", 7), ("90min", timedelta(minutes=90)), ("1 D", timedelta(days=1)),
    ("6h", timedelta(hours=6)), ("2w", timedelta(weeks=2)), ("30s", timedelta(seconds=30)),
])  # fmt: skip
def test_bars_or_a_duration(value, parsed):
    assert parse_history(value) == parsed


@pytest.mark.parametrize("value", ["abc", "-3", "5 fortnights", "1.5h", -1])
def test_anything_else_says_what_is_accepted(value):
    with pytest.raises(ConfigError, match="number of bars|>= 0"):
        parse_history(value)


@pytest.mark.parametrize(("value", "count"), [(None, 0), (3, 3), ("3min", 3), ("1d", 5), ("1 D", 5), ("1441min", 6)])
def test_count_is_the_bars_stamped_before_first_plus_duration(value, count):
    assert history_count(STAMPS, value) == count


def test_history_covering_every_bar_is_refused():
    with pytest.raises(ConfigError, match="nothing would be replayed"):
        history_count(STAMPS, "3d")
    with pytest.raises(ConfigError, match="nothing would be replayed"):
        history_count(STAMPS, 10)
