"""``cancel-all``'s reading of an order the venue no longer lists after its cancel, against a fake
venue gateway (the remote side): only the venue's word makes it "cancelled". The CLI case of a fill
that won the race is tests/cli/test_cli_acting_alpaca.py; a look-up that gets no answer cannot be
staged there (the simulators answer cancel-all's look-ups), so it is here."""

from __future__ import annotations

from ml4t.backtest import OrderSide, OrderType

from ml4t_live.cli.acting import NOT_READ, UNSETTLED, _ended, _ends
from ml4t_live.errors import CancelRefused, ConnectionFailed, LookupIncomplete
from ml4t_live.protocols import VenueOrder


class Gateway:
    """A venue gateway's ``lookup``: ``found`` by client order id, or ``fails`` (no answer)."""

    def __init__(self, found=None, fails: bool = False) -> None:
        self.found, self.fails, self.asked = found or {}, fails, []

    def lookup(self, cids):
        self.asked.append(list(cids))
        if self.fails:
            raise ConnectionFailed("IB look-up of 1 order(s) by orderRef did not complete (TimeoutError())")
        return {c: self.found[c] for c in cids if c in self.found}


def _order(status: str, filled: float) -> VenueOrder:
    return VenueOrder("c1", "V1", "AAPL", OrderSide.BUY, 3.0, filled, OrderType.LIMIT, status, 50.0)


def test_an_unlisted_order_whose_look_up_fails_or_finds_nothing_is_not_read_as_cancelled():
    for gateway in (Gateway(fails=True), Gateway()):
        ends = _ends(gateway, ["c1"])
        assert gateway.asked == [["c1"]]
        outcome = _ended(ends.get("c1"), None, surfaced=False)
        assert outcome == NOT_READ and outcome.startswith(UNSETTLED)  # cancel-all exits 3


def test_an_unlisted_order_takes_the_end_the_venue_gives_it():
    said = {
        ("cancelled", 0.0): "cancelled at the venue",
        ("cancelled", 1.0): "cancelled at the venue after filling 1",
        ("filled", 3.0): "filled 3 at the venue before its cancel took effect: the strategy's next start takes the fill",
        ("rejected", 0.0): "rejected at the venue",
        # IB shows it by its executions alone: how it ended is unknown (it was "filled 1")
        ("unknown", 1.0): "not listed working to this client id; the venue shows only its executions (1 filled): "
        "how it ended is unknown; it may still work under another client id: cancel it there (cancel-all with "
        "that client id) or check the venue",
    }
    for (status, filled), text in said.items():
        assert _ended(_ends(Gateway({"c1": _order(status, filled)}), ["c1"])["c1"], None, False) == text
    unknown = _ended(_order("unknown", 1.0), None, False)  # it may still work under another client id
    assert unknown.startswith(UNSETTLED)  # cancel-all exits 3
    working = _ended(_order("open", 0.0), None, False)
    assert working.startswith("cancel sent, not confirmed") and working.startswith(UNSETTLED)
    refused = _ended(_order("filled", 3.0), CancelRefused("IB refused the cancel of c1: error 10148"), False)
    assert refused.startswith("filled 3 at the venue before its cancel took effect (the venue refused the cancel")


class ReadsSome(Gateway):
    """A gateway that asks for each id on its own (Alpaca's): ``unread`` could not be read."""

    def __init__(self, found, unread) -> None:
        super().__init__(found)
        self.unread = unread

    def lookup(self, cids):
        found = super().lookup([c for c in cids if c not in self.unread])
        raise LookupIncomplete("could not read 1 of 2 order(s)", found, {c: "HTTP 503" for c in self.unread})


def test_an_order_read_by_a_look_up_that_could_not_read_another_takes_its_end():
    # before, LookupIncomplete was taken as a failed look-up of both: c2's end (cancelled) was
    # reported as not read
    ends = _ends(ReadsSome({"c2": _order("cancelled", 0.0)}, ["c1"]), ["c1", "c2"])
    assert _ended(ends.get("c1"), None, False) == NOT_READ
    assert _ended(ends.get("c2"), None, False) == "cancelled at the venue"
