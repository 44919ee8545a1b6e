"""Ownership and restarts through the command line, against the simulated IB Gateway (ib_async).

The journal decides what a strategy owns: a restart of the same command (with warm-up bars)
re-sends nothing, a second strategy's positions on the same account are external (never traded,
reported by ``ml4t-live reconcile``), and the two never share a client order id.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter

import pytest

from tests.cli.cli_support import HOLDER
from tests.support.cli_output import error_lines, summary_rows

pytestmark = pytest.mark.usefixtures("ib_errors")  # any ERROR ib_async logs fails the test

#: IB's "Order Canceled" confirmation: ib_async logs it at ERROR; these tests cancel on purpose
IB_ERRORS_EXPECTED = ("Error 202",)

FLATTENER = """
from ml4t.backtest import OrderType, Strategy

class Flattener(Strategy):
    \"\"\"Bar 1: buy 10 of each asset and a far limit; bar 3: cancel the limit. Always closes any
    position it sees on bar 2 (the strategy must only ever see its own).\"\"\"

    def __init__(self):
        self.bars = 0
        self.limit = None

    def on_data(self, timestamp, data, context, broker):
        self.bars += 1
        if self.bars == 1:
            for asset in sorted(data):
                broker.submit_order(asset, 10)
            self.limit = broker.submit_order("AAPL", 5, order_type=OrderType.LIMIT, limit_price=1.0)
        if self.bars == 2:
            for asset in sorted(broker.positions):
                broker.close_position(asset)
        if self.bars == 3 and self.limit is not None:
            broker.cancel_order(self.limit.order_id)
