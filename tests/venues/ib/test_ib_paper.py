"""Opt-in smoke test against a REAL IB paper account (TWS / IB Gateway with the API enabled).

Skipped unless ``ML4T_LIVE_PAPER=1``. Settings: ``IB_HOST`` (127.0.0.1), ``IB_PORT`` (7497),
``IB_CLIENT_ID`` (91), ``IB_SYMBOL`` (SPY). It refuses anything but a paper (``DU…``) account,
places one 1-share BUY LIMIT at $1.00 (far from any market, it cannot fill), waits for IB to
accept it, cancels it, and checks the cancel; then reads one real-time 5-second bar group.
"""

from __future__ import annotations

import os

import pytest
from ib_helpers import wait_for
from ml4t.backtest import OrderSide, OrderType

from ml4t_live.events import BarClosed, OrderAccepted, OrderCancelled, OrderRejected
from ml4t_live.protocols import OrderRequest
from ml4t_live.venues.ib import IBConfig, IBFeed, IBGateway

pytestmark = [
    pytest.mark.paper,
    pytest.mark.skipif(
        os.environ.get("ML4T_LIVE_PAPER") != "1",
        reason="real paper account: set ML4T_LIVE_PAPER=1",
    ),
]


def paper_config(**kw):
    return IBConfig(
        host=os.environ.get("IB_HOST", "127.0.0.1"),
        port=int(os.environ.get("IB_PORT", "7497")),
        client_id=int(os.environ.get("IB_CLIENT_ID", "91")),
        **kw,
    )


def test_paper_account_order_round_trip(ib_log_guard):
    ib_log_guard.expect(r"Error 202, reqId \d+")
    ib_log_guard.expect(
        r"Error 399"
    )  # "will not be placed until ..." outside trading hours
    gw = IBGateway(paper_config())
    try:
        snap = (
            gw.connect()
        )  # a live account raises LiveTradingRefused (no allow_live here)
        assert snap.is_paper and snap.account_id.startswith("DU")
        symbol = os.environ.get("IB_SYMBOL", "SPY")
        coid = f"ml4t-paper-smoke-{os.getpid()}"
        gw.place(
            OrderRequest(
                coid, symbol, OrderSide.BUY, 1, OrderType.LIMIT, limit_price=1.0
            )
        )
        first = wait_for(
            gw.events,
            lambda e: (
                isinstance(e, (OrderAccepted, OrderRejected))
                and e.client_order_id == coid
            ),
            timeout=30,
        )
        if isinstance(first, OrderRejected):
            pytest.fail(f"IB rejected the smoke order: {first.code} {first.reason}")
        gw.cancel(coid)
        wait_for(
            gw.events,
            lambda e: isinstance(e, OrderCancelled) and e.client_order_id == coid,
            timeout=30,
        )
    finally:
        gw.close()


def test_paper_feed_delivers_a_bar():
    symbol = os.environ.get("IB_SYMBOL", "SPY")
    feed = IBFeed(paper_config(), [symbol], bar_size="5 secs")
    try:
        feed.start()
        for _ in range(60):
            ev = feed.next_event(5.0)
            if isinstance(ev, BarClosed):
                assert symbol in ev.data and ev.data[symbol]["close"] > 0
                return
        pytest.fail(
            "no real-time bar within 5 minutes (market closed or no data permission?)"
        )
    finally:
        feed.close()
