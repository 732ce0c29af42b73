"""`perfscope check`: budgets on a run's metrics, a noise-aware baseline comparison, CI formats."""

# Here, not in formats.py, so that the command line names them without importing the renderers.
FORMATS = ("text", "json", "junit", "github", "markdown")
