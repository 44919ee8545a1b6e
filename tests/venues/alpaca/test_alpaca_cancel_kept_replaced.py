"""A kept cancel refused 'replaced': the strategy's cancel of t-p is kept while a lost cut of its
replacement is pending (t-p.r1 cut to t-p.r2 by a PATCH answered 503 yet carried out; Alpaca keeps
it pending past the check's MAX_TRIES while the look-ups of t-p.r1 fail). The check gives up, the
cut is carried out; the runtime still names t-p.r1 (no stream update of the lost cut moved it), so
the kept cancel goes to t-p.r1 and Alpaca refuses it 'replaced'. t-p.r1 is read, t-p.r2 (its
``replaced_by``) followed and cancelled. Failed before (probe q4 of rev-cutfix4): the refusal was
taken as a replace in flight, the cancel sent to t-p.r1 again at every check while t-p.r2 filled
to its end: 81 bought of 60, the cancel kept for ever. Real alpaca-py against SimulatedAlpaca."""

from __future__ import annotations

from modify_support import rig

from ml4t_live.venues.alpaca.modify import MAX_CANCEL_TRIES, MAX_TRIES


def test_a_kept_cancel_refused_replaced_follows_the_replacement_and_cancels_it():
    with rig(bars=60) as r:
        r.reprice_with_slow_replace(bars=2, quantity=60)
        r.sim.inject("slow_replace", bars=MAX_TRIES + 3)  # the cut: pending past the check's tries, then carried out
        r.sim.inject("replace_error", status=503, carried_out=True)
        r.sim.inject("lookup_error", status=503, count=8)
        r.bar()
        r.gw.modifier.check_replaces()
        r.bar()
        r.gw.modifier.check_replaces()  # the cut: 503, carried out, pending
        r.gw.cancel("t-p")  # taken: refused 'pending_replace', kept
        for _ in range(MAX_TRIES + 25):
            r.bar()
            r.gw.modifier.check_replaces()
        orders, bought, lines, kept = r.orders(), r.bought(), r.lines, set(r.gw.modifier.cancels)
        r2 = next(str(o["id"]) for o in r.sim.orders() if o["client_order_id"] == "t-p.r2")
        followed = r.gw._venue_ids["t-p"]
    assert orders["t-p.r2"][0] == "canceled" and bought < 60 and kept == set(), (orders, bought, kept)
    assert followed == r2
    refused = [line for line in lines if "the order replaced" in line and "t-p" in line]
    assert len(refused) == 1 and "is followed and the cancel sent to it" in refused[0], refused
    assert [line for line in lines if "ALERT" in line and "t-p" in line and "was not taken" in line] == []


def test_a_kept_cancel_alpaca_never_takes_is_given_up_with_one_alert():
    """The replace of t-p kept pending by Alpaca past the check's tries and past the kept cancel's:
    the cancel, refused 'pending_new' at each end of bar, is sent MAX_CANCEL_TRIES times, then
    given up with one ALERT naming the order that may still work. Failed before: kept and sent
    again at every end of bar for ever, with no ALERT."""
    with rig(bars=80) as r:
        r.reprice_with_slow_replace(bars=MAX_TRIES + MAX_CANCEL_TRIES + 20, quantity=60)
        r.gw.cancel("t-p")  # taken: refused 'pending_new', kept
        for _ in range(MAX_TRIES + MAX_CANCEL_TRIES + 6):
            r.bar()
            r.gw.modifier.check_replaces()
        lines, kept, r1 = r.lines, set(r.gw.modifier.cancels), r.gw._venue_ids["t-p"]
    refused = [line for line in lines if "the order pending_new (a replace in flight): sent again" in line]
    alerts = [line for line in lines if "ALERT" in line and "was not taken" in line]
    assert kept == set() and len(refused) == MAX_CANCEL_TRIES, (kept, len(refused))
    assert len(alerts) == 1 and r1 in alerts[0] and "may still work at Alpaca; cancel it there" in alerts[0], alerts
