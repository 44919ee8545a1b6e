"""The strategy every fault scenario runs (``ml4t-live run scripted_strategy.py:Scripted -p plan=...``).

``plan`` is a ``|``-separated list of steps ``<bar>:<action>:<args>`` (bars counted from 1, replayed
bars of a warm restart included, so a restart repeats the same decisions):

* ``3:buy:AAPL:10`` / ``3:sell:AAPL:10``  market order
* ``3:limit:AAPL:10:50``                  limit buy (negative quantity: sell) at 50
* ``3:bracket:AAPL:10:200:50``            market entry, take-profit 200, stop-loss 50
* ``5:cancel:0``                          cancel the strategy's 0-th order
* ``4:reprice:0:149``                     change the 0-th order's limit price to 149
* ``11+:buy:AAPL:1``                      from bar 11 on, at every bar until this step's last
                                          order is not REJECTED (a halted strategy's, a catch-up
                                          bar's): one order that leaves once trading may go on

After every bar it writes what it sees (``view`` path, JSON): each order's status, filled
quantity and rejection reason, and its positions - what "reaches the strategy" means.
"""

from __future__ import annotations

import json
import os

from ml4t.backtest import OrderType, Strategy


class Scripted(Strategy):
    def __init__(self, plan: str = "", view: str = "strategy_view.json") -> None:
        self.plan = plan
        self.view = view
        self.n = 0
        self.orders: list = []
        self.repeated: dict[int, object] = {}  # "<bar>+" steps: their last order

    def on_data(self, timestamp, data, context, broker):
        self.n += 1
        for k, step in enumerate(filter(None, self.plan.split("|"))):
            parts = step.split(":")
            if parts[0].endswith("+"):
                last = self.repeated.get(k, "none yet")
                if int(parts[0][:-1]) <= self.n and (last == "none yet" or last is None
                                                     or getattr(last.status, "name", "") == "REJECTED"):
                    self._act(broker, parts[1], parts[2:])
                    self.repeated[k] = self.orders[-1]
            elif int(parts[0]) == self.n:
                self._act(broker, parts[1], parts[2:])
        self._dump(broker)

    def _act(self, broker, action: str, args: list[str]) -> None:
        if action in ("buy", "sell"):
            qty = float(args[1]) * (1 if action == "buy" else -1)
            self.orders.append(broker.submit_order(args[0], qty))
        elif action == "limit":
            self.orders.append(broker.submit_order(args[0], float(args[1]), order_type=OrderType.LIMIT,
                                                   limit_price=float(args[2])))  # fmt: skip
        elif action == "bracket":
            legs = broker.submit_bracket(args[0], float(args[1]), float(args[2]), float(args[3]))
            self.orders.extend(legs or [None])
        elif action == "reprice":
            k = int(args[0])
            order = self.orders[k] if k < len(self.orders) else None
            if order is not None:
                broker.update_order(order.order_id, limit_price=float(args[1]))
        elif action == "cancel":
            k = int(args[0])
            order = self.orders[k] if k < len(self.orders) else None
            if order is not None:
                broker.cancel_order(order.order_id)
        else:
            raise ValueError(f"unknown plan action {action!r}")

    def _dump(self, broker) -> None:
        orders = []
        for o in self.orders:
            if o is None:
                orders.append(None)
                continue
            orders.append({"id": o.order_id, "status": getattr(o.status, "name", str(o.status)),
                           "filled": o.filled_quantity, "reason": o.rejection_reason or ""})  # fmt: skip
        positions = {a: p.quantity for a, p in broker.get_positions().items()}
        tmp = self.view + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"bars": self.n, "orders": orders, "positions": positions}, fh)
        os.replace(tmp, self.view)
