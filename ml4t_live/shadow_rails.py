"""The rails in front of the shadow broker: a rehearsal refuses what the venue run would refuse.

:class:`ShadowRails` puts a :class:`~ml4t_live.risk.RiskGate` in front of the backtest
``Broker`` the strategy holds, by giving that one Broker instance its own ``submit_order``,
``submit_bracket`` and ``update_order``. Everything the Broker does itself (``close_position``,
``flatten_all_positions``, the brackets' legs) calls ``self.submit_order`` and so passes the gate
too, the position rules' exits included (reducing: they pass unless the state is HALTED). An order the gate
refuses never reaches the Broker: the strategy gets a REJECTED ``Order`` (id ``RISK-<n>``) with
the reason, as the backtest reports its own rejections, and the session files record it.

With a shadow journal (:mod:`ml4t_live.shadow_journal`) the gate's trading state is persisted
there, and ``ml4t-live halt`` / ``resume`` reach the run at its next bar.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from ml4t.backtest import Broker, Order, OrderSide, OrderStatus, OrderType

from .risk import RiskGate
from .risk.gate import unfilled_entry

_BUY, _SELL, _PENDING, _INF = OrderSide.BUY, OrderSide.SELL, OrderStatus.PENDING, math.inf


class ShadowRails:
    def __init__(self, gate: RiskGate, broker: Broker) -> None:
        self.gate = gate
        self.broker = broker
        self.refused: list[Order] = []
        self.new_refused: list[Order] = []
        self._refused_ids: set[str] = set()
        self._refusals = 0  # ids never repeat, also when old records are forgotten (retain)
        self._bracket: list[Order] | None = None  # inside submit_bracket: [entry] once it is made
        self._submit = broker.submit_order
        self._submit_bracket = broker.submit_bracket
        self._update = broker.update_order
        self._counts_open = gate.config.max_open_orders is not None  # else the count is never read
        self._order_state = broker._order_state  # its ``pending``: broker.pending_orders, without the property
        # the gate's followed orders and asset views (dicts never replaced): ``track``, inlined
        self._followed, self._assets = gate.exposure._followed, gate.exposure.assets
        # a bar's open: the gate's own step, which reads the positions tracked orders moved
        # (every order passes here and is tracked) from this broker
        gate.refresh_positions = self._positions
        broker.submit_order = self.submit_order  # type: ignore[method-assign]
        broker.submit_bracket = self.submit_bracket  # type: ignore[method-assign]
        broker.update_order = self.update_order  # type: ignore[method-assign]

    # ------------------------------------------------------------------ the Broker's surface
    def submit_order(self, asset: str, quantity: float, side: OrderSide | None = None,
                     order_type: OrderType = OrderType.MARKET, limit_price: float | None = None,
                     stop_price: float | None = None, trail_amount: float | None = None,
                     _options: Any = None) -> Order | None:  # fmt: skip
        kind = type(quantity)
        if not (kind is float or kind is int or (kind is not bool and isinstance(quantity, Real))) \
                or not 1e-9 < abs(quantity) < _INF:  # fmt: skip
            # the backtest's own answer (an error, or None); a numpy or Fraction quantity is a
            # number the backtest takes: it meets the rails too
            return self._submit(asset, quantity, side, order_type, limit_price, stop_price, trail_amount, _options)
        if side is None:
            side = _BUY if quantity >= 0 else _SELL
        size = abs(float(quantity))
        gate, bracket = self.gate, self._bracket
        entry, parent = None, 0.0
        if bracket:
            entry = bracket[0]
            if entry.order_id in self._refused_ids:
                return self._refuse(asset, side, size, order_type, limit_price, stop_price, trail_amount,
                                    "bracket_entry_refused", f"its bracket entry {entry.order_id} was refused "
                                    f"({entry.rejection_reason})")  # fmt: skip
            parent = unfilled_entry(entry)
        # every order passes here and is tracked, so each bar's open refreshes the positions its
        # fills moved (and an immediate fill is read just below): no read of the position here.
        # gate.check, flattened: the one-step check first, the gate's full check when it says no
        now, open_orders = gate.now(), len(self._order_state.pending) if self._counts_open else 0
        room = gate.bracket_room(asset, side, size, now) if bracket is not None and not bracket and not gate.halted else None
        if room is not None:  # the bracket's entry: the whole bracket cannot leave
            order = self._refuse(asset, side, size, order_type, limit_price, stop_price, trail_amount, room.code,
                                 room.reason)  # fmt: skip
        elif not gate.limits.admit(asset, side, size, order_type, limit_price, stop_price, now, gate.equity,
                                 open_orders, parent, gate.state.state) and \
                (refusal := gate.check(asset, side, size, order_type, limit_price, stop_price, open_orders, parent,
                                       now=now)) is not None:  # fmt: skip
            order = self._refuse(asset, side, size, order_type, limit_price, stop_price, trail_amount,
                                 refusal.code, refusal.reason)  # fmt: skip
        else:
            order = self._submit(asset, quantity, side, order_type, limit_price, stop_price, trail_amount, _options)
            if order is not None and gate.follows_positions:
                filled = order.filled_quantity
                if order.status is _PENDING:  # gate.track (exposure.follow), inlined (once per order)
                    order_id, followed = order.order_id, self._followed
                    if entry is not None or order_id in followed:  # a bracket's leg; an order known already
                        gate.exposure.follow(order, entry is not None)
                    else:  # a new order (its asset and side are the ones given)
                        left = max(order.quantity - filled, 0.0)
                        view = self._assets.get(asset) or gate.exposure._asset(asset)
                        followed[order_id] = (order, left, filled, view)
                        if side is _BUY:
                            view.working_buy += left
                        else:
                            view.working_sell += left
                if filled:
                    self._position(asset)
        if bracket is not None and not bracket and order is not None:
            bracket.append(order)
        return order

    def submit_bracket(self, *args: Any, **kwargs: Any) -> Any:
        self._bracket = []
        try:
            return self._submit_bracket(*args, **kwargs)
        finally:
            self._bracket = None

    def update_order(self, order_id: str, **changes: Any) -> bool:
        order = self.broker.get_order(order_id)
        if order is None or order.status is not OrderStatus.PENDING:
            return self._update(order_id, **changes)
        parent = self.broker.get_order(order.parent_id) if order.parent_id else None
        refusal = self.gate.check_change(order, changes, open_orders=len(self.broker.pending_orders), entry=parent)
        if refusal is not None:
            self.gate.log_refusal(refusal.code, "change of {} refused: {}", order_id, refusal.reason)
            return False
        done = self._update(order_id, **changes)
        if done:
            self.gate.changed(order)
        return done

    def rolled_back(self) -> None:
        """A strategy hook raised, and the backtest undid what it did (``ml4t.backtest``: "a
        hook that raises leaves no order behind"): the orders it placed are gone, the ones it
        changed or cancelled are as they were, and so are the positions its fills moved. The
        gate forgets the gone orders and reads every position again (only after an error); a
        working order's undone change is read from the order at the next bar's ``settle``, as
        any change is (no check that reads working orders runs before it). The rate limit keeps
        the sends (they were checked as sent), and an order the rails refused in the hook stays
        refused (it never reached the broker)."""
        gate = self.gate
        if not gate.follows_positions:
            return
        gate.exposure.drop_followed({id(order) for order in self._order_state.pending})
        self._positions(set(self._assets) | set(self.broker.positions))

    def follow_own(self, order: Order | None) -> None:
        """An order the runtime placed itself, past the rails (the operator's flatten): followed
        as the strategy's are, so the position its fill moves is read again."""
        if order is None or not self.gate.follows_positions:
            return
        self.gate.track(order)
        if order.filled_quantity:
            self._position(order.asset)

    # ------------------------------------------------------------------ positions
    def _position(self, asset: str) -> None:
        """The asset's position into the gate (a tracked order filled: at a bar's open, or at once)."""
        position = self.broker.positions.get(asset)
        if position is None:
            self.gate.position(asset, 0.0)
        else:
            self.gate.position(asset, position.quantity, self.broker.get_multiplier(asset))

    def _positions(self, assets: set[str]) -> None:
        """``_position`` for each asset (a bar's open: the assets tracked orders filled in), in
        one step: ``gate.position`` inlined (an unchanged position is left as it is)."""
        broker, exposure = self.broker, self.gate.exposure
        positions, specs = broker.positions, broker._contract_specs  # get_multiplier is 1.0 without a spec
        known, stale = exposure.assets, exposure._stale  # stale (a bar's prices came): no notional to move
        for asset in assets:
            position = positions.get(asset)
            if position is None:
                quantity, mult = 0.0, 1.0
            else:
                quantity, mult = float(position.quantity), float(broker.get_multiplier(asset)) if asset in specs else 1.0
            view = known.get(asset)
            if view is not None and stale:
                view.quantity = quantity
                view.multiplier = mult
            elif (view.quantity != quantity or view.multiplier != mult) if view is not None else quantity:
                exposure.set_position(asset, quantity, mult)

    def _refuse(self, asset: str, side: OrderSide, size: float, order_type: OrderType, limit_price: float | None,
                stop_price: float | None, trail_amount: float | None, code: str, reason: str) -> Order:  # fmt: skip
        if code == "bracket_entry_refused":  # the gate counts the refusals it made itself
            self.gate.refused[code] += 1
        order = Order(asset=asset, side=side, quantity=size, order_type=order_type, limit_price=limit_price,
                      stop_price=stop_price, trail_amount=trail_amount,
                      order_id=f"RISK-{self._refusals + 1}", created_at=self.gate.bar_time)  # fmt: skip
        self._refusals += 1
        order.reject(f"risk: {reason}", code)
        self.refused.append(order)
        self.new_refused.append(order)
        self._refused_ids.add(order.order_id)
        self.gate.log_refusal(code, "order {} ({} {:g} {}) refused: {}", order.order_id, side.value, size, asset, reason)
        return order

