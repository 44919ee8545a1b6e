"""NYSE hours: regular sessions, a holiday, an early close, next open/close, Alpaca calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from ml4t_live.errors import ConfigError
from ml4t_live.sim import market_hours as mh


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_regular_session_and_is_open_bounds() -> None:
    assert mh.session(date(2024, 3, 5)) == (utc(2024, 3, 5, 14, 30), utc(2024, 3, 5, 21, 0))
    assert mh.is_open(utc(2024, 3, 5, 14, 30))  # open is inclusive
    assert not mh.is_open(utc(2024, 3, 5, 21, 0))  # close is exclusive
    assert not mh.is_open(utc(2024, 3, 5, 14, 29))
    assert mh.is_open(datetime(2024, 3, 5, 15, 0))  # naive = UTC


def test_holiday_is_closed() -> None:
    assert mh.session(date(2024, 7, 4)) is None
    assert not mh.is_open(utc(2024, 7, 4, 15, 0))
    assert mh.next_open(utc(2024, 7, 3, 22, 0)) == utc(2024, 7, 5, 13, 30)  # DST: 09:30 EDT


def test_early_close_day_after_thanksgiving() -> None:
    assert mh.session(date(2024, 11, 29)) == (utc(2024, 11, 29, 14, 30), utc(2024, 11, 29, 18, 0))
    assert mh.is_open(utc(2024, 11, 29, 17, 59))
    assert not mh.is_open(utc(2024, 11, 29, 18, 30))
    assert mh.next_close(utc(2024, 11, 29, 15, 0)) == utc(2024, 11, 29, 18, 0)


def test_next_open_is_strictly_after_and_skips_weekends() -> None:
    assert mh.next_open(utc(2024, 3, 8, 14, 30)) == utc(2024, 3, 11, 13, 30)  # Fri open -> Mon
    assert mh.next_open(utc(2024, 3, 5, 10, 0)) == utc(2024, 3, 5, 14, 30)


def test_calendar_days_like_alpaca() -> None:
    days = mh.calendar_days(date(2024, 11, 27), date(2024, 12, 2))
    assert [d.date for d in days] == [date(2024, 11, 27), date(2024, 11, 29), date(2024, 12, 2)]
    early = days[1]
    assert (early.open, early.close) == (time(9, 30), time(13, 0))
    assert (early.session_open, early.session_close) == (time(4, 0), time(17, 0))
    assert (days[0].close, days[0].session_close) == (time(16, 0), time(20, 0))
    assert days[0].close_at == utc(2024, 11, 27, 21, 0)


def test_next_open_crosses_a_year_end() -> None:
    assert mh.next_open(utc(2024, 12, 31, 22, 0)) == utc(2025, 1, 2, 14, 30)  # Jan 1 closed
    assert mh.calendar_days(date(2024, 12, 31), date(2025, 1, 2))[-1].date == date(2025, 1, 2)


def test_years_outside_the_supported_range_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="outside the NYSE calendar"):
        mh.session(date(1800, 1, 2))
