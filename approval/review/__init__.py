"""The review engine construction stages and company setups share: open and passing tasks,
the fan-in to the most severe outcome, 超时默认's opinion, working-day deadlines."""
