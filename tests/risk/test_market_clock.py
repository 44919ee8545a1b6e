"""``posix``: a bar timestamp read as POSIX seconds, exactly as ``datetime.timestamp`` reads it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from ml4t_live.risk.gate import posix

ZONES = [UTC, ZoneInfo("UTC"), ZoneInfo("Etc/UTC"), timezone(timedelta(hours=-5)),
         timezone(timedelta(hours=5, minutes=30)), ZoneInfo("America/New_York"), ZoneInfo("Europe/London"),
         ZoneInfo("Australia/Lord_Howe")]  # fmt: skip


@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_posix_reads_every_zone_as_timestamp_does(zone):
    rnd = random.Random(7)
    for _ in range(3000):  # 1960-2055, both sides of every DST change in range
        local = (datetime(1960, 1, 1) + timedelta(seconds=rnd.uniform(0, 3e9))).replace(tzinfo=zone)
        assert posix(local) == local.timestamp(), local
    assert posix(datetime(2024, 3, 10, 2, 30, tzinfo=zone)) == datetime(2024, 3, 10, 2, 30, tzinfo=zone).timestamp()


def test_posix_of_naive_times_dates_and_numbers():
    assert posix(datetime(2024, 1, 2, 14, 30)) == datetime(2024, 1, 2, 14, 30, tzinfo=UTC).timestamp()
    assert posix(datetime(2024, 1, 2).date()) == datetime(2024, 1, 2, tzinfo=UTC).timestamp()
    assert posix(1_700_000_000) == 1_700_000_000.0


def test_posix_of_dateutil_zones_and_pandas_times_is_their_own_timestamp():
    """dateutil's zones cannot be hashed (a lookup by zone would raise); a pandas time keeps
    nanoseconds its ``timestamp()`` rounds: both are read by their own ``timestamp()``."""
    import pandas as pd
    from dateutil import tz

    for zone in (tz.tzutc(), tz.tzoffset(None, -18_000), tz.gettz("America/New_York"), tz.tzlocal()):
        at = datetime(2024, 3, 10, 7, 30, 15, 250_000, tzinfo=zone)
        assert posix(at) == at.timestamp(), zone
    for stamp in (pd.Timestamp("2024-01-02 14:30:00.123456789", tz="UTC"),
                  pd.Timestamp("2024-01-02 14:30:00.123456789", tz=ZoneInfo("UTC")),
                  pd.Timestamp("2024-01-02 14:30:00.123456789", tz="dateutil/UTC")):  # fmt: skip
        assert posix(stamp) == stamp.timestamp(), stamp
