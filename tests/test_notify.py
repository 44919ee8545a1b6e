"""Notifications through apprise to a JSON webhook on 127.0.0.1 (the real apprise client, a
receiver started by the test): the chosen events arrive with their documented fields, the others
do not, and a target that cannot be reached never blocks nor stops anything."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest
from loguru import logger
from ml4t.backtest import OrderSide

from ml4t_live.errors import ConfigError
from ml4t_live.events import (
    BrokerDisconnected,
    BrokerReconnected,
    FeedDisconnected,
    OrderFilled,
    OrderRejected,
)
from ml4t_live.notify import EVENTS, FIELDS, Notifier, NotifyConfig
from tests.support.webhook import WebhookReceiver, fields


@pytest.fixture
def hook():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.close()


@pytest.fixture
def logs():
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="INFO", format="{level} {message}")
    yield lines
    logger.remove(sink)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fill(exec_id: str = "e1") -> OrderFilled:
    return OrderFilled("sid-1-AAPL-b1", exec_id, "AAPL", OrderSide.BUY, 10.0, 101.5,
                       datetime(2024, 3, 4, 14, 31, tzinfo=UTC), 1.25, 10.0)  # fmt: skip


def test_chosen_events_arrive_with_their_documented_fields_and_others_do_not(hook):
    config = NotifyConfig.from_table({"urls": [hook.url], "events": ["fill", "rejection", "halt", "end_of_day"]})
    notifier = Notifier(config, "sid").start()
    try:
        notifier.emit("start", "not chosen", mode="paper", venue="ib")
        notifier.observe(_fill())
        notifier.observe(_fill())  # the same execution again (a re-sync): one message
        notifier.observe(OrderRejected("sid-1-MSFT-s1", "insufficient buying power", "201"))
        notifier.trading_state("ACTIVE", "")
        notifier.trading_state("HALTED", "daily loss limit")
        notifier.emit("end_of_day", "done", stop_reason="end of data", bars=3, orders=2, fills=1,
                      final_equity=100010.0, return_pct=0.01, strategy_errors=0, left_at_venue=0)  # fmt: skip
        got = [hook.next() for _ in range(4)]
    finally:
        notifier.close()
    assert [fields(m)["event"] for m in got] == ["fill", "rejection", "halt", "end_of_day"]
    for message in got:
        f = fields(message)
        assert message["title"] == f"ml4t-live sid: {f['event']}"
        assert list(f)[:3] == ["event", "strategy", "time"] and f["strategy"] == "sid"
        assert set(FIELDS[f["event"]]) <= set(f), (f["event"], f)
    fill, rejection, halt, _ = (fields(m) for m in got)
    assert (fill["asset"], fill["side"], fill["quantity"], fill["price"], fill["exec_id"]) == (
        "AAPL", "buy", "10.0", "101.5", "e1")
    assert got[0]["message"].split("\n")[0] == "buy 10 AAPL @ 101.5" and got[0]["type"] == "success"
    assert (rejection["reason"], rejection["code"]) == ("insufficient buying power", "201")
    assert (halt["state"], halt["reason"]) == ("HALTED", "daily loss limit") and got[2]["type"] == "warning"
    assert hook.received.empty()  # nothing else: "start" was not chosen, the repeated fill not re-sent


def test_a_disconnect_is_told_only_when_it_lasts_and_then_its_end(hook):
    notifier = Notifier(NotifyConfig((hook.url,), frozenset(EVENTS), disconnect_seconds=0.3), "sid").start()
    try:
        notifier.observe(FeedDisconnected("alpaca", "blip"))
        notifier.observe(BrokerDisconnected("ib", "socket closed"))
        notifier.observe(FeedDisconnected("alpaca", "blip"))  # a reminder of the same outage
        notifier.observe(FeedReconnectedLike())  # the feed is back at once: never told
        down = fields(hook.next())
        notifier.observe(BrokerReconnected("ib"))
        up = fields(hook.next())
        notifier.emit("start", "marker", mode="paper", venue="ib")
        marker = fields(hook.next())
    finally:
        notifier.close()
    assert (down["event"], down["link"], down["state"], down["reason"]) == ("disconnect", "ib broker", "down",
                                                                            "socket closed")  # fmt: skip
    assert float(down["seconds"]) >= 0.3
    assert (up["link"], up["state"], up["reason"]) == ("ib broker", "up", "reconnected")
    assert marker["event"] == "start" and hook.received.empty()


def FeedReconnectedLike():
    from ml4t_live.events import FeedReconnected

    return FeedReconnected("alpaca", 0)


def test_an_unreachable_target_never_blocks_and_is_logged_once_without_its_url(hook, logs):
    secret_url = f"json://user:s3cr3tpass@127.0.0.1:{_closed_port()}/token-abc123"
    notifier = Notifier(NotifyConfig((secret_url, hook.url)), "sid").start()
    try:
        for i in range(5):
            notifier.observe(_fill(f"e{i}"))  # a queue put (WorkerThread.offer never blocks)
        got = [fields(hook.next()) for _ in range(5)]  # the working target still gets them all
    finally:
        notifier.close()
    assert notifier.dropped == 0  # all five were taken while the unreachable target failed
    assert [g["exec_id"] for g in got] == [f"e{i}" for i in range(5)]
    failures = [line for line in logs if "target 1 (json://…)" in line]
    assert len(failures) == 1 and failures[0].startswith("WARNING"), logs
    assert not [line for line in logs if "s3cr3tpass" in line or "token-abc123" in line]


def test_a_full_queue_drops_messages_and_says_so_once(logs):
    port = _closed_port()
    notifier = Notifier(NotifyConfig((f"json://127.0.0.1:{port}/x",), queue_size=1), "sid")
    notifier.start()
    try:
        for i in range(50):
            notifier.observe(_fill(f"e{i}"))
    finally:
        notifier.close()
    assert notifier.dropped > 0
    assert len([line for line in logs if "notification queue full" in line]) == 1


@pytest.mark.parametrize(("table", "message"), [
    ({"urls": ["json://x/y"], "events": ["fills"]}, "unknown ['fills']"),
    ({"urls": "json://x/y"}, "must be a list"),
    ({"urls": ["json://x/y"], "disconect_seconds": 5}, "unknown key(s) disconect_seconds"),
    ({"urls": ["json://x/y"], "disconnect_seconds": -1}, "disconnect_seconds must be >= 0"),
])  # fmt: skip
def test_a_bad_notify_table_is_a_config_error(table, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        NotifyConfig.from_table(table)


def test_a_url_apprise_does_not_understand_is_a_config_error_naming_no_secret():
    notifier = Notifier(NotifyConfig(("nosuchscheme://secret-token@host/x",)), "sid")
    with pytest.raises(ConfigError) as err:
        notifier.start()
    assert "target 1 (nosuchscheme://…)" in str(err.value) and "secret-token" not in str(err.value)
    assert NotifyConfig.from_table({"urls": []}) is None and NotifyConfig.from_table(None) is None


def test_strategy_errors_are_sent_first_then_at_most_one_per_interval_with_a_count(hook):
    notifier = Notifier(NotifyConfig((hook.url,)), "sid").start()
    try:
        notifier.strategy_error("Momo.on_data raised KeyError at 2024-03-04 14:31:00+00:00: 'AAPL'")
        notifier.strategy_error("Momo.on_data raised KeyError at 2024-03-04 14:32:00+00:00: 'AAPL'")
        notifier.emit("start", "marker", mode="paper", venue="ib")
        first, marker = fields(hook.next()), fields(hook.next())
    finally:
        notifier.close()
    assert (first["event"], first["count"]) == ("error", "1") and first["error"].endswith("14:31:00+00:00: 'AAPL'")
    assert marker["event"] == "start" and hook.received.empty()  # the second error waits for the interval
