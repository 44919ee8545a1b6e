"""Parity: the live session against ml4t.backtest on the same bars, decision by decision.

:func:`compare` pairs the orders (:mod:`.orders`), classifies every difference (:mod:`.causes`)
and attributes the P&L gap. Attribution marks every fill to the last recorded close of its asset:
a fill's contribution to the run's P&L is ``signed quantity x (last close - fill price) -
commission``, and a run's P&L is the sum over its fills. The gap between two matched orders then
splits exactly into a quantity part (``(q_live - q_bt) x sign x (last close - p_bt)``), a price
part (``q_live x sign x (p_bt - p_live)``) and a commission part; an order only one run made
contributes its own fills. What the fills do not explain (the reported P&L against the fills'
P&L, both runs) is the ``residual``, shown as its own line: the causes plus the residual add up
to the reported gap exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..quantities import EPS
from .causes import (
    CAUSES,
    LABELS,
    BarClock,
    classify_pair,
    rejection_cause,
    slippage_bps,
)
from .orders import OrderRecord, match_orders, order_records
from .rerun import BacktestRun
from .session_files import SessionData

#: the part of a difference that is about quantity is charged to the quantity cause
_QUANTITY_CAUSES = ("venue_rejection", "risk_limit", "catch_up", "partial_fill", "unfilled", "after_end",
                    "knock_on", "unexplained")  # fmt: skip


@dataclass
class Difference:
    """One decision compared (matched pair, or an order only one run made)."""

    cause: str
    causes: list[str]
    detail: str
    asset: str
    side: str
    decided_at: Any
    live: OrderRecord | None
    backtest: OrderRecord | None
    pnl_effect: float
    parts: dict[str, float] = field(default_factory=dict)
    slippage_bps: float | None = None

    def as_dict(self) -> dict[str, Any]:
        def side(o: OrderRecord | None) -> dict[str, Any] | None:
            if o is None:
                return None
            return {"order_id": o.order_id, "status": o.status, "quantity": o.quantity,
                    "filled": o.filled, "price": o.price, "commission": o.commission,
                    "first_fill": o.first_fill, "last_fill": o.last_fill, "fills": len(o.fill_times),
                    "rejection_reason": o.rejection_reason, "exit_reason": o.exit_reason or None}  # fmt: skip
        return {"cause": self.cause, "label": LABELS[self.cause], "causes": self.causes,
                "detail": self.detail, "asset": self.asset, "side": self.side,
                "decided_at": self.decided_at, "pnl_effect": self.pnl_effect, "parts": self.parts,
                "slippage_bps": self.slippage_bps, "live": side(self.live),
                "backtest": side(self.backtest)}  # fmt: skip


@dataclass
class Parity:
    """The whole comparison; :meth:`as_dict` is ``parity.json``."""

    mode: str
    simulated_fills: bool
    decisions: int
    identical: int
    differences: list[Difference]
    live_pnl: float
    backtest_pnl: float
    attribution: dict[str, float]
    residual: float
    slippage_bps: list[float]
    external_events: int
    compared: list[Difference]
    external: list[str] = field(default_factory=list)
    live_pnl_source: str = "summary.json"
    session_error: str | None = None  # the session failed (summary.json's error)
    catch_up_refused: int = 0  # orders on catch-up bars both runs refused (warm-up): not decisions

    @property
    def score(self) -> float:
        return self.identical / self.decisions if self.decisions else 1.0

    @property
    def gap(self) -> float:
        return self.live_pnl - self.backtest_pnl

    @property
    def fully_identical(self) -> bool:
        return not self.differences and abs(self.gap) < 1e-6 and not self.external_events

    def headline(self) -> str:
        text = self._comparison()
        if self.catch_up_refused:
            text += (f" Not counted: {self.catch_up_refused} order(s) made on warm-up bars (before the "
                     "session's open), refused in both runs by design.")  # fmt: skip
        if self.session_error:
            return f"The session failed ({self.session_error}); up to its last recorded bar: {text}"
        return text

    def _comparison(self) -> str:
        if self.fully_identical:
            if self.simulated_fills:
                return (f"100% identical: this {self.mode} session fills with ml4t.backtest's own model, "
                        f"and all {self.decisions} decisions, fills, prices and the P&L match the backtest.")  # fmt: skip
            return f"100% identical: all {self.decisions} decisions, fills, prices and the P&L match the backtest."
        counts = self.counts()
        listed = [f"{n} {LABELS[c]}" for c, n in counts.items() if c not in ("identical", "external")]
        if self.external_events:
            listed.append(f"external activity in the account ({self.external_events} report(s), "
                          "not this strategy's)")  # fmt: skip
        return (f"parity {self.score:.1%}: {self.identical} of {self.decisions} decisions identical"
                + (f"; {', '.join(listed)}" if listed else "")
                + f". P&L gap {self.gap:+,.2f} (live {self.live_pnl:+,.2f} vs backtest {self.backtest_pnl:+,.2f}).")

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(CAUSES, 0)
        counts["identical"] = self.identical
        for d in self.differences:
            counts[d.cause] += 1
        if self.external_events:
            counts["external"] = self.external_events
        return {c: n for c, n in counts.items() if n}

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "simulated_fills": self.simulated_fills, "headline": self.headline(),
            "session_error": self.session_error,
            "parity_score": self.score, "decisions": self.decisions, "identical": self.identical,
            "counts": self.counts(), "catch_up_refused": self.catch_up_refused,
            "pnl": {"live": self.live_pnl, "live_source": self.live_pnl_source,
                    "backtest": self.backtest_pnl, "gap": self.gap,
                    "attribution": self.attribution, "residual": self.residual},
            "slippage_bps": _distribution(self.slippage_bps),
            "external_events": self.external_events, "external": self.external,
            "differences": [d.as_dict() for d in self.differences],
        }  # fmt: skip


def compare(session: SessionData, backtest: BacktestRun) -> Parity:
    """Match, classify and attribute (see the module docstring)."""
    clock = BarClock(session.bars["timestamp"].to_list())
    marks = last_closes(session)
    live = order_records(session.orders, session.fills)
    bt = order_records(backtest.orders, backtest.fills)
    matched = match_orders(live, bt)
    compared: list[Difference] = []
    pairs = [(lo, bo) for lo, bo in matched.pairs if not _refused_in_both(lo, bo)]
    classified = [classify_pair(lo, bo, clock) for lo, bo in pairs]
    first = min((str(bo.created_at) for (_, bo), (c, _) in zip(pairs, classified, strict=True)
                 if c != ["identical"]), default=None)  # fmt: skip
    for (lo, bo), (causes, detail) in zip(pairs, classified, strict=True):
        causes, detail = _sized_after(lo, bo, causes, detail, first)
        parts = _pair_parts(lo, bo, causes, marks)
        slip = slippage_bps(lo, bo) if lo.price is not None and bo.price is not None else None
        compared.append(Difference(causes[0], causes, detail, bo.asset, bo.side, bo.created_at, lo, bo,
                                   sum(parts.values()), parts, slip))  # fmt: skip
    compared.extend(_unmatched(matched.live_only, matched.backtest_only, compared, marks))
    compared.sort(key=lambda d: (str(d.decided_at), d.asset))
    differences = [d for d in compared if d.cause != "identical"]
    attribution = dict.fromkeys(CAUSES[1:], 0.0)
    for d in differences:
        for cause, value in d.parts.items():
            attribution[cause] += value
    bt_pnl = backtest.final_value - backtest.initial_cash
    if "final_value" in session.summary:  # what the run reported
        live_pnl = float(session.summary["final_value"]) - session.initial_cash
        # in the fills (and so in the differences above), not in the reported P&L
        attribution["after_end"] -= _after_last_mark(live, session, marks)
        live_source = "summary.json"
    else:  # the process died before it wrote its summary: its fills are what there is
        live_pnl = sum(contribution(r, marks) for r in live)
        live_source = "fills (the session has no final equity: its process did not finish)"
    explained = sum(attribution.values())
    residual = (live_pnl - bt_pnl) - explained
    slips = [d.slippage_bps for d in compared if d.slippage_bps is not None]
    return Parity(
        mode=session.mode, simulated_fills=session.simulated_fills,
        decisions=len(compared), identical=len(compared) - len(differences),
        differences=differences, live_pnl=live_pnl, backtest_pnl=bt_pnl,
        attribution={c: v for c, v in attribution.items() if abs(v) > 1e-12 or c in _used(differences)},
        residual=residual, slippage_bps=slips, external_events=session.external_events, compared=compared,
        external=session.external, live_pnl_source=live_source, catch_up_refused=len(matched.pairs) - len(pairs),
        session_error=session.summary.get("error") if session.summary.get("failed") else None,
    )  # fmt: skip


def _sized_after(lo: OrderRecord, bo: OrderRecord, causes: list[str], detail: str,
                 first_difference: str | None) -> tuple[list[str], str]:  # fmt: skip
    """An order both runs made, sized differently after an earlier difference (the cash or the
    position the strategy saw had diverged): a knock-on, as a decision only one run made."""
    if "unexplained" not in causes or abs(lo.filled - bo.filled) <= EPS:
        return causes, detail
    if first_difference is None or str(bo.created_at) <= first_difference:
        return causes, detail
    causes = ["knock_on" if c == "unexplained" else c for c in causes]
    return causes, detail + " (the state it saw had diverged earlier)"


def _refused_in_both(live: OrderRecord, bt: OrderRecord) -> bool:
    """Made on a catch-up bar both runs refused (a calendar session's warm-up): never traded by
    design, so not a decision to compare."""
    return all(o.status == "rejected" and rejection_cause(o) == "catch_up" for o in (live, bt))


def _after_last_mark(records: list[OrderRecord], session: SessionData, marks: dict[str, float]) -> float:
    """The P&L of live fills made after the session's last equity point (an order's last part
    filled while the run was ending): the fills count them, the reported final equity does not."""
    if not session.equity.height:
        return 0.0
    last = session.equity["timestamp"].max()
    total = 0.0
    for record in records:
        for ts, quantity, price in record.parts:
            if ts > last:
                total += record.sign * quantity * (marks.get(record.asset, price) - price)
    return total


def _used(differences: list[Difference]) -> set[str]:
    return {c for d in differences for c in d.parts}


def last_closes(session: SessionData) -> dict[str, float]:
    bars = session.bars.filter(session.bars["asset"] != "")
    last = bars.sort("timestamp").group_by("asset", maintain_order=True).last()
    return dict(zip(last["asset"].to_list(), last["close"].to_list(), strict=True))


def contribution(order: OrderRecord, marks: dict[str, float]) -> float:
    """The order's fills' share of the run's P&L, marked to the last close."""
    if order.filled <= EPS:
        return -order.commission
    mark = marks.get(order.asset, order.price)
    return order.sign * order.filled * (mark - order.price) - order.commission


