"""Why a live order differs from its backtest twin: one cause per difference, with the reason.

Causes (``CAUSES``, in the order a reader meets them):

==================  ==============================================================================
identical           same decision, same fill bar, quantity, price and commission
venue_rejection     the venue refused the order the backtest filled
risk_limit          a risk limit refused it (the rejection reason starts with ``risk:``)
catch_up            placed on a catch-up bar (late: warm-up, backfill, restart), so it never left
partial_fill        the venue filled part of the live order's own quantity (less than the backtest
                    filled), or filled all of it in more parts than the backtest did
unfilled            the venue filled none of it (cancelled at the end of the run, or still working)
missing_bar         the venue filled on a bar the feed never delivered (absent from the session's
                    bars), so the backtest filled it on the next bar it had
position_rule_exit  a stop / take-profit / trailing exit: the backtest fills at the rule's level on
                    the bar that touched it; live, the exit is a market order filled a bar later
latency             filled a bar (or more) later than the backtest
price               same bar, different price (slippage against the backtest fill, in bps)
commission          same fill, different commission
knock_on            a decision only one run made, or an order both made but sized differently, after
                    an earlier difference changed the state the strategy saw (position, cash)
unexplained         the same with no earlier difference: the strategy is not deterministic, or the
                    runs saw different inputs
after_end           live fills after the session's last bar (an order's last part, an order made
                    on the last bar or in on_end): the backtest had no bar left to fill them on;
                    in attribution, their P&L (in the fills, not in the reported final equity)
external            activity in the account that was not this strategy's (another client's orders,
                    executions, positions), from the session log; reported, never traded, and
                    outside the strategy's P&L
==================  ==============================================================================
"""

from __future__ import annotations

import bisect
from typing import Any

from ..quantities import EPS
from .orders import OrderRecord

CAUSES = ("identical", "venue_rejection", "risk_limit", "catch_up", "partial_fill", "unfilled", "missing_bar",
          "position_rule_exit", "latency", "price", "commission", "knock_on", "unexplained",
          "after_end", "external")  # fmt: skip

LABELS = {
    "identical": "identical",
    "venue_rejection": "venue rejection",
    "risk_limit": "risk-limit rejection",
    "catch_up": "catch-up bar",
    "partial_fill": "partial fill",
    "unfilled": "not filled at the venue",
    "missing_bar": "missing bar",
    "position_rule_exit": "position-rule exit (venue vs stop level)",
    "latency": "venue latency",
    "price": "price (slippage)",
    "commission": "commission",
    "knock_on": "follows an earlier difference",
    "unexplained": "unexplained decision",
    "after_end": "filled after the session's last bar",
    "external": "external activity",
}

#: ml4t.backtest exit reasons of position rules (``Fill.exit_reason``)
RULE_EXITS = frozenset({"stop_loss", "take_profit", "trailing_stop", "time_stop"})  # ExitReason values


def rejection_cause(order: OrderRecord) -> str:
    """The cause of a live rejection, from its reason and code."""
    reason = (order.rejection_reason or "").strip().lower()
    code = (order.rejection_code or "").strip().lower()
    if reason.startswith("risk:") or code.startswith("risk"):
        return "risk_limit"
    if code == "catch_up" or reason.startswith("catch-up"):
        return "catch_up"
    return "venue_rejection"


class BarClock:
    """Positions of timestamps among the session's recorded bar timestamps."""

    def __init__(self, timestamps: list[Any]) -> None:
        self.timestamps = sorted(set(timestamps))
        self._known = set(self.timestamps)

    def recorded(self, ts: Any) -> bool:
        return ts in self._known

    def after_last(self, ts: Any) -> bool:
        """``ts`` is later than the session's last recorded bar."""
        return ts is not None and bool(self.timestamps) and ts > self.timestamps[-1]

    def bars_between(self, earlier: Any, later: Any) -> int:
        """Recorded bars from ``earlier`` to ``later`` (negative when ``later`` is earlier)."""
        return bisect.bisect_left(self.timestamps, later) - bisect.bisect_left(self.timestamps, earlier)


