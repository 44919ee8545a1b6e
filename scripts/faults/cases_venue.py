"""Venue-fault rows of the scoreboard: the IB and Alpaca faults of the catalogue, one run each.

The strategy's default plan (``PLAN``): bar 2 buys 10 AAPL at market (order 0), bar 3 rests a
limit buy of 5 MSFT at 50 (order 1, never fills), bar 5 cancels order 1, bar 6 sells 4 AAPL
(order 2). IB faults armed without ``at_bar`` hit the first orders; ``at_bar=N`` fires just
before replayed bar N (0-based) opens, i.e. before the strategy's bar N+1.
"""

from __future__ import annotations

from ml4t_live.feeds.health import SILENCE_GRACE
from ml4t_live.sim.alpaca.faults import SUBMIT_KINDS

from .runner import Run, Scenario

PLAN = "2:buy:AAPL:10|3:limit:MSFT:5:50|5:cancel:1|6:sell:AAPL:4"
MARGIN = ("Order rejected - reason: YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION "
          "YOUR EQUITY WITH LOAN VALUE [1000.00 USD] MUST EXCEED THE INITIAL MARGIN")  # fmt: skip


def _replay_budget(max_bars: int, speed: float, waited: float = 0.0) -> float:
    """A speed-mode run's budget, from what it is configured to take: the default 45 s (start-up,
    shutdown, slack), plus its bars' wall time (a minute bar every ``60 / speed`` s), plus
    ``waited``, the runtime's timeout the scenario exists to trip, as SLACK: the simulator's clock
    runs on while the runtime waits (the missed minutes are backfilled), so that wait falls inside
    the bars' wall time (al-silent-data-socket: 111.7 s alone, about its 110 bars) and the term
    only absorbs a loaded machine (185 s measured beside the test suite). The budget therefore
    bounds a hang, not how late inside its bound the runtime acts."""
    return 45.0 + max_bars * 60.0 / speed + waited


def _ib(name: str, ref: str, what: str, faults: list[dict], *, bars: int = 12, max_bars: int = 8,
        expect_reason: str | None = None, fast: bool = False, plan: str = PLAN) -> Scenario:  # fmt: skip
    return Scenario(name, "ib", ref, what, plan, [Run(max_bars)], bars=bars, faults=faults,
                    expect_reason=expect_reason, fast=fast, expect_fired=tuple(f["kind"] for f in faults))  # fmt: skip


def _al(name: str, ref: str, what: str, *, inject: list[tuple[str, dict]] = (), faults: list[dict] | None = None,
        plan: str = PLAN, bars: int = 12, max_bars: int = 8, days: int = 1, expect_reason: str | None = None,
        fast: bool = False, speed: float | None = None, budget: float = 45.0, config: str = "") -> Scenario:  # fmt: skip
    def before(world) -> None:
        for kind, params in inject:
            world.inject(kind, **params)

    kinds = [k for k, _ in inject] + [f["kind"] for f in faults or []]
    kinds += [f"used:{k}" for k in kinds if k in SUBMIT_KINDS or k == "lookup_error"]
    return Scenario(name, "alpaca", ref, what, plan, [Run(max_bars, before=before if inject else None, budget=budget)],
                    bars=bars, days=days, faults=faults or [], expect_reason=expect_reason, fast=fast, speed=speed,
                    expect_fired=tuple(kinds), config=config)  # fmt: skip