"""


@pytest.fixture
def strategies(tmp_path):
    (tmp_path / "flattener.py").write_text(textwrap.dedent(FLATTENER))
    (tmp_path / "holder.py").write_text(textwrap.dedent(HOLDER))
    return tmp_path


def _run(cli, target, port, *extra):
    return cli("run", target, "--broker", "ib", "--port", port, "--symbols", "AAPL,MSFT",
               "--bar-size", "1min", "--no-session", *extra)  # fmt: skip


def test_a_restart_with_warm_up_bars_resends_nothing_and_continues(cli, bars, sims, strategies):
    sim = sims(bars)
    config = strategies / "session.toml"
    config.write_text(textwrap.dedent(f"""
        strategy = "flattener.py:Flattener"
        broker = "ib"
        port = {sim.port}
        symbols = "AAPL,MSFT"
        bar_size = "1min"
        no_session = true
        open_orders_at_end = "keep"
        [venue]
        warmup_bars = 5
    """))
    first = cli("run", "--config", config, "--max-bars", 2)
    assert first.exit_code == 0, first.output
    sent_first = [o.order_ref for o in sim.orders_received]
    assert len(sent_first) == 5  # bar 1: 2 buys + 1 limit; bar 2: closes its own 2 positions
    second = cli("run", "--config", config, "--max-bars", 2)
    assert second.exit_code == 0, second.output
    assert not error_lines(second.output), second.output
    assert "warm restart done: 2 bars replayed" in second.output
    refs = [o.order_ref for o in sim.orders_received]
    # nothing re-sent: every orderRef once; the restart's one new command is bar 3's cancel
    assert Counter(refs).most_common(1)[0][1] == 1 and refs[:5] == sent_first
    assert len(refs) == 5
    limit_ref = sent_first[2]
    assert [o.status for o in sim.completed_orders if o.order_ref == limit_ref] == ["Cancelled"]


def test_another_strategys_positions_are_external_never_traded_and_reconcile_says_so(
    cli, bars, sims, strategies
):
    sim = sims(bars)
    holder = _run(cli, f"{strategies / 'holder.py'}:Holder", sim.port, "--max-bars", 2,
                  "--strategy-id", "holder")  # fmt: skip
    assert holder.exit_code == 0, holder.output
    flattener = _run(cli, f"{strategies / 'flattener.py'}:Flattener", sim.port, "--max-bars", 4,
                     "--strategy-id", "flat")  # fmt: skip
    assert flattener.exit_code == 0, flattener.output
    refs = [o.order_ref for o in sim.orders_received]
    assert {r.split("-")[0] for r in refs} == {"holder", "flat"} and len(set(refs)) == len(refs)
    # the flattener closed only its own 10 AAPL / 10 MSFT: the holder's 7 AAPL are still there
    sells = [o for o in sim.orders_received if o.order_ref.startswith("flat") and o.action == "SELL"]
    assert sorted((o.request.contract.symbol, o.quantity) for o in sells) == [("AAPL", 10.0), ("MSFT", 10.0)]
    assert {s: q for s, (q, _) in sim.account.positions.items() if q} == {"AAPL": 7.0}

    mine = cli("reconcile", "--broker", "ib", "--port", sim.port, "--strategy-id", "flat", "--json")
    assert mine.exit_code == 3, mine.output
    report = json.loads(mine.output[: mine.output.rindex("}") + 1])
    assert [(d["kind"], d["subject"], d["venue"]) for d in report["differences"]] == [
        ("external", "AAPL", "7")
    ]
    theirs = cli("reconcile", "--broker", "ib", "--port", sim.port, "--strategy-id", "holder")
    assert theirs.exit_code == 0, theirs.output
    assert "consistent" in theirs.output
    unknown = cli("reconcile", "--broker", "ib", "--port", sim.port, "--strategy-id", "nobody")
    assert unknown.exit_code == 2 and "no journal for strategy nobody" in unknown.output


def test_a_second_process_on_the_same_strategy_and_account_is_refused(cli, bars, sims, strategies):
    from ml4t_live.journal import Journal, journal_path, state_dir

    sim = sims(bars)
    held = Journal.open(journal_path(state_dir(), "ib", "DU1234567", "twice"))
    try:
        second = _run(cli, f"{strategies / 'holder.py'}:Holder", sim.port, "--max-bars", 2,
                      "--strategy-id", "twice")  # fmt: skip
    finally:
        held.close()
    assert second.exit_code == 2, second.output
    assert "is running this strategy on this account" in second.output
    assert sim.orders_received == []
    assert summary_rows(second.output) == {} or "orders" not in summary_rows(second.output)


def test_orders_left_working_at_the_end_are_listed_in_the_printed_summary(cli, bars, sims, strategies):
    sim = sims(bars)
    kept = _run(cli, f"{strategies / 'flattener.py'}:Flattener", sim.port, "--max-bars", 2,
                "--strategy-id", "kept", "--open-orders-at-end", "keep")  # fmt: skip
    assert kept.exit_code == 0, kept.output
    limit = next(o.order_ref for o in sim.orders_received if o.order_type == "LMT")
    assert "left at the venue (1 order(s) still working):" in kept.output
    assert f"    {limit}" in kept.output
    cancelled = _run(cli, f"{strategies / 'flattener.py'}:Flattener", sim.port, "--max-bars", 2,
                     "--strategy-id", "tidy")  # fmt: skip
    assert cancelled.exit_code == 0, cancelled.output
    assert "left at the venue" not in cancelled.output.split("Flattener:")[-1]


def test_ib_async_notices_reach_the_console_through_our_log_at_their_meaning(cli, bars, sims, strategies):
    """IB's "Error 202 ... Order Canceled" (ib_async logs it at ERROR for every cancel) is an INFO
    line of ours, not a raw ERROR line from the logging module."""
    sim = sims(bars)
    result = _run(cli, f"{strategies / 'flattener.py'}:Flattener", sim.port, "--max-bars", 4,
                  "--strategy-id", "quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    cancels = [line for line in result.output.splitlines() if "Error 202" in line]
    assert cancels, result.output  # the strategy cancelled its limit on bar 3
    assert all(" INFO " in line and "ib_async" in line for line in cancels), cancels
    assert not error_lines(result.output), result.output
