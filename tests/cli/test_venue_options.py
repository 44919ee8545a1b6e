"""``[venue]`` settings shared by both venues, parsed before anything connects."""

from __future__ import annotations

import pytest

from ml4t_live.cli.venues import VenueOptions, feed_health
from ml4t_live.errors import ConfigError
from ml4t_live.venues.alpaca.entry import make_feed as alpaca_feed
from ml4t_live.venues.ib.entry import make_feed as ib_feed


def test_feed_health_bounds_reach_both_venue_feeds(monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", "PKTESTKEYID00000000")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "testsecret" * 4)
    extra = {"heartbeat_seconds": 5, "silence_after": "90", "outage_timeout": 60.5}
    assert feed_health(extra) == {"heartbeat_seconds": 5.0, "silence_after": 90.0, "outage_timeout": 60.5}
    ib = ib_feed(VenueOptions("ib", symbols=("AAPL",), extra=extra))
    alpaca = alpaca_feed(VenueOptions("alpaca", symbols=("AAPL",), extra=extra))
    for feed in (ib, alpaca):
        bounds = feed.bounds
        assert (bounds.heartbeat_seconds, bounds.silence_after, bounds.outage_timeout) == (5.0, 90.0, 60.5)


@pytest.mark.parametrize(("key", "value"), [("silence_after", "soon"), ("outage_timeout", 0), ("heartbeat_seconds", -1)])
def test_bad_feed_health_bounds_are_config_errors(key, value):
    with pytest.raises(ConfigError, match=rf"\[venue\] {key} must be"):
        feed_health({key: value})
