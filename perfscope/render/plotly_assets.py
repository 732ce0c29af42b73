"""plotly.js for self-contained HTML pages: embedded gzip-compressed, inflated in the page.

plotly.min.js is 4.8 MB; gzip + base64 make it about 2 MB. The page inflates it with the
browser's DecompressionStream and runs it from a blob: URL, so the Content Security Policy
allows no network request at all: scripts only by hash (the loader and the page's own inline
scripts) and from blob: (the inflated library). Run data never goes into executable script text:
`json_for_script` makes it safe inside a `<script type="application/json">` element.

A page template uses it like this (see reports/templates/base.html):

    assets = page_assets(CHARTS_JS)      # every inline script the page runs, exact text
    template.render(**assets, ...)       # `csp`, `plotly` (`payload`, `loader_js`)

and, in its `scripts` block, waits for `window.perfscopePlotly` (a Promise of Plotly).
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PlotlyBundle:
    """What a page embeds: the compressed library and the inline script that runs it."""

    version: str
    payload: str  # base64 of plotly.min.js, gzipped
    loader_js: str


def _loader_js() -> str:
    # Inflates the payload to a blob: script; resolves to window.Plotly once that has run.
    return (
        "window.perfscopePlotly=(async()=>{"
        "const b64=document.getElementById('plotly-gz').textContent.trim();"
        "const bin=Uint8Array.fromBase64?Uint8Array.fromBase64(b64)"
        ":Uint8Array.from(atob(b64),c=>c.charCodeAt(0));"
        "const src=new Blob([bin]).stream().pipeThrough(new DecompressionStream('gzip'));"
        "const js=await new Response(src).blob();"
        "const url=URL.createObjectURL(new Blob([js],{type:'text/javascript'}));"
        "await new Promise((ok,fail)=>{const s=document.createElement('script');"
        "s.src=url;s.onload=ok;s.onerror=()=>fail(new Error('plotly.js did not load'));"
        "document.head.appendChild(s);});"
        "URL.revokeObjectURL(url);return window.Plotly;})();"
    )


@functools.lru_cache(maxsize=1)
def plotly_bundle() -> PlotlyBundle:
    """The compressed plotly.js, built once per process and cached on disk per plotly version."""
    import plotly

    version = plotly.__version__
    cache = _cache_file(version)
    payload = _read_cache(cache)
    if payload is None:
        from plotly.offline import get_plotlyjs

        # mtime=0: the same library gives the same bytes, so a report renders identically.
        packed = gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=9, mtime=0)
        payload = base64.b64encode(packed).decode("ascii")
        _write_cache(cache, payload)
    return PlotlyBundle(version=version, payload=payload, loader_js=_loader_js())


def script_hash(text: str) -> str:
    """The CSP source that allows one inline script whose text is exactly `text`."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def content_security_policy(*inline_scripts: str, plotly: bool = True) -> str:
    """No network request of any kind: styles inline, images from data:, scripts by hash.

    `blob:` is needed to run the inflated plotly.js; only a script the page already trusts can
    create a blob URL, so it opens nothing to injected markup.
    """
    scripts = [script_hash(text) for text in inline_scripts]
    if plotly:
        scripts += [script_hash(plotly_bundle().loader_js), "blob:"]
    script_src = " ".join(scripts) if scripts else "'none'"
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data: blob:; "
        f"script-src {script_src}; base-uri 'none'; form-action 'none'"
    )


def page_assets(*inline_scripts: str) -> dict[str, Any]:
    """The template context base.html needs: `csp` and `plotly` (the bundle).

    Pass every inline script the page runs, with the exact text the template writes between
    `<script>` and `</script>` (write it with `|safe`, on one line with the tags).
    """
    return {"csp": content_security_policy(*inline_scripts), "plotly": plotly_bundle()}


def json_for_script(value: Any) -> str:
    """JSON to put inside `<script type="application/json">`: `<`, `>` and `&` escaped.

    Nothing in the text can close the element or open a comment, whatever the run's strings
    hold; JSON.parse reads the escapes back to the same characters.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _cache_file(version: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "perfscope" / f"plotly-{version}.min.js.gz.b64"


def _read_cache(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii")
        base64.b64decode(text, validate=True)
    except (OSError, ValueError):
        return None
    return text or None


def _write_cache(path: Path, payload: str) -> None:
    # The cache only saves time: a read-only home or a full disk leaves rendering as it is.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(payload, encoding="ascii")
        tmp.replace(path)
    except OSError:
        pass
