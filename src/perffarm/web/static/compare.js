// Sorting and filtering of the comparison table, kept in the URL so that a view is shareable.
(function () {
  "use strict";
  var table = document.getElementById("comparison");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var filter = document.getElementById("filter");
  var verdict = document.getElementById("verdict");
  var shown = document.getElementById("shown");
  var params = new URLSearchParams(window.location.search);
  var sortKey = params.get("sort") || "", sortDir = params.get("dir") === "desc" ? -1 : 1;
  filter.value = params.get("q") || "";
  verdict.value = params.get("verdict") || "";

  function value(row, key) {
    var text = row.dataset[key];
    if (key === "name" || key === "verdict") return text || "";
    return text === "" || text === undefined ? null : parseFloat(text);
  }

  function sort() {
    if (!sortKey) return;
    var sorted = rows.slice().sort(function (a, b) {
      var x = value(a, sortKey), y = value(b, sortKey);
      // Rows without a number go last whichever the direction.
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      if (typeof x === "string") return sortDir * x.localeCompare(y);
      return sortDir * (x - y);
    });
    sorted.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      var b = th.querySelector("button");
      th.setAttribute("aria-sort", b && b.dataset.key === sortKey ? (sortDir > 0 ? "ascending" : "descending") : "none");
    });
  }

  function apply() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var want = verdict.value, count = 0;
    rows.forEach(function (row) {
      var name = row.dataset.name.toLowerCase();
      var ok = (!want || row.dataset.verdict === want) &&
        words.every(function (w) { return name.indexOf(w) >= 0; });
      row.hidden = !ok;
      if (ok) count++;
    });
    shown.textContent = count + " of " + rows.length + " results shown";
    var next = new URLSearchParams(window.location.search);
    [["q", filter.value], ["verdict", want], ["sort", sortKey], ["dir", sortKey ? (sortDir > 0 ? "asc" : "desc") : ""]].forEach(function (kv) {
      if (kv[1]) next.set(kv[0], kv[1]); else next.delete(kv[0]);
    });
    history.replaceState(null, "", "?" + next.toString());
  }

  table.tHead.addEventListener("click", function (e) {
    var button = e.target.closest("button");
    if (!button) return;
    var key = button.dataset.key;
    sortDir = key === sortKey ? -sortDir : 1;
    sortKey = key;
    sort();
    apply();
  });
  filter.addEventListener("input", apply);
  verdict.addEventListener("change", apply);
  sort();
  apply();
})();
