"""Scripted faults for the simulated venues: a plan loaded from TOML (or built in tests).

Threading rule: :class:`FaultPlan` is NOT thread-safe; a venue consults it from its one loop.

The plan only says *when* a fault is due; each venue server decides what a kind does
(disconnect, reject, partial fill, delay, rate limit, ...) and passes the kinds it knows as
``valid_kinds`` so a typo in a scenario file fails at load time. A TOML scenario::

    [[fault]]
    kind = "disconnect"
    at_bar = 5          # due from bar index 5 on (0-based)
    seconds = 2.0

    [[fault]]
    kind = "reject"
    after_orders = 1    # due on the order that follows the first one
    count = 2           # fires twice
    params = { reason = "insufficient margin" }
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

_FIELDS = ("kind", "at_bar", "after_orders", "seconds", "count", "params")


@dataclass
class Fault:
    """One scripted fault.

    ``at_bar``: due once the venue's bar index (0-based) reaches it. ``after_orders``: due once
    that many orders were received before the current one. Both set: both must hold; neither:
    due at the first check. ``count``: how many times it fires before it is used up.
    """

    kind: str
    at_bar: int | None = None
    after_orders: int | None = None
    seconds: float = 0.0
    count: int = 1
    params: dict[str, Any] = field(default_factory=dict)

    def matches(self, *, bar_index: int | None, order_index: int | None) -> bool:
        if self.at_bar is not None and (bar_index is None or bar_index < self.at_bar):
            return False
        return self.after_orders is None or (
            order_index is not None and order_index >= self.after_orders
        )


class FaultPlan:
    """The faults still to fire, consulted with :meth:`due`.

    Not thread-safe: one venue loop consults (and thereby consumes) it.
    """

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self._faults: list[Fault] = []
        self._left: list[int] = []
        for fault in faults:
            if fault.count < 1:
                raise ConfigError(f"fault {fault.kind!r} has count {fault.count}; it must be >= 1")
            self._faults.append(fault)
            self._left.append(fault.count)

    def __len__(self) -> int:
        """How many faults still have firings left."""
        return len(self._faults)

    @property
    def pending(self) -> list[Fault]:
        return list(self._faults)

    def due(
        self, kind: str, *, bar_index: int | None = None, order_index: int | None = None
    ) -> Fault | None:
        """The first fault of ``kind`` due now, consuming one of its firings; else None."""
        for i, fault in enumerate(self._faults):
            if fault.kind == kind and fault.matches(bar_index=bar_index, order_index=order_index):
                self._left[i] -= 1
                if self._left[i] == 0:
                    del self._faults[i]
                    del self._left[i]
                return fault
        return None

    @classmethod
    def load(cls, path: str | Path, *, valid_kinds: Iterable[str] | None = None) -> FaultPlan:
        """Read a TOML scenario; ConfigError (naming the file and fault) when it is unusable."""
        path = Path(path)
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read fault plan {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"fault plan {path} is not valid TOML: {exc}") from exc
        return cls.from_dict(document, valid_kinds=valid_kinds, source=str(path))

    @classmethod
    def from_dict(
        cls,
        document: dict[str, Any],
        *,
        valid_kinds: Iterable[str] | None = None,
        source: str = "fault plan",
    ) -> FaultPlan:
        """Build a plan from the parsed TOML shape ``{"fault": [{...}, ...]}``."""
        unknown = set(document) - {"fault"}
        if unknown:
            raise ConfigError(
                f"{source}: unknown top-level key(s) {sorted(unknown)}; use [[fault]] tables"
            )
        entries = document.get("fault", [])
        if not isinstance(entries, list):
            raise ConfigError(f"{source}: 'fault' must be an array of tables ([[fault]])")
        kinds = sorted(valid_kinds) if valid_kinds is not None else None
        return cls(_parse(entry, n, kinds, source) for n, entry in enumerate(entries, start=1))


def load_fault_plan(path: str | Path, *, valid_kinds: Iterable[str] | None = None) -> FaultPlan:
    """Same as :meth:`FaultPlan.load`."""
    return FaultPlan.load(path, valid_kinds=valid_kinds)


def _parse(entry: object, n: int, kinds: list[str] | None, source: str) -> Fault:
    where = f"{source}, fault #{n}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table with keys {list(_FIELDS)}")
    unknown = set(entry) - set(_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {list(_FIELDS)}")
    kind = entry.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ConfigError(f"{where}: 'kind' is required" + _kinds_hint(kinds))
    if kinds is not None and kind not in kinds:
        raise ConfigError(f"{where}: unknown kind {kind!r}" + _kinds_hint(kinds))
    at_bar = _int(entry, "at_bar", where, minimum=0)
    after_orders = _int(entry, "after_orders", where, minimum=0)
    count = _int(entry, "count", where, minimum=1)
    seconds = entry.get("seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ConfigError(f"{where}: 'seconds' must be a number >= 0, got {seconds!r}")
    params = entry.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: 'params' must be a table, got {params!r}")
    return Fault(
        kind=kind,
        at_bar=at_bar,
        after_orders=after_orders,
        seconds=float(seconds),
        count=1 if count is None else count,
        params=dict(params),
    )


def _int(entry: dict[str, Any], key: str, where: str, *, minimum: int) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: {key!r} must be an integer >= {minimum}, got {value!r}")
    return value


def _kinds_hint(kinds: list[str] | None) -> str:
    return f"; valid kinds: {', '.join(kinds)}" if kinds else ""
