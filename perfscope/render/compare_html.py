"""The HTML comparison of two runs (`perfscope compare`): one self-contained page from
reports/templates/compare.html.

The overlaid step-time distributions are drawn twice: as inline SVG in the markup, which shows
with scripts off or if plotly fails, and as a plotly figure (the embedded offline plotly.js of
perfscope.render.plotly_assets) drawn over it. Run data reaches the script only as JSON.
"""

from __future__ import annotations

import html
from typing import Any

from perfscope import __version__
from perfscope.check.diff import finding_changes, metric_deltas
from perfscope.check.stats import Comparison
from perfscope.record import Record
from perfscope.render.html import page_script, template_environment

_BINS = 40
_SCRIPT = "_compare_charts.js"
BASE_COLOR = "#5c7cfa"
NEW_COLOR = "#f08c00"


def render_compare(
    base: Record,
    new: Record,
    comparison: Comparison,
    times: tuple[list[float], list[float]],
    names: tuple[str, str],
) -> str:
    """The page: the verdict, the overlaid step-time histograms, metric deltas, findings."""
    from perfscope.render.plotly_assets import json_for_script, page_assets

    script = page_script(_SCRIPT)  # the exact text the page's CSP hash is taken over
    bins = histogram(*times)
    figure = histogram_figure(times, comparison, names, bins)
    return (
        template_environment()
        .get_template("compare.html")
        .render(
            record=new,
            base=base,
            new=new,
            names=names,
            comparison=comparison.to_dict(),
            histogram=bins,
            deltas=[d.to_dict() for d in metric_deltas(base, new)],
            findings=finding_changes(base, new),
            version=__version__,
            compare_json=json_for_script({"charts": {"step-hist": figure}}),
            page_js=script,
            **page_assets(script),
        )
    )


def histogram_figure(
    times: tuple[list[float], list[float]],
    comparison: Comparison,
    names: tuple[str, str],
    bins: dict[str, Any],
) -> dict[str, Any]:
    """Plotly histograms of both runs' step times, overlaid on the same bins as the SVG, each
    in percent of its own steps."""
    size = (bins["high"] - bins["low"]) / max(1, len(bins["bins"])) or 1.0
    xbins = {"start": bins["low"], "end": bins["high"] + size / 2, "size": size}
    data = [
        {
            "type": "histogram",
            "name": html.escape(f"{label}: {name}", quote=False),  # plotly reads HTML in labels
            "x": [round(t, 3) for t in values],
            "histnorm": "percent",
            "autobinx": False,
            "xbins": xbins,
            "opacity": 0.55,
            "marker": {"color": color},
            "hovertemplate": f"{label}: %{{y:.0f}}% of steps at %{{x}} ms<extra></extra>",
        }
        for label, name, values, color in (
            ("base", names[0], times[0], BASE_COLOR),
            ("new", names[1], times[1], NEW_COLOR),
        )
    ]
    shapes = [
        {
            "type": "line",
            "yref": "paper",
            "x0": at_ms,
            "x1": at_ms,
            "y0": 0,
            "y1": 1,
            "line": {"color": color, "width": 2, "dash": "dash"},
        }
        for at_ms, color in ((comparison.base_ms, BASE_COLOR), (comparison.new_ms, NEW_COLOR))
        if at_ms is not None
    ]
    layout = {
        "barmode": "overlay",
        "height": 300,
        "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
        "xaxis": {"title": {"text": "step time (ms)"}},
        "yaxis": {"title": {"text": "% of steps"}},
        "legend": {"orientation": "h", "y": -0.25},
        "shapes": shapes,
    }
    return {"data": data, "layout": layout}


def histogram(base: list[float], new: list[float], bins: int = _BINS) -> dict[str, Any]:
    """Shared bins over both runs' step times; each bar is a share of its run's steps."""
    values = base + new
    if not values:
        return {"bins": [], "low": 0.0, "high": 0.0, "top": 0.0}
    low, high = min(values), max(values)
    width = (high - low) / bins or 1.0
    rows = []
    base_share, new_share = _shares(base, low, width, bins), _shares(new, low, width, bins)
    for i in range(bins):
        rows.append({"from_ms": low + i * width, "base": base_share[i], "new": new_share[i]})
    top = max(max(base_share), max(new_share)) or 1.0
    return {"bins": rows, "low": low, "high": low + bins * width, "top": top}


def _shares(values: list[float], low: float, width: float, bins: int) -> list[float]:
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / width))] += 1
    return [c / len(values) if values else 0.0 for c in counts]