IB_CASES = [
    _ib("ib-nightly-reset-1102", "IB-01", "1100 at bar 3, data back with 1102 two bars later (bars between lost)",
        [{"kind": "nightly_reset", "bars": 2, "at_bar": 3}], bars=16, max_bars=10, fast=True),
    _ib("ib-nightly-reset-1101", "IB-01", "as above, but 1101 (data lost: resubscribe everything)",
        [{"kind": "nightly_reset", "bars": 2, "data_lost": True, "at_bar": 3}], bars=16, max_bars=10),
    _ib("ib-reconnect-rollback", "IB-05", "socket dropped at bar 3; the reconnect gets nextValidId 1 (rolled back)",
        [{"kind": "rollback_next_valid_id", "to": 1, "at_bar": 3}, {"kind": "drop_connection", "at_bar": 3}],
        bars=14, max_bars=10),
    _ib("ib-black-hole", "IB-09", "the first placeOrder vanishes: no openOrder, status, error or execution",
        [{"kind": "black_hole_next"}], fast=True),
    _ib("ib-exec-before-open-order", "IB-12", "the first 3 orders: execDetails before any openOrder/orderStatus",
        [{"kind": "exec_before_open_order", "count": 3}]),
    _ib("ib-missing-order-status", "IB-10", "the first 3 orders get no orderStatus at all",
        [{"kind": "missing_order_status", "count": 3}]),
    _ib("ib-duplicate-order-status", "IB-11", "openOrder/orderStatus x3; repeated Filled carries avgFillPrice 0",
        [{"kind": "duplicate_order_status", "count": 3, "times": 3}]),
    _ib("ib-duplicate-exec-details", "IB-15", "every execDetails of the first 3 orders sent twice",
        [{"kind": "duplicate_exec_details", "count": 3}]),
    _ib("ib-partial-fill", "IB-14", "the first order fills in 3 executions",
        [{"kind": "partial_fill", "parts": 3}]),
    _ib("ib-late-commission", "IB-13", "commissionReports 1 s after their executions, frames in between",
        [{"kind": "late_commission", "count": 3, "seconds": 1.0}]),
    _ib("ib-sentinel-commission", "IB-13", "commission 1.797e308 sentinel first, the real report 0.3 s later",
        [{"kind": "commission_sentinel", "count": 3, "value": "1.7976931348623157E308", "correct_after": 0.3}]),
    _ib("ib-missing-commission", "IB-13", "no commissionReport for the first 3 orders' executions",
        [{"kind": "missing_commission", "count": 3}]),
    _ib("ib-reject-201", "IB-16", "the first order: PreSubmitted, error 201 (margin), then Inactive",
        [{"kind": "reject_next", "reason": MARGIN}], expect_reason="INITIAL MARGIN", fast=True),
    _ib("ib-inactive-then-201", "IB-16", "as above, the Inactive frames first, then 201",
        [{"kind": "reject_next", "reason": MARGIN, "status_first": True}], expect_reason="INITIAL MARGIN"),
    _ib("ib-cancel-10147", "IB-18", "the cancel of order 1 is answered 10147 (not found); the order works on",
        [{"kind": "cancel_reply", "reply": "10147"}]),
    _ib("ib-cancel-10148", "IB-18", "the cancel of order 1 is answered 10148 (cannot be cancelled)",
        [{"kind": "cancel_reply", "reply": "10148"}]),
    _ib("ib-cancel-late", "IB-18", "the cancel of order 1 is confirmed 1.5 s late",
        [{"kind": "cancel_reply", "reply": "late", "seconds": 1.5}]),
    _ib("ib-cancel-lost", "IB-05", "the cancel of order 1 is lost (never answered, never carried out; the order "
        "works on): the runtime must cancel it again", [{"kind": "cancel_reply", "reply": "lost"}]),
    _ib("ib-duplicate-id-103", "IB-20", "the first placeOrder is refused: error 103 duplicate order id",
        [{"kind": "duplicate_order_id"}]),
    _ib("ib-pacing-100", "IB-23", "the first placeOrder is refused: error 100 max message rate exceeded",
        [{"kind": "rate_exceeded"}]),
    Scenario("ib-pacing-162", "ib", "IB-23", "warm-up of 3 bars; the first historical request answered 162 "
             "(pacing violation); the warm-up bars' orders must be REJECTED as catch-up", PLAN, [Run(8)], bars=14,
             faults=[{"kind": "pacing_violation"}], config="[venue]\nwarmup_bars = 3\n", warmup=3,
             expect_fired=("pacing_violation",)),
    _ib("ib-delayed-acks", "IB-09", "acks of the first 2 orders held back 4 s (longer than one in-flight check)",
        [{"kind": "delay_acks", "count": 2, "seconds": 4.0}]),
]

