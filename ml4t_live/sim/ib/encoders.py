"""Messages the simulated gateway SENDS, encoded exactly as ib_async 2.1's decoder reads them
at server version 178 (pure functions: values in, one frame of bytes out).

Field orders follow ``ib_async/decoder.py``. Strict messages (exact field counts) are
position (61, 16 fields), commissionReport (59, 8), updatePortfolio (7, 20), and, during the
handshake, nextValidId (9) and managedAccounts (15) with 3 each; a wrong count makes ib_async
log "Error handling fields" and drop the message, which shows up later as a hang.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .contracts import ORDER_TYPES, VALID_EXCHANGES, SymbolInfo
from .framing import encode_fields

NY_TZ = "America/New_York"


@dataclass(slots=True)
class OrderView:
    """What openOrder / orderStatus / completedOrder report about one order."""

    order_id: int
    client_id: int
    perm_id: int
    info: SymbolInfo
    exchange: str
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    oca_group: str
    account: str
    order_ref: str
    parent_id: int
    outside_rth: bool
    status: str
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    trail_stop_price: float | None = None
    oca_type: int = 0
    transmit: bool = True
    completed_time: str = ""
    completed_status: str = ""
    what_if: bool = False
    margins: tuple[str, ...] = ("",) * 9  # init/maint/equityWithLoan before, change, after
    commission: float | None = None

    @property
    def remaining(self) -> float:
        return max(self.total_quantity - self.filled, 0.0)


@dataclass(slots=True)
class ExecView:
    """One execution as execDetails / commissionReport report it."""

    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    info: SymbolInfo
    time: datetime
    account: str
    side: str  # "BOT" / "SLD"
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    order_ref: str
    commission: float
    realized_pnl: float | None = None
    exchange: str = "NASDAQ"


def ib_time(ts: datetime) -> str:
    """``YYYYMMDD HH:MM:SS UTC``: a tz-aware stamp ib_async's parseIBDatetime reads."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"


# ---------------------------------------------------------------------------- session
def managed_accounts(accounts: list[str]) -> bytes:
    return encode_fields([15, 1, ",".join(accounts)])


def next_valid_id(order_id: int) -> bytes:
    return encode_fields([9, 1, order_id])


#: TWS's text for error 200 (a contract it cannot resolve)
NO_DEFINITION = "No security definition has been found for the request"


def error(req_id: int, code: int, message: str, advanced_json: str = "") -> bytes:
    return encode_fields([4, 2, req_id, code, message, advanced_json])


def current_time(epoch_seconds: int) -> bytes:
    return encode_fields([49, 1, epoch_seconds])


# ---------------------------------------------------------------------------- account
def account_value(key: str, value: str, currency: str, account: str) -> bytes:
    return encode_fields([6, 2, key, value, currency, account])


def portfolio_value(
    info: SymbolInfo, position: float, market_price: float, average_cost: float,
    unrealized: float, realized: float, account: str,
) -> bytes:  # fmt: skip
    return encode_fields([
        7, 8, info.con_id, info.symbol, "STK", "", 0.0, "", "", info.primary_exchange,
        info.currency, info.symbol, info.trading_class, position, market_price,
        position * market_price, average_cost, unrealized, realized, account,
    ])  # fmt: skip


def account_time(ts: datetime) -> bytes:
    return encode_fields([8, 1, ts.strftime("%H:%M")])


def account_download_end(account: str) -> bytes:
    return encode_fields([54, 1, account])


def account_update_multi(req_id: int, account: str, key: str, value: str, currency: str) -> bytes:
    return encode_fields([73, 1, req_id, account, "", key, value, currency])


def account_update_multi_end(req_id: int) -> bytes:
    return encode_fields([74, 1, req_id])


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> bytes:
    return encode_fields([63, 1, req_id, account, tag, value, currency])


def account_summary_end(req_id: int) -> bytes:
    return encode_fields([64, 1, req_id])


def position(account: str, info: SymbolInfo, quantity: float, avg_cost: float) -> bytes:
    return encode_fields([61, 3, account, *info.c11("NASDAQ"), quantity, avg_cost])


def position_end() -> bytes:
    return encode_fields([62, 1])