def _pair_parts(lo: OrderRecord, bo: OrderRecord, causes: list[str], marks: dict[str, float]) -> dict[str, float]:
    if causes == ["identical"]:
        return {}
    mark = marks.get(bo.asset)
    p_bt = bo.price if bo.price is not None else lo.price
    parts: dict[str, float] = {}
    quantity_cause = next((c for c in causes if c in _QUANTITY_CAUSES), causes[0])
    price_cause = next((c for c in causes if c not in _QUANTITY_CAUSES and c != "commission"), quantity_cause)
    if p_bt is not None and mark is not None and abs(lo.filled - bo.filled) > EPS:
        _add(parts, quantity_cause, lo.sign * (lo.filled - bo.filled) * (mark - p_bt))
    if lo.price is not None and p_bt is not None:
        _add(parts, price_cause, lo.sign * lo.filled * (p_bt - lo.price))
    commission_cause = "commission" if "commission" in causes else causes[0]
    _add(parts, commission_cause, -(lo.commission - bo.commission))
    residue = (contribution(lo, marks) - contribution(bo, marks)) - sum(parts.values())
    if abs(residue) > 1e-9:  # an asset without a recorded close: keep the sum exact
        _add(parts, causes[0], residue)
    return {c: v for c, v in parts.items() if abs(v) > 1e-12} or {causes[0]: 0.0}


