"""Account values as IB reports them (pure: numbers in, (key, value, currency) out)."""

from __future__ import annotations

from collections.abc import Mapping

from .margin import AccountModel

#: The tags accountSummary answers for "All"-style requests (AccountSummaryTags.AllTags subset).
SUMMARY_TAGS = (
    "AccountType", "NetLiquidation", "TotalCashValue", "SettledCash", "AccruedCash",
    "BuyingPower", "EquityWithLoanValue", "GrossPositionValue", "AvailableFunds",
    "ExcessLiquidity", "Cushion", "InitMarginReq", "MaintMarginReq", "FullInitMarginReq",
    "FullMaintMarginReq", "Leverage",
)  # fmt: skip


def account_values(
    cash: float,
    equity: float,
    positions: Mapping[str, tuple[float, float]],
    prices: Mapping[str, float],
    model: AccountModel,
    realized: float = 0.0,
) -> list[tuple[str, str, str]]:
    """``(key, value, currency)`` rows for updateAccountValue / accountSummary, with the margin
    numbers of the account type the gateway models (the ones its pre-trade check uses)."""
    marks = {a: prices.get(a, c) for a, (_, c) in positions.items()}
    held = {a: q for a, (q, _) in positions.items()}
    gross = model.gross(held, marks)
    unrealized = sum(q * (marks[a] - c) for a, (q, c) in positions.items())
    initial, maintenance = model.initial_margin(held, marks), model.maintenance_margin(held, marks)
    available, excess = equity - initial, equity - maintenance
    money = {
        "NetLiquidation": equity,
        "TotalCashValue": cash,
        "SettledCash": cash,
        "CashBalance": cash,
        "AccruedCash": 0.0,
        "BuyingPower": max(available, 0.0) / model.initial,
        "EquityWithLoanValue": equity,
        "GrossPositionValue": gross,
        "AvailableFunds": available,
        "ExcessLiquidity": excess,
        "InitMarginReq": initial,
        "MaintMarginReq": maintenance,
        "FullInitMarginReq": initial,
        "FullMaintMarginReq": maintenance,
        "UnrealizedPnL": unrealized,
        "RealizedPnL": realized,
    }
    rows = [("AccountType", "INDIVIDUAL", ""), ("Currency", "USD", "USD")]
    rows += [(k, f"{v:.2f}", "USD") for k, v in money.items()]
    rows.append(("Cushion", f"{excess / equity if equity else 0:.4f}", ""))
    rows.append(("Leverage", f"{gross / equity if equity else 0:.4f}", ""))
    return rows


def summary_rows(
    rows: list[tuple[str, str, str]], tags: tuple[str, ...]
) -> list[tuple[str, str, str]]:
    """The rows an accountSummary request for ``tags`` gets ("$LEDGER" style tags ignored)."""
    wanted = set(tags) & set(SUMMARY_TAGS) if tags else set(SUMMARY_TAGS)
    return [r for r in rows if r[0] in wanted]
