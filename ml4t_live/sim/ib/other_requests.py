"""Answers to every request the main handlers do not implement: data where it is cheap to
derive from the account and the recorded bars, otherwise an error that names the request.

A real TWS answers every request (with data or an error); a simulator that stays silent makes
the caller hang to its own timeout. The table :data:`REQUESTS` lists each message id a client
can send (ids as ib_async 2.1 / IB's client write them), its name, where its request id sits,
and the answer:

* ``data``: PnL / PnL single (from the simulated account), matching symbols, positions multi,
  family codes, user info, market rule, option-parameter end (no option chains here), and the
  empty lists a stock-only account has (soft-dollar tiers, depth exchanges, SMART components,
  news providers, display groups);
* an error with IB's code where one fits (10092 market depth, 162 histogram, 430
  fundamentals), otherwise 503, IB's "The TWS is out of date
  and must be upgraded. It does not support ..." (the code IB's own client raises for a
  request the server cannot serve);
* nothing for cancels and ``setServerLogLevel`` (TWS sends nothing for them either).

Threading rule: used on the gateway's loop only (through the Dispatcher).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import encoders as enc
from .framing import encode_fields

if TYPE_CHECKING:
    from .server import ClientConnection
    from .venue import IBVenue

NOT_SUPPORTED = 503


@dataclass(frozen=True, slots=True)
class Request:
    name: str
    req_id_at: int | None  # field index of the request id (None: the request has none)
    code: int | None = NOT_SUPPORTED  # error code when it is not answered with data
    text: str = ""


REQUESTS: dict[int, Request] = {
    10: Request(
        "reqMktDepth",
        2,
        10092,
        "Deep market data is not supported for this "
        "combination of security type/exchange",
    ),
    12: Request("reqNewsBulletins", None),
    18: Request("requestFA", None),
    19: Request("replaceFA", 4),
    21: Request("exerciseOptions", 2),
    22: Request("reqScannerSubscription", 1),
    24: Request("reqScannerParameters", None),
    52: Request(
        "reqFundamentalData",
        2,
        430,
        "We are sorry, but fundamentals data for the "
        "security specified is not available.",
    ),
    54: Request("calculateImpliedVolatility", 2),
    55: Request("calculateOptionPrice", 2),
    65: Request("verifyRequest", None),
    66: Request("verifyMessage", None),
    67: Request("queryDisplayGroups", 2, None),
    68: Request("subscribeToGroupEvents", 2, None),
    69: Request("updateDisplayGroup", 2, None),
    72: Request("verifyAndAuthRequest", None),
    73: Request("verifyAndAuthMessage", None),
    74: Request("reqPositionsMulti", 2, None),
    78: Request("reqSecDefOptParams", 1, None),
    79: Request("reqSoftDollarTiers", 1, None),
    80: Request("reqFamilyCodes", None, None),
    81: Request("reqMatchingSymbols", 1, None),
    82: Request("reqMktDepthExchanges", None, None),
    83: Request("reqSmartComponents", 1, None),
    84: Request("reqNewsArticle", 1),
    85: Request("reqNewsProviders", None, None),
    86: Request("reqHistoricalNews", 1),
    88: Request(
        "reqHistogramData",
        1,
        162,
        "Historical Market Data Service error message:"
        "histogram data is not available from this simulated gateway",
    ),
    91: Request("reqMarketRule", None, None),
    92: Request("reqPnL", 1, None),
    94: Request("reqPnLSingle", 1, None),
    100: Request("reqWshMetaData", 1),
    102: Request("reqWshEventData", 1),
    104: Request("reqUserInfo", 1, None),
}
#: Cancels and settings: TWS sends nothing back.
SILENT = {
    11: "cancelMktDepth",
    13: "cancelNewsBulletins",
    14: "setServerLogLevel",
    23: "cancelScannerSubscription",
    53: "cancelFundamentalData",
    56: "cancelCalculateImpliedVolatility",
    57: "cancelCalculateOptionPrice",
    70: "unsubscribeFromGroupEvents",
    75: "cancelPositionsMulti",
    89: "cancelHistogramData",
    93: "cancelPnL",
    95: "cancelPnLSingle",
    101: "cancelWshMetaData",
    103: "cancelWshEventData",
}


def not_supported(name: str) -> str:
    return (
        f"The TWS is out of date and must be upgraded. It does not support {name}: this "
        "simulated gateway replays recorded bars for US stocks (see docs/simulators.md)"
    )


class OtherRequests:
    """Answers for :data:`REQUESTS`; keeps the PnL subscriptions of each connection."""

    def __init__(self, venue: IBVenue, initial_equity: Callable[[], float]) -> None:
        self.venue = venue
        self._initial_equity = initial_equity
        self._data: dict[
            int, Callable[[ClientConnection, list[str], int], list[bytes]]
        ] = {
            67: lambda c, f, r: [encode_fields([67, 1, r, "1|2|3|4|5|6|7"])],
            68: lambda c, f, r: [],
            69: lambda c, f, r: [],
            74: self._positions_multi,
            78: lambda c, f, r: [encode_fields([76, r])],
            79: lambda c, f, r: [encode_fields([77, r, 0])],
            80: lambda c, f, r: [encode_fields([78, 1, self.venue.account, ""])],
            81: self._matching_symbols,
            82: lambda c, f, r: [encode_fields([80, 0])],
            83: lambda c, f, r: [encode_fields([82, r, 0])],
            85: lambda c, f, r: [encode_fields([85, 0])],
            91: lambda c, f, r: [encode_fields([93, int(f[1] or 0), 1, 0, 0.01])],
            92: self._pnl,
            94: self._pnl_single,
            104: lambda c, f, r: [encode_fields([107, r, ""])],
        }

    def handled(self, msg_id: int) -> bool:
        return msg_id in REQUESTS or msg_id in SILENT

    def answer(self, conn: ClientConnection, msg_id: int, fields: list[str]) -> str:
        """Answer one request; returns how ("data", "error" or "silent")."""
        if msg_id in SILENT:
            if msg_id in (93, 95) and len(fields) > 1:
                conn.subs.pnl.pop(_int(fields[1]), None)
            return "silent"
        spec = REQUESTS.get(msg_id)
        if (
            spec is None
        ):  # an id no client library sends: IB's client reports such a server
            conn.write(
                [enc.error(-1, NOT_SUPPORTED, not_supported(f"message id {msg_id}"))]
            )
            return "error"
        req_id = (
            _int(fields[spec.req_id_at])
            if spec.req_id_at is not None and len(fields) > spec.req_id_at
            else -1
        )
        if spec.code is None:
            conn.write(self._data[msg_id](conn, fields, req_id))
            return "data"
        conn.write(
            [enc.error(req_id, spec.code, spec.text or not_supported(spec.name))]
        )
        return "error"

    # ------------------------------------------------------------------ data answers
    def _positions_multi(
        self, conn: ClientConnection, f: list[str], req_id: int
    ) -> list[bytes]:
        acct = self.venue.account
        frames = [
            encode_fields([71, 1, req_id, acct, *info.c11("NASDAQ"), qty, cost, ""])
            for info, qty, cost in self.venue.positions()
        ]
        return [*frames, encode_fields([72, 1, req_id])]

    def _matching_symbols(
        self, conn: ClientConnection, f: list[str], req_id: int
    ) -> list[bytes]:
        pattern = (f[2] if len(f) > 2 else "").strip().upper()
        found = [
            i
            for i in self.venue.book
            if pattern
            and (i.symbol.startswith(pattern) or pattern in i.long_name.upper())
        ][:16]
        fields: list[object] = [79, req_id, len(found)]
        for i in found:
            fields += [
                i.con_id,
                i.symbol,
                "STK",
                i.primary_exchange,
                i.currency,
                0,
                i.long_name,
                "",
            ]
        return [encode_fields(fields)]

    def _pnl(self, conn: ClientConnection, f: list[str], req_id: int) -> list[bytes]:
        conn.subs.pnl[req_id] = None
        return self.pnl_frames(conn, only=req_id)

    def _pnl_single(
        self, conn: ClientConnection, f: list[str], req_id: int
    ) -> list[bytes]:
        con_id = _int(f[4]) if len(f) > 4 else 0
        if self.venue.book.by_con_id(con_id) is None:
            return [enc.error(req_id, 200, enc.NO_DEFINITION)]
        conn.subs.pnl[req_id] = con_id
        return self.pnl_frames(conn, only=req_id)

    def pnl_frames(
        self, conn: ClientConnection, only: int | None = None
    ) -> list[bytes]:
        """pnl / pnlSingle for the connection's subscriptions (daily = since the replay began)."""
        ex = self.venue.exchange
        positions = ex.positions
        unrealized_by = {
            a: q * ((ex.last_price(a) or c) - c) for a, (q, c) in positions.items()
        }
        unrealized = sum(unrealized_by.values())
        total = ex.equity - self._initial_equity()
        frames = []
        for req_id, con_id in conn.subs.pnl.items():
            if only is not None and req_id != only:
                continue
            if con_id is None:
                frames.append(
                    encode_fields([94, req_id, total, unrealized, total - unrealized])
                )
                continue
            info = self.venue.book.by_con_id(con_id)
            qty, cost = positions.get(info.symbol, (0.0, 0.0)) if info else (0.0, 0.0)
            price = (ex.last_price(info.symbol) if info else None) or cost
            upnl = unrealized_by.get(info.symbol, 0.0) if info else 0.0
            frames.append(
                encode_fields([95, req_id, qty, upnl, upnl, 0.0, qty * price])
            )
        return frames


def _int(text: str) -> int:
    try:
        return int(float(text)) if text else 0
    except ValueError:
        return 0
