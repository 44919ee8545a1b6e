"""Count the Python steps (bytecodes) the risk rails add to a replay, per bar.

The rails' cost in time follows the bytecodes they execute (docs/performance.md, "The risk
rails"). This counts them without a clock: the same replay as ``bench_risk.py --default-path``
(LiveEngine + ReplayFeed + ShadowBroker, journal and session recording on), run for two lengths
with ``sys.monitoring`` INSTRUCTION events per code object; the difference divided by the extra
bars is the count per bar (start-up and the end cancel). The shadow journal's time-based commits
are turned off in every run, so the count does not depend on how fast the run goes.

    .venv/bin/python scripts/bench_risk_steps.py                    # 1 asset, no-op and trading
    .venv/bin/python scripts/bench_risk_steps.py --assets 10 --strategies trade --top 12
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter

from bench_engine import STRATEGIES, config, make_prices
from bench_risk import MODES

from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker, shadow_journal

TOOL = sys.monitoring.PROFILER_ID


def count(assets: int, bars: int, strategy: str, mode: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    prices = make_prices(assets, bars)
    engine = LiveEngine(STRATEGIES[strategy](), ShadowBroker(config(), risk=MODES[mode], state_dir=tempfile.mkdtemp()),
                        ReplayFeed(prices), session_dir=tempfile.mkdtemp())  # fmt: skip
    monitoring = sys.monitoring
    monitoring.use_tool_id(TOOL, "bench_risk_steps")
    monitoring.register_callback(TOOL, monitoring.events.INSTRUCTION,
                                 lambda code, offset: counts.update((f"{code.co_qualname} ({code.co_filename})",)))  # fmt: skip
    monitoring.set_events(TOOL, monitoring.events.INSTRUCTION)
    try:
        engine.run()
    finally:
        monitoring.set_events(TOOL, 0)
        monitoring.free_tool_id(TOOL)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=1)
    parser.add_argument("--bars", default="500,1500", help="the two run lengths")
    parser.add_argument("--strategies", default="noop,trade")
    parser.add_argument("--top", type=int, default=8, help="the code objects that add the most, per mode")
    args = parser.parse_args()
    shadow_journal.COMMIT_SECONDS = float("inf")
    short, long = (int(n) for n in args.bars.split(","))
    for strategy in args.strategies.split(","):
        per_bar = {}
        for mode in ("off", "defaults", "all"):
            a, b = count(args.assets, short, strategy, mode), count(args.assets, long, strategy, mode)
            per_bar[mode] = {k: (b[k] - a[k]) / (long - short) for k in a.keys() | b.keys()}
        off = per_bar["off"]
        base = sum(off.values())
        for mode in ("defaults", "all"):
            extra = {k: per_bar[mode].get(k, 0.0) - off.get(k, 0.0) for k in per_bar[mode].keys() | off.keys()}
            total = sum(extra.values())
            print(f"{args.assets}x {strategy:6} {mode:9} off {base:8,.0f} bytecodes/bar, +{total:,.0f} "
                  f"({total / base:.1%})")  # fmt: skip
            for name, n in sorted(extra.items(), key=lambda kv: -abs(kv[1]))[: args.top]:
                if abs(n) >= 0.5:
                    print(f"      {n:+8.1f}  {name}")


if __name__ == "__main__":
    main()
