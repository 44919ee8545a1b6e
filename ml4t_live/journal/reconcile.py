"""Journal vs venue: what the strategy owns, what the venue holds, and what nobody explains.

Pure functions over plain values, used by the broker (at connect, after every reconnect,
periodically, at the end) and by ``ml4t-live reconcile``. The journal's positions are the sum of
the strategy's own fills; anything else the venue holds is *external*: reported, never traded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..quantities import EPS as _EPS


@dataclass(frozen=True, slots=True)
class Difference:
    """One line of the reconciliation table."""

    kind: str  # "external" | "missing" | "order-unknown" | "order-foreign" | "order-state" | "order-ended"
    subject: str  # asset or client order id
    journal: str
    venue: str
    note: str

    @property
    def key(self) -> tuple[str, str, float]:
        """What stays the same while the same discrepancy persists (the strategy's own position
        may move meanwhile): kind, subject, and venue minus journal."""
        try:
            delta = round(float(self.venue) - float(self.journal), 9)
        except ValueError:  # an order row
            delta = 0.0
        return self.kind, self.subject, delta

    def row(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "journal": self.journal,
                "venue": self.venue, "note": self.note}  # fmt: skip


def position_differences(ours: dict[str, float], venue: dict[str, float]) -> list[Difference]:
    """External = venue minus ours. ``missing``: the venue holds less of ours than the journal
    says (on the same side), which no external trade of the opposite side can excuse silently."""
    out = []
    for asset in sorted(set(ours) | set(venue)):
        mine, held = ours.get(asset, 0.0), venue.get(asset, 0.0)
        if abs(held - mine) <= _EPS:
            continue
        if abs(mine) > _EPS and (held * mine < 0 or abs(held) < abs(mine)):
            out.append(Difference("missing", asset, f"{mine:.12g}", f"{held:.12g}",
                                  "the venue holds less than the strategy's own fills"))  # fmt: skip
        else:
            out.append(Difference("external", asset, f"{mine:.12g}", f"{held:.12g}",
                                  f"{held - mine:+.12g} beyond the strategy's journaled fills (another's trades, or "
                                  "fills of its own the journal lacks: an order's fills while away that could not "
                                  "be read); the runtime never trades it"))  # fmt: skip
    return out


def order_differences(open_intents: dict[str, dict[str, Any]], venue_open: dict[str, Any],
                      is_ours: Any, ended: dict[str, dict[str, Any]] | None = None) -> list[Difference]:  # fmt: skip
    """Journal-open intents the venue does not show open, venue orders the journal takes for
    ended (``ended``: intents filled, cancelled, rejected or lost) that the venue works, and
    venue orders nobody journaled."""
    out = []
    for cid, intent in open_intents.items():
        if cid not in venue_open:
            out.append(Difference("order-state", cid, intent["status"], "not open",
                                  "open in the journal, not working at the venue"))  # fmt: skip
    for cid, order in venue_open.items():
        if cid in open_intents:
            continue
        if ended and cid in ended:
            status = ended[cid]["status"]
            out.append(Difference("order-ended", cid, status, f"{order.side.value} {order.quantity:g} {order.asset}",
                                  f"the journal says {status}, the venue works it: cancel it "
                                  "(ml4t-live cancel-all, the strategy stopped) or check the venue"))  # fmt: skip
            continue
        kind = "order-unknown" if is_ours(cid) else "order-foreign"
        note = ("carries this strategy's id but no journal explains it" if kind == "order-unknown"
                else "placed by someone else; never touched")  # fmt: skip
        out.append(Difference(kind, cid, "-", f"{order.side.value} {order.quantity:g} {order.asset}", note))
    return out
