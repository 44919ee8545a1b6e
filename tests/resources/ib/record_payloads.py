"""Regenerate ``payloads.json``: TWS API frames (as field lists) a gateway sends for one scenario.

The frames are encoded with the simulated gateway's encoders (verified against ib_async 2.1's
decoder) and stored as the field lists ib_async's ``Decoder.interpret`` receives, so the parsing
tests replay them through the real decoder and wrapper. Run:
``.venv/bin/python tests/resources/ib/record_payloads.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from ml4t_live.sim.ib import encoders as enc
from ml4t_live.sim.ib.contracts import default_info
from ml4t_live.sim.ib.framing import decode_payload

ACCOUNT = "DU1234567"
AAPL = default_info("AAPL")
T0 = datetime(2026, 11, 24, 14, 31, tzinfo=UTC)


def fields(frame: bytes) -> list[str]:
    return decode_payload(frame[4:])


def order(
    order_id,
    perm,
    ref,
    action,
    qty,
    otype,
    lmt=None,
    aux=None,
    status="Submitted",
    filled=0.0,
    avg=0.0,
):
    return enc.OrderView(
        order_id=order_id,
        client_id=1,
        perm_id=perm,
        info=AAPL,
        exchange="SMART",
        action=action,
        total_quantity=qty,
        order_type=otype,
        lmt_price=lmt,
        aux_price=aux,
        tif="GTC",
        oca_group="",
        account=ACCOUNT,
        order_ref=ref,
        parent_id=0,
        outside_rth=False,
        status=status,
        filled=filled,
        avg_fill_price=avg,
        last_fill_price=avg,
    )


def execution(exec_id, order_id, perm, ref, side, shares, price, cum, commission):
    return enc.ExecView(
        exec_id=exec_id,
        order_id=order_id,
        client_id=1,
        perm_id=perm,
        info=AAPL,
        time=T0,
        account=ACCOUNT,
        side=side,
        shares=shares,
        price=price,
        cum_qty=cum,
        avg_price=price,
        order_ref=ref,
        commission=commission,
    )


def main() -> None:
    lmt = order(7, 1870000007, "strat-1|AAPL|buy|0", "BUY", 10.0, "LMT", lmt=190.5)
    e1 = execution(
        "0000e1.01", 7, 1870000007, "strat-1|AAPL|buy|0", "BOT", 4.0, 190.5, 4.0, 1.0
    )
    e2 = execution(
        "0000e2.01", 7, 1870000007, "strat-1|AAPL|buy|0", "BOT", 6.0, 190.4, 10.0, 1.2
    )
    filled = order(
        7,
        1870000007,
        "strat-1|AAPL|buy|0",
        "BUY",
        10.0,
        "LMT",
        lmt=190.5,
        status="Filled",
        filled=10.0,
        avg=190.44,
    )
    partial = order(
        7,
        1870000007,
        "strat-1|AAPL|buy|0",
        "BUY",
        10.0,
        "LMT",
        lmt=190.5,
        filled=4.0,
        avg=190.5,
    )
    rej = order(
        8,
        1870000008,
        "strat-1|AAPL|sell|1",
        "SELL",
        5.0,
        "STP",
        aux=180.0,
        status="PreSubmitted",
    )
    rej_inactive = order(
        8,
        1870000008,
        "strat-1|AAPL|sell|1",
        "SELL",
        5.0,
        "STP",
        aux=180.0,
        status="Inactive",
    )
    trail = order(
        9,
        1870000009,
        "strat-1|AAPL|sell|2",
        "SELL",
        3.0,
        "TRAIL",
        aux=1.5,
        status="PreSubmitted",
    )
    foreign = order(10, 1870000010, "", "BUY", 1.0, "MKT", status="Submitted")
    scenario = {
        "account": ACCOUNT,
        "order_id": 7,
        "frames": {
            "open_order_submitted": fields(enc.open_order(lmt)),
            "order_status_submitted": fields(enc.order_status(lmt)),
            "exec_partial": fields(enc.exec_details(-1, e1)),
            "order_status_partial": fields(enc.order_status(partial)),
            "commission_partial": fields(enc.commission_report(e1)),
            "exec_final": fields(enc.exec_details(-1, e2)),
            "open_order_filled": fields(enc.open_order(filled)),
            "order_status_filled": fields(enc.order_status(filled)),
            "commission_final": fields(enc.commission_report(e2)),
            "open_order_stop": fields(enc.open_order(rej)),
            "order_status_stop": fields(enc.order_status(rej)),
            "error_201": fields(
                enc.error(8, 201, "Order rejected - reason:Insufficient buying power")
            ),
            "open_order_stop_inactive": fields(enc.open_order(rej_inactive)),
            "order_status_stop_inactive": fields(enc.order_status(rej_inactive)),
            "open_order_trail": fields(enc.open_order(trail)),
            "open_order_foreign": fields(enc.open_order(foreign)),
            "position": fields(enc.position(ACCOUNT, AAPL, 10.0, 190.44)),
            "account_cash": fields(
                enc.account_value("TotalCashValue", "98095.60", "USD", ACCOUNT)
            ),
            "account_netliq": fields(
                enc.account_value("NetLiquidation", "100000.00", "USD", ACCOUNT)
            ),
            "realtime_bar": fields(
                enc.realtime_bar(
                    3,
                    int(T0.timestamp()),
                    190.0,
                    190.6,
                    189.9,
                    190.5,
                    1200.0,
                    190.3,
                    14,
                )
            ),
            "historical_data": fields(
                enc.historical_data(
                    4,
                    "",
                    "",
                    [enc.HistBar(T0, 190.0, 191.0, 189.5, 190.5, 5000.0, 190.2, 40)],
                    False,
                    1,
                )
            ),
            "historical_data_epoch": fields(
                enc.historical_data(
                    5,
                    "",
                    "",
                    [enc.HistBar(T0, 190.0, 191.0, 189.5, 190.5, 5000.0, 190.2, 40)],
                    False,
                    2,
                )
            ),
        },
    }
    out = Path(__file__).with_name("payloads.json")
    out.write_text(json.dumps(scenario, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
