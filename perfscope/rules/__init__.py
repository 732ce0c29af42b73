"""The diagnose stage: rule files (top-level `rules/`) read by a sandboxed engine."""
