"""What the journal stores, as msgpack-able values, and back.

Bars (timestamps, per-asset dicts, signals), venue events (the frozen dataclasses of
:mod:`ml4t_live.events`) and command arguments round-trip through :func:`encode` / :func:`decode`:
a timestamp comes back with its type (``datetime`` or ``pd.Timestamp``) and time zone, an event
as the same dataclass, an ``OrderSide`` / ``OrderType`` as the enum.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from ml4t.backtest import OrderSide, OrderType

from .. import events as _events

_EVENT_TYPES = {
    name: cls
    for name, cls in vars(_events).items()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == _events.__name__
}
_ENUMS = {"OrderSide": OrderSide, "OrderType": OrderType}


def _zone(tz: Any) -> str | None:
    """A zone name to restore (``America/New_York``); None for naive and fixed-offset stamps,
    which the ISO text restores exactly."""
    if tz is None or isinstance(tz, timezone):
        return None
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    return key or str(tz)


def encode(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, pd.Timestamp):
        return {"__ts__": value.isoformat(), "tz": _zone(value.tzinfo), "pd": True}
    if isinstance(value, datetime):
        return {"__ts__": value.isoformat(), "tz": _zone(value.tzinfo), "pd": False}
    if isinstance(value, Enum):
        return {"__enum__": type(value).__name__, "v": value.value}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__event__": type(value).__name__, "f": fields}
    if isinstance(value, dict):
        return {"__map__": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return encode(item())
    return str(value)


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__map__" in value:
        return {decode(k): decode(v) for k, v in value["__map__"]}
    if "__ts__" in value:
        return _timestamp(value["__ts__"], value.get("tz"), value.get("pd", False))
    if "__enum__" in value:
        enum = _ENUMS.get(value["__enum__"])
        return enum(value["v"]) if enum is not None else value["v"]
    if "__event__" in value:
        cls = _EVENT_TYPES[value["__event__"]]
        return cls(**{k: decode(v) for k, v in value["f"].items()})
    return {k: decode(v) for k, v in value.items()}


def _timestamp(text: str, zone: str | None, as_pandas: bool) -> Any:
    stamp = datetime.fromisoformat(text)
    if zone is not None and stamp.tzinfo is not None:
        try:
            stamp = stamp.astimezone(ZoneInfo(zone))
        except (KeyError, ValueError):  # a fixed offset such as "UTC+01:00": keep the offset
            pass
    return pd.Timestamp(stamp) if as_pandas else stamp
