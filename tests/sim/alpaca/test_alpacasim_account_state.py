"""``SimulatedAlpaca(account_state=...)``: how GET /v2/account describes the account's standing, as
the REAL alpaca-py TradingClient reads it (an active, unblocked account unless told otherwise)."""

from __future__ import annotations

import pytest
from alpaca.trading.enums import AccountStatus
from alpacasim_support import TradingClient, make_bars

from ml4t_live.errors import ConfigError
from ml4t_live.sim.alpaca import SimulatedAlpaca


def read_account(account_state: dict | None):
    sim = SimulatedAlpaca(make_bars(), rate_limit_per_minute=None, account_state=account_state)
    sim.start()
    try:
        return TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url).get_account()
    finally:
        sim.close()


def test_default_account_is_active_and_unblocked() -> None:
    account = read_account(None)
    assert account.status is AccountStatus.ACTIVE
    flags = (account.trading_blocked, account.account_blocked, account.trade_suspended_by_user,
             account.transfers_blocked)
    assert flags == (False, False, False, False)


def test_account_state_is_reported_as_given() -> None:
    account = read_account({"trading_blocked": True, "trade_suspended_by_user": True,
                            "status": "ACCOUNT_CLOSED"})
    assert account.trading_blocked is True and account.trade_suspended_by_user is True
    assert account.account_blocked is False and account.status is AccountStatus.ACCOUNT_CLOSED


@pytest.mark.parametrize("state, why", [
    ({"buying_power": "0"}, "unknown field 'buying_power'"),
    ({"trading_blocked": "yes"}, "trading_blocked must be a bool"),
])
def test_account_state_is_checked(state: dict, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        SimulatedAlpaca(make_bars(), account_state=state)
