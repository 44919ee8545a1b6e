"""AlpacaConfig: which Alpaca endpoint, with which keys, and how politely we talk to it.

Keys come from the environment (``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``) unless passed in
code; never from a command-line argument. Neither key is ever logged: ``repr()`` shows only the
key id's first 4 characters, and :func:`redact` scrubs any 6-character piece of either from any
text we log (error bodies, exception messages, websocket frames).

Endpoints: ``base_url=None`` uses alpaca-py's own paper or live URLs (``paper`` decides). A
``base_url`` such as ``http://127.0.0.1:8765`` (the simulated Alpaca) points every client at one
server: trading REST ``{base}/v2/...``, data REST ``{base}/v2/stocks/...``, trade updates
``ws://.../stream`` and market data ``ws://.../v2/{feed}``.

Live trading (real money) is refused unless ``allow_live`` is set *and* ``confirm_live(account
number)`` returns True. An account counts as live when ``paper`` is False or when its account
number does not start with ``PA`` (Alpaca's paper accounts do), so live keys behind a paper flag
are caught too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ...errors import ConfigError

KEY_ENV = "APCA_API_KEY_ID"
SECRET_ENV = "APCA_API_SECRET_KEY"
_FEEDS = ("iex", "sip")


def _env(name: str) -> str:
    return os.environ.get(name, "")


@dataclass(frozen=True, slots=True)
class AlpacaConfig:
    key_id: str = field(default_factory=lambda: _env(KEY_ENV))
    secret_key: str = field(default_factory=lambda: _env(SECRET_ENV), repr=False)
    paper: bool = True
    base_url: str | None = (
        None  # one URL for all four clients (the simulator); None: alpaca-py's
    )
    feed: str = "iex"
    allow_live: bool = False
    confirm_live: Callable[[str], bool] | None = None
    request_timeout: float = 10.0  # every REST request (alpaca-py itself sets none)
    stream_start_timeout: float = 10.0
    stream_stop_timeout: float = 5.0
    max_requests_per_minute: int = 200  # the client-side token bucket
    rate_limit_burst: int = 20
    max_request_attempts: int = 4  # for requests that are safe to repeat
    #: seconds a request keeps waiting out 429s (from the first one) before it fails; 429s do
    #: not use up max_request_attempts (Alpaca says when to come back; its window is a minute)
    rate_limit_patience: float = 65.0
    reconnect_initial_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    reconnect_jitter: float = 0.5  # each delay is drawn from [d * (1 - jitter), d]
    data_timeout: float | None = (
        None  # silent market-data socket -> reconnect after this long
    )
    order_poll_interval: float = (
        5.0  # open orders + a quiet trade stream -> re-read over REST
    )
    #: a submit of unknown outcome is looked up this many times, one per order_poll_interval,
    #: before it counts as lost (OrderLost): see venues/alpaca/unknown.py
    unknown_order_lookups: int = 5

    def __post_init__(self) -> None:
        if not self.key_id or not self.secret_key:
            raise ConfigError(
                f"Alpaca keys are missing: set {KEY_ENV} and {SECRET_ENV} in the environment "
                "(never on the command line)"
            )
        if self.base_url is not None:
            if self.base_url.endswith("/"):
                raise ConfigError(
                    f"AlpacaConfig.base_url must not end with '/' (alpaca-py would request "
                    f"'//v2/...'): {self.base_url!r}"
                )
            if not self.base_url.startswith(("http://", "https://")):
                raise ConfigError(
                    f"AlpacaConfig.base_url must be http(s)://..., got {self.base_url!r}"
                )
        if self.feed not in _FEEDS:
            raise ConfigError(
                f"AlpacaConfig.feed must be one of {_FEEDS}, got {self.feed!r}"
            )
        for name in (
            "request_timeout",
            "stream_start_timeout",
            "stream_stop_timeout",
            "reconnect_initial_delay",
            "reconnect_max_delay",
            "order_poll_interval",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"AlpacaConfig.{name} must be > 0")
        if self.max_requests_per_minute <= 0 or self.rate_limit_burst <= 0:
            raise ConfigError(
                "AlpacaConfig.max_requests_per_minute and rate_limit_burst must be > 0"
            )
        if self.max_request_attempts < 1:
            raise ConfigError("AlpacaConfig.max_request_attempts must be >= 1")
        if self.rate_limit_patience < 0:
            raise ConfigError("AlpacaConfig.rate_limit_patience must be >= 0 seconds")
        if self.unknown_order_lookups < 1:
            raise ConfigError("AlpacaConfig.unknown_order_lookups must be >= 1")
        if not 0.0 <= self.reconnect_jitter <= 1.0:
            raise ConfigError("AlpacaConfig.reconnect_jitter must be within [0, 1]")
        if self.data_timeout is not None and self.data_timeout <= 0:
            raise ConfigError("AlpacaConfig.data_timeout must be > 0 or None")

    # ------------------------------------------------------------------ endpoints
    @property
    def trading_url(self) -> str | None:
        """``url_override`` for TradingClient (no ``/v2``, no trailing slash)."""
        return self.base_url

    @property
    def data_url(self) -> str | None:
        """``url_override`` for StockHistoricalDataClient."""
        return self.base_url

    @property
    def trade_stream_url(self) -> str | None:
        return None if self.base_url is None else _ws(self.base_url) + "/stream"

    @property
    def data_stream_url(self) -> str | None:
        return None if self.base_url is None else f"{_ws(self.base_url)}/v2/{self.feed}"

    # ------------------------------------------------------------------ live guard
    def is_live_account(self, account_number: str) -> bool:
        return (not self.paper) or not account_number.startswith("PA")

    def secrets(self) -> tuple[str, ...]:
        """What :func:`redact` scrubs: the secret, and the key id too (no output needs either)."""
        return tuple(s for s in (self.secret_key, self.key_id) if s)

    def __repr__(self) -> str:
        return (
            f"AlpacaConfig(key_id='{self.key_id[:4]}***', secret_key='***', paper={self.paper}, "
            f"base_url={self.base_url!r}, feed={self.feed!r}, allow_live={self.allow_live})"
        )


def _ws(base_url: str) -> str:
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :]
    return "ws://" + base_url[len("http://") :]


def redact(text: str, config: AlpacaConfig) -> str:
    """``text`` with every secret, and any piece of one, replaced by ``***``."""
    return scrub(text, config.secrets())


def scrub(text: str, secrets: tuple[str, ...], window: int = 6) -> str:
    """Replace every run of ``text`` that is a piece (>= ``window`` chars) of a secret.

    Pieces matter: ``websockets`` logs frames truncated in the middle (``"...<secret tail>"}}``).
    """
    pieces = {s[i : i + window] for s in secrets for i in range(len(s) - window + 1)}
    if not pieces or len(text) < window:
        return text
    hidden = [False] * len(text)
    for i in range(len(text) - window + 1):
        if text[i : i + window] in pieces:
            for j in range(i, i + window):
                hidden[j] = True
    if not any(hidden):
        return text
    out, i = [], 0
    while i < len(text):
        if hidden[i]:
            while i < len(text) and hidden[i]:
                i += 1
            out.append("***")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A ``logging`` logger for the websockets library that scrubs secrets from every record.

    ``websockets`` logs each frame at DEBUG, the authentication frame included; alpaca-py builds its
    connections with whatever ``logger`` its ``websocket_params`` carry, so the sessions pass this.
    """

    def __init__(self, name: str, secrets: tuple[str, ...]) -> None:
        super().__init__(logging.getLogger(name), {})
        self._secrets = secrets

    def log(self, level: int, msg: object, *args: object, **kwargs: object) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        kwargs.pop("extra", None)
        self.logger.log(level, "%s", scrub(text, self._secrets), **kwargs)  # type: ignore[arg-type]
