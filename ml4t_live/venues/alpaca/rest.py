"""The synchronous REST side: alpaca-py's clients with a timeout, behind our budget and retry rules.

alpaca-py's own request loop (``RESTClient._request``) has no timeout at all, retries 429 and 504
with a fixed 3 s sleep that ignores Alpaca's rate-limit headers, and repeats POSTs as well (a 504
*after* the venue created an order becomes a duplicate submit). So the adapter builds the clients
with alpaca-py's retry switched off (a retry-code list no HTTP status matches, through the public
``RESTClient`` constructor), adds a per-request timeout, and applies its own policy here:

* every request first takes a token from the shared :class:`~.rate_limit.TokenBucket`;
* 429 (never ambiguous: the request was refused) -> hold the bucket until Alpaca's
  ``X-RateLimit-Reset`` (or a jittered second) and try again, for any method; 429s do not use up
  ``max_request_attempts`` (the venue says when to come back) but are bounded in time:
  ``AlpacaConfig.rate_limit_patience`` seconds from the first one (Alpaca's window is a minute);
* 5xx, timeouts, dropped or reset connections, and answers that cannot be read (a body cut in
  the middle, an HTML page instead of JSON, JSON of the wrong shape) -> retried only for requests
  that are safe to repeat (reads, a cancel); for a submit or a replace they raise
  :class:`AmbiguousOutcome`, and the gateway looks the order up by its client order id instead of
  sending it again; a read still unreadable after the retries raises :class:`UnreadableAnswer`;
* anything else raises :class:`VenueRequestFailed` with the venue's code and message (secrets
  scrubbed), translated once here.

No exception of alpaca-py, requests, urllib3 or pydantic leaves this module: a raw one carries the
request (its headers hold the API secret) in its traceback frames.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
import urllib3.exceptions
from alpaca.common.enums import BaseURL
from alpaca.common.exceptions import APIError
from alpaca.common.rest import RESTClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.trading.client import TradingClient
from loguru import logger

from ...errors import VenueError
from .config import AlpacaConfig, redact
from .rate_limit import TokenBucket

T = TypeVar("T")
_log = logger.bind(component="alpaca.rest")
_NO_STATUS_MATCHES = [-1]  # alpaca-py retries only statuses in this list: switch it off
_TRANSIENT = {500, 502, 503, 504}
#: the request could not even be built: nothing was sent (a configuration error, never ambiguous)
_NOT_SENT = (requests.exceptions.URLRequired, requests.exceptions.MissingSchema,
             requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL,
             requests.exceptions.InvalidHeader)  # fmt: skip
#: the connection failed, timed out, or the answer arrived cut or unreadable (``requests``'
#: ``ChunkedEncodingError`` and ``JSONDecodeError`` are ``OSError``s too)
_TRANSPORT = (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError)
#: an answer arrived but is not what alpaca-py can parse (pydantic's ``ValidationError`` is a
#: ``ValueError``; an empty body makes alpaca-py call ``Order(**None)``, a ``TypeError``)
_UNREADABLE = (ValueError, TypeError, KeyError)


class VenueRequestFailed(VenueError):
    """Alpaca answered a request with an error (``status``, ``code``, ``message``), or no
    status at all (``status`` None: no answer, or one that cannot be read; ``message`` says which)."""

    def __init__(self, what: str, status: int | None, code: str, message: str) -> None:
        said = f"HTTP {status} code {code or '-'}: " if status is not None else ""
        super().__init__(f"Alpaca {what} failed: {said}{message}")
        self.status = status
        self.code = code
        self.message = message


class UnreadableAnswer(VenueRequestFailed):
    """Alpaca answered a repeatable request, after every retry, with a body alpaca-py cannot read
    (JSON its models reject, an empty body): no HTTP status, but the venue answered; about what
    was asked (one order's payload), never a sign that the venue cannot be asked."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(what, None, "", reason)


class AmbiguousOutcome(VenueError):
    """A non-repeatable request may or may not have reached Alpaca (timeout, 5xx, disconnect)."""


class _TimeoutMixin:
    _ml4t_timeout: float

    def _one_request(self, method: str, url: str, opts: dict, retry: int) -> Any:
        return super()._one_request(
            method, url, {**opts, "timeout": self._ml4t_timeout}, retry
        )  # type: ignore[misc]


class AlpacaTradingClient(_TimeoutMixin, TradingClient):
    """``TradingClient`` with a request timeout and alpaca-py's own retry loop off."""

    def __init__(self, config: AlpacaConfig) -> None:
        base = config.trading_url or (
            BaseURL.TRADING_PAPER if config.paper else BaseURL.TRADING_LIVE
        )
        RESTClient.__init__(
            self,
            base_url=base,
            api_key=config.key_id,
            secret_key=config.secret_key,
            api_version="v2",
            sandbox=config.paper,
            retry_exception_codes=_NO_STATUS_MATCHES,
        )
        self._ml4t_timeout = config.request_timeout


class AlpacaStockDataClient(_TimeoutMixin, StockHistoricalDataClient):
    """``StockHistoricalDataClient`` (warm-up / backfill) with the same rules."""

    def __init__(self, config: AlpacaConfig) -> None:
        RESTClient.__init__(
            self,
            base_url=config.data_url or BaseURL.DATA,
            api_key=config.key_id,
            secret_key=config.secret_key,
            api_version="v2",
            retry_exception_codes=_NO_STATUS_MATCHES,
        )
        self._ml4t_timeout = config.request_timeout


def error_details(exc: APIError, config: AlpacaConfig) -> tuple[int | None, str, str]:
    """(HTTP status, Alpaca code, message) of an APIError, whatever its body looks like."""
    text = redact(str(exc), config)
    try:
        body = json.loads(text)
    except ValueError:
        return exc.status_code, "", text[:500]
    if not isinstance(body, dict):
        return exc.status_code, "", text[:500]
    return (
        exc.status_code,
        str(body.get("code", "")),
        str(body.get("message", text))[:500],
    )


class RestCaller:
    """Runs one alpaca-py REST call under the budget and the retry policy above."""

    def __init__(self, config: AlpacaConfig, bucket: TokenBucket) -> None:
        self._config = config
        self._bucket = bucket
        self._stop = threading.Event()
        self.rate_limited = 0  # 429s seen (for reports and tests)
        self.retried = 0

    def close(self) -> None:
        self._stop.set()

    def __call__(self, what: str, fn: Callable[[], T], *, repeatable: bool) -> T:
        attempts = self._config.max_request_attempts
        attempt, patient_until = 0, None
        while attempt < attempts:
            attempt += 1
            self._bucket.acquire(self._config.request_timeout)
            try:
                return fn()
            except APIError as exc:
                status, code, message = error_details(exc, self._config)
                if status == 429:
                    now = time.monotonic()
                    patient_until = patient_until or now + self._config.rate_limit_patience
                    if now < patient_until:
                        self.rate_limited += 1
                        self._hold_for_reset(exc)
                        attempt -= 1  # a refusal with a time to come back, not a failure
                        continue
                if status in _TRANSIENT:
                    if not repeatable:
                        raise AmbiguousOutcome(
                            f"Alpaca {what}: HTTP {status} ({message})"
                        ) from None
                    if attempt < attempts:
                        self._pause(attempt, what, f"HTTP {status}")
                        continue
                raise VenueRequestFailed(what, status, code, message) from None
            except _NOT_SENT as exc:
                raise VenueRequestFailed(what, None, "", self._reason(exc)) from None
            except (*_TRANSPORT, *_UNREADABLE) as exc:
                reason = self._reason(exc)
                if not repeatable:
                    raise AmbiguousOutcome(f"Alpaca {what}: {reason}") from None
                if attempt < attempts:
                    self._pause(attempt, what, reason)
                    continue
                if isinstance(exc, _UNREADABLE) and not isinstance(exc, _TRANSPORT):
                    raise UnreadableAnswer(what, reason) from None
                raise VenueRequestFailed(what, None, "", reason) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _reason(self, exc: BaseException) -> str:
        """One line naming what went wrong, secrets scrubbed (never the request or its headers)."""
        kind = type(exc).__name__
        if isinstance(exc, _UNREADABLE) and not isinstance(exc, _TRANSPORT):
            kind = f"unreadable answer ({kind})"
        text = " ".join(str(exc).split())[:300]
        return redact(f"{kind}: {text}", self._config)

    def _hold_for_reset(self, exc: APIError) -> None:
        delay = 1.0
        response = exc.response
        reset = (
            response.headers.get("X-RateLimit-Reset") if response is not None else None
        )
        if reset:
            try:
                delay = float(reset) - time.time()
            except ValueError:
                pass
        delay = min(max(delay, 0.05), 60.0) * (1.0 + 0.2 * random.random())
        _log.warning("Alpaca answered 429; holding all requests for {:.2f}s", delay)
        self._bucket.hold_until(time.monotonic() + delay)

    def _pause(self, attempt: int, what: str, reason: str) -> None:
        cfg = self._config
        delay = min(
            cfg.reconnect_initial_delay * 2 ** (attempt - 1), cfg.reconnect_max_delay
        )
        delay *= 1.0 - cfg.reconnect_jitter * random.random()
        self.retried += 1
        _log.warning(
            "Alpaca {} failed ({}); retry {} in {:.2f}s", what, reason, attempt, delay
        )
        self._stop.wait(delay)
