"""Submitting one order to Alpaca, and resolving an ambiguous outcome by client order id.

Part of :class:`~.gateway.AlpacaGateway` (engine thread). The rule: every order carries our
deterministic ``client_order_id``; after an ambiguous outcome (timeout, 5xx, dropped connection)
the order is looked up by that id, and only a 404 (Alpaca never saw it) allows sending it again,
which Alpaca's uniqueness rule (422 on a reused id) makes safe even if the first attempt lands
late. An outcome that stays unknown (the look-ups fail too) is never reported as a rejection: the
order stays in flight and :class:`~.order_stream.OrderStream` keeps looking it up.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from ...errors import VenueError
from ...events import VenueErrorReported
from .rest import AlpacaTradingClient, AmbiguousOutcome, VenueRequestFailed

_log = logger.bind(component="alpaca.gateway")
VENUE = "alpaca"


class OrderRefused(VenueError):
    """Alpaca (or the adapter, before sending) refused the order; nothing is working at the venue."""


class SubmitMixin:
    """Needs ``rest``, ``tracker``, ``stream``, ``_venue_ids``, ``_require()``, ``_emit()``."""

    rest: Any
    tracker: Any
    stream: Any
    _venue_ids: dict[str, str]

    def _require(
        self,
    ) -> AlpacaTradingClient:  # pragma: no cover - provided by the gateway
        raise NotImplementedError

    def _emit(
        self, events: list[Any]
    ) -> None:  # pragma: no cover - provided by the gateway
        raise NotImplementedError

    def _submit(self, cid: str, body: Any, *, also: str | None = None) -> Any:
        client = self._require()
        self.tracker.register(cid)
        if also is not None:
            self.tracker.register(also)
        try:
            order = self.rest(
                "submit " + cid, lambda: client.submit_order(body), repeatable=False
            )
        except AmbiguousOutcome as exc:
            _log.warning(
                "submit of {} is ambiguous ({}); looking it up by client order id",
                cid,
                exc,
            )
            order = self._resolve(cid, body)
            if order is None:
                return None
        except VenueRequestFailed as exc:
            if exc.status != 422 or "client_order_id" not in exc.message.replace(
                " ", "_"
            ):
                raise OrderRefused(
                    f"Alpaca refused {cid}: {exc.message} (code {exc.code})"
                ) from None
            # our id is already there (an earlier attempt, or an earlier run): adopt that
            # order, never a second one; its fills from before we knew it are in the account
            order = self._lookup(cid)
            if order is None:
                raise OrderRefused(f"Alpaca refused {cid}: {exc.message}") from None
            self._venue_ids[cid] = str(order.id)
            self._emit(self.tracker.adopt(order))
            return order
        self._venue_ids[cid] = str(order.id)
        self._emit(self.tracker.on_order_snapshot(order))
        return order

    def _resolve(self, cid: str, body: Any) -> Any:
        """The order Alpaca has under ``cid`` after an ambiguous submit, or None if still unknown.

        Unknown (the lookups fail too) is never reported as a rejection: the order may be working.
        It stays in flight, and the stream's watchdog keeps looking it up until Alpaca answers.
        """
        try:
            found = self._lookup(cid)
            if found is not None:
                _log.info(
                    "order {} had reached Alpaca ({}); adopted", cid, found.status.value
                )
                return found
            client = self._require()
            try:  # the venue never saw it; a late arrival of the first attempt would now be a 422
                return self.rest(
                    "resubmit " + cid,
                    lambda: client.submit_order(body),
                    repeatable=False,
                )
            except (AmbiguousOutcome, VenueRequestFailed) as exc:
                found = self._lookup(cid)
                if found is not None:
                    return found
                if isinstance(exc, VenueRequestFailed) and exc.status not in (
                    None,
                    429,
                ):
                    raise OrderRefused(f"Alpaca refused {cid}: {exc.message}") from None
                raise AmbiguousOutcome(str(exc)) from None
        except (AmbiguousOutcome, VenueRequestFailed) as exc:
            self.stream.unresolved[cid] = 0
            self._emit(
                [
                    VenueErrorReported(
                        VENUE, "submit_unconfirmed", f"{cid}: {exc}; still looking", cid
                    )
                ]
            )
            _log.error(
                "cannot tell whether Alpaca has order {} ({}); it stays in flight",
                cid,
                exc,
            )
            return None

    def _lookup(self, cid: str, client: AlpacaTradingClient | None = None) -> Any:
        client = client or self._require()
        try:
            return self.rest(
                "lookup " + cid,
                lambda: client.get_order_by_client_id(cid),
                repeatable=True,
            )
        except VenueRequestFailed as exc:
            if exc.status == 404:
                return None
            raise
