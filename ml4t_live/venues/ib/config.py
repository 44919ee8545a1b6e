"""IBConfig: where the TWS / IB Gateway API listens, who we are on it, and how we behave.

Paper vs live is decided from the account the gateway reports (paper accounts start with ``DU``),
never from the port. A live account is refused unless ``allow_live`` is set *and*
``confirm_live(account_id)`` returns True.

Connections: the order gateway uses ``client_id``; the feed opens its own connection with
``feed_client_id`` (default ``client_id + 1``), on its own loop thread, so bars and orders never
queue behind each other and either side can reconnect alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError


@dataclass(frozen=True, slots=True)
class IBConfig:
    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 1
    feed_client_id: int | None = None
    account: str = ""  # empty: the single account the gateway manages
    connect_timeout: float = 10.0  # ib_async connectAsync (handshake + startup sync)
    request_timeout: float = 10.0  # every other bridge call / ib_async request
    commission_wait: float = (
        2.0  # seconds to wait for a commissionReport before reporting a fill without it
    )
    # cancel(): how long to wait for IB's answer (confirmed, refused with 10147/10148/161, or
    # the order filled first; at most request_timeout); after it the cancel stands as sent and its
    # outcome arrives as events
    cancel_wait: float = 2.0
    # An order IB has not answered at all (no openOrder / orderStatus / error / execution) is looked
    # up by orderRef (open orders, completed orders, executions) every interval; after this many
    # look-ups that did not find it, it is reported lost (OrderLost) and never re-sent (IB-09).
    inflight_check_interval: float = 2.0
    inflight_checks: int = 3
    allow_live: bool = False
    confirm_live: Callable[[str], bool] | None = None
    reconnect: bool = True
    reconnect_initial_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    reconnect_backoff: float = 2.0
    reconnect_max_attempts: int = 0  # 0: keep trying until closed
    # ib_async's own pacing (45 messages/s, under IB's 50/s limit). 0 disables it: only for a
    # simulated gateway replaying faster than real time, never against a real TWS / Gateway.
    max_requests_per_second: int = 45
    history_retries: int = (
        2  # an empty historical answer (e.g. pacing error 162) is retried
    )
    history_retry_delay: float = 2.0  # seconds, doubled per retry
    exchange: str = "SMART"
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"IBConfig.port must be a TCP port, got {self.port}")
        if self.feed_client_id is not None and self.feed_client_id == self.client_id:
            raise ConfigError(
                "IBConfig.feed_client_id must differ from client_id: IB refuses a second "
                "connection with a client id that is in use (error 326)"
            )
        for name in (
            "connect_timeout",
            "request_timeout",
            "reconnect_initial_delay",
            "cancel_wait",
            "inflight_check_interval",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"IBConfig.{name} must be > 0")
        if self.inflight_checks < 1:
            raise ConfigError("IBConfig.inflight_checks must be >= 1")
        if self.reconnect_backoff < 1.0:
            raise ConfigError("IBConfig.reconnect_backoff must be >= 1")

    @property
    def effective_feed_client_id(self) -> int:
        return (
            self.client_id + 1 if self.feed_client_id is None else self.feed_client_id
        )

    def backoff_delays(self):  # type: ignore[no-untyped-def]
        """Delays between reconnect attempts: initial, initial*backoff, ... capped at max."""
        delay = self.reconnect_initial_delay
        attempt = 0
        while self.reconnect_max_attempts == 0 or attempt < self.reconnect_max_attempts:
            yield delay
            attempt += 1
            delay = min(delay * self.reconnect_backoff, self.reconnect_max_delay)


def whole_number(value: Any) -> int | None:
    """An integer setting as a session file gives it (an integer, or a string of digits), else
    None: 11.5 is not read as 11, nor true as 1 (a client id IB would take for another)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdecimal() else None
