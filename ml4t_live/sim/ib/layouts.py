"""Message layouts below server version 178 (pure functions).

The encoders write every message in its v178 layout. A connection that negotiated an older
version (157..177) passes each outgoing frame through :func:`downgrade`, which rewrites the
few messages whose layout changed between 157 and 178. The thresholds are IB's own
(``ibapi.server_versions`` of IB's client 10.46, whose decoder reads these fields under the
same conditions; ib_async 2.1 and ib_insync 0.9.86 read the same fields):

========================  ====  =========================================================
message                   ver   change at that version
========================  ====  =========================================================
error (4)                 166   ``advancedOrderRejectJson`` appended (ibapi <= 9.81 reads
                                exactly 5 fields: one more and it drops the message)
contractData (10)         163   ``sizeMinTick`` appended (163 only)
contractData (10)         164   version field and ``mdSizeMultiplier`` dropped;
                                ``minSize, sizeIncrement, suggestedSizeIncrement`` appended
openOrder (5)             158   ``duration``; 160 ``postToAts``; 162 ``autoCancelParent``;
                                170 five peg-best / peg-mid fields (all at the tail)
openOrder, completedOrder 177   the deprecated ``faProfile`` after ``faPercentage`` dropped
completedOrder (101)      170   the five peg-best / peg-mid fields at the tail
execDetails (11)          178   ``pendingPriceRevision`` at the tail
symbolSamples (79)        176   ``description, issuerId`` after each description
========================  ====  =========================================================

(ib_async reads ``duration`` from 159, not 158; at 158 it ignores that tail field.)
Requests change too: below 177 a client's placeOrder carries the deprecated ``faProfile``
after ``faPercentage`` (:func:`place_order_fa_profile`); the other request changes are
appended at the end, where the decoders do not read.
"""

from __future__ import annotations

from .framing import SERVER_VERSION, decode_payload, encode_fields

ADVANCED_ORDER_REJECT = 166
SIZE_RULES = 164
FRACTIONAL_SIZE = 163
DURATION = 158
POST_TO_ATS = 160
AUTO_CANCEL_PARENT = 162
PEG_BEST_PEG_MID = 170
BOND_ISSUER_ID = 176
FA_PROFILE_DESUPPORT = 177
PENDING_PRICE_REVISION = 178

# Index of the field after faPercentage in the v178 layout of a plain stock order.
_OPEN_ORDER_FA_END = 34
_COMPLETED_ORDER_FA_END = 31
# Index of minTick in contractData at v178 (no version field).
_CONTRACT_MIN_TICK = 13


def downgrade(frame: bytes, version: int) -> bytes:
    """``frame`` (a v178 message) in the layout of ``version``."""
    if version >= SERVER_VERSION:
        return frame
    fields: list[object] = list(decode_payload(frame[4:]))
    rewrite = _REWRITES.get(str(fields[0]))
    if rewrite is None:
        return frame
    return encode_fields(rewrite(fields, version))


def _error(f: list[object], v: int) -> list[object]:
    return f[:5] if v < ADVANCED_ORDER_REJECT else f


def _contract_data(f: list[object], v: int) -> list[object]:
    if v >= SIZE_RULES:
        return f
    head, tail = f[: _CONTRACT_MIN_TICK + 1], f[_CONTRACT_MIN_TICK + 1 : -3]
    out = [head[0], 8, *head[1:], 1, *tail]  # version 8; mdSizeMultiplier 1
    if v >= FRACTIONAL_SIZE:
        out.append(f[-3])  # sizeMinTick: the minimum size
    return out


def _order_tail(f: list[object], v: int) -> list[object]:
    """openOrder's version-gated tail: duration, postToAts, autoCancelParent, 5 peg fields."""
    body, tail = f[:-8], f[-8:]
    keep = [
        *([tail[0]] if v >= DURATION else []),
        *([tail[1]] if v >= POST_TO_ATS else []),
        *([tail[2]] if v >= AUTO_CANCEL_PARENT else []),
        *(tail[3:] if v >= PEG_BEST_PEG_MID else []),
    ]
    return body + keep


def _open_order(f: list[object], v: int) -> list[object]:
    f = _order_tail(f, v)
    if v < FA_PROFILE_DESUPPORT:
        f = [*f[:_OPEN_ORDER_FA_END], "", *f[_OPEN_ORDER_FA_END:]]
    return f


def _completed_order(f: list[object], v: int) -> list[object]:
    if v < PEG_BEST_PEG_MID:
        f = f[:-5]
    if v < FA_PROFILE_DESUPPORT:
        f = [*f[:_COMPLETED_ORDER_FA_END], "", *f[_COMPLETED_ORDER_FA_END:]]
    return f


def _symbol_samples(f: list[object], v: int) -> list[object]:
    """Below 176 each description lacks ``description, issuerId`` (the simulator sends no
    derivative sec types, so every description is 8 fields at 178)."""
    if v >= BOND_ISSUER_ID:
        return f
    out, n = f[:3], int(str(f[2]) or 0)
    for k in range(n):
        out += f[3 + 8 * k : 3 + 8 * k + 6]
    return out


def _exec_details(f: list[object], v: int) -> list[object]:
    return f[:-1] if v < PENDING_PRICE_REVISION else f


_REWRITES = {
    "4": _error,
    "10": _contract_data,
    "5": _open_order,
    "101": _completed_order,
    "11": _exec_details,
    "79": _symbol_samples,
}


def place_order_fa_profile(version: int) -> int:
    """How many extra fields (0 or 1) an older client's placeOrder carries after faPercentage."""
    return 1 if version < FA_PROFILE_DESUPPORT else 0
