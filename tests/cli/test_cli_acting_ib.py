"""``ml4t-live cancel-all`` / ``flatten`` against the simulated IB Gateway: they act only on what
the strategy owns (its journal's orders and positions), never on another strategy's, and ask for
confirmation."""

from __future__ import annotations

import json
import socket

import pytest

from ml4t_live.journal import Journal, journal_path, state_dir
from ml4t_live.journal.operator_access import read_only
from tests.cli.cli_support import TRADED_IB_ERRORS
from tests.support.cli_output import json_output

pytestmark = pytest.mark.usefixtures("ib_errors")  # any ERROR ib_async logs fails the test
IB_ERRORS_EXPECTED = TRADED_IB_ERRORS


def _open_limits(sim) -> list[str]:
    return sorted(o.order_ref.split("-")[0] for o in sim.orders_received
                  if o.order_type == "LMT" and o.order_ref not in {c.order_ref for c in sim.completed_orders})  # fmt: skip


def _state(sid: str) -> str | None:
    journal = read_only(journal_path(state_dir(), "ib", "DU1234567", sid))
    try:
        return journal.meta("trading_state")
    finally:
        journal.close()


def _cancel_all(cli, traded_ib, tmp_path=None, client_id: str | None = None, *extra):
    """``cancel-all --yes`` of keeper at the simulated IB; ``client_id``: the session file's
    ``[venue] client_id`` (TOML text), written to a --config file in ``tmp_path``."""
    args = ["cancel-all", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper", "--yes", *extra]
    if client_id is not None:
        session = tmp_path / "session.toml"
        session.write_text(f"[venue]\nclient_id = {client_id}\n")
        args += ["--config", session]
    return cli(*args)


def test_cancel_all_without_yes_and_without_a_terminal_changes_nothing(cli, traded_ib):
    result = cli("cancel-all", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper")
    assert result.exit_code == 2, result.output
    assert "pass --yes" in result.output
    assert _open_limits(traded_ib) == ["keeper", "other"] and _state("keeper") == "ACTIVE"


def test_cancel_all_of_a_stopped_strategy_cancels_its_orders_at_the_venue_only(cli, traded_ib):
    result = cli("cancel-all", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper", "--yes",
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"): result.output.rindex("}") + 1])
    assert not report["running"] and report["trading_state"]["now"] == "HALTED"
    assert [(r["asset"], r["outcome"]) for r in report["orders"]] == [("AAPL", "cancelled at the venue")]
    assert _open_limits(traded_ib) == ["other"]  # the other strategy's order is never touched
    assert _state("keeper") == "HALTED" and _state("other") == "ACTIVE"
    status = cli("status", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper", "--json")
    facts = json.loads(status.output[status.output.index("{"): status.output.rindex("}") + 1])
    assert [o["owner"] for o in facts["open_orders"] if "not open at the venue" not in o["status"]] == ["external"]


def test_cancel_all_of_a_running_strategy_asks_the_strategy_and_touches_no_order_itself(cli, traded_ib, tmp_path):
    held = Journal.open(journal_path(state_dir(), "ib", "DU1234567", "keeper"))  # as a running strategy
    try:
        result = cli("cancel-all", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper", "-y")
    finally:
        held.close()
    assert result.exit_code == 0, result.output
    assert "the running strategy cancels it before its next bar" in result.output
    assert _open_limits(traded_ib) == ["keeper", "other"] and _state("keeper") == "HALTED"
    # the strategy's next bar does it: here a restart of the same run (warm restart, halted)
    again = cli("run", f"{tmp_path / 'keeper.py'}:Keeper", "-p", "qty=10", "--broker", "ib", "--port", traded_ib.port,
                "--symbols", "AAPL,MSFT", "--bar-size", "1min", "--no-session", "--max-bars", 1,
                "--strategy-id", "keeper", "--open-orders-at-end", "keep")  # fmt: skip
    assert again.exit_code == 0, again.output
    assert _open_limits(traded_ib) == ["other"]


def test_flatten_closes_only_the_strategys_own_positions_at_its_next_bar(cli, traded_ib, tmp_path):
    shown = cli("flatten", "--strategy-id", "keeper")
    assert shown.exit_code == 2 and "pass --yes" in shown.output and _state("keeper") == "ACTIVE"
    assert "sell 10 MARKET" in shown.output and "sell 5 MARKET" in shown.output
    result = cli("flatten", "--strategy-id", "keeper", "--yes", "--reason", "end of test")
    assert result.exit_code == 0, result.output
    assert "when it next starts" in result.output and _state("keeper") == "HALTED"
    assert {s: q for s, (q, _) in traded_ib.account.positions.items() if q} == {"AAPL": 17.0, "MSFT": 5.0}
    again = cli("run", f"{tmp_path / 'keeper.py'}:Keeper", "-p", "qty=10", "--broker", "ib", "--port", traded_ib.port,
                "--symbols", "AAPL,MSFT", "--bar-size", "1min", "--no-session", "--max-bars", 2,
                "--strategy-id", "keeper", "--open-orders-at-end", "keep")  # fmt: skip
    assert again.exit_code == 0, again.output
    # the other strategy's 7 AAPL and its working limit are untouched
    assert {s: q for s, (q, _) in traded_ib.account.positions.items() if q} == {"AAPL": 7.0}
    assert _open_limits(traded_ib) == ["other"]
    facts = json_output(cli("status", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper", "--json"))
    assert [(p["asset"], p["strategy"], p["external"]) for p in facts["positions"]] == [("AAPL", 0.0, 7.0)]
    assert facts["trading_state"] == {"state": "HALTED", "reason": "end of test"}


def test_flatten_of_a_running_strategy_says_it_happens_before_its_next_bar(cli, traded_ib):
    import os

    held = Journal.open(journal_path(state_dir(), "ib", "DU1234567", "keeper"))
    try:
        result = cli("flatten", "--strategy-id", "keeper", "--broker", "ib", "-y", "--json")
    finally:
        held.close()
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"): result.output.rindex("}") + 1])
    assert report["running_pid"] == os.getpid() and report["when"] == "before its next bar"
    assert sorted((p["asset"], p["quantity"]) for p in report["positions"]) == [("AAPL", 10.0), ("MSFT", 5.0)]


def test_cancel_all_with_another_client_id_says_which_client_may_cancel(cli, traded_ib):
    result = cli("cancel-all", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper", "--yes",
                 "--client-id", 7)  # fmt: skip
    assert result.exit_code == 3, result.output  # the order may still work: not done
    assert "under another API client id" in result.output
    assert "1 order(s) of keeper may still work at the venue" in result.output
    assert _open_limits(traded_ib) == ["keeper", "other"]  # nothing was cancelled by the wrong client


def _journal_says_lost(sid: str) -> str:
    """The strategy's working limit as a lost order that surfaced leaves it: its journal intent
    'lost' (terminal), while the venue works it."""
    journal = Journal.open(journal_path(state_dir(), "ib", "DU1234567", sid))
    try:
        (cid,) = [c for c, i in journal.intents().items() if i["status"] == "accepted"]
        journal.set_intent(cid, status="lost", reason="lost: never found at the venue")
        journal.commit()
        assert journal.intents()[cid]["status"] == "lost"
    finally:
        journal.close()
    return cid


def test_cancel_all_of_a_stopped_strategy_cancels_an_order_its_journal_says_lost_the_venue_works(cli, traded_ib):
    cid = _journal_says_lost("keeper")
    result = cli("cancel-all", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper", "--yes",
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"): result.output.rindex("}") + 1])
    assert [(r["client_order_id"], r["status"], r["outcome"]) for r in report["orders"]] == [
        (cid, "lost", "cancelled at the venue (the journal takes it for ended, the venue worked it)")]
    assert _open_limits(traded_ib) == ["other"]  # the other strategy's order is never touched


def test_reconcile_names_an_order_its_journal_says_lost_the_venue_works(cli, traded_ib):
    cid = _journal_says_lost("keeper")
    result = cli("reconcile", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper", "--json")
    assert result.exit_code == 3, result.output
    report = json.loads(result.output[: result.output.rindex("}") + 1])
    (row,) = [d for d in report["differences"] if d["subject"] == cid]
    assert (row["kind"], row["journal"]) == ("order-ended", "lost")
    assert "the journal says lost, the venue works it" in row["note"]
    assert _open_limits(traded_ib) == ["keeper", "other"]  # reconcile changes nothing


def _journal_says_cancelled(sid: str) -> None:
    """Every order of the strategy ended in its journal (its working limit taken as cancelled)."""
    journal = Journal.open(journal_path(state_dir(), "ib", "DU1234567", sid))
    try:
        (cid,) = [c for c, i in journal.intents().items() if i["status"] == "accepted"]
        journal.set_intent(cid, status="cancelled", reason="cancelled")
        journal.commit()
    finally:
        journal.close()


def test_cancel_all_of_a_stopped_strategy_whose_orders_all_ended_does_not_need_the_venue(cli, traded_ib):
    """Filled, cancelled and rejected orders were reported ended by the venue itself: nothing to
    cancel, so an offline cancel-all halts the strategy without connecting (the venue is down)."""
    _journal_says_cancelled("keeper")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        down = free.getsockname()[1]  # nothing listens there once closed
    result = cli("cancel-all", "--broker", "ib", "--port", down, "--strategy-id", "keeper", "--yes", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"): result.output.rindex("}") + 1])
    assert report["orders"] == [] and _state("keeper") == "HALTED"


def test_cancel_all_cancels_as_the_client_id_the_journal_recorded(cli, traded_ib, tmp_path):
    """The session file says client id 7, the journal's orders were placed under client id 1 (the
    only one IB lets cancel them): cancel-all connects as client 1 and says so."""
    result = _cancel_all(cli, traded_ib, tmp_path, "7")
    assert result.exit_code == 0, result.output
    assert "placed under client id 1, the configuration says 7: cancelling as client id 1" in result.output
    assert "cancelled at the venue" in result.output
    assert _open_limits(traded_ib) == ["other"]


def test_cancel_all_with_another_client_id_than_recorded_warns(cli, traded_ib):
    result = cli("cancel-all", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper", "--yes",
                 "--client-id", 7)  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "placed under client id 1, this command connects as client id 7" in result.output
    assert _open_limits(traded_ib) == ["keeper", "other"]


def test_cancel_all_with_client_id_named_does_not_read_a_bad_configured_one(cli, traded_ib, tmp_path):
    """Before, a [venue] client_id that is not an integer stopped cancel-all (exit 2) even when the
    operator named the client id, or the journal had recorded the one its orders were placed under."""
    result = _cancel_all(cli, traded_ib, tmp_path, '"one"', "--client-id", 1)
    assert result.exit_code == 0, result.output
    assert "cancelled at the venue" in result.output
    assert _open_limits(traded_ib) == ["other"]


def test_cancel_all_cancels_as_the_recorded_client_id_when_the_configured_one_is_bad(cli, traded_ib, tmp_path):
    result = _cancel_all(cli, traded_ib, tmp_path, '"one"')
    assert result.exit_code == 0, result.output
    assert "client_id 'one' is not an integer: cancelling as client id 1" in result.output
    assert _open_limits(traded_ib) == ["other"]


def test_cancel_all_without_a_usable_client_id_halts_and_says_what_to_do(cli, traded_ib, tmp_path):
    """A journal written before client ids were recorded, and a bad configured one: the strategy
    is halted (the safe half), nothing is cancelled under a guessed id, and the message says how."""
    import sqlite3

    from ml4t_live.placing_client import META_KEY

    db = sqlite3.connect(journal_path(state_dir(), "ib", "DU1234567", "keeper"))
    with db:
        db.execute("DELETE FROM meta WHERE key = ?", (META_KEY,))
    db.close()
    result = _cancel_all(cli, traded_ib, tmp_path, '"one"')
    assert result.exit_code == 2, result.output
    assert "keeper is HALTED" in result.output and "--client-id N" in result.output
    assert _open_limits(traded_ib) == ["keeper", "other"] and _state("keeper") == "HALTED"


def test_cancel_all_does_not_read_a_fractional_configured_client_id_as_another(cli, traded_ib, tmp_path):
    """A review probe of 485d204: int() read 1.9 as 1 (here: 2.5 as 2, a client id IB would not let
    cancel the orders)."""
    result = _cancel_all(cli, traded_ib, tmp_path, "2.5")
    assert result.exit_code == 0, result.output
    assert "client_id 2.5 is not an integer: cancelling as client id 1" in result.output
    assert _open_limits(traded_ib) == ["other"]


def test_cancel_all_does_not_report_a_cancel_ib_never_answered_as_done(cli, traded_ib):
    """IB loses the cancel (its restart window, IB-05): before, the row said "cancelled at the
    venue" and the command exited 0 while the order worked on."""
    traded_ib.inject("cancel_reply", reply="lost")
    result = cli("cancel-all", "--broker", "ib", "--port", traded_ib.port, "--strategy-id", "keeper", "--yes")
    assert result.exit_code == 3, result.output
    assert "cancel sent, not confirmed: the venue still lists it working" in result.output
    assert "cancelled at the venue" not in result.output
    assert _open_limits(traded_ib) == ["keeper", "other"]  # it does work on
    assert _state("keeper") == "HALTED"  # the halt stands: nothing new is sent
