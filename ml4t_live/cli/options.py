"""Turning command-line arguments and a TOML file into a strategy, a config and run options.

Pure functions (no printing, no sinks); every problem is a :class:`ConfigError` (exit code 2)
whose message says what is wrong and how to fix it.

A session file holds the same names as the command-line options (``-`` or ``_``), plus two
tables::

    strategy = "strategies/momo.py:Momo"   # relative paths are relative to this file
    data = "bars.parquet"
    speed = 60
    initial_cash = 50_000
    preset = "realistic"
    [params]                # strategy constructor arguments (--param name=value wins)
    fast = 5
    [backtest]              # BacktestConfig.from_dict sections, over the preset
    commission = { model = "percentage", rate = 0.0005 }
    [risk]                  # pre-trade limits and trading-state triggers (ml4t_live.risk)
    max_order_notional = 25_000
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
import tomllib
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ml4t.backtest import BacktestConfig, Strategy

from ml4t_live.errors import ConfigError

#: Option names whose values are paths (resolved against the TOML file's folder).
PATH_KEYS = frozenset({"data", "signals", "context", "session_dir"})
TABLE_KEYS = frozenset({"params", "backtest", "venue", "risk", "notify"})


def parse_param(text: str) -> tuple[str, Any]:
    """``name=value`` -> ``(name, value)``; the value is read as a TOML literal when it is one
    (``5`` -> int, ``0.5`` -> float, ``true`` -> bool, ``[1, 2]`` -> list), else kept as text."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ConfigError(f"--param expects name=value with a Python identifier name, got {text!r}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return name, value


def parse_params(items: Iterable[str] | None) -> dict[str, Any]:
    return dict(parse_param(item) for item in items or ())


def load_toml(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def merge_options(
    cli: Mapping[str, Any], config_path: Path | str | None, allowed: Iterable[str]
) -> dict[str, Any]:
    """Options from ``config_path`` (TOML), overridden by every CLI value that is not None.

    ``allowed`` are the option names the command knows; an unknown key in the file is an error
    (a typo must not be silently ignored). ``params`` merge key by key, the CLI winning.
    """
    allowed = set(allowed)
    merged: dict[str, Any] = {}
    if config_path is not None:
        base = Path(config_path).resolve().parent
        for key, value in load_toml(config_path).items():
            name = key.replace("-", "_")
            if name not in allowed and name not in TABLE_KEYS:
                known = ", ".join(sorted(allowed | TABLE_KEYS))
                raise ConfigError(f"unknown key {key!r} in {config_path}; known keys: {known}")
            if name in TABLE_KEYS and name not in allowed and not isinstance(value, dict):
                raise ConfigError(f"{key!r} in {config_path} must be a table ([{key}])")
            if name in PATH_KEYS and isinstance(value, str):
                value = str(base / value)
            if name == "strategy" and isinstance(value, str):
                value = _resolve_target(value, base)
            merged[name] = value
    params = dict(merged.get("params", {}))
    for name, value in cli.items():
        if name == "params":
            params.update(value or {})
        elif value is not None and value != ():
            merged[name] = value
    merged["params"] = params
    merged.setdefault("backtest", {})
    merged.setdefault("venue", {})
    merged.setdefault("risk", {})
    return merged


def _resolve_target(target: str, base: Path) -> str:
    file_part, sep, cls = target.partition(":")
    if _looks_like_file(file_part) and not Path(file_part).is_absolute():
        return str(base / file_part) + sep + cls
    return target


def _looks_like_file(text: str) -> bool:
    return text.endswith(".py") or "/" in text or "\\" in text


# -- strategy ------------------------------------------------------------------------------
def load_strategy_class(target: str) -> type[Strategy]:
    """``path/to/file.py:ClassName``, ``path/to/file.py`` (its one Strategy subclass) or
    ``package.module:ClassName`` -> the class."""
    if not target:
        raise ConfigError("no strategy given: pass path/to/file.py:ClassName (or strategy= in --config)")
    source, _, class_name = target.partition(":")
    if _looks_like_file(source):
        module = _import_file(Path(source))
    else:
        try:
            module = importlib.import_module(source)
        except ImportError as exc:
            raise ConfigError(
                f"cannot import strategy module {source!r}: {exc}; for a file, pass path/to/file.py:Class"
            ) from exc
    if class_name:
        cls = getattr(module, class_name, None)
        if cls is None:
            found = ", ".join(_strategies_in(module)) or "none"
            raise ConfigError(f"{source} has no class {class_name!r} (Strategy subclasses there: {found})")
    else:
        found = _strategies_in(module)
        if len(found) != 1:
            raise ConfigError(
                f"{source} defines {len(found)} Strategy subclasses ({', '.join(found) or 'none'}); "
                f"name one: {source}:ClassName"
            )
        cls = getattr(module, found[0])
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"{target} is not an ml4t.backtest.Strategy subclass")
    return cls


