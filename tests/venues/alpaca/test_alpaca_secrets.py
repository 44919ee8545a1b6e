"""API secrets never appear in a log line, at any level, from us or from the libraries under us.

loguru is captured at TRACE and the standard ``logging`` tree (alpaca-py, websockets, urllib3,
aiohttp) at DEBUG while the adapter connects, trades, loses both streams, reconnects, fails
authentication and shuts down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from alpaca_helpers import collect, config_for, inject, minute_bars, of
from loguru import logger
from ml4t.backtest import OrderSide

from ml4t_live.errors import ConnectionFailed
from ml4t_live.events import BarClosed, FeedReconnected, OrderFilled
from ml4t_live.protocols import OrderRequest
from ml4t_live.sim.alpaca import SimulatedAlpaca
from ml4t_live.venues.alpaca.config import AlpacaConfig
from ml4t_live.venues.alpaca.feed import AlpacaFeed
from ml4t_live.venues.alpaca.gateway import AlpacaGateway

SECRET = (
    "sEcReT" + "x7Q2" * 8 + "tail"
)  # 44 characters, nothing else in the run looks like it
KEY_ID = "PKQZXJWVKQZXJWVQKZXJ"  # no 6-character piece of it occurs in ordinary log text


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")
        if record.exc_info and record.exc_info[1] is not None:
            self.lines.append(repr(record.exc_info[1]))


@pytest.fixture
def captured() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(
        lambda message: lines.append(str(message)),
        level="TRACE",
        format="{message} | {extra} | {exception}",
    )
    handler = _Lines(lines)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        logger.remove(sink)


def test_the_secret_key_never_reaches_a_log_line(captured):
    sim = SimulatedAlpaca(
        minute_bars(10, {"AAPL": 100.0}),
        key_id=KEY_ID,
        secret_key=SECRET,
    )
    sim.start()
    try:
        config = config_for(sim)
        assert SECRET not in repr(config) and SECRET not in str(config)
        gw = AlpacaGateway(config, is_ours=lambda cid: cid.startswith("t-"))
        gw.connect()
        feed = AlpacaFeed(config, ["AAPL"])
        try:
            feed.start()
            gw.place(OrderRequest("t-1", "AAPL", OrderSide.BUY, 5))
            gw.end_of_bar(None)
            collect(gw.events, lambda s: bool(of(OrderFilled, s, "t-1")))
            collect(
                feed.session.events, lambda s: any(isinstance(e, BarClosed) for e in s)
            )
            inject(sim, "drop_trade_stream")
            inject(sim, "drop_data_stream")
            gw.end_of_bar(None)
            collect(
                feed.session.events,
                lambda s: any(isinstance(e, FeedReconnected) for e in s),
            )
            collect(
                gw.events,
                lambda s: any(type(e).__name__ == "BrokerReconnected" for e in s),
            )
            inject(sim, "submit_error", status=500)
            gw.place(OrderRequest("t-2", "AAPL", OrderSide.BUY, 5))
            for n, kind in enumerate(("truncated_body", "non_json_body", "connection_reset")):
                inject(sim, kind)  # garbled or missing answers: settled by client order id
                gw.place(OrderRequest(f"t-{kind}", "AAPL", OrderSide.BUY, 1 + n))
            gw.end_of_bar(None)
            collect(gw.events, lambda s: len(of(OrderFilled, s)) == 4)
        finally:
            feed.close()
            gw.close()
        wrong = AlpacaGateway(
            AlpacaConfig(
                key_id=sim.key_id, secret_key=SECRET[::-1], base_url=sim.base_url
            )
        )
        with pytest.raises(ConnectionFailed) as refused:
            wrong.connect()
        wrong.close()
        assert SECRET[::-1] not in str(refused.value)
    finally:
        sim.close()
    assert len(captured) > 20  # the run did log, at every level we capture
    assert any(
        "websockets" in line and "authenticate" in line for line in captured
    )  # frames were logged
    pieces = {s[i : i + 6] for s in (SECRET, SECRET[::-1]) for i in range(len(s) - 5)}
    leaks = [line for line in captured if any(piece in line for piece in pieces)]
    assert leaks == []
    # the key id: nowhere but in the simulated venue's own banner (it hands out its keys)
    ours = [line for line in captured if "'component': 'sim." not in line]
    key_pieces = {KEY_ID[i : i + 6] for i in range(len(KEY_ID) - 5)}
    assert [line for line in ours if any(piece in line for piece in key_pieces)] == []
