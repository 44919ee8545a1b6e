"""US stock contracts the simulated gateway knows: stable conIds, exchanges, names.

A symbol found in the replayed bars is a known contract. Well-known symbols get their real
IB conIds; any other symbol gets a stable id derived from its name (the same on every run,
so sessions and tests can rely on it). ``symbols_info`` overrides either.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

VALID_EXCHANGES = ("SMART", "NASDAQ", "NYSE", "ARCA", "ISLAND", "AMEX", "BATS", "IEX")
ORDER_TYPES = "LMT,MKT,MOC,STP,STP LMT,TRAIL"

# Real IB conIds of a few liquid US stocks and ETFs (primary exchange, long name).
_KNOWN: dict[str, tuple[int, str, str]] = {
    "AAPL": (265598, "NASDAQ", "APPLE INC"),
    "MSFT": (272093, "NASDAQ", "MICROSOFT CORP"),
    "AMZN": (3691937, "NASDAQ", "AMAZON.COM INC"),
    "GOOGL": (208813719, "NASDAQ", "ALPHABET INC-CL A"),
    "NVDA": (4815747, "NASDAQ", "NVIDIA CORP"),
    "TSLA": (76792991, "NASDAQ", "TESLA INC"),
    "META": (107113386, "NASDAQ", "META PLATFORMS INC-CLASS A"),
    "SPY": (756733, "ARCA", "SPDR S&P 500 ETF TRUST"),
    "QQQ": (320227571, "NASDAQ", "INVESCO QQQ TRUST SERIES 1"),
    "IBM": (8314, "NYSE", "INTL BUSINESS MACHINES CORP"),
    "JPM": (1520593, "NYSE", "JPMORGAN CHASE & CO"),
    "XOM": (13977, "NYSE", "EXXON MOBIL CORP"),
}


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """One US stock as the gateway describes it in contractDetails."""

    symbol: str
    con_id: int
    primary_exchange: str = "NASDAQ"
    long_name: str = ""
    currency: str = "USD"
    min_tick: float = 0.01
    trading_class: str = "NMS"

    def c11(self, exchange: str = "SMART") -> list[object]:
        """The 11-field contract block of openOrder / execDetails / position."""
        return [
            self.con_id, self.symbol, "STK", "", 0.0, "", "", exchange,
            self.currency, self.symbol, self.trading_class,
        ]  # fmt: skip


def stable_con_id(symbol: str) -> int:
    """A deterministic conId for a symbol without a known one (never collides with _KNOWN)."""
    return 900_000_000 + zlib.crc32(symbol.upper().encode()) % 99_999_999


def default_info(symbol: str) -> SymbolInfo:
    symbol = symbol.upper()
    if symbol in _KNOWN:
        con_id, primary, name = _KNOWN[symbol]
        return SymbolInfo(symbol, con_id, primary, name)
    return SymbolInfo(symbol, stable_con_id(symbol), "NASDAQ", f"{symbol} (SIMULATED)")


class ContractBook:
    """The symbols the gateway can qualify, by symbol and by conId."""

    def __init__(
        self,
        symbols: Iterable[str],
        overrides: Mapping[str, SymbolInfo | Mapping[str, object]] | None = None,
    ) -> None:
        self._by_symbol: dict[str, SymbolInfo] = {}
        for symbol in symbols:
            self._by_symbol[symbol.upper()] = default_info(symbol)
        for symbol, info in (overrides or {}).items():
            base = self._by_symbol.get(symbol.upper(), default_info(symbol))
            if isinstance(info, SymbolInfo):
                self._by_symbol[symbol.upper()] = info
            else:
                self._by_symbol[symbol.upper()] = replace(base, **dict(info))  # type: ignore[arg-type]
        self._by_con_id = {i.con_id: i for i in self._by_symbol.values()}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_symbol.values())

    def by_symbol(self, symbol: str) -> SymbolInfo | None:
        return self._by_symbol.get(symbol.upper())

    def by_con_id(self, con_id: int) -> SymbolInfo | None:
        return self._by_con_id.get(con_id)

    def resolve(
        self, con_id: int, symbol: str, sec_type: str, currency: str, exchange: str
    ) -> SymbolInfo | None:
        """The contract a request names, or None (the caller answers error 200)."""
        if sec_type not in ("", "STK") or currency not in ("", "USD"):
            return None
        if exchange and exchange.upper() not in VALID_EXCHANGES:
            return None
        info = self.by_con_id(con_id) if con_id else None
        if info is None and symbol:
            info = self.by_symbol(symbol)
        if info is not None and con_id and info.con_id != con_id:
            return None
        return info
