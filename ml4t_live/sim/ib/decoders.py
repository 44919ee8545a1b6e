"""Requests the simulated gateway RECEIVES, decoded from the field lists ib_async 2.1's
client writes at server version 178 (pure functions; ``fields[0]`` is the message id).

``decode_request`` returns one small dataclass per request kind, or :class:`Unsupported`
for a message id this simulator does not implement (the server logs it and answers nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .framing import SERVER_VERSION, UNSET_DOUBLE, FramingError
from .layouts import place_order_fa_profile


@dataclass(frozen=True, slots=True)
class ContractRef:
    """The 12-field contract block of a request (C12: with primaryExchange)."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str


@dataclass(frozen=True, slots=True)
class StartApi:
    client_id: int
    capabilities: str


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    order_id: int
    contract: ContractRef
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    oca_group: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    oca_type: int = 0
    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    what_if: bool = False


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: int


@dataclass(frozen=True, slots=True)
class ReqContractDetails:
    req_id: int
    contract: ContractRef


@dataclass(frozen=True, slots=True)
class ReqExecutions:
    req_id: int
    client_id: int
    account: str
    time: str
    symbol: str
    sec_type: str
    exchange: str
    side: str


@dataclass(frozen=True, slots=True)
class ReqHistoricalData:
    req_id: int
    contract: ContractRef
    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


@dataclass(frozen=True, slots=True)
class ReqRealTimeBars:
    req_id: int
    contract: ContractRef
    bar_size: int
    what_to_show: str
    use_rth: bool


@dataclass(frozen=True, slots=True)
class ReqMktData:
    req_id: int
    contract: ContractRef
    generic_ticks: str
    snapshot: bool


@dataclass(frozen=True, slots=True)
class ReqTickByTickData:
    req_id: int
    contract: ContractRef
    tick_type: str


@dataclass(frozen=True, slots=True)
class ReqHistoricalTicks:
    req_id: int
    contract: ContractRef
    start: str
    end: str
    count: int
    what_to_show: str
    use_rth: bool


@dataclass(frozen=True, slots=True)
class ReqHeadTimeStamp:
    req_id: int
    contract: ContractRef
    format_date: int


@dataclass(frozen=True, slots=True)
class ReqAccountUpdates:
    subscribe: bool
    account: str


@dataclass(frozen=True, slots=True)
class ReqAccountUpdatesMulti:
    req_id: int
    account: str


@dataclass(frozen=True, slots=True)
class ReqAccountSummary:
    req_id: int
    group: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReqCompletedOrders:
    api_only: bool


@dataclass(frozen=True, slots=True)
class ReqIds:
    count: int


@dataclass(frozen=True, slots=True)
class Cancel:
    """A cancel of a subscription identified by reqId (kind names the subscription)."""

    kind: str
    req_id: int


@dataclass(frozen=True, slots=True)
class Simple:
    """A request without arguments (kind: positions, openOrders, allOpenOrders, ...)."""

    kind: str


@dataclass(frozen=True, slots=True)
class Unsupported:
    msg_id: int
    fields: tuple[str, ...]


def _int(s: str) -> int:
    return int(float(s)) if s else 0


def _float(s: str) -> float:
    return float(s) if s else 0.0


def _opt_float(s: str) -> float | None:
    if not s:
        return None
    value = float(s)
    return None if value >= UNSET_DOUBLE else value


def _bool(s: str) -> bool:
    return bool(int(s)) if s else False


def contract_at(fields: list[str], i: int) -> ContractRef:
    """C12 starting at index i: conId, symbol, secType, lastTrade, strike, right,
    multiplier, exchange, primaryExchange, currency, localSymbol, tradingClass."""
    return ContractRef(
        con_id=_int(fields[i]),
        symbol=fields[i + 1],
        sec_type=fields[i + 2],
        exchange=fields[i + 7],
        primary_exchange=fields[i + 8],
        currency=fields[i + 9],
    )


