"""``sim --history N``: how many of the first recorded bars are history rather than replay.

Threading rule: pure functions; safe anywhere.

A simulated venue serves its history bars from the historical-data requests (IB's
``reqHistoricalData``, Alpaca's bars endpoints) from the moment it starts; the replay begins with
the first bar after them. ``N`` is either a count of bar timestamps (``390``, ``390bars``) or a
duration of recorded time measured from the first bar (``90min``, ``6h``, ``2d``, ``1w``; also
IB's spelling ``"1 D"``): every bar stamped before ``first + duration`` is history.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from ..errors import ConfigError

_UNITS = {
    "s": timedelta(seconds=1), "sec": timedelta(seconds=1), "secs": timedelta(seconds=1),
    "m": timedelta(minutes=1), "min": timedelta(minutes=1), "mins": timedelta(minutes=1),
    "h": timedelta(hours=1), "hour": timedelta(hours=1), "hours": timedelta(hours=1),
    "d": timedelta(days=1), "day": timedelta(days=1), "days": timedelta(days=1),
    "w": timedelta(weeks=1), "week": timedelta(weeks=1), "weeks": timedelta(weeks=1),
}  # fmt: skip
_PATTERN = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$")


def parse_history(value: int | str | timedelta | None) -> int | timedelta:
    """``390`` / ``"390"`` / ``"390bars"`` -> 390 bars; ``"90min"`` / ``"1 D"`` -> a timedelta.

    None means no history (0 bars). Raises ConfigError saying what is accepted.
    """
    if value is None:
        return 0
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(f"--history must be >= 0, got {value}")
        return value
    match = _PATTERN.match(str(value).lower())
    unit = match.group(2) if match else None
    if match is None or (unit not in _UNITS and unit not in ("", "bar", "bars")):
        raise ConfigError(
            f"--history {value!r}: give a number of bars (390) or a duration of recorded time "
            "(90min, 6h, 2d, 1w)"
        )
    count = int(match.group(1))
    if unit in ("", "bar", "bars"):
        return count
    return count * _UNITS[unit]


def history_count(timestamps: Sequence[datetime], value: int | str | timedelta | None) -> int:
    """How many leading ``timestamps`` (sorted, one per bar time) are history for ``value``.

    Raises ConfigError when the history would leave nothing to replay.
    """
    spec = parse_history(value)
    if isinstance(spec, timedelta):
        count = bisect.bisect_left(list(timestamps), timestamps[0] + spec) if timestamps else 0
    else:
        count = spec
    if count and count >= len(timestamps):
        raise ConfigError(
            f"--history {value} covers all {len(timestamps)} bar times; nothing would be replayed "
            "(give less history or more bars)"
        )
    return count
