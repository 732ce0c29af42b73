"""Plotly figures (plain data + layout dicts) of the report's tables: layout only, no analysis.

The page's script draws them as they are, only adding the theme's colours. Every string from the
run that ends up in a chart (function names, py-spy's files) is HTML-escaped here, because plotly
reads a subset of HTML in its labels: escaped, it shows the text as it is.
"""

from __future__ import annotations

import html
from typing import Any

WAIT = "#f08c00"
COMPUTE = "#5c7cfa"
OUTLIER = "#e03131"
PROFILED = "#868e96"
PANEL_PX = 150
KIND_COLORS = {"user": "#f08c00", "library": "#5c7cfa", "stdlib": "#20c997", "perfscope": "#ae3ec9"}
PHASE_COLORS = {
    "data wait": WAIT,
    "compute and the rest": COMPUTE,
    "forward, backward and the rest": COMPUTE,
    "optimizer step": "#ae3ec9",
    "zero_grad": "#20c997",
}
SERIES_COLORS = ("#5c7cfa", "#f08c00", "#20c997", "#e03131", "#ae3ec9")


def steps_figure(table: dict[str, Any]) -> dict[str, Any]:
    """Step time by step, data wait stacked under the rest, outlier steps marked."""
    x = table["index"]
    data: list[dict[str, Any]] = [
        _stacked("data wait", x, table["data_wait_ms"], WAIT),
        _stacked("compute and the rest", x, table["compute_ms"], COMPUTE),
    ]
    profiled = [i for i, p in enumerate(table["profiled"]) if p]
    if profiled:
        data.append(
            _markers(
                "op-trace window (slowed by the profiler)",
                [x[i] for i in profiled],
                [table["duration_ms"][i] for i in profiled],
                PROFILED,
                "square",
            )
        )
    if table["outliers"]:
        data.append(
            _markers(
                "outlier steps",
                [s["index"] for s in table["outliers"]],
                [s["duration_ms"] for s in table["outliers"]],
                OUTLIER,
                "x",
            )
        )
    layout = _layout(280, "step", "ms")
    if table["limit_ms"] is not None:
        layout["shapes"] = [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": table["limit_ms"],
                "y1": table["limit_ms"],
                "line": {"color": OUTLIER, "width": 1, "dash": "dot"},
            }
        ]
    return {"data": data, "layout": layout}


def breakdown_figure(breakdown: dict[str, Any]) -> dict[str, Any]:
    """The mean step as horizontal bars split by phase: all steady steps, the op-trace window."""
    bars = [("mean step", breakdown["rows"])]
    if breakdown.get("window"):
        bars.append(("op-trace window", breakdown["window"]["rows"]))
    phases: dict[str, dict[str, Any]] = {}
    for label, rows in bars:
        for row in rows:
            trace = phases.setdefault(
                row["phase"],
                {
                    "type": "bar",
                    "orientation": "h",
                    "name": row["phase"],
                    "x": [],
                    "y": [],
                    "customdata": [],
                    "marker": {"color": PHASE_COLORS.get(row["phase"], PROFILED)},
                    "hovertemplate": row["phase"]
                    + ": %{x:.1f} ms (%{customdata:.0%})<extra>%{y}</extra>",
                },
            )
            trace["x"].append(round(row["ms_per_step"], 3))
            trace["y"].append(label)
            trace["customdata"].append(round(row["frac"], 4))
    layout = _layout(110 + 40 * len(bars), "ms per step", "")
    layout["barmode"] = "stack"
    layout["yaxis"]["autorange"] = "reversed"
    return {"data": list(phases.values()), "layout": layout}


def throughput_figure(series: dict[str, list[float]]) -> dict[str, Any]:
    """Steps per second of step time over the run."""
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "steps/s",
            "x": series["x"],
            "y": series["y"],
            "line": {"color": COMPUTE},
            "marker": {"size": 4},
        }
    ]
    return {"data": data, "layout": _layout(200, "run time (s)", "steps/s")}


