// The timeline chart: columns from the JSON twin straight into uPlot.
// One x array shared by every line (uPlot's aligned data); each line has value, low and
// high columns, the last two drawn as a band (its CI, or min-max when no CI is known).
(function () {
  "use strict";
  var root = document.getElementById("chart");
  var status = document.getElementById("chart-status");
  var tooltip = document.getElementById("tooltip");
  var COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989",
                "#0969da", "#57606a", "#cf222e", "#116329", "#953800", "#6639ba"];
  var byTime = root.dataset.x === "time";
  var state = { lines: [], xs: null, where: [], changes: [], alerts: [] };

  function fmt(v) {
    if (v === null || v === undefined) return "–";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e7)) return v.toExponential(3);
    return Number(v.toPrecision(5)).toLocaleString("en");
  }
  function date(t) {
    return t === null || t === undefined ? "–" : new Date(t * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
  }
  function rgba(hex, alpha) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  // Lines -> one x column and, per line, y/lo/hi columns aligned to it (null where the
  // line has no point). One line needs no merging: its columns are used as they are.
  function align(lines) {
    var where = [];
    if (lines.length === 1) {
      // x in commit order is the point's place in the whole line: a long line arrives
      // newest first, in pieces, and ``offset`` is where the points held so far start.
      var one = lines[0], n = one.id.length, xs = new Array(n), off = one.offset || 0;
      for (var i = 0; i < n; i++) xs[i] = byTime ? one.t[i] : off + i;
      where.push(null);
      return { xs: xs, cols: [[one.y, one.lo, one.hi]], where: where };
    }
    // k-way merge by time: the lines are each sorted already.
    var total = 0, pos = lines.map(function () { return 0; });
    lines.forEach(function (l) { total += l.id.length; where.push(new Array(l.id.length)); });
    var xsM = new Array(total);
    var cols = lines.map(function () {
      return [new Array(total).fill(null), new Array(total).fill(null), new Array(total).fill(null)];
    });
    for (var k = 0; k < total; k++) {
      var best = -1, bestT = Infinity;
      for (var j = 0; j < lines.length; j++) {
        if (pos[j] < lines[j].id.length && lines[j].t[pos[j]] < bestT) { best = j; bestT = lines[j].t[pos[j]]; }
      }
      var p = pos[best]++;
      xsM[k] = byTime ? bestT : k;
      cols[best][0][k] = lines[best].y[p];
      cols[best][1][k] = lines[best].lo[p];
      cols[best][2][k] = lines[best].hi[p];
      where[best][p] = k;
    }
    return { xs: xsM, cols: cols, where: where };
  }

  // Which line and which of its points sits at chart index idx (the nearest line wins).
  function pointAt(idx) {
    if (idx === null || idx === undefined) return null;
    if (state.lines.length === 1) return { line: 0, i: idx };
    for (var j = 0; j < state.lines.length; j++) {
      var col = state.cols[j][0];
      if (col[idx] !== null) {
        // Position within the line: count back through the merge map (lines are short
        // enough when several are overlaid that a search costs nothing visible).
        var w = state.where[j], lo = 0, hi = w.length - 1;
        while (lo <= hi) {
          var mid = (lo + hi) >> 1;
          if (w[mid] === idx) return { line: j, i: mid };
          if (w[mid] < idx) lo = mid + 1; else hi = mid - 1;
        }
      }
    }
    return null;
  }

  // Long lines come without commits (see COMMITS_INLINE on the server): the hovered
  // point's commit is asked for once the cursor rests, and remembered.
  var details = new Map(), pending = null;
  function commitOf(l, i, u) {
    if (l.commit) return l.commit[i] || "–";
    var id = l.id[i];
    if (details.has(id)) return details.get(id);
    clearTimeout(pending);
    pending = setTimeout(function () {
      fetch("/api/v1/views/results/" + id).then(function (r) { return r.json(); }).then(function (d) {
        details.set(id, (d.commit || "–").slice(0, 12));
        if (tooltip.dataset.resultId === String(id)) showTooltip(u);
      });
    }, 80);
    return "…";
  }

  function showTooltip(u) {
    var hit = pointAt(u.cursor.idx);
    if (!hit) { tooltip.hidden = true; return; }
    var l = state.lines[hit.line], i = hit.i;
    var machine = l.machines[l.machine_index[i]] || l.machine || "?";
    tooltip.dataset.resultId = l.id[i];
    tooltip.innerHTML = "";
    [["commit", commitOf(l, i, u)], ["date", date(l.t[i])], ["machine", machine],
     ["branch", l.branch || "–"], ["value", fmt(l.y[i]) + " " + (l.unit || "")],
     ["spread", fmt(l.lo[i]) + " – " + fmt(l.hi[i])]].forEach(function (row) {
      var line = document.createElement("div");
      var b = document.createElement("b");
      b.textContent = row[0] + " ";
      line.appendChild(b);
      line.appendChild(document.createTextNode(row[1]));
      if (row[0] === "commit") line.className = "tt-commit";
      tooltip.appendChild(line);
    });
    tooltip.hidden = false;
    var o = u.over.getBoundingClientRect(), f = root.parentNode.getBoundingClientRect();
    var left = o.left - f.left + u.valToPos(u.data[0][u.cursor.idx], "x");
    var top = o.top - f.top + Math.max(0, u.cursor.top);
    tooltip.style.left = Math.max(0, Math.min(left + 12, f.width - 230)) + "px";
    tooltip.style.top = (top + 12) + "px";
  }

  // Open alerts: a triangle at the top of the plot, red for a regression.
  function alertMarks(u) {
    var ctx = u.ctx, size = 7 * devicePixelRatio;
    state.alerts.forEach(function (a) {
      var x = Math.round(u.valToPos(a.x, "x", true));
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
      ctx.fillStyle = a.kind === "regression" ? "#d1242f" : "#1a7f37";
      ctx.beginPath();
      ctx.moveTo(x - size, u.bbox.top);
      ctx.lineTo(x + size, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + 1.6 * size);
      ctx.closePath();
      ctx.fill();
    });
  }

  function changeMarks(u) {
    alertMarks(u);
    if (!state.changes.length) return;
    var ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "#d1242f";
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 2 * devicePixelRatio;
    state.changes.forEach(function (c) {
      var x = Math.round(u.valToPos(c.x, "x", true));
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
    });
    ctx.restore();
  }

  function chartData() {
    var aligned = align(state.lines);
    state.cols = aligned.cols;
    state.where = aligned.where;
    var data = [aligned.xs];
    state.lines.forEach(function (l, j) { data.push(aligned.cols[j][0], aligned.cols[j][1], aligned.cols[j][2]); });
    return data;
  }

  function describe() {
    var held = 0, total = 0;
    state.lines.forEach(function (l) { held += l.id.length; total += l.total || l.id.length; });
    root.dataset.points = String(held);
    root.dataset.lines = String(state.lines.length);
    status.textContent = held.toLocaleString("en") + (held < total ? " of " + total.toLocaleString("en") + " points (loading the older ones…)" : " points") +
      " in " + state.lines.length + (state.lines.length === 1 ? " line" : " lines") + "; shaded: each point's confidence interval (or min–max).";
    return held === total;
  }

  // The next, older piece of every line: prepended to what the chart holds.
  function merge(answer) {
    answer.lines.forEach(function (c, j) {
      var l = state.lines[j];
      if (!l || !c.id.length) return;
      var names = l.machines.slice(), map = c.machines.map(function (name) {
        var k = names.indexOf(name);
        if (k < 0) { names.push(name); k = names.length - 1; }
        return k;
      });
      l.machines = names;
      l.machine_index = c.machine_index.map(function (k) { return map[k]; }).concat(l.machine_index);
      ["id", "t", "y", "lo", "hi"].forEach(function (key) { l[key] = c[key].concat(l[key]); });
      l.commit = l.commit && c.commit ? c.commit.concat(l.commit) : null;
      l.offset = c.offset;
    });
  }

  function more(cursor) {
    fetch(root.dataset.src + "&limit=" + chunk + "&before=" + encodeURIComponent(cursor)).then(function (r) {
      if (!r.ok) return r.json().then(function (b) { throw new Error(b.detail || ("HTTP " + r.status)); });
      return r.json();
    }).then(function (answer) {
      var u = window.perffarmChart, all = u.data[0];
      var zoomed = u.scales.x.min > all[0] || u.scales.x.max < all[all.length - 1];
      merge(answer);
      u.setData(chartData(), !zoomed);
      describe();
      if (answer.next_cursor) more(answer.next_cursor); else complete();
    }).catch(function (err) { status.textContent = "Could not load the older points: " + err.message; });
  }

  function complete() {
    window.perffarmCompleteAt = performance.now();
    root.dataset.complete = "1";
    loadChanges();
  }

  function build(answer) {
    state.lines = answer.lines;
    if (!state.lines.length) {
      status.textContent = "No points for this series (or its machines are not approved).";
      root.dataset.points = "0";
      root.dataset.complete = "1";
      return;
    }
    var data = chartData(), series = [{
      label: byTime ? "time" : "commit",
      value: function (u, v, si, idx) {
        if (idx === null || idx === undefined) return "–";
        var hit = pointAt(idx);
        var l = hit && state.lines[hit.line];
        return l && l.commit ? (l.commit[hit.i] || "–") : "–";
      }
    }], bands = [];
    state.lines.forEach(function (l, j) {
      var color = COLORS[j % COLORS.length];
      var s = 1 + j * 3;
      series.push({ label: l.label, stroke: color, width: 1.5, spanGaps: true,
                    value: function (u, v) { return fmt(v); } });
      // The band's edges: drawn faintly, left out of the legend (class "band-edge").
      series.push({ label: l.label + " low", class: "band-edge", stroke: rgba(color, 0.25), width: 0.5, spanGaps: true, points: { show: false } });
      series.push({ label: l.label + " high", class: "band-edge", stroke: rgba(color, 0.25), width: 0.5, spanGaps: true, points: { show: false } });
      bands.push({ series: [s + 2, s + 1], fill: rgba(color, 0.15) });
    });
    var unit = state.lines[0].unit || "";
    var opts = {
      width: Math.max(280, root.clientWidth),
      height: window.innerWidth < 600 ? 260 : 400,
      series: series,
      bands: bands,
      scales: { x: { time: byTime } },
      axes: [
        byTime ? {} : { label: "commit order", values: function (u, splits) { return splits.map(function (v) { return Number.isInteger(v) ? String(v) : ""; }); } },
        { label: unit, size: 70, values: function (u, splits) { return splits.map(fmt); } }
      ],
      legend: { live: false },
      cursor: { drag: { x: true, y: false, setScale: true }, points: { size: 8 } },
      hooks: { setCursor: [showTooltip], draw: [changeMarks] }
    };
    root.innerHTML = "";
    var u = new uPlot(opts, data, root);
    window.perffarmChart = u;
    // When the chart became usable, for benchmarks/web_pages.py.
    window.perffarmReadyAt = performance.now();
    describe();
    wireClicks(u);
    window.addEventListener("resize", function () { u.setSize({ width: Math.max(280, root.clientWidth), height: opts.height }); });
    document.body.dataset.chartReady = "1";
    if (answer.next_cursor) more(answer.next_cursor); else complete();
  }

  // A click (not a drag, which zooms) opens the run of the point under the cursor.
  function wireClicks(u) {
    var down = null;
    u.over.addEventListener("mousedown", function (e) { down = [e.clientX, e.clientY]; });
    u.over.addEventListener("mouseup", function (e) {
      if (!down || Math.abs(e.clientX - down[0]) > 3 || Math.abs(e.clientY - down[1]) > 3) return;
      var hit = pointAt(u.cursor.idx);
      if (hit) window.location.href = "/results/" + state.lines[hit.line].id[hit.i];
    });
    u.over.addEventListener("mouseleave", function () { tooltip.hidden = true; });
  }

  function xRange(u) {
    var min = u.scales.x.min, max = u.scales.x.max;
    return [min, max, max - min];
  }
  function setX(u, min, max) {
    var all = u.data[0], lo = all[0], hi = all[all.length - 1];
    var span = max - min;
    if (min < lo) { min = lo; max = lo + span; }
    if (max > hi) { max = hi; min = Math.max(lo, hi - span); }
    u.setScale("x", { min: min, max: max });
  }
  function pan(f) { var u = window.perffarmChart; if (!u) return; var r = xRange(u); setX(u, r[0] + f * r[2], r[1] + f * r[2]); }
  function zoom(f) { var u = window.perffarmChart; if (!u) return; var r = xRange(u), mid = (r[0] + r[1]) / 2, half = r[2] * f / 2; setX(u, mid - half, mid + half); }
  function reset() { var u = window.perffarmChart; if (!u) return; var all = u.data[0]; u.setScale("x", { min: all[0], max: all[all.length - 1] }); }
  document.getElementById("pan-left").addEventListener("click", function () { pan(-0.5); });
  document.getElementById("pan-right").addEventListener("click", function () { pan(0.5); });
  document.getElementById("zoom-in").addEventListener("click", function () { zoom(0.5); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoom(2); });
  document.getElementById("reset").addEventListener("click", reset);
  root.addEventListener("keydown", function (e) {
    var keys = { ArrowLeft: function () { pan(-0.25); }, ArrowRight: function () { pan(0.25); },
                 "+": function () { zoom(0.5); }, "=": function () { zoom(0.5); },
                 "-": function () { zoom(2); }, "0": reset };
    if (keys[e.key]) { keys[e.key](); e.preventDefault(); }
  });
  // Wheel zoom around the cursor, as map users expect.
  root.addEventListener("wheel", function (e) {
    var u = window.perffarmChart;
    if (!u || !e.ctrlKey && !e.shiftKey) return;
    e.preventDefault();
    var r = xRange(u), at = u.posToVal(e.clientX - u.over.getBoundingClientRect().left, "x");
    var f = e.deltaY < 0 ? 0.75 : 1.33;
    setX(u, at - (at - r[0]) * f, at + (r[1] - at) * f);
  }, { passive: false });

  function loadChanges() {
    var box = document.getElementById("changepoints");
    fetch(root.dataset.changes).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (answer) {
      var rows = [], alerts = [];
      answer.lines.forEach(function (line, j) {
        (line.alerts || []).forEach(function (a) {
          // Where the alert's commit sits on the chart: its time, or its place in the line.
          var ts = state.lines[j].t, lo = 0, hi = ts.length;
          while (lo < hi) { var mid = (lo + hi) >> 1; if (ts[mid] < a.t) lo = mid + 1; else hi = mid; }
          var i = Math.min(lo, ts.length - 1), w = state.where[j];
          state.alerts.push({ x: byTime ? a.t : (w ? w[i] : (state.lines[j].offset || 0) + i), kind: a.kind });
          alerts.push({ line: line.label, a: a });
        });
        line.changepoints.forEach(function (c) {
          var w = state.where[j];
          state.changes.push({ x: byTime ? c.t : (w ? w[c.index - (state.lines[j].offset || 0)] : c.index) });
          rows.push({ line: line.label, c: c });
        });
      });
      window.perffarmChart.redraw(false);
      showAlerts(alerts);
      box.innerHTML = "";
      if (!rows.length) { box.textContent = "None found."; box.dataset.count = "0"; return; }
      var table = document.createElement("table");
      table.className = "data";
      table.innerHTML = "<caption class='sr-only'>Change points</caption><thead><tr><th scope='col'>Line</th><th scope='col'>Commit</th><th scope='col'>Date</th><th scope='col' class='num'>Change</th><th scope='col' class='num'>Before</th><th scope='col' class='num'>After</th><th scope='col' class='num'>p</th></tr></thead>";
      var body = document.createElement("tbody");
      rows.forEach(function (row) {
        var tr = document.createElement("tr");
        var c = row.c;
        var cells = [row.line, null, date(c.t),
                     (c.magnitude === null ? "–" : (c.magnitude * 100).toFixed(1) + "%"),
                     fmt(c.mean_before), fmt(c.mean_after), c.p_value.toExponential(1)];
        cells.forEach(function (text, k) {
          var td = document.createElement("td");
          if (k >= 3) td.className = "num";
          if (k === 1) {
            var a = document.createElement("a");
            a.href = "/results/" + c.id;
            a.textContent = c.commit || "–";
            td.appendChild(a);
          } else td.textContent = text;
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      table.appendChild(body);
      box.appendChild(table);
      box.dataset.count = String(rows.length);
    }).catch(function (err) { box.textContent = "Change points unavailable: " + err.message; });
  }

  function showAlerts(alerts) {
    var list = document.getElementById("alerts");
    list.dataset.count = String(alerts.length);
    if (!alerts.length) { list.textContent = "No open alerts on these lines."; return; }
    list.innerHTML = "";
    var ul = document.createElement("ul");
    alerts.forEach(function (item) {
      var li = document.createElement("li"), a = document.createElement("a");
      a.href = "/runs/" + item.a.run_after;
      a.textContent = (item.a.commit_after || "run").slice(0, 12);
      li.appendChild(document.createTextNode(item.a.kind + " " +
        (item.a.magnitude * 100).toFixed(1) + "% on " + item.line + " at "));
      li.appendChild(a);
      li.appendChild(document.createTextNode(" (" + item.a.state + ")"));
      ul.appendChild(li);
    });
    list.appendChild(ul);
  }

  // The text alternative: built when opened, so a 100,000-point chart costs nothing here.
  document.getElementById("numbers").addEventListener("toggle", function (e) {
    var holder = document.getElementById("numbers-table");
    if (!e.target.open || holder.childElementCount || !state.lines.length) return;
    var table = document.createElement("table");
    table.className = "data";
    table.innerHTML = "<caption class='sr-only'>Points of the chart</caption><thead><tr><th scope='col'>Line</th><th scope='col'>Commit</th><th scope='col'>Date</th><th scope='col' class='num'>Value</th><th scope='col' class='num'>Low</th><th scope='col' class='num'>High</th></tr></thead>";
    var body = document.createElement("tbody");
    state.lines.forEach(function (l) {
      for (var i = Math.max(0, l.id.length - 1000); i < l.id.length; i++) {
        var tr = document.createElement("tr");
        [l.label, l.commit ? l.commit[i] : "", date(l.t[i]), fmt(l.y[i]), fmt(l.lo[i]), fmt(l.hi[i])].forEach(function (text, k) {
          var td = document.createElement("td");
          td.textContent = text;
          if (k >= 3) td.className = "num";
          tr.appendChild(td);
        });
        body.appendChild(tr);
      }
    });
    table.appendChild(body);
    holder.appendChild(table);
  });

  // The first piece is small, so that the chart is drawn (and usable) at once.
  var chunk = parseInt(root.dataset.chunk, 10) || 20000;
  fetch(root.dataset.src + "&limit=" + Math.min(chunk, 10000)).then(function (r) {
    if (!r.ok) return r.json().then(function (b) { throw new Error(b.detail || ("HTTP " + r.status)); });
    return r.json();
  }).then(build).catch(function (err) { status.textContent = "Could not load the series: " + err.message; });
})();
