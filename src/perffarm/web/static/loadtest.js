// A load test over time: its datapoints fetched in pages (`after` = last id seen), grouped
// per second, one chart per metric (the sum over peers), peers reporting and datapoints per
// second. While the test runs the page asks again every second, so the charts grow.
(function () {
  "use strict";
  var box = document.getElementById("lt-charts");
  var live = document.getElementById("lt-live");
  var id = box.dataset.test;
  var api = "/api/v1/loadtests/" + encodeURIComponent(id);
  var after = 0, total = 0, status = box.dataset.status;
  var seconds = new Map();          // epoch second -> {count, peers: Set, sums: {metric: n}}
  var metrics = [];                 // metric names, in the order first seen
  var charts = {};                  // name -> {u, el}
  window.perffarmLoadCharts = charts;

  function add(points) {
    points.forEach(function (p) {
      var s = Math.floor((p.timestamp || 0) / 1000);
      var b = seconds.get(s);
      if (!b) { b = { count: 0, peers: new Set(), sums: {} }; seconds.set(s, b); }
      b.count++;
      b.peers.add(p.peerId);
      Object.keys(p.metrics || {}).forEach(function (k) {
        var v = p.metrics[k];
        if (typeof v !== "number") return;
        if (metrics.indexOf(k) < 0) metrics.push(k);
        b.sums[k] = (b.sums[k] || 0) + v;
      });
    });
    total += points.length;
  }

  function chart(name, caption, xs, ys) {
    var c = charts[name];
    if (!c) {
      var fig = document.createElement("figure");
      fig.className = "small-chart";
      var cap = document.createElement("figcaption");
      cap.textContent = caption;
      var el = document.createElement("div");
      el.className = "chart";
      el.setAttribute("role", "img");
      el.setAttribute("aria-label", caption + " per second; the numbers are in the JSON linked below");
      el.dataset.metric = name;
      fig.appendChild(cap);
      fig.appendChild(el);
      box.appendChild(fig);
      var u = new uPlot({
        width: Math.max(260, el.clientWidth), height: 180, legend: { show: false },
        series: [{}, { label: caption, stroke: "#1f6feb", width: 1.5, fill: "rgba(31,111,235,0.1)" }],
        axes: [{}, { size: 60 }]
      }, [xs, ys], el);
      c = charts[name] = { u: u, el: el };
    } else {
      c.u.setData([xs, ys]);
    }
    c.el.dataset.points = String(xs.length);
  }

  function draw() {
    var xs = Array.from(seconds.keys()).sort(function (a, b) { return a - b; });
    var col = function (f) { return xs.map(function (s) { return f(seconds.get(s)); }); };
    chart("__peers", "peers reporting", xs, col(function (b) { return b.peers.size; }));
    chart("__rate", "datapoints per second", xs, col(function (b) { return b.count; }));
    metrics.forEach(function (m) {
      chart(m, m + " (sum over peers)", xs, col(function (b) { return b.sums[m] === undefined ? null : b.sums[m]; }));
    });
    // Charts made one after the other change the grid's columns: fit each to its cell.
    Object.keys(charts).forEach(function (k) {
      var c = charts[k], w = Math.max(260, c.el.clientWidth);
      if (Math.abs(c.u.width - w) > 2) c.u.setSize({ width: w, height: 180 });
    });
    live.textContent = total.toLocaleString("en") + " datapoints" +
      (status === "finished" ? "." : "; updating every second while the test runs.");
    box.dataset.datapoints = String(total);
  }

  function fetchAll() {
    return fetch(api + "/datapoints?limit=10000&after=" + after).then(function (r) { return r.json(); })
      .then(function (page) {
        add(page.datapoints);
        after = page.next_after;
        if (page.datapoints.length === 10000) return fetchAll();
      });
  }

  function tick() {
    fetchAll().then(function () {
      draw();
      if (status === "finished") return;
      return fetch(api).then(function (r) { return r.json(); }).then(function (info) {
        document.getElementById("lt-datapoints").textContent = info.datapoints.toLocaleString("en");
        document.getElementById("lt-status").textContent = info.status;
        // Finished meanwhile: the server now has the summary and verdict to show.
        if (info.status === "finished") { window.location.reload(); return; }
        setTimeout(tick, 1000);
      });
    }).catch(function (err) { live.textContent = "Could not load datapoints: " + err.message; });
  }
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (k) {
      charts[k].u.setSize({ width: Math.max(260, charts[k].el.clientWidth), height: 180 });
    });
  });
  tick();
})();