def _add(parts: dict[str, float], cause: str, value: float) -> None:
    parts[cause] = parts.get(cause, 0.0) + value


def _unmatched(live_only: list[OrderRecord], bt_only: list[OrderRecord], earlier: list[Difference],
               marks: dict[str, float]) -> list[Difference]:  # fmt: skip
    out = []
    first_difference = min((str(d.decided_at) for d in earlier if d.cause != "identical"), default=None)
    for record, is_live in [(r, True) for r in live_only] + [(r, False) for r in bt_only]:
        after = first_difference is not None and str(record.created_at) > first_difference
        cause = "knock_on" if after else "unexplained"
        where = "only the live run" if is_live else "only the backtest"
        detail = f"{record.side} {record.quantity:g} {record.asset}: made by {where}" + (
            " (the state it saw had diverged earlier)" if after else "")
        value = contribution(record, marks) * (1 if is_live else -1)
        out.append(Difference(cause, [cause], detail, record.asset, record.side, record.created_at,
                              record if is_live else None, None if is_live else record, value,
                              {cause: value}))  # fmt: skip
    return out


def _distribution(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    n = len(ordered)
    return {"count": n, "mean": sum(ordered) / n, "min": ordered[0], "max": ordered[-1],
            "median": ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2,
            "values": ordered}  # fmt: skip
