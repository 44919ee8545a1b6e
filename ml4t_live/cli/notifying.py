"""A run's notifications (``[notify]``, see :mod:`ml4t_live.notify`): started, wired, closed.

``start`` and ``end_of_day`` come from here (around ``engine.run()``), as does ``error`` when
the run fails; ``halt`` from the trading state after each bar; venue events (fills, rejections,
broker disconnects) from the broker's ``observer``; feed disconnects from the feed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ml4t_live.notify import Notifier, NotifyConfig, ObservedFeed


def create(table: Any) -> Notifier | None:
    """The run's notifier (not started yet), or None without ``[notify] urls``."""
    config = NotifyConfig.from_table(table)
    return None if config is None else Notifier(config)


def wire(notifier: Notifier | None, broker: Any, feed: Any, progress: Callable[[Any], None] | None) -> tuple[Any, Any]:
    """The feed and progress callback the engine gets (unchanged without notifications)."""
    if notifier is None:
        return feed, progress
    if hasattr(broker, "observer"):
        broker.observer = notifier.observe

    def after_bar(p: Any) -> None:
        if progress is not None:
            progress(p)
        own = getattr(broker, "own", None)
        if own is not None and own.journal is not None:
            notifier.trading_state(own.trading_state, own.journal.meta("trading_state_reason", "") or "")

    return ObservedFeed(feed, notifier), after_bar


def run(engine: Any, notifier: Notifier | None, name: str, mode: str) -> Any:
    """``engine.run()`` between a ``start`` and an ``end_of_day`` (or ``error``) message; the
    sender gets ``[notify] timeout`` seconds for what is still queued, then stops."""
    if notifier is None:
        return engine.run()
    notifier.strategy = str(getattr(engine.broker, "strategy_id", None) or name)
    notifier.start()
    try:
        return _run(engine, notifier, mode)
    finally:
        notifier.close()


def _run(engine: Any, notifier: Notifier, mode: str) -> Any:
    notifier.emit("start", f"{notifier.strategy} starts in {mode} mode", mode=mode,
                  venue=getattr(engine.broker, "venue", "shadow"))  # fmt: skip
    try:
        result = engine.run()
    except BaseException as exc:
        notifier.emit("error", f"the run failed: {type(exc).__name__}: {exc}", error=f"{type(exc).__name__}: {exc}")
        raise
    m = result.metrics
    notifier.emit("end_of_day", f"{notifier.strategy} stopped ({result.stopped_reason}) after {result.bars} bars: "
                  f"{m['num_fills']} fills, equity {m['final_value']:,.2f}",
                  stop_reason=result.stopped_reason, bars=result.bars, orders=m["num_orders"],
                  fills=m["num_fills"], final_equity=round(m["final_value"], 2),
                  return_pct=round(m["total_return_pct"], 4), strategy_errors=m["num_strategy_errors"],
                  left_at_venue=len(m.get("left_at_venue", [])))  # fmt: skip
    return result
