"""RiskConfig.from_table: the [risk] table of issue 10, its defaults, and every way to get it wrong."""

from __future__ import annotations

import tomllib

import pytest

from ml4t_live.errors import ConfigError
from ml4t_live.risk import RiskConfig, parse_duration

ISSUE_TABLE = """
[risk]
max_order_notional = 25_000
max_order_quantity = 1_000
max_position_notional = 50_000
max_gross_exposure = 1.5
max_open_orders = 20
max_orders_per_minute = 60
price_collar = 0.05
max_daily_loss = 2_000
max_drawdown = 0.1
max_data_age = "2m"
max_strategy_errors = 5
allow_short = false
"""


def test_the_issue_table_reads_every_key():
    config = RiskConfig.from_table(tomllib.loads(ISSUE_TABLE)["risk"])
    assert config == RiskConfig(
        max_order_notional=25_000.0, max_order_quantity=1_000.0, max_position_notional=50_000.0,
        max_gross_exposure=1.5, max_open_orders=20, max_orders_per_minute=60, price_collar=0.05,
        max_daily_loss=2_000.0, max_drawdown=0.1, max_data_age=120.0, max_strategy_errors=5,
        allow_short=False,
    )  # fmt: skip
    assert config.max_orders_per_second == 10  # ceil(60 / 6)


def test_no_table_means_no_limits_but_the_documented_defaults():
    for table in (None, {}):
        config = RiskConfig.from_table(table)
        assert config.max_orders_per_minute == 3_000 and config.max_orders_per_second == 500
        assert config.max_strategy_errors == 5
        assert config.allow_short is False
        unlimited = ("max_order_notional", "max_order_quantity", "max_position_notional", "max_gross_exposure",
                     "max_open_orders", "price_collar", "max_daily_loss", "max_drawdown", "max_data_age")  # fmt: skip
        assert all(getattr(config, name) is None for name in unlimited)


def test_allow_short_follows_the_backtest_config_unless_set():
    assert RiskConfig.from_table({}, allow_short_default=True).allow_short is True
    assert RiskConfig.from_table({"allow_short": False}, allow_short_default=True).allow_short is False
    assert RiskConfig.from_table({"allow_short": True}).allow_short is True


def test_dashes_and_underscores_are_the_same_key():
    assert RiskConfig.from_table({"max-open-orders": 3}).max_open_orders == 3


def test_the_burst_cap_rounds_up():
    assert RiskConfig(max_orders_per_minute=1).max_orders_per_second == 1
    assert RiskConfig(max_orders_per_minute=61).max_orders_per_second == 11
    assert RiskConfig(max_orders_per_minute=None).max_orders_per_second is None


def test_an_unknown_key_is_an_error_naming_it_and_the_known_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'max_order_notinal' in \[risk\]; known keys: .*max_order_notional"):
        RiskConfig.from_table({"max_order_notinal": 25_000})


@pytest.mark.parametrize(
    ("key", "value", "form"),
    [
        ("max_order_notional", "25k", "a number greater than zero"),
        ("max_order_notional", 0, "a number greater than zero"),
        ("max_order_notional", -1, "a number greater than zero"),
        ("max_order_notional", True, "a number greater than zero"),
        ("max_order_notional", float("inf"), "a number greater than zero"),
        ("max_order_quantity", [1], "a number greater than zero"),
        ("max_position_notional", -50_000, "a number greater than zero"),
        ("max_gross_exposure", 0.0, "a number greater than zero"),
        ("max_open_orders", 2.5, "a whole number greater than zero"),
        ("max_open_orders", 0, "a whole number greater than zero"),
        ("max_orders_per_minute", True, "a whole number greater than zero"),
        ("max_orders_per_minute", "60", "a whole number greater than zero"),
        ("max_strategy_errors", -5, "a whole number greater than zero"),
        ("price_collar", 5, r"a fraction in \(0, 1\]"),
        ("price_collar", 0, r"a fraction in \(0, 1\]"),
        ("max_drawdown", 1.5, r"a fraction in \(0, 1\]"),
        ("max_drawdown", "10%", r"a fraction in \(0, 1\]"),
        ("max_daily_loss", -2_000, "a number greater than zero"),
        ("max_data_age", "2 minutes", "seconds"),
        ("max_data_age", 0, "seconds"),
        ("allow_short", "no", "true or false"),
        ("allow_short", 0, "true or false"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_key_and_the_accepted_form(key, value, form):
    with pytest.raises(ConfigError, match=rf"\[risk\] {key} must be {form}"):
        RiskConfig.from_table({key: value})


def test_a_risk_value_that_is_not_a_table_is_an_error():
    with pytest.raises(ConfigError, match=r"\[risk\] must be a table"):
        RiskConfig.from_table(25_000)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), (1.5, 1.5), ("90", 90.0), ("90s", 90.0), ("2m", 120.0), ("1.5m", 90.0), ("1h", 3600.0),
     ("1h30m", 5400.0), (" 2M ", 120.0), ("1d", 86400.0)],
)  # fmt: skip
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "2 minutes", "2w", "0s", "-5", -5, 0, True, None, "1h-30m"])
def test_bad_durations(text):
    with pytest.raises(ConfigError, match="max_data_age must be seconds"):
        parse_duration(text, "max_data_age")


def test_describe_lists_every_limit_with_none_for_no_limit():
    rows = dict(RiskConfig.from_table({"max_order_notional": 25_000, "max_data_age": "90s"}).describe())
    assert rows["max_order_notional"] == "25,000"
    assert rows["max_orders_per_minute"] == "3000 (burst 500/s)"
    assert rows["max_data_age"] == "90s"
    assert rows["max_drawdown"] == "none"
    assert rows["allow_short"] == "false"
    assert len(rows) == 12


def test_a_config_given_instead_of_a_table_is_taken_as_it_is():
    config = RiskConfig(max_order_quantity=10.0)
    assert RiskConfig.from_table(config, allow_short_default=True) is config


def test_a_key_given_twice_in_its_two_spellings_is_an_error():
    table = tomllib.loads("[risk]\nmax_order_notional = 25_000\nmax-order-notional = 250_000\n")["risk"]
    with pytest.raises(ConfigError, match="max_order_notional.*twice.*'max_order_notional' and 'max-order-notional'"):
        RiskConfig.from_table(table)
