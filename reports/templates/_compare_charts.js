(() => {
  "use strict";
  // The comparison page's only script: draws the figures perfscope laid out over the static SVG.
  // It reads run data from the JSON element only; it never builds markup from it.
  const data = JSON.parse(document.getElementById("compare-data").textContent);
  const body = document.body;
  body.dataset.charts = "loading";
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud"] };

  window.perfscopePlotly
    .then((Plotly) => {
      for (const [id, fig] of Object.entries(data.charts)) {
        const el = document.getElementById(id);
        if (!el) continue;
        el.replaceChildren();
        const layout = Object.assign({}, fig.layout, {
          paper_bgcolor: "rgba(0,0,0,0)",
          plot_bgcolor: "rgba(0,0,0,0)",
          font: { color: color("--fg"), family: "system-ui, sans-serif", size: 12 },
        });
        for (const axis of ["xaxis", "yaxis"]) {
          layout[axis] = Object.assign({}, layout[axis], { gridcolor: color("--line"), linecolor: color("--line") });
        }
        Plotly.newPlot(el, fig.data, layout, config);
      }
      body.dataset.charts = "drawn";
    })
    .catch((err) => {
      body.dataset.charts = "failed";
      const note = document.getElementById("chart-status");
      if (note) note.textContent = "The interactive chart could not be drawn (" + err + "); the static one stays.";
    });
})();
