"""``GET /v2/account/activities[/FILL]`` through the real alpaca-py REST client (``TradingClient.get``).

Each execution is listed once with Alpaca's fields; the uuid part of its ``<timestamp>::<uuid>`` id is
the ``execution_id`` of the trade update that reported the same fill; paging, filters and bad
parameters behave as Alpaca documents (bad values are 4xx JSON, never a 500).
"""

from __future__ import annotations

import json

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest
from alpacasim_support import StreamHarness, TradingClient, step

from ml4t_live.sim.alpaca import SimulatedAlpaca

FIELDS = {"id", "activity_type", "transaction_time", "type", "price", "qty", "side", "symbol", "leaves_qty",
          "order_id", "cum_qty"}


def _three_fills(sim: SimulatedAlpaca, trading: TradingClient, stream: StreamHarness) -> tuple[list, str, str]:
    """MSFT 10 filled in two parts over two bars, AAPL 2 bought in one: (trade updates, msft id, aapl id)."""
    step(sim, trading)
    sim.inject("partial_fill", parts=2)
    msft = trading.submit_order(MarketOrderRequest(symbol="MSFT", qty=10, side=OrderSide.BUY,
                                                   time_in_force=TimeInForce.DAY))
    step(sim, trading)
    first = stream.get_event("partial_fill")
    aapl = trading.submit_order(MarketOrderRequest(symbol="AAPL", qty=2, side=OrderSide.BUY,
                                                   time_in_force=TimeInForce.DAY))
    step(sim, trading)
    later = [stream.get_event("fill"), stream.get_event("fill")]
    later.sort(key=lambda u: u.order.symbol != "MSFT")
    return [first, *later], str(msft.id), str(aapl.id)


def test_fill_activities_carry_the_trade_updates_execution_ids(sim: SimulatedAlpaca, trading: TradingClient,
                                                               trade_stream: StreamHarness) -> None:
    updates, msft, aapl = _three_fills(sim, trading, trade_stream)
    listed = trading.get("/account/activities/FILL", {"direction": "asc"})
    assert [set(a) for a in listed] == [FIELDS] * 3
    by_exec = {a["id"].split("::")[1]: a for a in listed}
    assert set(by_exec) == {str(u.execution_id) for u in updates}
    for update in updates:
        activity = by_exec[str(update.execution_id)]
        stamp = activity["id"].split("::")[0]
        assert len(stamp) == 17 and stamp == update.timestamp.strftime("%Y%m%d%H%M%S%f")[:17]
        assert activity["order_id"] == str(update.order.id) and activity["symbol"] == update.order.symbol
        assert (float(activity["qty"]), float(activity["price"])) == (update.qty, update.price)
        assert float(activity["cum_qty"]) == float(update.order.filled_qty)
        assert activity["type"] == str(update.event) and activity["activity_type"] == "FILL"
    first, second = (by_exec[str(u.execution_id)] for u in updates[:2])
    assert (first["side"], first["leaves_qty"], first["cum_qty"]) == ("buy", "5", "5")
    assert (second["leaves_qty"], second["cum_qty"], second["type"]) == ("0", "10", "fill")
    assert by_exec[str(updates[2].execution_id)]["side"] == "buy"
    # the list endpoint with activity_types, newest first by default; one order's activities only
    newest_first = trading.get("/account/activities", {"activity_types": "FILL,DIV"})
    assert [a["id"] for a in newest_first] == [a["id"] for a in reversed(listed)]
    assert [a["order_id"] for a in trading.get("/account/activities/FILL", {"order_id": msft})] == [msft, msft]
    assert trading.get("/account/activities", {"activity_types": "DIV"}) == []
    assert [a["order_id"] for a in trading.get("/account/activities", {"category": "trade_activity",
                                                                       "order_id": aapl})] == [aapl]


def test_fill_activities_page_by_token_and_filter_by_time(sim: SimulatedAlpaca, trading: TradingClient,
                                                         trade_stream: StreamHarness) -> None:
    _three_fills(sim, trading, trade_stream)
    everything = trading.get("/account/activities/FILL", {"direction": "asc"})
    for direction, expected in (("asc", everything), ("desc", everything[::-1])):
        pages: list[list] = []
        token = None
        while True:
            params = {"direction": direction, "page_size": 2} | ({"page_token": token} if token else {})
            page = trading.get("/account/activities/FILL", params)
            if not page:
                break
            pages.append(page)
            token = page[-1]["id"]
        assert [len(p) for p in pages] == [2, 1]
        assert [a["id"] for p in pages for a in p] == [a["id"] for a in expected]
    first_time = everything[0]["transaction_time"]
    later = trading.get("/account/activities/FILL", {"after": first_time, "direction": "asc"})
    assert [a["id"] for a in later] == [a["id"] for a in everything[1:]]
    earlier = trading.get("/account/activities/FILL", {"until": everything[-1]["transaction_time"]})
    assert [a["id"] for a in earlier] == [everything[0]["id"]]
    day = first_time[:10]
    assert len(trading.get("/account/activities/FILL", {"date": day})) == 3
    assert trading.get("/account/activities/FILL", {"date": "2020-01-02"}) == []


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/account/activities/FILLS", {}, 422),
        ("/account/activities", {"activity_types": "FILL,NOPE"}, 422),
        ("/account/activities", {"activity_types": "FILL", "category": "trade_activity"}, 422),
        ("/account/activities", {"category": "everything"}, 422),
        ("/account/activities/FILL", {"direction": "sideways"}, 422),
        ("/account/activities/FILL", {"page_size": "0"}, 422),
        ("/account/activities/FILL", {"page_size": "101"}, 422),
        ("/account/activities/FILL", {"page_size": "ten"}, 422),
        ("/account/activities/FILL", {"page_token": "not-a-token"}, 422),
        ("/account/activities/FILL", {"date": "2024-03-04", "after": "2024-03-01"}, 422),
        ("/account/activities/FILL", {"after": "yesterday"}, 400),
    ],
)
def test_bad_activity_parameters_are_alpaca_errors(trading: TradingClient, path: str, params: dict,
                                                   status: int) -> None:
    with pytest.raises(APIError) as caught:
        trading.get(path, params)
    assert caught.value.status_code == status
    body = json.loads(str(caught.value))
    assert isinstance(body["code"], int) and str(body["code"]).startswith(str(status)[:1]) and body["message"]
