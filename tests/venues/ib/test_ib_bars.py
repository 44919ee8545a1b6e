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