def decode_place_order(fields: list[str], version: int = SERVER_VERSION) -> PlaceOrder:
    """placeOrder (3): the fixed head (idx 1-34), then a walk to whatIf over the
    conditional blocks exactly as ``Client.placeOrder`` writes them (below server version 177
    with the deprecated faProfile after faPercentage)."""
    f = fields
    contract = contract_at(f, 2)
    i = 35
    if contract.sec_type == "BAG":
        i += 1 + 8 * _int(f[i])
        i += 1 + _int(f[i])
        i += 1 + 2 * _int(f[i])
    i += 7  # "", discretionaryAmt, goodAfterTime, goodTillDate, faGroup, faMethod, faPercentage
    i += place_order_fa_profile(version)
    oca_type = _int(f[i + 4])
    dn_type = f[i + 22]
    i += 24 + (8 if dn_type else 0)
    trail_stop = _opt_float(f[i + 2])
    trailing_pct = _opt_float(f[i + 3])
    increment = _opt_float(f[i + 6]) or 0.0
    i += 7 + (7 if 0 < increment < UNSET_DOUBLE else 0)
    hedge = f[i + 3]
    i += 4 + (1 if hedge else 0)
    i += 4
    i += 1 + (3 if _bool(f[i]) else 0)
    algo = f[i]
    i += 1
    if algo:
        i += 1 + 2 * _int(f[i])
    what_if = _bool(f[i + 1])
    return PlaceOrder(
        order_id=_int(f[1]),
        contract=contract,
        action=f[16],
        quantity=_float(f[17]),
        order_type=f[18],
        lmt_price=_opt_float(f[19]),
        aux_price=_opt_float(f[20]),
        tif=f[21] or "DAY",
        oca_group=f[22],
        account=f[23],
        order_ref=f[26],
        transmit=_bool(f[27]) if f[27] else True,
        parent_id=_int(f[28]),
        outside_rth=_bool(f[33]),
        oca_type=oca_type,
        trail_stop_price=trail_stop,
        trailing_percent=trailing_pct,
        what_if=what_if,
    )


_SIMPLE = {
    5: "openOrders", 16: "allOpenOrders", 17: "managedAccounts", 49: "currentTime",
    58: "globalCancel", 59: "marketDataType", 61: "positions", 64: "cancelPositions",
}  # fmt: skip
_CANCELS = {
    2: "mktData", 25: "historicalData", 51: "realTimeBars", 63: "accountSummary",
    77: "accountUpdatesMulti", 90: "headTimestamp",
}  # fmt: skip


def decode_request(fields: list[str], version: int = SERVER_VERSION) -> Any:
    """One decoded request (as a client writes it at server ``version``); raises FramingError
    for a malformed one."""
    try:
        msg_id = int(fields[0])
        if msg_id == 3:
            return decode_place_order(fields, version)
        return _decode(msg_id, fields)
    except (IndexError, ValueError) as exc:
        raise FramingError(f"malformed request {fields[:3]}...: {exc}") from exc


def _decode(msg_id: int, f: list[str]) -> Any:
    if msg_id == 71:
        return StartApi(_int(f[2]), f[3] if len(f) > 3 else "")
    if msg_id == 4:
        return CancelOrder(_int(f[2]))
    if msg_id in _SIMPLE:
        return Simple(_SIMPLE[msg_id])
    if msg_id == 90:
        return Cancel("headTimestamp", _int(f[1]))  # cancelHeadTimeStamp has no version field
    if msg_id in _CANCELS:
        return Cancel(_CANCELS[msg_id], _int(f[2]))
    if msg_id == 87:
        return ReqHeadTimeStamp(_int(f[1]), contract_at(f, 2), _int(f[17]) or 1)
    if msg_id == 15:
        return Simple("autoOpenOrders")
    if msg_id == 99:
        return ReqCompletedOrders(_bool(f[1]))
    if msg_id == 6:
        return ReqAccountUpdates(_bool(f[2]), f[3])
    if msg_id == 76:
        return ReqAccountUpdatesMulti(_int(f[2]), f[3])
    if msg_id == 62:
        return ReqAccountSummary(_int(f[2]), f[3], tuple(t for t in f[4].split(",") if t))
    if msg_id == 7:
        return ReqExecutions(_int(f[2]), _int(f[3]), f[4], f[5], f[6], f[7], f[8], f[9])
    if msg_id == 8:
        return ReqIds(_int(f[2]))
    if msg_id == 9:
        return ReqContractDetails(_int(f[2]), contract_at(f, 3))
    if msg_id == 20:
        return ReqHistoricalData(
            req_id=_int(f[1]), contract=contract_at(f, 2), end=f[15], bar_size=f[16],
            duration=f[17], use_rth=_bool(f[18]), what_to_show=f[19],
            format_date=_int(f[20]) or 1, keep_up_to_date=_bool(f[-2]),
        )  # fmt: skip
    if msg_id == 1:
        contract = contract_at(f, 3)
        i = 15
        if contract.sec_type == "BAG":
            i += 1 + 4 * _int(f[i])
        i += 1 + (3 if _bool(f[i]) else 0)
        return ReqMktData(_int(f[2]), contract, f[i], _bool(f[i + 1]))
    if msg_id == 97:
        return ReqTickByTickData(_int(f[1]), contract_at(f, 2), f[14])
    if msg_id == 98:
        return Cancel("tickByTick", _int(f[1]))
    if msg_id == 96:
        return ReqHistoricalTicks(
            req_id=_int(f[1]), contract=contract_at(f, 2), start=f[15], end=f[16],
            count=_int(f[17]), what_to_show=f[18], use_rth=_bool(f[19]),
        )  # fmt: skip
    if msg_id == 50:
        return ReqRealTimeBars(_int(f[2]), contract_at(f, 3), _int(f[15]), f[16], _bool(f[17]))
    return Unsupported(msg_id, tuple(f))
