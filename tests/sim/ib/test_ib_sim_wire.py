"""Pure wire-level pieces of the simulated gateway, tested on bytes: framing, the version
handshake, field counts of the strict messages ib_async reads, request decoding, and the exact
5-second split of a recorded bar."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml4t_live.sim.bars import SimBar
from ml4t_live.sim.ib import encoders as enc
from ml4t_live.sim.ib.contracts import ContractBook, default_info, stable_con_id
from ml4t_live.sim.ib.decoders import PlaceOrder, decode_request
from ml4t_live.sim.ib.framing import (
    ClientHello,
    FrameBuffer,
    FramingError,
    VersionRefused,
    decode_payload,
    encode_fields,
    format_field,
    negotiate_version,
    parse_client_hello,
)
from ml4t_live.sim.ib.market_data import aggregate, bar_size_seconds, duration_seconds, split_bar

AAPL = default_info("AAPL")
NOW = datetime(2024, 1, 3, 14, 31, tzinfo=UTC)


def _fields(frame: bytes) -> list[str]:
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    return decode_payload(frame[4:])


def test_fields_are_written_as_ib_async_reads_them():
    assert [format_field(v) for v in (None, True, False, 10, 10.0, 190.25, math.inf, 2**31 - 1)] == [
        "", "1", "0", "10", "10", "190.25", "Infinite", "",
    ]  # fmt: skip
    frame = encode_fields([15, 1, "DU1"])
    assert frame == b"\x00\x00\x00\x0915\x001\x00DU1\x00"


def test_frame_buffer_reassembles_split_chunks():
    data = encode_fields([9, 1, 42]) + encode_fields([49, 1, 1704292200])
    buf = FrameBuffer()
    out = []
    for i in range(len(data)):
        out += buf.feed(data[i : i + 1])
    assert out == [["9", "1", "42"], ["49", "1", "1704292200"]]


def test_version_range_parsing_and_negotiation():
    assert parse_client_hello(b"v157..178") == ClientHello(157, 178, "")
    assert parse_client_hello(b"v157..178 +PACEAPI").options == "+PACEAPI"
    assert negotiate_version(ClientHello(157, 178, "")) == 178
    assert negotiate_version(ClientHello(100, 200, "")) == 178
    with pytest.raises(VersionRefused, match="v179..200"):
        negotiate_version(ClientHello(179, 200, ""))
    with pytest.raises(FramingError):
        parse_client_hello(b"hello")


def _order_view(**kw) -> enc.OrderView:
    base = dict(order_id=4, client_id=1, perm_id=77, info=AAPL, exchange="SMART", action="BUY",
                total_quantity=10.0, order_type="LMT", lmt_price=101.5, aux_price=None, tif="DAY",
                oca_group="", account="DU1", order_ref="ref-9", parent_id=0, outside_rth=False,
                status="Submitted")  # fmt: skip
    base.update(kw)
    return enc.OrderView(**base)


def test_strict_and_long_messages_have_ib_async_field_counts():
    ex = enc.ExecView("e1", 4, 1, 77, AAPL, NOW, "DU1", "BOT", 10, 101.5, 10, 101.5, "ref-9", 1.0)
    counts = {
        "openOrder": len(_fields(enc.open_order(_order_view()))),
        "completedOrder": len(_fields(enc.completed_order(_order_view()))),
        "execDetails": len(_fields(enc.exec_details(-1, ex))),
        "commissionReport": len(_fields(enc.commission_report(ex))),
        "position": len(_fields(enc.position("DU1", AAPL, 10, 101.5))),
        "updatePortfolio": len(_fields(enc.portfolio_value(AAPL, 10, 102, 101.5, 5, 0, "DU1"))),
        "managedAccounts": len(_fields(enc.managed_accounts(["DU1"]))),
        "nextValidId": len(_fields(enc.next_valid_id(1))),
        "error": len(_fields(enc.error(-1, 2104, "ok"))),
    }
    assert counts == {
        "openOrder": 127, "completedOrder": 96, "execDetails": 32, "commissionReport": 8,
        "position": 16, "updatePortfolio": 20, "managedAccounts": 3, "nextValidId": 3, "error": 6,
    }  # fmt: skip


def test_order_ref_is_echoed_in_open_completed_and_exec_messages():
    ex = enc.ExecView("e1", 4, 1, 77, AAPL, NOW, "DU1", "BOT", 10, 101.5, 10, 101.5, "ref-9", 1.0)
    assert _fields(enc.open_order(_order_view()))[23] == "ref-9"
    assert _fields(enc.completed_order(_order_view()))[22] == "ref-9"
    assert _fields(enc.exec_details(-1, ex))[26] == "ref-9"


def _place_order_fields(**over) -> list[str]:
    """A placeOrder field list in the layout ib_async 2.1 writes at v178 (plain stock order)."""
    head = ["3", "12", "265598", "AAPL", "STK", "", "0.0", "", "", "SMART", "", "USD", "", "",
            "", "", "SELL", "10", "STP LMT", "99.0", "99.5", "GTC", "oca1", "DU1", "O", "0",
            "ref-x", "1", "0", "0", "0", "", "0", "0", "0"]  # fmt: skip
    rest = [""] * 7 + [""] * 4 + ["2"] + [""] * 19  # ocaType = 2
    rest += ["0", "", "", "", "", "", ""]  # continuousUpdate .. scalePriceIncrement
    rest += ["", "", "", ""]  # scaleTable, activeStart, activeStop, hedgeType
    rest += ["0", "", "", "0", "0"]  # optOutSmartRouting .. dnc flag
    rest += [""]  # algoStrategy
    rest += ["", "0", "", "0", "0", "0", "0"] + [""] * 30
    fields = head + rest
    for index, value in over.items():
        fields[int(index.removeprefix("i"))] = value
    return fields


def test_place_order_head_and_walk_are_decoded():
    req = decode_request(_place_order_fields())
    assert isinstance(req, PlaceOrder)
    assert (req.order_id, req.contract.symbol, req.contract.con_id, req.action, req.quantity) == (
        12, "AAPL", 265598, "SELL", 10.0)  # fmt: skip
    assert (req.order_type, req.lmt_price, req.aux_price, req.tif) == ("STP LMT", 99.0, 99.5, "GTC")
    assert (req.oca_group, req.order_ref, req.transmit, req.parent_id, req.oca_type) == (
        "oca1", "ref-x", True, 0, 2)  # fmt: skip
    assert req.what_if is False
    assert decode_request(_place_order_fields(i27="0", i28="11")).transmit is False


def test_contract_book_resolves_by_symbol_and_con_id():
    book = ContractBook(["AAPL", "NEWCO"])
    assert book.resolve(0, "AAPL", "STK", "USD", "SMART") == AAPL
    assert book.resolve(265598, "", "", "", "") == AAPL
    assert book.resolve(265598, "AAPL", "OPT", "USD", "SMART") is None
    assert book.resolve(0, "ZZZ", "STK", "USD", "SMART") is None
    assert book.by_symbol("NEWCO").con_id == stable_con_id("NEWCO") == stable_con_id("newco")


def test_bar_sizes_and_durations():
    assert [bar_size_seconds(s) for s in ("5 secs", "1 min", "5 mins", "1 hour", "1 day")] == [
        5, 60, 300, 3600, 86400]  # fmt: skip
    assert [duration_seconds(s) for s in ("3600 S", "1 D", "2 W")] == [3600, 86400, 1209600]


prices = st.floats(min_value=1.0, max_value=5000.0, allow_nan=False).map(lambda x: round(x, 2))


@settings(max_examples=200, deadline=None)
@given(
    o=prices, c=prices, up=st.floats(0, 50).map(lambda x: round(x, 2)),
    down=st.floats(0, 50).map(lambda x: round(x, 2)),
    volume=st.one_of(st.integers(0, 10**9).map(float), st.floats(0, 1e6, allow_nan=False)),
    seconds=st.sampled_from([5, 10, 60, 300]),
)  # fmt: skip
def test_five_second_split_aggregates_exactly(o, c, up, down, volume, seconds):
    h, lo = max(o, c) + up, max(0.01, min(o, c) - down)
    bar = SimBar("AAPL", NOW, o, h, lo, c, volume)
    parts = split_bar(bar, seconds)
    assert len(parts) == seconds // 5
    assert parts[0].open == o and parts[-1].close == c
    assert max(p.high for p in parts) == h and min(p.low for p in parts) == lo
    total = 0.0
    for p in parts:
        total += p.volume  # summed in order, as a client aggregates
        assert p.low <= min(p.open, p.close) <= max(p.open, p.close) <= p.high
    assert total == volume
    assert [int(p.start.timestamp()) for p in parts] == [int(NOW.timestamp()) + 5 * k for k in range(len(parts))]


def test_aggregate_to_larger_bars_by_bucket():
    bars = [SimBar("A", datetime(2024, 1, 3, 14, 30 + i, tzinfo=UTC), 10 + i, 11 + i, 9 + i, 10.5 + i, 100)
            for i in range(4)]  # fmt: skip
    two = aggregate(bars, 60, 120)
    assert [(b.start.minute, b.open, b.high, b.low, b.close, b.volume) for b in two] == [
        (30, 10, 12, 9, 11.5, 200), (32, 12, 14, 11, 13.5, 200)]  # fmt: skip
    day = aggregate(bars, 60, 86400)
    assert len(day) == 1 and day[0].volume == 400
