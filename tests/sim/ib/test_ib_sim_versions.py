"""Server versions 157..178: the handshake negotiates the highest common version, every message
is sent in that version's layout (read by the real ib_async decoder at each version), and a
client whose range does not meet 157..178 is refused with a 503 every client version reads."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock
from ibsim_support import IBClient, stock, until, watched

from ml4t_live.sim.ib.framing import (
    MIN_SERVER_VERSION,
    SERVER_VERSION,
    ClientHello,
    VersionRefused,
    decode_payload,
    encode_fields,
    negotiate_version,
)
from ml4t_live.sim.ib.layouts import downgrade

VERSIONS = list(range(MIN_SERVER_VERSION, SERVER_VERSION + 1))


def test_negotiation_picks_the_highest_common_version():
    assert negotiate_version(ClientHello(157, 176, "")) == 176  # ib_insync 0.9.86
    assert negotiate_version(ClientHello(100, 157, "")) == 157  # ibapi 9.81
    assert negotiate_version(ClientHello(100, 225, "")) == 178  # IB's client 10.46
    assert negotiate_version(ClientHello(157, 178, ""), highest=165) == 165
    with pytest.raises(VersionRefused, match="v100..151"):
        negotiate_version(ClientHello(100, 151, ""))


def _fields(frame: bytes) -> list[str]:
    return decode_payload(frame[4:])


def test_error_layout_below_166_has_five_fields():
    frame = encode_fields([4, 2, 7, 201, "Order rejected", ""])
    assert _fields(downgrade(frame, 165)) == ["4", "2", "7", "201", "Order rejected"]
    assert _fields(downgrade(frame, 166)) == ["4", "2", "7", "201", "Order rejected", ""]


def test_exec_details_loses_pending_price_revision_below_178():
    frame = encode_fields([11, -1, 5, *range(29), 0])
    assert len(_fields(downgrade(frame, 177))) == len(_fields(frame)) - 1
    assert downgrade(frame, 178) == frame


def _refusal(host: str, port: int, offer: bytes) -> list[list[str]]:
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"API\0" + struct.pack(">I", len(offer)) + offer)
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break  # the gateway closed the socket after its answer
            data += chunk
    frames = []
    while data:
        (length,) = struct.unpack(">I", data[:4])
        frames.append(decode_payload(data[4 : 4 + length]))
        data = data[4 + length :]
    return frames


def test_a_client_below_157_is_refused_in_its_own_layout(gateway):
    hello, error = _refusal("127.0.0.1", gateway.port, b"v100..151")
    # a handshake reply at the client's own version (old clients decode nothing before one),
    # then the 5-field error ibapi 9.x reads at that version
    assert hello[0] == "151" and len(hello) == 2
    assert error[:4] == ["4", "2", "-1", "503"] and len(error) == 5
    assert "v100..151" in error[4] and "157..178" in error[4]
    assert gateway.refusals and "v100..151" in gateway.refusals[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_ib_async_trades_at_every_server_version(gateway_factory, ib_errors, version):
    """Handshake, contract details, a market fill with its commission, a resting limit order
    cancelled (202), an error, completed orders: at server version ``version``."""
    ib_errors.expect(r"Error 202, reqId \d+: Order Canceled")
    ib_errors.expect(r"Error 200, reqId \d+: No security definition.*NOPE")
    gw = gateway_factory(commission="ib-fixed")
    client = IBClient(gw.port, 1)
    try:

        async def connect() -> IB:
            client.ib = watched(IB())
            client.ib.client.MaxClientVersion = version  # an older client's offer
            await client.ib.connectAsync("127.0.0.1", gw.port, clientId=1, timeout=5)
            return client.ib

        client.thread.call(connect(), 15)

        async def scenario(ib: IB):
            assert ib.client.serverVersion() == version
            aapl = await stock(ib, "AAPL")
            details = await asyncio.wait_for(ib.reqContractDetailsAsync(aapl), 5)
            await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)  # bar 1 opens
            buy = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="v-buy"))
            rest = ib.placeOrder(aapl, LimitOrder("BUY", 5, 50.0, orderRef="v-rest"))
            await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)  # bar 2 opens: the buy fills
            await until(lambda: buy.isDone() and buy.fills and buy.fills[0].commissionReport.execId,
                        what="the market buy filled with its commission report")  # fmt: skip
            ib.cancelOrder(rest.order)
            await until(rest.isDone, what="the resting limit order cancelled")
            unknown = ib.reqContractDetailsAsync(Stock("NOPE", "SMART", "USD"))
            assert await asyncio.wait_for(unknown, 5) == []
            done = await asyncio.wait_for(ib.reqCompletedOrdersAsync(apiOnly=True), 5)
            return details, buy, rest, done

        details, buy, rest, done = client.run(scenario)
    finally:
        client.close()
    assert details[0].contract.conId == 265598 and details[0].longName == "APPLE INC"
    assert details[0].minTick == 0.01
    assert buy.orderStatus.status == "Filled" and buy.orderStatus.filled == 10
    fill = buy.fills[0]
    assert fill.execution.price == 100.5 and fill.execution.orderRef == "v-buy"
    assert fill.commissionReport.commission == pytest.approx(1.00)  # 10 x 0.005 < the 1.00 minimum
    assert rest.orderStatus.status == "Cancelled"
    assert {(t.order.permId, t.orderStatus.status) for t in done} == {
        (buy.order.permId, "Filled"), (rest.order.permId, "Cancelled"),
    }  # fmt: skip


def test_clients_at_different_versions_share_one_gateway(gateway, ib_errors):
    """The version is per connection: a v160 and a v178 client on one gateway each negotiate
    their own and trade (the exact layouts are pinned by the unit tests above and by IB's
    strict ibapi 9.81 decoder in test_ib_sim_other_clients.py)."""
    ib_errors.expect(r"Error 200, reqId \d+: No security definition")
    clients = {v: IBClient(gateway.port, cid) for cid, v in ((31, 160), (32, 178))}
    try:
        for version, client in clients.items():

            async def connect(client=client, version=version) -> IB:
                client.ib = watched(IB())
                client.ib.client.MaxClientVersion = version
                await client.ib.connectAsync("127.0.0.1", gateway.port, clientId=client.client_id, timeout=5)
                return client.ib

            client.thread.call(connect(), 15)

        async def place(ib: IB):
            aapl = await stock(ib, "AAPL")
            missing = await asyncio.wait_for(ib.reqContractDetailsAsync(Stock("NOPE", "SMART", "USD")), 5)
            return ib.client.serverVersion(), ib.placeOrder(aapl, MarketOrder("BUY", 3)), missing

        placed = {v: c.run(place) for v, c in clients.items()}
        clients[178].run(lambda ib: asyncio.wait_for(ib.reqCurrentTimeAsync(), 5))  # bar 1: fills

        async def filled(ib: IB, trade=None):
            await until(lambda: trade.isDone() and bool(trade.fills), what="the fill")
            return trade.fills[0].execution.price

        prices = {v: c.run(lambda ib, t=placed[v][1]: filled(ib, t)) for v, c in clients.items()}
    finally:
        for c in clients.values():
            c.close()
    assert {v: p[0] for v, p in placed.items()} == {160: 160, 178: 178}
    assert all(p[2] == [] for p in placed.values())
    assert prices == {160: 100.0, 178: 100.0}  # placed before the first bar: its open
