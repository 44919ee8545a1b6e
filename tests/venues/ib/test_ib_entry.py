"""The CLI seam (venues.ib.entry): options -> IBConfig, and the demo wired to a simulated gateway."""

from __future__ import annotations

import pytest

from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker
from ml4t_live.cli.venues import VenueOptions
from ml4t_live.errors import ConfigError
from ml4t_live.examples import DemoMomentum, demo_bars_path
from ml4t_live.venues.ib import entry


def test_options_map_to_ib_config():
    confirm = lambda account: True
    opts = VenueOptions(
        venue="ib",
        host="10.0.0.5",
        port=4002,
        symbols=("AAPL",),
        live=True,
        confirm_live=confirm,
        extra={"client_id": 7, "account": "U1"},
    )
    cfg = entry.ib_config(opts)
    assert (cfg.host, cfg.port, cfg.client_id, cfg.account) == (
        "10.0.0.5",
        4002,
        7,
        "U1",
    )
    assert cfg.allow_live and cfg.confirm_live is confirm
    paper = entry.ib_config(VenueOptions(venue="ib", confirm_live=confirm))
    assert (paper.port, paper.allow_live, paper.confirm_live) == (7497, False, None)
    assert entry.make_broker(opts, None).mode == "live"
    with pytest.raises(ConfigError, match="--symbols"):
        entry.make_feed(VenueOptions(venue="ib"))


def test_demo_through_the_simulated_gateway_matches_shadow_mode():
    with entry.demo_venue(VenueOptions(venue="ib"), demo_bars_path()) as (broker, feed):
        venue = LiveEngine(DemoMomentum(), broker, feed, session_dir=False).run()
    shadow = LiveEngine(
        DemoMomentum(),
        ShadowBroker(broker.config),
        ReplayFeed(demo_bars_path()),
        session_dir=False,
    ).run()
    assert len(venue.orders) == len(shadow.orders) > 0
    key = lambda f: (f.timestamp, f.asset, f.side, f.quantity, f.price)
    assert sorted(map(key, venue.fills)) == sorted(map(key, shadow.fills))


def test_request_timeout_is_a_venue_key_in_seconds():
    # a slow gateway's remedy (docs/operations.md, [venue] keys): it could not be set from a
    # config file, whose [venue] refused it as an unknown key
    assert "request_timeout" in entry.VENUE_KEYS
    assert entry.ib_config(VenueOptions(venue="ib")).request_timeout == 10.0
    assert entry.ib_config(VenueOptions(venue="ib", extra={"request_timeout": 30})).request_timeout == 30.0
    for bad in ("soon", 0, -1, True):
        with pytest.raises(ConfigError, match=r"\[venue\] request_timeout must be"):
            entry.ib_config(VenueOptions(venue="ib", extra={"request_timeout": bad}))
