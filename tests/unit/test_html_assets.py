"""The report's embedded plotly.js, its Content Security Policy and the JSON it carries."""

from __future__ import annotations

import base64
import gzip
import json
import re

from perfscope.render import plotly_assets


def test_the_bundle_inflates_to_plotlys_own_library():
    from plotly.offline import get_plotlyjs

    bundle = plotly_assets.plotly_bundle()
    assert gzip.decompress(base64.b64decode(bundle.payload)).decode() == get_plotlyjs()
    assert len(bundle.payload) < 2.5e6  # the 4.8 MB library, compressed
    assert plotly_assets.plotly_bundle() is bundle  # built once per process


def test_a_broken_cache_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    plotly_assets.plotly_bundle.cache_clear()
    try:
        first = plotly_assets.plotly_bundle()
        cached = next((tmp_path / "perfscope").glob("plotly-*.b64"))
        assert cached.read_text() == first.payload
        cached.write_text("not base64 !!")
        plotly_assets.plotly_bundle.cache_clear()
        assert plotly_assets.plotly_bundle().payload == first.payload
        assert cached.read_text() == first.payload
    finally:
        plotly_assets.plotly_bundle.cache_clear()


def test_the_policy_allows_only_the_given_scripts_and_no_request():
    csp = plotly_assets.content_security_policy("console.log(1)")
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert "connect-src" not in directives  # falls back to 'none': no fetch, no XHR
    sources = directives["script-src"].split()
    assert plotly_assets.script_hash("console.log(1)") in sources
    assert plotly_assets.script_hash(plotly_assets.plotly_bundle().loader_js) in sources
    assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources
    assert not any(s.startswith(("http", "data:")) or s == "*" for s in sources)


def test_json_for_script_cannot_close_its_element():
    value = {"name": "</script><script>alert(1)</script>", "amp": "a&b", "sep": "\u2028"}
    text = plotly_assets.json_for_script(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == value


def test_every_inline_script_of_the_report_is_allowed_by_hash(tmp_path):
    from perfscope.record import Record
    from perfscope.render.html import render_report

    record = Record(
        run={
            "argv": ["</script>"],
            "command": ["python"],
            "cwd": "/",
            "started_at": "t",
            "ended_at": "t",
            "duration_s": 1.0,
            "exit": "ok",
            "exit_code": 0,
            "signal": None,
            "exception": None,
            "step_method": None,
            "time_to_first_step_s": None,
            "notes": [],
        },
        environment={},
        collectors={},
        steps=[],
        samples={},
    )
    page = render_report(record)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    inline = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(inline) == 2
    for text in inline:
        assert plotly_assets.script_hash(text) in csp.replace("&#39;", "'")
    assert page.count("<script") == 4  # the payload, the loader, the data, the page's own
