"""The CLI seam (ml4t_live.venues.alpaca.entry): options -> config, feed, broker, demo venue."""

from __future__ import annotations

import pytest
from alpaca_helpers import minute_bars
from ml4t.backtest import Strategy

from ml4t_live import LiveEngine
from ml4t_live.cli.venues import VenueOptions
from ml4t_live.errors import ConfigError
from ml4t_live.venues.alpaca import entry
from ml4t_live.venues.alpaca.config import KEY_ENV, SECRET_ENV


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "PKFROMENV")
    monkeypatch.setenv(SECRET_ENV, "secret-from-the-environment")


def test_options_point_every_client_at_host_and_port_with_keys_from_the_environment():
    options = VenueOptions(
        "alpaca",
        host="127.0.0.1",
        port=9001,
        symbols=("AAPL", "MSFT"),
        bar_size="5 mins",
        extra={
            "warmup_bars": 3,
            "tz": "America/New_York",
            "end": "2026-11-23T21:00:00Z",
        },
    )
    config = entry.alpaca_config(options)
    assert (config.base_url, config.key_id, config.paper, config.allow_live) == (
        "http://127.0.0.1:9001",
        "PKFROMENV",
        True,
        False,
    )
    feed = entry.make_feed(options)
    assert (feed.symbols, feed.minutes, feed.warmup_bars, str(feed.tz)) == (
        ["AAPL", "MSFT"],
        5,
        3,
        "America/New_York",
    )
    assert feed.end is not None and feed.end.hour == 21
    broker = entry.make_broker(options, None)
    assert (
        broker.mode == "paper"
        and broker.gateway.config.base_url == "http://127.0.0.1:9001"
    )


def test_live_needs_the_flag_and_keeps_the_confirmation():
    asked = []
    options = VenueOptions(
        "alpaca", live=True, confirm_live=lambda account: asked.append(account) or True
    )
    config = entry.alpaca_config(options)
    assert (config.paper, config.allow_live, config.base_url) == (False, True, None)
    assert config.confirm_live("123") and asked == ["123"]
    assert entry.make_broker(options, None).mode == "live"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (VenueOptions("alpaca"), "--symbols"),
        (VenueOptions("alpaca", symbols=("AAPL",), bar_size="1 day"), "bar-size"),
        (
            VenueOptions(
                "alpaca", symbols=("AAPL",), extra={"end": "2026-11-23T21:00:00"}
            ),
            "time zone",
        ),
    ],
)
def test_bad_feed_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        entry.make_feed(options)


class BuyOnce(Strategy):
    def on_data(self, timestamp, data, context, broker):
        if broker.get_position("AAPL") is None and not broker.get_pending_orders():
            broker.submit_order("AAPL", 5)


def test_the_demo_venue_runs_a_strategy_end_to_end(tmp_path):
    bars = tmp_path / "bars.parquet"
    minute_bars(6, {"AAPL": 100.0}).write_parquet(bars)
    with entry.demo_venue(VenueOptions("alpaca"), bars) as (broker, feed):
        result = LiveEngine(BuyOnce(), broker, feed, session_dir=False).run()
    assert [(f.asset, f.quantity, f.price) for f in result.fills] == [
        ("AAPL", 5.0, 101.0)
    ]
