"""Account values as IB reports them (pure: numbers in, (key, value, currency) out)."""

from __future__ import annotations

from collections.abc import Mapping

#: The tags accountSummary answers for "All"-style requests (AccountSummaryTags.AllTags subset).
SUMMARY_TAGS = (
    "AccountType", "NetLiquidation", "TotalCashValue", "SettledCash", "AccruedCash",
    "BuyingPower", "EquityWithLoanValue", "GrossPositionValue", "AvailableFunds",
    "ExcessLiquidity", "Cushion", "FullInitMarginReq", "FullMaintMarginReq", "Leverage",
)  # fmt: skip


def account_values(
    cash: float,
    equity: float,
    positions: Mapping[str, tuple[float, float]],
    prices: Mapping[str, float],
    buying_power: float,
    realized: float = 0.0,
) -> list[tuple[str, str, str]]:
    """``(key, value, currency)`` rows for updateAccountValue / accountSummary."""
    gross = sum(abs(q) * prices.get(a, c) for a, (q, c) in positions.items())
    unrealized = sum(q * (prices.get(a, c) - c) for a, (q, c) in positions.items())
    money = {
        "NetLiquidation": equity,
        "TotalCashValue": cash,
        "SettledCash": cash,
        "CashBalance": cash,
        "AccruedCash": 0.0,
        "BuyingPower": buying_power,
        "EquityWithLoanValue": equity,
        "GrossPositionValue": gross,
        "AvailableFunds": buying_power,
        "ExcessLiquidity": buying_power,
        "FullInitMarginReq": 0.0,
        "FullMaintMarginReq": 0.0,
        "UnrealizedPnL": unrealized,
        "RealizedPnL": realized,
    }
    rows = [("AccountType", "INDIVIDUAL", ""), ("Currency", "USD", "USD")]
    rows += [(k, f"{v:.2f}", "USD") for k, v in money.items()]
    rows.append(("Cushion", f"{(equity - gross * 0) / equity if equity else 0:.4f}", ""))
    rows.append(("Leverage", f"{gross / equity if equity else 0:.4f}", ""))
    return rows


def summary_rows(
    rows: list[tuple[str, str, str]], tags: tuple[str, ...]
) -> list[tuple[str, str, str]]:
    """The rows an accountSummary request for ``tags`` gets ("$LEDGER" style tags ignored)."""
    wanted = set(tags) & set(SUMMARY_TAGS) if tags else set(SUMMARY_TAGS)
    return [r for r in rows if r[0] in wanted]
