// Small charts of the resource series sampled during the run (CPU, memory, I/O...).
(function () {
  "use strict";
  var source = document.getElementById("series-data");
  if (!source || typeof uPlot === "undefined") return;
  var all = JSON.parse(source.textContent);
  var charts = [];
  document.querySelectorAll(".chart[data-series-index]").forEach(function (el) {
    var s = all[Number(el.dataset.seriesIndex)];
    var u = new uPlot({
      width: Math.max(260, el.clientWidth),
      height: 180,
      legend: { show: false },
      scales: { x: { time: false } },
      axes: [{ label: "seconds" }, { size: 60 }],
      series: [{}, { label: s.name, stroke: "#1f6feb", width: 1.5, fill: "rgba(31,111,235,0.1)" }]
    }, [s.t, s.values], el);
    el.dataset.points = String(s.t.length);
    charts.push([u, el]);
  });
  window.perffarmRunCharts = charts.map(function (c) { return c[0]; });
  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c[0].setSize({ width: Math.max(260, c[1].clientWidth), height: 180 }); });
  });
})();
