"""Dev tools, outside the wheel: the synthetic-year generator, its oracle, the benchmark."""
