"""``ml4t-live reconcile`` after a made-up fill whose real execution did arrive, against the
simulated IB Gateway (ib_async).

The runtime journals every venue event it applies (the events table) but a fill row only for
what counted (the fills table): a real execution the book ignored because the runtime's made-up
fill of its order (``<cid>:filled-while-away``) covered it is an event, not a fill. Reconcile
compared the venue's executions with the fills alone and reported ``execution ... is not in the
journal`` (exit 3) though the positions agreed. The journal here is a real run's (Holder buys 7
AAPL at market) with its one fill row renamed to the made-up id: the journal a run writes when
it made the fill up and the real execution then arrived (and was ignored). With the order's
journaled execution event made another execution's, the venue's execution was never received: a
difference (fill-missing), exit 3.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
from collections.abc import Callable

import pytest

from ml4t_live.book import made_up_fill_id
from tests.cli.cli_support import HOLDER

pytestmark = pytest.mark.usefixtures("ib_errors")  # any ERROR ib_async logs fails the test


def made_up_journal(invoke, sim, tmp_path, change: Callable[[sqlite3.Connection, str], None]) -> tuple[str, str]:
    """A real run of Holder against ``sim`` whose one journaled fill row is renamed to its order's
    made-up fill id (``invoke`` is the ``cli`` fixture), and ``change(db, cid)`` made to the journal: (the real execution's id, the
    order's cid)."""
    from ml4t_live.journal import journal_path, state_dir

    (tmp_path / "holder.py").write_text(textwrap.dedent(HOLDER))
    run = invoke("run", f"{tmp_path / 'holder.py'}:Holder", "--broker", "ib", "--port", sim.port, "--symbols",
              "AAPL,MSFT", "--bar-size", "1min", "--no-session", "--max-bars", 2, "--strategy-id", "holder")  # fmt: skip
    assert run.exit_code == 0, run.output
    db = sqlite3.connect(journal_path(state_dir(), "ib", "DU1234567", "holder"))
    try:
        ((exec_id, cid),) = db.execute("SELECT exec_id, cid FROM fills").fetchall()
        db.execute("UPDATE fills SET exec_id = ? WHERE exec_id = ?", (made_up_fill_id(cid), exec_id))
        change(db, cid)
        db.commit()
    finally:
        db.close()
    return exec_id, cid


def test_reconcile_says_a_real_execution_a_made_up_fill_covered_was_received_and_ignored(cli, bars, sims, tmp_path):
    def received(db: sqlite3.Connection, cid: str) -> None:
        assert [kind for (kind,) in db.execute("SELECT kind FROM events WHERE cid = ?", (cid,))
                if kind in ("OrderFilled", "OrderPartiallyFilled")]  # the real execution: received

    sim = sims(bars)
    exec_id, cid = made_up_journal(cli, sim, tmp_path, received)

    result = cli("reconcile", "--broker", "ib", "--port", sim.port, "--strategy-id", "holder", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[: result.output.rindex("}") + 1])
    assert report["consistent"] and report["differences"] == []
    (ignored,) = report["ignored_executions"]
    assert (ignored["exec_id"], ignored["client_order_id"]) == (exec_id, cid)
    assert ignored["note"] == f"received and ignored: the made-up fill {cid}:filled-while-away covered it"
    shown = cli("reconcile", "--broker", "ib", "--port", sim.port, "--strategy-id", "holder")
    assert shown.exit_code == 0 and "consistent" in shown.output
    assert f"execution {exec_id} of {cid}" in shown.output and "received and ignored" in shown.output


def test_reconcile_says_an_execution_of_a_made_up_order_the_runtime_never_received_is_missing(cli, bars, sims, tmp_path):
    # a review probe of e5ed928: a mutant taking every execution the fills lack, of an order with
    # the made-up fill, as "received and ignored" passed every test. Here the journal's one
    # execution event of the order is another execution's (E-other): the venue's is not in it
    from dataclasses import replace

    from ml4t_live.journal.codec import pack, unpack

    def another_executions(db: sqlite3.Connection, cid: str) -> None:
        events = db.execute("SELECT seq, payload FROM events WHERE cid = ? AND kind IN ('OrderFilled', "
                            "'OrderPartiallyFilled')", (cid,)).fetchall()  # fmt: skip
        assert events
        for seq, payload in events:
            db.execute("UPDATE events SET payload = ? WHERE seq = ?", (pack(replace(unpack(payload), exec_id="E-other")),
                                                                       seq))  # fmt: skip

    sim = sims(bars)
    exec_id, cid = made_up_journal(cli, sim, tmp_path, another_executions)

    result = cli("reconcile", "--broker", "ib", "--port", sim.port, "--strategy-id", "holder", "--json")
    assert result.exit_code == 3, result.output
    report = json.loads(result.output[: result.output.rindex("}") + 1])
    assert not report["consistent"] and report["ignored_executions"] == []
    (missing,) = [d for d in report["differences"] if d["kind"] == "fill-missing"]
    assert missing["subject"] == cid and missing["note"] == f"execution {exec_id} is not in the journal", missing