# ---------------------------------------------------------------------------- contracts
def contract_details(req_id: int, info: SymbolInfo, exchange: str) -> bytes:
    hours = "20261124:0930-20261124:1600"
    return encode_fields([
        10, req_id, info.symbol, "STK", "", 0.0, "", exchange, info.currency, info.symbol,
        info.trading_class, info.trading_class, info.con_id, info.min_tick,
        "", ORDER_TYPES, ",".join(VALID_EXCHANGES), 1, 0, info.long_name,
        info.primary_exchange, "", "", "", "", "US/Eastern", hours, hours, "", "",
        0,  # secIdList count
        1, "", "", "26", "", "COMMON", 1, 1, 100,
    ])  # fmt: skip


def contract_details_end(req_id: int) -> bytes:
    return encode_fields([52, 1, req_id])


# ---------------------------------------------------------------------------- orders
def open_order(o: OrderView) -> bytes:
    """openOrder (5) for a plain stock order: 127 fields at v178."""
    trail = o.trail_stop_price
    return encode_fields([
        5, o.order_id, *o.info.c11(o.exchange),
        o.action, o.total_quantity, o.order_type, o.lmt_price, o.aux_price, o.tif,
        o.oca_group, o.account, "O", 0, o.order_ref, o.client_id, o.perm_id,
        o.outside_rth, False, 0.0, "",
        "",  # deprecated sharesAllocation
        "", "", "",  # faGroup, faMethod, faPercentage
        "", "", "", "", "", 0, "", "",  # modelCode .. exemptCode
        0, None, None, None, None, None,  # auctionStrategy .. stockRangeUpper
        0, False, False, False, None, o.oca_type, False, False, None, o.parent_id, 0,
        None, None, "", None,  # volatility, volatilityType, dnOrderType, dnAuxPrice
        False, 0, trail, None, None, "", "",  # continuousUpdate .. comboLegsDescrip
        0, 0, 0,  # combo legs, order combo legs, smart routing params
        None, None, None,  # scale init/subs level size, scale price increment
        "",  # hedgeType
        False, "", "", False, 0,  # optOutSmartRouting .. deltaNeutralContract flag
        "",  # algoStrategy
        False, o.what_if, o.status, *o.margins,  # solicited, whatIf, status, 9 margin strings
        o.commission, None, None, "USD" if o.what_if else "", "",  # commission .. warningText
        False, False,  # randomizeSize, randomizePrice
        0,  # conditions
        "", None, trail, None, None, None, None, 0,  # adjusted*, trailStopPrice ...
        "", "", "",  # softDollarTier
        None, False, False, False, "",  # cashQty .. usePriceMgmtAlgo
        None, "", "",  # duration, postToAts, autoCancelParent
        None, None, None, None, None,  # minTradeQty .. midOffsetAtHalf
    ])  # fmt: skip


def order_status(o: OrderView) -> bytes:
    return encode_fields([
        3, o.order_id, o.status, o.filled, o.remaining, o.avg_fill_price, o.perm_id,
        o.parent_id, o.last_fill_price, o.client_id, "", None,
    ])  # fmt: skip


def open_order_end() -> bytes:
    return encode_fields([53, 1])


def completed_order(o: OrderView) -> bytes:
    """completedOrder (101): 96 fields at v178, no orderId."""
    trail = o.trail_stop_price
    return encode_fields([
        101, *o.info.c11(o.exchange),
        o.action, o.total_quantity, o.order_type, o.lmt_price, o.aux_price, o.tif,
        o.oca_group, o.account, "O", 0, o.order_ref, o.perm_id, o.outside_rth, False,
        0.0, "", "", "", "",
        "", "", "", "", "", 0, "", "",  # modelCode .. exemptCode
        None, None, None, None, None,  # startingPrice .. stockRangeUpper
        0, False, False, None, o.oca_type, 0, None, None, "", None,
        False, 0, trail, None, "",  # continuousUpdate .. comboLegsDescrip
        0, 0, 0,
        None, None, None, "",  # scale x3, hedgeType
        "", "", False, 0,  # clearingAccount, clearingIntent, notHeld, dnc flag
        "",  # algoStrategy
        False, o.status, False, False,  # solicited, status, randomize x2
        0,  # conditions
        trail, None, None, False, False, "", o.filled, 0, False, "", False, False,
        0, o.completed_time, o.completed_status,
        None, None, None, None, None,
    ])  # fmt: skip


