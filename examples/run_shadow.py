"""Quick start: a backtest strategy in shadow mode from a plain script (no asyncio anywhere).

    .venv/bin/python examples/run_shadow.py
"""

from ml4t.backtest import BacktestConfig

from ml4t_live import LiveEngine, ReplayFeed, ShadowBroker
from ml4t_live.examples import DemoMomentum, demo_bars_path

feed = ReplayFeed(demo_bars_path())  # recorded bars; speed=60 replays at 60x real time
broker = ShadowBroker(BacktestConfig(initial_cash=100_000))  # simulated fills, no orders sent
result = LiveEngine(DemoMomentum(), broker, feed).run()  # blocks until the bars run out

print(f"{result.bars} bars, {len(result.fills)} fills, final equity {result.metrics['final_value']:,.2f}")
print(f"session files: {result.session_dir}")
