"""The measure stage: one module per source, each behind the `Collector` protocol (base.py)."""