def timeline_figure(panels: list[dict[str, Any]], marks: dict[str, Any]) -> dict[str, Any]:
    """The panels stacked on one shared time axis, with the steps and the op-trace window."""
    n = len(panels)
    gap = 0.06 if n > 1 else 0.0
    height = (1 - gap * (n - 1)) / n
    layout = _layout(PANEL_PX * n + 130, "run time (s)", "")
    layout.pop("yaxis")
    data: list[dict[str, Any]] = []
    annotations = []
    for row, panel in enumerate(panels):
        axis = "y" if row == 0 else f"y{row + 1}"
        top = 1 - row * (height + gap)
        layout["yaxis" if row == 0 else f"yaxis{row + 1}"] = {
            "domain": [max(0.0, top - height), top],
            "title": {"text": panel["unit"]},
            "rangemode": "tozero",
            "automargin": True,
        }
        annotations.append(_panel_title(panel["title"], top))
        for i, series in enumerate(panel["series"]):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": f"{panel['title']}: {series['name']}",
                    "x": series["x"],
                    "y": series["y"],
                    "xaxis": "x",
                    "yaxis": axis,
                    "line": {"width": 1.5, "color": SERIES_COLORS[i % len(SERIES_COLORS)]},
                }
            )
    layout["annotations"] = annotations
    layout["shapes"] = _marks_shapes(marks)
    layout["xaxis"]["anchor"] = "y" if n == 1 else f"y{n}"
    layout["margin"].update({"t": 24, "b": 100})  # the legend goes under the time axis
    plot_px = layout["height"] - 124
    layout["legend"] = {"orientation": "h", "x": 0, "y": -75 / plot_px, "yanchor": "top"}
    return {"data": data, "layout": layout}


def icicle_figure(tree: dict[str, Any]) -> dict[str, Any]:
    """py-spy's call tree, callers above callees, width = share of samples."""
    labels = [_text(label) for label in tree["labels"]]
    colors = [KIND_COLORS.get(kind, PROFILED) for kind in tree["kinds"]]
    data = [
        {
            "type": "icicle",
            "ids": tree["ids"],
            "labels": labels,
            "parents": tree["parents"],
            "values": tree["values"],
            "customdata": [_text(w) for w in tree["where"]],
            "marker": {"colors": colors},
            "branchvalues": "total",
            "tiling": {"orientation": "v"},
            "hovertemplate": "%{label}<br>%{customdata}<br>%{value} samples"
            " (%{percentRoot:.1%})<extra></extra>",
            "maxdepth": 8,
        }
    ]
    layout = _layout(460, "", "")
    layout["margin"] = {"l": 0, "r": 0, "t": 10, "b": 0}
    return {"data": data, "layout": layout}


def _stacked(name: str, x: list[Any], y: list[Any], color: str) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": x,
        "y": y,
        "stackgroup": "step",
        "line": {"color": color, "width": 1},
        "hovertemplate": "step %{x}: %{y:.1f} ms<extra>" + name + "</extra>",
    }


def _markers(name: str, x: list[Any], y: list[Any], color: str, symbol: str) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "markers",
        "name": name,
        "x": x,
        "y": y,
        "marker": {"color": color, "symbol": symbol, "size": 8},
        "hovertemplate": "step %{x}: %{y:.1f} ms<extra>" + name + "</extra>",
    }


def _layout(height: int, xtitle: str, ytitle: str) -> dict[str, Any]:
    return {
        "height": height,
        "margin": {"l": 50, "r": 10, "t": 30, "b": 40},
        "xaxis": {"title": {"text": xtitle}, "automargin": True},
        "yaxis": {"title": {"text": ytitle}, "rangemode": "tozero", "automargin": True},
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 1.0,
            "yanchor": "bottom",
            "traceorder": "normal",
        },
        "hovermode": "closest",
    }


def _panel_title(text: str, top: float) -> dict[str, Any]:
    return {
        "text": f"<b>{_text(text)}</b>",
        "xref": "paper",
        "yref": "paper",
        "x": 0,
        "y": top,
        "xanchor": "left",
        "yanchor": "bottom",
        "showarrow": False,
    }


def _marks_shapes(marks: dict[str, Any]) -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = []
    full = {"yref": "paper", "y0": 0, "y1": 1, "layer": "below"}
    if marks["steps_span"]:
        x0, x1 = marks["steps_span"]
        shapes.append(
            {"type": "rect", "x0": x0, "x1": x1, **full, "fillcolor": COMPUTE, "opacity": 0.07}
        )
    for start in marks["step_starts"]:
        shapes.append(
            {
                "type": "line",
                "x0": start,
                "x1": start,
                **full,
                "line": {"color": COMPUTE, "width": 0.5, "dash": "dot"},
                "opacity": 0.5,
            }
        )
    if marks["trace_window"]:
        x0, x1 = marks["trace_window"]
        shapes.append(
            {"type": "rect", "x0": x0, "x1": x1, **full, "fillcolor": WAIT, "opacity": 0.18}
        )
    return shapes


def _text(value: str) -> str:
    # plotly reads tags and entities in labels: escaping <, > and & shows the text as it is.
    return html.escape(value, quote=False)
