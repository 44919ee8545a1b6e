"""What the journal stores, as msgpack bytes, and back.

Bars (timestamps, per-asset dicts, signals), venue events (the frozen dataclasses of
:mod:`ml4t_live.events`) and command arguments round-trip through :func:`pack` / :func:`unpack`:
plain values are msgpack's own (fast, in C); a timestamp comes back with its type (``datetime`` or
``pd.Timestamp``; ``np.datetime64`` as ``pd.Timestamp``) and time zone, ``NaT``, dates, durations,
decimals and numpy arrays as themselves, an event as the same dataclass, an ``OrderSide`` /
``OrderType`` as the enum, a numpy scalar as its Python value, a tuple as a list. Anything else is
kept as its text, with a warning (once per type). An event comes back with every field it was
stored with: a journal holding a field this copy's event class does not have (written by a newer
copy) cannot be read (``TypeError``; docs/operations.md, rolling back).
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import numpy as np
import pandas as pd
from loguru import logger
from ml4t.backtest import OrderSide, OrderType

from .. import events as _events

_EVENT_TYPES = {
    name: cls
    for name, cls in vars(_events).items()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == _events.__name__
}
_ENUMS = {"OrderSide": OrderSide, "OrderType": OrderType}
_WARNED: set[str] = set()
_log = logger.bind(component="journal")


def pack(value: Any) -> bytes:
    return msgpack.packb(value, default=_default)


def unpack(blob: bytes) -> Any:
    return msgpack.unpackb(blob, strict_map_key=False, object_hook=_object_hook)


def _zone(tz: Any) -> str | None:
    """A zone name to restore (``America/New_York``); None for naive and fixed-offset stamps,
    which the ISO text restores exactly."""
    if tz is None or isinstance(tz, timezone):
        return None
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    return key or str(tz)


def _default(value: Any) -> Any:
    """msgpack calls this for what it cannot pack itself."""
    if value is pd.NaT:
        return {"__nat__": True}
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, datetime):  # pd.Timestamp included
        return {"__ts__": value.isoformat(), "tz": _zone(value.tzinfo), "pd": isinstance(value, pd.Timestamp)}
    if isinstance(value, Enum):
        return {"__enum__": type(value).__name__, "v": value.value}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # a compare=False field is a process-local detail (an event's receive time): not journaled,
        # unless its metadata says ``journal`` (an execution's venue order id)
        return {"__event__": type(value).__name__,
                "f": {f.name: getattr(value, f.name) for f in dataclasses.fields(value)
                      if f.compare or f.metadata.get("journal")}}  # fmt: skip
    if isinstance(value, date):
        return {"__date__": value.isoformat()}
    if isinstance(value, timedelta):  # pd.Timedelta included
        return {"__td__": value.total_seconds(), "pd": isinstance(value, pd.Timedelta)}
    if isinstance(value, Decimal):
        return {"__dec__": str(value)}
    if isinstance(value, np.ndarray):
        return {"__nd__": value.tolist(), "dtype": str(value.dtype)}
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    kind = type(value).__name__
    if kind not in _WARNED:
        _WARNED.add(kind)
        _log.warning("the journal keeps a {} as its text: a warm restart shows the strategy that "
                     "text (and fails closed if it then decides differently)", kind)
    return str(value)


def _object_hook(value: dict) -> Any:
    if "__nat__" in value:
        return pd.NaT
    if "__date__" in value:
        return date.fromisoformat(value["__date__"])
    if "__td__" in value:
        seconds = value["__td__"]
        return pd.Timedelta(seconds=seconds) if value.get("pd") else timedelta(seconds=seconds)
    if "__dec__" in value:
        return Decimal(value["__dec__"])
    if "__nd__" in value:
        return np.array(value["__nd__"], dtype=value["dtype"])
    if "__ts__" in value:
        return _timestamp(value["__ts__"], value.get("tz"), value.get("pd", False))
    if "__enum__" in value:
        enum = _ENUMS.get(value["__enum__"])
        return enum(value["v"]) if enum is not None else value["v"]
    if "__event__" in value:
        return _EVENT_TYPES[value["__event__"]](**value["f"])
    return value


def _timestamp(text: str, zone: str | None, as_pandas: bool) -> Any:
    stamp = datetime.fromisoformat(text)
    if zone is not None and stamp.tzinfo is not None:
        try:
            stamp = stamp.astimezone(ZoneInfo(zone))
        except (KeyError, ValueError):  # not a zone database name: the ISO offset stands
            pass
    return pd.Timestamp(stamp) if as_pandas else stamp


#: the context key that flags a journaled catch-up bar
_CATCH_UP = "__catch_up__"


def pack_bar(timestamp: Any, data: dict, context: dict, catch_up: bool = False) -> bytes:
    """A bar's journal payload (a catch-up bar is flagged in its context)."""
    return pack([timestamp, data, {**context, _CATCH_UP: True} if catch_up else context])


def unpack_bar(payload: bytes) -> tuple[Any, dict, dict, bool]:
    """(timestamp, data, context, catch_up) of a bar's journal payload."""
    timestamp, data, context = unpack(payload)
    catch_up = bool(context.pop(_CATCH_UP, False)) if isinstance(context, dict) else False
    return timestamp, data, context, catch_up
