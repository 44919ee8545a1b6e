"""BarAssembler: 5-second bars -> bars labelled by their start, grouped per label (pure)."""

from __future__ import annotations

from ml4t_live.venues.ib.bars import BarAssembler

T = 1_795_000_020  # a minute boundary (divisible by 60)
assert T % 60 == 0


def five_sec(
    asm: BarAssembler, sym: str, start: int, close: float, volume: float = 1.0
):
    return asm.add(sym, start, close - 0.5, close + 1.0, close - 1.0, close, volume)


def test_twelve_five_second_bars_make_one_minute_bar_labelled_by_its_start():
    asm = BarAssembler(["AAPL"], 60)
    out = []
    for i in range(12):
        out += five_sec(asm, "AAPL", T + 5 * i, 100.0 + i, volume=2.0)
    (group,) = out
    assert group.label == T and not group.partial
    bar = group.data["AAPL"]
    assert bar == {
        "price": 111.0,
        "open": 99.5,
        "high": 112.0,
        "low": 99.0,
        "close": 111.0,
        "volume": 24.0,
        "signals": {},
    }


def test_group_waits_for_every_symbol_then_releases_once():
    asm = BarAssembler(["AAPL", "MSFT"], 60)
    for i in range(12):
        assert five_sec(asm, "AAPL", T + 5 * i, 100.0) == []
    out = []
    for i in range(12):
        out += five_sec(asm, "MSFT", T + 5 * i, 200.0)
    (group,) = out
    assert group.label == T and set(group.data) == {"AAPL", "MSFT"}


def test_symbol_that_moved_on_releases_the_group_without_the_silent_one():
    asm = BarAssembler(["AAPL", "MSFT"], 60)
    for i in range(12):
        five_sec(asm, "AAPL", T + 5 * i, 100.0)
    out = five_sec(asm, "AAPL", T + 60, 101.0)  # next window begins; MSFT never traded
    assert [g.label for g in out] == [T]
    assert set(out[0].data) == {"AAPL"}


def test_late_start_is_partial_and_duplicates_are_dropped():
    asm = BarAssembler(["AAPL"], 60)
    assert five_sec(asm, "AAPL", T + 30, 100.0) == []
    assert five_sec(asm, "AAPL", T + 30, 100.0) == []  # duplicate slot ignored
    out = []
    for i in range(7, 12):
        out += five_sec(asm, "AAPL", T + 5 * i, 100.0)
    (group,) = out
    assert group.partial == {"AAPL"} and group.data["AAPL"]["volume"] == 6.0


def test_gap_closes_the_open_window_and_released_labels_never_come_back():
    asm = BarAssembler(["AAPL"], 60)
    five_sec(asm, "AAPL", T, 100.0)
    out = five_sec(asm, "AAPL", T + 120, 102.0)  # the window at T is over
    assert [g.label for g in out] == [T]
    asm.mark_released(T + 120)  # delivered from history
    rest = []
    for i in range(1, 12):
        rest += five_sec(asm, "AAPL", T + 120 + 5 * i, 102.0)
    assert rest == []  # already delivered: never twice
    assert [
        g.label
        for g in five_sec(asm, "AAPL", T + 180, 1.0)
        + five_sec(asm, "AAPL", T + 235, 1.0)
    ] == [T + 180]


def test_five_second_bar_size_releases_each_bar():
    asm = BarAssembler(["AAPL"], 5)
    assert [g.label for g in five_sec(asm, "AAPL", T, 1.0)] == [T]
    assert [g.label for g in five_sec(asm, "AAPL", T + 5, 1.0)] == [T + 5]


def test_many_symbols_release_once_at_the_last_symbols_last_slot():
    """A gateway sends each 5-second slot for every symbol in turn: the minute is released by
    the last symbol's last slot, not before, with every symbol in it."""
    symbols = [f"S{i:03d}" for i in range(300)]
    asm = BarAssembler(symbols, 60)
    released = []
    for slot in range(12):
        for n, sym in enumerate(symbols):
            out = five_sec(asm, sym, T + 5 * slot, 100.0 + n)
            if out:
                released.append((slot, sym, out))
    ((slot, sym, (group,)),) = released
    assert (slot, sym) == (11, symbols[-1])
    assert group.label == T and len(group.data) == 300 and not group.partial
    assert group.data["S007"]["close"] == 107.0


