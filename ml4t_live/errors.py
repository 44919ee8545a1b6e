"""The exception tree of ml4t_live.

Every failure a caller can see is one of these, translated once at the boundary where it
happened (``raise X(...) from exc``)::

    Ml4tLiveError
    ├── ConfigError                 bad arguments, config files or data (CLI exit code 2)
    │   ├── LiveTradingRefused      a live account without the explicit live opt-in
    │   └── JournalLocked           another process runs this strategy on this account
    ├── StrategyError               the strategy raised in a hook (CLI exit code 1)
    ├── VenueError                  the broker / feed side failed (CLI exit code 3)
    │   ├── ConnectionFailed        could not connect, or lost the connection for good
    │   │   └── LookupIncomplete    a look-up by client order id read some orders, not all
    │   ├── SendFailed              a gateway's place raised a bug, not a venue answer (outcome unknown)
    │   ├── ChangeDeferred          a modify that cannot be made yet, a routine wait (nothing sent)
    │   ├── CancelRefused           the venue refused a cancel (the order is already filled / done)
    │   ├── CancelUnsure            a gateway's cancel raised a bug, not a venue answer (sent or not: unknown)
    │   ├── ReconciliationError     venue state does not match what the engine expects: fail closed
    │   └── FeedStalled             no bar and no heartbeat within the configured time
    └── BridgeError                 misuse or failure of a worker loop thread
        ├── BridgeTimeout           a blocking call did not finish in time (its task is cancelled)
        ├── BridgeClosed            the loop thread is closed or closing
        └── WrongThread             a blocking call made from the loop's own thread

Rejected orders are not exceptions: they arrive as ``OrderStatus.REJECTED`` on the order the
strategy holds, exactly as in ml4t.backtest.
"""

from __future__ import annotations


class Ml4tLiveError(Exception):
    """Base class of every error ml4t_live raises on purpose."""


class ConfigError(Ml4tLiveError):
    """Arguments, configuration files or input data are not usable."""


class LiveTradingRefused(ConfigError):
    """A live (real-money) account was reached without the explicit live opt-in."""


class JournalLocked(ConfigError):
    """Another process runs the same strategy on the same venue account (its journal is locked)."""


class StrategyError(Ml4tLiveError):
    """The strategy raised inside one of its hooks; the original is the ``__cause__``."""

    def __init__(self, message: str, *, hook: str, timestamp: object = None,
                 strategy_file: str | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.hook = hook
        self.timestamp = timestamp
        self.strategy_file = strategy_file  # whose frames a report shows first


class VenueError(Ml4tLiveError):
    """The venue (broker or feed) side failed."""


class ConnectionFailed(VenueError):
    """The venue could not be reached, or the connection was lost and not restored."""


class LookupIncomplete(ConnectionFailed):
    """A gateway's ``lookup`` by client order id could not read some of the ids (``unread``: each
    id with why; their state is unknown, never absent) and read the others: ``found`` is what it
    found of those, as its answer would have been (reported as events the same way). A caller
    that catches only ConnectionFailed takes the whole look-up as failed, which stays safe."""

    def __init__(self, message: str, found: dict, unread: dict[str, str]) -> None:
        super().__init__(message)
        self.found = found
        self.unread = unread


class ChangeDeferred(VenueError):
    """A gateway's ``modify`` that cannot be made yet, a routine wait (Alpaca: the order's last
    replace is not checked yet, as right after a restart's bring-back; or the order, a submit of
    unknown outcome, is found but its report is not on the queue yet): nothing was sent, the order
    works unchanged, and a change asked again at a later bar is tried then. Logged as a WARNING; a
    real refusal of a change is any other VenueError (an ERROR)."""


class SendFailed(VenueError):
    """A venue gateway's ``place`` raised something other than a venue's or the bridge's error (a
    bug in the order path): the order's outcome is unknown. Journaled with the order, so a warm
    restart raises it again at the same place of the hook; the engine never treats that replay
    as a new failure (the run that journaled it already did)."""


class CancelRefused(VenueError):
    """The venue refused a cancel because the order can no longer be cancelled (filled, done);
    the order's real outcome arrives as its events. ``ended``: the state the venue said the order
    is in already, when it named one (Alpaca's 422 ``order is already in "canceled" state``:
    ``"canceled"``), else None."""

    def __init__(self, message: str, *, ended: str | None = None) -> None:
        super().__init__(message)
        self.ended = ended


class CancelUnsure(VenueError):
    """A venue gateway's cancel of one order raised something other than a venue's or the bridge's
    error (a bug in the cancel path): whether the cancel went out is unknown. The original is the
    ``__cause__``. The runtime's own cancel (a halt, the end of the run) takes the order as
    cancelling; the strategy's ``cancel_order`` answers False and the order stays PENDING, followed
    as a refused runtime cancel (:attr:`~ml4t_live.cancel_resends.CancelResends.refused_open`); a
    surfaced lost order's cancel is followed as sent. Either way the cancel checks read the venue
    and send the cancel again while it lists the order working (:mod:`~ml4t_live.cancel_resends`);
    the cancel of an order declared lost is not taken."""

    @classmethod
    def of_bug(cls, text: str, bug: Exception) -> CancelUnsure:
        """The outcome of a cancel that raised ``bug``: ``text`` says so, ``bug`` is its cause."""
        unsure = cls(text)
        unsure.__cause__ = bug
        return unsure

    def said(self) -> str:
        """What the cancel did, for a log line: "raised a bug (<its type>)" when the gateway's
        cancel raised one (the ``__cause__``), else "was unsure (<its text>)" (a gateway that
        raised CancelUnsure itself)."""
        bug = self.__cause__
        return f"raised a bug ({type(bug).__name__})" if bug is not None else f"was unsure ({self})"


class ReconciliationError(VenueError):
    """Venue state and engine state disagree; trading is refused until a human looks."""


class FeedStalled(VenueError):
    """The feed delivered neither a bar nor a heartbeat within the configured time."""


class BridgeError(Ml4tLiveError):
    """A worker loop thread was misused or failed."""


class BridgeTimeout(BridgeError, TimeoutError):
    """A blocking call through the bridge did not complete in time; its task was cancelled."""


class BridgeClosed(BridgeError):
    """The loop thread is closed (or closing) and accepts no more calls."""


class WrongThread(BridgeError):
    """A blocking bridge call was made from the loop's own thread (it would deadlock)."""
