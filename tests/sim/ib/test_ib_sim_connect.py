"""Connecting real ib_async 2.1 to the simulated gateway: handshake, accounts, contracts."""

from __future__ import annotations

import asyncio
import struct

import pytest
from ib_async import Stock
from ibsim_support import advance, stock, watched

from ml4t_live.bridge import LoopThread
from ml4t_live.sim.ib import SERVER_VERSION
from ml4t_live.sim.ib.framing import FrameBuffer, encode_raw


def test_connect_reports_paper_account_and_next_valid_id(client, gateway):
    async def scenario(ib):
        return (ib.managedAccounts(), ib.client.serverVersion(), ib.client.getReqId(), ib.isConnected())

    accounts, version, next_id, connected = client.run(scenario)
    assert accounts == ["DU1234567"]
    assert version == SERVER_VERSION == 178
    assert next_id >= 1 and connected
    assert gateway.connected_clients == [1]


def test_live_style_account_is_reported_as_configured(gateway_factory, client_factory):
    gw = gateway_factory(account="U1234567")
    client = client_factory(7, port=gw.port)
    assert client.run(lambda ib: _value(ib.managedAccounts())) == ["U1234567"]


async def _value(x):
    return x


def test_farm_status_notices_arrive_on_connect(client_factory):
    client = client_factory(2, connect=False)
    seen: list[int] = []

    async def connect_and_collect(_):
        from ib_async import IB

        ib = watched(IB())
        ib.errorEvent += lambda req_id, code, msg, contract: seen.append(code)
        client.ib = ib
        await ib.connectAsync("127.0.0.1", client.port, clientId=2, timeout=5)

    client.thread.call(connect_and_collect(None), 15)
    assert {2104, 2106, 2158} <= set(seen)


def _raw_exchange(port: int, version_range: bytes) -> tuple[list[list[str]], bool]:
    """Speak the handshake by hand; return the frames received and whether the peer closed."""
    thread = LoopThread("ibtest", "raw").start()

    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"API\0" + encode_raw(version_range))
        data = await asyncio.wait_for(reader.read(), 5)  # until EOF (the server closes)
        writer.close()
        return data

    try:
        data = thread.call(go(), 10)
    finally:
        thread.close()
    return FrameBuffer().feed(data), True


def test_client_outside_the_version_range_is_refused_clearly(gateway):
    frames, closed = _raw_exchange(gateway.port, b"v100..150")
    assert closed
    # a handshake reply at the client's own version, then the 5-field error 503 (see layouts.py)
    assert [len(f) for f in frames] == [2, 5] and frames[0][0] == "150"
    assert frames[1][:4] == ["4", "2", "-1", "503"]
    assert "v100..150" in frames[1][4] and "178" in frames[1][4]
    assert gateway.refusals and "v100..150" in gateway.refusals[0]


def test_version_inside_the_range_is_negotiated_to_178(gateway):
    thread = LoopThread("ibtest", "raw2").start()

    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(b"API\0" + encode_raw(b"v100..200 +PACEAPI"))
        header = await asyncio.wait_for(reader.readexactly(4), 5)
        payload = await asyncio.wait_for(reader.readexactly(struct.unpack(">I", header)[0]), 5)
        writer.close()
        return payload

    try:
        payload = thread.call(go(), 10)
    finally:
        thread.close()
    fields = payload.split(b"\0")[:-1]
    assert len(fields) == 2 and fields[0] == b"178"


def test_duplicate_client_id_is_refused_with_326(client, client_factory, ib_errors):
    ib_errors.expect(r"Error 326|already in use|API connection failed|Peer closed connection")
    second = client_factory(1, connect=False)
    with pytest.raises(TimeoutError):
        second.connect(timeout=1.0)


def test_qualify_contracts_stable_con_ids_and_unknown_symbol(client, gateway, ib_errors):
    ib_errors.expect(r"Error 200, reqId \d+: No security definition")

    async def scenario(ib):
        a1 = await stock(ib, "AAPL")
        m = await stock(ib, "MSFT")
        nasdaq = await ib.qualifyContractsAsync(Stock("AAPL", "NASDAQ", "USD"))
        unknown = await ib.qualifyContractsAsync(Stock("ZZZZ", "SMART", "USD"))
        details = await ib.reqContractDetailsAsync(Stock("AAPL", "SMART", "USD"))
        return a1, m, nasdaq, unknown, details

    a1, m, nasdaq, unknown, details = client.run(scenario)
    assert (a1.conId, a1.exchange, a1.primaryExchange, a1.currency) == (265598, "SMART", "NASDAQ", "USD")
    assert m.conId == 272093
    assert nasdaq[0].conId == 265598 and nasdaq[0].exchange == "NASDAQ"
    assert unknown == [None]
    assert details[0].longName == "APPLE INC" and "TRAIL" in details[0].orderTypes


def test_current_time_is_virtual_and_account_views_answer(client):
    async def scenario(ib):
        t0 = await ib.reqCurrentTimeAsync()
        summary = await asyncio.wait_for(ib.accountSummaryAsync(), 5)
        values = {v.tag: v.value for v in ib.accountValues()}
        positions = await asyncio.wait_for(ib.reqPositionsAsync(), 5)
        return t0, {v.tag: v.value for v in summary}, values, positions

    t0, summary, values, positions = client.run(scenario)
    assert t0.isoformat() == "2024-01-03T14:30:00+00:00"
    assert float(summary["NetLiquidation"]) == float(values["NetLiquidation"]) > 0
    assert values["AccountType"] == "INDIVIDUAL"
    assert positions == []


def test_step_mode_advances_only_on_req_current_time(client, gateway):
    async def scenario(ib):
        contract = await stock(ib, "AAPL")
        rt = ib.reqRealTimeBars(contract, 5, "TRADES", False)
        await advance(ib, rt)  # first bar
        n_after_first = len(rt)
        # without a reqCurrentTime nothing more arrives: other requests answered in order
        # since (a full round trip each) brought no bar
        for _ in range(3):
            await asyncio.wait_for(ib.reqPositionsAsync(), 5)
        n_idle = len(rt)
        await advance(ib, rt)
        return n_after_first, n_idle, len(rt), (await ib.reqCurrentTimeAsync())

    first, idle, second, now = client.run(scenario)
    assert first == 12 and idle == 12 and second == 24
    assert now.isoformat() == "2024-01-03T14:32:00+00:00"