def classify_pair(live: OrderRecord, bt: OrderRecord, clock: BarClock) -> tuple[list[str], str]:
    """The causes of the differences between two matched orders (``["identical"]`` when none),
    most important first, and a sentence saying what differs."""
    if live.status == "rejected" and bt.status != "rejected":
        cause = rejection_cause(live)
        return [cause], f"live order rejected: {live.rejection_reason or 'no reason given'}"
    if live.status == "rejected" and bt.status == "rejected":
        return ["identical"], "rejected in both runs"
    causes: list[str] = []
    notes: list[str] = []
    if live.filled <= EPS < bt.filled:
        causes.append("unfilled")
        notes.append(f"the venue filled none of the backtest's {bt.filled:g} ({live.status})")
    elif live.filled < live.quantity - EPS and live.filled < bt.filled - EPS:
        causes.append("partial_fill")
        notes.append(f"filled {live.filled:g} of its {live.quantity:g} (the backtest {bt.filled:g}; {live.status})")
    elif len(live.fill_times) > 1 and len(live.fill_times) != len(bt.fill_times) \
            and abs(live.filled - bt.filled) <= EPS:  # fmt: skip
        causes.append("partial_fill")
        late = clock.bars_between(live.first_fill, live.last_fill)
        notes.append(f"filled in {len(live.fill_times)} parts, the last {late} bar(s) after the first")
    elif live.filled > bt.filled + EPS and clock.after_last(live.last_fill):
        causes.append("after_end")
        notes.append(f"filled {live.filled:g} (the last part at {live.last_fill}, after the session's last "
                     f"bar); the backtest {bt.filled:g}: it had no bar left to fill on")  # fmt: skip
    elif abs(live.filled - bt.filled) > EPS:
        # each run filled its own order: the strategy sized them differently (the cash or the
        # position it saw differed); parity.compare makes it knock_on after an earlier difference
        causes.append("unexplained")
        notes.append(f"sized differently: live ordered {live.quantity:g} and filled {live.filled:g}, "
                     f"the backtest ordered {bt.quantity:g} and filled {bt.filled:g}")  # fmt: skip
    if live.filled > EPS and bt.filled > EPS:
        timing, note = _timing(live, bt, clock)
        if timing:
            causes.append(timing)
            notes.append(note)
        elif abs(live.price - bt.price) > 1e-9 * max(1.0, abs(bt.price)):
            causes.append("price")
            notes.append(f"price {live.price:.4f} vs {bt.price:.4f} ({slippage_bps(live, bt):+.1f} bps)")
    if abs(live.commission - bt.commission) > 1e-9:
        causes.append("commission")
        notes.append(f"commission {live.commission:.2f} vs {bt.commission:.2f}")
    if not causes:
        return ["identical"], "identical"
    return causes, "; ".join(notes)


def _timing(live: OrderRecord, bt: OrderRecord, clock: BarClock) -> tuple[str | None, str]:
    lt, bt_t = live.first_fill, bt.first_fill
    if bt.exit_reason in RULE_EXITS and (lt != bt_t or abs(live.price - bt.price) > 1e-9):
        return "position_rule_exit", (
            f"{bt.exit_reason} exit: backtest filled at the rule level {bt.price:.4f} at {bt_t}; "
            f"live a market order filled at {live.price:.4f} at {lt}")
    if lt == bt_t:
        return None, ""
    if not clock.recorded(lt) and not clock.after_last(lt):
        return "missing_bar", (f"live filled at {lt}, a bar the feed never delivered; the backtest "
                               f"filled on the next bar it had, {bt_t}")  # fmt: skip
    late = clock.bars_between(bt_t, lt)
    if late > 0:
        return "latency", f"filled {late} bar(s) later ({lt} vs {bt_t}), price {live.price:.4f} vs {bt.price:.4f}"
    return "unexplained", f"live filled {-late} bar(s) earlier ({lt} vs {bt_t})"


def slippage_bps(live: OrderRecord, bt: OrderRecord) -> float:
    """Live fill price against the backtest's, in bps; positive = worse for the strategy."""
    if live.price is None or bt.price is None or not bt.price:
        return 0.0
    return live.sign * (live.price - bt.price) / bt.price * 1e4
