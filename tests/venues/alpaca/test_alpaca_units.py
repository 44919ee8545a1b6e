"""Config, the client-side token bucket, reconnect backoff, secret scrubbing, bar grouping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ml4t_live.errors import ConfigError
from ml4t_live.venues.alpaca.bars import (
    Aggregator,
    Group,
    MinuteGrouper,
    floor_label,
    parse_bar_size,
)
from ml4t_live.venues.alpaca.config import (
    KEY_ENV,
    SECRET_ENV,
    AlpacaConfig,
    redact,
    scrub,
)
from ml4t_live.venues.alpaca.rate_limit import RateLimitTimeout, TokenBucket
from ml4t_live.venues.alpaca.session import backoff_delay

T0 = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)


# ------------------------------------------------------------------ config
def test_keys_come_from_the_environment_and_the_secret_is_never_shown(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "PKENV")
    monkeypatch.setenv(SECRET_ENV, "env-secret-value-123")
    config = AlpacaConfig()
    assert (config.key_id, config.secret_key, config.paper, config.base_url) == (
        "PKENV",
        "env-secret-value-123",
        True,
        None,
    )
    assert "env-secret-value-123" not in repr(config) and "***" in repr(config)
    assert (
        redact("body echoed env-secret-value-123 back", config)
        == "body echoed *** back"
    )


def test_missing_keys_are_a_config_error(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with pytest.raises(ConfigError, match=KEY_ENV):
        AlpacaConfig()


def test_one_base_url_points_every_client_at_the_simulator():
    config = AlpacaConfig(
        key_id="k", secret_key="s", base_url="http://127.0.0.1:8765", feed="sip"
    )
    assert (config.trading_url, config.data_url) == (
        "http://127.0.0.1:8765",
        "http://127.0.0.1:8765",
    )
    assert config.trade_stream_url == "ws://127.0.0.1:8765/stream"
    assert config.data_stream_url == "ws://127.0.0.1:8765/v2/sip"
    assert (
        AlpacaConfig(key_id="k", secret_key="s").trade_stream_url is None
    )  # alpaca-py's defaults
    with pytest.raises(ConfigError, match="must not end with '/'"):
        AlpacaConfig(key_id="k", secret_key="s", base_url="http://127.0.0.1:8765/")
    with pytest.raises(ConfigError, match="feed"):
        AlpacaConfig(key_id="k", secret_key="s", feed="crypto")


def test_an_account_is_live_unless_paper_and_a_paper_account_number():
    paper = AlpacaConfig(key_id="k", secret_key="s")
    assert not paper.is_live_account("PA3SIM000001")
    assert paper.is_live_account(
        "3SIM000001"
    )  # live keys behind paper=True are still live
    assert AlpacaConfig(key_id="k", secret_key="s", paper=False).is_live_account(
        "PA3SIM000001"
    )


def test_scrub_hides_any_piece_of_a_secret():
    secret = "abcdefghijklmnopqrstuvwxyz0123"
    assert (
        scrub('"secret_key": "...uvwxyz0123"}', (secret,)) == '"secret_key": "...***"}'
    )
    assert scrub("nothing to hide here", (secret,)) == "nothing to hide here"
    assert scrub("abc", (secret,)) == "abc"


# ------------------------------------------------------------------ token bucket
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_allows_a_burst_then_the_steady_rate():
    clock = FakeClock()
    bucket = TokenBucket(120, 3, clock=clock)  # 2 per second, burst 3
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert bucket.delay() == pytest.approx(0.5)
    clock.now = 0.5
    assert bucket.try_acquire() and not bucket.try_acquire()


def test_acquire_refuses_rather_than_exceed_its_timeout():
    clock = FakeClock()
    bucket = TokenBucket(60, 1, clock=clock)
    assert bucket.acquire(0.0) == 0.0
    with pytest.raises(RateLimitTimeout, match="not sent"):
        bucket.acquire(0.5)  # the next token is 1 s away


def test_a_429_holds_every_caller_until_the_reset():
    clock = FakeClock()
    bucket = TokenBucket(600, 10, clock=clock)
    bucket.hold_until(2.0)
    assert bucket.delay() == pytest.approx(2.0)
    clock.now = 2.0
    assert not bucket.try_acquire()  # the refill restarts from empty after the reset
    clock.now = 2.1
    assert bucket.try_acquire()


def test_reconnect_backoff_grows_is_capped_and_jittered_down():
    config = AlpacaConfig(
        key_id="k",
        secret_key="s",
        reconnect_initial_delay=0.5,
        reconnect_max_delay=4.0,
        reconnect_jitter=0.5,
    )
    for retries, top in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)):
        delays = [backoff_delay(config, retries) for _ in range(50)]
        assert all(top / 2 <= d <= top for d in delays)
        assert (
            len(set(delays)) > 1
        )  # jittered: clients that lost the venue together don't return together


# ------------------------------------------------------------------ bars
def fields(price: float) -> dict:
    return {
        "price": price,
        "open": price,
        "high": price + 1,
        "low": price - 1,
        "close": price,
        "volume": 10.0,
        "signals": {},
    }


def test_a_minute_is_released_when_every_symbol_reported_or_a_later_minute_began():
    grouper = MinuteGrouper(["A", "B"])
    assert grouper.add("A", T0, fields(1)) == []
    (done,) = grouper.add("B", T0, fields(2))
    assert (done.label, sorted(done.data)) == (T0, ["A", "B"])
    assert grouper.add("A", T0 + timedelta(minutes=1), fields(3)) == []
    (older,) = grouper.add(
        "A", T0 + timedelta(minutes=2), fields(4)
    )  # B never traded at 14:31
    assert (older.label, sorted(older.data)) == (T0 + timedelta(minutes=1), ["A"])
    assert (
        grouper.add("B", T0, fields(2)) == [] and grouper.late_dropped == 1
    )  # a repeat
    (flushed,) = grouper.flush()
    assert flushed.label == T0 + timedelta(minutes=2)


def test_bucket_labels_and_aggregation():
    assert (
        parse_bar_size("5Min") == 5
        and parse_bar_size("1Hour") == 60
        and parse_bar_size("1min") == 1
    )
    with pytest.raises(ValueError):
        parse_bar_size("1Day")
    assert floor_label(T0 + timedelta(minutes=7), 5) == T0 + timedelta(minutes=5)
    agg = Aggregator(2)
    assert agg.add(Group(T0, {"A": fields(10)})) == []
    (bar,) = agg.add(Group(T0 + timedelta(minutes=1), {"A": fields(12)}))
    assert bar.label == T0
    assert {
        k: bar.data["A"][k] for k in ("open", "high", "low", "close", "price", "volume")
    } == {"open": 10, "high": 13, "low": 9, "close": 12, "price": 12, "volume": 20}
    assert agg.add(Group(T0 + timedelta(minutes=2), {"A": fields(5)})) == []
    partial, closing = agg.add(
        Group(T0 + timedelta(minutes=5), {"A": fields(6)})
    )  # 14:33, 14:34 never came
    assert (partial.label, closing.label) == (
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=4),
    )
