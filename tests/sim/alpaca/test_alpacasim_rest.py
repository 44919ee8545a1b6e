"""Account, positions, clock, calendar, assets, auth and rate limits through the real TradingClient."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import AccountStatus, AssetClass, OrderSide, TimeInForce
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetCalendarRequest,
    MarketOrderRequest,
)
from alpacasim_support import make_bars, step

from ml4t_live.errors import ConfigError
from ml4t_live.sim.alpaca import SimulatedAlpaca


def test_account_is_parsed_with_string_money_fields(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    account = trading.get_account()
    assert account.status is AccountStatus.ACTIVE
    assert account.cash == "100000" and account.equity == "100000"
    raw = requests.get(f"{sim.base_url}/v2/account", headers=_headers(sim), timeout=5).json()
    assert all(isinstance(raw[k], str) for k in ("cash", "equity", "buying_power", "portfolio_value"))
    assert trading.get_account_configurations().fractional_trading is True


def test_positions_list_one_and_close(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    assert trading.get_all_positions() == []
    trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
    step(sim, trading)  # submitted before the first bar: fills at bar 0's open (100)
    step(sim, trading)  # bar 1 sent
    positions = trading.get_all_positions()
    assert [(p.symbol, p.qty, p.avg_entry_price, p.side.value) for p in positions] == [("AAPL", "3", "100", "long")]
    one = trading.get_open_position("AAPL")
    assert one.cost_basis == "300" and one.current_price == "101.5"  # bar 1's close
    assert trading.get_open_position(str(one.asset_id)).symbol == "AAPL"
    with pytest.raises(APIError) as missing:
        trading.get_open_position("MSFT")
    assert missing.value.status_code == 404 and missing.value.code == 40410000
    partial = trading.close_position("AAPL", ClosePositionRequest(percentage="50"))
    assert partial.side is OrderSide.SELL and partial.qty == "1.5"
    trading.cancel_order_by_id(partial.id)
    closing = trading.close_position("AAPL")
    assert closing.side is OrderSide.SELL and closing.qty == "3"
    step(sim, trading)
    assert trading.get_all_positions() == []


def test_close_all_positions_returns_207_per_symbol(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    for symbol in ("AAPL", "MSFT"):
        trading.submit_order(MarketOrderRequest(symbol=symbol, qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
    step(sim, trading)
    step(sim, trading)
    responses = trading.close_all_positions(cancel_orders=True)
    assert sorted((r.symbol, r.status) for r in responses) == [("AAPL", 200), ("MSFT", 200)]
    assert all(r.body.side is OrderSide.SELL for r in responses)


def test_clock_follows_the_virtual_time(sim: SimulatedAlpaca, trading: TradingClient) -> None:
    clock = trading.get_clock()  # releases bar 0 (09:30); the venue is then at its close, 09:31
    assert clock.is_open is True
    assert clock.next_close.time() == time(16, 0) and clock.next_close.utcoffset().total_seconds() == -5 * 3600
    assert clock.next_open.date() == date(2024, 3, 5)
    state = sim.wait_until(lambda s: s["bar_index"] == 0, 5)
    assert state["now"] == datetime.fromisoformat("2024-03-04T14:31:00+00:00")
    assert state["skipped_outside_hours"] == 1  # the pre-market timestamp is not replayed


def test_calendar_has_holidays_and_early_closes(trading: TradingClient) -> None:
    days = trading.get_calendar(GetCalendarRequest(start=date(2024, 11, 26), end=date(2024, 12, 2)))
    assert [d.date for d in days] == [date(2024, 11, 26), date(2024, 11, 27), date(2024, 11, 29), date(2024, 12, 2)]
    early = {d.date: (d.open.time(), d.close.time()) for d in days}
    assert early[date(2024, 11, 29)] == (time(9, 30), time(13, 0))  # Thanksgiving Friday
    assert early[date(2024, 11, 27)] == (time(9, 30), time(16, 0))


def test_assets_list_and_one(trading: TradingClient) -> None:
    assets = trading.get_all_assets()
    assert sorted(a.symbol for a in assets) == ["AAPL", "MSFT"]
    assert all(a.asset_class is AssetClass.US_EQUITY and a.fractionable for a in assets)
    assert trading.get_asset("msft").symbol == "MSFT"
    with pytest.raises(APIError) as unknown:
        trading.get_asset("NOPE")
    assert unknown.value.status_code == 404


def test_wrong_keys_get_401_on_trading_and_403_on_data(sim: SimulatedAlpaca) -> None:
    bad = TradingClient(sim.key_id, "not-the-secret", url_override=sim.base_url)
    with pytest.raises(APIError) as trading_error:
        bad.get_account()
    assert trading_error.value.status_code == 401
    assert trading_error.value.code == 40110000 and trading_error.value.message == "request is not authorized"
    data = StockHistoricalDataClient("PKWRONG", sim.secret_key, url_override=sim.base_url)
    with pytest.raises(APIError) as data_error:
        data.get_stock_bars(StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Minute))
    assert data_error.value.status_code == 403 and data_error.value.code == 40310000
    missing = requests.get(f"{sim.base_url}/v2/account", timeout=5)
    assert missing.status_code == 401


def test_basic_auth_is_accepted(sim: SimulatedAlpaca) -> None:
    data = StockHistoricalDataClient(sim.key_id, sim.secret_key, url_override=sim.base_url, use_basic_auth=True)
    assert data.get_stock_bars(StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Minute)).data == {}


def test_token_bucket_answers_429_with_alpaca_headers() -> None:
    venue = SimulatedAlpaca(make_bars(), rate_limit_per_minute=3)
    venue.start()
    try:
        answers = [requests.get(f"{venue.base_url}/v2/clock", headers=_headers(venue), timeout=5) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert all(a.headers["X-RateLimit-Limit"] == "3" for a in answers)
        assert int(answers[-1].headers["X-RateLimit-Reset"]) > 0
        assert answers[-1].json() == {"code": 42910000, "message": "rate limit exceeded"}
    finally:
        venue.close()


def test_default_rate_limit_is_200_per_minute() -> None:
    venue = SimulatedAlpaca(make_bars())
    venue.start()
    try:
        answer = requests.get(f"{venue.base_url}/v2/account", headers=_headers(venue), timeout=5)
        assert answer.headers["X-RateLimit-Limit"] == "200" and answer.headers["X-RateLimit-Remaining"] == "199"
    finally:
        venue.close()


def test_trailing_slash_in_url_override_is_a_404_like_alpaca(sim: SimulatedAlpaca) -> None:
    slashed = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url + "/")
    with pytest.raises(APIError) as error:
        slashed.get_account()
    assert error.value.status_code == 404


def _headers(venue: SimulatedAlpaca) -> dict[str, str]:
    return {"APCA-API-KEY-ID": venue.key_id, "APCA-API-SECRET-KEY": venue.secret_key}


def test_a_busy_port_is_a_config_error(sim: SimulatedAlpaca) -> None:
    second = SimulatedAlpaca(make_bars(), port=sim.port)
    with pytest.raises(ConfigError, match="cannot listen"):
        second.start()
    second.close()
