(() => {
  "use strict";
  // The report's only script: draws the figures perfscope built, sorts tables, copies snippets.
  // It reads run data from the JSON element only; it never builds markup from it.
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const body = document.body;
  body.dataset.charts = "loading";

  function theme() {
    const css = getComputedStyle(document.documentElement);
    const v = (name) => css.getPropertyValue(name).trim();
    return { fg: v("--fg"), muted: v("--muted"), line: v("--line"), card: v("--card") };
  }

  function themed(layout) {
    const t = theme();
    const out = Object.assign({}, layout, {
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: t.fg, family: "system-ui, sans-serif", size: 12 },
      hoverlabel: { bgcolor: t.card, font: { color: t.fg } },
    });
    for (const key of Object.keys(out)) {
      if (/^[xy]axis\d*$/.test(key)) {
        out[key] = Object.assign({}, out[key], { gridcolor: t.line, zerolinecolor: t.line, linecolor: t.line });
      }
    }
    return out;
  }

  const config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud"] };

  // One chart per task, in page order: each shows as soon as it is drawn.
  async function drawAll(Plotly) {
    for (const [id, fig] of Object.entries(data.charts)) {
      const el = document.getElementById(id);
      if (el) await Plotly.newPlot(el, fig.data, themed(fig.layout), config);
      await new Promise((next) => setTimeout(next, 0));
    }
  }

  window.perfscopePlotly
    .then(async (Plotly) => {
      body.dataset.plotlyMs = String(Math.round(performance.now()));
      await drawAll(Plotly);
      body.dataset.drawnMs = String(Math.round(performance.now()));
      body.dataset.charts = "drawn";
      window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => drawAll(Plotly));
    })
    .catch((err) => {
      body.dataset.charts = "failed";
      for (const id of Object.keys(data.charts)) {
        const el = document.getElementById(id);
        if (el) el.textContent = "This chart could not be drawn: " + err;
      }
    });

  function cellValue(row, index) {
    const text = row.cells[index].textContent.trim();
    const num = parseFloat(text.replace(/[%,]/g, ""));
    return Number.isNaN(num) || !/^[-\d.]/.test(text) ? text.toLowerCase() : num;
  }

  for (const table of document.querySelectorAll("table.sortable")) {
    const heads = table.tHead.rows[0].cells;
    Array.from(heads).forEach((th, index) => {
      th.tabIndex = 0;
      const sort = () => {
        const down = th.getAttribute("aria-sort") !== "descending";
        Array.from(heads).forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", down ? "descending" : "ascending");
        const rows = Array.from(table.tBodies[0].rows);
        rows.sort((a, b) => {
          const x = cellValue(a, index), y = cellValue(b, index);
          const cmp = x < y ? -1 : x > y ? 1 : 0;
          return down ? -cmp : cmp;
        });
        table.tBodies[0].append(...rows);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
    });
  }

  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => {
      const text = document.getElementById(button.dataset.copy).textContent;
      navigator.clipboard.writeText(text).then(
        () => { button.textContent = "copied"; },
        () => { button.textContent = "select and copy"; }
      );
    });
  }

  function openTarget() {
    const target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target && target.tagName === "DETAILS") target.open = true;
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