class _Reference:
    """The release rule spelled out by brute force (every symbol scanned on every bar)."""

    def __init__(self, symbols: list[str]) -> None:
        self.symbols, self.open, self.closed_upto = symbols, {}, {}
        self.pending: dict[int, dict[str, float]] = {}
        self.released_upto = -1

    def add(self, sym: str, start: int, close: float) -> list[tuple[int, dict[str, float]]]:
        label = start - start % 60
        win = self.open.get(sym)
        if win is not None and label > win[0]:
            self._close(sym, self.open.pop(sym))
            win = None
        if win is not None and start <= win[2]:
            return self._ready()
        if win is None:
            if label <= self.released_upto or label <= self.closed_upto.get(sym, -1):
                return self._ready()
            win = self.open[sym] = [label, close, start]
        else:
            win[1], win[2] = close, start
        if start >= label + 55:
            self._close(sym, self.open.pop(sym))
        return self._ready()

    def _close(self, sym: str, win: list) -> None:
        self.closed_upto[sym] = max(self.closed_upto.get(sym, -1), win[0])
        if win[0] > self.released_upto:
            self.pending.setdefault(win[0], {})[sym] = win[1]

    def _ready(self) -> list[tuple[int, dict[str, float]]]:
        out = []
        for label in sorted(self.pending):
            done = all(s in self.pending[label] for s in self.symbols)
            moved = any(self.closed_upto.get(s, -1) > label for s in self.symbols) or any(
                w[0] > label for w in self.open.values()
            )
            if not (done or moved):
                break
            out.append((label, self.pending.pop(label)))
            self.released_upto = max(self.released_upto, label)
        return out


def test_release_rule_matches_the_brute_force_reference_on_random_streams():
    import random

    rng = random.Random(15)
    symbols = ["A", "B", "C", "D"]
    for _ in range(200):
        asm, ref = BarAssembler(symbols, 60), _Reference(symbols)
        slot = {s: rng.randrange(0, 12) for s in symbols}  # subscribed mid-minute
        for step in range(120):
            sym = rng.choice(symbols)
            r = rng.random()
            if r < 0.08:
                slot[sym] += rng.randrange(2, 30)  # a gap: silent slots, maybe minutes
            elif r < 0.12:
                slot[sym] -= rng.randrange(1, 3)  # a late / duplicate bar
            start = T + 5 * max(0, slot[sym])
            slot[sym] += 1
            got = [(g.label, {s: v["close"] for s, v in g.data.items()})
                   for g in five_sec(asm, sym, start, float(step))]  # fmt: skip
            assert got == ref.add(sym, start, float(step)), (sym, start)


def test_flush_closes_a_window_that_missed_its_last_slot_into_its_group():
    """AAPL completes the minute; MSFT traded in it but has no bar in its last slot. Flushing
    that minute (the gateway's clock a bar past it, or ``end`` passed) delivers MSFT's bar with
    AAPL's; it was dropped before (only closed windows were flushed, and a label once released
    takes no more bars)."""
    asm = BarAssembler(["AAPL", "MSFT"], 60)
    for i in range(12):
        five_sec(asm, "AAPL", T + 5 * i, 100.0)
    five_sec(asm, "MSFT", T + 10, 200.0, volume=100.0)  # no bar of MSFT in slots 3-11
    assert asm.holds_before(T + 1) and not asm.holds_before(T)
    (group,) = asm.flush(older_than=T + 1)
    assert group.label == T and set(group.data) == {"AAPL", "MSFT"}
    assert group.data["MSFT"]["volume"] == 100.0
    assert not asm.holds_before(T + 60)
    assert five_sec(asm, "MSFT", T + 55, 201.0) == []  # a straggler of the released minute: dropped
