"""The seven invariants of the fault catalogue, scored from the journal, the venue and the runs.

Inputs: the strategy's journal (read-only SQLite), the venue's :class:`~.world.VenueView`, what
the strategy last wrote about its orders (``strategy_view.json``), and every ``ml4t-live run``
of the scenario (exit code, seconds, output). Each check gives PASS/FAIL and the numbers behind it.

1. dup      - no client order id has more than one order at the venue (black-holed ones count)
2. lost     - every venue execution of the strategy's orders is in the journal exactly once,
              and the journal holds no execution the venue does not know
3. orphan   - every venue order is claimed by an intent, or (foreign) reported as external
4. position - per asset: journal (sum of fills) = venue (minus foreign executions) = strategy;
              and no order's chain (the order and its Alpaca replacements) traded more than asked
5. unknown  - no intent is journaled rejected / cancelled / lost / unfilled while the venue has
              it filled or working, no order the strategy last saw CANCELLED / REJECTED is still
              working at the venue, and no exception escapes into the strategy's on_data;
              nothing re-sent after an unknown outcome (see 1)
6. reject   - every order the venue rejected reached the strategy REJECTED with the venue's
              reason; every journaled rejection carries a reason
7. bounded  - every run ended within its budget with the expected exit code, and no intent is
              left unresolved at the end

An Alpaca replacement carries its order's client order id plus ``.r<n>``: checks per order read
the whole chain (:func:`chain_root`), the chain's status being its last order's.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .world import VenueView

INVARIANTS = ("dup", "lost", "orphan", "position", "unknown", "reject", "bounded")
VENUE_DONE = {"filled", "Filled", "canceled", "Cancelled", "ApiCancelled", "expired", "rejected", "Inactive",
              "replaced", "done_for_day"}  # fmt: skip
VENUE_REJECTED = {"rejected", "Inactive"}


@dataclass
class Check:
    ok: bool
    detail: str


@dataclass
class RunRecord:
    label: str
    exit_code: int | None  # None: killed by the suite after the budget
    seconds: float
    output: str
    expect: tuple[int, ...]
    budget: float


def read_journal(state_dir: Path) -> dict[str, Any]:
    paths = sorted(state_dir.glob("*.journal"))
    out: dict[str, Any] = {"paths": [p.name for p in paths], "intents": {}, "fills": [], "meta": {}}
    for path in paths:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            for row in db.execute("SELECT cid, asset, status, filled, venue_id, reason, quantity FROM intents"):
                out["intents"][row[0]] = dict(zip(("cid", "asset", "status", "filled", "venue_id", "reason",
                                                   "quantity"), row, strict=True))  # fmt: skip
            out["fills"] += [dict(zip(("exec_id", "cid", "asset", "quantity"), r, strict=True))
                             for r in db.execute("SELECT exec_id, cid, asset, quantity FROM fills")]  # fmt: skip
            out["meta"].update(dict(db.execute("SELECT key, value FROM meta").fetchall()))
        finally:
            db.close()
    return out


def read_view(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {"orders": [], "positions": {}, "bars": 0}


def chain_root(cid: str) -> str:
    """The client order id of the order ``cid`` belongs to: itself, or the order an Alpaca
    replacement (``<cid>.r<n>``) came from."""
    return re.sub(r"\.r\d+$", "", cid)


def _replace_number(cid: str) -> int:
    m = re.search(r"\.r(\d+)$", cid)
    return int(m.group(1)) if m else 0


def score(journal: dict[str, Any], venue: VenueView, strategy: dict[str, Any], runs: list[RunRecord],
          prefix: str, expect_reason: str | None = None) -> dict[str, Check]:  # fmt: skip
    """``prefix``: the strategy id at the head of its client order ids (anything else at the
    venue is foreign). ``expect_reason``: text the venue's rejection carries in this scenario."""
    ours = lambda cid: bool(cid) and cid.split("-")[0] == prefix
    intents = journal["intents"]
    out: dict[str, Check] = {}

    # 1. duplicates
    per_cid = Counter(o.cid for o in venue.orders if ours(o.cid)) + Counter(c for c in venue.swallowed if ours(c))
    dups = {c: k for c, k in per_cid.items() if k > 1}
    out["dup"] = Check(not dups, f"{len(per_cid)} ids, {sum(dups.values()) - len(dups)} extra" +
                       (f" {_short(dups)}" if dups else ""))  # fmt: skip

    # 2. lost / phantom fills
    venue_execs = {e.exec_id for e in venue.executions if ours(e.cid)}
    journal_execs = Counter(f["exec_id"] for f in journal["fills"] if not f["exec_id"].startswith("adopted-"))
    missing = venue_execs - set(journal_execs)
    phantom = set(journal_execs) - venue_execs
    twice = {e for e, k in journal_execs.items() if k > 1}
    rekeyed = sorted(e for e in phantom if ":" in e)  # "<venue order id>:<cumulative qty>" (a REST re-sync)
    out["lost"] = Check(not (missing or phantom or twice),
                        f"venue {len(venue_execs)} execs, journal {sum(journal_execs.values())}; "
                        f"missing {len(missing)}, phantom {len(phantom)}, twice {len(twice)}"
                        + (f"; {len(rekeyed)} journaled under a made-up id, not the venue's ({rekeyed[0]})"
                           if rekeyed else ""))  # fmt: skip

    # 3. orphans
    text = "\n".join(r.output for r in runs)
    orphans = sorted({o.cid for o in venue.orders if ours(o.cid) and chain_root(o.cid.split("#")[0]) not in intents} |
                     {c for c in venue.swallowed if ours(c) and c not in intents})  # fmt: skip
    foreign_assets = sorted({o.asset for o in venue.orders if not ours(o.cid)})
    unflagged = [a for a in foreign_assets if not _flagged(text, a)]
    out["orphan"] = Check(not orphans and not unflagged,
                          f"{len(orphans)} unclaimed, {len(foreign_assets)} foreign asset(s), "
                          f"{len(unflagged)} not reported external" + (f" {orphans[:2]}" if orphans else ""))

    # 4. positions: journal = venue (minus foreign) = strategy
    foreign: dict[str, float] = {}
    for e in venue.executions:
        if not ours(e.cid):
            foreign[e.asset] = foreign.get(e.asset, 0.0) + e.quantity
    jpos: dict[str, float] = {}
    for f in journal["fills"]:
        jpos[f["asset"]] = jpos.get(f["asset"], 0.0) + f["quantity"]
    assets = sorted(set(jpos) | set(venue.positions) | set(foreign) | set(strategy.get("positions", {})))
    rows, bad = [], []
    for a in assets:
        j = jpos.get(a, 0.0)
        v = venue.positions.get(a, 0.0) - foreign.get(a, 0.0)
        s = float(strategy.get("positions", {}).get(a, 0.0))
        rows.append(f"{a} j{j:g}/v{v:g}/s{s:g}")
        if abs(j - v) > 1e-6 or abs(j - s) > 1e-6:
            bad.append(a)
    vfilled: dict[str, float] = {}  # per chain
    for e in venue.executions:
        vfilled[chain_root(e.cid)] = vfilled.get(chain_root(e.cid), 0.0) + abs(e.quantity)
    over = [f"{c} traded {vfilled[c]:g} of {abs(float(i['quantity'])):g} asked" for c, i in intents.items()
            if vfilled.get(c, 0.0) > abs(float(i["quantity"])) + 1e-6]  # fmt: skip
    out["position"] = Check(not bad and not over, (", ".join(rows) or "flat") + (f"; {over[0]}" if over else ""))

    # 5. unknown read as empty: a journal outcome the venue contradicts
    by_cid: dict[str, Any] = {}  # per chain: its last order
    for o in sorted(venue.orders, key=lambda o: _replace_number(o.cid)):
        by_cid[chain_root(o.cid)] = o
    wrong = []
    for cid, i in intents.items():
        vo = by_cid.get(cid)
        if i["status"] in ("lost", "rejected", "cancelled") and vo is not None and vo.status not in VENUE_DONE:
            wrong.append(f"{cid}: journal {i['status']}, venue {vo.status}")
        elif abs(float(i["filled"] or 0) - vfilled.get(cid, 0.0)) > 1e-6:
            wrong.append(f"{cid}: journal filled {i['filled']:g}, venue {vfilled.get(cid, 0.0):g}")
    for o in strategy.get("orders", []):  # what the strategy was told ended must have ended at the venue
        vo = by_cid.get(o["id"]) if o else None
        if vo is not None and o["status"] in ("CANCELLED", "REJECTED") and vo.status not in VENUE_DONE:
            wrong.append(f"{o['id']}: strategy sees {o['status']}, venue {vo.status}")
    raised = [line for r in runs for line in r.output.splitlines() if ".on_data raised" in line]
    errors = [line.rsplit(": ", 1)[0] for r in runs for line in r.output.splitlines()
              if re.match(r"^[\w.]*(Error|Exception): ", line)]  # fmt: skip
    out["unknown"] = Check(not wrong and not raised, f"{len(intents)} intents, {len(wrong)} contradicted"
                           + (f" ({wrong[0]})" if wrong else "")
                           + (f"; {len(raised)} exception(s) escaped into on_data {sorted(set(errors))}"
                              if raised else ""))  # fmt: skip

    # 6. rejections reach the strategy with the venue's reason
    seen = {o["id"]: o for o in strategy.get("orders", []) if o}
    problems = []
    venue_rejected = [o for o in venue.orders if ours(o.cid) and o.status in VENUE_REJECTED]
    for o in venue_rejected:
        s = seen.get(o.cid)
        if s is None or s["status"] != "REJECTED":
            problems.append(f"{o.cid}: strategy sees {s['status'] if s else 'nothing'}")
        elif not s["reason"]:
            problems.append(f"{o.cid}: REJECTED without the venue's reason")
    if expect_reason and not any(s["status"] == "REJECTED" and expect_reason.lower() in s["reason"].lower()
                                 for s in seen.values()):  # fmt: skip
        problems.append(f"no order reached the strategy REJECTED with {expect_reason!r}")
    silent = [c for c, i in intents.items() if i["status"] == "rejected" and not i["reason"]]
    out["reject"] = Check(not problems and not silent,
                          f"venue rejected {len(venue_rejected)}, reached {len(venue_rejected) - len(problems)}"
                          + (f"; {len(silent)} without reason" if silent else "")
                          + (f" ({problems[0]})" if problems else ""))  # fmt: skip

    # 7. bounded
    late = [f"{r.label} {'killed' if r.exit_code is None else 'exit ' + str(r.exit_code)} "
            f"{r.seconds:.1f}s/{r.budget:.0f}s" for r in runs
            if r.exit_code is None or r.exit_code not in r.expect or r.seconds > r.budget]  # fmt: skip
    stuck = [c for c, i in intents.items() if i["status"] not in ("filled", "cancelled", "rejected", "lost")
             and (by_cid.get(c) is None or by_cid[c].status in VENUE_DONE)]  # fmt: skip
    longest = max((r.seconds for r in runs), default=0.0)
    out["bounded"] = Check(not late and not stuck,
                           f"{len(runs)} run(s), max {longest:.1f}s; {len(stuck)} unresolved"
                           + (f" ({late[0]})" if late else ""))  # fmt: skip
    return out


def _flagged(text: str, asset: str) -> bool:
    return any("external" in line and asset in line for line in text.splitlines())


def _short(d: dict) -> str:
    return ", ".join(f"{k}x{v}" for k, v in list(d.items())[:2])