def strategy_target(cls: type[Strategy], given: str) -> str:
    """A target that loads ``cls`` again from anywhere: an absolute file path or module path."""
    source = given.partition(":")[0]
    if _looks_like_file(source):
        return f"{Path(source).expanduser().resolve()}:{cls.__name__}"
    return f"{cls.__module__}:{cls.__name__}"


def _strategies_in(module: Any) -> list[str]:
    return [
        name
        for name, obj in vars(module).items()
        if isinstance(obj, type)
        and issubclass(obj, Strategy)
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
    ]


def _import_file(path: Path) -> Any:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"strategy file not found: {path}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = f"ml4t_live_user_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the strategy may import its sibling modules
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ConfigError(f"importing strategy file {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def build_strategy(cls: type[Strategy], params: Mapping[str, Any]) -> Strategy:
    """``cls(**params)``; unknown or missing parameters are a ConfigError naming the accepted ones."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        try:
            signature.bind(**params)
        except TypeError as exc:
            accepted = ", ".join(
                f"{p.name}={p.default!r}" if p.default is not p.empty else p.name
                for p in signature.parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            )
            raise ConfigError(
                f"{cls.__name__} does not accept these parameters ({exc}); "
                f"its parameters: {accepted or 'none'}"
            ) from exc
        params = {name: _typed(cls, signature, name, value) for name, value in params.items()}
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cls.__name__}({_kwargs(params)}) failed: {exc}") from exc


_SCALARS = (bool, int, float, str)


def _typed(cls: type, signature: inspect.Signature, name: str, value: Any) -> Any:
    """``value`` as the parameter's declared type (its annotation, else its default's type) when
    that is bool / int / float / str: ``-p lookback=five`` for an ``int`` is a ConfigError before
    anything starts, ``-p rate=5`` for a ``float`` becomes 5.0."""
    param = signature.parameters.get(name)
    if param is None:
        return value
    try:
        hints = typing.get_type_hints(cls.__init__)
    except (NameError, TypeError, AttributeError, SyntaxError):  # unresolvable: the default's type
        hints = {}
    expected = hints.get(name)
    if expected not in _SCALARS:
        default = param.default
        expected = type(default) if default is not param.empty and type(default) in _SCALARS else None
    if expected is None or isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    shown = f" (default {param.default!r})" if param.default is not param.empty else ""
    raise ConfigError(f"{cls.__name__} parameter {name} expects {expected.__name__}{shown}, got {value!r}")


def _kwargs(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


# -- backtest config -----------------------------------------------------------------------
def build_config(
    preset: str | None, initial_cash: float | None, sections: Mapping[str, Any] | None
) -> BacktestConfig:
    """A ``BacktestConfig``: the preset (or defaults), the ``[backtest]`` sections, the cash."""
    try:
        if sections:
            from ml4t.backtest.profiles import get_profile_config

            data = _deep_merge(get_profile_config(preset) if preset else {}, sections)
            config = BacktestConfig.from_dict(data, preset_name=preset, strict=True)
        elif preset:
            config = BacktestConfig.from_preset(preset)
        else:
            config = BacktestConfig()
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"invalid backtest configuration: {exc}") from exc
    if initial_cash is not None:
        if isinstance(initial_cash, bool) or not isinstance(initial_cash, (int, float)):
            raise ConfigError(f"initial cash must be a number, got {initial_cash!r}")
        if initial_cash <= 0:
            raise ConfigError(f"--initial-cash must be positive, got {initial_cash}")
        config.initial_cash = float(initial_cash)
    return config


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
