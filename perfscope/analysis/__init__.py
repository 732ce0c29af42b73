"""The analyse stage: pure functions from events and records to steps, metrics and tables."""