def completed_orders_end() -> bytes:
    return encode_fields([102])


def exec_details(req_id: int, e: ExecView) -> bytes:
    """execDetails (11): 32 fields at v178 (reqId -1 for live fills)."""
    return encode_fields([
        11, req_id, e.order_id, *e.info.c11(e.exchange), e.exec_id, ib_time(e.time),
        e.account, e.exchange, e.side, e.shares, e.price, e.perm_id, e.client_id, 0,
        e.cum_qty, e.avg_price, e.order_ref, "", None, "", 2, False,
    ])  # fmt: skip


def exec_details_end(req_id: int) -> bytes:
    return encode_fields([55, 1, req_id])


def commission_report(e: ExecView, raw: str | None = None) -> bytes:
    """commissionReport (59, strict 8 fields); ``raw`` replaces the commission field's text
    (a sentinel such as ``-1``, empty or ``1.7976931348623157E308``)."""
    realized = e.realized_pnl if e.realized_pnl is not None else 1.7976931348623157e308
    commission = e.commission if raw is None else raw
    return encode_fields([59, 1, e.exec_id, commission, "USD", realized, None, None])


# ---------------------------------------------------------------------------- market data
def realtime_bar(
    req_id: int, start_epoch: int, o: float, h: float, lo: float, c: float, volume: float,
    wap: float, count: int,
) -> bytes:  # fmt: skip
    return encode_fields([50, 3, req_id, start_epoch, o, h, lo, c, volume, wap, count])


def market_data_type(req_id: int, kind: int = 1) -> bytes:
    return encode_fields([58, 1, req_id, kind])


def tick_price(req_id: int, tick_type: int, price: float, size: float) -> bytes:
    """tickPrice (1): strict, 7 fields (1 bid, 2 ask, 4 last, 9 close)."""
    return encode_fields([1, 6, req_id, tick_type, price, size, 0])


def tick_snapshot_end(req_id: int) -> bytes:
    return encode_fields([57, 1, req_id])


def quote_ticks(req_id: int, last: float, previous_close: float | None) -> list[bytes]:
    """Last / bid / ask (one tick either side of last) and the previous close."""
    frames = [tick_price(req_id, 1, round(last - 0.01, 4), 100), tick_price(req_id, 2, round(last + 0.01, 4), 100),
              tick_price(req_id, 4, last, 100)]  # fmt: skip
    if previous_close is not None:
        frames.append(tick_price(req_id, 9, previous_close, 0))
    return frames


@dataclass(frozen=True, slots=True)
class HistBar:
    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


def hist_date(ts: datetime, daily: bool, format_date: int) -> str:
    if daily:
        return ts.strftime("%Y%m%d")
    if format_date == 2:
        return str(int(ts.timestamp()))
    from zoneinfo import ZoneInfo

    return ts.astimezone(ZoneInfo(NY_TZ)).strftime("%Y%m%d %H:%M:%S") + f" {NY_TZ}"


def historical_data_update(req_id: int, bar: HistBar, daily: bool, format_date: int) -> bytes:
    """historicalDataUpdate (90): note ib_async's order (open, close, high, low, wap, volume)."""
    return encode_fields([
        90, req_id, bar.count, hist_date(bar.start, daily, format_date), bar.open, bar.close,
        bar.high, bar.low, bar.wap, bar.volume,
    ])  # fmt: skip


def head_timestamp(req_id: int, stamp: str) -> bytes:
    return encode_fields([88, req_id, stamp])


def historical_data(
    req_id: int, start: str, end: str, bars: list[HistBar], daily: bool, format_date: int
) -> bytes:
    fields: list[object] = [17, req_id, start, end, len(bars)]
    for b in bars:
        fields += [
            hist_date(b.start, daily, format_date), b.open, b.high, b.low, b.close,
            b.volume, b.wap, b.count,
        ]  # fmt: skip
    return encode_fields(fields)
