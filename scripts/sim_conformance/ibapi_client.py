"""Conformance client for `ml4t-live sim ib` written with IB's official client (PyPI
``nautilus-ibapi`` 10.46.1 = IB's ``ibapi``), run by scripts/sim_conformance_ib.py in its own
venv. Prints one JSON object: {"checks": [[name, ok, detail], ...]}.

Usage: python ibapi_client.py --port P --max-version V --symbol S
(the client offers server versions 100..V, as an older ibapi release would). The same script
runs IB's older ``ibapi`` 9.81 (offers 100..157), whose callbacks differ slightly.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections import defaultdict

import ibapi.client as ibclient
from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.order import Order
from ibapi.wrapper import EWrapper

try:  # 10.x: cancelOrder(orderId, OrderCancel()); 9.81: cancelOrder(orderId)
    from ibapi.order_cancel import OrderCancel
except ImportError:
    OrderCancel = None

TIMEOUT = 5.0


class App(EWrapper, EClient):
    """Every callback lands in ``events[name]`` and wakes ``changed``."""

    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.events: dict[str, list[tuple]] = defaultdict(list)
        self.changed = threading.Condition()

    def _note(self, name: str, *args: object) -> None:
        with self.changed:
            self.events[name].append(args)
            self.changed.notify_all()

    def wait(self, pred, timeout: float = TIMEOUT) -> bool:
        with self.changed:
            return self.changed.wait_for(pred, timeout)

    def codes(self) -> set[int]:
        return {e[1] for e in self.events["error"]}

    # callbacks ------------------------------------------------------------------------
    def error(self, reqId, *args):
        # 10.46: (errorTime, errorCode, errorString, advancedOrderRejectJson); 9.81: (code, text)
        code, text = (args[1], args[2]) if len(args) >= 3 else (args[0], args[1])
        self._note("error", reqId, int(code), text)

    def nextValidId(self, orderId):
        self._note("nextValidId", orderId)

    def managedAccounts(self, accountsList):
        self._note("managedAccounts", accountsList)

    def contractDetails(self, reqId, contractDetails):
        self._note("contractDetails", reqId, contractDetails)

    def contractDetailsEnd(self, reqId):
        self._note("contractDetailsEnd", reqId)

    def historicalData(self, reqId, bar):
        self._note("historicalData", reqId, bar)

    def historicalDataEnd(self, reqId, start, end):
        self._note("historicalDataEnd", reqId)

    def currentTime(self, time):
        self._note("currentTime", time)

    def openOrder(self, orderId, contract, order, orderState):
        self._note("openOrder", orderId, orderState.status)

    def orderStatus(self, orderId, status, filled, remaining, *rest):
        self._note("orderStatus", orderId, status, float(filled))

    def execDetails(self, reqId, contract, execution):
        self._note("execDetails", execution.orderId, execution.execId, execution.price)

    def commissionAndFeesReport(self, commissionAndFeesReport):  # 10.46
        self._note("commission", commissionAndFeesReport.execId, commissionAndFeesReport.commissionAndFees)

    def commissionReport(self, commissionReport):  # 9.81
        self._note("commission", commissionReport.execId, commissionReport.commission)

    def completedOrder(self, contract, order, orderState):
        self._note("completedOrder", order.permId, orderState.status)

    def completedOrdersEnd(self):
        self._note("completedOrdersEnd")

    def symbolSamples(self, reqId, contractDescriptions):
        self._note("symbolSamples", reqId, [d.contract.symbol for d in contractDescriptions])

    def familyCodes(self, familyCodes):
        self._note("familyCodes", [(f.accountID, f.familyCodeStr) for f in familyCodes])

    def userInfo(self, reqId, whiteBrandingId):
        self._note("userInfo", reqId)

    def pnl(self, reqId, dailyPnL, unrealizedPnL, realizedPnL):
        self._note("pnl", reqId, dailyPnL)

    def connectionClosed(self):
        self._note("connectionClosed")

    def tickByTickAllLast(self, reqId, tickType, time, price, size, *rest):
        self._note("tickByTick", reqId, price)

    def historicalTicksLast(self, reqId, ticks, done):
        self._note("historicalTicksLast", reqId, len(ticks), done)

    def securityDefinitionOptionParameterEnd(self, reqId):
        self._note("secDefEnd", reqId)


def stock(symbol: str, exchange: str = "SMART") -> Contract:
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = symbol, "STK", exchange, "USD"
    return c


def order(action: str, qty: float, kind: str, lmt: float | None = None, aux: float | None = None) -> Order:
    o = Order()
    o.action, o.totalQuantity, o.orderType = action, qty, kind
    if lmt is not None:
        o.lmtPrice = lmt
    if aux is not None:
        o.auxPrice = aux
    return o


def run(a, checks: list[list[object]]) -> None:
    def check(name: str, ok: bool, detail: object = "") -> None:
        checks.append([name, bool(ok), str(detail)])

    ibclient.MAX_CLIENT_VER = a.max_version  # what an older ibapi release offers
    app = App()
    app.connect("127.0.0.1", a.port, clientId=9)
    reader = threading.Thread(target=app.run, name="ibapi-reader", daemon=True)
    reader.start()
    ev = app.events
    if a.max_version < 157:  # below the simulator's versions: a refusal the client can read
        ok = app.wait(lambda: 503 in app.codes())
        check("refused with error 503, read by the client", ok, app.events["error"][:1])
        check("the socket closed after the refusal", app.wait(lambda: ev["connectionClosed"]))
        app.disconnect()
        reader.join(TIMEOUT)
        return
    try:
        ok = app.wait(lambda: ev["nextValidId"] and ev["managedAccounts"])
        check("handshake at the offered version", ok and app.serverVersion() == a.max_version, app.serverVersion())
        next_id = ev["nextValidId"][0][0] if ev["nextValidId"] else 1

        def step() -> bool:
            n = len(ev["currentTime"])
            app.reqCurrentTime()
            return app.wait(lambda: len(ev["currentTime"]) > n)

        app.reqContractDetails(1001, stock(a.symbol))
        ok = app.wait(lambda: ev["contractDetailsEnd"])
        details = ev["contractDetails"][0][1] if ev["contractDetails"] else None
        check("contract details", ok and details is not None and details.contract.conId > 0,
              details.contract.conId if details else None)  # fmt: skip
        app.reqContractDetails(1002, stock("NOPE"))
        check("unknown symbol: error 200", app.wait(lambda: 200 in app.codes()))
        app.reqHistoricalData(1003, stock(a.symbol), "", "1 D", "1 min", "TRADES", 1, 2, False, [])
        ok = app.wait(lambda: ev["historicalDataEnd"])
        check("history before the replay: 2 bars", ok and len(ev["historicalData"]) == 2, len(ev["historicalData"]))

        check("first bar released", step())
        kinds = {
            "MKT": order("BUY", 10, "MKT"),
            "LMT": order("BUY", 10, "LMT", lmt=1.0),
            "STP": order("SELL", 5, "STP", aux=1.0),
            "STP LMT": order("BUY", 1, "STP LMT", lmt=1000.0, aux=999.0),
            "TRAIL": order("SELL", 5, "TRAIL", aux=50.0),
            "MOC": order("BUY", 5, "MOC"),
        }
        ids = {}
        for kind, o in kinds.items():
            ids[kind] = next_id
            app.placeOrder(next_id, stock(a.symbol), o)
            next_id += 1

        def status(kind: str) -> str:
            seen = [s for i, s, _ in ev["orderStatus"] if i == ids[kind]]
            return seen[-1] if seen else ""

        ok = app.wait(lambda: all(status(k) in ("Submitted", "PreSubmitted", "Filled") for k in kinds))
        check("every order type acknowledged", ok, {k: status(k) for k in kinds})
        step()  # the next bar: MKT fills at its open; MOC filled at the previous close
        ok = app.wait(lambda: status("MKT") == "Filled" and ev["commission"])
        execs = [e for e in ev["execDetails"] if e[0] == ids["MKT"]]
        fees = {x: c for x, c in ev["commission"]}
        check("MKT filled with execDetails and its commission report", ok and execs and execs[0][1] in fees)
        if execs and execs[0][1] in fees:
            check("ib-fixed commission on 10 shares is the 1.00 minimum", abs(fees[execs[0][1]] - 1.0) < 1e-9, fees[execs[0][1]])
        step()
        check("MOC filled", app.wait(lambda: status("MOC") == "Filled"), status("MOC"))
        for kind in ("LMT", "STP", "STP LMT", "TRAIL"):
            if OrderCancel is None:
                app.cancelOrder(ids[kind])
            else:
                app.cancelOrder(ids[kind], OrderCancel())
        ok = app.wait(lambda: all(status(k) == "Cancelled" for k in ("LMT", "STP", "STP LMT", "TRAIL")))
        check("resting orders cancelled (202)", ok and 202 in app.codes())
        app.placeOrder(next_id, stock(a.symbol), order("BUY", 10_000_000, "LMT", lmt=100.0))
        check("201 at submission beyond the margin limit", app.wait(lambda: any(e[0] == next_id and e[1] == 201 for e in ev["error"])))
        app.placeOrder(next_id + 1, stock(a.symbol, exchange=""), order("BUY", 1, "MKT"))
        check("321 for an order without exchange", app.wait(lambda: 321 in app.codes()))
        app.reqCompletedOrders(True)
        ok = app.wait(lambda: ev["completedOrdersEnd"])
        check("completed orders listed", ok and len(ev["completedOrder"]) >= 6, len(ev["completedOrder"]))
        app.reqMatchingSymbols(1004, a.symbol[:2])
        ok = app.wait(lambda: ev["symbolSamples"])
        check("reqMatchingSymbols answered with data", ok and a.symbol in ev["symbolSamples"][0][1])
        app.reqFamilyCodes()
        check("reqFamilyCodes answered", app.wait(lambda: ev["familyCodes"]))
        app.reqSecDefOptParams(1005, a.symbol, "", "STK", details.contract.conId if details else 0)
        check("reqSecDefOptParams ends", app.wait(lambda: ev["secDefEnd"]))
        app.reqPnL(1006, "DU1234567", "")
        check("reqPnL answered", app.wait(lambda: ev["pnl"]))
        if a.max_version >= 167:
            app.reqUserInfo(1007)
            check("reqUserInfo answered", app.wait(lambda: ev["userInfo"]))
        app.reqMktDepth(1008, stock(a.symbol), 5, False, [])
        check("reqMktDepth 10092", app.wait(lambda: 10092 in app.codes()))
        app.reqTickByTickData(1009, stock(a.symbol), "Last", 0, False)
        step()  # the next bar's 5-second bars carry one tick each
        check("reqTickByTickData: ticks derived from 5-second bars", app.wait(lambda: ev["tickByTick"]))
        app.reqHistoricalTicks(1010, stock(a.symbol), "20240304 14:30:00 UTC", "", 10, "TRADES", 1, True, [])
        ok = app.wait(lambda: ev["historicalTicksLast"])
        check("reqHistoricalTicks: 10 trades from a time", ok and ev["historicalTicksLast"][0][1] == 10,
              ev["historicalTicksLast"][:1])  # fmt: skip
    finally:
        app.disconnect()
        reader.join(TIMEOUT)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-version", type=int, required=True)
    p.add_argument("--symbol", default="AAPL")
    a = p.parse_args()
    checks: list[list[object]] = []
    try:
        run(a, checks)
    except Exception as exc:  # reported as a failed check; the exit code says it failed
        checks.append(["completed without exception", False, f"{type(exc).__name__}: {exc}"])
    print(json.dumps({"client": "ibapi", "version": a.max_version, "checks": checks}))
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
