"""Ticks derived from the recorded bars (pure functions): tick-by-tick streams and historical
ticks, one tick per 5-second real-time bar (``market_data.split_bar``).

The recorded data holds bars, not trades, so a "tick" here is the 5-second bar's close: a trade
(``Last`` / ``AllLast`` / ``TRADES``) of the 5-second bar's volume at its close, a quote
(``BidAsk`` / ``BID_ASK``) one cent either side of it with 100 shares each, and a midpoint
(``MidPoint`` / ``MIDPOINT``) at the close. Each is stamped at the end of its 5-second bar. The
quotes match what ``reqMktData`` reports.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .encoders import HistBar
from .framing import encode_fields
from .market_data import REALTIME_SECONDS

#: reqTickByTickData tick types -> tickByTick (99) type numbers
TICK_TYPES = {"Last": 1, "AllLast": 2, "BidAsk": 3, "MidPoint": 4}
#: reqHistoricalTicks whatToShow -> the answer's message id
HISTORICAL_KINDS = {"TRADES": 98, "BID_ASK": 97, "MIDPOINT": 96}
MAX_HISTORICAL_TICKS = 1000
SPREAD = 0.01


def tick_time(sub: HistBar) -> int:
    """Epoch seconds at the end of a 5-second bar (when its close is known)."""
    return int((sub.start + timedelta(seconds=REALTIME_SECONDS)).timestamp())


def tick_by_tick(req_id: int, kind: int, sub: HistBar, exchange: str) -> bytes:
    """One tickByTick (99) message for a 5-second bar."""
    t, close = tick_time(sub), sub.close
    if kind in (1, 2):
        return encode_fields([99, req_id, kind, t, close, sub.volume, 0, exchange, ""])
    if kind == 3:
        bid, ask = round(close - SPREAD, 4), round(close + SPREAD, 4)
        return encode_fields([99, req_id, 3, t, bid, ask, 100, 100, 0])
    return encode_fields([99, req_id, 4, t, close])


def historical_ticks(
    req_id: int,
    what: str,
    subs: list[HistBar],
    start: datetime | None,
    end: datetime | None,
    count: int,
    exchange: str,
) -> bytes:
    """historicalTicks(Last/BidAsk) for the 5-second bars in the window: ``count`` ticks (at
    most 1000) from ``start`` onwards, or up to ``end`` when no start is given."""
    count = max(1, min(count or MAX_HISTORICAL_TICKS, MAX_HISTORICAL_TICKS))
    stamped = [(tick_time(s), s) for s in subs]
    if start is not None:
        first = start.timestamp()
        chosen = [x for x in stamped if x[0] >= first][:count]
    else:
        last = end.timestamp() if end is not None else float("inf")
        chosen = [x for x in stamped if x[0] <= last][-count:]
    msg_id = HISTORICAL_KINDS[what]
    fields: list[object] = [msg_id, req_id, len(chosen)]
    for t, s in chosen:
        if msg_id == 98:
            fields += [t, 0, s.close, s.volume, exchange, ""]
        elif msg_id == 97:
            fields += [t, 0, round(s.close - SPREAD, 4), round(s.close + SPREAD, 4), 100, 100]
        else:
            fields += [t, "", s.close, 0]
    return encode_fields([*fields, 1])