ALPACA_CASES = [
    _al("al-accept-then-504", "AL-07", "first POST /v2/orders: order created, answered 504 (alpaca-py retries)",
        inject=[("accept_then_504", {})], fast=True),
    _al("al-accept-then-drop", "AL-07", "first POST /v2/orders: order created, connection closed, no answer",
        inject=[("accept_then_drop", {})]),
    _al("al-truncated-body", "AL-07", "first POST /v2/orders: order created, 200 with a cut JSON body",
        inject=[("truncated_body", {})], fast=True),
    _al("al-non-json-body", "AL-07", "first POST /v2/orders: order created, 200 with an HTML page",
        inject=[("non_json_body", {})]),
    _al("al-connection-reset", "AL-07", "first POST /v2/orders: TCP reset before the venue looked (not created)",
        inject=[("connection_reset", {})]),
    _al("al-500-not-created", "AL-07", "first POST /v2/orders answered 500 without creating the order",
        inject=[("submit_error", {"status": 500, "accepted": False})]),
    _al("al-replayed-trade-updates", "AL-06", "the next 20 trade updates are each sent twice (same execution_id)",
        inject=[("duplicate_trade_updates", {"count": 20})]),
    _al("al-delayed-trade-updates", "AL-05", "the next 4 trade updates leave 2 s late",
        inject=[("delay_trade_updates", {"count": 4, "seconds": 2.0})]),
    _al("al-silent-trade-socket", "AL-05", "trade_updates socket goes silent for good at bar 1 (socket up)",
        faults=[{"kind": "silence_trade_stream", "at_bar": 1}]),
    _al("al-silent-data-socket", "AL-04", "market-data socket silent for good from bar 3 (socket up); 60x real "
        "time, the runtime's bound is bar + 30 s = 90 s", faults=[{"kind": "silence_data_stream", "at_bar": 3}],
        bars=150, max_bars=110, speed=60.0,
        budget=_replay_budget(110, 60.0, waited=60.0 + SILENCE_GRACE)),  # 45 + 110 + 90 = 245 s
    _al("al-dropped-trade-stream", "AL-05", "trade_updates socket closed at bar 1 (the client reconnects)",
        faults=[{"kind": "drop_trade_stream", "at_bar": 1}]),
    _al("al-429-storm", "AL-01", "the next 8 REST requests from bar 1 answered 429",
        faults=[{"kind": "rate_limit_storm", "at_bar": 1, "params": {"count": 8}}]),
    _al("al-wash-trade", "AL-10", "a market buy while the strategy's own sell limit rests: 403 wash trade",
        inject=[("wash_trade_check", {})], plan="2:limit:AAPL:-5:500|3:buy:AAPL:10|5:cancel:0",
        expect_reason="wash trade", fast=True, config="[risk]\nallow_short = true  # the resting sell is short\n"),
    _al("al-refused-403", "AL-08", "the first POST /v2/orders refused 403 40310000 insufficient buying power",
        inject=[("refuse_next", {})], expect_reason="insufficient buying power", fast=False),
    _al("al-rejected-update", "AL-13", "the first order accepted, then a 'rejected' trade update",
        inject=[("reject_next", {"reason": "insufficient buying power"})]),
    _al("al-held-bracket-legs", "AL-13", "bracket: entry at market, exits (500 / 50) held until the entry fills",
        plan="2:bracket:AAPL:10:500:50"),
    _al("al-expired-day-order", "AL-13", "a DAY limit rests at the close of day 1 and expires overnight",
        plan="2:limit:MSFT:5:50|3:buy:AAPL:10", bars=12, max_bars=10, days=2),
    _al("al-cancel-lost", "AL-14", "the DELETE of order 1 is answered 204 and left pending_cancel (the order works "
        "on) until Alpaca's late 'canceled' 2 bars later: the runtime must follow it to that end",
        inject=[("lose_cancel", {"bars": 2})]),
    _al("al-partial-fill", "AL-17", "the first fill split into 3 executions",
        inject=[("partial_fill", {"parts": 3})]),
]
