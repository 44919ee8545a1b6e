"""Every request gets an answer (data or an error that names it), history before the replay,
the paced clock starting at the first connection, 201 / 321 at submission, IB commissions."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from ib_async import LimitOrder, MarketOrder, Stock
from ibsim_support import START, make_bars, stock, until

from ml4t_live.errors import ConfigError
from ml4t_live.sim.ib.commissions import commission_model


def test_data_answers_for_requests_without_a_market_to_model(client, ib_errors):
    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
        found = await asyncio.wait_for(ib.reqMatchingSymbolsAsync("AA"), 5)
        chains = await asyncio.wait_for(ib.reqSecDefOptParamsAsync("AAPL", "", "STK", aapl.conId), 5)
        user = await asyncio.wait_for(ib.reqUserInfoAsync(), 5)
        rule = await asyncio.wait_for(ib.reqMarketRuleAsync(26), 5)
        pnl = ib.reqPnL("DU1234567")
        await until(lambda: pnl.unrealizedPnL == pnl.unrealizedPnL and pnl.dailyPnL == 0.0,
                    what="the first pnl message")  # fmt: skip
        return found, chains, user, rule, pnl

    found, chains, user, rule, pnl = client.run(scenario)
    assert [d.contract.symbol for d in found] == ["AAPL"]
    assert found[0].contract.conId == 265598 and found[0].contract.primaryExchange == "NASDAQ"
    assert chains == []  # no option chains in the simulator: the end message alone
    assert user == []  # ib_async ends the request without keeping whiteBrandingId
    assert [(i.lowEdge, i.increment) for i in rule] == [(0.0, 0.01)]
    assert (pnl.dailyPnL, pnl.unrealizedPnL, pnl.realizedPnL) == (0.0, 0.0, 0.0)


def test_market_depth_is_refused_with_ibs_code(client, ib_errors):
    ib_errors.expect(r"Error 10092, reqId \d+")

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        seen: list[tuple[int, int, str]] = []
        ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code, text))
        ib.reqMktDepth(aapl, 5)
        await until(lambda: bool(seen), what="the error answer")
        return seen

    [(_, code, text)] = client.run(scenario)
    assert code == 10092 and "Deep market data" in text


def test_tick_by_tick_and_historical_ticks_come_from_the_5_second_bars(client):
    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        from ib_async import TickByTickAllLast, TickByTickBidAsk

        live: list = []
        quotes: list = []

        def collect(ticker) -> None:  # one Ticker per contract carries both streams
            live.extend(t for t in ticker.tickByTicks if isinstance(t, TickByTickAllLast))
            quotes.extend(t for t in ticker.tickByTicks if isinstance(t, TickByTickBidAsk))

        ib.reqTickByTickData(aapl, "AllLast").updateEvent += collect
        ib.reqTickByTickData(aapl, "BidAsk")
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)  # bar 1: 12 five-second bars
        await until(lambda: len(live) >= 12 and len(quotes) >= 12, what="a tick per 5-second bar")
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)  # bar 1 complete: history has it
        trades = await asyncio.wait_for(
            ib.reqHistoricalTicksAsync(aapl, START, "", 5, "TRADES", True), 5
        )
        mids = await asyncio.wait_for(
            ib.reqHistoricalTicksAsync(aapl, "", START + timedelta(minutes=1), 3, "MIDPOINT", True), 5
        )
        return live[:12], quotes[:12], trades, mids

    live, quotes, trades, mids = client.run(scenario)
    assert len(live) == 12  # (ib_async stamps live ticks with its own receive time)
    assert live[-1].price == 100.5  # the bar's close, at its end
    assert sum(t.size for t in live) == 1000.0  # the recorded volume of bar 1
    assert all(round(q.askPrice - q.bidPrice, 4) == 0.02 for q in quotes)
    assert [t.time for t in trades] == [START + timedelta(seconds=5 * (k + 1)) for k in range(5)]
    assert [t.time for t in mids] == [START + timedelta(seconds=50 + 5 * k) for k in range(3)]
    assert mids[-1].price == 100.5


def test_history_bars_are_served_before_the_replay_starts(gateway_factory, client_factory):
    gw = gateway_factory(make_bars(10), history="4min")  # a duration: the first 4 bars
    client = client_factory(3, port=gw.port)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        bars = await asyncio.wait_for(
            ib.reqHistoricalDataAsync(aapl, "", "1 D", "1 min", "TRADES", True, 2), 10
        )
        rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        await until(lambda: len(rt) >= 12, what="the first replayed bar")
        return bars, rt[0].time

    bars, first_live = client.run(scenario)
    assert [b.date for b in bars] == [START + timedelta(minutes=i) for i in range(4)]
    assert [b.close for b in bars] == [100.5, 101.0, 102.5, 99.0]
    assert first_live == START + timedelta(minutes=4)  # the replay begins after the history


def test_paced_mode_starts_at_the_first_connection_without_subscriptions(gateway_factory, client_factory):
    """A client that only places orders gets its market order filled in speed mode."""
    gw = gateway_factory(make_bars(4), speed=600.0)
    client = client_factory(4, port=gw.port)

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 1, orderRef="paced"))
        await until(trade.isDone, timeout=10, what="the market order filled without a subscription")
        return trade

    trade = client.run(scenario)
    assert trade.orderStatus.status == "Filled"
    assert gw.wait_finished(10)


def test_a_buy_beyond_buying_power_is_rejected_at_submission(client, gateway, ib_errors):
    ib_errors.expect(r"Error 201, reqId \d+: Order rejected - reason:YOUR ORDER IS NOT ACCEPTED")

    async def scenario(ib):
        aapl = await stock(ib, "AAPL")
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 100_000, 100.0, orderRef="too-big"))
        await until(trade.isDone, what="the rejection, before any bar")  # no reqCurrentTime
        return trade

    trade = client.run(scenario)
    assert trade.orderStatus.status == "Inactive"
    [reason] = [e.message for e in trade.log if e.errorCode == 201]
    assert "MUST EXCEED THE INITIAL MARGIN [5000000.00 USD]" in reason  # Reg T: 50% of 10,000,000
    assert gateway.bars_replayed == 0


def test_an_order_without_an_exchange_gets_321_as_from_tws(client, ib_errors):
    ib_errors.expect(r"Error 321")

    async def scenario(ib):
        seen = []
        ib.errorEvent += lambda req_id, code, text, contract: seen.append((code, text))
        ib.placeOrder(Stock("XXX"), MarketOrder("BUY", 1))
        await until(lambda: bool(seen), what="the 321 answer")
        return seen

    [(code, text)] = client.run(scenario)
    assert code == 321 and "Missing order exchange" in text


@pytest.mark.parametrize(
    ("schedule", "shares", "price", "expected"),
    [
        ("ib-fixed", 100, 50.0, 1.00),  # 0.50 raised to the 1.00 minimum
        ("ib-fixed", 1000, 50.0, 5.00),  # 0.005 per share
        ("ib-fixed", 1000, 0.25, 2.50),  # capped at 1% of 250.00
        ("ib-tiered", 100, 50.0, 0.35),
        ("ib-tiered", 1000, 50.0, 3.50),
    ],
)
def test_ib_commission_schedules(schedule, shares, price, expected):
    model = commission_model(schedule)
    assert model is not None
    assert model.calculate("AAPL", shares, price) == pytest.approx(expected)
    assert commission_model("none") is None
    with pytest.raises(ConfigError, match="unknown commission schedule"):
        commission_model("cheap")


def _one_run(gateway_factory, client_factory, client_id: int) -> list[tuple]:
    gw = gateway_factory(make_bars(6), commission="ib-fixed")
    client = client_factory(client_id, port=gw.port)

    async def scenario(ib):
        aapl, msft = await stock(ib, "AAPL"), await stock(ib, "MSFT")
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
        trades = [
            ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="r-1")),
            ib.placeOrder(msft, LimitOrder("BUY", 7, 300.6, orderRef="r-2")),
            ib.placeOrder(aapl, LimitOrder("SELL", 4, 102.0, orderRef="r-3")),
        ]
        for _ in range(4):
            await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
        await until(lambda: all(t.isDone() for t in trades), what="every order done")

    client.run(scenario)
    return [
        (f.order_ref, f.info.symbol, f.side, f.shares, f.price, f.time, f.exec_id, f.commission)
        for f in gw.fills
    ]


def test_the_same_session_twice_gives_the_same_fills(gateway_factory, client_factory):
    """Step mode, one client: the fills (prices, times, exec ids, commissions) repeat exactly."""
    first = _one_run(gateway_factory, client_factory, 21)
    second = _one_run(gateway_factory, client_factory, 22)
    assert len(first) == 3
    assert first == second


def test_a_tick_is_stamped_at_the_end_of_its_5_second_bar():
    from ml4t_live.sim.ib.encoders import HistBar
    from ml4t_live.sim.ib.framing import decode_payload
    from ml4t_live.sim.ib.ticks import tick_by_tick

    sub = HistBar(START, 100.0, 100.2, 99.9, 100.1, 250.0, 100.05, 1)
    fields = decode_payload(tick_by_tick(7, 2, sub, "NASDAQ")[4:])
    assert fields == ["99", "7", "2", str(int(START.timestamp()) + 5), "100.1", "250", "0", "NASDAQ", ""]
