"""Distributed runs (torchrun / DDP): rank identity, the launcher's view, per-rank summaries."""
