"""Conformance client for `ml4t-live sim ib`, written against the ib_insync API (ib_async keeps
the same names): run by scripts/sim_conformance_ib.py with ib_insync 0.9.86 (its own venv) or
ib_async (the project's venv). Prints one JSON object: {"checks": [[name, ok, detail], ...]}.

Usage: python insync_style_client.py --lib ib_insync|ib_async --port P --max-version V --symbol S
The simulator must run in step mode (bars advance on reqCurrentTime) with --history 2 and
--commission ib-fixed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--lib", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-version", type=int, required=True)
    p.add_argument("--symbol", default="AAPL")
    p.add_argument("--client-id", type=int, default=7)
    a = p.parse_args()
    lib = importlib.import_module(a.lib)
    checks: list[list[object]] = []
    try:
        asyncio.run(asyncio.wait_for(_run(lib, a, checks), 60))
    except Exception as exc:  # the report names what broke; the exit code says it failed
        checks.append(["completed without exception", False, f"{type(exc).__name__}: {exc}"])
    print(json.dumps({"client": a.lib, "version": a.max_version, "checks": checks}))
    return 0 if all(ok for _, ok, _ in checks) else 1


async def _run(lib, a, checks: list[list[object]]) -> None:
    def check(name: str, ok: bool, detail: object = "") -> None:
        checks.append([name, bool(ok), str(detail)])

    ib = lib.IB()
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, *rest: errors.append((req_id, code, text))
    ib.client.MaxClientVersion = a.max_version
    await ib.connectAsync("127.0.0.1", a.port, clientId=a.client_id, timeout=10)
    check("handshake at the offered version", ib.client.serverVersion() == a.max_version,
          ib.client.serverVersion())  # fmt: skip
    check("managed accounts", ib.managedAccounts() == ["DU1234567"], ib.managedAccounts())

    async def until(pred, timeout: float = 5.0) -> bool:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not pred():
            if loop.time() > end:
                return False
            try:
                await asyncio.wait_for(ib.updateEvent, max(0.01, end - loop.time()))
            except TimeoutError:
                return pred()
        return True

    async def step() -> None:
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)

    [c] = await asyncio.wait_for(ib.qualifyContractsAsync(lib.Stock(a.symbol, "SMART", "USD")), 5)
    check("contract details", c.conId > 0, c.conId)
    none = await asyncio.wait_for(ib.reqContractDetailsAsync(lib.Stock("NOPE", "SMART", "USD")), 5)
    check("unknown symbol: error 200", none == [] and any(e[1] == 200 for e in errors))
    hist = await asyncio.wait_for(
        ib.reqHistoricalDataAsync(c, "", "1 D", "1 min", "TRADES", True, 2), 10
    )
    check("history before the replay: 2 bars", len(hist) == 2, len(hist))

    await step()  # the first replayed bar opens
    orders = {
        "MKT": lib.MarketOrder("BUY", 10),
        "LMT": lib.LimitOrder("BUY", 10, 1.0),
        "STP": lib.StopOrder("SELL", 5, 1.0),
        "STP LMT": lib.StopLimitOrder("BUY", 1, 1000.0, 999.0),
        "TRAIL": lib.Order(action="SELL", orderType="TRAIL", totalQuantity=5, auxPrice=50.0),
        "MOC": lib.Order(action="BUY", orderType="MOC", totalQuantity=5),
    }
    trades = {k: ib.placeOrder(c, o) for k, o in orders.items()}
    working = ("Submitted", "PreSubmitted")
    ok = await until(lambda: all(t.orderStatus.status in working for t in trades.values()))
    check("every order type acknowledged (Submitted / PreSubmitted)", ok, {k: t.orderStatus.status for k, t in trades.items()})
    await step()  # next bar: MKT fills at its open
    ok = await until(lambda: trades["MKT"].isDone() and bool(trades["MKT"].fills)
                     and trades["MKT"].fills[0].commissionReport.execId != "")  # fmt: skip
    fill = trades["MKT"].fills[0] if trades["MKT"].fills else None
    check("MKT filled with a commission report", ok, fill)
    if fill is not None:
        check("ib-fixed commission on 10 shares is the 1.00 minimum",
              abs(fill.commissionReport.commission - 1.0) < 1e-9, fill.commissionReport.commission)  # fmt: skip
    await step()
    check("MOC filled at the bar's close", await until(trades["MOC"].isDone),
          trades["MOC"].orderStatus.status)  # fmt: skip
    for kind in ("LMT", "STP", "STP LMT", "TRAIL"):
        ib.cancelOrder(trades[kind].order)
    ok = await until(lambda: all(trades[k].orderStatus.status == "Cancelled"
                                 for k in ("LMT", "STP", "STP LMT", "TRAIL")))  # fmt: skip
    check("resting orders cancelled (202)", ok and sum(e[1] == 202 for e in errors) >= 4)
    big = ib.placeOrder(c, lib.LimitOrder("BUY", 10_000_000, 100.0))
    ok = await until(lambda: any(e[1] == 201 and e[0] == big.order.orderId for e in errors))
    check("201 at submission beyond the margin limit", ok, big.orderStatus.status)
    ib.placeOrder(lib.Stock(a.symbol), lib.MarketOrder("BUY", 1))
    check("321 for an order without exchange", await until(lambda: any(e[1] == 321 for e in errors)))
    done = await asyncio.wait_for(ib.reqCompletedOrdersAsync(apiOnly=True), 5)
    check("completed orders listed", len(done) >= 6, len(done))
    found = await asyncio.wait_for(ib.reqMatchingSymbolsAsync(a.symbol[:2]), 5)
    check("reqMatchingSymbols answered with data", any(d.contract.symbol == a.symbol for d in found))
    params = await asyncio.wait_for(ib.reqSecDefOptParamsAsync(a.symbol, "", "STK", c.conId), 5)
    check("reqSecDefOptParams ends (no chains)", params == [])
    ib.reqMktDepth(c, 5)
    check("reqMktDepth 10092", await until(lambda: 10092 in {e[1] for e in errors}))
    live: list = []
    ib.reqTickByTickData(c, "AllLast").updateEvent += lambda t: live.extend(t.tickByTicks)
    await step()  # the next bar's 5-second bars carry one tick each
    ok = await until(lambda: len(live) >= 1)
    check("reqTickByTickData: ticks derived from 5-second bars", ok, len(live))
    ticks = await asyncio.wait_for(ib.reqHistoricalTicksAsync(c, "", hist[-1].date, 10, "TRADES", True), 5)
    check("reqHistoricalTicks: 10 trades up to a time", len(ticks) == 10, len(ticks))
    pnl = ib.reqPnL("DU1234567")
    check("reqPnL answered", await until(lambda: pnl.dailyPnL == pnl.dailyPnL))  # NaN until then
    ib.disconnect()
    await asyncio.sleep(0)


if __name__ == "__main__":
    sys.exit(main())
