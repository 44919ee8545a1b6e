"""ml4t_live: run ml4t.backtest strategies unchanged in shadow, paper and live trading."""
