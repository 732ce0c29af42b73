"""Where perfscope's shipped data lives, and how run directories are named."""

from __future__ import annotations

import time
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_DIR = _PACKAGE_DIR.parent


def _data_dir(installed: str, in_repo: Path) -> Path:
    # A wheel carries the files under perfscope/_data; a source checkout keeps them at the top.
    packaged = _PACKAGE_DIR / "_data" / installed
    return packaged if packaged.is_dir() else in_repo


def rules_dir() -> Path:
    """The folder of the built-in rule files."""
    return _data_dir("rules", _REPO_DIR / "rules")


def templates_dir() -> Path:
    """The folder of the built-in report templates."""
    return _data_dir("templates", _REPO_DIR / "reports" / "templates")


def metrics_doc() -> Path:
    """docs/metrics.md: the table of every metric name, read by `perfscope check`."""
    packaged = _PACKAGE_DIR / "_data" / "metrics.md"
    return packaged if packaged.is_file() else _REPO_DIR / "docs" / "metrics.md"


def inject_dir() -> Path:
    """The folder put first on a child's PYTHONPATH so its sitecustomize installs the hooks."""
    return _PACKAGE_DIR / "inject"


def default_run_dir(label: str, now: float | None = None) -> Path:
    """`./perfscope-runs/<label>-<YYYYmmdd-HHMMSS>`, made unique with a suffix when taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = Path.cwd() / "perfscope-runs" / f"{label}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate
